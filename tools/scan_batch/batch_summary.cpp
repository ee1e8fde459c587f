#include "batch_summary.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "report/report.h"

namespace dfd {

namespace {

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

bool failed(const BatchRow& r) { return r.status == BatchRow::Status::Failed; }

// Numbers of a failed row are empty (CSV) or null (JSON): nothing was measured.
std::vector<std::string> csv_values(const BatchRow& r) {
  const bool f = failed(r);
  return {r.input,
          to_string(r.status),
          r.verdict,
          f ? "" : fixed(r.fake_probability, 6),
          f ? "" : fixed(r.threshold, 6),
          f ? "" : std::to_string(r.tracks),
          f ? "" : std::to_string(r.frames),
          f ? "" : fixed(r.elapsed_s, 3),
          r.report,
          r.error_kind,
          r.error};
}

}  // namespace

BatchRow row_from_report(const std::string& input, const Report& r, BatchRow::Status status) {
  BatchRow row;
  row.input = input;
  row.status = status;
  row.verdict = r.verdict;
  row.fake_probability = r.fake_probability;
  row.threshold = r.threshold;
  row.tracks = r.tracks.size();
  row.frames = r.stats.frames;
  row.elapsed_s = r.stats.elapsed_s;
  return row;
}

const char* to_string(BatchRow::Status s) {
  switch (s) {
    case BatchRow::Status::Scanned: return "scanned";
    case BatchRow::Status::Resumed: return "resumed";
    case BatchRow::Status::Failed: return "failed";
  }
  return "?";
}

std::string error_text(const BatchRow& r) {
  if (r.error.find(r.input) != std::string::npos) return r.error;
  return r.input + ": " + r.error;
}

std::string summary_csv(const std::vector<BatchRow>& rows) {
  std::string out = "input,status,verdict,fake_probability,threshold,tracks,frames,elapsed_s,report,error_kind,error\n";
  for (const auto& r : rows) {
    std::string line;
    for (const auto& v : csv_values(r)) line += (line.empty() ? "" : ",") + csv_field(v);
    out += line + "\n";
  }
  return out;
}

std::string summary_jsonl(const std::vector<BatchRow>& rows) {
  std::string out;
  for (const auto& r : rows) {
    nlohmann::ordered_json j;
    const bool f = failed(r);
    j["input"] = r.input;
    j["status"] = to_string(r.status);
    j["verdict"] = f ? nlohmann::ordered_json() : nlohmann::ordered_json(r.verdict);
    j["fake_probability"] = f ? nlohmann::ordered_json() : nlohmann::ordered_json(r.fake_probability);
    j["threshold"] = f ? nlohmann::ordered_json() : nlohmann::ordered_json(r.threshold);
    j["tracks"] = f ? nlohmann::ordered_json() : nlohmann::ordered_json(r.tracks);
    j["frames"] = f ? nlohmann::ordered_json() : nlohmann::ordered_json(r.frames);
    j["elapsed_s"] = f ? nlohmann::ordered_json() : nlohmann::ordered_json(r.elapsed_s);
    j["report"] = r.report.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(r.report);
    j["error_kind"] = f ? nlohmann::ordered_json(r.error_kind) : nlohmann::ordered_json();
    j["error"] = f ? nlohmann::ordered_json(r.error) : nlohmann::ordered_json();
    // File names need not be UTF-8: replace what is not, rather than fail.
    out += j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  }
  return out;
}

BatchTally tally(const std::vector<BatchRow>& rows) {
  BatchTally t;
  for (const auto& r : rows) {
    if (r.status == BatchRow::Status::Resumed) ++t.resumed;
    if (failed(r))
      ++t.failed;
    else if (r.verdict == "FAKE")
      ++t.fake;
    else if (r.verdict == "REAL")
      ++t.real;
    else
      ++t.no_face;
  }
  return t;
}

std::string summary_table(const std::vector<BatchRow>& rows) {
  std::string out = "VERDICT   P(FAKE)  TRACKS   FRAMES  SECONDS  INPUT\n";
  char buf[160];
  for (const auto& r : rows) {
    if (failed(r)) {
      std::snprintf(buf, sizeof buf, "%-8s  %7s  %6s  %7s  %7s  ", "FAILED", "-", "-", "-", "-");
      out += buf + error_text(r) + "\n";
      continue;
    }
    std::snprintf(buf, sizeof buf, "%-8s  %7.4f  %6llu  %7llu  %7.2f  ", r.verdict.c_str(), r.fake_probability,
                  (unsigned long long)r.tracks, (unsigned long long)r.frames, r.elapsed_s);
    out += buf + r.input + (r.status == BatchRow::Status::Resumed ? "  (resumed)" : "") + "\n";
  }
  const BatchTally t = tally(rows);
  std::snprintf(buf, sizeof buf, "%zu inputs: %zu FAKE, %zu REAL, %zu NO_FACE, %zu failed", rows.size(), t.fake,
                t.real, t.no_face, t.failed);
  out += buf;
  if (t.resumed) out += " (" + std::to_string(t.resumed) + " from earlier reports)";
  return out + "\n";
}

int batch_exit_code(const std::vector<BatchRow>& rows) {
  const BatchTally t = tally(rows);
  if (t.fake && t.failed) return kExitBatchFakeAndFailed;
  if (t.fake) return 10;   // kExitFake
  if (t.failed) return 1;  // kExitError
  return 0;
}

}  // namespace dfd
