// Deepfake analysis of a video stream, without GStreamer: faces are detected
// and tracked frame by frame, each track's face crops are gathered into
// sliding windows, and windows are classified by the model.
//
// The work is split in two stages so that a streaming element can keep
// video moving while the model runs elsewhere:
//   FaceStage    (cheap, per frame, in order): detection every
//                detect_interval frames, IoU tracking, crops of the analysed
//                frames at the detector's input size (crop_size, crop_margin:
//                ResNeXt 112 tight, MesoNet 256 with a 20 % margin), and a
//                WindowJob whenever a track's window of crops is due.
//   WindowStage  (expensive, may run on a worker thread, batched): features
//                of the crops not seen before (one Detector::features
//                call per batch; a crop shared by overlapping windows is
//                computed once), per-frame reference probabilities if asked,
//                the head on every window (one classify_windows call), and
//                the per-track aggregate.
// A WindowJob can be dropped between the stages (a live element whose queue
// is full does so) without disturbing later windows.
//
// StreamAnalyzer runs both stages inline, for tools, servers and trainers that
// simply want every verdict of a stream; SummaryBuilder turns the verdicts
// into per-track and overall results.
//
// WindowStage runs any detector of the model family (model/family.h), or an
// ensemble of them (EnsembleDetector); constructors taking a ResNeXt Model
// wrap it with as_detector. It reaches the detector through the Inference
// interface. A program may
// register a wrapper around every model a WindowStage is made with from then
// on (set_inference_wrapper): instrumentation, or a test that needs a slow
// model without a hook in the code under test.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "faces/async_detector.h"
#include "faces/face_detector.h"
#include "analysis/feature.h"
#include "model/family.h"
#include "model/model.h"
#include "model/model_card.h"
#include "faces/tracker.h"
#include "analysis/verdict.h"

namespace dfd {

constexpr uint64_t kNoTime = std::numeric_limits<uint64_t>::max();  // == GST_CLOCK_TIME_NONE

struct AnalyzerConfig {
  // YuNet (the shipped model) by default: on the dev clips it found a face on
  // more frames than Haar at a fraction of the cost (docs/faces.md). Kind
  // None: the whole frame is the face.
  FaceDetectorConfig detector{DetectorKind::YuNet};
  TrackerConfig tracker;
  int interval = 1;              // analyse (crop) every Nth frame; others only carry boxes
  int detect_interval = 5;       // run the detector at most every N frames; the tracker coasts between
                                 // (5: under 5 ms of detection CPU per frame at 720p and 1080p, recall kept; docs/faces.md)
  int window_size = 20;          // crops per window (the original API's value)
  int window_stride = 0;         // a new window every N analysed crops of a track; 0 = window_size
  float crop_margin = 0.f;       // box growth before cropping (the reference crops tight; MesoNet 0.2)
  int crop_size = 112;           // crops are crop_size x crop_size (the detector's input_size)
  bool align = false;            // turn crops so the eyes are level (needs landmarks: YuNet; others crop as usual)
  HeadMode head = HeadMode::Reference;
  Aggregation aggregation = Aggregation::Mean;
  float ema_alpha = 0.3f;
  float threshold = 0.5f;        // FAKE when P(FAKE) > threshold
  bool frame_probabilities = false;  // also classify every crop alone (reference head)
  int max_batch_crops = 32;      // WindowStage splits larger backbone batches
  // The stream verdict (SummaryBuilder) ignores tracks with fewer analysed
  // crops than this (unless every track is that short); 1 = every track.
  int min_track_length = 1;

