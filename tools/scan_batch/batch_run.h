// Scans many files in one process (deepfake-scan's many-file mode): the
// model loaded once and shared by every element, a bounded number of scans at
// once, one report per input written atomically into an output folder, and a
// summary row per input. One bad file is a failed row; the others go on.
#pragma once
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "batch_inputs.h"
#include "batch_summary.h"
#include "model/family.h"
#include "scan_runner.h"

namespace dfd {

struct BatchOptions {
  ScanOptions scan;         // model and element options; input and source_name are set per file
  std::string output_dir;   // where STEM.json (and STEM.html) go; empty: no reports
  bool html = false;        // also STEM.html (needs output_dir)
  int html_crops = 3;
  bool resume = false;      // an input whose complete report is already in output_dir is not scanned again
  int jobs = 1;             // scans at once
  const std::atomic<bool>* cancel = nullptr;  // stops the running scans and starts no more
};

// Told as inputs start and finish (from the worker threads, one call at a time).
struct BatchObserver {
  std::function<void(size_t index)> started;
  std::function<void(size_t index, const BatchRow& row)> finished;
};

// Scans every input; the rows come back in the inputs' order. `model` (the
// loaded single model; null for an ensemble) fills the reports' model fields
// and draws the HTML pictures. Warnings of the pipelines (e.g. an untrained
// model) are collected once each into `warnings`. Throws only for an output
// folder that cannot be made.
std::vector<BatchRow> run_batch(const std::vector<BatchInput>& inputs, const BatchOptions& options,
                                const Detector* model, const BatchObserver& observer = {},
                                std::vector<std::string>* warnings = nullptr);

// Paths of an input's reports in `dir`.
std::string report_json_path(const std::string& dir, const BatchInput& in);
std::string report_html_path(const std::string& dir, const BatchInput& in);

// Writes `text` to `path` so that no reader (nor a later --resume) ever sees
// half of it: a hidden temporary file beside it, flushed to disk, renamed
// over `path`. Throws std::runtime_error.
void write_file_atomically(const std::string& path, const std::string& text);

// An inference thread count per scan so that `jobs` scans together
// use about `budget` threads (each scan's thread gets its own OpenMP team).
int threads_per_scan(int budget, int jobs);

}  // namespace dfd
