// Face detection on BGR frames (OpenCV). Detection runs on a downscaled copy
// of the frame and boxes are mapped back to full resolution.
#pragma once
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace dfd {

// Haar: OpenCV's frontal-face Haar cascade (the default). Lbp: OpenCV's
// improved LBP frontal-face cascade, several times faster at similar recall
// on our benchmark clips. YuNet: cv::FaceDetectorYN with a user-supplied ONNX.
enum class DetectorKind { Haar, YuNet, None, Lbp };
const char* to_string(DetectorKind k);
DetectorKind detector_kind_from_string(const std::string& s);  // throws std::invalid_argument

struct FaceDetectorConfig {
  DetectorKind kind = DetectorKind::Haar;
  std::string model_path;       // cascade XML or YuNet ONNX; empty = the kind's default cascade
  int detect_max_side = 480;    // frame downscaled so its longer side is at most this (0 = full size),
                                // but never below min_face_size -> 24 px (the cascade's window)...
  int detect_bound_side = 1280; // ...and whatever the two above say, never detected with a longer side
                                // above this: a huge frame (an 8000x8000 photo) costs a bounded time and
                                // memory, faces smaller than min_face_size x longer / this are missed
                                // there (0 = no bound)
  int min_face_size = 40;       // pixels, at full resolution; larger = faster cascade detection
  int max_faces = 8;            // largest faces kept
  float score_threshold = 0.6f; // YuNet only
  float scale_factor = 1.1f;    // Haar/LBP pyramid step (larger = faster, coarser)
};

struct Detection {
  cv::Rect box;  // full-resolution pixels
  float score = 1.f;
};

class FaceDetector {
 public:
  virtual ~FaceDetector() = default;
  // Faces, largest first, at most config.max_faces. With DetectorKind::None
  // the whole frame is one "face" (what the reference does without a face)
  // and min_face_size does not apply. An empty frame gives no faces.
  virtual std::vector<Detection> detect(const cv::Mat& bgr) = 0;
  // Throws std::runtime_error naming the path when a model file is missing
  // or unreadable (YuNet without model_path included).
  static std::unique_ptr<FaceDetector> create(const FaceDetectorConfig& config);
};

}  // namespace dfd
