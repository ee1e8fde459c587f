#include "events/event_queue.h"

#include <utility>

namespace dfd::events {

EventQueue::EventQueue(size_t capacity) : capacity_(capacity) {}

bool EventQueue::push(std::string event) {
  bool kept_all = true;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (capacity_ == 0) {
      dropped_++;
      return false;
    }
    if (q_.size() >= capacity_) {
      q_.pop_front();
      dropped_++;
      kept_all = false;
    }
    q_.push_back(std::move(event));
  }
  cv_.notify_one();
  return kept_all;
}

void EventQueue::push_front(std::string event) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (q_.size() >= capacity_) {
      dropped_++;
      return;
    }
    q_.push_front(std::move(event));
  }
  cv_.notify_one();
}

std::optional<std::string> EventQueue::pop(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait_for(lk, timeout, [&] { return closed_ || !q_.empty(); });
  if (q_.empty()) return std::nullopt;
  std::string e = std::move(q_.front());
  q_.pop_front();
  return e;
}

std::deque<std::string> EventQueue::take_all() {
  std::lock_guard<std::mutex> lk(mu_);
  return std::exchange(q_, {});
}

void EventQueue::notify() { cv_.notify_all(); }

void EventQueue::close() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

size_t EventQueue::size() const {
  std::lock_guard<std::mutex> lk(mu_);
  return q_.size();
}

uint64_t EventQueue::dropped() const {
  std::lock_guard<std::mutex> lk(mu_);
  return dropped_;
}

void EventQueue::count_dropped(uint64_t n) {
  std::lock_guard<std::mutex> lk(mu_);
  dropped_ += n;
}

}  // namespace dfd::events
