#include "batch_run.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "dfd_config.h"
#include "report/html_report.h"
#include "report/report.h"

namespace fs = std::filesystem;

namespace dfd {

namespace {

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

BatchRow failed_row(const BatchInput& in, const std::string& kind, const std::string& error) {
  BatchRow row;
  row.input = in.source;
  row.status = BatchRow::Status::Failed;
  row.error_kind = kind;
  row.error = one_line(error);
  return row;
}

// An earlier run's report of this input, when it is complete (it parses, and
// the HTML is there when asked for): reports are only ever renamed into place
// whole, so a parsing one is one that was finished.
bool resume_row(const BatchInput& in, const BatchOptions& o, BatchRow* row) {
  const std::string json_path = report_json_path(o.output_dir, in);
  std::ifstream f(json_path, std::ios::binary);
  if (!f) return false;
  std::stringstream text;
  text << f.rdbuf();
  try {
    const Report r = Report::from_json(text.str());
    std::error_code ec;
    if (o.html && !fs::is_regular_file(report_html_path(o.output_dir, in), ec)) return false;
    *row = row_from_report(in.source, r, BatchRow::Status::Resumed);
    row->report = json_path;
    return true;
  } catch (const std::exception&) {
    return false;  // not ours, or damaged: scanned again and replaced
  }
}

std::string html_for(const Report& r, const ScanOptions& so, const BatchOptions& o, const Detector* model) {
  HtmlReportOptions ho;
  if (model) {  // an ensemble has no single card or picture model
    ho.model_card_json = model->card().to_json();
    ho.images = render_report_images(so, *model, most_suspicious(r, o.html_crops));
  }
  ho.generator = std::string("deepfake-scan ") + DFD_VERSION;
  return render_html_report(r, ho);
}

class Batch {
 public:
  Batch(const std::vector<BatchInput>& inputs, const BatchOptions& o, const Detector* model,
        const BatchObserver& observer, std::vector<std::string>* warnings)
      : inputs_(inputs), o_(o), model_(model), observer_(observer), warnings_(warnings), rows_(inputs.size()) {}

  std::vector<BatchRow> run() {
    const size_t n = std::min<size_t>(size_t(std::max(1, o_.jobs)), inputs_.size());
    std::vector<std::thread> workers;
    for (size_t i = 0; i < n; ++i) workers.emplace_back([this] { work(); });
    for (auto& t : workers) t.join();
    return std::move(rows_);
  }

 private:
  bool cancelled() const { return o_.cancel && o_.cancel->load(); }

  void work() {
    for (size_t i = next_++; i < inputs_.size(); i = next_++) {
      if (cancelled()) {
        rows_[i] = failed_row(inputs_[i], to_string(ScanErrorKind::Cancelled), "not scanned: the run was interrupted");
        continue;
      }
      notify_started(i);
      rows_[i] = one(inputs_[i]);
      notify_finished(i);
    }
  }

  BatchRow one(const BatchInput& in) {
    if (!in.error.empty()) return failed_row(in, to_string(ScanErrorKind::Input), in.error);
    BatchRow row;
    if (o_.resume && !o_.output_dir.empty() && resume_row(in, o_, &row)) return row;
    ScanOptions so = o_.scan;
    so.input = in.path;
    so.source_name = in.source;
    so.cancel = o_.cancel;
    std::vector<std::string> warnings;
    try {
      const Report r = run_scan(so, {}, model_, &warnings);
      row = row_from_report(in.source, r, BatchRow::Status::Scanned);
      if (!o_.output_dir.empty()) {
        // HTML first: the JSON is what marks the input done for --resume.
        if (o_.html) write_file_atomically(report_html_path(o_.output_dir, in), html_for(r, so, o_, model_));
        row.report = report_json_path(o_.output_dir, in);
        write_file_atomically(row.report, r.to_json(2) + "\n");
      }
    } catch (const ScanError& e) {
      return failed_row(in, to_string(e.kind()), e.what());
    } catch (const std::exception& e) {
      return failed_row(in, "error", e.what());
    }
    add_warnings(warnings);
    return row;
  }

  void notify_started(size_t i) {
    std::lock_guard<std::mutex> lock(observer_mu_);
    if (observer_.started) observer_.started(i);
  }
  void notify_finished(size_t i) {
    std::lock_guard<std::mutex> lock(observer_mu_);
    if (observer_.finished) observer_.finished(i, rows_[i]);
  }
  void add_warnings(const std::vector<std::string>& w) {
    if (!warnings_) return;
    std::lock_guard<std::mutex> lock(observer_mu_);
    for (const auto& s : w)
      if (seen_warnings_.insert(s).second) warnings_->push_back(s);
  }

  const std::vector<BatchInput>& inputs_;
  const BatchOptions& o_;
  const Detector* model_;
  const BatchObserver& observer_;
  std::vector<std::string>* warnings_;
  std::vector<BatchRow> rows_;  // each written by the one worker that took its index
  std::atomic<size_t> next_{0};
  std::mutex observer_mu_;
  std::set<std::string> seen_warnings_;
};

}  // namespace

std::string report_json_path(const std::string& dir, const BatchInput& in) {
  return (fs::path(dir) / (in.report_stem + ".json")).string();
}

std::string report_html_path(const std::string& dir, const BatchInput& in) {
  return (fs::path(dir) / (in.report_stem + ".html")).string();
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const fs::path p(path);
  const std::string tmp =
      (p.parent_path() / ("." + p.filename().string() + "." + std::to_string(getpid()) + ".partial")).string();
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t w = write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    done += size_t(w);
  }
  const int err = done < text.size() ? errno : 0;
  // fsync: after a crash the rename must not point at a file whose data never reached the disk.
  const bool ok = done == text.size() && fsync(fd) == 0;
  close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = err ? err : errno;
    unlink(tmp.c_str());
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(e));
  }
}

int threads_per_scan(int budget, int jobs) { return std::max(1, budget / std::max(1, jobs)); }

std::vector<BatchRow> run_batch(const std::vector<BatchInput>& inputs, const BatchOptions& options,
                                const Detector* model, const BatchObserver& observer,
                                std::vector<std::string>* warnings) {
  if (!options.output_dir.empty()) {
    std::error_code ec;
    fs::create_directories(options.output_dir, ec);
    if (ec || !fs::is_directory(options.output_dir))
      throw std::runtime_error("cannot make the output directory " + options.output_dir +
                               (ec ? ": " + ec.message() : std::string(": not a directory")));
  }
  return Batch(inputs, options, model, observer, warnings).run();
}

}  // namespace dfd
