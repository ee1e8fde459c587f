// A real mosquitto broker for tests: started on a free loopback port in a
// temp dir, stopped (SIGTERM, its own pid) and started again on the same
// port. Persistence is on, so a subscriber's session and the messages queued
// for it survive a restart (mosquitto saves them when stopped with SIGTERM).
#pragma once
#include <arpa/inet.h>
#include <pwd.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace dfd_test {

inline const char* kMosquitto = "/usr/sbin/mosquitto";

inline bool have_mosquitto() { return access(kMosquitto, X_OK) == 0; }

// A port nothing listens on (bound, then released).
inline int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t n = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
  close(fd);
  return ntohs(a.sin_port);
}

inline bool port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

class MosquittoBroker {
 public:
  // With a user, anonymous clients are refused and the user's password is
  // set with mosquitto_passwd.
  explicit MosquittoBroker(const std::string& user = "", const std::string& password = "") : port_(free_port()) {
    char tmpl[] = "/tmp/dfd-mosquitto-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::string auth = "allow_anonymous true\n";
    if (!user.empty()) {
      const std::string cmd = "mosquitto_passwd -b -c " + dir_ + "/passwd " + user + " " + password;
      if (std::system(cmd.c_str()) == 0) auth = "allow_anonymous false\npassword_file " + dir_ + "/passwd\n";
    }
    std::ofstream(dir_ + "/mosquitto.conf") << "listener " << port_ << " 127.0.0.1\n"
                                            << auth
                                            // As root it would switch to user mosquitto, who cannot write here.
                                            << "user " << getpwuid(geteuid())->pw_name << "\n"
                                            << "persistence true\n"
                                            << "persistence_location " << dir_ << "/\n"
                                            << "log_dest file " << dir_ << "/mosquitto.log\n";
  }
  ~MosquittoBroker() {
    stop();
    std::filesystem::remove_all(dir_);
  }

  // Starts it and waits (up to 10 s) until it accepts connections.
  bool start() {
    pid_ = fork();
    if (pid_ == 0) {
      const std::string conf = dir_ + "/mosquitto.conf";
      execl(kMosquitto, "mosquitto", "-c", conf.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 200; i++) {
      if (port_open(port_)) return true;
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& dir() const { return dir_; }

 private:
  int port_;
  std::string dir_;
  pid_t pid_ = -1;
};

}  // namespace dfd_test
