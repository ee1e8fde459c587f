// The JSON report of one scanned source (deepfake-scan, deepfake-serve):
//   {"source", "model": {"name", "head", "trained", ...}, "verdict",
//    "fake_probability", "tracks": [{"id", "verdict", "fake_probability",
//      "frames": [{"index", "pts_ns", "bbox": [x, y, w, h], "fake_probability"}],
//      "windows": [{"start_ns", "end_ns", "frames", "fake_probability", ...}]}],
//    "stats": {...}}
// Built from the verdicts of a StreamAnalyzer or of the deepfakedetect
// element's messages; serialised with nlohmann::json.
#pragma once
#include <cstdint>
#include <map>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "model/model_card.h"
#include "analysis/stream_analyzer.h"

namespace dfd {

struct ReportFrame {
  int64_t index = 0;
  uint64_t pts_ns = kNoTime;  // null in JSON when unknown
  cv::Rect bbox;
  float fake_probability = 0.f;  // the crop alone, reference head
};

struct ReportWindow {
  uint64_t start_ns = kNoTime;  // pts of the first frame
  uint64_t end_ns = kNoTime;    // pts of the last frame plus its duration (or its pts)
  int64_t start_index = -1, end_index = -1;
  int frames = 0;
  float fake_probability = 0.f;
};

struct ReportTrack {
  uint64_t id = 0;
  std::string verdict;  // "FAKE" | "REAL"
  float fake_probability = 0.f;
  std::vector<ReportFrame> frames;
  std::vector<ReportWindow> windows;
};

struct ReportModel {
  std::string name, head, source, checksum;
  bool trained = false;
  // The arithmetic the crops were scored with ("fp32", "bf16", "int8") and
  // where ("cpu", "cuda"): reduced precision moves P(FAKE) a little
  // (docs/performance.md), so a report says which one it was.
  std::string precision, device;
  std::string notice;  // ModelCard::trust_notice(), empty for trusted models
};

struct ReportStats {
  uint64_t frames = 0, frames_analysed = 0, windows_analysed = 0, windows_skipped = 0;
  double elapsed_s = 0;
};

struct Report {
  std::string source;
  ReportModel model;
  std::string verdict = "NO_FACE";  // "FAKE" | "REAL" | "NO_FACE"
  float fake_probability = 0.f;
  float threshold = 0.5f;
  std::string aggregation;
  int window_size = 0;
  std::string face_detector;
  std::vector<ReportTrack> tracks;
  ReportStats stats;

  std::string to_json(int indent = 2) const;
  static Report from_json(const std::string& text);  // throws std::runtime_error
};

// Gathers verdicts as they come (any order across tracks) into a Report.
class ReportBuilder {
 public:
  ReportBuilder(std::string source, ReportModel model, float threshold);
  void add_frame(const FrameVerdict& f);
  void add_window(const WindowVerdict& w);
  // Per-track and overall verdicts are taken from the summary when given;
  // otherwise computed from the windows (track = its last aggregate).
  Report build(const StreamSummary* summary = nullptr) const;
  Report& meta() { return meta_; }  // fields copied into every built report (aggregation, detector, ...)

 private:
  Report meta_;
  std::map<uint64_t, ReportTrack> tracks_;
  std::map<uint64_t, float> last_aggregate_;
};

}  // namespace dfd
