// A small synchronous Redis client on hiredis (Debian's libhiredis-dev), for
// the fleet's job queue: one connection, owned (RAII), commands given as
// argument vectors (binary-safe), and a fresh connection made on the next
// command after the old one broke (Redis restarted, network gone).
//
// Not thread-safe: a thread that needs Redis holds its own client.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

struct redisContext;
struct redisReply;

namespace dfd::fleet {

// Redis could not be reached, or the connection broke during a command.
// What to do: wait and try again (the client reconnects by itself).
struct RedisUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Redis answered with an error reply (e.g. "NOGROUP ...", a script error).
struct RedisError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A URL that is not redis://HOST[:PORT][/DB] or unix:PATH.
struct RedisUrlError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct RedisAddress {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_path;  // set for unix:PATH (then host/port are unused)
  std::string password;   // redis://:PASSWORD@HOST...
  int db = 0;
  std::string text() const;  // for messages, without the password
};

// redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], rediss is refused (no TLS in
// hiredis 0.14), unix:PATH or unix://PATH. Throws RedisUrlError.
RedisAddress parse_redis_url(const std::string& url);

// One reply, freed with the client's reply object (RAII). Accessors never
// throw on a type mismatch: they answer empty/0.
class Reply {
 public:
  Reply() = default;
  explicit Reply(redisReply* r);  // takes ownership
  bool is_nil() const;
  bool is_array() const;
  bool is_string() const;  // a bulk string or a status
  bool is_integer() const;
  std::string str() const;
  long long integer() const;
  size_t size() const;  // elements of an array
  const redisReply* raw() const { return reply_.get(); }
  // The i-th element of an array, borrowed (valid as long as this Reply).
  static std::string str_of(const redisReply* r);
  static const redisReply* at(const redisReply* r, size_t i);
  static size_t size_of(const redisReply* r);

 private:
  struct Free {
    void operator()(redisReply* r) const;
  };
  std::unique_ptr<redisReply, Free> reply_;
};

class RedisClient {
 public:
  // Does not connect yet (the first command does): a worker can start before Redis.
  // Throws RedisUrlError for a bad URL.
  explicit RedisClient(const std::string& url, double connect_timeout_s = 3, double command_timeout_s = 10);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Runs one command. Connects first when not connected (AUTH and SELECT
  // when the URL has them). Throws RedisUnavailable (the connection is then
  // dropped, the next call makes a new one) or RedisError.
  Reply command(const std::vector<std::string>& args);
  // For a command that blocks on the server (XREADGROUP BLOCK ms): the read
  // timeout is raised by `extra_s` for this call.
  Reply blocking_command(const std::vector<std::string>& args, double extra_s);
  // EVALSHA of a script loaded once per connection (SCRIPT LOAD on first use
  // and again after a reconnect or a NOSCRIPT reply).
  Reply eval(const std::string& script, const std::vector<std::string>& keys, const std::vector<std::string>& args);

  bool connected() const { return ctx_ != nullptr; }
  const RedisAddress& address() const { return address_; }
  void disconnect();

 private:
  void connect();
  Reply run(const std::vector<std::string>& args, double timeout_s);

  RedisAddress address_;
  double connect_timeout_s_, command_timeout_s_;
  redisContext* ctx_ = nullptr;
  std::vector<std::pair<std::string, std::string>> scripts_;  // script text -> sha1, for this connection
};

}  // namespace dfd::fleet
