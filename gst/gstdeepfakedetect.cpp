/**
 * SECTION:element-deepfakedetect
 * @title: deepfakedetect
 * @short_description: finds deepfaked faces in video
 *
 * deepfakedetect detects and tracks faces, gathers each track's face crops
 * into sliding windows and classifies every window with a deepfake detector
 * of the model family: by default the shipped, trained MesoNet (Meso4_DF.h5),
 * which scores every crop as it comes (windows of one crop, the track's score
 * aggregated over them); or a ResNeXt50 + LSTM (the published reference
 * architecture or one trained by this project), or an ensemble of several.
 * Video passes through unchanged (in place) unless #GstDeepfakeDetect:overlay
 * is set.
 *
 * Every frame carries one #GstVideoRegionOfInterestMeta per tracked face
 * (type "face", id = track id) with a "deepfake" parameter structure holding
 * the track's latest verdict. Each window verdict is posted as an element
 * message named "deepfakedetect"; a "deepfakedetect-summary" message follows
 * at the end of the stream. deepfakedetect-meta.h has parse helpers.
 *
 * Windows are classified on a worker thread behind a bounded queue. With a
 * live upstream the element never blocks: windows are skipped (and counted)
 * when the queue is full and frames carry the latest verdicts. Otherwise
 * (#GstDeepfakeDetect:sync) every window is analysed and each frame is held
 * (a bounded number of frames) until the window covering it is classified,
 * so that the same file always gives the same annotations.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240 ! deepfakedetect face-detector=none ! fakesink
 * ]| Whole frames as "faces", scored by the default model (the shipped MesoNet).
 * |[
 * gst-launch-1.0 -m filesrc location=clip.avi ! decodebin ! videoconvert ! deepfakedetect model=Meso4_DF.h5,MesoInception_DF.h5 ensemble-rule=max ! fakesink
 * ]| An ensemble of two MesoNets; each window message carries each member's P(FAKE).
 * |[
 * gst-launch-1.0 -m filesrc location=clip.avi ! decodebin ! videoconvert ! deepfakedetect model=model.safetensors overlay=true ! videoconvert ! autovideosink
 * ]| Boxes and verdicts drawn on the video, messages printed.
 *
 * Since: 0.1
 */
#include "gstdeepfakedetect.h"

#include <gst/video/video.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "deepfakedetect-meta.h"
#include "dfd_config.h"
#include "faces/face_detector.h"
#include "model/family.h"
#include "model/model.h"
#include "report/overlay.h"
#include "faces/pixel_convert.h"
#include "analysis/stream_analyzer.h"
#include "analysis/verdict.h"
#include "inference/inference_scheduler.h"

GST_DEBUG_CATEGORY_STATIC (gst_deepfake_detect_debug);
#define GST_CAT_DEFAULT gst_deepfake_detect_debug

#define SINCE " (Since: 0.1)"
#define SINCE_0_2 " (Since: 0.2)"
#define DFD_FORMATS "{ BGR, BGRx, BGRA, RGB, RGBx, RGBA, I420, NV12 }"

namespace {

// ------------------------------------------------------------ RAII helpers

template <typename T>
struct MiniObjectUnref {
  void operator()(T* p) const {
    if (p) gst_mini_object_unref(GST_MINI_OBJECT_CAST(p));
  }
};
using QueryPtr = std::unique_ptr<GstQuery, MiniObjectUnref<GstQuery>>;
using MessagePtr = std::unique_ptr<GstMessage, MiniObjectUnref<GstMessage>>;

struct GFree {
  void operator()(gpointer p) const { g_free(p); }
};
using GCharPtr = std::unique_ptr<gchar, GFree>;

// A mapped video frame, unmapped on scope exit.
class MappedFrame {
 public:
  MappedFrame(GstVideoInfo* info, GstBuffer* buf, GstMapFlags flags) { ok_ = gst_video_frame_map(&frame_, info, buf, flags); }
  ~MappedFrame() {
    if (ok_) gst_video_frame_unmap(&frame_);
  }
  MappedFrame(const MappedFrame&) = delete;
  MappedFrame& operator=(const MappedFrame&) = delete;
  bool ok() const { return ok_; }
  GstVideoFrame* get() { return &frame_; }

 private:
  GstVideoFrame frame_;
  bool ok_ = false;
};

// A GValue holding a GstValueArray of ints.
void set_int_array(GstStructure* s, const char* field, std::initializer_list<int> values) {
  GValue arr = G_VALUE_INIT;
  g_value_init(&arr, GST_TYPE_ARRAY);
  for (int x : values) {
    GValue v = G_VALUE_INIT;
    g_value_init(&v, G_TYPE_INT);
    g_value_set_int(&v, x);
    gst_value_array_append_and_take_value(&arr, &v);
  }
  gst_structure_take_value(s, field, &arr);
}

void set_bbox(GstStructure* s, const cv::Rect& r) { set_int_array(s, DFD_FIELD_BBOX, {r.x, r.y, r.width, r.height}); }

// A GstValueArray of doubles (ensemble members' probabilities); nothing when empty.
void set_double_array(GstStructure* s, const char* field, const std::vector<float>& values) {
  if (values.empty()) return;
  GValue arr = G_VALUE_INIT;
  g_value_init(&arr, GST_TYPE_ARRAY);
  for (float x : values) {
    GValue v = G_VALUE_INIT;
    g_value_init(&v, G_TYPE_DOUBLE);
    g_value_set_double(&v, double(x));
    gst_value_array_append_and_take_value(&arr, &v);
  }
  gst_structure_take_value(s, field, &arr);
}

// ------------------------------------------------------------- properties

enum HeadChoice { HEAD_AUTO, HEAD_REFERENCE, HEAD_TEMPORAL };
enum SyncChoice { SYNC_AUTO, SYNC_ON, SYNC_OFF };

struct Props {
  std::string model;
  int head = HEAD_AUTO;
  int window_size = 0;  // 0: 1 for per-crop detectors (MesoNet), else the model card's (20 for a published checkpoint)
  int window_stride = 0;
  int interval = 1;
  int detect_interval = 5;  // with YuNet: under 5 ms of detection CPU per frame at 720p/1080p (docs/faces.md)
  int face_detector = int(dfd::DetectorKind::YuNet);
  std::string face_detector_model;
  int min_face_size = 40;
  int max_faces = 8;
  int track_expiry = 15;
  bool align = false;
  bool retain_memory = true;
  double crop_margin = -1.0;  // negative: the detector's (MesoNet 0.2, ResNeXt 0)
  int min_track_length = 5;
  int ensemble_rule = int(dfd::EnsembleRule::Mean);
  double threshold = -1;  // negative: the model card's (0.5 unless trained here)
  int aggregation = int(dfd::Aggregation::Mean);
  std::string device = "cpu";
  std::string precision = "fp32";
  int num_threads = 0;
  int max_queued_windows = 8;
  int sync = SYNC_AUTO;
  bool frame_messages = false;
  // Shared inference (docs/element.md "Many streams"): empty = share with
  // every element of the process running the same model.
  std::string model_instance_id;
  int batch_size = dfd::SchedulerOptions{}.batch_size;
  int max_batch_latency = dfd::SchedulerOptions{}.max_batch_latency_ms;
};

enum {
  PROP_0,
  PROP_MODEL,
  PROP_HEAD,
  PROP_WINDOW_SIZE,
  PROP_WINDOW_STRIDE,
  PROP_INTERVAL,
  PROP_DETECT_INTERVAL,
  PROP_FACE_DETECTOR,
  PROP_FACE_DETECTOR_MODEL,
  PROP_MIN_FACE_SIZE,
  PROP_MAX_FACES,
  PROP_TRACK_EXPIRY,
  PROP_CROP_MARGIN,
  PROP_THRESHOLD,
  PROP_AGGREGATION,
  PROP_DEVICE,
  PROP_PRECISION,
  PROP_NUM_THREADS,
  PROP_MAX_QUEUED_WINDOWS,
  PROP_SYNC,
  PROP_OVERLAY,
  PROP_POST_MESSAGES,
  PROP_FRAME_MESSAGES,
  PROP_WINDOWS_ANALYSED,
  PROP_WINDOWS_SKIPPED,
  PROP_FRAMES_PROCESSED,
  PROP_MIN_TRACK_LENGTH,
  PROP_ENSEMBLE_RULE,
  PROP_ALIGN,
  PROP_RETAIN_MEMORY,
  PROP_MODEL_INSTANCE_ID,
  PROP_BATCH_SIZE,
  PROP_MAX_BATCH_LATENCY,
  PROP_SCHEDULER_STATS,
};

GType head_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {HEAD_AUTO, "The model card's head", "auto"},
      {HEAD_REFERENCE, "Reference: the published model's per-frame semantics (last frame of the window)", "reference"},
      {HEAD_TEMPORAL, "Temporal: LSTM recurrence over the window", "temporal"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstDeepfakeDetectHead", values));
  return type;
}

GType detector_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {int(dfd::DetectorKind::Haar), "OpenCV Haar frontal-face cascade", "haar"},
      {int(dfd::DetectorKind::Lbp), "OpenCV LBP frontal-face cascade (faster)", "lbp"},
      {int(dfd::DetectorKind::YuNet), "OpenCV YuNet (the shipped 2022mar ONNX, or face-detector-model); gives landmarks", "yunet"},
      {int(dfd::DetectorKind::None), "No detector: the whole frame is the face", "none"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstDeepfakeDetectFaceDetector", values));
  return type;
}

GType ensemble_rule_get_type() {
  static GType type = 0;
  if (g_once_init_enter(&type)) {
    static const GEnumValue values[] = {
        {int(dfd::EnsembleRule::Mean), "Mean of the members' P(FAKE)", "mean"},
        {int(dfd::EnsembleRule::Max), "Highest of the members' P(FAKE)", "max"},
        {0, nullptr, nullptr}};
    GType t = g_enum_register_static("GstDeepfakeDetectEnsembleRule", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

GType aggregation_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {int(dfd::Aggregation::Last), "The last window's probability", "last"},
      {int(dfd::Aggregation::Mean), "Mean over the track's windows", "mean"},
      {int(dfd::Aggregation::Max), "Maximum over the track's windows", "max"},
      {int(dfd::Aggregation::Ema), "Exponential moving average (alpha 0.3)", "ema"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstDeepfakeDetectAggregation", values));
  return type;
}

GType sync_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {SYNC_AUTO, "Block when upstream is not live (latency query), never when it is", "auto"},
      {SYNC_ON, "Always block when the queue is full: every window is analysed", "true"},
      {SYNC_OFF, "Never block: skip windows when the queue is full", "false"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) g_once_init_leave(&type, g_enum_register_static("GstDeepfakeDetectSync", values));
  return type;
}

// ----------------------------------------------------------- the runtime

// Sync mode: one window on its way to the worker, and what the frames it
// decides will carry. Filled by the worker under Runtime::mu.
struct WindowSlot {
  int64_t start = -1, end = -1;  // frame indices
  bool done = false;
  float track_prob = 0.f;   // the track's aggregate after this window
  float window_prob = 0.f;  // this window's own P(FAKE)
  std::vector<float> members;  // ensembles: each member's P(FAKE) of the window
  std::map<int64_t, float> crop_scores;  // crops first scored in this window's batch: frame index -> P(FAKE) alone
};
using SlotPtr = std::shared_ptr<WindowSlot>;

struct QueuedJob {
  dfd::WindowJob job;
  uint64_t generation;
  uint64_t group = 0;  // sync mode: the windows due on one frame (or at one drain), run as one batch
  SlotPtr slot;        // sync mode
};

struct Latest {
  float track_prob = 0.f;
  float window_prob = 0.f;
  std::vector<float> members;
  int64_t start = -1, end = -1;
};

// Sync mode: a face on a held frame and the window whose verdict it will carry.
struct HeldFace {
  dfd::TrackedFace face;
  bool decided = false;
  bool covered = false;  // slot's window covers this frame (its crop score is in the slot)
  SlotPtr slot;          // once decided: null = no verdict (PENDING)
};

// Sync mode: a frame held until its verdicts are in, or a serialized event
// behind held frames. Owns its reference.
struct Held {
  GstBuffer* buf = nullptr;
  GstEvent* event = nullptr;
  int64_t index = -1;
  GstVideoInfo info;
  dfd::PixelFormat format = dfd::PixelFormat::BGR;
  std::vector<HeldFace> faces;

  Held() = default;
  Held(Held&& o) noexcept
      : buf(std::exchange(o.buf, nullptr)), event(std::exchange(o.event, nullptr)), index(o.index), info(o.info),
        format(o.format), faces(std::move(o.faces)) {}
  Held& operator=(Held&&) = delete;
  Held(const Held&) = delete;
  ~Held() {
    if (buf) gst_buffer_unref(buf);
    if (event) gst_event_unref(event);
  }
};

// State between start() and stop().
struct Runtime {
  explicit Runtime(float threshold) : summary(threshold) {}

  Props props;
  dfd::AnalyzerConfig cfg;
  std::shared_ptr<const dfd::Detector> model;  // one detector, or an EnsembleDetector (model=a,b)
  std::shared_ptr<dfd::SchedulerStream> sched;  // this element's stream of the shared inference scheduler
  std::string sched_key;                         // the scheduler's key (model-instance-id, or the model's identity)
  std::unique_ptr<dfd::WindowStage> stage;  // the worker's; made in start(), its model calls go through `sched`
  std::string model_name;
  bool trained = false;
  std::string notice;
  int num_threads = 0;  // num-threads after the clamp to the CPUs available

  // Streaming thread only.
  std::unique_ptr<dfd::FaceStage> faces;
  bool have_info = false;
  GstVideoInfo info;
  dfd::PixelFormat format = dfd::PixelFormat::BGR;
  int64_t next_index = 0;
  bool mode_decided = false;
  GstSegment segment;  // as received (frame times); the base class's follows the frames pushed
  // Sync mode: frames held until their verdicts are in (docs/element.md).
  std::deque<Held> held;
  size_t held_frames = 0;
  int64_t lookahead = 0;  // a held face's window is chosen at most this many frames after its frame
  size_t hold_max = 1;    // lookahead + 1: frames held at most, the one arriving included
  std::map<uint64_t, SlotPtr> track_last;  // latest window queued per track

  // Shared with the worker, under mu.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<QueuedJob> queue;
  bool blocking = false;  // sync mode; set once before the first window is queued
  bool stopping = false, flushing = false, busy = false, failed = false;
  uint64_t generation = 0;
  uint64_t next_group = 0;
  std::map<uint64_t, Latest> latest;
  dfd::SummaryBuilder summary;

  std::thread worker;
};

}  // namespace

struct Priv {
  std::mutex props_mu;
  Props props;
  std::atomic<bool> overlay{false};
  std::atomic<bool> post_messages{true};
  std::atomic<uint64_t> windows_analysed{0}, windows_skipped{0}, frames{0};
  // Sync mode: what holding frames adds to the latency (the query is answered on any thread).
  std::atomic<uint64_t> hold_latency_min{0}, hold_latency_max{0};
  std::unique_ptr<Runtime> rt;
  // The scheduler stream while running, for scheduler-stats from any
  // thread; its last figures once stopped (the scheduler is let go).
  std::mutex sched_mu;
  std::shared_ptr<dfd::SchedulerStream> sched;
  std::string sched_key;
  dfd::StreamSchedStats last_stream;
  dfd::SchedulerStats last_sched;
};

struct _GstDeepfakeDetect {
  GstBaseTransform parent;
  Priv* priv;
};

G_DEFINE_TYPE (GstDeepfakeDetect, gst_deepfake_detect, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE (deepfakedetect, "deepfakedetect", GST_RANK_NONE, GST_TYPE_DEEPFAKE_DETECT);

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (DFD_FORMATS)));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (DFD_FORMATS)));

