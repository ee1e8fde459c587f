// deepfake-serve's result history over HTTP (tools/serve/history_api.h): the
// real binary with SQLite in a temp dir and with a real PostgreSQL server;
// every scan recorded, an upload already scanned with the same model and
// settings answered from the history, GET/DELETE /api/v1/scans, and bad
// input: bad ids and parameters, a bad --history, a corrupt database, a full
// disk and a database that went away.
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <gtest/gtest.h>
#include <libsoup/soup.h>
#include <sys/mount.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "../history/postgres_server.h"
#include "serve_test_util.h"

using nlohmann::json;
namespace fs = std::filesystem;
namespace test = dfd::test;

namespace {

struct Response {
  guint status = 0;
  std::string body, content_type;
  json js() const { return json::parse(body); }
};

Response send(SoupMessage* msg) {
  static SoupSession* session = [] {
    SoupSession* s = soup_session_new();
    g_object_set(s, "timeout", 300u, nullptr);
    return s;
  }();
  GError* err = nullptr;
  GBytes* body = soup_session_send_and_read(session, msg, nullptr, &err);
  Response r;
  r.status = soup_message_get_status(msg);
  if (body) {
    gsize n = 0;
    const auto* p = static_cast<const char*>(g_bytes_get_data(body, &n));
    r.body.assign(p ? p : "", n);
    g_bytes_unref(body);
  }
  if (err) {
    r.body = std::string("transport error: ") + err->message;
    g_error_free(err);
  }
  if (const char* ct = soup_message_headers_get_content_type(soup_message_get_response_headers(msg), nullptr))
    r.content_type = ct;
  g_object_unref(msg);
  return r;
}

Response request(const std::string& method, const std::string& url) {
  return send(soup_message_new(method.c_str(), url.c_str()));
}

Response upload(const std::string& url, const std::string& bytes, const std::string& filename) {
  SoupMultipart* mp = soup_multipart_new(SOUP_FORM_MIME_TYPE_MULTIPART);
  GBytes* b = g_bytes_new(bytes.data(), bytes.size());
  soup_multipart_append_form_file(mp, "file", filename.c_str(), "application/octet-stream", b);
  g_bytes_unref(b);
  SoupMessage* msg = soup_message_new_from_multipart(url.c_str(), mp);
  soup_multipart_free(mp);
  return send(msg);
}

std::vector<const char*> argv_of(const std::vector<std::string>& args, std::vector<std::string>& storage) {
  // The default model (the shipped MesoNet): it starts in about a second,
  // where the LibTorch test model takes many; every test here starts servers.
  storage = {test::env_or("DFD_SERVE_BIN", "build/tools/deepfake-serve"), "--port", "0", "--bind", "127.0.0.1"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<const char*> argv;
  for (const auto& a : storage) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  return argv;
}

GSubprocessLauncher* launcher(GSubprocessFlags flags, const std::map<std::string, std::string>& env) {
  GSubprocessLauncher* l = g_subprocess_launcher_new(flags);
  g_subprocess_launcher_unsetenv(l, "DFD_HISTORY");
  for (const auto& [k, v] : env) g_subprocess_launcher_setenv(l, k.c_str(), v.c_str(), TRUE);
  return l;
}

// One deepfake-serve process; stopped with SIGTERM.
class Service {
 public:
  explicit Service(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
    std::vector<std::string> storage;
    auto argv = argv_of(args, storage);
    GSubprocessLauncher* l = launcher(G_SUBPROCESS_FLAGS_STDOUT_PIPE, env);
    GError* err = nullptr;
    proc_ = g_subprocess_launcher_spawnv(l, argv.data(), &err);
    g_object_unref(l);
    if (!proc_) throw std::runtime_error(std::string("cannot start deepfake-serve: ") + err->message);
    GDataInputStream* out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(proc_));
    gchar* line = g_data_input_stream_read_line(out, nullptr, nullptr, nullptr);
    g_object_unref(out);
    const std::string first = line ? line : "";
    g_free(line);
    std::smatch m;
    if (!std::regex_match(first, m, std::regex("listening on (http://127\\.0\\.0\\.1:[0-9]+)")))
      throw std::runtime_error("deepfake-serve did not start (first line: '" + first + "')");
    url_ = m[1];
  }
  ~Service() {
    g_subprocess_send_signal(proc_, SIGTERM);
    g_subprocess_wait(proc_, nullptr, nullptr);
    g_object_unref(proc_);
  }
  std::string url(const std::string& path) const { return url_ + path; }

 private:
  GSubprocess* proc_ = nullptr;
  std::string url_;
};

// deepfake-serve run to its exit (it fails to start): exit status and stderr.
std::pair<int, std::string> run_failing(const std::vector<std::string>& args,
                                        const std::map<std::string, std::string>& env = {}) {
  std::vector<std::string> storage;
  auto argv = argv_of(args, storage);
  GSubprocessLauncher* l = launcher(GSubprocessFlags(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE), env);
  GSubprocess* p = g_subprocess_launcher_spawnv(l, argv.data(), nullptr);
  g_object_unref(l);
  if (!p) return {-1, "cannot spawn"};
  gchar *out = nullptr, *err = nullptr;
  g_subprocess_communicate_utf8(p, nullptr, nullptr, &out, &err, nullptr);  // a server that started would hang here
  const int rc = g_subprocess_get_if_exited(p) ? g_subprocess_get_exit_status(p) : -1;
  std::string text = err ? err : "";
  g_free(out);
  g_free(err);
  g_object_unref(p);
  return {rc, text};
}

struct Media {
  std::string face, noface, other_face;
};
Media* media = nullptr;

class History : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (media) return;
    media = new Media;
    char tmpl[] = "/tmp/dfd-history-media-XXXXXX";
    const std::string dir = mkdtemp(tmpl);
    test::make_face_jpeg(dir + "/face.jpg", 320);
    test::make_face_jpeg(dir + "/other.jpg", 288);
    test::make_noface_png(dir + "/noface.png");
    media->face = test::read_file(dir + "/face.jpg");
    media->other_face = test::read_file(dir + "/other.jpg");
    media->noface = test::read_file(dir + "/noface.png");
    fs::remove_all(dir);
  }
  void SetUp() override {
    char tmpl[] = "/tmp/dfd-history-api-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string db() const { return "sqlite:" + dir_ + "/history.db"; }

  std::string dir_;
};

}  // namespace

