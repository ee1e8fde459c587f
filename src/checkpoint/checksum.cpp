#include "checkpoint/checksum.h"

#include <algorithm>
#include <cstdio>

namespace dfd {

void Fnv1a64::mix(const void* data, size_t n) {
  auto* b = static_cast<const uint8_t*>(data);
  uint64_t h = h_;
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  h_ = h;
}

void Fnv1a64::mix_tensor(const std::string& name, const TensorData& t) {
  mix(name.data(), name.size());
  for (auto s : t.shape) mix(&s, sizeof s);
  mix(t.bytes.data(), t.bytes.size());
}

std::string Fnv1a64::hex() const {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h_));
  return buf;
}

std::string weights_checksum(const StateDict& tensors) {
  Fnv1a64 h;
  for (auto& [name, t] : tensors) h.mix_tensor(name, t);
  return h.hex();
}

ChecksumFollower::ChecksumFollower(const StateDict& sd) {
  for (const auto& entry : sd) order_.push_back(&entry);
  ready_.assign(order_.size(), false);
  worker_ = std::thread([this] { run(); });
}

ChecksumFollower::~ChecksumFollower() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    abandoned_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void ChecksumFollower::ready(const std::string& name) {
  const auto it = std::lower_bound(order_.begin(), order_.end(), name,
                                   [](const auto* entry, const std::string& n) { return entry->first < n; });
  if (it == order_.end() || (*it)->first != name) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ready_[size_t(it - order_.begin())] = true;
  }
  cv_.notify_all();
}

void ChecksumFollower::run() {
  Fnv1a64 h;
  for (size_t i = 0; i < order_.size(); ++i) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return ready_[i] || abandoned_; });
      if (abandoned_) return;
    }
    h.mix_tensor(order_[i]->first, order_[i]->second);
  }
  result_ = h.hex();
}

std::string ChecksumFollower::finish() {
  if (worker_.joinable()) worker_.join();
  return result_;
}

PendingChecksum checksum_in_background(const StateDict& sd) {
  auto follower = std::make_unique<ChecksumFollower>(sd);
  for (const auto& entry : sd) follower->ready(entry.first);
  return PendingChecksum(std::move(follower));
}

PendingChecksum::PendingChecksum() = default;
PendingChecksum::PendingChecksum(std::unique_ptr<ChecksumFollower> follower) : follower_(std::move(follower)) {}
PendingChecksum::PendingChecksum(PendingChecksum&&) noexcept = default;
PendingChecksum& PendingChecksum::operator=(PendingChecksum&&) noexcept = default;
PendingChecksum::~PendingChecksum() = default;

std::string PendingChecksum::get() {
  if (follower_) {
    value_ = follower_->finish();
    follower_.reset();
  }
  return value_;
}

}  // namespace dfd