  int effective_stride() const { return window_stride > 0 ? window_stride : window_size; }
  // Throws std::invalid_argument naming the first bad field.
  void validate() const;
};

// Where a frame sits in time. Plain numbers so that the library stays free of
// GStreamer; kNoTime where unknown.
struct FrameTimes {
  int64_t index = 0;               // frame number in the stream (from 0)
  uint64_t pts_ns = kNoTime;
  uint64_t duration_ns = kNoTime;
  uint64_t stream_time_ns = kNoTime;
  uint64_t running_time_ns = kNoTime;
};

// One analysed crop of a track.
struct CropFrame {
  FrameTimes times;
  cv::Rect box;   // full-resolution box the crop was taken from
  cv::Mat crop;   // crop_size x crop_size BGR CV_8UC3, owned (not a view of the frame)
};

// A window of one track's crops, ready for the head.
struct WindowJob {
  uint64_t track_id = 0;
  std::vector<CropFrame> frames;  // time order; overlapping windows share crop data
  bool final = false;             // the track's last window (track ended or stream ended)
  int64_t start_index() const { return frames.empty() ? -1 : frames.front().times.index; }
  int64_t end_index() const { return frames.empty() ? -1 : frames.back().times.index; }
};

struct TrackedFace {
  uint64_t track_id = 0;
  cv::Rect box;
  bool detected = false;  // matched by the detector on this very frame
  bool cropped = false;   // a crop of this frame went into the track's window
};

struct FaceStageOutput {
  FrameTimes times;
  bool analysed = false;              // frame selected by `interval`
  bool detector_ran = false;
  std::vector<TrackedFace> faces;     // live tracks on this frame
  std::vector<WindowJob> windows;     // windows that became due (including expired tracks' last ones)
  std::vector<uint64_t> ended_tracks; // tracks that expired on this frame
};

class FaceStage {
 public:
  // Throws std::runtime_error when the detector cannot be created.
  explicit FaceStage(const AnalyzerConfig& config);
  ~FaceStage();
  FaceStage(const FaceStage&) = delete;
  FaceStage& operator=(const FaceStage&) = delete;

  // `bgr`: the whole frame, BGR CV_8UC3 (may be a view; nothing is kept).
  FaceStageOutput process(const cv::Mat& bgr, const FrameTimes& times);
  // End of stream (or a resolution change): every track's frames not yet
  // covered by a window, as one last window per track; tracks are dropped.
  std::vector<WindowJob> finish();
  // Flush/seek: forget tracks and windows, nothing emitted.
  void reset();
  // Live streams: run the detector on its own thread so process() never
  // waits for it; boxes then come from a frame or a few earlier and the
  // tracker coasts meanwhile. Off (the default) keeps results deterministic.
  void set_async_detection(bool on);
  bool async_detection() const { return async_ != nullptr; }
  const AnalyzerConfig& config() const { return config_; }

 private:
  struct TrackWindow;
  std::unique_ptr<WindowJob> push_crop(uint64_t track_id, CropFrame f);
  std::unique_ptr<WindowJob> flush_track(uint64_t track_id);

