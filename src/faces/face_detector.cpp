// Face detectors: OpenCV's Haar and LBP cascades (Debian's opencv-data),
// YuNet through cv::FaceDetectorYN (the shipped ONNX unless another is
// given), and "none" (the whole frame is the face).
#include "faces/face_detector.h"

#include <algorithm>
#include <cstdlib>
#include <cmath>
#include <fstream>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>
#include <stdexcept>
#include <sys/stat.h>

#include "dfd_config.h"

namespace dfd {

const char* to_string(DetectorKind k) {
  switch (k) {
    case DetectorKind::Haar: return "haar";
    case DetectorKind::YuNet: return "yunet";
    case DetectorKind::None: return "none";
    case DetectorKind::Lbp: return "lbp";
  }
  return "?";
}

DetectorKind detector_kind_from_string(const std::string& s) {
  if (s == "haar") return DetectorKind::Haar;
  if (s == "yunet") return DetectorKind::YuNet;
  if (s == "none") return DetectorKind::None;
  if (s == "lbp") return DetectorKind::Lbp;
  throw std::invalid_argument("unknown face detector '" + s + "' (expected haar, lbp, yunet or none)");
}

namespace {

// OpenCV's loaders report a missing file only as "empty classifier" or a
// cryptic DNN parse error, so the path is checked first to name it.
void require_readable(const std::string& path, const char* what) {
  if (path.empty()) throw std::runtime_error(std::string(what) + ": no model file given");
  std::ifstream f(path, std::ios::binary);
  if (!f.good()) throw std::runtime_error(std::string(what) + ": cannot read '" + path + "'");
}

// Factor that brings the longer side down to max_side (never enlarges).
double detect_scale(const cv::Mat& frame, int max_side) {
  const int longer = std::max(frame.cols, frame.rows);
  if (max_side <= 0 || longer <= max_side) return 1.0;
  return double(max_side) / longer;
}

// `scale` lowered, if needed, so the detection frame's longer side stays
// within config.detect_bound_side.
double bounded_scale(const cv::Mat& frame, double scale, const FaceDetectorConfig& c) {
  return std::min(scale, detect_scale(frame, c.detect_bound_side));
}

cv::Mat downscale(const cv::Mat& src, double scale) {
  if (scale >= 1.0) return src;
  cv::Mat out;
  const cv::Size sz(std::max(1, int(std::lround(src.cols * scale))),
                    std::max(1, int(std::lround(src.rows * scale))));
  // INTER_AREA averages instead of skipping pixels: fewer aliasing artefacts
  // for the cascade to fire on.
  cv::resize(src, out, sz, 0, 0, cv::INTER_AREA);
  return out;
}

// Every default-model place joined, for the error when none holds the file.
std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

cv::Rect upscale(const cv::Rect2f& r, double scale, const cv::Size& frame) {
  const double inv = 1.0 / scale;
  const int x0 = int(std::floor(r.x * inv)), y0 = int(std::floor(r.y * inv));
  const int x1 = int(std::ceil((r.x + r.width) * inv)), y1 = int(std::ceil((r.y + r.height) * inv));
  return cv::Rect(cv::Point(x0, y0), cv::Point(x1, y1)) & cv::Rect(cv::Point(0, 0), frame);
}

// Common tail of every detector: size filter, largest first, at most max_faces.
std::vector<Detection> finish(std::vector<Detection> dets, const FaceDetectorConfig& c) {
  dets.erase(std::remove_if(dets.begin(), dets.end(),
                            [&](const Detection& d) {
                              return d.box.empty() || d.box.width < c.min_face_size ||
                                     d.box.height < c.min_face_size;
                            }),
             dets.end());
  std::stable_sort(dets.begin(), dets.end(),
                   [](const Detection& a, const Detection& b) { return a.box.area() > b.box.area(); });
  if (c.max_faces >= 0 && dets.size() > size_t(c.max_faces)) dets.resize(size_t(c.max_faces));
  return dets;
}

class HaarDetector : public FaceDetector {
 public:
  explicit HaarDetector(const FaceDetectorConfig& c) : config_(c) {
    if (config_.model_path.empty())
      config_.model_path = config_.kind == DetectorKind::Lbp ? DFD_LBP_CASCADE : DFD_HAAR_CASCADE;
    if (!(config_.scale_factor > 1.0f)) throw std::invalid_argument("cascade scale factor must be > 1");
    require_readable(config_.model_path, "Haar cascade");
    bool ok = false;
    try {
      ok = cascade_.load(config_.model_path) && !cascade_.empty();
    } catch (const cv::Exception&) {
      // OpenCV's XML reader throws on files that are not XML at all.
    }
    if (!ok) throw std::runtime_error("Haar cascade: '" + config_.model_path + "' is not a valid cascade file");
  }