// Every scan recorded once; the same bytes again (any name, either endpoint)
// answered from the history; /predict_media's answer keeps its shape.
TEST_F(History, ScansAreRecordedAndReused) {
  Service s({"--history", db()});
  const Response first = upload(s.url("/api/v1/analyze"), media->face, "first.jpg");
  ASSERT_EQ(first.status, 200u) << first.body;
  const json a = first.js();
  EXPECT_NE(a["verdict"], "NO_FACE") << first.body;  // a face was scored: there is a result to reuse
  EXPECT_EQ(a["cached"], false);
  ASSERT_TRUE(a.contains("scan_id")) << first.body;
  const int64_t id = a["scan_id"];
  EXPECT_GT(id, 0);
  EXPECT_FALSE(a.contains("history_error")) << first.body;

  const Response predict = upload(s.url("/predict_media"), media->face, "again.jpg");
  ASSERT_EQ(predict.status, 200u) << predict.body;
  const json p = predict.js();
  EXPECT_EQ(p.size(), 3u) << predict.body;  // label, confidence, img: unchanged
  EXPECT_EQ(p["label"], a["verdict"]);

  const Response third = upload(s.url("/api/v1/analyze"), media->face, "third.jpg");
  ASSERT_EQ(third.status, 200u) << third.body;
  const json c = third.js();
  EXPECT_EQ(c["cached"], true);
  EXPECT_EQ(c["scan_id"], id);
  EXPECT_EQ(c["verdict"], a["verdict"]);
  EXPECT_EQ(c["fake_probability"], a["fake_probability"]);
  EXPECT_EQ(c["source"], "third.jpg");
  EXPECT_EQ(c["images"].size(), a["images"].size());  // pictures redrawn from this upload

  const Response none = upload(s.url("/predict_media"), media->noface, "landscape.png");
  ASSERT_EQ(none.status, 200u) << none.body;
  EXPECT_EQ(none.js()["label"], "No Face Detected");

  const json list = request("GET", s.url("/api/v1/scans")).js();
  EXPECT_EQ(list["total"], 2);  // the two answers from the history are not new scans
  ASSERT_EQ(list["scans"].size(), 2u);
  EXPECT_EQ(list["scans"][0]["source"], "landscape.png");  // newest first
  EXPECT_EQ(list["scans"][0]["verdict"], "NO_FACE");
  const json& e = list["scans"][1];
  EXPECT_EQ(e["id"], id);
  EXPECT_EQ(e["source"], "first.jpg");
  EXPECT_EQ(e["verdict"], a["verdict"]);
  EXPECT_NEAR(e["probability"].get<double>(), a["fake_probability"].get<double>(), 1e-6);
  EXPECT_EQ(e["media_sha256"].get<std::string>().size(), 64u);
  EXPECT_FALSE(e.contains("report"));  // lists stay small
  EXPECT_TRUE(std::regex_match(e["time"].get<std::string>(),
                               std::regex("20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z")));
  gchar* sha = g_compute_checksum_for_data(G_CHECKSUM_SHA256, reinterpret_cast<const guchar*>(media->face.data()),
                                           media->face.size());
  EXPECT_EQ(e["media_sha256"], sha);
  g_free(sha);

  const json health = request("GET", s.url("/healthz")).js();
  EXPECT_EQ(health["history"], true);
}

