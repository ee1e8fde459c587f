// The fleet's job queue on a Redis stream with a consumer group (docs/fleet.md).
//
//   PREFIX:jobs        the stream of jobs to run; each entry: job=ID
//   workers            its consumer group (every deepfake-worker is a consumer)
//   PREFIX:job:ID      the job: source, uri or upload, state, attempts, error,
//                      worker, verdict, probability, report, times (a hash)
//   PREFIX:upload:ID   an uploaded file's bytes, with a time-to-live
//   PREFIX:jobs:dead   the dead-letter stream: job=ID reason=... attempts=N
//   PREFIX:jobs:done   one entry per job that got its result: job=ID worker=...
//
// Rules (each a Lua script, so that one step is atomic on the server):
// - claim: a worker first takes over an entry left pending longer than
//   claim_timeout_ms by another consumer (XAUTOCLAIM: that worker died),
//   else reads a new one (XREADGROUP). Each claim counts an attempt; a job
//   claimed more than max_attempts times goes to the dead-letter stream.
// - heartbeat: a live worker resets its entry's idle time while it scans, so
//   a long scan is not taken over.
// - complete: the report is stored with HSETNX: when a job was run twice (its
//   first worker was only slow), the first result stays and the second is
//   dropped ("duplicate"); either way the entry is acknowledged (XACK).
// - fail: below max_attempts the job goes back on the stream (a new entry)
//   in state "failed" with the reason; at max_attempts it goes to the
//   dead-letter stream in state "dead".
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "fleet/redis_client.h"

namespace dfd::fleet {

struct QueueConfig {
  std::string prefix = "dfd";
  int max_attempts = 3;
  int64_t claim_timeout_ms = 60'000;  // a pending entry idle this long belongs to a dead worker
  int64_t upload_ttl_s = 3600;        // uploads not scanned within this are dropped by Redis
  int64_t job_ttl_s = 7 * 86400;      // a job and its result are kept this long after submission
};

// A media URI a job may name: file:///ABSOLUTE/PATH, http://..., https://...
// Throws std::invalid_argument saying what is wrong.
void check_media_uri(const std::string& uri);
// A job id as submit() makes them (32 lower-case hex digits).
bool is_job_id(const std::string& id);

struct Claim {
  std::string job_id;
  std::string entry_id;    // the stream entry this worker holds
  std::string uri;         // empty for an upload
  std::string upload_key;  // set for an upload
  std::string source;      // the name shown in the report
  int attempt = 0;         // 1 for the first try
};

struct JobStatus {
  std::string id, state;  // queued, running, failed (will be retried), done, dead
  std::string source, uri, error, worker, verdict;
  std::string report_json;  // when done
  double probability = 0;
  int attempts = 0;
  int64_t submitted_ms = 0, finished_ms = 0;
  bool terminal() const { return state == "done" || state == "dead"; }
};

enum class CompleteOutcome {
  Won,        // this result is the job's result
  Duplicate,  // the job already had a result (or was dead-lettered): this one is dropped
  Gone,       // the job no longer exists in Redis (expired, or Redis lost its data)
};

class JobQueue {
 public:
  // Uses `redis` for every call (held by reference, not thread-safe).
  JobQueue(RedisClient& redis, QueueConfig config = {});

  // Creates the stream and its consumer group if missing (idempotent).
  void ensure_group();

  // Queues a job; answers its id. Throws std::invalid_argument for a bad
  // URI, RedisUnavailable / RedisError.
  std::string submit_uri(const std::string& uri, const std::string& source = "");
  // Queues a job whose media travels through Redis (PREFIX:upload:ID, with upload_ttl_s).
  std::string submit_upload(const std::string& bytes, const std::string& source);

  // The next job for `consumer`: a dead worker's first, else a new one,
  // waiting up to block_ms for one. nullopt when none came.
  std::optional<Claim> claim(const std::string& consumer, int block_ms);
  // Keeps the claim alive; false when the entry is no longer this consumer's.
  bool heartbeat(const Claim& claim, const std::string& consumer);
  // An upload's bytes. Throws std::runtime_error when they expired.
  std::string fetch_upload(const Claim& claim);
  CompleteOutcome complete(const Claim& claim, const std::string& consumer, const std::string& report_json,
                           const std::string& verdict, double probability);
  // Answers the job's new state: "failed" (queued again), "dead", or what it already was.
  std::string fail(const Claim& claim, const std::string& consumer, const std::string& reason);

  std::optional<JobStatus> status(const std::string& job_id);
  // A worker that stops cleanly leaves the group (XGROUP DELCONSUMER), unless
  // it still holds entries (they must stay to be taken over). True when it left.
  bool leave(const std::string& consumer);

  // Key names (see above).
  std::string stream() const { return config_.prefix + ":jobs"; }
  std::string group() const { return "workers"; }
  std::string dead_stream() const { return config_.prefix + ":jobs:dead"; }
  std::string done_stream() const { return config_.prefix + ":jobs:done"; }
  std::string job_key(const std::string& id) const { return config_.prefix + ":job:" + id; }
  std::string upload_key(const std::string& id) const { return config_.prefix + ":upload:" + id; }
  const QueueConfig& config() const { return config_; }

 private:
  std::string submit(const std::string& uri, const std::string* upload, const std::string& source);
  std::optional<Claim> start(const std::string& entry_id, const std::string& job_id, const std::string& consumer);
  std::optional<std::pair<std::string, std::string>> autoclaim(const std::string& consumer);
  std::optional<std::pair<std::string, std::string>> read_new(const std::string& consumer, int block_ms);

  RedisClient& redis_;
  QueueConfig config_;
  std::string autoclaim_cursor_ = "0-0";
};

int64_t now_ms();

}  // namespace dfd::fleet
