#include "faces/async_detector.h"

#include <stdexcept>

namespace dfd {

AsyncDetector::AsyncDetector(std::unique_ptr<FaceDetector> detector) : detector_(std::move(detector)) {
  if (!detector_) throw std::invalid_argument("AsyncDetector needs a detector");
  thread_ = std::thread([this] { run(); });
}

AsyncDetector::~AsyncDetector() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool AsyncDetector::submit(const cv::Mat& bgr, int64_t frame_index) {
  std::lock_guard<std::mutex> lk(mu_);
  if (pending_ || running_) return false;
  bgr.copyTo(frame_);  // the caller's frame goes downstream; keep our own
  frame_index_ = frame_index;
  pending_ = true;
  cv_.notify_all();
  return true;
}

std::optional<AsyncDetections> AsyncDetector::poll() {
  std::lock_guard<std::mutex> lk(mu_);
  if (!error_.empty()) {
    std::string e;
    e.swap(error_);
    throw std::runtime_error("face detection failed: " + e);
  }
  std::optional<AsyncDetections> r;
  r.swap(result_);
  return r;
}

bool AsyncDetector::busy() const {
  std::lock_guard<std::mutex> lk(mu_);
  return pending_ || running_;
}

void AsyncDetector::reset() {
  std::lock_guard<std::mutex> lk(mu_);
  ++generation_;  // a detection running now will be discarded
  pending_ = false;
  result_.reset();
}

void AsyncDetector::run() {
  std::unique_lock<std::mutex> lk(mu_);
  while (true) {
    cv_.wait(lk, [&] { return pending_ || stopping_; });
    if (stopping_) return;
    cv::Mat frame = frame_;
    const int64_t index = frame_index_;
    const uint64_t gen = generation_;
    pending_ = false;
    running_ = true;
    lk.unlock();
    AsyncDetections r;
    r.frame_index = index;
    std::string err;
    try {
      r.detections = detector_->detect(frame);
    } catch (const std::exception& e) {
      err = e.what();
    }
    lk.lock();
    running_ = false;
    if (gen != generation_) continue;
    if (!err.empty()) error_ = err;
    else result_ = std::move(r);
  }
}

}  // namespace dfd
