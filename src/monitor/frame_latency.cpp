#include "monitor/frame_latency.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace dfd::monitor {

FrameLatency::FrameLatency(size_t window, size_t max_in_flight)
    : window_size_(std::max<size_t>(window, 1)), max_in_flight_(std::max<size_t>(max_in_flight, 1)) {}

void FrameLatency::entered(uint64_t pts, int64_t now_us) {
  std::lock_guard<std::mutex> lock(mu_);
  if (in_flight_.size() >= max_in_flight_) in_flight_.pop_front();
  in_flight_.push_back({pts, now_us});
}

void FrameLatency::left(uint64_t pts, int64_t now_us) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = std::find_if(in_flight_.begin(), in_flight_.end(), [pts](const Stamp& s) { return s.pts == pts; });
  if (it == in_flight_.end()) return;
  const double latency_s = double(std::max<int64_t>(now_us - it->at_us, 0)) / 1e6;
  in_flight_.erase(in_flight_.begin(), it + 1);  // it, and the frames dropped before it
  if (window_.size() < window_size_) window_.push_back(latency_s);
  else window_[next_] = latency_s;
  next_ = (next_ + 1) % window_size_;
  last_s_ = latency_s;
  sum_s_ += latency_s;
  ++count_;
}

void FrameLatency::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_.clear();
  window_.clear();
  next_ = 0;
  last_s_ = 0;
}

namespace {

// The q-quantile of `v` (sorted in place), nearest rank: a latency that was
// really seen, never an interpolation.
double quantile(std::vector<double>& v, double q) {
  const size_t rank = size_t(std::ceil(q * double(v.size())));
  const size_t i = rank == 0 ? 0 : rank - 1;
  std::nth_element(v.begin(), v.begin() + long(i), v.end());
  return v[i];
}

}  // namespace

LatencyStats FrameLatency::stats() const {
  std::vector<double> w;
  LatencyStats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    w = window_;
    s.queue_depth = in_flight_.size();
    s.last_s = last_s_;
    s.sum_s = sum_s_;
    s.count = count_;
  }
  s.window = w.size();
  if (w.empty()) return s;
  s.mean_s = std::accumulate(w.begin(), w.end(), 0.0) / double(w.size());
  s.p50_s = quantile(w, 0.5);
  s.p99_s = quantile(w, 0.99);
  return s;
}

}  // namespace dfd::monitor
