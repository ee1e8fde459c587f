// deepfake-worker's loop (docs/fleet.md): claim a job from the Redis queue,
// fetch its media, scan it with the model held by the process, store the
// result (or the failure) and acknowledge; again until told to stop.
//
// Redis going away is a passing state: the loop waits and reconnects with a
// growing pause (0.2 s doubling up to 5 s) and says so once on stderr. A
// result that cannot be delivered is retried the same way; a job that is
// never acknowledged is taken over by another worker after the claim timeout.
// While a job is scanned, a second connection beats its claim every third of
// the claim timeout, so a long scan is not taken over.
#pragma once
#include <atomic>
#include <cstddef>
#include <functional>
#include <string>

#include "fleet/job_queue.h"
#include "report/report.h"
#include "scan_runner.h"

namespace dfd::fleet {

struct WorkerOptions {
  std::string redis_url;
  std::string consumer;  // this worker's name in the group; empty: HOST-PID
  QueueConfig queue;
  ScanOptions scan;      // model and element settings; input and source_name set per job
  int block_ms = 1000;   // how long one wait for a new job lasts (and how soon a stop is seen when idle)
  int max_jobs = 0;      // stop after this many jobs (0: never)
  size_t max_download_bytes = size_t(2) << 30;
  double download_timeout_s = 300;
  bool quiet = false;
  // Called once per job whose result this worker stored (CompleteOutcome::Won),
  // e.g. to record it in the result history, with the SHA-256 (hex) of the
  // media's bytes. Exceptions are reported, not fatal.
  std::function<void(const Claim&, const Report&, const std::string& report_json, const std::string& media_sha256)>
      on_result;
};

std::string default_consumer_name();

// Runs until `stop` is set (the current job is finished first) or max_jobs
// were done. Answers the number of jobs processed (done or failed).
size_t run_worker(const WorkerOptions& options, const Detector* model, const std::atomic<bool>& stop);

}  // namespace dfd::fleet
