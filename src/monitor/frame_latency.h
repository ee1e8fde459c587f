// Per-source "queue depth" and "added latency": the monitor stamps each
// frame (by PTS) when it enters deepfakedetect and looks the stamp up when it
// reaches the sink after deepfakemetapublish. No GStreamer here: the caller
// passes PTS and a monotonic time in microseconds. Thread-safe (the two
// probes run on streaming threads, the figures are read on the main loop).
//
// Memory is bounded: at most max_in_flight stamps (the oldest dropped when
// full) and the last `window` latencies. Frames reach the sink in the order
// they entered, so when one leaves, every stamp older than it belongs to a
// frame that was dropped on the way and is forgotten too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

namespace dfd::monitor {

struct LatencyStats {
  uint64_t queue_depth = 0;  // frames entered and not yet at the sink
  uint64_t window = 0;       // latencies in the sliding window (0: none yet)
  double last_s = 0, mean_s = 0, p50_s = 0, p99_s = 0;  // over the window
  double sum_s = 0;          // all frames since the monitor started
  uint64_t count = 0;
};

class FrameLatency {
 public:
  explicit FrameLatency(size_t window = 1000, size_t max_in_flight = 512);
  void entered(uint64_t pts, int64_t now_us);
  void left(uint64_t pts, int64_t now_us);  // unknown PTS: ignored
  // A new pipeline: stamps and window emptied; sum and count go on (they
  // are a Prometheus summary's counters, cumulative like the others).
  void reset();
  LatencyStats stats() const;

 private:
  struct Stamp {
    uint64_t pts;
    int64_t at_us;
  };
  const size_t window_size_, max_in_flight_;
  mutable std::mutex mu_;
  std::deque<Stamp> in_flight_;  // in arrival order
  std::vector<double> window_;   // ring of the last window_size_ latencies
  size_t next_ = 0;              // where the next latency goes in window_
  double last_s_ = 0, sum_s_ = 0;
  uint64_t count_ = 0;
};

}  // namespace dfd::monitor
