// deepfake-worker --history URL: each result this worker stored (only the
// one that won the idempotent write, so a job run twice is recorded once) is
// also recorded in the result history (src/history: SQLite or PostgreSQL).
#pragma once
#include <memory>
#include <string>

#include "fleet/job_queue.h"
#include "history/history_store.h"
#include "report/report.h"

namespace dfd::fleet {

class WorkerHistory {
 public:
  // Opens the store (throws std::runtime_error with the cause).
  explicit WorkerHistory(const std::string& url);
  // Answers the new entry's id. Throws std::runtime_error.
  int64_t record(const Claim& claim, const Report& report, const std::string& report_json,
                 const std::string& media_sha256);

 private:
  std::unique_ptr<history::HistoryStore> store_;
};

}  // namespace dfd::fleet
