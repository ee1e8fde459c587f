#include "worker_loop.h"

#include <glib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "media_fetch.h"

namespace dfd::fleet {

namespace {

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

// Sleeps `seconds`, waking early when `stop` is set.
void pause_unless_stopped(double seconds, const std::atomic<bool>& stop) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!stop.load() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

// The growing pause between tries while Redis is away, and the one line that says so.
class Backoff {
 public:
  Backoff(bool quiet) : quiet_(quiet) {}
  void failed(const std::string& why, const std::atomic<bool>& stop) {
    if (!down_ && !quiet_) std::fprintf(stderr, "deepfake-worker: %s; retrying\n", one_line(why).c_str());
    down_ = true;
    pause_unless_stopped(delay_, stop);
    delay_ = std::min(delay_ * 2, 5.0);
  }
  void succeeded() {
    if (down_ && !quiet_) std::fprintf(stderr, "deepfake-worker: Redis is back\n");
    down_ = false;
    delay_ = 0.2;
  }

 private:
  bool quiet_, down_ = false;
  double delay_ = 0.2;
};

// Beats a claim from its own connection while the job is scanned.
class Heartbeat {
 public:
  Heartbeat(const WorkerOptions& o, const Claim& claim, const std::string& consumer) {
    const auto period = std::chrono::milliseconds(std::max<int64_t>(50, o.queue.claim_timeout_ms / 3));
    thread_ = std::thread([this, &o, claim, consumer, period] {
      try {
        RedisClient redis(o.redis_url, 2, 5);
        JobQueue q(redis, o.queue);
        std::unique_lock<std::mutex> lock(m_);
        while (!cv_.wait_for(lock, period, [this] { return done_; })) {
          try {
            q.heartbeat(claim, consumer);
          } catch (const std::exception&) {
            // Redis away: the claim may lapse; the result is still delivered (idempotently).
          }
        }
      } catch (const std::exception&) {
      }
    });
  }
  ~Heartbeat() {
    {
      std::lock_guard<std::mutex> lock(m_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

struct Outcome {
  bool ok = false;
  Report report;
  std::string report_json, error, media_sha256;
  double seconds = 0;
};

// Lower-case hex SHA-256 of a file's bytes (the history's media checksum).
std::string file_sha256(const std::string& path) {
  GChecksum* sum = g_checksum_new(G_CHECKSUM_SHA256);
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    g_checksum_free(sum);
    throw FetchError("cannot read " + path);
  }
  char buf[64 * 1024];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) g_checksum_update(sum, reinterpret_cast<const guchar*>(buf), n);
  std::fclose(f);
  std::string hex = g_checksum_get_string(sum);
  g_checksum_free(sum);
  return hex;
}

FetchedMedia fetch(const WorkerOptions& o, JobQueue& q, const Claim& c) {
  if (!c.upload_key.empty()) return FetchedMedia::from_bytes(q.fetch_upload(c), c.source);
  if (c.uri.rfind("file://", 0) == 0) return FetchedMedia::from_file_uri(c.uri);
  return FetchedMedia::from_http(c.uri, o.max_download_bytes, o.download_timeout_s);
}

// Fetches and scans. RedisUnavailable (fetching an upload) goes up: the job
// is left to be taken over.
Outcome scan_job(const WorkerOptions& o, JobQueue& q, const Claim& c, const Detector* model) {
  Outcome out;
  std::string temp_path;  // a fetched copy's path: replaced by the source in error texts
  const auto t0 = std::chrono::steady_clock::now();
  try {
    FetchedMedia media = fetch(o, q, c);
    temp_path = media.path();
    ScanOptions so = o.scan;
    so.input = media.path();
    so.source_name = c.source;
    out.report = run_scan(so, {}, model, nullptr);
    out.report_json = out.report.to_json(2);
    if (o.on_result) out.media_sha256 = file_sha256(media.path());
    out.ok = true;
  } catch (const ScanError& e) {
    std::string what = one_line(e.what());
    if (!c.uri.empty() && c.uri.rfind("file://", 0) == 0) temp_path.clear();  // the real path: kept
    for (size_t at = 0; !temp_path.empty() && (at = what.find(temp_path, at)) != std::string::npos;
         at += c.source.size())
      what.replace(at, temp_path.size(), c.source);
    out.error = std::string(to_string(e.kind())) + ": " + what;
  } catch (const FetchError& e) {
    out.error = std::string("input: ") + one_line(e.what());
  } catch (const RedisUnavailable&) {
    throw;
  } catch (const std::exception& e) {
    out.error = std::string("input: ") + one_line(e.what());
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

// Stores the result or the failure, retrying while Redis is away. After a
// stop, gives up after ~10 s (the job is then taken over later).
void deliver(const WorkerOptions& o, JobQueue& q, const Claim& c, const std::string& consumer, const Outcome& out,
             const std::atomic<bool>& stop, Backoff& backoff) {
  const std::atomic<bool> never{false};
  const auto give_up_after_stop = std::chrono::seconds(10);
  std::chrono::steady_clock::time_point stopped_at{};
  for (;;) {
    try {
      if (out.ok) {
        const CompleteOutcome r = q.complete(c, consumer, out.report_json, out.report.verdict, out.report.fake_probability);
        backoff.succeeded();
        if (!o.quiet)
          std::fprintf(stderr, "deepfake-worker: job %s %s: %s %.4f (%.1f s, attempt %d)%s\n", c.job_id.c_str(),
                       c.source.c_str(), out.report.verdict.c_str(), out.report.fake_probability, out.seconds,
                       c.attempt,
                       r == CompleteOutcome::Won ? "" : r == CompleteOutcome::Gone ? " [job gone from Redis: dropped]"
                                                                                    : " [already done: dropped]");
        if (r == CompleteOutcome::Won && o.on_result) {
          try {
            o.on_result(c, out.report, out.report_json, out.media_sha256);
          } catch (const std::exception& e) {
            std::fprintf(stderr, "deepfake-worker: job %s: %s\n", c.job_id.c_str(), one_line(e.what()).c_str());
          }
        }
      } else {
        const std::string state = q.fail(c, consumer, out.error);
        backoff.succeeded();
        if (!o.quiet)
          std::fprintf(stderr, "deepfake-worker: job %s %s failed (attempt %d): %s -> %s\n", c.job_id.c_str(),
                       c.source.c_str(), c.attempt, out.error.c_str(),
                       state == "dead" ? "dead-lettered" : state == "failed" ? "queued again" : state.c_str());
      }
      return;
    } catch (const RedisUnavailable& e) {
      if (stop.load()) {
        const auto now = std::chrono::steady_clock::now();
        if (stopped_at == std::chrono::steady_clock::time_point{}) stopped_at = now;
        if (now - stopped_at > give_up_after_stop) {
          std::fprintf(stderr, "deepfake-worker: job %s: result not delivered (%s); another worker will take it over\n",
                       c.job_id.c_str(), one_line(e.what()).c_str());
          return;
        }
      }
      backoff.failed(e.what(), never);
    } catch (const RedisError& e) {
      std::fprintf(stderr, "deepfake-worker: job %s: %s\n", c.job_id.c_str(), one_line(e.what()).c_str());
      return;  // left pending: taken over after the claim timeout
    }
  }
}

}  // namespace

std::string default_consumer_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "worker");
  return std::string(host) + "-" + std::to_string(getpid());
}

size_t run_worker(const WorkerOptions& o, const Detector* model, const std::atomic<bool>& stop) {
  const std::string consumer = o.consumer.empty() ? default_consumer_name() : o.consumer;
  RedisClient redis(o.redis_url, 3, 10);
  JobQueue q(redis, o.queue);
  Backoff backoff(o.quiet);
  bool group_ready = false;
  size_t processed = 0;
  while (!stop.load() && (o.max_jobs <= 0 || processed < size_t(o.max_jobs))) {
    try {
      if (!group_ready) q.ensure_group();
      group_ready = true;
      auto claim = q.claim(consumer, o.block_ms);
      backoff.succeeded();
      if (!claim) continue;
      Outcome out;
      {
        Heartbeat beat(o, *claim, consumer);
        out = scan_job(o, q, *claim, model);
      }
      deliver(o, q, *claim, consumer, out, stop, backoff);
      ++processed;
    } catch (const RedisUnavailable& e) {
      backoff.failed(e.what(), stop);
    } catch (const RedisError& e) {
      backoff.failed(std::string("Redis error: ") + e.what(), stop);
      group_ready = false;
    }
  }
  try {
    q.leave(consumer);  // a clean stop leaves no idle consumer behind (unless it still holds a job)
  } catch (const std::exception&) {
  }
  return processed;
}

}  // namespace dfd::fleet
