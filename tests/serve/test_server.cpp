// deepfake-serve over HTTP on an ephemeral loopback port, driven by a
// libsoup client: the original API's /predict_media round trip, the analysis
// API, every rejected input (status and JSON error, and the server still
// answers afterwards), the private upload directory, concurrency, 503 when
// saturated and 504 past the time limit. The server is the real binary
// (DFD_SERVE_BIN), started as a subprocess.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <gtest/gtest.h>
#include <libsoup/soup.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utime.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <set>
#include <thread>

#include "serve_test_util.h"

using nlohmann::json;
namespace test = dfd::test;

namespace {

struct Response {
  guint status = 0;
  std::string body;
  std::string content_type;
  std::map<std::string, std::string> headers;
  json js() const { return json::parse(body); }
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

// One deepfake-serve process.
class ServerProcess {
 public:
  // `tmpdir`: the server's TMPDIR (default: a new one, removed with this object).
  ServerProcess(std::vector<std::string> args, std::map<std::string, std::string> env = {},
                const std::string& tmpdir = "") {
    if (tmpdir.empty()) {
      gchar* d = g_dir_make_tmp("dfd-serve-http-XXXXXX", nullptr);
      tmp_ = d;
      g_free(d);
      own_tmp_ = true;
    } else {
      tmp_ = tmpdir;
    }
    GSubprocessLauncher* l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
    g_subprocess_launcher_setenv(l, "TMPDIR", tmp_.c_str(), TRUE);
    for (auto& [k, v] : env) g_subprocess_launcher_setenv(l, k.c_str(), v.c_str(), TRUE);
    std::vector<const char*> argv = {bin().c_str(), "--port", "0", "--bind", "127.0.0.1", "--window-size", "4"};
    const std::string model = test::env_or("DFD_SERVE_MODEL");
    if (!model.empty()) {
      argv.push_back("--model");
      argv.push_back(model.c_str());
    }
    for (auto& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    GError* err = nullptr;
    proc_ = g_subprocess_launcher_spawnv(l, argv.data(), &err);
    g_object_unref(l);
    if (!proc_) throw std::runtime_error(std::string("cannot start deepfake-serve: ") + err->message);
    GDataInputStream* out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(proc_));
    gchar* line = g_data_input_stream_read_line(out, nullptr, nullptr, &err);
    g_object_unref(out);
    if (!line) throw std::runtime_error("deepfake-serve printed nothing (did it start?)");
    const std::string s = line;
    g_free(line);
    std::smatch m;
    if (!std::regex_match(s, m, std::regex("listening on (http://127\\.0\\.0\\.1:([0-9]+))")))
      throw std::runtime_error("unexpected first line: " + s);
    url_ = m[1];
    port_ = std::stoi(m[2]);
  }
  ~ServerProcess() {
    stop();
    g_object_unref(proc_);
    if (own_tmp_) g_rmdir(tmp_.c_str());
  }
  // SIGKILL: a crash, nothing cleaned up.
  void kill() {
    if (stopped_) return;
    stopped_ = true;
    g_subprocess_force_exit(proc_);
    g_subprocess_wait(proc_, nullptr, nullptr);
  }
  int pid() const { return std::atoi(g_subprocess_get_identifier(proc_)); }
  // Open file descriptors of the server process.
  int fd_count() const {
    int n = 0;
    if (GDir* d = g_dir_open(("/proc/" + std::to_string(pid()) + "/fd").c_str(), 0, nullptr)) {
      while (g_dir_read_name(d)) ++n;
      g_dir_close(d);
    }
    return n;
  }
  // SIGTERM and wait; true when it exited 0.
  bool stop() {
    if (stopped_) return exit_ok_;
    stopped_ = true;
    g_subprocess_send_signal(proc_, SIGTERM);
    g_subprocess_wait(proc_, nullptr, nullptr);
    exit_ok_ = g_subprocess_get_if_exited(proc_) && g_subprocess_get_exit_status(proc_) == 0;
    return exit_ok_;
  }
  const std::string& url() const { return url_; }
  int port() const { return port_; }
  const std::string& tmp() const { return tmp_; }
  // Entries of TMPDIR and of the server's private directory inside it.
  std::vector<std::string> private_dirs() const { return list(tmp_); }
  // Files in the private directory, but its lock file (.lock, held while the server lives).
  std::vector<std::string> private_files() const {
    std::vector<std::string> all;
    for (auto& d : list(tmp_))
      for (auto& f : list(tmp_ + "/" + d))
        if (f != ".lock") all.push_back(d + "/" + f);
    return all;
  }
  static const std::string& bin() {
    static const std::string b = test::env_or("DFD_SERVE_BIN", "build/tools/deepfake-serve");
    return b;
  }

 private:
  static std::vector<std::string> list(const std::string& dir) {
    std::vector<std::string> out;
    if (GDir* d = g_dir_open(dir.c_str(), 0, nullptr)) {
      while (const gchar* n = g_dir_read_name(d)) out.push_back(n);
      g_dir_close(d);
    }
    return out;
  }
  GSubprocess* proc_ = nullptr;
  std::string tmp_, url_;
  int port_ = 0;
  bool stopped_ = false, exit_ok_ = false, own_tmp_ = false;
};

// A blocking HTTP client (one session per thread).
class Client {
 public:
  Client() : session_(soup_session_new()) { g_object_set(session_, "timeout", 300u, nullptr); }
  ~Client() { g_object_unref(session_); }

