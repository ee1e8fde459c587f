#include "fleet_submit.h"

#include <glib.h>

#include <chrono>
#include <thread>

#include "fleet/job_queue.h"
#include "report/report.h"
#include "scan_batch/batch_inputs.h"
#include "scan_batch/batch_summary.h"

namespace dfd::fleet {

namespace {

struct Submitted {
  BatchInput input;
  std::string job_id;  // empty: not queued (row holds why)
  BatchRow row;
  bool finished = false;
};

BatchRow failed_row(const std::string& input, const std::string& kind, const std::string& error) {
  BatchRow row;
  row.input = input;
  row.status = BatchRow::Status::Failed;
  row.error_kind = kind;
  row.error = error;
  return row;
}

BatchRow row_of(const Submitted& s, const JobStatus& st) {
  if (st.state == "dead")
    return failed_row(s.input.source, "dead",
                      "dead-lettered after " + std::to_string(st.attempts) + " attempts: " + st.error + " (job " +
                          s.job_id + ")");
  try {
    return row_from_report(s.input.source, Report::from_json(st.report_json), BatchRow::Status::Scanned);
  } catch (const std::exception& e) {
    return failed_row(s.input.source, "internal", std::string("unreadable report: ") + e.what());
  }
}

std::string file_uri(const std::string& path) {
  gchar* u = g_filename_to_uri(path.c_str(), nullptr, nullptr);
  std::string uri = u ? u : "";
  g_free(u);
  return uri;
}

// Polls until every queued job is done or dead (or the time is up).
void wait_for(std::vector<Submitted>& jobs, JobQueue& q, const SubmitOptions& o, FILE* err) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  size_t left = 0, total = 0;
  for (const auto& j : jobs) left += !j.job_id.empty(), total += !j.job_id.empty();
  bool announced_down = false;
  while (left > 0) {
    try {
      for (auto& j : jobs) {
        if (j.job_id.empty() || j.finished) continue;
        const auto st = q.status(j.job_id);
        if (!st) {  // expired, or Redis restarted without its data
          j.row = failed_row(j.input.source, "lost", "job " + j.job_id + " is no longer in Redis");
        } else if (st->terminal()) {
          j.row = row_of(j, *st);
        } else {
          continue;
        }
        j.finished = true;
        --left;
        if (!o.quiet) std::fprintf(err, "deepfake-scan: %zu/%zu done\n", total - left, total);
      }
      announced_down = false;
    } catch (const RedisUnavailable& e) {
      if (!announced_down && !o.quiet) std::fprintf(err, "deepfake-scan: %s; still waiting\n", e.what());
      announced_down = true;
    }
    if (left == 0) break;
    if (o.wait_timeout_s > 0 && std::chrono::duration<double>(clock::now() - start).count() > o.wait_timeout_s) {
      for (auto& j : jobs)
        if (!j.job_id.empty() && !j.finished)
          j.row = failed_row(j.input.source, "timeout", "job " + j.job_id + " not finished within --wait-timeout");
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(left > 100 ? 1000 : 200));
  }
}

}  // namespace

int submit_inputs(const std::vector<std::string>& args, const SubmitOptions& o, FILE* out, FILE* err) {
  std::vector<std::string> notes;
  std::vector<Submitted> jobs;
  for (auto& in : expand_inputs(args, &notes)) jobs.push_back({in, "", {}, false});
  if (!o.quiet)
    for (const auto& n : notes) std::fprintf(err, "deepfake-scan: %s\n", n.c_str());
  RedisClient redis(o.redis_url, 3, 10);
  QueueConfig cfg;
  cfg.prefix = o.prefix;
  JobQueue q(redis, cfg);
  bool any_failed = false;
  try {
    q.ensure_group();
    for (auto& j : jobs) {
      if (!j.input.error.empty()) {
        j.row = failed_row(j.input.source, "input", j.input.error);
        any_failed = true;
        continue;
      }
      j.job_id = q.submit_uri(file_uri(j.input.path), j.input.source);
      if (!o.wait) std::fprintf(out, "%s\t%s\n", j.job_id.c_str(), j.input.source.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(err, "deepfake-scan: %s\n", e.what());
    return 1;
  }
  if (!o.wait) {
    for (const auto& j : jobs)
      if (!j.input.error.empty()) std::fprintf(err, "deepfake-scan: %s\n", error_text(j.row).c_str());
    return any_failed ? 1 : 0;
  }
  wait_for(jobs, q, o, err);
  std::vector<BatchRow> rows;
  for (const auto& j : jobs) rows.push_back(j.row);
  const std::string table = summary_table(rows);
  std::fwrite(table.data(), 1, table.size(), out);
  std::fflush(out);
  return batch_exit_code(rows);
}

}  // namespace dfd::fleet
