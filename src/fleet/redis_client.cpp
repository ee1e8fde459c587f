#include "fleet/redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace dfd::fleet {

namespace {

timeval to_timeval(double s) {
  timeval tv;
  tv.tv_sec = long(s);
  tv.tv_usec = long((s - double(tv.tv_sec)) * 1e6);
  return tv;
}

int parse_int(const std::string& s, int lo, int hi, const std::string& what, const std::string& url) {
  char* end = nullptr;
  errno = 0;
  const long v = s.empty() ? -1 : std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end || errno || v < lo || v > hi)
    throw RedisUrlError("bad " + what + " '" + s + "' in Redis URL '" + url + "'");
  return int(v);
}

}  // namespace

std::string RedisAddress::text() const {
  if (!unix_path.empty()) return "unix:" + unix_path;
  return "redis://" + host + ":" + std::to_string(port) + (db ? "/" + std::to_string(db) : "");
}

RedisAddress parse_redis_url(const std::string& url) {
  RedisAddress a;
  auto starts = [&](const char* p) { return url.rfind(p, 0) == 0; };
  if (starts("unix://") || starts("unix:")) {
    a.unix_path = url.substr(starts("unix://") ? 7 : 5);
    if (a.unix_path.empty()) throw RedisUrlError("Redis URL '" + url + "' names no socket path");
    return a;
  }
  if (starts("rediss://")) throw RedisUrlError("rediss:// (TLS) is not supported: use redis:// or unix:PATH");
  if (!starts("redis://")) throw RedisUrlError("Redis URL '" + url + "' must start with redis:// or unix:");
  std::string rest = url.substr(8);
  const auto slash = rest.find('/');
  if (slash != std::string::npos) {
    const std::string db = rest.substr(slash + 1);
    if (!db.empty()) a.db = parse_int(db, 0, 100000, "database number", url);
    rest = rest.substr(0, slash);
  }
  const auto at = rest.rfind('@');
  if (at != std::string::npos) {
    const std::string cred = rest.substr(0, at);
    const auto colon = cred.find(':');
    a.password = colon == std::string::npos ? cred : cred.substr(colon + 1);
    rest = rest.substr(at + 1);
  }
  std::string host = rest;
  if (!rest.empty() && rest[0] == '[') {  // [IPv6]:port
    const auto close = rest.find(']');
    if (close == std::string::npos) throw RedisUrlError("bad host in Redis URL '" + url + "'");
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') throw RedisUrlError("bad host in Redis URL '" + url + "'");
      a.port = parse_int(rest.substr(close + 2), 1, 65535, "port", url);
    }
  } else {
    const auto colon = rest.rfind(':');
    if (colon != std::string::npos) {
      host = rest.substr(0, colon);
      a.port = parse_int(rest.substr(colon + 1), 1, 65535, "port", url);
    }
  }
  if (host.empty()) throw RedisUrlError("Redis URL '" + url + "' names no host");
  a.host = host;
  return a;
}

Reply::Reply(redisReply* r) : reply_(r) {}
void Reply::Free::operator()(redisReply* r) const { freeReplyObject(r); }
bool Reply::is_nil() const { return !reply_ || reply_->type == REDIS_REPLY_NIL; }
bool Reply::is_array() const { return reply_ && reply_->type == REDIS_REPLY_ARRAY; }
bool Reply::is_string() const {
  return reply_ && (reply_->type == REDIS_REPLY_STRING || reply_->type == REDIS_REPLY_STATUS);
}
bool Reply::is_integer() const { return reply_ && reply_->type == REDIS_REPLY_INTEGER; }
std::string Reply::str() const { return str_of(reply_.get()); }
long long Reply::integer() const {
  if (!reply_) return 0;
  if (reply_->type == REDIS_REPLY_INTEGER) return reply_->integer;
  if (reply_->type == REDIS_REPLY_STRING) return std::atoll(reply_->str);
  return 0;
}
size_t Reply::size() const { return size_of(reply_.get()); }