  Response send(SoupMessage* msg) {
    GError* err = nullptr;
    GBytes* body = soup_session_send_and_read(session_, msg, nullptr, &err);
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
    SoupMessageHeaders* h = soup_message_get_response_headers(msg);
    if (const char* ct = soup_message_headers_get_content_type(h, nullptr)) r.content_type = ct;
    SoupMessageHeadersIter it;
    const char *name, *value;
    soup_message_headers_iter_init(&it, h);
    while (soup_message_headers_iter_next(&it, &name, &value)) {
      gchar* lower = g_ascii_strdown(name, -1);
      r.headers[lower] = value;
      g_free(lower);
    }
    g_object_unref(msg);
    return r;
  }

  Response get(const std::string& url, const char* method = "GET") {
    return send(soup_message_new(method, url.c_str()));
  }

  // multipart/form-data with one file part named `field`.
  Response upload(const std::string& url, const std::string& bytes, const std::string& field = "file",
                  const std::string& filename = "upload.bin", bool expect_continue = false) {
    SoupMultipart* mp = soup_multipart_new(SOUP_FORM_MIME_TYPE_MULTIPART);
    GBytes* b = g_bytes_new(bytes.data(), bytes.size());
    soup_multipart_append_form_file(mp, field.c_str(), filename.c_str(), "application/octet-stream", b);
    g_bytes_unref(b);
    SoupMessage* msg = soup_message_new_from_multipart(url.c_str(), mp);
    soup_multipart_free(mp);
    if (expect_continue)
      soup_message_headers_set_expectations(soup_message_get_request_headers(msg), SOUP_EXPECTATION_CONTINUE);
    return send(msg);
  }

  // A body of unknown length (chunked transfer encoding).
  Response upload_chunked(const std::string& url, const std::string& bytes) {
    const std::string boundary = "dfdtestboundary";
    std::string body = "--" + boundary +
                       "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
                       "Content-Type: application/octet-stream\r\n\r\n" +
                       bytes + "\r\n--" + boundary + "--\r\n";
    GBytes* b = g_bytes_new(body.data(), body.size());
    GInputStream* in = g_memory_input_stream_new_from_bytes(b);
    g_bytes_unref(b);
    SoupMessage* msg = soup_message_new("POST", url.c_str());
    const std::string ct = "multipart/form-data; boundary=" + boundary;
    soup_message_set_request_body(msg, ct.c_str(), in, -1);
    g_object_unref(in);
    return send(msg);
  }

  Response post_raw(const std::string& url, const std::string& content_type, const std::string& bytes) {
    SoupMessage* msg = soup_message_new("POST", url.c_str());
    GBytes* b = g_bytes_new(bytes.data(), bytes.size());
    soup_message_set_request_body_from_bytes(msg, content_type.c_str(), b);
    g_bytes_unref(b);
    return send(msg);
  }

 private:
  SoupSession* session_;
};

struct Files {
  std::string clip, face, noface, truncated_clip;
};
Files* files = nullptr;

std::string random_bytes(size_t n) {
  std::string s(n, '\0');
  guint32 x = 12345;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = char(x >> 24);
  }
  return s;
}

bool is_png_of(const std::string& bytes, int side) {
  std::vector<uint8_t> buf(bytes.begin(), bytes.end());
  if (buf.size() < 8 || buf[1] != 'P' || buf[2] != 'N' || buf[3] != 'G') return false;
  cv::Mat m = cv::imdecode(buf, cv::IMREAD_COLOR);
  return !m.empty() && m.cols == side && m.rows == side;
}

std::string b64decode(const std::string& s) {
  gsize n = 0;
  guchar* d = g_base64_decode(s.c_str(), &n);
  std::string out(reinterpret_cast<char*>(d), n);
  g_free(d);
  return out;
}

// A JSON error body: {"error": "...", "status": N}.
void expect_json_error(const Response& r, guint status) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.content_type, "application/json") << r.body;
  json j;
  ASSERT_NO_THROW(j = r.js()) << r.body;
  ASSERT_TRUE(j.contains("error")) << r.body;
  EXPECT_TRUE(j["error"].is_string());
  EXPECT_FALSE(j["error"].get<std::string>().empty());
  EXPECT_EQ(j["status"], status);
}

void expect_alive(Client& c, const ServerProcess& s) {
  const Response h = c.get(s.url() + "/healthz");
  EXPECT_EQ(h.status, 200u) << h.body;
}

class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    files = new Files;
    gchar* d = g_dir_make_tmp("dfd-serve-media-XXXXXX", nullptr);
    dir_ = d;
    g_free(d);
    test::make_clip(dir_ + "/clip.avi", 12);
    test::make_face_jpeg(dir_ + "/face.jpg");
    test::make_noface_png(dir_ + "/noface.png");
    files->clip = test::read_file(dir_ + "/clip.avi");
    files->face = test::read_file(dir_ + "/face.jpg");
    files->noface = test::read_file(dir_ + "/noface.png");
    files->truncated_clip = files->clip.substr(0, 3000);
    for (const char* f : {"clip.avi", "face.jpg", "noface.png"}) g_remove((dir_ + "/" + f).c_str());
    g_rmdir(dir_.c_str());
    server_ = new ServerProcess({"--max-upload-mb", "1", "--max-concurrent", "2", "--preroll-timeout-s", "3"});
  }
  static void TearDownTestSuite() {
    delete server_;
    delete files;
  }
  static std::string dir_;
  static ServerProcess* server_;
  Client client;
};
std::string Serve::dir_;
ServerProcess* Serve::server_ = nullptr;

}  // namespace