TEST_F(History, OneEntryAndDelete) {
  Service s({"--history", db()});
  const json a = upload(s.url("/api/v1/analyze"), media->face, "face.jpg").js();
  const std::string entry_url = s.url("/api/v1/scans/" + std::to_string(a["scan_id"].get<int64_t>()));
  const Response got = request("GET", entry_url);
  ASSERT_EQ(got.status, 200u) << got.body;
  const json g = got.js();
  EXPECT_EQ(g["id"], a["scan_id"]);
  EXPECT_EQ(g["report"]["verdict"], a["verdict"]);
  EXPECT_EQ(g["report"]["source"], "face.jpg");
  EXPECT_EQ(g["report"]["tracks"].size(), a["tracks"].size());

  const Response html = request("GET", entry_url + "?format=html");
  ASSERT_EQ(html.status, 200u) << html.body;
  EXPECT_EQ(html.content_type, "text/html");
  EXPECT_NE(html.body.find("data-verdict=\"" + a["verdict"].get<std::string>() + "\""), std::string::npos);
  EXPECT_EQ(request("GET", entry_url + "?format=pdf").status, 400u);

  const Response removed = request("DELETE", entry_url);
  ASSERT_EQ(removed.status, 200u) << removed.body;
  EXPECT_EQ(removed.js()["deleted"], a["scan_id"]);
  EXPECT_EQ(request("DELETE", entry_url).status, 404u);
  const Response gone = request("GET", entry_url);
  EXPECT_EQ(gone.status, 404u);
  EXPECT_NE(gone.js()["error"].get<std::string>().find("no scan"), std::string::npos);
  EXPECT_EQ(request("GET", s.url("/api/v1/scans")).js()["total"], 0);
  // Deleted from the history: the same bytes are scanned afresh.
  const json again = upload(s.url("/api/v1/analyze"), media->face, "face.jpg").js();
  EXPECT_EQ(again["cached"], false);
  EXPECT_NE(again["scan_id"], a["scan_id"]);
}