  std::vector<Detection> detect(const cv::Mat& frame) override {
    if (frame.empty()) return {};
    cv::Mat gray;
    if (frame.channels() == 3) cv::cvtColor(frame, gray, cv::COLOR_BGR2GRAY);
    else if (frame.channels() == 4) cv::cvtColor(frame, gray, cv::COLOR_BGRA2GRAY);
    else gray = frame;
    // Downscale for speed, but never so far that a face of min_face_size
    // falls below the cascade's 24x24 window: at 720p with 40 px faces the
    // 480 px default alone would miss every small face (measured: 4 faces of
    // 53 px in a 1280x720 frame, none found at 480 px).
    const double floor_scale = std::min(1.0, double(kCascadeWindow) / std::max(1, config_.min_face_size));
    // A bound on top: on an 8000x8000 picture the floor alone meant a
    // 4800x4800 cascade pyramid (21 s, 2.3 GB).
    const double scale = bounded_scale(gray, std::max(detect_scale(gray, config_.detect_max_side), floor_scale), config_);
    // No histogram equalisation: on frames with textured backgrounds it
    // stretched the background and lost faces (measured on the benchmark
    // clips: 4 % detection rate at 480 px with it, 98 % without).
    cv::Mat small = downscale(gray, scale);

    // Ask the cascade for no smaller faces than the caller wants (it cannot
    // go below its own 24x24 window anyway); the exact size filter runs at
    // full resolution in finish().
    const int min_side = std::max(0, int(std::floor(config_.min_face_size * scale)));
    std::vector<cv::Rect> boxes;
    cascade_.detectMultiScale(small, boxes, config_.scale_factor, kMinNeighbors, 0, cv::Size(min_side, min_side));

    std::vector<Detection> dets;
    dets.reserve(boxes.size());
    for (const cv::Rect& b : boxes) dets.push_back({upscale(cv::Rect2f(b), scale, frame.size()), 1.f});
    return finish(std::move(dets), config_);
  }

 private:
  // 6 neighbours rather than OpenCV's usual 5: without histogram
  // equalisation 5 let a false face through on the letterboxed portrait,
  // 6 keeps it out and still finds every face of the benchmark clips.
  static constexpr int kMinNeighbors = 6;
  static constexpr int kCascadeWindow = 24;  // frontal-face cascades' smallest window
  FaceDetectorConfig config_;
  cv::CascadeClassifier cascade_;
};

class YuNetDetector : public FaceDetector {
 public:
  explicit YuNetDetector(const FaceDetectorConfig& c) : config_(c) {
    if (config_.model_path.empty()) {
      config_.model_path = find_default_yunet();
      if (config_.model_path.empty())
        throw std::runtime_error("YuNet model: no face-detector-model given and the shipped " +
                                 std::string(kDefaultYuNetFile) + " is in none of: " + joined(default_yunet_candidates()));
    }
    require_readable(config_.model_path, "YuNet model");
    try {
      net_ = cv::FaceDetectorYN::create(config_.model_path, "", cv::Size(320, 320), config_.score_threshold);
    } catch (const cv::Exception& e) {
      throw std::runtime_error("YuNet model: cannot load '" + config_.model_path + "': " + e.what());
    }
    if (!net_) throw std::runtime_error("YuNet model: cannot load '" + config_.model_path + "'");
  }