std::string Reply::str_of(const redisReply* r) {
  if (!r) return "";
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)
    return std::string(r->str, r->len);
  if (r->type == REDIS_REPLY_INTEGER) return std::to_string(r->integer);
  return "";
}
const redisReply* Reply::at(const redisReply* r, size_t i) {
  return r && r->type == REDIS_REPLY_ARRAY && i < r->elements ? r->element[i] : nullptr;
}
size_t Reply::size_of(const redisReply* r) { return r && r->type == REDIS_REPLY_ARRAY ? r->elements : 0; }

RedisClient::RedisClient(const std::string& url, double connect_timeout_s, double command_timeout_s)
    : address_(parse_redis_url(url)), connect_timeout_s_(connect_timeout_s), command_timeout_s_(command_timeout_s) {}

RedisClient::~RedisClient() { disconnect(); }

void RedisClient::disconnect() {
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
  scripts_.clear();
}

void RedisClient::connect() {
  disconnect();
  const timeval tv = to_timeval(connect_timeout_s_);
  redisContext* c = address_.unix_path.empty() ? redisConnectWithTimeout(address_.host.c_str(), address_.port, tv)
                                               : redisConnectUnixWithTimeout(address_.unix_path.c_str(), tv);
  if (!c) throw RedisUnavailable("cannot reach Redis at " + address_.text() + ": out of memory");
  if (c->err) {
    const std::string why = c->errstr;
    redisFree(c);
    throw RedisUnavailable("cannot reach Redis at " + address_.text() + ": " + why);
  }
  redisSetTimeout(c, to_timeval(command_timeout_s_));
  if (address_.unix_path.empty()) redisEnableKeepAlive(c);
  ctx_ = c;
  if (!address_.password.empty()) run({"AUTH", address_.password}, command_timeout_s_);
  if (address_.db) run({"SELECT", std::to_string(address_.db)}, command_timeout_s_);
}

Reply RedisClient::run(const std::vector<std::string>& args, double timeout_s) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  if (timeout_s != command_timeout_s_) redisSetTimeout(ctx_, to_timeval(timeout_s));
  auto* r = static_cast<redisReply*>(redisCommandArgv(ctx_, int(argv.size()), argv.data(), lens.data()));
  if (!r) {
    const std::string why = ctx_->errstr[0] ? ctx_->errstr : "connection lost";
    disconnect();  // a broken context cannot be used again; the next command reconnects
    throw RedisUnavailable("Redis at " + address_.text() + " went away (" + why + ") during " + args.front());
  }
  if (timeout_s != command_timeout_s_) redisSetTimeout(ctx_, to_timeval(command_timeout_s_));
  Reply reply(r);
  if (r->type == REDIS_REPLY_ERROR) {
    const std::string msg = Reply::str_of(r);
    // Redis still loading its data after a restart is a passing state, like being away.
    if (msg.rfind("LOADING", 0) == 0) throw RedisUnavailable("Redis at " + address_.text() + " is loading its data");
    throw RedisError(args.front() + ": " + msg);
  }
  return reply;
}

Reply RedisClient::command(const std::vector<std::string>& args) {
  if (!ctx_) connect();
  return run(args, command_timeout_s_);
}

Reply RedisClient::blocking_command(const std::vector<std::string>& args, double extra_s) {
  if (!ctx_) connect();
  return run(args, command_timeout_s_ + extra_s);
}

Reply RedisClient::eval(const std::string& script, const std::vector<std::string>& keys,
                        const std::vector<std::string>& args) {
  if (!ctx_) connect();
  std::string sha;
  for (const auto& [text, s] : scripts_)
    if (text == script) sha = s;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (sha.empty()) {
      sha = command({"SCRIPT", "LOAD", script}).str();
      scripts_.emplace_back(script, sha);
    }
    std::vector<std::string> argv = {"EVALSHA", sha, std::to_string(keys.size())};
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), args.begin(), args.end());
    try {
      return command(argv);
    } catch (const RedisError& e) {
      // The server forgot its scripts (restarted while we were connected).
      if (std::string(e.what()).find("NOSCRIPT") == std::string::npos) throw;
      scripts_.clear();
      sha.clear();
    }
  }
  throw RedisError("EVALSHA: the script could not be loaded");
}

}  // namespace dfd::fleet
