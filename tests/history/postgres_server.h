// A real PostgreSQL server for tests: initdb into a temp dir, postgres on a
// free port listening only on a unix socket in that dir, stopped by its own
// pid (SIGINT: fast shutdown). initdb and postgres refuse to run as root, so
// as root both run as the user 'nobody' (setuid in the forked child).
#pragma once
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "../publish/mosquitto_broker.h"  // free_port

namespace dfd_test {

// Debian keeps the server binaries off PATH, in /usr/lib/postgresql/N/bin.
inline std::string postgres_bin_dir() {
  namespace fs = std::filesystem;
  if (access("/usr/lib/postgresql/15/bin/initdb", X_OK) == 0) return "/usr/lib/postgresql/15/bin";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec))
    if (access((entry.path() / "bin" / "initdb").c_str(), X_OK) == 0) return (entry.path() / "bin").string();
  const char* path = getenv("PATH");
  std::string dirs = path ? path : "";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string dir = dirs.substr(start, end - start);
    if (!dir.empty() && access((dir + "/initdb").c_str(), X_OK) == 0 && access((dir + "/postgres").c_str(), X_OK) == 0)
      return dir;
    start = end + 1;
  }
  return "";
}

class PostgresServer {
 public:
  PostgresServer() : bin_(postgres_bin_dir()), port_(free_port()) {}
  ~PostgresServer() {
    stop();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Empty when the server can run here, else why not (the test skips).
  std::string unavailable() {
    if (bin_.empty()) return "PostgreSQL server binaries (initdb, postgres) not found: install Debian's postgresql";
    if (geteuid() == 0 && !getpwnam("nobody")) return "running as root and there is no user 'nobody' to run initdb as";
    return "";
  }

  // initdb (once) and start; waits (up to 60 s) until it accepts connections.
  // On failure, error() holds the server's log.
  bool start() {
    if (dir_.empty() && !init()) return false;
    pid_ = spawn({bin_ + "/postgres", "-D", data(), "-p", std::to_string(port_), "-k", dir_, "-c",
                  "listen_addresses=", "-c", "fsync=off"},
                 dir_ + "/postgres.log");
    const std::string conninfo = "host=" + dir_ + " port=" + std::to_string(port_) + " user=postgres dbname=postgres";
    for (int i = 0; i < 600; ++i) {
      if (PQping(conninfo.c_str()) == PQPING_OK) return true;
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return fail("postgres exited at start-up; its log: " + read_file(dir_ + "/postgres.log"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return fail("postgres did not accept connections within 60 s; its log: " + read_file(dir_ + "/postgres.log"));
  }

  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGINT);
    int status;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // A libpq URL for the database 'postgres' over the unix socket.
  std::string url(const std::string& database = "postgres") const {
    return "postgresql://postgres@/" + database + "?host=" + dir_ + "&port=" + std::to_string(port_);
  }
  const std::string& error() const { return error_; }

 private:
  std::string data() const { return dir_ + "/data"; }

  bool init() {
    char tmpl[] = "/tmp/dfd-pg-XXXXXX";
    if (!mkdtemp(tmpl)) return fail("mkdtemp failed");
    dir_ = tmpl;
    if (const passwd* nobody = geteuid() == 0 ? getpwnam("nobody") : nullptr)
      if (chown(dir_.c_str(), nobody->pw_uid, nobody->pw_gid) != 0) return fail("cannot chown " + dir_);
    const pid_t pid = spawn({bin_ + "/initdb", "-D", data(), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                             "--no-locale", "--no-sync"},
                            dir_ + "/initdb.log");
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return fail("initdb failed; its output: " + read_file(dir_ + "/initdb.log"));
    return true;
  }

  // Forks; the child drops to 'nobody' when root, sends its output to log and
  // runs argv. Answers the child's pid.
  static pid_t spawn(const std::vector<std::string>& argv, const std::string& log) {
    const pid_t pid = fork();
    if (pid != 0) return pid;
    if (geteuid() == 0) {
      const passwd* nobody = getpwnam("nobody");
      if (!nobody || setgroups(0, nullptr) != 0 || setgid(nobody->pw_gid) != 0 || setuid(nobody->pw_uid) != 0)
        _exit(126);
    }
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }

  static std::string read_file(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  bool fail(const std::string& why) {
    error_ = why;
    return false;
  }

  std::string bin_;
  int port_;
  std::string dir_;
  pid_t pid_ = -1;
  std::string error_;
};

}  // namespace dfd_test
