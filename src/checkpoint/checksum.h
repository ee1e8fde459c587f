// The weights' checksum (weights_checksum in checkpoint/state_dict.h): 64-bit
// FNV-1a over each tensor's name, shape and bytes, in name order. Byte by
// byte, so about 0.35 s for ResNeXt's 227 MB on one core: the safetensors
// reader computes it on a second thread that follows the reads tensor by
// tensor (ChecksumFollower), so that a model's load does not wait for it.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/state_dict.h"

namespace dfd {

class Fnv1a64 {
 public:
  void mix(const void* data, size_t n);
  void mix_tensor(const std::string& name, const TensorData& t);  // what weights_checksum mixes per tensor
  std::string hex() const;  // 16 lowercase hex digits

 private:
  uint64_t h_ = 1469598103934665603ull;
};

// Hashes the tensors of `sd` in name order on its own thread as each is
// marked ready; the caller fills them in any order. Every tensor of `sd`
// must exist before the follower starts (their nodes must not move), and
// the caller must not touch a tensor after marking it ready.
class ChecksumFollower {
 public:
  explicit ChecksumFollower(const StateDict& sd);
  ~ChecksumFollower();  // abandons the work when finish() was not called
  ChecksumFollower(const ChecksumFollower&) = delete;
  ChecksumFollower& operator=(const ChecksumFollower&) = delete;

  void ready(const std::string& name);
  std::string finish();  // waits for the last tensor; the checksum

 private:
  void run();
  std::vector<const std::pair<const std::string, TensorData>*> order_;
  std::vector<bool> ready_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool abandoned_ = false;
  std::string result_;
  std::thread worker_;
};

// weights_checksum(sd) on another thread, for tensors already all in memory
// (a .pt, an untrained model): the same follower, every tensor ready.
PendingChecksum checksum_in_background(const StateDict& sd);

}  // namespace dfd
