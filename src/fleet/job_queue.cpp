#include "fleet/job_queue.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

namespace dfd::fleet {

namespace {

// KEYS: job hash, stream, upload key. ARGV: id, uri, source, now, job ttl,
// upload bytes, upload ttl, "1" when there is an upload.
const char* kSubmitLua = R"LUA(
local has_upload = ARGV[8] == '1'
if has_upload then redis.call('SET', KEYS[3], ARGV[6], 'EX', ARGV[7]) end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'uri', ARGV[2], 'source', ARGV[3], 'state', 'queued',
           'attempts', 0, 'submitted_ms', ARGV[4], 'upload', has_upload and KEYS[3] or '')
redis.call('EXPIRE', KEYS[1], ARGV[5])
local entry = redis.call('XADD', KEYS[2], '*', 'job', ARGV[1])
redis.call('HSET', KEYS[1], 'entry', entry)
return entry
)LUA";

// Shared by the scripts that may dead-letter a job. KEYS: job hash, stream,
// dead stream, upload key. ARGV[1] group, ARGV[2] entry, ARGV[4] now, ARGV[5] id.
#define DFD_BURY_LUA                                                                        \
  "local function bury(reason, n)\n"                                                        \
  "  redis.call('HSET', KEYS[1], 'state', 'dead', 'error', reason, 'finished_ms', ARGV[4])\n" \
  "  redis.call('XADD', KEYS[3], '*', 'job', ARGV[5], 'reason', reason, 'attempts', n)\n"    \
  "  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])\n"                                        \
  "  redis.call('DEL', KEYS[4])\n"                                                           \
  "end\n"

// A claimed entry becomes a running job, unless it is stale (the job was
// finished, re-queued under a new entry, or expired) or over its attempts.
// ARGV: group, entry, consumer, now, id, max attempts.
const char* kStartLua = DFD_BURY_LUA R"LUA(
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  return {'gone'}
end
local f = redis.call('HMGET', KEYS[1], 'state', 'entry', 'uri', 'upload', 'source', 'error')
if f[1] == 'done' or f[1] == 'dead' or (f[2] and f[2] ~= ARGV[2]) then
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  return {'stale'}
end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if n > tonumber(ARGV[6]) then
  local why = 'no result after ' .. (n - 1) .. ' attempts (the workers stopped or failed)'
  if f[6] and f[6] ~= '' then why = why .. '; last error: ' .. f[6] end
  redis.call('HINCRBY', KEYS[1], 'attempts', -1)
  bury(why, n - 1)
  return {'dead'}
end
redis.call('HSET', KEYS[1], 'state', 'running', 'worker', ARGV[3], 'claimed_ms', ARGV[4])
return {'run', tostring(n), f[3] or '', f[4] or '', f[5] or ''}
)LUA";

// ARGV: group, entry, consumer, now, id, report, verdict, probability, job ttl.
// KEYS: job hash, stream, done stream, upload key.
const char* kCompleteLua = R"LUA(
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  return 'gone'
end
local won = 0
if redis.call('HGET', KEYS[1], 'state') ~= 'dead' then
  won = redis.call('HSETNX', KEYS[1], 'report', ARGV[6])
end
if won == 1 then
  redis.call('HSET', KEYS[1], 'state', 'done', 'verdict', ARGV[7], 'probability', ARGV[8],
             'worker', ARGV[3], 'finished_ms', ARGV[4])
  redis.call('HDEL', KEYS[1], 'error')
  redis.call('EXPIRE', KEYS[1], ARGV[9])
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', '100000', '*', 'job', ARGV[5], 'worker', ARGV[3], 'verdict', ARGV[7])
  redis.call('DEL', KEYS[4])
end
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
if won == 1 then return 'won' end
return 'duplicate'
)LUA";

// ARGV: group, entry, consumer, now, id, reason, max attempts.
const char* kFailLua = DFD_BURY_LUA R"LUA(
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  return 'gone'
end
local f = redis.call('HMGET', KEYS[1], 'state', 'entry', 'attempts')
if f[1] == 'done' or f[1] == 'dead' or f[2] ~= ARGV[2] then
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  return f[1] or 'gone'
end
local n = tonumber(f[3] or '0')
if n >= tonumber(ARGV[7]) then
  bury(ARGV[6], n)
  return 'dead'
end
redis.call('HSET', KEYS[1], 'state', 'failed', 'error', ARGV[6], 'worker', '')
local entry = redis.call('XADD', KEYS[2], '*', 'job', ARGV[5])
redis.call('HSET', KEYS[1], 'entry', entry)
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
return 'failed'
)LUA";

// The entry stays this consumer's: its idle time is reset. ARGV: group, entry, consumer.
const char* kHeartbeatLua = R"LUA(
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1, ARGV[3])
if #p == 0 then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
return 1
)LUA";

// The consumer is removed only when it holds no pending entry. ARGV: group, consumer.
const char* kLeaveLua = R"LUA(
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
)LUA";