TEST_F(History, BadIdsMethodsAndParameters) {
  Service s({"--history", db()});
  for (const char* id : {"abc", "0", "-1", "1x", "99999999999999999999", "1/2"}) {
    const Response r = request("GET", s.url(std::string("/api/v1/scans/") + id));
    EXPECT_EQ(r.status, 400u) << id << ": " << r.body;
    EXPECT_EQ(request("DELETE", s.url(std::string("/api/v1/scans/") + id)).status, 400u) << id;
  }
  EXPECT_EQ(request("GET", s.url("/api/v1/scans/12345")).status, 404u);
  EXPECT_EQ(request("DELETE", s.url("/api/v1/scans/12345")).status, 404u);
  EXPECT_EQ(request("POST", s.url("/api/v1/scans")).status, 405u);
  EXPECT_EQ(request("DELETE", s.url("/api/v1/scans")).status, 405u);
  EXPECT_EQ(request("PUT", s.url("/api/v1/scans/1")).status, 405u);
  for (const char* q : {"limit=0", "limit=501", "limit=abc", "offset=-1", "verdict=fake", "verdict=", "since=yesterday",
                        "until=2026-13-45T00:00:00Z", "colour=red", "since=2000&until=1000"}) {
    const Response r = request("GET", s.url(std::string("/api/v1/scans?") + q));
    EXPECT_EQ(r.status, 400u) << q << ": " << r.body;
    EXPECT_FALSE(r.js()["error"].get<std::string>().empty()) << q;
  }
  EXPECT_EQ(request("GET", s.url("/healthz")).status, 200u);  // still answering
}

// Paging and filters on entries made by scans of three different files.
TEST_F(History, ListPagingAndFilters) {
  Service s({"--history", db()});
  const int64_t before = g_get_real_time() / 1000;
  ASSERT_EQ(upload(s.url("/predict_media"), media->face, "a.jpg").status, 200u);
  ASSERT_EQ(upload(s.url("/predict_media"), media->noface, "b.png").status, 200u);
  ASSERT_EQ(upload(s.url("/predict_media"), media->other_face, "c.jpg").status, 200u);
  const int64_t after = g_get_real_time() / 1000;
  json page = request("GET", s.url("/api/v1/scans?limit=2")).js();
  EXPECT_EQ(page["total"], 3);
  ASSERT_EQ(page["scans"].size(), 2u);
  EXPECT_EQ(page["scans"][0]["source"], "c.jpg");
  EXPECT_EQ(page["scans"][1]["source"], "b.png");
  page = request("GET", s.url("/api/v1/scans?limit=2&offset=2")).js();
  ASSERT_EQ(page["scans"].size(), 1u);
  EXPECT_EQ(page["scans"][0]["source"], "a.jpg");
  EXPECT_EQ(page["offset"], 2);
  page = request("GET", s.url("/api/v1/scans?verdict=NO_FACE")).js();
  EXPECT_EQ(page["total"], 1);
  EXPECT_EQ(page["scans"][0]["source"], "b.png");
  const std::string window = "since=" + std::to_string(before) + "&until=" + std::to_string(after);
  EXPECT_EQ(request("GET", s.url("/api/v1/scans?" + window)).js()["total"], 3);
  EXPECT_EQ(request("GET", s.url("/api/v1/scans?since=" + std::to_string(after + 60000))).js()["total"], 0);
  EXPECT_EQ(request("GET", s.url("/api/v1/scans?until=2001-01-01T00:00:00Z")).js()["total"], 0);
  EXPECT_EQ(request("GET", s.url("/api/v1/scans?since=2001-01-01T00:00:00Z")).js()["total"], 3);
}

