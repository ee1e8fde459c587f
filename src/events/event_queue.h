// A bounded FIFO of serialised events between the streaming thread (push,
// never waits) and a sender thread (waits). When full, the oldest event is
// dropped and counted: a live monitor wants the newest verdicts, and the
// count tells exactly how many were lost.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

namespace dfd::events {

class EventQueue {
 public:
  explicit EventQueue(size_t capacity);

  // Never blocks (beyond the lock). Returns false when an older event had to
  // be dropped to make room (capacity 0: this one is dropped).
  bool push(std::string event);
  // Puts back an event the sender could not deliver, ahead of the others; if
  // the queue filled up meanwhile the oldest (this one) is dropped instead.
  void push_front(std::string event);
  // Waits up to `timeout` for an event (close() wakes it at once).
  std::optional<std::string> pop(std::chrono::milliseconds timeout);
  // Takes every event left (at close, to count or write them).
  std::deque<std::string> take_all();
  // Wakes the waiting sender (e.g. when a connection came back).
  void notify();
  void close();

  size_t size() const;
  uint64_t dropped() const;
  size_t capacity() const { return capacity_; }
  // Adds events lost elsewhere (undelivered at shutdown) to the same count.
  void count_dropped(uint64_t n);

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> q_;
  uint64_t dropped_ = 0;
  bool closed_ = false;
};

}  // namespace dfd::events
