// A self-contained HTML page for one Report: inline CSS and SVG, images as
// data: URIs, no script and no external resource, so it can be mailed,
// archived or shown in a sandboxed iframe. It shows the overall verdict with a
// 0-100 confidence gauge, per face track a score-over-time chart (per-frame and
// per-window P(FAKE), the threshold line, windows above it shaded), the most
// suspicious crops with their class-activation heatmaps, the model card, and
// the untrained-model warning when it applies. The report JSON itself is
// embedded (<script type="application/json" id="dfd-report">) for tools.
#pragma once
#include <cstdint>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "report/report.h"

namespace dfd {

// One analysed face crop picked for display (see tools/scan_runner.h for how
// they are chosen and produced).
struct ReportImage {
  uint64_t track_id = 0;
  int64_t frame_index = -1;
  uint64_t pts_ns = kNoTime;
  cv::Rect bbox;
  float fake_probability = 0.f;  // this crop alone (reference head), or the window's when per-frame is unknown
  std::string crop_png;     // PNG bytes of the face region; empty when unavailable
  std::string heatmap_png;  // PNG bytes: JET activation map for class FAKE blended over the crop
};

struct HtmlReportOptions {
  std::string title;            // default: "Deepfake report: <source>"
  std::string model_card_json;  // ModelCard::to_json(); empty: only the report's model fields are shown
  std::vector<ReportImage> images;
  std::string generator;        // e.g. "deepfake-scan 0.1.0", shown in the footer
};

std::string render_html_report(const Report& report, const HtmlReportOptions& options = {});

// 100 x the probability of the report's verdict class (FAKE: p, REAL: 1 - p),
// 0 for NO_FACE: the "confidence" of the original app.
double verdict_confidence(const Report& report);

// The images as a JSON array text: [{"track_id", "frame_index", "pts_ns", "bbox",
// "fake_probability", "crop_png", "heatmap_png"}] with PNGs in base64.
std::string report_images_json(const std::vector<ReportImage>& images, int indent = -1);

std::string html_escape(const std::string& text);

}  // namespace dfd
