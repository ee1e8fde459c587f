// The summary of a many-file scan: one row per input (scanned, taken from an
// earlier run's report by --resume, or failed), as a terminal table, CSV or
// JSON Lines, and the exit status of the whole run.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dfd {

struct BatchRow {
  enum class Status { Scanned, Resumed, Failed };
  std::string input;   // the file as listed
  Status status = Status::Failed;
  std::string verdict;  // FAKE, REAL, NO_FACE; empty when failed
  double fake_probability = 0, threshold = 0;
  uint64_t tracks = 0, frames = 0;
  double elapsed_s = 0;  // the scan's own time (from the report when resumed)
  std::string report;    // the JSON report's path; empty without --output-dir or when failed
  std::string error_kind, error;  // when failed: dfd::ScanErrorKind's name ("decode", "input", ...) and one line
};

const char* to_string(BatchRow::Status s);
struct Report;
// The row of a scanned (or resumed) input, from its report.
BatchRow row_from_report(const std::string& input, const Report& r, BatchRow::Status status);
// A failed row's error naming its input: "INPUT: error" unless the error already does.
std::string error_text(const BatchRow& row);  // "scanned", "resumed", "failed"

// CSV (RFC 4180: a header line, fields quoted when they hold , " or a line
// break) with the columns
//   input,status,verdict,fake_probability,threshold,tracks,frames,elapsed_s,report,error_kind,error
std::string summary_csv(const std::vector<BatchRow>& rows);
// One JSON object per line, the same fields (numbers as numbers).
std::string summary_jsonl(const std::vector<BatchRow>& rows);
// A table for the terminal: verdict, P(FAKE), tracks, frames, seconds, input
// (or the error), then a tally line.
std::string summary_table(const std::vector<BatchRow>& rows);

struct BatchTally {
  size_t fake = 0, real = 0, no_face = 0, failed = 0, resumed = 0;
};
BatchTally tally(const std::vector<BatchRow>& rows);

// Exit status of a many-file run (docs/scan.md):
//   0 every input scanned, none FAKE; 10 some FAKE, none failed;
//   1 some failed, none FAKE;          12 some FAKE and some failed.
constexpr int kExitBatchFakeAndFailed = 12;
int batch_exit_code(const std::vector<BatchRow>& rows);

}  // namespace dfd
