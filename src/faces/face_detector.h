// Face detection on BGR frames (OpenCV). Detection runs on a downscaled copy
// of the frame and boxes are mapped back to full resolution.
#pragma once
#include <array>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace dfd {

// Haar: OpenCV's frontal-face Haar cascade. Lbp: OpenCV's improved LBP
// frontal-face cascade, several times faster at similar recall on our
// benchmark clips. YuNet: cv::FaceDetectorYN with the shipped ONNX
// (models/yunet/face_detection_yunet_2022mar.onnx) or the user's; it also
// gives 5 landmarks per face.
enum class DetectorKind { Haar, YuNet, None, Lbp };
const char* to_string(DetectorKind k);
DetectorKind detector_kind_from_string(const std::string& s);  // throws std::invalid_argument

struct FaceDetectorConfig {
  DetectorKind kind = DetectorKind::Haar;  // a bare config; the analyzer's and the element's default is YuNet
  std::string model_path;       // cascade XML or YuNet ONNX; empty = the kind's default (cascade from
                                // opencv-data, YuNet from find_default_yunet())
  int detect_max_side = 480;    // frame downscaled so its longer side is at most this (0 = full size),
                                // but never below min_face_size -> 24 px (the cascade's window)...
  int detect_bound_side = 1280; // ...and whatever the two above say, never detected with a longer side
                                // above this: a huge frame (an 8000x8000 photo) costs a bounded time and
                                // memory, faces smaller than min_face_size x longer / this are missed
                                // there (0 = no bound)
  int min_face_size = 40;       // pixels, at full resolution; larger = faster cascade detection
  int max_faces = 8;            // largest faces kept
  float score_threshold = 0.9f; // YuNet only: OpenCV's model zoo default; 0.6 let a black frame through as two faces (0.80, 0.73)
  float scale_factor = 1.1f;    // Haar/LBP pyramid step (larger = faster, coarser)
};

// YuNet's landmarks, in its order (the subject's sides: on a frontal face
// "right" is on the image's left): right eye, left eye, nose tip, right
// mouth corner, left mouth corner.
constexpr int kLandmarks = 5;
using Landmarks = std::array<cv::Point2f, kLandmarks>;

struct Detection {
  cv::Rect box;  // full-resolution pixels
  float score = 1.f;
  bool has_landmarks = false;  // YuNet only
  Landmarks landmarks{};       // full-resolution pixels, when has_landmarks
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

// The shipped YuNet file, relative to a model folder.
extern const char* const kDefaultYuNetFile;  // "yunet/face_detection_yunet_2022mar.onnx"
// Where it is looked for, in order, as the default detector model
// (dfd::find_default_model): $DFD_MODEL_DIR (the file below it, or directly
// in it), the installed data folder (<datadir>/deepfakedetect/models), the
// source tree's models/ folder.
std::vector<std::string> default_yunet_candidates();
// The first candidate that exists; "" when none does.
std::string find_default_yunet();

}  // namespace dfd
