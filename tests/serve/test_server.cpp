// deepfake-serve over HTTP on an ephemeral loopback port, driven by a
// libsoup client: the original API's /predict_media round trip, the analysis
// API, every rejected input (status and JSON error, and the server still
// answers afterwards), the private upload directory, concurrency, 503 when
// saturated and 504 past the time limit. The server is the real binary
// (DFD_SERVE_BIN), started as a subprocess.
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <gtest/gtest.h>
#include <libsoup/soup.h>

#include <chrono>
#include <map>
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
  ServerProcess(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    gchar* d = g_dir_make_tmp("dfd-serve-http-XXXXXX", nullptr);
    tmp_ = d;
    g_free(d);
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
    g_rmdir(tmp_.c_str());
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
  std::vector<std::string> private_files() const {
    std::vector<std::string> all;
    for (auto& d : list(tmp_))
      for (auto& f : list(tmp_ + "/" + d)) all.push_back(d + "/" + f);
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
  bool stopped_ = false, exit_ok_ = false;
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
  // A slow head (the element's test hook), one analysis at a time, 3 s limit.
  ServerProcess s({"--max-concurrent", "1", "--timeout-s", "3"}, {{"DFD_TEST_WORKER_DELAY_MS", "1200"}});
  gchar* d = g_dir_make_tmp("dfd-serve-limits-XXXXXX", nullptr);
  const std::string path = std::string(d) + "/clip.avi";
  test::make_clip(path, 12);
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
  // 3 windows x 1.2 s > 3 s: the first one ran out of time.
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
