// The overall progress of a many-file scan on stderr: on a terminal one line
// redrawn as inputs start and finish,
//   [#########---------------]  12/40 files  3 FAKE  1 failed  2 running  0:35  ETA 1:05
// (a failed input's line printed above it), otherwise (a log, a pipe) one
// plain line per finished input,
//   [12/40] FAKE 0.9123 archive/a.mp4 (1.20 s)
//   [13/40] FAILED archive/b.mp4: decode: b.mp4: no frame could be decoded ...
#pragma once
#include <cstdio>
#include <string>

#include "batch_summary.h"

namespace dfd {

class BatchProgress {
 public:
  // `terminal`: redraw one line (else plain lines); `quiet`: print nothing.
  BatchProgress(FILE* out, size_t total, bool terminal, bool quiet);
  void started();
  void finished(const BatchRow& row);
  void finish();  // clears the line on a terminal

  // The texts, for tests.
  static std::string bar_line(size_t done, size_t total, size_t fake, size_t failed, size_t running,
                              double elapsed_s, int width = 24);
  static std::string plain_line(size_t done, size_t total, const BatchRow& row);

 private:
  void draw();
  FILE* out_;
  size_t total_, done_ = 0, running_ = 0, fake_ = 0, failed_ = 0;
  bool terminal_, quiet_;
  double t0_;
  size_t last_len_ = 0;
};

}  // namespace dfd