  AnalyzerConfig config_;
  std::unique_ptr<FaceDetector> detector_;
  std::unique_ptr<AsyncDetector> async_;  // live mode: detection off the caller's thread
  int64_t last_submit_index_ = -1;  // none yet
  Tracker tracker_;
  std::map<uint64_t, std::unique_ptr<TrackWindow>> windows_;  // by our track id
  uint64_t id_offset_ = 0;  // tracker ids restart after reset(); ours never repeat
  uint64_t max_id_ = 0;
  int64_t frames_seen_ = 0;
  int64_t last_detect_index_ = std::numeric_limits<int64_t>::min();
  bool detected_once_ = false;
};

// The verdict on one window.
struct WindowVerdict {
  uint64_t track_id = 0;
  FrameTimes start, end;          // first and last frame of the window
  int frames = 0;                 // crops in the window
  std::vector<int64_t> frame_indices;  // their frame indices
  cv::Rect box;                   // the last frame's box
  Prediction prediction;          // window's own logits and P(FAKE)
  // Ensembles: each member's P(FAKE) of the window, in member order
  // (prediction combines them by the ensemble's rule); empty otherwise.
  std::vector<float> member_probabilities;
  float track_probability = 0.f;  // the track's aggregate after this window
  int track_windows = 0;          // windows of the track so far
  bool final = false;
  float prob_fake() const { return prediction.prob_fake; }
};

// The model's P(FAKE) on one crop alone (reference head), for reports.
struct FrameVerdict {
  uint64_t track_id = 0;
  FrameTimes times;
  cv::Rect box;
  float prob_fake = 0.f;
  size_t job = 0;  // WindowStage::run: index of the first job (in its input) that holds this crop
};

struct WindowStageOutput {
  std::vector<WindowVerdict> windows;  // in job order: windows[j] is jobs[j]'s
  std::vector<FrameVerdict> frames;    // crops analysed for the first time, in job order
  int crops_computed = 0;              // backbone runs in this batch
};

// What WindowStage asks of a model (the Detector's own methods, same contracts).
class Inference {
 public:
  virtual ~Inference() = default;
  virtual std::vector<Feature> features(const std::vector<cv::Mat>& crops) const = 0;
  virtual std::vector<Prediction> classify_frames(const std::vector<const Feature*>& frames) const = 0;
  virtual std::vector<Prediction> classify_windows(const std::vector<std::vector<const Feature*>>& windows,
                                                   HeadMode mode) const = 0;
};

// The model itself.
std::shared_ptr<const Inference> model_inference(std::shared_ptr<const Model> model);
std::shared_ptr<const Inference> detector_inference(std::shared_ptr<const Detector> detector);

// Several detectors as one (model=a.h5,b.h5): a crop's feature is the members'
// features end to end; each frame's and window's P(FAKE) is the members'
// combined by the rule (logits log P, log (1 - P)). Crops are cut at the
// largest member input size with the first member's margin (each member
// resizes them to its own input). Card, checksum and source join the
// members' (names with '+', sources with ',').
enum class EnsembleRule { Mean, Max };
const char* to_string(EnsembleRule r);
class EnsembleDetector final : public Detector {
 public:
  // Throws std::invalid_argument when empty.
  EnsembleDetector(std::vector<std::shared_ptr<const Detector>> members, EnsembleRule rule);
  const DetectorInfo& info() const override { return info_; }
  const ModelCard& card() const override { return card_; }
  const std::string& checksum() const override { return checksum_; }
  const std::string& source() const override { return source_; }
  std::vector<Feature> features(const std::vector<cv::Mat>& crops) const override;
  std::vector<Prediction> classify_frames(const std::vector<const Feature*>& frames) const override;
  std::vector<Prediction> classify_windows(const std::vector<std::vector<const Feature*>>& windows,
                                           HeadMode mode) const override;
  // [window][member]: each member's P(FAKE) of each window.
  std::vector<std::vector<float>> member_windows(const std::vector<std::vector<const Feature*>>& windows,
                                                 HeadMode mode) const;
  const std::vector<std::shared_ptr<const Detector>>& members() const { return members_; }
  EnsembleRule rule() const { return rule_; }

 private:
  std::vector<const Feature*> slice(const std::vector<const Feature*>& frames, size_t m,
                                    std::vector<Feature>& storage) const;
  float combine(const std::vector<float>& p) const;
  std::vector<std::shared_ptr<const Detector>> members_;
  std::vector<size_t> offsets_;  // member m's values start here in a feature
  EnsembleRule rule_;
  DetectorInfo info_;
  ModelCard card_;
  std::string checksum_, source_;
};

// Process-wide: every WindowStage constructed from now on runs its model
// through wrapper(detector_inference(detector)); an empty function restores the
// model itself. WindowStages already made keep what they have. Meant for
// instrumentation and tests (a slow model); thread-safe.
using InferenceWrapper = std::function<std::shared_ptr<const Inference>(std::shared_ptr<const Inference>)>;
void set_inference_wrapper(InferenceWrapper wrapper);
// What a WindowStage made with `detector` alone runs: the detector through
// the registered wrapper, if any (inference schedulers start from this).
std::shared_ptr<const Inference> wrapped_inference(std::shared_ptr<const Detector> detector);

class WindowStage {
 public:
  WindowStage(std::shared_ptr<const Detector> detector, const AnalyzerConfig& config);
  // A ResNeXt Model, through as_detector.
  WindowStage(std::shared_ptr<const Model> model, const AnalyzerConfig& config);
  // The detector's work done by `inference` (a shared scheduler's stream:
  // inference/inference_scheduler.h); no wrapper is applied here. `detector`
  // still gives the geometry, and an ensemble's members' scores.
  WindowStage(std::shared_ptr<const Detector> detector, std::shared_ptr<const Inference> inference,
              const AnalyzerConfig& config);
  // Jobs of one track must come in time order (different tracks may interleave).
  // The result depends only on the jobs (and the jobs run before on this
  // stage), never on timing; the backbone batches are cut from them in order.
  WindowStageOutput run(const std::vector<WindowJob>& jobs);
  void reset();
  // Per-crop reference probabilities (WindowStageOutput::frames) on or off from the next run().
  void set_frame_probabilities(bool on) { config_.frame_probabilities = on; }
  const Detector& detector() const { return *detector_; }
  // The ResNeXt Model behind the detector; throws std::logic_error for other architectures.
  const Model& model() const;