namespace {

// ------------------------------------------------------------- messages

GstMessage* window_message(GstDeepfakeDetect* self, const Runtime& rt, const dfd::WindowVerdict& v) {
  uint64_t end_pts = v.end.pts_ns;
  if (end_pts != dfd::kNoTime && v.end.duration_ns != dfd::kNoTime) end_pts += v.end.duration_ns;
  const float thr = rt.cfg.threshold;
  GstStructure* s = gst_structure_new(
      DFD_MESSAGE_WINDOW, DFD_FIELD_TIMESTAMP, G_TYPE_UINT64, guint64(v.end.pts_ns), DFD_FIELD_STREAM_TIME,
      G_TYPE_UINT64, guint64(v.end.stream_time_ns), DFD_FIELD_RUNNING_TIME, G_TYPE_UINT64,
      guint64(v.end.running_time_ns), DFD_FIELD_TRACK_ID, G_TYPE_UINT64, guint64(v.track_id),
      DFD_FIELD_FAKE_PROBABILITY, G_TYPE_DOUBLE, double(v.prob_fake()), DFD_FIELD_LABEL, G_TYPE_STRING,
      dfd::label_for(v.prob_fake(), thr), "track-fake-probability", G_TYPE_DOUBLE, double(v.track_probability),
      "track-label", G_TYPE_STRING, dfd::label_for(v.track_probability, thr), DFD_FIELD_WINDOW_START, G_TYPE_INT64,
      gint64(v.start.index), DFD_FIELD_WINDOW_END, G_TYPE_INT64, gint64(v.end.index), "window-start-pts",
      G_TYPE_UINT64, guint64(v.start.pts_ns), "window-end-pts", G_TYPE_UINT64, guint64(end_pts), "frames", G_TYPE_INT,
      v.frames, "final", G_TYPE_BOOLEAN, gboolean(v.final), "logit-fake", G_TYPE_DOUBLE,
      double(v.prediction.logits[0]), "logit-real", G_TYPE_DOUBLE, double(v.prediction.logits[1]), DFD_FIELD_MODEL,
      G_TYPE_STRING, rt.model_name.c_str(), DFD_FIELD_TRAINED, G_TYPE_BOOLEAN, gboolean(rt.trained), nullptr);
  set_bbox(s, v.box);
  set_double_array(s, DFD_FIELD_MEMBER_PROBABILITIES, v.member_probabilities);
  return gst_message_new_element(GST_OBJECT(self), s);
}

GstMessage* frame_message(GstDeepfakeDetect* self, const dfd::FrameVerdict& f) {
  GstStructure* s = gst_structure_new(
      DFD_MESSAGE_FRAME, DFD_FIELD_TRACK_ID, G_TYPE_UINT64, guint64(f.track_id), "frame", G_TYPE_INT64,
      gint64(f.times.index), DFD_FIELD_TIMESTAMP, G_TYPE_UINT64, guint64(f.times.pts_ns), "duration", G_TYPE_UINT64,
      guint64(f.times.duration_ns), DFD_FIELD_STREAM_TIME, G_TYPE_UINT64, guint64(f.times.stream_time_ns),
      DFD_FIELD_RUNNING_TIME, G_TYPE_UINT64, guint64(f.times.running_time_ns), DFD_FIELD_FAKE_PROBABILITY,
      G_TYPE_DOUBLE, double(f.prob_fake), nullptr);
  set_bbox(s, f.box);
  return gst_message_new_element(GST_OBJECT(self), s);
}

GstMessage* summary_message(GstDeepfakeDetect* self, const Runtime& rt, const dfd::StreamSummary& sum) {
  GstStructure* s = gst_structure_new(
      DFD_MESSAGE_SUMMARY, "verdict", G_TYPE_STRING, sum.verdict.c_str(), DFD_FIELD_FAKE_PROBABILITY, G_TYPE_DOUBLE,
      double(sum.fake_probability), "frames", G_TYPE_UINT64, guint64(sum.frames), "frames-analysed", G_TYPE_UINT64,
      guint64(sum.frames_analysed), "windows-analysed", G_TYPE_UINT64, guint64(sum.windows_analysed),
      "windows-skipped", G_TYPE_UINT64, guint64(sum.windows_skipped), "crops-analysed", G_TYPE_UINT64,
      guint64(sum.crops_analysed), "threshold", G_TYPE_DOUBLE, double(rt.cfg.threshold), "aggregation",
      G_TYPE_STRING, dfd::to_string(rt.cfg.aggregation), "head", G_TYPE_STRING, dfd::to_string(rt.cfg.head),
      DFD_FIELD_MODEL, G_TYPE_STRING, rt.model_name.c_str(), DFD_FIELD_TRAINED, G_TYPE_BOOLEAN,
      gboolean(rt.trained), "min-track-length", G_TYPE_INT, sum.min_track_length, nullptr);
  GValue arr = G_VALUE_INIT;
  g_value_init(&arr, GST_TYPE_ARRAY);
  for (const auto& t : sum.tracks) {
    GstStructure* ts = gst_structure_new(
        "track", DFD_FIELD_TRACK_ID, G_TYPE_UINT64, guint64(t.id), "verdict", G_TYPE_STRING, t.verdict.c_str(),
        DFD_FIELD_FAKE_PROBABILITY, G_TYPE_DOUBLE, double(t.fake_probability), "windows", G_TYPE_INT, t.windows,
        "frames", G_TYPE_INT, t.crops, "first-frame", G_TYPE_INT64, gint64(t.first_index), "last-frame",
        G_TYPE_INT64, gint64(t.last_index), "first-pts", G_TYPE_UINT64, guint64(t.first_pts_ns), "last-pts",
        G_TYPE_UINT64, guint64(t.last_pts_ns), "counted", G_TYPE_BOOLEAN, gboolean(t.counted), nullptr);
    GValue v = G_VALUE_INIT;
    g_value_init(&v, GST_TYPE_STRUCTURE);
    g_value_take_boxed(&v, ts);
    gst_value_array_append_and_take_value(&arr, &v);
  }
  gst_structure_take_value(s, "tracks", &arr);
  return gst_message_new_element(GST_OBJECT(self), s);
}

// The shared inference scheduler's counters, this element's stream's and the
// whole scheduler's (every element on it): the scheduler-stats property, and
// without the queue-wait times the summary message's "scheduler" field (so
// that a single sync stream's messages stay the same from run to run).
GstStructure* scheduler_structure(Priv* priv, bool with_times = true) {
  std::string key;
  dfd::StreamSchedStats st;
  dfd::SchedulerStats all;
  {
    std::lock_guard<std::mutex> lk(priv->sched_mu);
    key = priv->sched_key;
    st = priv->sched ? priv->sched->stats() : priv->last_stream;
    all = priv->sched ? priv->sched->scheduler()->stats() : priv->last_sched;
  }
  GstStructure* s = gst_structure_new(
      "deepfakedetect-scheduler", "key", G_TYPE_STRING, key.c_str(), "streams", G_TYPE_INT, all.streams,
      "batches", G_TYPE_UINT64, guint64(all.batches), "crops", G_TYPE_UINT64, guint64(all.crops),
      "mean-batch-size", G_TYPE_DOUBLE, all.mean_batch(), "largest-batch", G_TYPE_INT, all.largest_batch,
      "mixed-batches", G_TYPE_UINT64, guint64(all.mixed_batches), "full-batches", G_TYPE_UINT64,
      guint64(all.full_batches), "timed-out-batches", G_TYPE_UINT64, guint64(all.timed_out_batches),
      "queued-crops", G_TYPE_UINT64, guint64(all.queued_crops), "queue-wait-mean-ms", G_TYPE_DOUBLE,
      all.mean_wait_ms(), "queue-wait-max-ms", G_TYPE_DOUBLE, all.wait_ms_max, "failed", G_TYPE_UINT64,
      guint64(all.failed), "cancelled", G_TYPE_UINT64, guint64(all.cancelled), "stream-requests", G_TYPE_UINT64,
      guint64(st.requests), "stream-crops", G_TYPE_UINT64, guint64(st.crops), "stream-batches", G_TYPE_UINT64,
      guint64(st.batches), "stream-shared-batches", G_TYPE_UINT64, guint64(st.shared_batches),
      "stream-mean-batch-share", G_TYPE_DOUBLE, st.batches ? double(st.crops) / double(st.batches) : 0.0,
      "stream-queue-wait-mean-ms", G_TYPE_DOUBLE, st.mean_wait_ms(), "stream-queue-wait-max-ms", G_TYPE_DOUBLE,
      st.wait_ms_max, "stream-failed", G_TYPE_UINT64, guint64(st.failed), "stream-cancelled", G_TYPE_UINT64,
      guint64(st.cancelled), "stream-windows-skipped", G_TYPE_UINT64, guint64(priv->windows_skipped.load()), nullptr);
  if (!with_times)
    for (const char* f : {"queue-wait-mean-ms", "queue-wait-max-ms", "stream-queue-wait-mean-ms", "stream-queue-wait-max-ms"})
      gst_structure_remove_field(s, f);
  return s;
}

// --------------------------------------------------------------- worker

void worker_main(GstDeepfakeDetect* self, Runtime* rt) {
  Priv* priv = self->priv;
  dfd::WindowStage& stage = *rt->stage;
  uint64_t stage_gen = 0;
  bool configured = false;
  std::unique_lock<std::mutex> lk(rt->mu);
  for (;;) {
    rt->cv.wait(lk, [&] { return rt->stopping || !rt->queue.empty(); });
    if (rt->stopping) break;
    // Async: everything queued (of one generation) is one batch, the backbone
    // runs once over the new crops of all those windows. Sync: one group (the
    // windows due on one frame), so that the batches, and with them the
    // floating-point results, do not depend on how far behind the worker is.
    const bool sync = rt->blocking;
    const uint64_t gen = rt->queue.front().generation;
    const uint64_t group = rt->queue.front().group;
    std::vector<dfd::WindowJob> jobs;
    std::vector<SlotPtr> slots;
    while (!rt->queue.empty() && rt->queue.front().generation == gen && (!sync || rt->queue.front().group == group)) {
      jobs.push_back(std::move(rt->queue.front().job));
      slots.push_back(std::move(rt->queue.front().slot));
      rt->queue.pop_front();
    }
    rt->busy = true;
    rt->cv.notify_all();  // room in the queue
    lk.unlock();

    dfd::WindowStageOutput out;
    std::string error;
    try {
      if (!configured) {  // per-crop scores: held frames carry them (sync), or frame messages
        stage.set_frame_probabilities(sync || rt->props.frame_messages);
        configured = true;
      }
      if (gen != stage_gen) {  // flushed: tracks start afresh
        stage.reset();
        stage_gen = gen;
      }
      out = stage.run(jobs);
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "unknown exception";
    }

    std::vector<MessagePtr> messages;
    lk.lock();
    if (!error.empty()) {
      rt->failed = true;
      rt->busy = false;
      rt->cv.notify_all();
      lk.unlock();
      GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Deepfake model failed on a batch of windows"), ("%s", error.c_str()));
      lk.lock();
      continue;
    }
    if (gen == rt->generation) {  // not flushed meanwhile
      rt->summary.add_crops(uint64_t(out.crops_computed));
      for (size_t j = 0; j < out.windows.size(); ++j) {
        const dfd::WindowVerdict& v = out.windows[j];
        rt->summary.add_window(v);
        if (v.final) {
          rt->latest.erase(v.track_id);
        } else {
          Latest& l = rt->latest[v.track_id];
          l.track_prob = v.track_probability;
          l.window_prob = v.prob_fake();
          l.members = v.member_probabilities;
          l.start = v.start.index;
          l.end = v.end.index;
        }
        if (j < slots.size() && slots[j]) {
          slots[j]->track_prob = v.track_probability;
          slots[j]->window_prob = v.prob_fake();
          slots[j]->members = v.member_probabilities;
        }
      }
      for (const auto& f : out.frames)
        if (f.job < slots.size() && slots[f.job]) slots[f.job]->crop_scores[f.times.index] = f.prob_fake;
      for (auto& s : slots)
        if (s) s->done = true;
      priv->windows_analysed += out.windows.size();
      // In job order (each window's new crops, then the window): the same
      // sequence however the jobs were batched.
      if (priv->post_messages.load()) {
        size_t fi = 0;
        for (size_t j = 0; j < out.windows.size(); ++j) {
          for (; fi < out.frames.size() && out.frames[fi].job == j; ++fi)
            if (rt->props.frame_messages) messages.emplace_back(frame_message(self, out.frames[fi]));
          messages.emplace_back(window_message(self, *rt, out.windows[j]));
        }
      }
    }
    lk.unlock();
    for (auto& m : messages) gst_element_post_message(GST_ELEMENT(self), m.release());
    GST_LOG_OBJECT(self, "batch of %zu windows done, %d crops through the backbone", jobs.size(), out.crops_computed);
    lk.lock();
    rt->busy = false;
    rt->cv.notify_all();
  }
}

// Async mode: queue windows for the worker; those that find the queue full
// are skipped and counted, unless `force` (last windows at EOS or a caps
// change), which waits for room.
void enqueue(GstDeepfakeDetect* self, Runtime* rt, std::vector<dfd::WindowJob>& jobs, bool force) {
  if (jobs.empty()) return;
  const size_t cap = size_t(rt->props.max_queued_windows);
  std::unique_lock<std::mutex> lk(rt->mu);
  for (auto& j : jobs) {
    if (rt->queue.size() >= cap) {
      if (force) {
        rt->cv.wait(lk, [&] { return rt->queue.size() < cap || rt->flushing || rt->stopping || rt->failed; });
        if (rt->flushing || rt->stopping || rt->failed) return;
      } else {
        rt->summary.add_skipped();
        self->priv->windows_skipped++;
        if (j.final) rt->latest.erase(j.track_id);
        GST_LOG_OBJECT(self, "queue full: window %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT " of track %" G_GUINT64_FORMAT " skipped",
                       gint64(j.start_index()), gint64(j.end_index()), guint64(j.track_id));
        continue;
      }
    }
    rt->queue.push_back({std::move(j), rt->generation, 0, nullptr});
    rt->cv.notify_all();
  }
}

// ------------------------------------------------ sync mode: held frames
//
// Every face on a held frame is "decided" once the window whose verdict it
// will carry is known: the first window of its track that ends at or after
// the frame (its verdict when it covers the frame, else the window before
// it), the track's latest window when the track ends first, or when
// `lookahead` more frames have come without one. All of that depends on the
// frames only, never on timing, so the same file gives the same annotations.
// The frame leaves once every chosen window has come back from the worker.

void decide(HeldFace& f, const SlotPtr& slot, bool covered) {
  f.decided = true;
  f.slot = slot;
  f.covered = covered && slot;
}

// The windows due now: one slot each; the held faces they decide.
std::vector<SlotPtr> assign_windows(Runtime* rt, const std::vector<dfd::WindowJob>& jobs) {
  std::vector<SlotPtr> slots;
  for (const auto& j : jobs) {
    auto s = std::make_shared<WindowSlot>();
    s->start = j.start_index();
    s->end = j.end_index();
    SlotPtr& last = rt->track_last[j.track_id];
    for (auto& h : rt->held)
      for (auto& f : h.faces)
        if (!f.decided && f.face.track_id == j.track_id && h.index <= s->end) {
          if (h.index >= s->start) decide(f, s, true);
          else decide(f, last, false);
        }
    last = s;
    slots.push_back(std::move(s));
  }
  return slots;
}

// Undecided faces of frames up to `upto` (of the given tracks, or all) take
// their track's latest window.
void settle(Runtime* rt, int64_t upto, const std::vector<uint64_t>* tracks = nullptr) {
  for (auto& h : rt->held) {
    if (h.index > upto) break;
    for (auto& f : h.faces) {
      if (f.decided) continue;
      if (tracks && std::find(tracks->begin(), tracks->end(), f.face.track_id) == tracks->end()) continue;
      auto it = rt->track_last.find(f.face.track_id);
      decide(f, it == rt->track_last.end() ? nullptr : it->second, false);
    }
  }
}

// Queue the windows due on one frame as one group; false when flushing,
// stopping or failed.
bool enqueue_group(Runtime* rt, std::vector<dfd::WindowJob>& jobs, const std::vector<SlotPtr>& slots) {
  if (jobs.empty()) return true;
  const size_t cap = size_t(rt->props.max_queued_windows);
  std::unique_lock<std::mutex> lk(rt->mu);
  rt->cv.wait(lk, [&] { return rt->queue.size() < cap || rt->flushing || rt->stopping || rt->failed; });
  if (rt->flushing || rt->stopping || rt->failed) return false;
  const uint64_t group = rt->next_group++;
  for (size_t i = 0; i < jobs.size(); ++i) rt->queue.push_back({std::move(jobs[i]), rt->generation, group, slots[i]});
  rt->cv.notify_all();
  return true;
}

// Sync mode: windows due (and tracks ended) on a frame or at a drain.
GstFlowReturn queue_windows(Runtime* rt, std::vector<dfd::WindowJob>& jobs, const std::vector<uint64_t>& ended) {
  auto slots = assign_windows(rt, jobs);
  const bool ok = enqueue_group(rt, jobs, slots);
  if (!ended.empty()) {
    settle(rt, std::numeric_limits<int64_t>::max(), &ended);
    for (uint64_t id : ended) rt->track_last.erase(id);
  }
  if (ok) return GST_FLOW_OK;
  std::lock_guard<std::mutex> lk(rt->mu);
  return rt->failed ? GST_FLOW_ERROR : GST_FLOW_FLUSHING;
}

// The verdict a face carries.
struct FaceView {
  dfd::TrackedFace face;
  bool have = false;
  float track_prob = -1.f, window_prob = -1.f, frame_prob = -1.f;
  std::vector<float> members;
  int64_t start = -1, end = -1;
};

// ROI metas (and the overlay when `raw` is given) on a writable buffer.
void annotate(Runtime* rt, GstBuffer* buf, int64_t index, const std::vector<FaceView>& faces, const dfd::RawFrame* raw) {
  std::vector<dfd::OverlayItem> items;
  for (const FaceView& v : faces) {
    const dfd::TrackedFace& f = v.face;
    const char* label = v.have ? dfd::label_for(v.track_prob, rt->cfg.threshold) : "PENDING";
    GstVideoRegionOfInterestMeta* meta = gst_buffer_add_video_region_of_interest_meta(
        buf, DFD_ROI_TYPE, guint(f.box.x), guint(f.box.y), guint(f.box.width), guint(f.box.height));
    if (!meta) throw std::runtime_error("could not add a region-of-interest meta (buffer not writable)");
    meta->id = gint(f.track_id);
    GstStructure* s = gst_structure_new(
        DFD_PARAM_NAME, DFD_FIELD_FAKE_PROBABILITY, G_TYPE_DOUBLE, v.have ? double(v.track_prob) : -1.0,
        DFD_FIELD_LABEL, G_TYPE_STRING, label, DFD_FIELD_TRACK_ID, G_TYPE_UINT64, guint64(f.track_id),
        DFD_FIELD_WINDOW_START, G_TYPE_INT64, gint64(v.start), DFD_FIELD_WINDOW_END, G_TYPE_INT64, gint64(v.end),
        DFD_FIELD_FRAMES_AGO, G_TYPE_INT64, gint64(v.have ? index - v.end : -1), DFD_FIELD_WINDOW_FAKE_PROBABILITY,
        G_TYPE_DOUBLE, v.have ? double(v.window_prob) : -1.0, DFD_FIELD_FRAME_FAKE_PROBABILITY, G_TYPE_DOUBLE,
        double(v.frame_prob), DFD_FIELD_MODEL, G_TYPE_STRING, rt->model_name.c_str(), DFD_FIELD_TRAINED,
        G_TYPE_BOOLEAN, gboolean(rt->trained), nullptr);
    if (v.have) set_double_array(s, DFD_FIELD_MEMBER_PROBABILITIES, v.members);
    gst_video_region_of_interest_meta_add_param(meta, s);
    if (raw) {
      dfd::OverlayItem item;
      item.box = f.box;
      char text[96];
      if (v.have) {
        item.kind = v.track_prob > rt->cfg.threshold ? dfd::OverlayItem::Kind::Fake : dfd::OverlayItem::Kind::Real;
        g_snprintf(text, sizeof text, "#%" G_GUINT64_FORMAT " %s %.2f", guint64(f.track_id), label, v.track_prob);
      } else {
        item.kind = dfd::OverlayItem::Kind::Pending;
        g_snprintf(text, sizeof text, "#%" G_GUINT64_FORMAT " analysing", guint64(f.track_id));
      }
      item.text = text;
      items.push_back(std::move(item));
    }
  }
  if (raw) dfd::draw_overlay(*raw, items, rt->notice);
}

dfd::RawFrame raw_frame(Runtime* rt, GstVideoFrame* frame, dfd::PixelFormat format) {
  (void)rt;
  dfd::RawFrame raw;
  raw.format = format;
  raw.width = GST_VIDEO_FRAME_WIDTH(frame);
  raw.height = GST_VIDEO_FRAME_HEIGHT(frame);
  for (guint i = 0; i < GST_VIDEO_FRAME_N_PLANES(frame) && i < 3; ++i) {
    raw.planes[i] = static_cast<const uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(frame, i));
    raw.strides[i] = GST_VIDEO_FRAME_PLANE_STRIDE(frame, i);
  }
  return raw;
}