// Other settings or another model: the same bytes are scanned again; the
// history outlives the service.
TEST_F(History, ReuseOnlyWithTheSameModelAndSettings) {
  int64_t id = 0;
  {
    Service s({"--history", db()});
    id = upload(s.url("/api/v1/analyze"), media->face, "f.jpg").js()["scan_id"];
  }
  {
    Service s({"--history", db(), "--threshold", "0.3"});
    const json j = upload(s.url("/api/v1/analyze"), media->face, "f.jpg").js();
    EXPECT_EQ(j["cached"], false);
    EXPECT_NE(j["scan_id"], id);
  }
  {
    // Another precision scores the same bytes a little differently.
    Service s({"--history", db(), "--precision", "int8"});
    const json j = upload(s.url("/api/v1/analyze"), media->face, "f.jpg").js();
    EXPECT_EQ(j["cached"], false);
    EXPECT_NE(j["scan_id"], id);
    EXPECT_EQ(j["model"]["precision"], "int8") << j.dump();
  }
  Service s({"--history", db()});
  const json j = upload(s.url("/api/v1/analyze"), media->face, "f.jpg").js();
  EXPECT_EQ(j["cached"], true);
  EXPECT_EQ(j["scan_id"], id);
  EXPECT_EQ(j["model"]["precision"], "fp32") << j.dump();
  EXPECT_EQ(request("GET", s.url("/api/v1/scans")).js()["total"], 3);
}

TEST_F(History, HistoryOffAndDefaultLocation) {
  {
    Service s({"--history", "none"}, {{"XDG_DATA_HOME", dir_ + "/xdg"}});
    const Response r = request("GET", s.url("/api/v1/scans"));
    EXPECT_EQ(r.status, 404u);
    EXPECT_NE(r.js()["error"].get<std::string>().find("history is off"), std::string::npos) << r.body;
    const json j = upload(s.url("/api/v1/analyze"), media->noface, "n.png").js();
    EXPECT_FALSE(j.contains("cached"));
    EXPECT_EQ(request("GET", s.url("/healthz")).js()["history"], false);
  }
  EXPECT_FALSE(fs::exists(dir_ + "/xdg"));
  {
    Service s({}, {{"XDG_DATA_HOME", dir_ + "/xdg"}});
    ASSERT_EQ(upload(s.url("/predict_media"), media->noface, "n.png").status, 200u);
  }
  EXPECT_TRUE(fs::exists(dir_ + "/xdg/deepfakedetect/history.db"));
  {
    Service s({"--data-dir", dir_ + "/data"}, {{"DFD_HISTORY", ""}});
    ASSERT_EQ(upload(s.url("/predict_media"), media->noface, "n.png").status, 200u);
    EXPECT_EQ(request("GET", s.url("/api/v1/scans")).js()["total"], 1);
  }
  EXPECT_TRUE(fs::exists(dir_ + "/data/history.db"));
  {  // $DFD_HISTORY when no --history is given
    Service s({}, {{"DFD_HISTORY", "none"}, {"XDG_DATA_HOME", dir_ + "/xdg2"}});
    EXPECT_EQ(request("GET", s.url("/api/v1/scans")).status, 404u);
  }
  EXPECT_FALSE(fs::exists(dir_ + "/xdg2"));
}

TEST_F(History, BadHistoryStopsTheStartClearly) {
  auto [rc, err] = run_failing({"--history", "mysql://db/x"});
  EXPECT_EQ(rc, 1) << err;
  EXPECT_NE(err.find("unsupported URL scheme 'mysql'"), std::string::npos) << err;
  std::tie(rc, err) = run_failing({"--history", ""});
  EXPECT_EQ(rc, 2) << err;
  const std::string garbage(4096, 'g');
  test::write_file(dir_ + "/corrupt.db", garbage);
  std::tie(rc, err) = run_failing({"--history", dir_ + "/corrupt.db"});
  EXPECT_EQ(rc, 1) << err;
  EXPECT_NE(err.find("not a database"), std::string::npos) << err;
  EXPECT_EQ(test::read_file(dir_ + "/corrupt.db"), garbage);  // left as it was
  std::tie(rc, err) = run_failing(
      {"--history", "postgresql://nobody@127.0.0.1:" + std::to_string(dfd_test::free_port()) + "/history"});
  EXPECT_EQ(rc, 1) << err;
  EXPECT_NE(err.find("cannot connect to PostgreSQL"), std::string::npos) << err;
  test::write_file(dir_ + "/file", "x");  // a data directory that cannot be made
  std::tie(rc, err) = run_failing({"--data-dir", dir_ + "/file/sub"});
  EXPECT_EQ(rc, 1) << err;
  EXPECT_NE(err.find("cannot create the data directory"), std::string::npos) << err;
}

