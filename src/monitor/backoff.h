// The reconnect policy of a source: exponential backoff, capped.
// Delays double from initial_s up to max_s after every failed start and go
// back to initial_s once the source delivers frames again.
#pragma once

namespace dfd::monitor {

class Backoff {
 public:
  Backoff(double initial_s, double max_s) : initial_s_(initial_s), max_s_(max_s), next_s_(initial_s) {}
  // The delay before the next attempt; the one after it doubles (capped).
  double next_delay() {
    const double d = next_s_;
    next_s_ = next_s_ * 2 > max_s_ ? max_s_ : next_s_ * 2;
    return d;
  }
  void reset() { next_s_ = initial_s_; }  // the source works again
  double peek() const { return next_s_; }

 private:
  double initial_s_, max_s_, next_s_;
};

}  // namespace dfd::monitor