// A held frame whose verdicts are all in: metas and overlay from its windows.
void finish_held(GstDeepfakeDetect* self, Runtime* rt, Held& h) {
  std::vector<FaceView> views;
  for (const HeldFace& f : h.faces) {
    FaceView v;
    v.face = f.face;
    if (f.slot) {  // done: written by the worker before `done`, which we saw under mu
      v.have = true;
      v.track_prob = f.slot->track_prob;
      v.window_prob = f.slot->window_prob;
      v.members = f.slot->members;
      v.start = f.slot->start;
      v.end = f.slot->end;
      if (f.covered && f.face.cropped) {
        auto it = f.slot->crop_scores.find(h.index);
        if (it != f.slot->crop_scores.end()) v.frame_prob = it->second;
      }
    }
    views.push_back(v);
  }
  if (!gst_buffer_is_writable(h.buf)) h.buf = gst_buffer_make_writable(h.buf);
  if (self->priv->overlay.load()) {  // as in async mode: the notice banner on every frame
    MappedFrame frame(&h.info, h.buf, GstMapFlags(GST_MAP_READWRITE | GST_VIDEO_FRAME_MAP_FLAG_NO_REF));
    if (!frame.ok()) throw std::runtime_error("could not map a held frame for the overlay");
    const dfd::RawFrame raw = raw_frame(rt, frame.get(), h.format);
    annotate(rt, h.buf, h.index, views, &raw);
  } else {
    annotate(rt, h.buf, h.index, views, nullptr);
  }
}

