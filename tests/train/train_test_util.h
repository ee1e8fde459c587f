// Running deepfake-train from the tests: exit status, stdout and stderr.
#pragma once
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace dfd_test {

namespace fs = std::filesystem;

struct RunResult {
  int status = -1;  // exit status, or 128 + signal
  std::string out, err;
};

inline std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::string env_or(const char* name, const std::string& def) {
  const char* v = std::getenv(name);
  return v && *v ? v : def;
}

inline std::string train_binary() { return env_or("DFD_TRAIN_BIN", "deepfake-train"); }

// Runs `args` (argv[0] included). With `interrupt_after`, SIGINT is sent once
// that text appears in stdout.
inline RunResult run_cmd(const std::vector<std::string>& args, const std::string& interrupt_after = "",
                         int timeout_s = 600) {
  static int n = 0;
  const std::string base =
      (fs::temp_directory_path() / ("dfd-train-run-" + std::to_string(::getpid()) + "-" + std::to_string(n++))).string();
  const std::string out = base + ".out", err = base + ".err";
  pid_t pid = ::fork();
  if (pid == 0) {
    FILE* o = std::freopen(out.c_str(), "w", stdout);
    FILE* e = std::freopen(err.c_str(), "w", stderr);
    (void)o;
    (void)e;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::perror("execv");
    std::_Exit(127);
  }
  RunResult r;
  const auto start = std::chrono::steady_clock::now();
  bool sent = false;
  int st = 0;
  while (true) {
    pid_t w = ::waitpid(pid, &st, WNOHANG);
    if (w == pid) break;
    if (!interrupt_after.empty() && !sent && slurp(out).find(interrupt_after) != std::string::npos) {
      ::kill(pid, SIGINT);
      sent = true;
    }
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(timeout_s)) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = slurp(out);
  r.err = slurp(err);
  fs::remove(out);
  fs::remove(err);
  return r;
}

inline std::vector<std::string> train_cmd(std::vector<std::string> args) {
  args.insert(args.begin(), train_binary());
  return args;
}

// The last non-empty line of a text.
inline std::string last_line(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  const auto p = t.rfind('\n');
  return p == std::string::npos ? t : t.substr(p + 1);
}

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    path = fs::temp_directory_path() / ("dfd-" + tag + "-" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    if (!std::getenv("DFD_KEEP_TEST_DIRS")) {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  }
  std::string operator/(const std::string& s) const { return (path / s).string(); }
};

}  // namespace dfd_test
