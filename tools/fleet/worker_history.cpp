#include "worker_history.h"

namespace dfd::fleet {

WorkerHistory::WorkerHistory(const std::string& url) : store_(history::open_history_store(url)) {}

int64_t WorkerHistory::record(const Claim& claim, const Report& report, const std::string& report_json,
                              const std::string& media_sha256) {
  history::ScanEntry e;
  e.time_ms = now_ms();
  e.source = claim.source;
  e.media_sha256 = media_sha256;
  e.model = report.model.name;
  e.model_key = report.model.checksum;  // the same weights and card give the same checksum
  e.verdict = report.verdict;
  e.probability = report.fake_probability;
  e.report_json = report_json;
  return store_->record(e);
}

}  // namespace dfd::fleet