// Forward the events at the front of the held queue, then hand out the first
// held frame once its verdicts are in (null when none is). `wait`: block
// until it is; flushing, stopping or a failed worker end the wait.
GstFlowReturn next_held(GstDeepfakeDetect* self, Runtime* rt, bool wait, GstBuffer** out) {
  *out = nullptr;
  while (!rt->held.empty() && rt->held.front().event) {
    GstEvent* ev = std::exchange(rt->held.front().event, nullptr);
    rt->held.pop_front();
    GST_LOG_OBJECT(self, "forwarding held %s event", GST_EVENT_TYPE_NAME(ev));
    if (!GST_BASE_TRANSFORM_CLASS(gst_deepfake_detect_parent_class)->sink_event(GST_BASE_TRANSFORM(self), ev))
      GST_DEBUG_OBJECT(self, "a held event was not handled downstream");
  }
  if (rt->held.empty()) return GST_FLOW_OK;
  Held& h = rt->held.front();
  if (wait) settle(rt, h.index);  // (never changes a result: callers only wait once the front is decided)
  {
    std::unique_lock<std::mutex> lk(rt->mu);
    auto ready = [&] {
      for (const auto& f : h.faces)
        if (!f.decided || (f.slot && !f.slot->done)) return false;
      return true;
    };
    if (!ready()) {
      if (!wait) return GST_FLOW_OK;
      rt->cv.wait(lk, [&] { return ready() || rt->flushing || rt->stopping || rt->failed; });
      if (rt->failed) return GST_FLOW_ERROR;
      if (!ready()) return GST_FLOW_FLUSHING;
    }
  }
  Held taken(std::move(h));
  rt->held.pop_front();
  rt->held_frames--;
  finish_held(self, rt, taken);
  *out = std::exchange(taken.buf, nullptr);
  return GST_FLOW_OK;
}

// Every held frame and event downstream, in order, waiting for the worker;
// undecided faces first take their track's latest window. Whatever cannot be
// pushed (flushing, stopping, downstream refusing) is dropped.
GstFlowReturn release_all(GstDeepfakeDetect* self, Runtime* rt) {
  settle(rt, std::numeric_limits<int64_t>::max());
  GstFlowReturn ret = GST_FLOW_OK;
  while (!rt->held.empty()) {
    GstBuffer* b = nullptr;
    ret = next_held(self, rt, true, &b);
    if (ret == GST_FLOW_OK && b) ret = gst_pad_push(GST_BASE_TRANSFORM_SRC_PAD(self), b);
    if (ret != GST_FLOW_OK) break;
  }
  if (!rt->held.empty()) {
    GST_DEBUG_OBJECT(self, "dropping %zu held frames (%s)", rt->held_frames, gst_flow_get_name(ret));
    rt->held.clear();
    rt->held_frames = 0;
  }
  return ret;
}

// Last windows of every track (a caps change or EOS), their frames out, and
// every window's messages posted.
void drain(GstDeepfakeDetect* self, Runtime* rt) {
  auto jobs = rt->faces->finish();
  GST_DEBUG_OBJECT(self, "draining: %zu last windows, %zu frames held", jobs.size(), rt->held_frames);
  if (rt->blocking) {
    queue_windows(rt, jobs, {});
    settle(rt, std::numeric_limits<int64_t>::max());
    rt->track_last.clear();
    release_all(self, rt);
  } else {
    enqueue(self, rt, jobs, true);
  }
  std::unique_lock<std::mutex> lk(rt->mu);
  rt->cv.wait(lk, [&] { return (rt->queue.empty() && !rt->busy) || rt->flushing || rt->stopping || rt->failed; });
}

void update_hold_latency(GstDeepfakeDetect* self, Runtime* rt) {
  uint64_t min = 0, max = 0;
  if (rt->have_info && GST_VIDEO_INFO_FPS_N(&rt->info) > 0 && GST_VIDEO_INFO_FPS_D(&rt->info) > 0) {
    const uint64_t frame = gst_util_uint64_scale_int(GST_SECOND, GST_VIDEO_INFO_FPS_D(&rt->info), GST_VIDEO_INFO_FPS_N(&rt->info));
    min = frame * uint64_t(rt->lookahead);
    max = frame * uint64_t(rt->hold_max);
  }
  self->priv->hold_latency_min = min;
  self->priv->hold_latency_max = max;
}

void decide_mode(GstDeepfakeDetect* self, Runtime* rt) {
  gboolean live = FALSE;
  QueryPtr q(gst_query_new_latency());
  if (gst_pad_peer_query(GST_BASE_TRANSFORM_SINK_PAD(self), q.get())) gst_query_parse_latency(q.get(), &live, nullptr, nullptr);
  bool blocking = false;
  switch (rt->props.sync) {
    case SYNC_ON:
      blocking = true;
      if (live) GST_WARNING_OBJECT(self, "sync=true on a live source: frames are held for their verdicts, adding latency");
      break;
    case SYNC_OFF: blocking = false; break;
    default: blocking = !live; break;
  }
  {
    std::lock_guard<std::mutex> lk(rt->mu);
    rt->blocking = blocking;
  }
  rt->mode_decided = true;
  // Live: detection leaves the streaming thread too, so frames never wait for it.
  if (rt->faces) rt->faces->set_async_detection(!rt->blocking);
  GST_INFO_OBJECT(self, "upstream is %s: %s", live ? "live" : "not live",
                  rt->blocking ? "sync mode, every window is analysed and frames carry their own verdicts "
                                 "(frames are held, may block)"
                               : "async mode, windows are skipped when the queue is full (never blocks)");
}

dfd::PixelFormat pixel_format(GstVideoFormat f) {
  switch (f) {
    case GST_VIDEO_FORMAT_BGR: return dfd::PixelFormat::BGR;
    case GST_VIDEO_FORMAT_BGRx: return dfd::PixelFormat::BGRx;
    case GST_VIDEO_FORMAT_BGRA: return dfd::PixelFormat::BGRA;
    case GST_VIDEO_FORMAT_RGB: return dfd::PixelFormat::RGB;
    case GST_VIDEO_FORMAT_RGBx: return dfd::PixelFormat::RGBx;
    case GST_VIDEO_FORMAT_RGBA: return dfd::PixelFormat::RGBA;
    case GST_VIDEO_FORMAT_I420: return dfd::PixelFormat::I420;
    case GST_VIDEO_FORMAT_NV12: return dfd::PixelFormat::NV12;
    default: throw std::invalid_argument(std::string("unsupported video format ") + gst_video_format_to_string(f));
  }
}

void stop_runtime(GstDeepfakeDetect* self) {
  std::unique_ptr<Runtime> rt = std::move(self->priv->rt);
  if (!rt) return;
  {
    std::lock_guard<std::mutex> lk(rt->mu);
    rt->stopping = true;
    rt->cv.notify_all();
  }
  if (rt->worker.joinable()) rt->worker.join();
  // Keep the figures, let the scheduler go (it ends with its last stream).
  Priv* priv = self->priv;
  std::lock_guard<std::mutex> lk(priv->sched_mu);
  if (priv->sched) {
    priv->last_stream = priv->sched->stats();
    priv->last_sched = priv->sched->scheduler()->stats();
    priv->sched.reset();
  }
}

// The shared inference scheduler this element's windows go through: the one
// of its model-instance-id, or by default the one of its model (same files,
// weights, device, precision and ensemble rule), made when none is alive.
// Throws std::invalid_argument when the id is in use with another model.
std::shared_ptr<dfd::SchedulerStream> join_scheduler(GstDeepfakeDetect* self, Runtime* rt, size_t members) {
  const Props& p = rt->props;
  std::string identity = rt->model->source() + " [" + rt->model->checksum() + "] on " + p.device + " " + p.precision;
  if (members > 1) identity += std::string(" ensemble-rule=") + dfd::to_string(dfd::EnsembleRule(p.ensemble_rule));
  rt->sched_key = p.model_instance_id.empty() ? "model:" + identity : "id:" + p.model_instance_id;
  dfd::SchedulerOptions opts;
  opts.batch_size = p.batch_size;
  opts.max_batch_latency_ms = p.max_batch_latency;
  bool created = false;
  auto model = rt->model;
  auto sched = dfd::shared_scheduler(rt->sched_key, identity, [&] { return dfd::wrapped_inference(model); }, opts, &created);
  if (!created && (sched->options().batch_size != opts.batch_size ||
                   sched->options().max_batch_latency_ms != opts.max_batch_latency_ms))
    GST_WARNING_OBJECT(self, "the shared scheduler %s runs with batch-size %d and max-batch-latency %d ms (its first "
                             "element's), not %d and %d",
                       rt->sched_key.c_str(), sched->options().batch_size, sched->options().max_batch_latency_ms,
                       opts.batch_size, opts.max_batch_latency_ms);
  GST_INFO_OBJECT(self, "%s the shared inference scheduler %s (%d stream(s) before this one)",
                  created ? "made" : "joined", rt->sched_key.c_str(), sched->stats().streams);
  return sched->attach(GST_OBJECT_NAME(self));
}

}  // namespace

// ---------------------------------------------------- GstBaseTransform vfuncs