TEST_F(Serve, HealthAndUploadPage) {
  const Response h = client.get(server_->url() + "/healthz");
  ASSERT_EQ(h.status, 200u);
  const json j = h.js();
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["model"]["trained"], false);
  EXPECT_FALSE(j["model"]["notice"].get<std::string>().empty());
  EXPECT_EQ(j["max_upload_bytes"], 1u << 20);
  const Response page = client.get(server_->url() + "/");
  EXPECT_EQ(page.status, 200u);
  EXPECT_EQ(page.content_type, "text/html");
  EXPECT_NE(page.body.find("<form id=\"upload\""), std::string::npos);
  EXPECT_NE(page.body.find("/api/v1/analyze?format=html"), std::string::npos);
  EXPECT_EQ(page.body.find("https://"), std::string::npos);  // nothing external
  expect_json_error(client.get(server_->url() + "/nothing-here"), 404);
}

TEST_F(Serve, PredictMediaRoundTrip) {
  const auto t0 = std::chrono::steady_clock::now();
  const Response r = client.upload(server_->url() + "/predict_media", files->clip, "file", "clip.avi");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("predict_media, 12-frame 256x256 clip, window 4: %.3f s\n", secs);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  const json j = r.js();
  // Exactly the original response's fields, all strings.
  ASSERT_TRUE(j.is_object());
  std::set<std::string> keys;
  for (auto& [k, v] : j.items()) keys.insert(k);
  EXPECT_EQ(keys, (std::set<std::string>{"label", "confidence", "img"}));
  ASSERT_TRUE(j["label"].is_string());
  ASSERT_TRUE(j["confidence"].is_string());
  ASSERT_TRUE(j["img"].is_string());
  const std::string label = j["label"], conf = j["confidence"], img = j["img"];
  EXPECT_TRUE(label == "REAL" || label == "FAKE") << label;
  EXPECT_TRUE(std::regex_match(conf, std::regex("[0-9]{1,3}\\.[0-9]{4}"))) << conf;
  const double c = std::stod(conf);
  EXPECT_GE(c, 50.0);  // the winning class's probability
  EXPECT_LE(c, 100.0);
  EXPECT_TRUE(is_png_of(b64decode(img), 224));

  // The same file through the analysis API: the same verdict and confidence.
  const Response a = client.upload(server_->url() + "/api/v1/analyze", files->clip, "file", "clip.avi");
  ASSERT_EQ(a.status, 200u) << a.body;
  const json rep = a.js();
  EXPECT_EQ(rep["verdict"], label);
  const double p = rep["fake_probability"];
  EXPECT_NEAR(c, label == "FAKE" ? 100 * p : 100 * (1 - p), 1e-3);
}

TEST_F(Serve, PredictMediaImages) {
  const Response face = client.upload(server_->url() + "/predict_media", files->face, "file", "face.jpg");
  ASSERT_EQ(face.status, 200u) << face.body;
  const json f = face.js();
  EXPECT_TRUE(f["label"] == "REAL" || f["label"] == "FAKE") << face.body;
  EXPECT_TRUE(is_png_of(b64decode(f["img"]), 224));
  // No face: the original's exact answer, HTTP 200.
  const Response none = client.upload(server_->url() + "/predict_media", files->noface, "file", "noface.png");
  EXPECT_EQ(none.status, 200u);
  EXPECT_EQ(none.js(), json::parse(R"({"label":"No Face Detected","confidence":"0.00","img":""})"));
}

