// libFuzzer target: deepfake-serve's request handling and multipart uploads.
// The real dfd::serve::Server runs in this process on 127.0.0.1 (a free
// port, its own thread and main loop, the model from DFD_SERVE_MODEL or the
// shipped default) with a result history in a private SQLite file; each
// input becomes one request written to a socket, the answer is read to the
// end, and the server must then still answer /healthz.
//
// Input: the first byte picks a framing, the rest is fuzzed:
//   0 POST /predict_media, multipart headers and Content-Length made here,
//     the rest is the body (boundary "fuzzboundary")
//   1 the same for POST /api/v1/analyze      2 for /api/v1/analyze?format=html
//   3 POST /predict_media request line, the rest is headers and body
//   4 the same for /api/v1/analyze           5 GET /healthz + rest
//   6 GET / + rest                           7 the rest is the whole request
// The write side is shut after the request, so a truncated body ends at once
// (the server sees the end of the stream) instead of waiting for its timeout.
#include <arpa/inet.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "server.h"

namespace {

constexpr const char* kBoundary = "fuzzboundary";
// Longest wait for one answer: an analysis of a small upload under ASan on a
// loaded 2-core machine, with room to spare. No answer by then is a hang.
constexpr int kAnswerTimeoutMs = 120'000;

// A private directory for the result history (SQLite), so that the history
// API (/api/v1/scans and the reuse of earlier results) is fuzzed too;
// removed when the process exits (the replay test's does; the fuzzer is
// stopped by libFuzzer, which leaves it in the temporary directory).
std::string history_dir() {
  static const std::string dir = [] {
    GError* err = nullptr;
    gchar* made = g_dir_make_tmp("dfd-fuzz-serve-XXXXXX", &err);
    if (!made) {
      std::fprintf(stderr, "fuzz_serve_request: cannot make a directory: %s\n", err->message);
      std::abort();
    }
    std::string path = made;
    g_free(made);
    static std::string to_remove = path;
    std::atexit([] {
      for (const char* f : {"/history.db", "/history.db-wal", "/history.db-shm"}) g_remove((to_remove + f).c_str());
      g_rmdir(to_remove.c_str());
    });
    return path;
  }();
  return dir;
}

// Starts the server once, on its own thread; returns its port.
int server_port() {
  static const int port = [] {
    auto ready = std::make_shared<std::promise<int>>();
    std::future<int> port_future = ready->get_future();
    std::thread([ready] {
      GMainContext* ctx = g_main_context_new();
      g_main_context_push_thread_default(ctx);
      try {
        dfd::serve::ServerConfig c;
        c.port = 0;
        if (const char* m = std::getenv("DFD_SERVE_MODEL")) c.model = m;
        c.history = "sqlite:" + history_dir() + "/history.db";
        c.data_dir = history_dir();
        c.header_timeout_s = 5;
        c.body_timeout_s = 5;
        c.timeout_s = 60;
        // Lives as long as the process: the fuzzer never returns from main.
        auto* server = new dfd::serve::Server(c);
        ready->set_value(server->listen());
        server->run(false);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "fuzz_serve_request: cannot start the server: %s\n", e.what());
        ready->set_value(-1);
      }
    }).detach();
    return port_future.get();
  }();
  if (port <= 0) std::abort();
  return port;
}

int connect_to(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::fprintf(stderr, "fuzz_serve_request: cannot connect to port %d\n", port);
    std::abort();
  }
  return fd;
}

// Writes the request (the server may close early, e.g. 413: no SIGPIPE),
// shuts the write side and reads the answer until the server closes.
std::string send_request(int port, const std::string& request) {
  const int fd = connect_to(port);
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += size_t(n);
  }
  shutdown(fd, SHUT_WR);
  std::string answer;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kAnswerTimeoutMs);
  char buf[16384];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, int(left.count())) == 0) {
      std::fprintf(stderr, "fuzz_serve_request: no end of answer within %d ms (hang)\n", kAnswerTimeoutMs);
      std::abort();
    }
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;  // closed (or reset): the answer is complete
    answer.append(buf, size_t(n));
  }
  close(fd);
  return answer;
}

std::string post_multipart(const char* target, const std::string& body) {
  return std::string("POST ") + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
         "Content-Type: multipart/form-data; boundary=" + kBoundary + "\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string request_for(uint8_t framing, const std::string& rest) {
  switch (framing % 8) {
    case 0: return post_multipart("/predict_media", rest);
    case 1: return post_multipart("/api/v1/analyze", rest);
    case 2: return post_multipart("/api/v1/analyze?format=html", rest);
    case 3: return "POST /predict_media HTTP/1.1\r\n" + rest;
    case 4: return "POST /api/v1/analyze HTTP/1.1\r\n" + rest;
    case 5: return "GET /healthz HTTP/1.1\r\n" + rest;
    case 6: return "GET / HTTP/1.1\r\n" + rest;
    default: return rest;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int port = server_port();
  send_request(port, request_for(data[0], std::string(reinterpret_cast<const char*>(data) + 1, size - 1)));
  const std::string health = send_request(port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  if (health.compare(0, 12, "HTTP/1.1 200") != 0) {
    std::fprintf(stderr, "fuzz_serve_request: /healthz no longer answers 200 after this input: '%s'\n",
                 health.substr(0, 200).c_str());
    std::abort();
  }
  return 0;
}
