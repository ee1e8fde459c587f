#include "batch_progress.h"

#include <chrono>

namespace dfd {

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string clock_text(double s) {
  const long t = long(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

}  // namespace

BatchProgress::BatchProgress(FILE* out, size_t total, bool terminal, bool quiet)
    : out_(out), total_(total), terminal_(terminal), quiet_(quiet || !out), t0_(now_s()) {}

std::string BatchProgress::bar_line(size_t done, size_t total, size_t fake, size_t failed, size_t running,
                                    double elapsed_s, int width) {
  const int filled = total ? int(double(width) * double(done) / double(total)) : width;
  std::string s = "[" + std::string(size_t(filled), '#') + std::string(size_t(width - filled), '-') + "]";
  char buf[200];
  std::snprintf(buf, sizeof buf, "  %zu/%zu files  %zu FAKE  %zu failed  %zu running  %s", done, total, fake, failed,
                running, clock_text(elapsed_s).c_str());
  s += buf;
  // Files take very different times: the estimate is the mean so far.
  if (done > 0 && done < total) s += "  ETA " + clock_text(elapsed_s / double(done) * double(total - done));
  return s;
}

std::string BatchProgress::plain_line(size_t done, size_t total, const BatchRow& row) {
  char head[64];
  std::snprintf(head, sizeof head, "[%zu/%zu] ", done, total);
  if (row.status == BatchRow::Status::Failed) return head + std::string("FAILED ") + error_text(row);
  char nums[64];
  std::snprintf(nums, sizeof nums, " %.4f ", row.fake_probability);
  char secs[64];
  std::snprintf(secs, sizeof secs, " (%.2f s%s)", row.elapsed_s,
                row.status == BatchRow::Status::Resumed ? ", from an earlier report" : "");
  return head + row.verdict + nums + row.input + secs;
}

void BatchProgress::started() {
  ++running_;
  draw();
}

void BatchProgress::finished(const BatchRow& row) {
  if (running_) --running_;
  ++done_;
  if (row.status == BatchRow::Status::Failed)
    ++failed_;
  else if (row.verdict == "FAKE")
    ++fake_;
  if (quiet_) return;
  if (!terminal_) {
    std::fprintf(out_, "%s\n", plain_line(done_, total_, row).c_str());
    std::fflush(out_);
    return;
  }
  if (row.status == BatchRow::Status::Failed) {  // above the bar, so that it stays on screen
    finish();
    std::fprintf(out_, "%s\n", plain_line(done_, total_, row).c_str());
  }
  draw();
}

void BatchProgress::draw() {
  if (quiet_ || !terminal_) return;
  const std::string line = bar_line(done_, total_, fake_, failed_, running_, now_s() - t0_);
  // Pad over a longer previous line.
  std::fprintf(out_, "\r%s%s", line.c_str(), std::string(last_len_ > line.size() ? last_len_ - line.size() : 0, ' ').c_str());
  std::fflush(out_);
  last_len_ = line.size();
}

void BatchProgress::finish() {
  if (quiet_ || !terminal_ || last_len_ == 0) return;
  std::fprintf(out_, "\r%s\r", std::string(last_len_, ' ').c_str());
  std::fflush(out_);
  last_len_ = 0;
}

}  // namespace dfd