static gboolean gst_deepfake_detect_start(GstBaseTransform* trans) {
  auto* self = GST_DEEPFAKE_DETECT(trans);
  Priv* priv = self->priv;
  try {
    Props p;
    {
      std::lock_guard<std::mutex> lock(priv->props_mu);
      p = priv->props;
    }
    auto rt = std::make_unique<Runtime>(float(p.threshold));
    rt->props = p;
    dfd::AnalyzerConfig& c = rt->cfg;
    c.detector.kind = dfd::DetectorKind(p.face_detector);
    c.detector.model_path = p.face_detector_model;
    c.detector.min_face_size = p.min_face_size;
    c.detector.max_faces = p.max_faces;
    c.tracker.max_unseen = p.track_expiry;
    c.align = p.align;
    c.interval = p.interval;
    c.detect_interval = p.detect_interval;
    // The whole frame costs nothing to "detect": every frame, so that no
    // frame is held for a coasting track (the hold bound below counts it).
    if (c.detector.kind == dfd::DetectorKind::None) c.detect_interval = 1;
    // Until the model card is read: placeholders that pass validation.
    c.window_size = p.window_size > 0 ? p.window_size : 20;
    c.window_stride = p.window_stride;
    c.crop_margin = p.crop_margin >= 0 ? float(p.crop_margin) : 0.f;
    c.min_track_length = p.min_track_length;
    c.threshold = p.threshold >= 0 ? float(p.threshold) : 0.5f;
    c.aggregation = dfd::Aggregation(p.aggregation);
    c.frame_probabilities = p.frame_messages;
    try {
      c.validate();
    } catch (const std::exception& e) {
      GST_ELEMENT_ERROR(self, LIBRARY, SETTINGS, ("Invalid deepfakedetect settings: %s", e.what()), (nullptr));
      return FALSE;
    }

    // More inference threads than the CPUs this process may run on only makes
    // them contend (num-threads=1024 on two cores: a clip 6x slower): clamp.
    const int cpus = std::max(1, int(g_get_num_processors()));
    rt->num_threads = p.num_threads;
    if (p.num_threads > cpus) {
      rt->num_threads = cpus;
      GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS,
                          ("num-threads=%d is more than the %d CPUs available: using %d", p.num_threads, cpus, cpus),
                          ("intra-op threads beyond the CPUs this process may use (sched affinity) only contend; "
                           "num-threads clamped to %d",
                           cpus));
    }
    dfd::ModelOptions opts;
    opts.device = p.device;
    opts.precision = p.precision;
    opts.num_threads = rt->num_threads;
    // The model: the file(s) named, or the shipped default (a trained
    // MesoNet) from $DFD_MODEL_DIR, the installed data folder or the source
    // tree. Several files separated by commas make an ensemble.
    std::vector<std::string> paths;
    if (p.model.empty()) {
      const std::string found = dfd::find_default_model();
      if (found.empty()) {
        std::string looked;
        for (const auto& c2 : dfd::default_model_candidates()) looked += (looked.empty() ? "" : ", ") + c2;
        GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND,
                          ("No model set and the default model (%s) was not found", dfd::kDefaultModelFile),
                          ("looked in (in order): %s; set the 'model' property or DFD_MODEL_DIR", looked.c_str()));
        return FALSE;
      }
      paths.push_back(found);
    } else {
      std::string rest = p.model;
      for (;;) {
        const size_t comma = rest.find(',');
        std::string one = rest.substr(0, comma);
        while (!one.empty() && g_ascii_isspace(one.front())) one.erase(one.begin());
        while (!one.empty() && g_ascii_isspace(one.back())) one.pop_back();
        if (one.empty()) {
          GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("Empty model file name in model='%s'", p.model.c_str()),
                            ("model is one file or several separated by commas (an ensemble)"));
          return FALSE;
        }
        paths.push_back(one);
        if (comma == std::string::npos) break;
        rest = rest.substr(comma + 1);
      }
    }
    // glibc otherwise hands freed activation buffers back to the kernel and
    // faults them in again on every forward pass: MesoNet ran 2x (loaded VM)
    // to 4-10x (quiet) slower. Process-wide and one-way, hence a property.
    if (p.retain_memory) {
      static std::once_flag once;
      std::call_once(once, [self] {
        dfd::keep_freed_memory_for_reuse();
        GST_INFO_OBJECT(self, "retain-memory: freed inference buffers stay in the heap for reuse (process-wide)");
      });
    }
    std::vector<std::shared_ptr<const dfd::Detector>> members;
    for (const auto& path : paths) {
      try {
        members.push_back(dfd::load_detector_shared(path, opts));
      } catch (const std::exception& e) {
        if (paths.size() > 1)
          GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ,
                            ("Could not load the deepfake model '%s' (ensemble member %zu of %zu)", path.c_str(),
                             size_t(&path - paths.data()) + 1, paths.size()),
                            ("%s", e.what()));
        else
          GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("Could not load the deepfake model '%s'", path.c_str()),
                            ("%s", e.what()));
        return FALSE;
      }
    }
    if (members.size() == 1)
      rt->model = members.front();
    else
      rt->model = std::make_shared<dfd::EnsembleDetector>(members, dfd::EnsembleRule(p.ensemble_rule));
    const dfd::DetectorInfo& info = rt->model->info();
    const dfd::ModelCard& card = rt->model->card();
    // Crops as the detector was trained on: its input size and, unless
    // crop-margin is set, its margin (MesoNet 256 px with 20 %, ResNeXt 112 tight).
    c.crop_size = info.input_size;
    if (p.crop_margin < 0) c.crop_margin = info.crop_margin;
    // Window length: a detector whose windows are only the mean of its crops
    // (MesoNet) scores every crop as it comes (windows of 1, the track's
    // score aggregated over them); one with a window head (ResNeXt) takes the
    // card's, as does a model trained with deepfake-train with the threshold
    // chosen on validation.
    const bool per_crop = info.per_crop && !info.needs_window && !info.window_head;
    if (p.window_size == 0) c.window_size = per_crop ? 1 : card.window_size;
    if (p.threshold < 0) c.threshold = card.threshold;
    rt->summary = dfd::SummaryBuilder(c.threshold, c.min_track_length);
    try {
      c.validate();
    } catch (const std::exception& e) {
      GST_ELEMENT_ERROR(self, LIBRARY, SETTINGS, ("Invalid deepfakedetect settings: %s", e.what()), (nullptr));
      return FALSE;
    }
    rt->model_name = card.name;
    rt->trained = card.trained;
    rt->notice = card.trust_notice();
    if (!card.trained)
      GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS, ("The model '%s' is UNTRAINED: verdicts are meaningless", p.model.c_str()),
                          ("%s", rt->notice.c_str()));
    c.head = p.head == HEAD_AUTO ? card.head : (p.head == HEAD_TEMPORAL ? dfd::HeadMode::Temporal : dfd::HeadMode::Reference);

    try {
      rt->faces = std::make_unique<dfd::FaceStage>(c);
      if (rt->mode_decided) rt->faces->set_async_detection(!rt->blocking);
    } catch (const std::exception& e) {
      GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("Could not create the %s face detector", dfd::to_string(c.detector.kind)),
                        ("%s", e.what()));
      return FALSE;
    }

    try {
      rt->sched = join_scheduler(self, rt.get(), members.size());
    } catch (const std::exception& e) {
      GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Cannot share inference: %s", e.what()),
                        ("elements with the same model-instance-id must run the same model"));
      return FALSE;
    }
    rt->stage = std::make_unique<dfd::WindowStage>(rt->model, rt->sched, c);
    // Sync mode: a face's window is due within a window's worth of analysed
    // frames while its track lives, or when the track expires
    // (track-expiry frames unseen, noticed at the next detection).
    rt->lookahead = int64_t(std::max(c.window_size, c.effective_stride())) * c.interval + c.tracker.max_unseen +
                    c.detect_interval;
    rt->hold_max = size_t(rt->lookahead) + 1;
    gst_segment_init(&rt->segment, GST_FORMAT_UNDEFINED);
    GST_INFO_OBJECT(self,
                    "model '%s' (%s, %s) from %s; crops %d px margin %.2f, head %s, window %d stride %d, interval %d, detect-interval %d, "
                    "detector %s, min-face %d, max-faces %d, track-expiry %d, threshold %.3f, aggregation %s, "
                    "device %s, threads %d (asked %d), queue %d, sync %d, at most %zu frames held in sync mode",
                    card.name.c_str(), card.trained ? "trained" : "UNTRAINED", rt->model->checksum().c_str(),
                    rt->model->source().c_str(), c.crop_size, c.crop_margin, dfd::to_string(c.head), c.window_size, c.effective_stride(), c.interval,
                    c.detect_interval, dfd::to_string(c.detector.kind), c.detector.min_face_size, c.detector.max_faces,
                    c.tracker.max_unseen, c.threshold, dfd::to_string(c.aggregation), p.device.c_str(), rt->num_threads,
                    p.num_threads, p.max_queued_windows, p.sync, rt->hold_max);

    priv->windows_analysed = 0;
    priv->windows_skipped = 0;
    priv->frames = 0;
    {
      std::lock_guard<std::mutex> lk(priv->sched_mu);
      priv->sched = rt->sched;
      priv->sched_key = rt->sched_key;
    }
    priv->hold_latency_min = 0;
    priv->hold_latency_max = 0;
    Runtime* raw = rt.get();
    priv->rt = std::move(rt);
    raw->worker = std::thread(worker_main, self, raw);
    return TRUE;
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("deepfakedetect could not start"), ("%s", e.what()));
  } catch (...) {
    GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("deepfakedetect could not start"), ("unknown exception"));
  }
  priv->rt.reset();
  return FALSE;
}

// PAUSED->READY: release a streaming thread that waits on the worker (sync
// mode with a full queue, or draining at EOS) before the base class
// deactivates the pads, which needs that thread's stream lock. Without this a
// stop would wait until every queued window had been classified.
static GstStateChangeReturn gst_deepfake_detect_change_state(GstElement* element, GstStateChange transition) {
  auto* self = GST_DEEPFAKE_DETECT(element);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
    if (Runtime* rt = self->priv->rt.get()) {
      std::lock_guard<std::mutex> lk(rt->mu);
      rt->stopping = true;
      rt->cv.notify_all();
    }
  }
  return GST_ELEMENT_CLASS(gst_deepfake_detect_parent_class)->change_state(element, transition);
}

static gboolean gst_deepfake_detect_stop(GstBaseTransform* trans) {
  auto* self = GST_DEEPFAKE_DETECT(trans);
  try {
    stop_runtime(self);
    return TRUE;
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, LIBRARY, SHUTDOWN, ("deepfakedetect could not stop cleanly"), ("%s", e.what()));
  } catch (...) {
    GST_ELEMENT_ERROR(self, LIBRARY, SHUTDOWN, ("deepfakedetect could not stop cleanly"), ("unknown exception"));
  }
  return FALSE;
}

static gboolean gst_deepfake_detect_set_caps(GstBaseTransform* trans, GstCaps* incaps, GstCaps* outcaps) {
  auto* self = GST_DEEPFAKE_DETECT(trans);
  (void)outcaps;
  try {
    Runtime* rt = self->priv->rt.get();
    if (!rt) return FALSE;
    GstVideoInfo info;
    if (!gst_video_info_from_caps(&info, incaps)) {
      GST_WARNING_OBJECT(self, "caps %" GST_PTR_FORMAT " are not raw video", incaps);
      return FALSE;
    }
    const dfd::PixelFormat fmt = pixel_format(GST_VIDEO_INFO_FORMAT(&info));
    // The CAPS event handler has finished the old size's tracks and sent the
    // frames held under the old caps; this only records the new ones.
    rt->info = info;
    rt->format = fmt;
    rt->have_info = true;
    update_hold_latency(self, rt);
    return TRUE;
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("deepfakedetect could not accept caps"), ("%s", e.what()));
  } catch (...) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("deepfakedetect could not accept caps"), ("unknown exception"));
  }
  return FALSE;
}