// The disk holding the history fills up: the scan is still answered, saying
// the history failed; nothing half-written; with room again, recording
// resumes. Needs a small tmpfs (mount, as root); skipped elsewhere.
TEST_F(History, FullDiskWhileRecording) {
  const std::string small = dir_ + "/small";
  fs::create_directory(small);
  if (mount("tmpfs", small.c_str(), "tmpfs", 0, "size=1m") != 0)
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root): " << strerror(errno);
  struct Unmount {
    std::string where;
    ~Unmount() { umount2(where.c_str(), MNT_DETACH); }
  } unmount{small};
  Service s({"--history", small + "/history.db"});
  ASSERT_EQ(upload(s.url("/predict_media"), media->noface, "room.png").status, 200u);
  {
    std::ofstream filler(small + "/filler", std::ios::binary);
    const std::string block(4096, 'z');
    while (filler.write(block.data(), block.size())) {
    }
  }
  const Response full = upload(s.url("/api/v1/analyze"), media->face, "full.jpg");
  ASSERT_EQ(full.status, 200u) << full.body;  // the analysis itself succeeded
  const json j = full.js();
  EXPECT_FALSE(j.contains("scan_id")) << full.body;
  ASSERT_TRUE(j.contains("history_error")) << full.body;
  EXPECT_NE(j["history_error"].get<std::string>().find("full"), std::string::npos) << full.body;
  fs::remove(small + "/filler");
  const json list = request("GET", s.url("/api/v1/scans")).js();
  EXPECT_EQ(list["total"], 1);  // nothing half-written
  const json again = upload(s.url("/api/v1/analyze"), media->face, "room-again.jpg").js();
  EXPECT_EQ(again["cached"], false);
  EXPECT_TRUE(again.contains("scan_id"));
  EXPECT_EQ(request("GET", s.url("/api/v1/scans")).js()["total"], 2);
}

// A fleet's history: two services on one PostgreSQL database share results;
// with the database gone, scans are still answered and the API says 503.
TEST_F(History, PostgresSharedByTwoServices) {
  dfd_test::PostgresServer pg;
  if (!pg.unavailable().empty()) GTEST_SKIP() << pg.unavailable();
  ASSERT_TRUE(pg.start()) << pg.error();
  Service first({"--history", pg.url()});
  Service second({"--history", pg.url()});
  const json a = upload(first.url("/api/v1/analyze"), media->face, "shared.jpg").js();
  EXPECT_EQ(a["cached"], false);
  const json b = upload(second.url("/api/v1/analyze"), media->face, "shared.jpg").js();
  EXPECT_EQ(b["cached"], true);
  EXPECT_EQ(b["scan_id"], a["scan_id"]);
  const json list = request("GET", second.url("/api/v1/scans")).js();
  EXPECT_EQ(list["total"], 1);
  EXPECT_EQ(list["scans"][0]["source"], "shared.jpg");
  pg.stop();
  const Response down = request("GET", first.url("/api/v1/scans"));
  EXPECT_EQ(down.status, 503u) << down.body;
  const Response scan = upload(first.url("/api/v1/analyze"), media->noface, "while-down.png");
  ASSERT_EQ(scan.status, 200u) << scan.body;
  EXPECT_TRUE(scan.js().contains("history_error")) << scan.body;
  ASSERT_TRUE(pg.start()) << pg.error();
  const Response back = request("GET", first.url("/api/v1/scans"));
  ASSERT_EQ(back.status, 200u) << back.body;
  EXPECT_EQ(back.js()["total"], 1);
}
