// Scanning a file with the deepfakedetect element, for the tools
// (deepfake-scan, deepfake-serve): no second copy of the detection logic.
//
//   uridecodebin ! videoconvert ! video/x-raw,format=BGR
//                ! deepfakedetect sync=true frame-messages=true ! fakesink
//
// The element's bus messages (window verdicts, per-crop scores, the summary)
// are gathered into a dfd::Report. Videos of any length and still images
// (one frame: one one-crop window per face) go through the same path.
//
// Pictures for reports (face crops and class-activation heatmaps) are made by
// a second decode of the same file through the same decode chain, keeping
// only the frames the report points at (its most suspicious crops), so that
// nothing has to be held in memory during the scan. See docs/reports.md.
//
// Thread-safe: several scans may run at once in one process (deepfake-serve).
// A process that holds the model (Model::load_shared) and is linked with
// export_dynamic shares that one instance with every element it runs.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "report/html_report.h"
#include "model/family.h"
#include "model/model.h"
#include "report/report.h"

namespace dfd {

// Default ScanOptions::max_pixels: 40 megapixels (e.g. 8000x5000; 4K video is 8.3).
constexpr uint64_t kDefaultMaxPixels = 40'000'000;

struct ScanOptions {
  std::string input;        // a file path (or a file:// URI)
  std::string source_name;  // shown as the report's "source"; default: input
  // deepfakedetect properties (see docs/element.md); empty strings leave the element's default.
  std::string model;        // path(s), comma-separated for an ensemble; empty: the element's
                            // default (the shipped trained MesoNet, dfd::find_default_model())
  std::string head = "auto";
  int window_size = 0;  // 0: the model card's
  int window_stride = 0;
  int interval = 1;
  int detect_interval = 5;  // the element's defaults: YuNet every 5th frame, tracking between (docs/faces.md)
  std::string face_detector = "yunet";
  std::string face_detector_model;
  int min_face_size = 40;
  int max_faces = 8;
  double crop_margin = -1.0;  // negative: the model's own crop policy (MesoNet 0.2, ResNeXt 0)
  double threshold = -1;  // negative: the model card's
  std::string aggregation = "mean";
  std::string device = "cpu";
  std::string precision;  // "" = the element's default (fp32)
  int num_threads = 0;
  bool frame_probabilities = true;  // per-crop scores in the report (needed for the pictures)

