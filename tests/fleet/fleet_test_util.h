// Helpers of the fleet's end-to-end tests: child processes (workers, the
// front end) started and stopped by pid, test media made by make_clip, HTTP
// through curl, and polling with generous deadlines (no fixed sleeps).
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace dfd::test {

inline std::string env_or(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// How much longer waits may take: sanitizer runs (scripts/test --sanitize,
// --tsan) set DFD_TEST_TIME_SCALE, since instrumented workers start and scan
// several times slower. 1 otherwise.
inline double time_scale() {
  const double scale = std::atof(env_or("DFD_TEST_TIME_SCALE", "1").c_str());
  return scale >= 1 ? scale : 1;
}

// A child process, its stdout and stderr in `log`; killed (SIGKILL) and
// reaped when dropped if still running.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& log) : log_(log) {
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Child() {
    if (running()) {
      kill(pid_, SIGKILL);
      wait_exit(30);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  bool running() {
    if (exited_) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      status_ = status;
    }
    return !exited_;
  }
  void signal(int sig) { kill(pid_, sig); }
  // The exit code (128 + signal when killed); -1 when still running after `seconds` (scaled).
  int wait_exit(double seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds * time_scale());
    while (running() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!exited_) return -1;
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
  }
  std::string log() const { return read_file(log_); }

 private:
  std::string log_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
};

// Polls `done` every 50 ms until it holds or `seconds` (scaled) pass.
inline bool eventually(double seconds, const std::function<bool()>& done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds * time_scale());
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

// Runs a command line through the shell; its stdout, and its exit code in *code.
inline std::string run(const std::string& cmd, int* code = nullptr) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("popen failed: " + cmd);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  if (code) *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

struct Http {
  int status = 0;
  std::string body;
};

// curl ARGS...: the body and the status (the last line curl writes with -w).
inline Http curl(const std::string& args) {
  const std::string out = run("curl -s -m 30 -w '\\n%{http_code}' " + args);
  Http h;
  const auto nl = out.rfind('\n');
  h.body = nl == std::string::npos ? "" : out.substr(0, nl);
  h.status = std::atoi(out.substr(nl == std::string::npos ? 0 : nl + 1).c_str());
  return h;
}

}  // namespace dfd::test