 private:
  struct TrackState;
  std::shared_ptr<const Detector> detector_;
  std::shared_ptr<const Inference> inference_;
  AnalyzerConfig config_;
  std::map<uint64_t, std::shared_ptr<TrackState>> tracks_;
};

struct TrackSummary {
  uint64_t id = 0;
  int64_t first_index = -1, last_index = -1;  // first and last frame in an analysed window
  uint64_t first_pts_ns = kNoTime, last_pts_ns = kNoTime;
  int windows = 0;
  int crops = 0;  // distinct frames in analysed windows
  float fake_probability = 0.f;  // the aggregate
  std::string verdict;           // "FAKE" or "REAL"
  // False when the track has fewer crops than min_track_length: reported,
  // but left out of the stream verdict (unless no track is long enough).
  bool counted = true;
};

struct StreamSummary {
  std::string verdict = "NO_FACE";  // "FAKE" | "REAL" | "NO_FACE"
  float fake_probability = 0.f;     // the highest counted track aggregate (a video is as fake as its worst face)
  uint64_t frames = 0;              // frames seen
  uint64_t frames_analysed = 0;     // frames selected by `interval`
  uint64_t windows_analysed = 0;
  uint64_t windows_skipped = 0;     // dropped by a full queue (live mode)
  uint64_t crops_analysed = 0;      // backbone runs
  std::vector<TrackSummary> tracks; // by id; only tracks with at least one analysed window
  int min_track_length = 1;         // tracks shorter than this are not counted (TrackSummary::counted)
};

// Collects verdicts (from any thread, serialised by the caller) into a summary.
// A track's probability is the aggregate its last WindowVerdict carries.
// Tracks with fewer than min_track_length crops (a false detection for a
// frame or two) are reported with counted = false and do not decide the
// stream's verdict, unless every track is that short (then all of them do).
class SummaryBuilder {
 public:
  explicit SummaryBuilder(float threshold, int min_track_length = 1)
      : threshold_(threshold), min_track_length_(min_track_length) {}
  void add_frame(bool analysed);
  void add_window(const WindowVerdict& v);
  void add_skipped(uint64_t n = 1) { skipped_ += n; }
  void add_crops(uint64_t n) { crops_ += n; }
  StreamSummary build() const;
  void reset();

 private:
  struct Acc {
    TrackSummary summary;
    int64_t covered_until = -1;
  };
  float threshold_;
  int min_track_length_ = 1;
  uint64_t frames_ = 0, analysed_ = 0, windows_ = 0, skipped_ = 0, crops_ = 0;
  std::map<uint64_t, Acc> tracks_;
};

// Everything of one frame, as StreamAnalyzer::process returns it.
struct FrameResult {
  FaceStageOutput faces;
  WindowStageOutput verdicts;  // windows that ended on this frame (all of them: nothing is skipped)
};

// Both stages inline: every window is analysed as soon as it is due.
class StreamAnalyzer {
 public:
  StreamAnalyzer(std::shared_ptr<const Detector> detector, const AnalyzerConfig& config);
  // A ResNeXt Model, through as_detector.
  StreamAnalyzer(std::shared_ptr<const Model> model, const AnalyzerConfig& config);
  FrameResult process(const cv::Mat& bgr, const FrameTimes& times);
  // Convenience: frame index counted here, times unknown.
  FrameResult process(const cv::Mat& bgr);
  // End of stream: last windows of every track.
  WindowStageOutput finish();
  void reset();
  StreamSummary summary() const { return summary_.build(); }
  const AnalyzerConfig& config() const { return faces_.config(); }
  const Detector& detector() const { return windows_.detector(); }
  const Model& model() const { return windows_.model(); }  // ResNeXt only

 private:
  FaceStage faces_;
  WindowStage windows_;
  SummaryBuilder summary_;
  int64_t next_index_ = 0;
};

}  // namespace dfd