static gboolean gst_deepfake_detect_sink_event(GstBaseTransform* trans, GstEvent* event) {
  auto* self = GST_DEEPFAKE_DETECT(trans);
  try {
    Runtime* rt = self->priv->rt.get();
    if (rt) {
      switch (GST_EVENT_TYPE(event)) {
        case GST_EVENT_EOS: {
          drain(self, rt);
          dfd::StreamSummary sum;
          {
            std::lock_guard<std::mutex> lk(rt->mu);
            sum = rt->summary.build();
          }
          GST_INFO_OBJECT(self, "end of stream: %s (P(FAKE) %.4f), %" G_GUINT64_FORMAT " frames, %" G_GUINT64_FORMAT
                                " windows analysed, %" G_GUINT64_FORMAT " skipped",
                          sum.verdict.c_str(), sum.fake_probability, guint64(sum.frames), guint64(sum.windows_analysed),
                          guint64(sum.windows_skipped));
          GstMessage* msg = summary_message(self, *rt, sum);
          // The same structure travels downstream ahead of EOS, so elements
          // after this one (deepfakemetapublish) get the summary in the
          // stream, with min-track-length and skipped windows accounted for.
          gst_pad_push_event(GST_BASE_TRANSFORM_SRC_PAD(self),
                             gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM,
                                                  gst_structure_copy(gst_message_get_structure(msg))));
          if (self->priv->post_messages.load()) {
            // The message (not the event) also carries the shared scheduler's counters.
            GValue sv = G_VALUE_INIT;
            g_value_init(&sv, GST_TYPE_STRUCTURE);
            g_value_take_boxed(&sv, scheduler_structure(self->priv, false));
            gst_structure_take_value(gst_message_writable_structure(msg), "scheduler", &sv);
            gst_element_post_message(GST_ELEMENT(self), msg);
          }
          else
            gst_message_unref(msg);
          break;
        }
        case GST_EVENT_CAPS: {
          GstCaps* caps = nullptr;
          gst_event_parse_caps(event, &caps);
          GstVideoInfo info;
          if (rt->have_info && caps && gst_video_info_from_caps(&info, caps)) {
            if (GST_VIDEO_INFO_WIDTH(&info) != GST_VIDEO_INFO_WIDTH(&rt->info) ||
                GST_VIDEO_INFO_HEIGHT(&info) != GST_VIDEO_INFO_HEIGHT(&rt->info)) {
              // Boxes and tracks belong to the old size: finish their windows first.
              GST_INFO_OBJECT(self, "resolution change %dx%d -> %dx%d: finishing tracks", GST_VIDEO_INFO_WIDTH(&rt->info),
                              GST_VIDEO_INFO_HEIGHT(&rt->info), GST_VIDEO_INFO_WIDTH(&info), GST_VIDEO_INFO_HEIGHT(&info));
              drain(self, rt);
            } else if (!rt->held.empty()) {
              // Same size: tracks go on, but frames of the old caps go out before the new caps.
              release_all(self, rt);
            }
          }
          break;
        }
        case GST_EVENT_FLUSH_START: {
          std::lock_guard<std::mutex> lk(rt->mu);
          rt->flushing = true;
          rt->queue.clear();
          rt->cv.notify_all();
          break;
        }
        case GST_EVENT_FLUSH_STOP: {
          {
            std::lock_guard<std::mutex> lk(rt->mu);
            rt->flushing = false;
            rt->queue.clear();
            rt->latest.clear();
            ++rt->generation;  // results still in the worker are dropped
          }
          rt->held.clear();  // held frames (and events) are dropped, as a flush drops data in flight
          rt->held_frames = 0;
          rt->track_last.clear();
          gst_segment_init(&rt->segment, GST_FORMAT_UNDEFINED);
          rt->faces->reset();
          GST_DEBUG_OBJECT(self, "flushed: tracks, windows and held frames dropped");
          break;
        }
        case GST_EVENT_SEGMENT:
          gst_event_copy_segment(event, &rt->segment);
          if (!rt->held.empty()) {  // it applies to frames after those held: keep it behind them
            Held h;
            h.event = event;
            rt->held.push_back(std::move(h));
            return TRUE;
          }
          break;
        default:
          if (GST_EVENT_IS_SERIALIZED(event) && !rt->held.empty()) {
            Held h;
            h.event = event;
            rt->held.push_back(std::move(h));
            return TRUE;
          }
          break;
      }
    }
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, STREAM, FAILED, ("deepfakedetect failed handling a %s event", GST_EVENT_TYPE_NAME(event)),
                      ("%s", e.what()));
  } catch (...) {
    GST_ELEMENT_ERROR(self, STREAM, FAILED, ("deepfakedetect failed handling a %s event", GST_EVENT_TYPE_NAME(event)),
                      ("unknown exception"));
  }
  return GST_BASE_TRANSFORM_CLASS(gst_deepfake_detect_parent_class)->sink_event(trans, event);
}

// Serialized queries from upstream that want its buffers back (a decoder
// draining, or renegotiating its pool) get every held frame first. The
// latency answer includes what holding frames adds.
static gboolean gst_deepfake_detect_query(GstBaseTransform* trans, GstPadDirection direction, GstQuery* query) {
  auto* self = GST_DEEPFAKE_DETECT(trans);
  if (direction == GST_PAD_SINK &&
      (GST_QUERY_TYPE(query) == GST_QUERY_DRAIN || GST_QUERY_TYPE(query) == GST_QUERY_ALLOCATION)) {
    try {
      Runtime* rt = self->priv->rt.get();
      if (rt && !rt->held.empty()) release_all(self, rt);
    } catch (const std::exception& e) {
      GST_ELEMENT_ERROR(self, STREAM, FAILED, ("deepfakedetect failed releasing held frames"), ("%s", e.what()));
      return FALSE;
    }
  }
  const gboolean ret = GST_BASE_TRANSFORM_CLASS(gst_deepfake_detect_parent_class)->query(trans, direction, query);
  if (ret && direction == GST_PAD_SRC && GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
    gboolean live = FALSE;
    GstClockTime min = 0, max = GST_CLOCK_TIME_NONE;
    gst_query_parse_latency(query, &live, &min, &max);
    int sync = SYNC_AUTO;
    {
      std::lock_guard<std::mutex> lock(self->priv->props_mu);
      sync = self->priv->props.sync;
    }
    if (sync == SYNC_ON || (sync == SYNC_AUTO && !live)) {  // sync mode holds frames
      const GstClockTime add_min = self->priv->hold_latency_min.load(), add_max = self->priv->hold_latency_max.load();
      min += add_min;
      if (GST_CLOCK_TIME_IS_VALID(max)) max += add_max;
      gst_query_set_latency(query, live, min, max);
      GST_DEBUG_OBJECT(self, "latency: holding frames adds %" GST_TIME_FORMAT, GST_TIME_ARGS(add_min));
    }
  }
  return ret;
}

// Sync mode holds up to hold_max frames: upstream's pool must have that many
// more, or a decoder with a fixed pool would wait for buffers we hold.
static gboolean gst_deepfake_detect_propose_allocation(GstBaseTransform* trans, GstQuery* decide_query, GstQuery* query) {
  auto* self = GST_DEEPFAKE_DETECT(trans);
  GST_BASE_TRANSFORM_CLASS(gst_deepfake_detect_parent_class)->propose_allocation(trans, decide_query, query);
  try {
    Runtime* rt = self->priv->rt.get();
    if (!rt) return TRUE;
    if (!rt->mode_decided) decide_mode(self, rt);
    if (!rt->blocking) return TRUE;
    const guint extra = guint(rt->hold_max);
    const guint n = gst_query_get_n_allocation_pools(query);
    if (n == 0) {
      GstCaps* caps = nullptr;
      gst_query_parse_allocation(query, &caps, nullptr);
      GstVideoInfo vi;
      if (caps && gst_video_info_from_caps(&vi, caps)) gst_query_add_allocation_pool(query, nullptr, guint(vi.size), extra, 0);
    }
    for (guint i = 0; i < n; ++i) {
      GstBufferPool* pool = nullptr;
      guint size = 0, min = 0, max = 0;
      gst_query_parse_nth_allocation_pool(query, i, &pool, &size, &min, &max);
      min += extra;
      if (max != 0 && max < min) max = min;
      gst_query_set_nth_allocation_pool(query, i, pool, size, min, max);
      if (pool) gst_object_unref(pool);
    }
  } catch (const std::exception& e) {
    GST_WARNING_OBJECT(self, "could not propose an allocation: %s", e.what());
  }
  return TRUE;
}

// A frame: faces, tracks, crops and windows. Async (live) mode attaches the
// latest verdicts and sends it at once; sync mode holds it until the
// verdicts that belong to it are in (see "sync mode: held frames").
static GstFlowReturn analyse_frame(GstDeepfakeDetect* self, Runtime* rt, GstBuffer* buf, GstBuffer** outbuf) {
  GstBaseTransform* trans = GST_BASE_TRANSFORM(self);
  Priv* priv = self->priv;
  const bool hold = rt->blocking;
  const bool overlay = priv->overlay.load();
  struct Owned {  // the buffer until it is handed on
    GstBuffer* b;
    ~Owned() {
      if (b) gst_buffer_unref(b);
    }
  } owned{buf};
  dfd::FrameTimes t;
  dfd::FaceStageOutput out;
  {
    // NO_REF: a mapped frame holding a ref would make the buffer read-only for metas.
    MappedFrame frame(&rt->info, buf,
                      GstMapFlags((overlay && !hold ? GST_MAP_READWRITE : GST_MAP_READ) | GST_VIDEO_FRAME_MAP_FLAG_NO_REF));
    if (!frame.ok()) {
      GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Could not map a video frame"), (nullptr));
      return GST_FLOW_ERROR;
    }
    const dfd::RawFrame raw = raw_frame(rt, frame.get(), rt->format);
    const cv::Mat bgr = dfd::to_bgr(raw);

    t.index = rt->next_index++;
    const GstClockTime pts = GST_BUFFER_PTS(buf);
    t.pts_ns = pts;
    t.duration_ns = GST_BUFFER_DURATION(buf);
    const GstSegment& seg = rt->segment.format == GST_FORMAT_TIME ? rt->segment : trans->segment;
    if (GST_CLOCK_TIME_IS_VALID(pts) && seg.format == GST_FORMAT_TIME) {
      t.stream_time_ns = gst_segment_to_stream_time(&seg, GST_FORMAT_TIME, pts);
      t.running_time_ns = gst_segment_to_running_time(&seg, GST_FORMAT_TIME, pts);
    }

    out = rt->faces->process(bgr, t);
    priv->frames++;
    {
      std::lock_guard<std::mutex> lk(rt->mu);
      rt->summary.add_frame(out.analysed);
    }

    if (!hold) {
      enqueue(self, rt, out.windows, false);
      std::vector<FaceView> views;
      {
        std::lock_guard<std::mutex> lk(rt->mu);
        for (const auto& f : out.faces) {
          FaceView v;
          v.face = f;
          auto it = rt->latest.find(f.track_id);
          if (it != rt->latest.end()) {
            v.have = true;
            v.track_prob = it->second.track_prob;
            v.window_prob = it->second.window_prob;
            v.members = it->second.members;
            v.start = it->second.start;
            v.end = it->second.end;
          }
          views.push_back(v);
        }
      }
      annotate(rt, buf, t.index, views, overlay ? &raw : nullptr);
      *outbuf = std::exchange(owned.b, nullptr);
      return GST_FLOW_OK;
    }
  }

  Held h;
  h.buf = std::exchange(owned.b, nullptr);
  h.index = t.index;
  h.info = rt->info;
  h.format = rt->format;
  for (const auto& f : out.faces) h.faces.push_back({f, false, false, nullptr});
  rt->held.push_back(std::move(h));
  rt->held_frames++;
  GstFlowReturn ret = queue_windows(rt, out.windows, out.ended_tracks);
  settle(rt, t.index - rt->lookahead);
  return ret;
}

// Never called (generate_output does the work); its presence keeps the base
// class in its in-place mode (no output buffer pool).
static GstFlowReturn gst_deepfake_detect_transform_ip(GstBaseTransform* trans, GstBuffer* buf) {
  (void)trans;
  (void)buf;
  return GST_FLOW_OK;
}

static GstFlowReturn gst_deepfake_detect_generate_output(GstBaseTransform* trans, GstBuffer** outbuf) {
  auto* self = GST_DEEPFAKE_DETECT(trans);
  Runtime* rt = self->priv->rt.get();
  *outbuf = nullptr;
  GstBuffer* in = std::exchange(trans->queued_buf, nullptr);
  if (!rt || !rt->have_info) {
    if (in) gst_buffer_unref(in);
    return GST_FLOW_NOT_NEGOTIATED;
  }
  try {
    if (in) {
      if (!rt->mode_decided) decide_mode(self, rt);
      {
        std::lock_guard<std::mutex> lk(rt->mu);
        if (rt->failed) {
          gst_buffer_unref(in);
          return GST_FLOW_ERROR;
        }
      }
      // In place: a writable buffer (copied only when shared), as the base class would.
      GstFlowReturn ret = analyse_frame(self, rt, gst_buffer_make_writable(in), outbuf);
      if (ret != GST_FLOW_OK || *outbuf) return ret;
    }
    if (rt->held.empty()) return GST_FLOW_OK;
    // Wait for the oldest frame only when hold_max frames are held (it is
    // decided by then); otherwise hand out what is ready.
    return next_held(self, rt, rt->held_frames >= rt->hold_max, outbuf);
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, STREAM, FAILED, ("deepfakedetect failed on a frame"), ("%s", e.what()));
  } catch (...) {
    GST_ELEMENT_ERROR(self, STREAM, FAILED, ("deepfakedetect failed on a frame"), ("unknown exception"));
  }
  return GST_FLOW_ERROR;
}

// ------------------------------------------------------------ GObject