std::string new_job_id() {
  std::random_device rd;
  std::string id;
  char buf[9];
  for (int i = 0; i < 4; ++i) {
    std::snprintf(buf, sizeof buf, "%08x", unsigned(rd()));
    id += buf;
  }
  return id;
}

bool is_nogroup(const RedisError& e) { return std::string(e.what()).find("NOGROUP") != std::string::npos; }

// "job" field of an entry [id, [field, value, ...]].
std::string job_of_entry(const redisReply* entry) {
  const redisReply* fields = Reply::at(entry, 1);
  for (size_t i = 0; i + 1 < Reply::size_of(fields); i += 2)
    if (Reply::str_of(Reply::at(fields, i)) == "job") return Reply::str_of(Reply::at(fields, i + 1));
  return "";
}

}  // namespace

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void check_media_uri(const std::string& uri) {
  if (uri.rfind("file://", 0) == 0) {
    if (uri.size() < 8 || uri[7] != '/')
      throw std::invalid_argument("a file:// URI needs an absolute path (file:///...), not '" + uri + "'");
    return;
  }
  for (const char* scheme : {"http://", "https://"})
    if (uri.rfind(scheme, 0) == 0) {
      if (uri.size() == std::string(scheme).size()) throw std::invalid_argument("URI '" + uri + "' names no host");
      return;
    }
  throw std::invalid_argument("media URI '" + uri + "' must be file:///PATH, http:// or https://");
}