TEST_F(Serve, AnalyzeJsonAndHtml) {
  const Response a = client.upload(server_->url() + "/api/v1/analyze", files->clip, "file", "../../etc/clip.avi");
  ASSERT_EQ(a.status, 200u) << a.body;
  const json j = a.js();
  for (const char* k : {"source", "model", "verdict", "fake_probability", "tracks", "stats", "model_card", "images"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["source"], "clip.avi");  // the client's name, for display only, without directories
  EXPECT_EQ(j["model"]["trained"], false);
  EXPECT_EQ(j["model_card"]["trained"], false);
  ASSERT_EQ(j["tracks"].size(), 1u);
  EXPECT_EQ(j["tracks"][0]["frames"].size(), 12u);
  EXPECT_EQ(j["tracks"][0]["windows"].size(), 3u);
  ASSERT_EQ(j["images"].size(), 3u);
  for (const auto& im : j["images"]) {
    EXPECT_TRUE(is_png_of(b64decode(im["heatmap_png"]), 224));
    EXPECT_TRUE(is_png_of(b64decode(im["crop_png"]), 224));
  }
  const Response h =
      client.upload(server_->url() + "/api/v1/analyze?format=html", files->clip, "file", "<b>clip</b>.avi");
  ASSERT_EQ(h.status, 200u) << h.body.substr(0, 300);
  EXPECT_EQ(h.content_type, "text/html");
  EXPECT_NE(h.body.find("class=\"chart\""), std::string::npos);
  EXPECT_NE(h.body.find("class=\"frame-point\""), std::string::npos);
  EXPECT_NE(h.body.find("class=\"heatmap\" alt=\"class activation heatmap"), std::string::npos);
  EXPECT_NE(h.body.find("data:image/png;base64,"), std::string::npos);
  EXPECT_NE(h.body.find("id=\"untrained-warning\""), std::string::npos);
  EXPECT_EQ(h.body.find("<b>clip</b>"), std::string::npos);  // escaped
  EXPECT_NE(h.header("content-security-policy").find("default-src 'none'"), std::string::npos);
  expect_json_error(client.upload(server_->url() + "/api/v1/analyze?format=xml", files->clip), 400);
}

TEST_F(Serve, RejectedInputs) {
  const std::string predict = server_->url() + "/predict_media";
  // Over the cap (1 MiB here): with a Content-Length, without one (chunked) and
  // with "Expect: 100-continue" (the body is never sent).
  const std::string big = random_bytes((1u << 20) + 200000);
  expect_json_error(client.upload(predict, big), 413);
  expect_alive(client, *server_);
  expect_json_error(client.upload_chunked(predict, big), 413);
  expect_alive(client, *server_);
  expect_json_error(client.upload(predict, big, "file", "big.bin", true), 413);
  expect_alive(client, *server_);
  // A file part just over the cap but a body within the multipart slack.
  expect_json_error(client.upload(predict, random_bytes((1u << 20) + 10)), 413);
  // Empty file.
  expect_json_error(client.upload(predict, ""), 400);
  expect_alive(client, *server_);
  // Truncated video: typed as AVI by its content, but no frame decodes.
  expect_json_error(client.upload(predict, files->truncated_clip, "file", "clip.avi"), 422);
  expect_alive(client, *server_);
  // Not media, whatever its name says.
  expect_json_error(client.upload(predict, "<html><body>hello</body></html>\n", "file", "video.mp4"), 415);
  expect_json_error(client.upload(predict, random_bytes(5000), "file", "video.avi"), 415);
  expect_alive(client, *server_);
  // Missing field, not multipart at all, malformed multipart.
  expect_json_error(client.upload(predict, files->face, "image", "face.jpg"), 400);
  expect_json_error(client.post_raw(predict, "image/jpeg", files->face), 400);
  expect_json_error(client.post_raw(predict, "multipart/form-data; boundary=xyz", "garbage"), 400);
  expect_alive(client, *server_);
  // Wrong methods.
  const Response g = client.get(predict);
  expect_json_error(g, 405);
  EXPECT_EQ(g.header("allow"), "POST");
  expect_json_error(client.get(server_->url() + "/api/v1/analyze", "PUT"), 405);
  expect_json_error(client.post_raw(server_->url() + "/healthz", "text/plain", "x"), 405);
  // Bodies to other paths are capped too.
  expect_json_error(client.post_raw(server_->url() + "/", "text/plain", random_bytes(200000)), 413);
  expect_alive(client, *server_);
  // Still serving real work.
  EXPECT_EQ(client.upload(predict, files->face, "file", "face.jpg").status, 200u);
}

TEST_F(Serve, UploadsStayInAPrivateDirectoryAndAreRemoved) {
  // One private directory (0700) in TMPDIR, empty between requests.
  const auto dirs = server_->private_dirs();
  ASSERT_EQ(dirs.size(), 1u);
  EXPECT_EQ(dirs[0].rfind("deepfake-serve-", 0), 0u);
  GStatBuf st;
  ASSERT_EQ(g_stat((server_->tmp() + "/" + dirs[0]).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(client.upload(server_->url() + "/predict_media", files->face, "file", "../../evil.jpg").status, 200u);
  expect_json_error(client.upload(server_->url() + "/predict_media", "not media at all", "file", "x.mp4"), 415);
  EXPECT_TRUE(server_->private_files().empty());
}

TEST_F(Serve, ConcurrentRequestsAndTheServerKeepsAnswering) {
  std::vector<Response> results(2);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i)
    threads.emplace_back([&, i] {
      Client c;
      results[size_t(i)] = c.upload(server_->url() + "/api/v1/analyze", files->clip, "file", "clip.avi");
    });
  // While both analyses run, health checks are answered at once.
  double worst = 0;
  for (int k = 0; k < 5; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    expect_alive(client, *server_);
    worst = std::max(worst, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& t : threads) t.join();
  std::printf("healthz during two analyses: worst %.1f ms\n", worst * 1e3);
  EXPECT_LT(worst, 2.0);
  ASSERT_EQ(results[0].status, 200u) << results[0].body;
  ASSERT_EQ(results[1].status, 200u) << results[1].body;
  // Same file, same model: same numbers.
  EXPECT_EQ(results[0].js()["tracks"], results[1].js()["tracks"]);
}

TEST(ServeLimits, BusyGives503AndSlowGives504) {
  // A clip far longer than the limit allows (600 frames, each with a face,
  // against 1 s), one analysis at a time.
  ServerProcess s({"--max-concurrent", "1", "--timeout-s", "1"});
  gchar* d = g_dir_make_tmp("dfd-serve-limits-XXXXXX", nullptr);
  const std::string path = std::string(d) + "/clip.avi";
  test::make_clip(path, 600);
  const std::string clip = test::read_file(path);
  g_remove(path.c_str());
  g_rmdir(d);
  g_free(d);
  Response slow;
  std::thread t([&] {
    Client c;
    slow = c.upload(s.url() + "/predict_media", clip, "file", "clip.avi");
  });
  Client client;
  // Wait until the first one is running.
  bool busy = false;
  for (int i = 0; i < 200 && !busy; ++i) {
    const Response h = client.get(s.url() + "/healthz");
    busy = h.status == 200 && h.js()["busy"] == 1;
    if (!busy) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(busy);
  const Response r = client.upload(s.url() + "/predict_media", clip, "file", "clip2.avi");
  expect_json_error(r, 503);
  EXPECT_FALSE(r.header("retry-after").empty());
  t.join();
  // 600 frames take far more than 1 s: the first one ran out of time.
  expect_json_error(slow, 504);
  expect_alive(client, s);
  // The slot is free again once the analysis has stopped.
  bool idle = false;
  for (int i = 0; i < 300 && !idle; ++i) {
    idle = client.get(s.url() + "/healthz").js()["busy"] == 0;
    if (!idle) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(idle);
  EXPECT_TRUE(s.private_files().empty());
  EXPECT_TRUE(s.stop());
  EXPECT_TRUE(s.private_dirs().empty());  // the private directory is gone with the server
}

TEST(ServeLimits, BadCommandLineAndModel) {
  auto run = [](std::vector<const char*> args) {
    args.insert(args.begin(), ServerProcess::bin().c_str());
    args.push_back(nullptr);
    GError* err = nullptr;
    GSubprocess* p = g_subprocess_newv(args.data(), GSubprocessFlags(G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                                                     G_SUBPROCESS_FLAGS_STDERR_SILENCE),
                                       &err);
    if (!p) return -1;
    g_subprocess_wait(p, nullptr, nullptr);
    const int rc = g_subprocess_get_exit_status(p);
    g_object_unref(p);
    return rc;
  };
  EXPECT_EQ(run({"--port", "abc"}), 2);
  EXPECT_EQ(run({"--max-concurrent", "0"}), 2);
  EXPECT_EQ(run({"--frobnicate", "1"}), 2);
  EXPECT_EQ(run({"--port", "0", "--model", "/nonexistent/model.safetensors"}), 1);
  EXPECT_EQ(run({"--port", "0", "--bind", "localhost", "--model", test::env_or("DFD_SERVE_MODEL").c_str()}), 1);
}

// ------------------------------------------------------- hostile clients
//
// Raw TCP connections to the server on 127.0.0.1, for what a well-behaved
// HTTP client never does: stall, trickle, lie about sizes, hang up.

namespace {

std::string files_face_jpeg() {
  gchar* d = g_dir_make_tmp("dfd-serve-face-XXXXXX", nullptr);
  const std::string path = std::string(d) + "/face.jpg";
  test::make_face_jpeg(path);
  const std::string bytes = test::read_file(path);
  g_remove(path.c_str());
  g_rmdir(d);
  g_free(d);
  return bytes;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class RawConn {
 public:
  explicit RawConn(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
    fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  ~RawConn() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Sends what the socket takes now; false once the server has closed or reset.
  bool send_some(const std::string& bytes, size_t* sent = nullptr) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent) *sent = n > 0 ? size_t(n) : 0;
    return n >= 0 || errno == EAGAIN || errno == EWOULDBLOCK;
  }
  // Reads what arrives for up to `secs`; returns early when the server closes.
  void read_for(double secs) {
    const auto t0 = std::chrono::steady_clock::now();
    while (!closed_ && seconds_since(t0) < secs) {
      pollfd p{fd_, POLLIN, 0};
      const int left_ms = std::max(1, int((secs - seconds_since(t0)) * 1000));
      if (poll(&p, 1, std::min(left_ms, 50)) <= 0) continue;
      read_now();
    }
  }
  void read_now() {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        received_.append(buf, size_t(n));
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) closed_ = true;
      return;
    }
  }
  bool closed() const { return closed_; }
  const std::string& received() const { return received_; }
  int status() const {  // of the response received, 0 if none
    std::smatch m;
    return std::regex_search(received_, m, std::regex("^HTTP/1\\.[01] ([0-9]{3})")) ? std::stoi(m[1]) : 0;
  }

 private:
  int fd_ = -1;
  bool closed_ = false;
  std::string received_;
};

std::string upload_headers(const std::string& path, const std::string& length_header) {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n" +
         length_header + "\r\n";
}

// Sockets of the server's port in CLOSE-WAIT (the client has gone, the server
// has not closed its end), from /proc/net/tcp{,6}.
int close_wait_sockets(int port) {
  int n = 0;
  char want[8];
  std::snprintf(want, sizeof want, ":%04X", port);
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream f(table);
    std::string line;
    std::getline(f, line);
    while (std::getline(f, line)) {
      std::istringstream ls(line);
      std::string sl, local, remote, st;
      ls >> sl >> local >> remote >> st;
      if (local.size() > 5 && local.substr(local.size() - 5) == want && st == "08") ++n;
    }
  }
  return n;
}

json health(Client& c, const ServerProcess& s) {
  const Response h = c.get(s.url() + "/healthz");
  return h.status == 200 ? h.js() : json();
}

// Waits (up to `secs`) until the server holds no connection but the asking one.
bool settles(Client& c, const ServerProcess& s, double secs = 10) {
  const auto t0 = std::chrono::steady_clock::now();
  while (seconds_since(t0) < secs) {
    const json h = health(c, s);
    if (h.is_object() && h["connections"] == 1) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace

// Item 8: a connection that trickles its headers (or sends none, or stalls in
// its body) is answered 408 and closed after --header-timeout-s /
// --body-timeout-s. Before: it stayed open indefinitely.
TEST(ServeHostile, SlowHeadersAndBodiesAreCutOff) {
  ServerProcess s({"--header-timeout-s", "1", "--body-timeout-s", "1.5"});
  Client client;
  auto t0 = std::chrono::steady_clock::now();
  RawConn trickle(s.port()), idle(s.port()), body(s.port());
  ASSERT_TRUE(body.send_some(upload_headers("/predict_media", "Content-Length: 100000\r\n") + "--x\r\n"));
  const std::string request = "POST /predict_media HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
  size_t i = 0;
  while (!trickle.closed() && seconds_since(t0) < 5) {
    trickle.send_some(std::string(1, request[i++ % request.size()]));  // a byte every 100 ms
    trickle.read_for(0.1);
  }
  const double cut = seconds_since(t0);
  std::printf("trickled headers: closed after %.2f s, answer %d\n", cut, trickle.status());
  EXPECT_TRUE(trickle.closed());
  EXPECT_LT(cut, 3.0);
  EXPECT_EQ(trickle.status(), 408);
  idle.read_for(3.0 - seconds_since(t0));
  EXPECT_TRUE(idle.closed()) << "a connection that sent nothing is still open";
  body.read_for(4.0 - seconds_since(t0));
  EXPECT_TRUE(body.closed()) << "a stalled body is still being waited for";
  EXPECT_EQ(body.status(), 408) << body.received();
  // The server is fine and holds nothing for them.
  EXPECT_TRUE(settles(client, s));
  const json h = health(client, s);
  EXPECT_GE(h["timed_out_requests"].get<int>(), 3);
  EXPECT_EQ(h["header_timeout_s"], 1.0);
}

// Item 8: at most --max-connections-per-client connections from one address;
// more are answered 503 and closed at once. Before: 200 connections sending
// a header byte a second all stayed open (only the fd limit bounded them).
TEST(ServeHostile, ConnectionsPerClientAreLimited) {
  ServerProcess s({"--max-connections-per-client", "4", "--header-timeout-s", "30"});
  Client client;
  std::vector<std::unique_ptr<RawConn>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<RawConn>(s.port()));
    held.back()->send_some("G");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // accepted by now
  std::vector<std::unique_ptr<RawConn>> extra;
  for (int i = 0; i < 40; ++i) {
    extra.push_back(std::make_unique<RawConn>(s.port()));
    extra.back()->send_some("G");
  }
  int refused = 0, answered_503 = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& c : extra) {
    c->read_for(std::max(0.05, 3.0 - seconds_since(t0)));
    refused += c->closed();
    answered_503 += c->status() == 503;
  }
  std::printf("40 connections over the limit of 4: %d closed, %d answered 503\n", refused, answered_503);
  EXPECT_EQ(refused, 40);
  EXPECT_GE(answered_503, 30);  // a few may see a reset instead of the answer
  for (auto& c : held) {
    c->read_now();
    EXPECT_FALSE(c->closed()) << "a connection within the limit was closed";
  }
  held.clear();
  extra.clear();
  EXPECT_TRUE(settles(client, s));  // room again once they are gone
  const json h = health(client, s);
  EXPECT_GE(h["refused_connections"].get<int>(), 40);
  EXPECT_EQ(h["max_connections_per_client"], 4);
}

// Item 9: a Content-Length over the cap is answered 413 as soon as the
// headers are read, without "Expect: 100-continue", and the connection is
// closed; the body is never read. The same for a chunked body once it passes
// the cap. Before: the server read the whole declared body (10^12 bytes)
// before answering.
TEST(ServeHostile, OversizeBodiesAreAnsweredAtOnce) {
  ServerProcess s({"--max-upload-mb", "1"});
  Client client;
  const std::string junk(64 * 1024, 'j');
  for (const char* path : {"/predict_media", "/api/v1/analyze", "/healthz"}) {
    RawConn c(s.port());
    ASSERT_TRUE(c.send_some(upload_headers(path, "Content-Length: 1000000000000\r\n")));
    const auto t0 = std::chrono::steady_clock::now();
    size_t sent_total = 0;
    while (!c.closed() && c.status() == 0 && seconds_since(t0) < 5) {
      size_t sent = 0;
      if (!c.send_some(junk, &sent)) break;  // the server closed
      sent_total += sent;
      c.read_for(0.02);
    }
    c.read_for(0.5);
    const double secs = seconds_since(t0);
    std::printf("%s, Content-Length 10^12: %d after %.2f s (%zu body bytes sent)\n", path, c.status(), secs, sent_total);
    EXPECT_EQ(c.status(), 413) << path << ": " << c.received().substr(0, 200);
    EXPECT_LT(secs, 2.0) << path;
    EXPECT_NE(c.received().find("\"status\":413"), std::string::npos) << c.received();
    EXPECT_TRUE(c.closed()) << path;
  }
  {  // chunked, endless
    RawConn c(s.port());
    ASSERT_TRUE(c.send_some(upload_headers("/predict_media", "Transfer-Encoding: chunked\r\n")));
    char head[32];
    std::snprintf(head, sizeof head, "%zx\r\n", junk.size());
    const std::string chunk = head + junk + "\r\n";
    const auto t0 = std::chrono::steady_clock::now();
    while (!c.closed() && c.status() == 0 && seconds_since(t0) < 8) {
      if (!c.send_some(chunk)) break;
      c.read_for(0.01);
    }
    c.read_for(0.5);
    std::printf("endless chunked body: %d after %.2f s\n", c.status(), seconds_since(t0));
    EXPECT_EQ(c.status(), 413) << c.received().substr(0, 200);
    EXPECT_LT(seconds_since(t0), 4.0);
  }
  expect_alive(client, s);
  EXPECT_TRUE(settles(client, s));
}

// Item 10: after every kind of abuse (over-size, truncated, trickled and
// abandoned requests, refused media, clients that hang up mid-analysis) the
// server holds no socket in CLOSE-WAIT and no more descriptors than before.
TEST(ServeHostile, NoSocketIsLeftBehind) {
  ServerProcess s({"--max-upload-mb", "1", "--header-timeout-s", "1", "--body-timeout-s", "1",
                   "--preroll-timeout-s", "3"});
  Client client;
  gchar* d = g_dir_make_tmp("dfd-serve-leak-XXXXXX", nullptr);
  const std::string clip_path = std::string(d) + "/clip.avi";
  test::make_clip(clip_path, 12);
  const std::string clip = test::read_file(clip_path);
  g_remove(clip_path.c_str());
  g_rmdir(d);
  g_free(d);
  auto multipart = [](const std::string& file) {
    return "--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.avi\"\r\n"
           "Content-Type: application/octet-stream\r\n\r\n" + file + "\r\n--x--\r\n";
  };
  auto abuse = [&] {
    std::vector<std::unique_ptr<RawConn>> conns;
    auto open = [&](const std::string& bytes) {
      conns.push_back(std::make_unique<RawConn>(s.port()));
      conns.back()->send_some(bytes);
      return conns.back().get();
    };
    // Over-size, answered early; the client hangs up at once or reads the answer.
    open(upload_headers("/predict_media", "Content-Length: 1000000000000\r\n"))->close();
    open(upload_headers("/predict_media", "Content-Length: 1000000000000\r\nExpect: 100-continue\r\n"))->read_for(1);
    // Truncated body, then gone; truncated headers, then gone.
    open(upload_headers("/predict_media", "Content-Length: 100000\r\n") + "--x\r\n")->close();
    open("POST /predict_media HTTP/1.1\r\nHost: 1")->close();
    // Trickled headers and a stalled body, left to the time-outs.
    open("POST /predict_media HTTP/1.1\r\n");
    open(upload_headers("/api/v1/analyze", "Content-Length: 5000\r\n"));
    // Garbage, and a refused upload (not media), read to the end.
    open("\x16\x03\x01\x02\x00garbage\r\n\r\n")->read_for(1);
    const std::string text = multipart("not a video at all");
    open(upload_headers("/predict_media", "Content-Length: " + std::to_string(text.size()) + "\r\n") + text)->read_for(3);
    // A client that hangs up while its clip is being analysed, and a
    // truncated clip (a 422 after the pre-roll limit) whose client does not wait.
    const std::string body = multipart(clip);
    open(upload_headers("/predict_media", "Content-Length: " + std::to_string(body.size()) + "\r\n") + body);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    conns.back()->close();
    const std::string cut = multipart(clip.substr(0, 3000));
    open(upload_headers("/predict_media", "Content-Length: " + std::to_string(cut.size()) + "\r\n") + cut)->close();
    // An upload read to its end: the analysis answered normally.
    open(upload_headers("/predict_media", "Content-Length: " + std::to_string(body.size()) + "\r\n") + body)->read_for(20);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // past the time-outs
    conns.clear();
  };
  abuse();  // the first round opens what the process keeps (plugins, model threads, ...)
  ASSERT_TRUE(settles(client, s, 15));
  std::this_thread::sleep_for(std::chrono::seconds(4));  // the truncated clip's analysis ends (pre-roll 3 s)
  ASSERT_TRUE(settles(client, s, 15));
  const int fds_before = s.fd_count();
  for (int round = 0; round < 3; ++round) abuse();
  const bool settled = settles(client, s, 15);
  std::this_thread::sleep_for(std::chrono::seconds(4));
  EXPECT_TRUE(settled && settles(client, s, 15)) << health(client, s).dump();
  // A connection whose last deadline is still running closes when it expires:
  // wait for that (bounded, 30 s); a leaked socket stays and fails below.
  int fds_after = s.fd_count(), close_wait = close_wait_sockets(s.port());
  for (int i = 0; i < 60 && (close_wait > 0 || fds_after > fds_before); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    fds_after = s.fd_count();
    close_wait = close_wait_sockets(s.port());
  }
  std::printf("server fds: %d before three rounds of abuse, %d after; %d sockets in CLOSE-WAIT\n", fds_before,
              fds_after, close_wait);
  EXPECT_EQ(close_wait, 0);
  EXPECT_LE(fds_after, fds_before);
  expect_alive(client, s);
}

// Item 11: a server that died (SIGKILL) leaves its private directory; the
// next one to start in the same TMPDIR removes it, and also old lock-less
// ones, but never a live server's directory nor anything not its own.
TEST(ServeHostile, StalePrivateDirectoriesAreRemovedAtStart) {
  gchar* d = g_dir_make_tmp("dfd-serve-stale-XXXXXX", nullptr);
  const std::string tmp = d;
  g_free(d);
  auto entries = [&] {
    std::set<std::string> out;
    if (GDir* g = g_dir_open(tmp.c_str(), 0, nullptr)) {
      while (const gchar* n = g_dir_read_name(g)) out.insert(n);
      g_dir_close(g);
    }
    return out;
  };
  std::string crashed;
  {
    ServerProcess a({}, {}, tmp);
    ASSERT_EQ(entries().size(), 1u);
    crashed = *entries().begin();
    a.kill();
  }
  ASSERT_EQ(entries(), std::set<std::string>{crashed}) << "SIGKILL should leave the directory behind";
  // One from an older server (no lock file), untouched for two hours; one
  // not ours by its mode; and a live server's.
  const std::string old_dir = tmp + "/deepfake-serve-OLD123", foreign = tmp + "/deepfake-serve-OTHER1";
  ASSERT_EQ(g_mkdir(old_dir.c_str(), 0700), 0);
  test::write_file(old_dir + "/upload-abcdef", "left over");
  ASSERT_EQ(g_mkdir(foreign.c_str(), 0755), 0);
  const gint64 two_hours_ago = g_get_real_time() / G_USEC_PER_SEC - 7200;
  struct utimbuf t = {time_t(two_hours_ago), time_t(two_hours_ago)};
  ASSERT_EQ(utime(old_dir.c_str(), &t), 0);
  ServerProcess live({}, {}, tmp);
  std::string live_dir;
  for (const auto& e : entries())
    if (e != crashed && e != "deepfake-serve-OLD123" && e != "deepfake-serve-OTHER1") live_dir = e;
  ASSERT_FALSE(live_dir.empty());
  EXPECT_EQ(entries().count(crashed), 0u) << "the crashed server's directory is still there";
  EXPECT_EQ(entries().count("deepfake-serve-OLD123"), 0u) << "the old lock-less directory is still there";
  EXPECT_EQ(entries().count("deepfake-serve-OTHER1"), 1u) << "a directory that is not ours was removed";
  {
    ServerProcess second({}, {}, tmp);  // starts while `live` runs
    EXPECT_EQ(entries().count(live_dir), 1u) << "a live server's directory was removed";
    Client c;
    EXPECT_EQ(c.get(live.url() + "/healthz").status, 200u);
  }
  EXPECT_TRUE(live.stop());
  EXPECT_EQ(entries(), std::set<std::string>{"deepfake-serve-OTHER1"});
  g_rmdir(foreign.c_str());
  g_rmdir(tmp.c_str());
}

// Items 5 and 7 over HTTP: pictures and frames over the pixel limit get 413
// with kind "too-large" within a second or two, impossible raw video gets
// 422, never 500, and the server goes on answering.
TEST(ServeHostile, HostileMediaGets4xx) {
  ServerProcess s({"--max-upload-mb", "2", "--preroll-timeout-s", "5"});
  Client client;
  gchar* d = g_dir_make_tmp("dfd-serve-media-XXXXXX", nullptr);
  const std::string mjpeg = test::mjpeg_avi_declaring(std::string(d) + "/clip.avi", 60000, 60000);
  g_rmdir(d);
  g_free(d);
  const std::vector<std::pair<std::string, std::string>> too_large = {
      {"huge.png", test::png_declaring(60000, 60000, 4)},   {"huge.jpg", test::jpeg_declaring(60000, 60000)},
      {"huge.gif", test::gif_declaring(65535, 65535)},      {"huge.bmp", test::bmp_declaring(60000, 60000)},
      {"huge-raw.avi", test::avi_raw(60000, 60000, 2, 4096)}, {"huge-mjpeg.avi", mjpeg},
  };
  for (const auto& [name, bytes] : too_large) {
    const auto t0 = std::chrono::steady_clock::now();
    const Response r = client.upload(s.url() + "/predict_media", bytes, "file", name);
    const double secs = seconds_since(t0);
    std::printf("%s: HTTP %u in %.2f s\n", name.c_str(), r.status, secs);
    expect_json_error(r, 413);
    if (r.status == 413) {
      EXPECT_EQ(r.js()["kind"], "too-large") << r.body;
      EXPECT_NE(r.body.find("megapixels"), std::string::npos) << r.body;
    }
    EXPECT_LT(secs, 3.0) << name;
  }
  const std::vector<std::pair<std::string, std::string>> impossible = {
      {"short-frames.avi", test::avi_raw(4000, 3000, 3, 1000)},
      {"zero.avi", test::avi_raw(0, 0, 3, 64)},
      {"negative.avi", test::avi_raw(-64, 64, 3, 64 * 64 * 3)},
      {"bad-depth.avi", test::avi_raw(64, 64, 3, 64 * 64 * 3, 7)},
  };
  for (const auto& [name, bytes] : impossible) {
    const Response r = client.upload(s.url() + "/predict_media", bytes, "file", name);
    std::printf("%s: HTTP %u %s\n", name.c_str(), r.status, r.body.c_str());
    EXPECT_GE(r.status, 400u) << name;
    EXPECT_LT(r.status, 500u) << name << ": " << r.body;
    EXPECT_EQ(r.content_type, "application/json");
  }
  expect_alive(client, s);
  EXPECT_TRUE(s.private_files().empty());
  // The limit is configurable: a real picture over a small one, refused by its size.
  ServerProcess small({"--max-pixels", "50000"});
  const Response r = client.upload(small.url() + "/predict_media", files_face_jpeg(), "file", "face.jpg");
  expect_json_error(r, 413);
  EXPECT_NE(r.body.find("320x320"), std::string::npos) << r.body;
  EXPECT_EQ(health(client, small)["max_pixels"], 50000);
}