  double timeout_s = 0;                       // 0 = no limit; covers the scan and the pictures
  // A file none of whose frames has been decoded (reached the element) this
  // long after decoding started is reported as undecodable. (decodebin
  // sometimes swallows a demuxer's error on a truncated header and would wait
  // forever.) Once a frame has arrived, only timeout_s applies: slow analysis
  // is a time-out, never "corrupt".
  double preroll_timeout_s = 10;
  // Pictures and video frames larger than this (width x height) are refused
  // (ScanErrorKind::TooLarge) from their declared size, before they are
  // decoded: the file's header, the demuxers' and parsers' caps, every
  // decoder's input, and the frames that reach the element. 0 = no limit.
  uint64_t max_pixels = kDefaultMaxPixels;
  const std::atomic<bool>* cancel = nullptr;  // set from another thread to stop early
};

// The ModelOptions the element builds from these options (device,
// precision, threads), for a tool that loads the model itself so that the
// element finds the same instance (load_detector_shared keys on them).
ModelOptions model_options_of(const ScanOptions& options);

struct ScanProgress {
  uint64_t frames = 0;        // frames through the element so far
  uint64_t total_frames = 0;  // estimate from duration x frame rate; 0 when unknown
  uint64_t position_ns = kNoTime, duration_ns = kNoTime;
  double elapsed_s = 0;
  bool done = false;          // the last call, after EOS
};
using ScanProgressCallback = std::function<void(const ScanProgress&)>;

enum class ScanErrorKind {
  Input,        // missing or unreadable file
  NotMedia,     // content is no image or video we decode (sniffed, not by name)
  Unsupported,  // a media type or codec without a decoder here
  NoVideo,      // media without a video stream (e.g. audio only)
  Decode,       // corrupt or truncated data, or an impossible frame (size, buffer)
  TooLarge,     // a picture or frame over ScanOptions::max_pixels (refused before decoding)
  Model,        // the model could not be loaded
  Timeout,
  Cancelled,
  Internal,     // plugin missing, pipeline could not be built, ...
};
const char* to_string(ScanErrorKind k);

class ScanError : public std::runtime_error {
 public:
  ScanError(ScanErrorKind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  ScanErrorKind kind() const { return kind_; }

 private:
  ScanErrorKind kind_;
};

// gst_init (if needed), then makes sure the deepfakedetect element can be
// found: `plugin_dir` (if set) is scanned, then GST_PLUGIN_PATH and the
// installed plugins. Throws ScanError(Internal) naming the fix.
void scan_init(const std::string& plugin_dir = "");

// The GStreamer type of a file's content (e.g. "video/x-msvideo", "image/png"),
// found by typefind on its first bytes; empty when nothing matched.
std::string sniff_media_type(const std::string& path);
// Images and videos we accept: video/*, a few containers, raster images.
bool is_analysable_media_type(const std::string& media_type);

// The width and height a picture declares in its header (PNG, JPEG, GIF, BMP,
// WebP, TIFF, PNM), read from its first bytes without decoding anything.
// False when the bytes are none of these or the header is cut short (a JPEG
// whose frame header lies beyond `size`). Width and height may be 0.
bool declared_image_size(const uint8_t* data, size_t size, uint64_t* width, uint64_t* height);
// "the picture is 60000x60000 (3600.0 megapixels), over the limit of 40.0 megapixels"
std::string too_large_text(uint64_t width, uint64_t height, uint64_t max_pixels);

// Runs the element over the whole file. Throws ScanError.
// `model` (optional) fills the report's model fields (checksum, source);
// otherwise they come from the element's messages. The pipeline's warnings
// (e.g. "the model is UNTRAINED") are appended to `warnings` when given.
Report run_scan(const ScanOptions& options, const ScanProgressCallback& progress = {},
                const Detector* model = nullptr, std::vector<std::string>* warnings = nullptr);

// A face crop to draw: which frame, where, and for which class the heatmap.
struct ImageRequest {
  uint64_t track_id = 0;
  int64_t frame_index = -1;
  uint64_t pts_ns = kNoTime;
  cv::Rect bbox;
  float fake_probability = 0.f;
  int cls = kClassFake;
};

// Up to `per_track` crops of each track with the highest per-crop P(FAKE)
// (ties: the earlier frame), in track order then frame order.
std::vector<ImageRequest> most_suspicious(const Report& report, int per_track);
// The last scored crop of the track that decided the verdict (the highest
// track P(FAKE)), for the winning class: what the original API's `img` showed.
// Empty when the report has no face.
std::vector<ImageRequest> verdict_crop(const Report& report);

// Decodes `options.input` again (same decode chain as run_scan) and draws
// each request: the crop and its heatmap (face_heatmap) as PNG bytes. Stops
// decoding after the last requested frame. Honours options.timeout_s (counted
// from `started`, a steady-clock time in seconds; 0 = now) and cancel.
// Heatmaps only where the architecture has a class-activation map (ResNeXt);
// other detectors (MesoNet) give the crop alone.
std::vector<ReportImage> render_report_images(const ScanOptions& options, const Detector& model,
                                              const std::vector<ImageRequest>& requests, double started_s = 0,
                                              int display_size = 224);

double steady_seconds();  // the clock render_report_images' `started_s` refers to

// Exit codes of deepfake-scan, documented in docs/reports.md.
constexpr int kExitReal = 0;
constexpr int kExitError = 1;   // unreadable input, bad model, decode error, ...
constexpr int kExitUsage = 2;   // bad command line
constexpr int kExitFake = 10;
constexpr int kExitNoFace = 11;
int exit_code_for(const Report& report);
int exit_code_for(const ScanError& error);  // kExitError for every kind

// A one-line progress bar for long scans on a terminal:
//   [########----------------]  34%  1020/3000 frames  118.2 fps  ETA 0:16
// Silent when `out` is not a terminal (unless forced), redrawn at most ~10x/s.
class ProgressBar {
 public:
  explicit ProgressBar(FILE* out = stderr);
  ProgressBar(FILE* out, bool enabled);
  void update(const ScanProgress& p);
  void finish();  // clears the line
  bool enabled() const { return enabled_; }
  // The text of one line (no carriage return), `width` columns of bar.
  static std::string format(const ScanProgress& p, int width = 24);

 private:
  FILE* out_;
  bool enabled_;
  double last_draw_ = -1;
  size_t last_len_ = 0;
};

}  // namespace dfd
