// Face detection on its own thread, for live streams: the streaming thread
// hands over a frame when the detector is idle and carries on (the tracker
// coasts); results are picked up on a later frame. Detection is the most
// expensive per-frame step on the streaming thread (tens of ms with a
// cascade), so taking it off that thread is what keeps live latency low.
// Offline analysis keeps detection inline, which is deterministic.
#pragma once
#include <condition_variable>
#include <memory>
#include <mutex>
#include <opencv2/core.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "faces/face_detector.h"

namespace dfd {

struct AsyncDetections {
  int64_t frame_index = -1;  // the frame the detector looked at
  std::vector<Detection> detections;
};

class AsyncDetector {
 public:
  explicit AsyncDetector(std::unique_ptr<FaceDetector> detector);
  ~AsyncDetector();  // stops and joins the thread
  AsyncDetector(const AsyncDetector&) = delete;
  AsyncDetector& operator=(const AsyncDetector&) = delete;

  // Copies the frame and starts detecting on it; false (frame not taken)
  // while a detection is still running.
  bool submit(const cv::Mat& bgr, int64_t frame_index);
  // The finished detection not yet taken, if any.
  std::optional<AsyncDetections> poll();
  bool busy() const;
  // Forget the running detection's result (flush, seek).
  void reset();

 private:
  void run();
  std::unique_ptr<FaceDetector> detector_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  cv::Mat frame_;
  int64_t frame_index_ = -1;
  bool pending_ = false, running_ = false, stopping_ = false;
  uint64_t generation_ = 0;
  std::optional<AsyncDetections> result_;
  std::string error_;
  std::thread thread_;
};

}  // namespace dfd