  std::vector<Detection> detect(const cv::Mat& frame) override {
    if (frame.empty()) return {};
    cv::Mat bgr = frame;
    if (frame.channels() == 1) cv::cvtColor(frame, bgr, cv::COLOR_GRAY2BGR);
    else if (frame.channels() == 4) cv::cvtColor(frame, bgr, cv::COLOR_BGRA2BGR);
    const double scale = bounded_scale(bgr, detect_scale(bgr, config_.detect_max_side), config_);
    cv::Mat small = downscale(bgr, scale);
    // The network sees the whole downscaled frame (no letterbox): input size
    // changes only when the frame size does, so OpenCV reuses its buffers.
    cv::Mat faces;  // one row per face: x, y, w, h, 5 landmarks (x, y), score
    if (small.cols >= kMinInput && small.rows >= kMinInput) {
      set_input_size(small.size());
      net_->detect(small, faces);
    } else {
      // OpenCV 4.6's YuNet cannot shape an input under 64 px a side (a 64x48
      // frame throws from getLayerShapesRecursively): pad on the right and
      // bottom, where boxes keep their coordinates.
      cv::Mat padded;
      cv::copyMakeBorder(small, padded, 0, std::max(0, kMinInput - small.rows), 0, std::max(0, kMinInput - small.cols),
                         cv::BORDER_CONSTANT, cv::Scalar::all(0));
      set_input_size(padded.size());
      net_->detect(padded, faces);
    }

    std::vector<Detection> dets;
    for (int i = 0; i < faces.rows; ++i) {
      const float* r = faces.ptr<float>(i);
      Detection d{upscale(cv::Rect2f(r[0], r[1], r[2], r[3]), scale, frame.size()), r[14]};
      d.has_landmarks = true;
      for (int k = 0; k < kLandmarks; ++k)
        d.landmarks[size_t(k)] = cv::Point2f(float(r[4 + 2 * k] / scale), float(r[5 + 2 * k] / scale));
      dets.push_back(d);
    }
    return finish(std::move(dets), config_);
  }

 private:
  static constexpr int kMinInput = 64;
  void set_input_size(cv::Size s) {
    if (s != input_size_) {
      net_->setInputSize(s);
      input_size_ = s;
    }
  }

  FaceDetectorConfig config_;
  cv::Ptr<cv::FaceDetectorYN> net_;
  cv::Size input_size_;
};

// The reference classifies the whole frame when it finds no face; this makes
// that the explicit behaviour. The size filter does not apply: a frame is
// never "too small" to be analysed.
class WholeFrameDetector : public FaceDetector {
 public:
  std::vector<Detection> detect(const cv::Mat& frame) override {
    if (frame.empty()) return {};
    return {Detection{cv::Rect(0, 0, frame.cols, frame.rows), 1.f}};
  }
};

}  // namespace

const char* const kDefaultYuNetFile = "yunet/face_detection_yunet_2022mar.onnx";

std::vector<std::string> default_yunet_candidates() {
  std::vector<std::string> out;
  const std::string file(kDefaultYuNetFile);
  const char* env = std::getenv("DFD_MODEL_DIR");
  if (env && *env) {
    out.push_back(std::string(env) + "/" + file);
    out.push_back(std::string(env) + "/" + file.substr(file.rfind('/') + 1));
  }
  out.push_back(std::string(DFD_INSTALLED_MODEL_DIR) + "/" + file);
  out.push_back(std::string(DFD_SOURCE_MODEL_DIR) + "/" + file);
  return out;
}

std::string find_default_yunet() {
  for (const auto& p : default_yunet_candidates()) {
    struct stat st;
    if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return p;
  }
  return "";
}

std::unique_ptr<FaceDetector> FaceDetector::create(const FaceDetectorConfig& config) {
  switch (config.kind) {
    case DetectorKind::Haar:
    case DetectorKind::Lbp: return std::make_unique<HaarDetector>(config);
    case DetectorKind::YuNet: return std::make_unique<YuNetDetector>(config);
    case DetectorKind::None: return std::make_unique<WholeFrameDetector>();
  }
  throw std::invalid_argument("unknown detector kind");
}

}  // namespace dfd