static void gst_deepfake_detect_set_property(GObject* object, guint prop_id, const GValue* value, GParamSpec* pspec) {
  auto* self = GST_DEEPFAKE_DETECT(object);
  Priv* priv = self->priv;
  try {
    std::lock_guard<std::mutex> lock(priv->props_mu);
    Props& p = priv->props;
    auto str = [&] { const gchar* s = g_value_get_string(value); return std::string(s ? s : ""); };
    switch (prop_id) {
      case PROP_MODEL: p.model = str(); break;
      case PROP_HEAD: p.head = g_value_get_enum(value); break;
      case PROP_WINDOW_SIZE: p.window_size = g_value_get_int(value); break;
      case PROP_WINDOW_STRIDE: p.window_stride = g_value_get_int(value); break;
      case PROP_INTERVAL: p.interval = g_value_get_int(value); break;
      case PROP_DETECT_INTERVAL: p.detect_interval = g_value_get_int(value); break;
      case PROP_FACE_DETECTOR: p.face_detector = g_value_get_enum(value); break;
      case PROP_FACE_DETECTOR_MODEL: p.face_detector_model = str(); break;
      case PROP_MIN_FACE_SIZE: p.min_face_size = g_value_get_int(value); break;
      case PROP_MAX_FACES: p.max_faces = g_value_get_int(value); break;
      case PROP_TRACK_EXPIRY: p.track_expiry = g_value_get_int(value); break;
      case PROP_CROP_MARGIN: p.crop_margin = g_value_get_double(value); break;
      case PROP_THRESHOLD: p.threshold = g_value_get_double(value); break;
      case PROP_AGGREGATION: p.aggregation = g_value_get_enum(value); break;
      case PROP_DEVICE: p.device = str(); break;
      case PROP_PRECISION: p.precision = str(); break;
      case PROP_NUM_THREADS: p.num_threads = g_value_get_int(value); break;
      case PROP_MAX_QUEUED_WINDOWS: p.max_queued_windows = g_value_get_int(value); break;
      case PROP_SYNC: p.sync = g_value_get_enum(value); break;
      case PROP_OVERLAY: priv->overlay = g_value_get_boolean(value); break;
      case PROP_POST_MESSAGES: priv->post_messages = g_value_get_boolean(value); break;
      case PROP_FRAME_MESSAGES: p.frame_messages = g_value_get_boolean(value); break;
      case PROP_MIN_TRACK_LENGTH: p.min_track_length = g_value_get_int(value); break;
      case PROP_ENSEMBLE_RULE: p.ensemble_rule = g_value_get_enum(value); break;
      case PROP_ALIGN: p.align = g_value_get_boolean(value); break;
      case PROP_RETAIN_MEMORY: p.retain_memory = g_value_get_boolean(value); break;
      case PROP_MODEL_INSTANCE_ID: p.model_instance_id = str(); break;
      case PROP_BATCH_SIZE: p.batch_size = g_value_get_int(value); break;
      case PROP_MAX_BATCH_LATENCY: p.max_batch_latency = g_value_get_int(value); break;
      default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
  } catch (const std::exception& e) {
    GST_ERROR_OBJECT(self, "setting %s failed: %s", pspec->name, e.what());
  }
}

static void gst_deepfake_detect_get_property(GObject* object, guint prop_id, GValue* value, GParamSpec* pspec) {
  auto* self = GST_DEEPFAKE_DETECT(object);
  Priv* priv = self->priv;
  try {
    std::lock_guard<std::mutex> lock(priv->props_mu);
    const Props& p = priv->props;
    switch (prop_id) {
      case PROP_MODEL: g_value_set_string(value, p.model.empty() ? nullptr : p.model.c_str()); break;
      case PROP_HEAD: g_value_set_enum(value, p.head); break;
      case PROP_WINDOW_SIZE: g_value_set_int(value, p.window_size); break;
      case PROP_WINDOW_STRIDE: g_value_set_int(value, p.window_stride); break;
      case PROP_INTERVAL: g_value_set_int(value, p.interval); break;
      case PROP_DETECT_INTERVAL: g_value_set_int(value, p.detect_interval); break;
      case PROP_FACE_DETECTOR: g_value_set_enum(value, p.face_detector); break;
      case PROP_FACE_DETECTOR_MODEL:
        g_value_set_string(value, p.face_detector_model.empty() ? nullptr : p.face_detector_model.c_str());
        break;
      case PROP_MIN_FACE_SIZE: g_value_set_int(value, p.min_face_size); break;
      case PROP_MAX_FACES: g_value_set_int(value, p.max_faces); break;
      case PROP_TRACK_EXPIRY: g_value_set_int(value, p.track_expiry); break;
      case PROP_CROP_MARGIN: g_value_set_double(value, p.crop_margin); break;
      case PROP_THRESHOLD: g_value_set_double(value, p.threshold); break;
      case PROP_AGGREGATION: g_value_set_enum(value, p.aggregation); break;
      case PROP_DEVICE: g_value_set_string(value, p.device.c_str()); break;
      case PROP_PRECISION: g_value_set_string(value, p.precision.c_str()); break;
      case PROP_NUM_THREADS: g_value_set_int(value, p.num_threads); break;
      case PROP_MAX_QUEUED_WINDOWS: g_value_set_int(value, p.max_queued_windows); break;
      case PROP_SYNC: g_value_set_enum(value, p.sync); break;
      case PROP_OVERLAY: g_value_set_boolean(value, priv->overlay.load()); break;
      case PROP_POST_MESSAGES: g_value_set_boolean(value, priv->post_messages.load()); break;
      case PROP_FRAME_MESSAGES: g_value_set_boolean(value, p.frame_messages); break;
      case PROP_WINDOWS_ANALYSED: g_value_set_uint64(value, priv->windows_analysed.load()); break;
      case PROP_WINDOWS_SKIPPED: g_value_set_uint64(value, priv->windows_skipped.load()); break;
      case PROP_FRAMES_PROCESSED: g_value_set_uint64(value, priv->frames.load()); break;
      case PROP_MIN_TRACK_LENGTH: g_value_set_int(value, p.min_track_length); break;
      case PROP_ENSEMBLE_RULE: g_value_set_enum(value, p.ensemble_rule); break;
      case PROP_ALIGN: g_value_set_boolean(value, p.align); break;
      case PROP_RETAIN_MEMORY: g_value_set_boolean(value, p.retain_memory); break;
      case PROP_MODEL_INSTANCE_ID:
        g_value_set_string(value, p.model_instance_id.empty() ? nullptr : p.model_instance_id.c_str());
        break;
      case PROP_BATCH_SIZE: g_value_set_int(value, p.batch_size); break;
      case PROP_MAX_BATCH_LATENCY: g_value_set_int(value, p.max_batch_latency); break;
      case PROP_SCHEDULER_STATS: g_value_take_boxed(value, scheduler_structure(priv)); break;
      default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
  } catch (const std::exception& e) {
    GST_ERROR_OBJECT(self, "reading %s failed: %s", pspec->name, e.what());
  }
}

static void gst_deepfake_detect_finalize(GObject* object) {
  auto* self = GST_DEEPFAKE_DETECT(object);
  try {
    stop_runtime(self);
  } catch (...) {
  }
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS(gst_deepfake_detect_parent_class)->finalize(object);
}

static void gst_deepfake_detect_init(GstDeepfakeDetect* self) {
  self->priv = new Priv();
  gst_base_transform_set_in_place(GST_BASE_TRANSFORM(self), TRUE);
  gst_base_transform_set_passthrough(GST_BASE_TRANSFORM(self), FALSE);
  gst_base_transform_set_qos_enabled(GST_BASE_TRANSFORM(self), FALSE);
}

static void gst_deepfake_detect_class_init(GstDeepfakeDetectClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass* trans_class = GST_BASE_TRANSFORM_CLASS(klass);

  GST_DEBUG_CATEGORY_INIT(gst_deepfake_detect_debug, "deepfakedetect", 0, "deepfake detection");

  gobject_class->set_property = gst_deepfake_detect_set_property;
  gobject_class->get_property = gst_deepfake_detect_get_property;
  gobject_class->finalize = gst_deepfake_detect_finalize;
  element_class->change_state = gst_deepfake_detect_change_state;

  const auto rw = GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  const auto rw_playing = GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);
  const auto ro = GParamFlags(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GstDeepfakeDetect:model:
   *
   * The detector's weights, any architecture of the model family: a Keras
   * .h5 of MesoNet (the authors' files), a PyTorch state_dict of the
   * ResNeXt50+LSTM saved with torch.save (the published checkpoints) or this
   * project's .safetensors with its model card. Several files separated by
   * commas make an ensemble (#GstDeepfakeDetect:ensemble-rule).
   * Unset: the shipped trained MesoNet, mesonet/Meso4_DF.h5, looked for in
   * $DFD_MODEL_DIR, then the installed data folder
   * (&lt;datadir&gt;/deepfakedetect/models), then the source tree's models/;
   * an error names those places when it is in none. An untrained model is
   * only used when named (deepfake-model init writes one) and a warning says so.
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_MODEL,
      g_param_spec_string("model", "Model",
                          "Model file(s): MesoNet Keras .h5, ResNeXt .pt state_dict or .safetensors with a model card; "
                          "several separated by commas = an ensemble; unset = the shipped trained MesoNet "
                          "(mesonet/Meso4_DF.h5 in $DFD_MODEL_DIR, the installed data folder or the source tree)" SINCE,
                          nullptr, rw));
  /**
   * GstDeepfakeDetect:head:
   *
   * How windows are classified: as the published model does (its last frame)
   * or with a real recurrence over the window. auto takes the model card's.
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_HEAD,
      g_param_spec_enum("head", "Head", "Window classification head; auto = the model card's" SINCE,
                        head_get_type(), HEAD_AUTO, rw));
  /**
   * GstDeepfakeDetect:window-size:
   *
   * Face crops per window (20 in the published API).
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_WINDOW_SIZE,
      g_param_spec_int("window-size", "Window size", "Analysed face crops per classified window; 0 = 1 for per-crop detectors (MesoNet: every crop scored as it comes), "
                       "else the model card's (20, the original API's value, for published ResNeXt checkpoints)" SINCE, 0, 1000, 0, rw));
  /**
   * GstDeepfakeDetect:window-stride:
   *
   * A new window every N analysed crops of a track, 0 = window-size
   * (consecutive windows do not overlap). Each crop runs through the
   * backbone once whatever the overlap.
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_WINDOW_STRIDE,
      g_param_spec_int("window-stride", "Window stride",
                       "A new window every N analysed crops of a track; 0 = window-size (no overlap)" SINCE, 0, 1000, 0, rw));
  /**
   * GstDeepfakeDetect:interval:
   *
   * Analyse every Nth frame; the others pass with the latest verdicts.
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_INTERVAL,
      g_param_spec_int("interval", "Interval", "Analyse (crop and classify) every Nth frame" SINCE, 1, 1000, 1, rw));
  /**
   * GstDeepfakeDetect:detect-interval:
   *
   * Run the face detector at most every N frames; tracks keep their boxes in between.
   * Default 5 (0.2; 1 before): with YuNet under 5 ms of detection CPU per frame
   * at 720p and 1080p with the recall of detection on every frame.
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_DETECT_INTERVAL,
      g_param_spec_int("detect-interval", "Detect interval",
                       "Run the face detector at most every N frames; tracks coast in between" SINCE, 1, 1000, 5, rw));
  /**
   * GstDeepfakeDetect:face-detector:
   *
   * Default yunet (0.2; haar before), the shipped
   * models/yunet/face_detection_yunet_2022mar.onnx: faces on more frames of
   * the dev clips than Haar, at a fraction of its cost.
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_FACE_DETECTOR,
      g_param_spec_enum("face-detector", "Face detector", "Face detector; none = the whole frame is the face" SINCE,
                        detector_get_type(), int(dfd::DetectorKind::YuNet), rw));
  /**
   * GstDeepfakeDetect:face-detector-model:
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_FACE_DETECTOR_MODEL,
      g_param_spec_string("face-detector-model", "Face detector model",
                          "Cascade XML (haar, lbp) or YuNet ONNX file; unset = the kind's default (opencv-data cascade, shipped YuNet)" SINCE,
                          nullptr, rw));
  /**
   * GstDeepfakeDetect:min-face-size:
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_MIN_FACE_SIZE,
      g_param_spec_int("min-face-size", "Minimum face size", "Smallest face side in pixels (full resolution)" SINCE, 1,
                       100000, 40, rw));
  /**
   * GstDeepfakeDetect:max-faces:
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_MAX_FACES,
      g_param_spec_int("max-faces", "Maximum faces", "Largest faces kept per frame" SINCE, 1, 256, 8, rw));
  /**
   * GstDeepfakeDetect:track-expiry:
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_TRACK_EXPIRY,
      g_param_spec_int("track-expiry", "Track expiry",
                       "Frames a track survives without a matching detection; then its last window is classified" SINCE,
                       0, 100000, 15, rw));
  /**
   * GstDeepfakeDetect:crop-margin:
   *
   * Face box growth on each side before cropping. Negative (the default):
   * the detector's own (MesoNet 0.2, ResNeXt 0: the reference crops tight).
   * Crops are always cut at the detector's input size (MesoNet 256, ResNeXt
   * 112). With face-detector=none the box is the whole frame, so the margin
   * changes nothing (the grown box is clipped to the frame).
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_CROP_MARGIN,
      g_param_spec_double("crop-margin", "Crop margin",
                          "Face box growth on each side before cropping, as a fraction of its size; negative = the "
                          "detector's (MesoNet 0.2, ResNeXt 0); crops are cut at the detector's input size" SINCE,
                          -1.0, 2.0, -1.0, rw));
  /**
   * GstDeepfakeDetect:threshold:
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_THRESHOLD,
      g_param_spec_double("threshold", "Threshold", "FAKE when P(FAKE) is above this; negative = the model card's (0.5 unless chosen on validation by deepfake-train)" SINCE, -1.0, 1.0, -1.0, rw));
  /**
   * GstDeepfakeDetect:aggregation:
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_AGGREGATION,
      g_param_spec_enum("aggregation", "Aggregation", "How a track's window probabilities make its verdict" SINCE,
                        aggregation_get_type(), int(dfd::Aggregation::Mean), rw));
  /**
   * GstDeepfakeDetect:device:
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_DEVICE,
      g_param_spec_string("device", "Device",
                          "Inference device: cpu, or cuda where LibTorch has CUDA (an error otherwise)" SINCE, "cpu", rw));
  /**
   * GstDeepfakeDetect:precision:
   *
   * Backbone arithmetic. bf16 runs oneDNN's bfloat16 convolutions (about
   * 1.7x faster on CPUs with AVX512_BF16, probabilities within a few
   * hundredths of fp32; see docs/performance.md); refused elsewhere.
   * int8 (since 0.4) runs MesoNet quantized on OpenCV's dnn, and (since
   * 0.5) the ResNeXt backbone quantized on oneDNN (u8 activations, s8
   * weights; stem and residual sums in float32), their scales fixed at load
   * on calibration faces (models/mesonet/calibration, or
   * $DFD_INT8_CALIBRATION); its speed and its change in P(FAKE) on real
   * faces are in docs/performance.md. Not the default: on the ResNeXt
   * models we can test it moves P(FAKE) by more than 0.01.
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_PRECISION,
      g_param_spec_string("precision", "Precision",
                          "Backbone arithmetic: fp32; bf16 on CPUs with AVX512_BF16/AMX (an error otherwise); int8 on the CPU (calibrated at load)" SINCE, "fp32", rw));
  /**
   * GstDeepfakeDetect:num-threads:
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_NUM_THREADS,
      g_param_spec_int("num-threads", "Threads", "Inference threads of the model (oneDNN/OpenMP, OpenCV dnn or LibTorch intra-op); 0 = the library's default" SINCE,
                       0, 1024, 0, rw));
  /**
   * GstDeepfakeDetect:max-queued-windows:
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_MAX_QUEUED_WINDOWS,
      g_param_spec_int("max-queued-windows", "Queued windows",
                       "Windows waiting for the model; when full, live streams skip new windows, sync mode blocks" SINCE,
                       1, 10000, 8, rw));
  /**
   * GstDeepfakeDetect:sync:
   *
   * Block (analyse every window) or skip windows when the model falls behind.
   * auto blocks unless upstream is live (latency query).
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_SYNC,
      g_param_spec_enum("sync", "Sync", "Block when the queue is full (every window analysed) or skip windows" SINCE,
                        sync_get_type(), SYNC_AUTO, rw));
  /**
   * GstDeepfakeDetect:overlay:
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_OVERLAY,
      g_param_spec_boolean("overlay", "Overlay",
                           "Draw face boxes (red FAKE, green REAL, yellow pending), labels, scores and an untrained-model notice" SINCE,
                           FALSE, rw_playing));
  /**
   * GstDeepfakeDetect:post-messages:
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_POST_MESSAGES,
      g_param_spec_boolean("post-messages", "Post messages",
                           "Post a 'deepfakedetect' element message per window verdict and a summary at EOS" SINCE, TRUE,
                           rw_playing));
  /**
   * GstDeepfakeDetect:frame-messages:
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_FRAME_MESSAGES,
      g_param_spec_boolean("frame-messages", "Frame messages",
                           "Also post a 'deepfakedetect-frame' message per analysed crop with its own P(FAKE) (reports)" SINCE,
                           FALSE, rw));
  /**
   * GstDeepfakeDetect:windows-analysed:
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_WINDOWS_ANALYSED,
      g_param_spec_uint64("windows-analysed", "Windows analysed", "Windows classified since start" SINCE, 0,
                          G_MAXUINT64, 0, ro));
  /**
   * GstDeepfakeDetect:windows-skipped:
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_WINDOWS_SKIPPED,
      g_param_spec_uint64("windows-skipped", "Windows skipped",
                          "Windows dropped because the queue was full (never frames)" SINCE, 0, G_MAXUINT64, 0, ro));
  /**
   * GstDeepfakeDetect:frames-processed:
   *
   * Since: 0.1
   */
  g_object_class_install_property(gobject_class, PROP_FRAMES_PROCESSED,
      g_param_spec_uint64("frames-processed", "Frames processed", "Frames seen since start" SINCE, 0, G_MAXUINT64, 0, ro));
  /**
   * GstDeepfakeDetect:min-track-length:
   *
   * Tracks with fewer analysed crops than this (a false detection for a frame
   * or two) decide nothing: the summary still reports them ("counted" false)
   * but the stream's verdict and probability come from the longer tracks,
   * unless every track is that short (then from all of them).
   *
   * Since: 0.2
   */
  g_object_class_install_property(gobject_class, PROP_MIN_TRACK_LENGTH,
      g_param_spec_int("min-track-length", "Minimum track length",
                       "Tracks with fewer analysed crops are reported but left out of the stream verdict "
                       "(unless every track is that short)" SINCE_0_2, 1, 100000, 5, rw));
  /**
   * GstDeepfakeDetect:ensemble-rule:
   *
   * How an ensemble (#GstDeepfakeDetect:model with several files) combines
   * its members' P(FAKE) of each crop and window. Each member's own is in
   * the window messages and ROI params ("member-fake-probabilities").
   *
   * Since: 0.2
   */
  g_object_class_install_property(gobject_class, PROP_ENSEMBLE_RULE,
      g_param_spec_enum("ensemble-rule", "Ensemble rule", "How an ensemble combines its members' P(FAKE)" SINCE_0_2,
                        ensemble_rule_get_type(), int(dfd::EnsembleRule::Mean), rw));
  /**
   * GstDeepfakeDetect:align:
   *
   * Turn each face crop about its box centre so that the eyes lie on one
   * row (a tilted head comes out upright), from the detector's eye
   * landmarks. Only YuNet gives landmarks; with the other detectors crops
   * are cut as usual. Off by default: not measured to help the shipped
   * models.
   *
   * Since: 0.2
   */
  g_object_class_install_property(gobject_class, PROP_ALIGN,
      g_param_spec_boolean("align", "Align",
                           "Turn face crops so the eyes are level (YuNet landmarks; other detectors: no effect)" SINCE_0_2,
                           FALSE, rw));
  /**
   * GstDeepfakeDetect:retain-memory:
   *
   * Keep freed inference buffers in the process's heap (glibc `mallopt`:
   * mmap threshold 256 MB, trim threshold 1 GB) so that each forward pass
   * reuses memory instead of faulting fresh pages in: MesoNet crops are 2x
   * (on a loaded 2-core VM) to 4-10x faster. The setting is process-wide
   * and stays for the life of the process (the heap keeps its peak size);
   * turn it off in an application that manages its own allocator.
   *
   * Since: 0.2
   */
  g_object_class_install_property(gobject_class, PROP_RETAIN_MEMORY,
      g_param_spec_boolean("retain-memory", "Retain memory",
                           "Keep freed inference buffers in the heap for reuse (glibc mallopt, process-wide): "
                           "much faster CPU inference, the heap keeps its peak size" SINCE_0_2,
                           TRUE, rw));

  /**
   * GstDeepfakeDetect:model-instance-id:
   *
   * Elements of one process with the same id share one inference scheduler:
   * their crops are batched together (up to #GstDeepfakeDetect:batch-size),
   * fairly between streams, one model call at a time. Unset (the default):
   * elements share by model, i.e. every element with the same model file(s),
   * device, precision (and ensemble rule) shares one scheduler. Give an
   * element an id of its own for a private scheduler. Elements under one id
   * must run the same model (an error otherwise); the first element's
   * batch-size and max-batch-latency are used.
   *
   * Since: 0.3
   */
  g_object_class_install_property(gobject_class, PROP_MODEL_INSTANCE_ID,
      g_param_spec_string("model-instance-id", "Model instance id",
                          "Elements with the same id share one batched inference scheduler; unset: share with "
                          "every element running the same model (Since: 0.3)",
                          nullptr, rw));
  /**
   * GstDeepfakeDetect:batch-size:
   *
   * Since: 0.3
   */
  g_object_class_install_property(gobject_class, PROP_BATCH_SIZE,
      g_param_spec_int("batch-size", "Batch size",
                       "Face crops per model call, from all streams sharing the scheduler (Since: 0.3)", 1, 1024,
                       dfd::SchedulerOptions{}.batch_size, rw));
  /**
   * GstDeepfakeDetect:max-batch-latency:
   *
   * How long a crop may wait for other streams' crops to fill its batch.
   * A crop never waits when every stream sharing the scheduler already has
   * crops waiting, so a single stream never waits.
   *
   * Since: 0.3
   */
  g_object_class_install_property(gobject_class, PROP_MAX_BATCH_LATENCY,
      g_param_spec_int("max-batch-latency", "Max batch latency",
                       "Milliseconds a crop may wait for other streams' crops to join its batch (Since: 0.3)", 0,
                       10000, dfd::SchedulerOptions{}.max_batch_latency_ms, rw));
  /**
   * GstDeepfakeDetect:scheduler-stats:
   *
   * The shared inference scheduler's counters: batches, crops,
   * mean-batch-size, mixed-batches (crops of several streams), queue waits,
   * and this element's stream-* share; the last figures after a stop.
   *
   * Since: 0.3
   */
  g_object_class_install_property(gobject_class, PROP_SCHEDULER_STATS,
      g_param_spec_boxed("scheduler-stats", "Scheduler statistics",
                         "Counters of the shared inference scheduler and of this element's stream (Since: 0.3)",
                         GST_TYPE_STRUCTURE, ro));

  gst_element_class_set_static_metadata(
      element_class, "Deepfake detector", "Filter/Analyzer/Video",
      "Tracks faces and scores their crops (or sliding windows of them) with a deepfake detector (MesoNet, "
      "ResNeXt50+LSTM or an ensemble); "
      "attaches ROI metas, posts verdict messages, optionally draws them",
      "deepfakedetect developers");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);

  trans_class->start = GST_DEBUG_FUNCPTR(gst_deepfake_detect_start);
  trans_class->stop = GST_DEBUG_FUNCPTR(gst_deepfake_detect_stop);
  trans_class->set_caps = GST_DEBUG_FUNCPTR(gst_deepfake_detect_set_caps);
  trans_class->sink_event = GST_DEBUG_FUNCPTR(gst_deepfake_detect_sink_event);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR(gst_deepfake_detect_transform_ip);
  trans_class->generate_output = GST_DEBUG_FUNCPTR(gst_deepfake_detect_generate_output);
  trans_class->query = GST_DEBUG_FUNCPTR(gst_deepfake_detect_query);
  trans_class->propose_allocation = GST_DEBUG_FUNCPTR(gst_deepfake_detect_propose_allocation);
  trans_class->passthrough_on_same_caps = FALSE;

  gst_type_mark_as_plugin_api(head_get_type(), GstPluginAPIFlags(0));
  gst_type_mark_as_plugin_api(detector_get_type(), GstPluginAPIFlags(0));
  gst_type_mark_as_plugin_api(aggregation_get_type(), GstPluginAPIFlags(0));
  gst_type_mark_as_plugin_api(ensemble_rule_get_type(), GstPluginAPIFlags(0));
  gst_type_mark_as_plugin_api(sync_get_type(), GstPluginAPIFlags(0));
}