bool is_job_id(const std::string& id) {
  if (id.size() != 32) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

JobQueue::JobQueue(RedisClient& redis, QueueConfig config) : redis_(redis), config_(std::move(config)) {
  if (config_.max_attempts < 1) throw std::invalid_argument("max_attempts must be at least 1");
  if (config_.claim_timeout_ms < 1) throw std::invalid_argument("claim_timeout_ms must be positive");
}

void JobQueue::ensure_group() {
  try {
    redis_.command({"XGROUP", "CREATE", stream(), group(), "0", "MKSTREAM"});
  } catch (const RedisError& e) {
    if (std::string(e.what()).find("BUSYGROUP") == std::string::npos) throw;
  }
}

std::string JobQueue::submit(const std::string& uri, const std::string* upload, const std::string& source) {
  const std::string id = new_job_id();
  redis_.eval(kSubmitLua, {job_key(id), stream(), upload_key(id)},
              {id, uri, source, std::to_string(now_ms()), std::to_string(config_.job_ttl_s), upload ? *upload : "",
               std::to_string(config_.upload_ttl_s), upload ? "1" : "0"});
  return id;
}

std::string JobQueue::submit_uri(const std::string& uri, const std::string& source) {
  check_media_uri(uri);
  return submit(uri, nullptr, source.empty() ? uri : source);
}

std::string JobQueue::submit_upload(const std::string& bytes, const std::string& source) {
  if (bytes.empty()) throw std::invalid_argument("the upload is empty");
  return submit("", &bytes, source.empty() ? "upload" : source);
}

std::optional<std::pair<std::string, std::string>> JobQueue::autoclaim(const std::string& consumer) {
  Reply r = redis_.command({"XAUTOCLAIM", stream(), group(), consumer, std::to_string(config_.claim_timeout_ms),
                            autoclaim_cursor_, "COUNT", "1"});
  autoclaim_cursor_ = Reply::str_of(Reply::at(r.raw(), 0));
  if (autoclaim_cursor_.empty()) autoclaim_cursor_ = "0-0";
  const redisReply* entries = Reply::at(r.raw(), 1);
  for (size_t i = 0; i < Reply::size_of(entries); ++i) {
    const redisReply* e = Reply::at(entries, i);
    const std::string entry_id = Reply::str_of(Reply::at(e, 0));
    if (entry_id.empty()) continue;  // deleted from the stream meanwhile (Redis 6.2 lists it as nil)
    return std::make_pair(entry_id, job_of_entry(e));
  }
  return std::nullopt;
}

std::optional<std::pair<std::string, std::string>> JobQueue::read_new(const std::string& consumer, int block_ms) {
  Reply r = redis_.blocking_command({"XREADGROUP", "GROUP", group(), consumer, "COUNT", "1", "BLOCK",
                                     std::to_string(block_ms), "STREAMS", stream(), ">"},
                                    block_ms / 1000.0);
  // [[stream, [[id, [field, value...]]]]], or nil when none came.
  const redisReply* entries = Reply::at(Reply::at(r.raw(), 0), 1);
  const redisReply* e = Reply::at(entries, 0);
  if (!e) return std::nullopt;
  return std::make_pair(Reply::str_of(Reply::at(e, 0)), job_of_entry(e));
}

std::optional<Claim> JobQueue::start(const std::string& entry_id, const std::string& job_id,
                                     const std::string& consumer) {
  if (job_id.empty()) {  // not an entry of ours: acknowledged so that it is not read again
    redis_.command({"XACK", stream(), group(), entry_id});
    return std::nullopt;
  }
  Reply r = redis_.eval(kStartLua, {job_key(job_id), stream(), dead_stream(), upload_key(job_id)},
                        {group(), entry_id, consumer, std::to_string(now_ms()), job_id,
                         std::to_string(config_.max_attempts)});
  if (Reply::str_of(Reply::at(r.raw(), 0)) != "run") return std::nullopt;
  Claim c;
  c.job_id = job_id;
  c.entry_id = entry_id;
  c.attempt = std::atoi(Reply::str_of(Reply::at(r.raw(), 1)).c_str());
  c.uri = Reply::str_of(Reply::at(r.raw(), 2));
  c.upload_key = Reply::str_of(Reply::at(r.raw(), 3));
  c.source = Reply::str_of(Reply::at(r.raw(), 4));
  return c;
}

std::optional<Claim> JobQueue::claim(const std::string& consumer, int block_ms) {
  for (int round = 0; round < 2; ++round) {
    try {
      // Stale entries (finished or dead jobs) are acknowledged by start(); try a few before waiting.
      for (int i = 0; i < 8; ++i) {
        auto taken = autoclaim(consumer);
        if (!taken) break;
        if (auto c = start(taken->first, taken->second, consumer)) return c;
      }
      for (int i = 0; i < 8; ++i) {
        auto taken = read_new(consumer, i == 0 ? block_ms : 1);
        if (!taken) return std::nullopt;
        if (auto c = start(taken->first, taken->second, consumer)) return c;
      }
      return std::nullopt;
    } catch (const RedisError& e) {
      // Redis restarted without its data: the stream and group are made again.
      if (!is_nogroup(e) || round > 0) throw;
      ensure_group();
    }
  }
  return std::nullopt;
}

bool JobQueue::heartbeat(const Claim& claim, const std::string& consumer) {
  return redis_.eval(kHeartbeatLua, {stream()}, {group(), claim.entry_id, consumer}).integer() == 1;
}

std::string JobQueue::fetch_upload(const Claim& claim) {
  Reply r = redis_.command({"GET", claim.upload_key});
  if (r.is_nil())
    throw std::runtime_error("the upload of job " + claim.job_id + " is no longer in Redis (its time-to-live of " +
                             std::to_string(config_.upload_ttl_s) + " s passed, or Redis lost its data)");
  return r.str();
}

CompleteOutcome JobQueue::complete(const Claim& claim, const std::string& consumer, const std::string& report_json,
                                   const std::string& verdict, double probability) {
  char prob[32];
  std::snprintf(prob, sizeof prob, "%.6f", probability);
  const std::string out =
      redis_.eval(kCompleteLua, {job_key(claim.job_id), stream(), done_stream(), upload_key(claim.job_id)},
                  {group(), claim.entry_id, consumer, std::to_string(now_ms()), claim.job_id, report_json, verdict,
                   prob, std::to_string(config_.job_ttl_s)})
          .str();
  if (out == "won") return CompleteOutcome::Won;
  if (out == "gone") return CompleteOutcome::Gone;
  return CompleteOutcome::Duplicate;
}

std::string JobQueue::fail(const Claim& claim, const std::string& consumer, const std::string& reason) {
  return redis_
      .eval(kFailLua, {job_key(claim.job_id), stream(), dead_stream(), upload_key(claim.job_id)},
            {group(), claim.entry_id, consumer, std::to_string(now_ms()), claim.job_id, reason,
             std::to_string(config_.max_attempts)})
      .str();
}

bool JobQueue::leave(const std::string& consumer) {
  return redis_.eval(kLeaveLua, {stream()}, {group(), consumer}).integer() == 1;
}

std::optional<JobStatus> JobQueue::status(const std::string& job_id) {
  if (!is_job_id(job_id)) return std::nullopt;
  Reply r = redis_.command({"HGETALL", job_key(job_id)});
  if (r.size() == 0) return std::nullopt;
  JobStatus s;
  for (size_t i = 0; i + 1 < r.size(); i += 2) {
    const std::string k = Reply::str_of(Reply::at(r.raw(), i)), v = Reply::str_of(Reply::at(r.raw(), i + 1));
    if (k == "id") s.id = v;
    else if (k == "state") s.state = v;
    else if (k == "source") s.source = v;
    else if (k == "uri") s.uri = v;
    else if (k == "error") s.error = v;
    else if (k == "worker") s.worker = v;
    else if (k == "verdict") s.verdict = v;
    else if (k == "report") s.report_json = v;
    else if (k == "probability") s.probability = std::atof(v.c_str());
    else if (k == "attempts") s.attempts = std::atoi(v.c_str());
    else if (k == "submitted_ms") s.submitted_ms = std::atoll(v.c_str());
    else if (k == "finished_ms") s.finished_ms = std::atoll(v.c_str());
  }
  if (s.id.empty()) s.id = job_id;
  return s;
}

}  // namespace dfd::fleet
