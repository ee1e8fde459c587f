// GstHarness tests of the deepfakedetect element. The plugin is found through
// GST_PLUGIN_PATH (set by meson). This program is linked with export_dynamic,
// so the plugin binds to its copy of the dfd library and Model::load_shared
// gives every element the one model this program loaded.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "clip.h"
#include "slow_inference.h"
#include "faces/crop.h"
#include "deepfakedetect-meta.h"
#include "model/family.h"
#include "model/model.h"
#include "checkpoint/state_dict.h"
#include "analysis/stream_analyzer.h"

namespace {

std::string test_model_path() {
  const char* p = std::getenv("DFD_GST_TEST_MODEL");
  return p ? p : "";
}

// The model shared with the elements (same path, same process).
std::shared_ptr<const dfd::Model> g_model;

class Env : public ::testing::Environment {
 public:
  void SetUp() override {
    gst_init(nullptr, nullptr);
    ASSERT_FALSE(test_model_path().empty()) << "DFD_GST_TEST_MODEL not set";
    g_model = dfd::Model::load_shared(test_model_path());
  }
  void TearDown() override { g_model.reset(); }
};
const auto* const env = ::testing::AddGlobalTestEnvironment(new Env);

// --- frames in any of the element's formats ---------------------------------

GstBuffer* make_buffer(const cv::Mat& bgr, GstVideoFormat fmt, int64_t index) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, fmt, guint(bgr.cols), guint(bgr.rows));
  GstBuffer* buf = gst_buffer_new_allocate(nullptr, info.size, nullptr);
  GstVideoFrame frame;
  EXPECT_TRUE(gst_video_frame_map(&frame, &info, buf, GST_MAP_WRITE));
  auto copy_plane = [&](int plane, const cv::Mat& src) {
    auto* dst = static_cast<uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, plane));
    const int stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, plane);
    const size_t row = src.cols * src.elemSize();
    for (int y = 0; y < src.rows; ++y) memcpy(dst + size_t(y) * stride, src.ptr(y), row);
  };
  cv::Mat m;
  switch (fmt) {
    case GST_VIDEO_FORMAT_BGR: copy_plane(0, bgr); break;
    case GST_VIDEO_FORMAT_RGB: cv::cvtColor(bgr, m, cv::COLOR_BGR2RGB); copy_plane(0, m); break;
    case GST_VIDEO_FORMAT_BGRx:
    case GST_VIDEO_FORMAT_BGRA: cv::cvtColor(bgr, m, cv::COLOR_BGR2BGRA); copy_plane(0, m); break;
    case GST_VIDEO_FORMAT_RGBx:
    case GST_VIDEO_FORMAT_RGBA: cv::cvtColor(bgr, m, cv::COLOR_BGR2RGBA); copy_plane(0, m); break;
    case GST_VIDEO_FORMAT_I420:
    case GST_VIDEO_FORMAT_NV12: {
      cv::cvtColor(bgr, m, cv::COLOR_BGR2YUV_I420);  // Y, then U, then V (even sizes)
      const int w = bgr.cols, h = bgr.rows;
      cv::Mat y = m.rowRange(0, h);
      cv::Mat u = cv::Mat(h / 2, w / 2, CV_8UC1, m.ptr(h));
      cv::Mat v = cv::Mat(h / 2, w / 2, CV_8UC1, m.ptr(h) + size_t(w / 2) * (h / 2));
      copy_plane(0, y);
      if (fmt == GST_VIDEO_FORMAT_I420) {
        copy_plane(1, u.clone());
        copy_plane(2, v.clone());
      } else {
        cv::Mat uv;
        cv::merge(std::vector<cv::Mat>{u.clone(), v.clone()}, uv);
        copy_plane(1, uv);
      }
      break;
    }
    default: ADD_FAILURE() << "format not handled by the test";
  }
  gst_video_frame_unmap(&frame);
  GST_BUFFER_PTS(buf) = GstClockTime(index) * GST_SECOND / 25;
  GST_BUFFER_DURATION(buf) = GST_SECOND / 25;
  return buf;
}

std::string caps_str(GstVideoFormat fmt, cv::Size s) {
  return std::string("video/x-raw,format=") + gst_video_format_to_string(fmt) + ",width=" + std::to_string(s.width) +
         ",height=" + std::to_string(s.height) + ",framerate=25/1";
}

// --- a harnessed element ----------------------------------------------------

struct Harness {
  GstElement* element = nullptr;
  GstBus* bus = nullptr;
  GstHarness* h = nullptr;

  explicit Harness(std::vector<std::pair<std::string, std::string>> props, bool with_model = true) {
    element = gst_element_factory_make("deepfakedetect", nullptr);
    if (!element) throw std::runtime_error("deepfakedetect not found (GST_PLUGIN_PATH?)");
    if (with_model) g_object_set(element, "model", test_model_path().c_str(), nullptr);
    for (auto& [k, v] : props) gst_util_set_object_arg(G_OBJECT(element), k.c_str(), v.c_str());
    bus = gst_bus_new();
    gst_element_set_bus(element, bus);
    h = gst_harness_new_with_element(element, "sink", "src");
  }
  ~Harness() {
    if (h) gst_harness_teardown(h);
    gst_object_unref(bus);
    gst_object_unref(element);
  }
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  void set_caps(GstVideoFormat fmt, cv::Size s) { gst_harness_set_src_caps_str(h, caps_str(fmt, s).c_str()); }
  GstFlowReturn push(const cv::Mat& bgr, int64_t index, GstVideoFormat fmt = GST_VIDEO_FORMAT_BGR) {
    return gst_harness_push(h, make_buffer(bgr, fmt, index));
  }
  void eos() { ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos())); }

  std::vector<GstMessage*> messages() {  // caller unrefs (see Msgs)
    std::vector<GstMessage*> out;
    while (GstMessage* m = gst_bus_pop(bus)) out.push_back(m);
    return out;
  }
  uint64_t u64(const char* prop) {
    guint64 v = 0;
    g_object_get(element, prop, &v, nullptr);
    return v;
  }
};

// All messages of a run, parsed.
struct Msgs {
  std::vector<DfdWindowVerdict> windows;
  std::vector<DfdFrameVerdict> frames;
  std::vector<GstMessage*> summaries, errors, warnings, all;
  explicit Msgs(std::vector<GstMessage*> v) : all(std::move(v)) {
    for (GstMessage* m : all) {
      DfdWindowVerdict w;
      DfdFrameVerdict f;
      if (dfd_message_parse_window(m, &w)) windows.push_back(w);
      else if (dfd_message_parse_frame(m, &f)) frames.push_back(f);
      else if (dfd_message_has_name(m, DFD_MESSAGE_SUMMARY)) summaries.push_back(m);
      else if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) errors.push_back(m);
      else if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING) warnings.push_back(m);
    }
  }
  ~Msgs() {
    for (GstMessage* m : all) gst_message_unref(m);
  }
  std::string error_text(size_t i = 0) const {
    GError* e = nullptr;
    gchar* dbg = nullptr;
    gst_message_parse_error(errors.at(i), &e, &dbg);
    std::string s = std::string(e->message) + " | " + (dbg ? dbg : "");
    g_error_free(e);
    g_free(dbg);
    return s;
  }
};

std::vector<DfdFaceVerdict> verdicts(GstBuffer* buf) {
  const guint n = dfd_buffer_get_verdicts(buf, nullptr, 0);
  std::vector<DfdFaceVerdict> v(n);
  dfd_buffer_get_verdicts(buf, v.data(), n);
  return v;
}

float iou(const cv::Rect& a, const cv::Rect& b) {
  const float i = float((a & b).area());
  return i / float(a.area() + b.area() - i);
}

// The library's verdicts on the same frames (sync: every window analysed).
dfd::AnalyzerConfig lib_config(int window, int stride) {
  dfd::AnalyzerConfig c;
  c.window_size = window;
  c.window_stride = stride;
  c.head = g_model->card().head;
  return c;
}

// A slow model, registered from outside the element: every WindowStage made
// while this lives (the element makes its worker's at start) runs the model
// through a wrapper that sleeps `ms` per classify_windows call (per batch).

}  // namespace

// ---------------------------------------------------------------------------

TEST(Element, RegisteredWithDocumentedProperties) {
  GstElementFactory* f = gst_element_factory_find("deepfakedetect");
  ASSERT_NE(f, nullptr);
  EXPECT_STREQ(gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS), "Filter/Analyzer/Video");
  GstPlugin* p = gst_plugin_load_by_name("deepfakedetect");
  ASSERT_NE(p, nullptr);
  gst_object_unref(p);
  gst_object_unref(f);

  GstElement* e = gst_element_factory_make("deepfakedetect", nullptr);
  ASSERT_NE(e, nullptr);
  const char* expected[] = {"model", "head", "window-size", "window-stride", "interval", "detect-interval",
                            "face-detector", "face-detector-model", "min-face-size", "max-faces", "track-expiry",
                            "crop-margin", "threshold", "aggregation", "device", "precision", "num-threads",
                            "max-queued-windows", "sync", "overlay", "post-messages", "frame-messages",
                            "windows-analysed", "windows-skipped", "frames-processed"};
  for (const char* name : expected) {
    GParamSpec* ps = g_object_class_find_property(G_OBJECT_GET_CLASS(e), name);
    ASSERT_NE(ps, nullptr) << name;
    EXPECT_NE(std::string(g_param_spec_get_blurb(ps)).find("Since: 0.1"), std::string::npos) << name;
  }
  // Defaults.
  gint ws = 0, q = 0;
  gdouble thr = 0;
  gchar* dev = nullptr;
  gchar* model = nullptr;
  gboolean overlay = TRUE, post = FALSE;
  g_object_get(e, "window-size", &ws, "max-queued-windows", &q, "threshold", &thr, "device", &dev, "model", &model,
               "overlay", &overlay, "post-messages", &post, nullptr);
  // Added in 0.2: retain-memory, on by default (MesoNet 2-10x faster on CPU).
  GParamSpec* retain = g_object_class_find_property(G_OBJECT_GET_CLASS(e), "retain-memory");
  ASSERT_NE(retain, nullptr);
  EXPECT_NE(std::string(g_param_spec_get_blurb(retain)).find("Since: 0.2"), std::string::npos);
  gboolean retain_default = FALSE;
  g_object_get(e, "retain-memory", &retain_default, nullptr);
  EXPECT_TRUE(retain_default);
  EXPECT_EQ(ws, 0);           // the model card's (20 for a published checkpoint)
  EXPECT_EQ(q, 8);
  EXPECT_DOUBLE_EQ(thr, -1.0);  // the model card's
  EXPECT_STREQ(dev, "cpu");
  EXPECT_EQ(model, nullptr);
  EXPECT_FALSE(overlay);
  EXPECT_TRUE(post);
  g_free(dev);
  g_free(model);

  // Round trips, enums by nick as gst-launch sets them.
  std::vector<std::pair<const char*, const char*>> set = {
      {"model", "/tmp/x.safetensors"}, {"head", "temporal"}, {"window-size", "7"}, {"window-stride", "3"},
      {"interval", "2"}, {"detect-interval", "5"}, {"face-detector", "none"}, {"face-detector-model", "/tmp/y.xml"},
      {"min-face-size", "24"}, {"max-faces", "3"}, {"track-expiry", "9"}, {"crop-margin", "0.25"},
      {"threshold", "0.7"}, {"aggregation", "ema"}, {"device", "cuda"}, {"num-threads", "2"},
      {"max-queued-windows", "4"}, {"sync", "false"}, {"overlay", "true"}, {"post-messages", "false"},
      {"frame-messages", "true"}};
  for (auto& [k, v] : set) gst_util_set_object_arg(G_OBJECT(e), k, v);
  for (auto& [k, v] : set) {
    GParamSpec* ps = g_object_class_find_property(G_OBJECT_GET_CLASS(e), k);
    GValue val = G_VALUE_INIT;
    g_value_init(&val, ps->value_type);
    g_object_get_property(G_OBJECT(e), k, &val);
    gchar* s = G_VALUE_HOLDS_ENUM(&val) ? g_strdup(g_enum_get_value(G_ENUM_CLASS(g_type_class_peek(ps->value_type)),
                                                                     g_value_get_enum(&val))->value_nick)
                                        : gst_value_serialize(&val);
    std::string got = s;
    if (G_VALUE_HOLDS_STRING(&val)) got = g_value_get_string(&val);
    if (G_VALUE_HOLDS_DOUBLE(&val)) EXPECT_NEAR(g_value_get_double(&val), std::stod(v), 1e-9) << k;
    else EXPECT_EQ(got, v) << k;
    g_free(s);
    g_value_unset(&val);
  }
  // Out of range values are refused by GObject (the old value stays).
  g_object_set(e, "window-size", 5, nullptr);
  gst_util_set_object_arg(G_OBJECT(e), "threshold", "0.3");
  g_object_get(e, "window-size", &ws, "threshold", &thr, nullptr);
  EXPECT_EQ(ws, 5);
  EXPECT_DOUBLE_EQ(thr, 0.3);
  gst_object_unref(e);
}

// One face, 30 frames: every frame comes out once, in order, with a face meta;
// window messages are sane and match the library run on the same frames.
TEST(Element, FramesMetaMessagesAndLibraryParity) {
  const int n = 30, window = 8, stride = 4;
  dfd_test::ClipSpec spec;
  const auto frames = dfd_test::clip(spec, n);
  Harness hx({{"window-size", std::to_string(window)}, {"window-stride", std::to_string(stride)},
              {"sync", "true"}, {"frame-messages", "true"}});
  hx.set_caps(GST_VIDEO_FORMAT_BGR, spec.size);
  for (int i = 0; i < n; ++i) ASSERT_EQ(hx.push(frames[i], i), GST_FLOW_OK);
  hx.eos();

  // Frames: in = out, same order, each with one face.
  ASSERT_EQ(gst_harness_buffers_received(hx.h), guint(n));
  int with_verdict = 0;
  std::map<int64_t, double> frame_scores;
  for (int i = 0; i < n; ++i) {
    GstBuffer* b = gst_harness_pull(hx.h);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(GST_BUFFER_PTS(b), GstClockTime(i) * GST_SECOND / 25);
    auto v = verdicts(b);
    ASSERT_EQ(v.size(), 1u) << "frame " << i;
    EXPECT_EQ(v[0].track_id, 1u);
    EXPECT_GT(v[0].width, 40);
    EXPECT_TRUE(v[0].model && std::string(v[0].model) == g_model->card().name);
    EXPECT_FALSE(v[0].trained);
    // Sync mode: every frame carries the window that covers it and its own crop's score.
    if (std::string(v[0].label) != "PENDING") {
      ++with_verdict;
      EXPECT_GE(v[0].fake_probability, 0.0);
      EXPECT_LE(v[0].fake_probability, 1.0);
      EXPECT_EQ(v[0].frames_ago, i - v[0].window_end);
      EXPECT_LE(v[0].window_start, i);
      EXPECT_GE(v[0].window_end, i);
      EXPECT_GE(v[0].frame_fake_probability, 0.0);
      frame_scores[i] = v[0].frame_fake_probability;
    } else {
      EXPECT_EQ(v[0].fake_probability, -1.0);
    }
    GstVideoRegionOfInterestMeta* roi = gst_buffer_get_video_region_of_interest_meta_id(b, 0);
    (void)roi;
    gst_buffer_unref(b);
  }
  EXPECT_EQ(with_verdict, n);
  EXPECT_EQ(gst_harness_buffers_in_queue(hx.h), 0u);

  Msgs m(hx.messages());
  EXPECT_TRUE(m.errors.empty());
  ASSERT_EQ(m.summaries.size(), 1u);
  // Windows: ends at 7, 11, 15, ..., 27 then the final one at 29.
  std::vector<int64_t> ends;
  for (const auto& w : m.windows) {
    ends.push_back(w.window_end);
    EXPECT_EQ(w.track_id, 1u);
    EXPECT_GE(w.fake_probability, 0.0);
    EXPECT_LE(w.fake_probability, 1.0);
    EXPECT_EQ(w.timestamp, GstClockTime(w.window_end) * GST_SECOND / 25);
    EXPECT_EQ(w.stream_time, w.timestamp);
    EXPECT_EQ(w.running_time, w.timestamp);
    EXPECT_EQ(w.start_pts, GstClockTime(w.window_start) * GST_SECOND / 25);
    EXPECT_EQ(w.end_pts, GstClockTime(w.window_end + 1) * GST_SECOND / 25);
    EXPECT_EQ(w.window_end - w.window_start + 1, w.frames);
    EXPECT_LE(w.frames, window);
    EXPECT_GT(w.width, 40);
    EXPECT_TRUE(std::string(w.label) == "FAKE" || std::string(w.label) == "REAL");
    EXPECT_EQ(std::string(w.label), w.fake_probability > 0.5 ? "FAKE" : "REAL");
  }
  EXPECT_EQ(ends, (std::vector<int64_t>{7, 11, 15, 19, 23, 27, 29}));
  EXPECT_EQ(m.frames.size(), size_t(n));  // every crop scored once
  for (const auto& f : m.frames) EXPECT_DOUBLE_EQ(frame_scores[f.frame], f.fake_probability) << f.frame;

  // The library on the same frames gives the same windows and probabilities.
  dfd::StreamAnalyzer lib(g_model, lib_config(window, stride));
  std::vector<dfd::WindowVerdict> lw;
  std::vector<dfd::FrameVerdict> lf;
  for (int i = 0; i < n; ++i) {
    auto r = lib.process(frames[i]);
    lw.insert(lw.end(), r.verdicts.windows.begin(), r.verdicts.windows.end());
  }
  auto fin = lib.finish();
  lw.insert(lw.end(), fin.windows.begin(), fin.windows.end());
  ASSERT_EQ(lw.size(), m.windows.size());
  for (size_t i = 0; i < lw.size(); ++i) {
    EXPECT_EQ(lw[i].track_id, m.windows[i].track_id);
    EXPECT_EQ(lw[i].start.index, m.windows[i].window_start);
    EXPECT_EQ(lw[i].end.index, m.windows[i].window_end);
    EXPECT_EQ(lw[i].box.x, m.windows[i].x);
    EXPECT_EQ(lw[i].box.width, m.windows[i].width);
    EXPECT_NEAR(lw[i].prob_fake(), m.windows[i].fake_probability, 1e-5) << "window " << i;
    EXPECT_NEAR(lw[i].track_probability, m.windows[i].track_fake_probability, 1e-5);
  }
  // ... and the same as the model itself on the library's crops of the last window.
  DfdSummary s;
  ASSERT_TRUE(dfd_message_parse_summary(m.summaries[0], &s));
  const auto ls = lib.summary();
  EXPECT_EQ(std::string(s.verdict), ls.verdict);
  EXPECT_NEAR(s.fake_probability, ls.fake_probability, 1e-5);
  EXPECT_EQ(s.frames, uint64_t(n));
  EXPECT_EQ(s.windows_analysed, lw.size());
  EXPECT_EQ(s.windows_skipped, 0u);
  EXPECT_EQ(s.crops_analysed, uint64_t(n));
  ASSERT_EQ(s.n_tracks, 1u);
  DfdTrackSummary t;
  ASSERT_TRUE(dfd_message_get_summary_track(m.summaries[0], 0, &t));
  EXPECT_EQ(t.track_id, 1u);
  EXPECT_EQ(t.frames, n);
  EXPECT_EQ(t.first_frame, 0);
  EXPECT_EQ(t.last_frame, n - 1);
}

// The window verdict equals Model::classify_windows on the model's features of
// the very crops (reference and temporal heads).
TEST(Element, WindowVerdictEqualsModelOnCrops) {
  for (const char* head : {"reference", "temporal"}) {
    const int n = 6;
    dfd_test::ClipSpec spec;
    spec.step = 0;  // still: the box stays put
    const auto frames = dfd_test::clip(spec, n);
    Harness hx({{"window-size", "6"}, {"sync", "true"}, {"head", head}});
    hx.set_caps(GST_VIDEO_FORMAT_BGR, spec.size);
    for (int i = 0; i < n; ++i) ASSERT_EQ(hx.push(frames[i], i), GST_FLOW_OK);
    hx.eos();
    Msgs m(hx.messages());
    ASSERT_EQ(m.windows.size(), 1u) << head;
    const auto& w = m.windows[0];
    std::vector<cv::Mat> crops;
    for (int i = 0; i < n; ++i)
      crops.push_back(dfd::crop_face(frames[i], cv::Rect(w.x, w.y, w.width, w.height)));
    auto feats = g_model->features(crops);
    std::vector<const dfd::Feature*> win;
    for (auto& f : feats) win.push_back(&f);
    auto pred = g_model->classify_windows({win}, dfd::head_mode_from_string(head));
    EXPECT_NEAR(pred[0].prob_fake, w.fake_probability, 1e-5) << head;
  }
}

// Window verdicts are drained before EOS goes on, with a slow model too.
TEST(Element, EosDrainsPendingWindows) {
  const int n = 25;
  dfd_test::ClipSpec spec;
  const auto frames = dfd_test::clip(spec, n);
  auto slow = std::make_unique<ScopedSlowModel>(150);
  Harness hx({{"window-size", "5"}, {"sync", "true"}, {"face-detector", "none"}, {"max-queued-windows", "2"}});
  slow.reset();  // the element's worker keeps it
  hx.set_caps(GST_VIDEO_FORMAT_BGR, spec.size);
  for (int i = 0; i < n; ++i) ASSERT_EQ(hx.push(frames[i], i), GST_FLOW_OK);
  hx.eos();  // returns once the EOS event has gone through the element
  GstEvent* ev = nullptr;
  bool saw_eos = false, summary_before_eos = false;
  guint64 event_windows = 0;
  while ((ev = gst_harness_try_pull_event(hx.h))) {
    saw_eos |= GST_EVENT_TYPE(ev) == GST_EVENT_EOS;
    // The summary also travels downstream, ahead of EOS, for elements after
    // this one (deepfakemetapublish).
    const GstStructure* st = gst_event_get_structure(ev);
    if (GST_EVENT_TYPE(ev) == GST_EVENT_CUSTOM_DOWNSTREAM && st && gst_structure_has_name(st, DFD_MESSAGE_SUMMARY)) {
      summary_before_eos = !saw_eos;
      gst_structure_get_uint64(st, "windows-analysed", &event_windows);
    }
    gst_event_unref(ev);
  }
  EXPECT_TRUE(saw_eos);
  EXPECT_TRUE(summary_before_eos);
  EXPECT_EQ(event_windows, 5u);
  Msgs m(hx.messages());
  ASSERT_EQ(m.windows.size(), 5u);  // every window was posted before EOS left
  EXPECT_EQ(m.windows.back().window_end, n - 1);
  ASSERT_EQ(m.summaries.size(), 1u);
  // The summary comes after the last window.
  size_t last_window = 0, summary = 0;
  for (size_t i = 0; i < m.all.size(); ++i) {
    if (dfd_message_has_name(m.all[i], DFD_MESSAGE_WINDOW)) last_window = i;
    if (dfd_message_has_name(m.all[i], DFD_MESSAGE_SUMMARY)) summary = i;
  }
  EXPECT_GT(summary, last_window);
  EXPECT_EQ(hx.u64("windows-analysed"), 5u);
}

// A flush forgets tracks and windows: windows after it hold only later frames
// and the face gets a new track id.
TEST(Element, FlushResetsTracksAndWindows) {
  dfd_test::ClipSpec spec;
  const auto frames = dfd_test::clip(spec, 20);
  Harness hx({{"window-size", "6"}, {"sync", "true"}});
  hx.set_caps(GST_VIDEO_FORMAT_BGR, spec.size);
  for (int i = 0; i < 9; ++i) ASSERT_EQ(hx.push(frames[i], i), GST_FLOW_OK);  // one window (0-5), 3 crops held
  // Let window 0-5 be classified: a flush would drop it if still queued.
  for (int k = 0; k < 1000 && hx.u64("windows-analysed") < 1; ++k) g_usleep(10000);
  ASSERT_TRUE(gst_harness_push_event(hx.h, gst_event_new_flush_start()));
  ASSERT_TRUE(gst_harness_push_event(hx.h, gst_event_new_flush_stop(TRUE)));
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  ASSERT_TRUE(gst_harness_push_event(hx.h, gst_event_new_segment(&seg)));
  for (int i = 9; i < 20; ++i) ASSERT_EQ(hx.push(frames[i], i), GST_FLOW_OK);
  hx.eos();
  // Frames still held at the flush (sync mode: 6-8 wait for a window 6-11
  // that never comes, 0-5 unless sent before it) are dropped with it.
  const guint received = gst_harness_buffers_received(hx.h);
  ASSERT_GE(received, 11u);
  ASSERT_LE(received, 17u);
  const int before = int(received) - 11;
  for (int k = 0; k < int(received); ++k) {
    GstBuffer* b = gst_harness_pull(hx.h);
    const int i = k < before ? k : 9 + (k - before);
    EXPECT_EQ(GST_BUFFER_PTS(b), GstClockTime(i) * GST_SECOND / 25) << k;
    auto v = verdicts(b);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].track_id, i < 9 ? 1u : 2u) << "frame " << i;
    if (i >= 9) {
      EXPECT_TRUE(v[0].window_end < 0 || v[0].window_start >= 9) << "frame " << i;
    }
    gst_buffer_unref(b);
  }
  Msgs m(hx.messages());
  std::vector<std::pair<int64_t, int64_t>> spans;
  for (const auto& w : m.windows) spans.push_back({w.window_start, w.window_end});
  // Track 1: 0-5 (its 3 held crops are dropped by the flush); track 2: 9-14,
  // then at EOS the last window ending on its last crop (14-19).
  const std::vector<std::pair<int64_t, int64_t>> expect{{0, 5}, {9, 14}, {14, 19}};
  EXPECT_EQ(spans, expect);
}

// A resolution change mid-stream finishes the old tracks' windows and goes on.
TEST(Element, CapsChangeMidStream) {
  dfd_test::ClipSpec a, b;
  b.size = {640, 400};
  b.side = 320;
  const auto fa = dfd_test::clip(a, 8), fb = dfd_test::clip(b, 8);
  Harness hx({{"window-size", "5"}, {"sync", "true"}});
  hx.set_caps(GST_VIDEO_FORMAT_BGR, a.size);
  for (int i = 0; i < 8; ++i) ASSERT_EQ(hx.push(fa[i], i), GST_FLOW_OK);
  hx.set_caps(GST_VIDEO_FORMAT_I420, b.size);
  for (int i = 0; i < 8; ++i) ASSERT_EQ(hx.push(fb[i], 8 + i, GST_VIDEO_FORMAT_I420), GST_FLOW_OK);
  hx.eos();
  ASSERT_EQ(gst_harness_buffers_received(hx.h), 16u);
  for (int i = 0; i < 16; ++i) {
    GstBuffer* buf = gst_harness_pull(hx.h);
    auto v = verdicts(buf);
    ASSERT_EQ(v.size(), 1u) << i;
    if (i >= 8) {
      EXPECT_GT(v[0].track_id, 1u);
      EXPECT_LE(v[0].x + v[0].width, b.size.width);
      EXPECT_GT(v[0].width, 55);  // the bigger face of the bigger frame (about 62 px)
    }
    gst_buffer_unref(buf);
  }
  Msgs m(hx.messages());
  EXPECT_TRUE(m.errors.empty());
  std::vector<std::pair<int64_t, int64_t>> spans;
  for (const auto& w : m.windows) spans.push_back({w.window_start, w.window_end});
  // Old size: 0-4, then the last window (3-7) at the caps change; new size: 8-12, 11-15.
  const std::vector<std::pair<int64_t, int64_t>> expect{{0, 4}, {3, 7}, {8, 12}, {11, 15}};
  EXPECT_EQ(spans, expect);
  ASSERT_GE(m.windows.size(), 2u);
  EXPECT_TRUE(m.windows[1].final);
}

// Every listed format: the same face found, frames intact, overlay drawn.
TEST(Element, EveryFormat) {
  dfd_test::ClipSpec spec;
  const auto frames = dfd_test::clip(spec, 3);
  cv::Rect reference;
  for (GstVideoFormat fmt : {GST_VIDEO_FORMAT_BGR, GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_BGRA, GST_VIDEO_FORMAT_RGB,
                             GST_VIDEO_FORMAT_RGBx, GST_VIDEO_FORMAT_RGBA, GST_VIDEO_FORMAT_I420,
                             GST_VIDEO_FORMAT_NV12}) {
    SCOPED_TRACE(gst_video_format_to_string(fmt));
    for (bool overlay : {false, true}) {
      Harness hx({{"window-size", "2"}, {"sync", "true"}, {"overlay", overlay ? "true" : "false"}});
      hx.set_caps(fmt, spec.size);
      for (int i = 0; i < 3; ++i) ASSERT_EQ(hx.push(frames[i], i, fmt), GST_FLOW_OK);
      hx.eos();
      ASSERT_EQ(gst_harness_buffers_received(hx.h), 3u);
      for (int i = 0; i < 3; ++i) {
        GstBuffer* out = gst_harness_pull(hx.h);
        auto v = verdicts(out);
        ASSERT_EQ(v.size(), 1u);
        const cv::Rect box(v[0].x, v[0].y, v[0].width, v[0].height);
        if (i == 0 && fmt == GST_VIDEO_FORMAT_BGR) reference = box;
        if (i == 0) {
          EXPECT_GT(iou(box, reference), 0.8f) << box;
        }
        GstBuffer* in = make_buffer(frames[i], fmt, i);
        GstMapInfo mi, mo;
        gst_buffer_map(in, &mi, GST_MAP_READ);
        gst_buffer_map(out, &mo, GST_MAP_READ);
        ASSERT_EQ(mi.size, mo.size);
        const bool same = memcmp(mi.data, mo.data, mi.size) == 0;
        EXPECT_EQ(same, !overlay) << "frame " << i;  // untouched unless drawing
        gst_buffer_unmap(in, &mi);
        gst_buffer_unmap(out, &mo);
        gst_buffer_unref(in);
        gst_buffer_unref(out);
      }
      Msgs m(hx.messages());
      EXPECT_TRUE(m.errors.empty());
      EXPECT_EQ(m.windows.size(), 2u);
    }
  }
}

// The overlay draws the box in the verdict's colour and the untrained notice.
TEST(Element, OverlayColoursAndNotice) {
  dfd_test::ClipSpec spec;
  spec.step = 0;
  const auto frames = dfd_test::clip(spec, 4);
  for (const char* thr : {"0.0", "1.0"}) {  // everything FAKE, everything REAL
    Harness hx({{"window-size", "1"}, {"sync", "true"}, {"overlay", "true"}, {"threshold", thr}});
    hx.set_caps(GST_VIDEO_FORMAT_BGR, spec.size);
    for (int i = 0; i < 4; ++i) {
      if (i == 3)  // let the worker catch up so that frame 3 carries a verdict
        for (int k = 0; k < 500 && hx.u64("windows-analysed") < 3; ++k) g_usleep(10000);
      ASSERT_EQ(hx.push(frames[i], i), GST_FLOW_OK);
    }
    hx.eos();
    for (int i = 0; i < 4; ++i) {
      GstBuffer* out = gst_harness_pull(hx.h);
      auto v = verdicts(out);
      ASSERT_EQ(v.size(), 1u);
      if (i == 3) {
        EXPECT_STREQ(v[0].label, thr[0] == '0' ? "FAKE" : "REAL");
        GstMapInfo mo;
        gst_buffer_map(out, &mo, GST_MAP_READ);
        GstVideoInfo info;
        gst_video_info_set_format(&info, GST_VIDEO_FORMAT_BGR, spec.size.width, spec.size.height);
        cv::Mat img(spec.size, CV_8UC3, mo.data, GST_VIDEO_INFO_PLANE_STRIDE(&info, 0));
        // Left edge of the box, half way down.
        const cv::Vec3b px = img.at<cv::Vec3b>(v[0].y + v[0].height / 2, v[0].x + 1);
        if (thr[0] == '0') EXPECT_EQ(px, cv::Vec3b(0, 0, 255));
        else EXPECT_EQ(px, cv::Vec3b(0, 200, 0));
        // The untrained-model banner: dark grey top-left corner.
        const cv::Vec3b corner = img.at<cv::Vec3b>(1, 1);
        EXPECT_EQ(corner, cv::Vec3b(40, 40, 40));
        gst_buffer_unmap(out, &mo);
      }
      gst_buffer_unref(out);
    }
  }
}

TEST(Element, NoFace) {
  dfd_test::ClipSpec spec;
  spec.faces = false;
  const auto frames = dfd_test::clip(spec, 10);
  Harness hx({{"window-size", "4"}, {"sync", "true"}});
  hx.set_caps(GST_VIDEO_FORMAT_BGR, spec.size);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(hx.push(frames[i], i), GST_FLOW_OK);
  hx.eos();
  ASSERT_EQ(gst_harness_buffers_received(hx.h), 10u);
  for (int i = 0; i < 10; ++i) {
    GstBuffer* b = gst_harness_pull(hx.h);
    EXPECT_EQ(verdicts(b).size(), 0u);
    gst_buffer_unref(b);
  }
  Msgs m(hx.messages());
  EXPECT_TRUE(m.windows.empty());
  ASSERT_EQ(m.summaries.size(), 1u);
  DfdSummary s;
  ASSERT_TRUE(dfd_message_parse_summary(m.summaries[0], &s));
  EXPECT_STREQ(s.verdict, "NO_FACE");
  EXPECT_EQ(s.n_tracks, 0u);
  EXPECT_EQ(s.frames, 10u);
}

TEST(Element, ManyFaces) {
  dfd_test::ClipSpec spec;
  spec.size = {960, 320};  // three faces of about 60 px, found on every frame
  spec.copies = 3;
  spec.side = 300;
  const auto frames = dfd_test::clip(spec, 8);
  Harness hx({{"window-size", "4"}, {"sync", "true"}, {"max-faces", "8"}});
  hx.set_caps(GST_VIDEO_FORMAT_BGR, spec.size);
  for (int i = 0; i < 8; ++i) ASSERT_EQ(hx.push(frames[i], i), GST_FLOW_OK);
  hx.eos();
  std::set<uint64_t> ids;
  for (int i = 0; i < 8; ++i) {
    GstBuffer* b = gst_harness_pull(hx.h);
    auto v = verdicts(b);
    EXPECT_EQ(v.size(), 3u) << "frame " << i;
    for (auto& f : v) ids.insert(f.track_id);
    gst_buffer_unref(b);
  }
  EXPECT_EQ(ids, (std::set<uint64_t>{1, 2, 3}));  // stable ids: three tracks, no more
  Msgs m(hx.messages());
  EXPECT_EQ(m.windows.size(), 6u);  // 2 per face
  DfdSummary s;
  ASSERT_EQ(m.summaries.size(), 1u);
  ASSERT_TRUE(dfd_message_parse_summary(m.summaries[0], &s));
  EXPECT_EQ(s.n_tracks, 3u);
  // max-faces 2 keeps the two largest.
  Harness h2({{"window-size", "4"}, {"sync", "true"}, {"max-faces", "2"}});
  h2.set_caps(GST_VIDEO_FORMAT_BGR, spec.size);
  ASSERT_EQ(h2.push(frames[0], 0), GST_FLOW_OK);
  h2.eos();  // sync mode holds the frame until its (last) window is classified
  GstBuffer* b = gst_harness_pull(h2.h);
  EXPECT_EQ(verdicts(b).size(), 2u);
  gst_buffer_unref(b);
}

// A bad model is an error on the bus (naming the file), not a crash.
TEST(Element, BadModelIsAnErrorOnTheBus) {
  const std::string bad_files[] = {"/nonexistent/model.safetensors", std::string(std::getenv("DFD_TEST_DATA")) + "/astronaut.png"};
  for (const auto& path : bad_files) {
    GstElement* e = gst_element_factory_make("deepfakedetect", nullptr);
    g_object_set(e, "model", path.c_str(), nullptr);
    GstBus* bus = gst_bus_new();
    gst_element_set_bus(e, bus);
    EXPECT_EQ(gst_element_set_state(e, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
    GstMessage* err = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    ASSERT_NE(err, nullptr) << path;
    GError* ge = nullptr;
    gchar* dbg = nullptr;
    gst_message_parse_error(err, &ge, &dbg);
    EXPECT_NE(std::string(ge->message).find(path), std::string::npos) << ge->message;
    EXPECT_TRUE(ge->domain == GST_RESOURCE_ERROR);
    g_error_free(ge);
    g_free(dbg);
    gst_message_unref(err);
    gst_element_set_state(e, GST_STATE_NULL);
    gst_object_unref(bus);
    gst_object_unref(e);
  }
  // Bad settings are errors too: device=cuda without CUDA.
  GstElement* e = gst_element_factory_make("deepfakedetect", nullptr);
  g_object_set(e, "model", test_model_path().c_str(), "device", "cuda", nullptr);
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(e, bus);
  EXPECT_EQ(gst_element_set_state(e, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  GstMessage* err = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  EXPECT_NE(err, nullptr);
  if (err) gst_message_unref(err);
  gst_element_set_state(e, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(e);
}

// An untrained model is only used when named, and is flagged.
TEST(Element, ExplicitUntrainedModelWarns) {
  Harness hx({{"window-size", "2"}, {"sync", "true"}, {"face-detector", "none"}});  // model= the untrained test model
  Msgs m(hx.messages());
  ASSERT_EQ(m.warnings.size(), 1u);
  GError* ge = nullptr;
  gst_message_parse_warning(m.warnings[0], &ge, nullptr);
  EXPECT_NE(std::string(ge->message).find("UNTRAINED"), std::string::npos);
  g_error_free(ge);
  EXPECT_TRUE(m.errors.empty());
}

// --- real detectors (MesoNet), crop geometry, short tracks, ensembles --------

namespace {
std::string mesonet_dir() {
  const char* d = std::getenv("DFD_MESONET_MODELS");
  return d ? d : "models/mesonet";
}
cv::Mat mesonet_face(const std::string& f) {
  const char* dir = std::getenv("DFD_TEST_DATA");
  return cv::imread(std::string(dir ? dir : "tests/data") + "/mesonet-faces/" + f, cv::IMREAD_COLOR);
}
// models/README.md: Meso4_DF's P(real) of the authors' four faces.
const std::pair<const char*, double> kMesoFaces[] = {
    {"df00204.jpg", 0.048}, {"df01254.jpg", 0.025}, {"real00240.jpg", 0.990}, {"real00772.jpg", 0.997}};

// Records every crop a WindowStage made from now on is given.
struct CropLog {
  std::mutex mu;
  std::vector<cv::Mat> crops;
};
class RecordingInference : public dfd::Inference {
 public:
  RecordingInference(std::shared_ptr<const dfd::Inference> inner, CropLog* log) : inner_(std::move(inner)), log_(log) {}
  std::vector<dfd::Feature> features(const std::vector<cv::Mat>& crops) const override {
    {
      std::lock_guard<std::mutex> lk(log_->mu);
      for (const auto& c : crops) log_->crops.push_back(c.clone());
    }
    return inner_->features(crops);
  }
  std::vector<dfd::Prediction> classify_frames(const std::vector<const dfd::Feature*>& f) const override {
    return inner_->classify_frames(f);
  }
  std::vector<dfd::Prediction> classify_windows(const std::vector<std::vector<const dfd::Feature*>>& w,
                                                dfd::HeadMode mode) const override {
    return inner_->classify_windows(w, mode);
  }

 private:
  std::shared_ptr<const dfd::Inference> inner_;
  CropLog* log_;
};
struct ScopedCropLog {
  CropLog log;
  ScopedCropLog() {
    dfd::set_inference_wrapper([this](std::shared_ptr<const dfd::Inference> inner) {
      return std::make_shared<RecordingInference>(std::move(inner), &log);
    });
  }
  ~ScopedCropLog() { dfd::set_inference_wrapper(nullptr); }
};
}  // namespace

// model unset: the shipped, trained Meso4_DF. Whole frames as faces (the
// authors' 342x342 faces, cropped whole and resized bilinear to 256): the
// README's P(real); every crop is scored on its own frame (windows of one),
// the track's score is the mean of its crops'.
TEST(Element, DefaultModelIsMesoNetWithTheReadmeScores) {
  for (auto& [file, p_real] : kMesoFaces) {  // the faces differ in size: one stream each
    SCOPED_TRACE(file);
    const cv::Mat img = mesonet_face(file);
    ASSERT_FALSE(img.empty());
    const double want = 1.0 - p_real;
    Harness hx({{"sync", "true"}, {"face-detector", "none"}}, /*with_model=*/false);
    hx.set_caps(GST_VIDEO_FORMAT_BGR, img.size());
    for (int i = 0; i < 2; ++i) ASSERT_EQ(hx.push(img, i), GST_FLOW_OK);
    hx.eos();
    for (int i = 0; i < 2; ++i) {
      GstBuffer* b = gst_harness_pull(hx.h);
      ASSERT_NE(b, nullptr);
      auto v = verdicts(b);
      ASSERT_EQ(v.size(), 1u);
      // Its own crop's score on the very frame (the first one too), and the track's mean.
      EXPECT_NEAR(v[0].frame_fake_probability, want, 1e-3);
      EXPECT_NEAR(v[0].window_fake_probability, want, 1e-3);
      EXPECT_NEAR(v[0].fake_probability, want, 1e-3);
      EXPECT_EQ(v[0].window_start, i);
      EXPECT_EQ(v[0].window_end, i);
      EXPECT_TRUE(v[0].trained);
      EXPECT_STREQ(v[0].label, p_real < 0.5 ? "FAKE" : "REAL");
      gst_buffer_unref(b);
    }
    Msgs m(hx.messages());
    EXPECT_TRUE(m.errors.empty());
    EXPECT_TRUE(m.warnings.empty());  // trained: no UNTRAINED warning
    ASSERT_EQ(m.windows.size(), 2u);
    for (const auto& w : m.windows) {
      EXPECT_EQ(w.frames, 1);
      EXPECT_NEAR(w.fake_probability, want, 1e-3);
      EXPECT_TRUE(w.trained);
      EXPECT_EQ(std::string(w.model), dfd::load_detector_shared(mesonet_dir() + "/Meso4_DF.h5")->card().name);
    }
  }
}

// A MesoNet track has a score on its first analysed frame, in async mode too
// (no 20-crop wait): the first window message ends on frame 0.
TEST(Element, MesoNetScoresTheFirstCrop) {
  const cv::Mat img = mesonet_face("df00204.jpg");
  ASSERT_FALSE(img.empty());
  Harness hx({{"sync", "false"}, {"face-detector", "none"}, {"model", mesonet_dir() + "/Meso4_DF.h5"}}, false);
  hx.set_caps(GST_VIDEO_FORMAT_BGR, img.size());
  ASSERT_EQ(hx.push(img, 0), GST_FLOW_OK);
  hx.eos();
  Msgs m(hx.messages());
  ASSERT_GE(m.windows.size(), 1u);
  EXPECT_EQ(m.windows[0].window_start, 0);
  EXPECT_EQ(m.windows[0].window_end, 0);
  EXPECT_NEAR(m.windows[0].fake_probability, 1.0 - 0.048, 1e-3);
}

// Crops are cut at the detector's input size with its margin (MesoNet 256,
// box + 20 %; ResNeXt 112, tight) unless crop-margin is set.
TEST(Element, CropSizeAndMarginFollowTheDetector) {
  dfd_test::ClipSpec spec;
  const cv::Mat frame = dfd_test::clip_frame(spec, 0);
  struct Case {
    std::string model;
    const char* margin;  // nullptr: unset
    int size;
    float want_margin;
  };
  const Case cases[] = {{"", nullptr, 256, 0.2f},
                        {mesonet_dir() + "/MesoInception_DF.h5", "0", 256, 0.f},
                        {test_model_path(), nullptr, 112, 0.f},
                        {test_model_path(), "0.3", 112, 0.3f}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.model + " margin " + (c.margin ? c.margin : "unset"));
    ScopedCropLog rec;
    std::vector<std::pair<std::string, std::string>> props{{"sync", "true"}, {"window-size", "1"}};
    if (c.margin) props.push_back({"crop-margin", c.margin});
    if (!c.model.empty()) props.push_back({"model", c.model});
    Harness hx(props, false);
    hx.set_caps(GST_VIDEO_FORMAT_BGR, spec.size);
    ASSERT_EQ(hx.push(frame, 0), GST_FLOW_OK);
    hx.eos();
    GstBuffer* b = gst_harness_pull(hx.h);
    ASSERT_NE(b, nullptr);
    auto v = verdicts(b);
    gst_buffer_unref(b);
    ASSERT_EQ(v.size(), 1u);
    const cv::Rect box(v[0].x, v[0].y, v[0].width, v[0].height);
    std::lock_guard<std::mutex> lk(rec.log.mu);
    ASSERT_EQ(rec.log.crops.size(), 1u);
    const cv::Mat& got = rec.log.crops[0];
    EXPECT_EQ(got.cols, c.size);
    EXPECT_EQ(got.rows, c.size);
    EXPECT_EQ(cv::norm(got, dfd::crop_face(frame, box, c.want_margin, c.size), cv::NORM_INF), 0.0);
    // ... and not the crop of another margin (the margin is visible).
    const float other = c.want_margin > 0 ? 0.f : 0.2f;
    EXPECT_GT(cv::norm(got, dfd::crop_face(frame, box, other, c.size), cv::NORM_INF), 0.0);
  }
}

// Tracks shorter than min-track-length are reported but do not decide; when
// every track is that short, they do.
TEST(Element, MinTrackLengthInTheSummary) {
  const cv::Mat img = mesonet_face("df00204.jpg");
  ASSERT_FALSE(img.empty());
  for (const int min_len : {2, 5}) {
    Harness hx({{"sync", "true"}, {"face-detector", "none"}, {"min-track-length", std::to_string(min_len)}}, false);
    hx.set_caps(GST_VIDEO_FORMAT_BGR, img.size());
    for (int i = 0; i < 3; ++i) ASSERT_EQ(hx.push(img, i), GST_FLOW_OK);
    hx.eos();
    Msgs m(hx.messages());
    ASSERT_EQ(m.summaries.size(), 1u);
    const GstStructure* s = gst_message_get_structure(m.summaries[0]);
    gint got_min = 0;
    ASSERT_TRUE(gst_structure_get_int(s, "min-track-length", &got_min));
    EXPECT_EQ(got_min, min_len);
    EXPECT_STREQ(gst_structure_get_string(s, "verdict"), "FAKE");  // the one track (3 crops) decides either way
    const GValue* tracks = gst_structure_get_value(s, "tracks");
    ASSERT_EQ(gst_value_array_get_size(tracks), 1u);
    const GstStructure* t = gst_value_get_structure(gst_value_array_get_value(tracks, 0));
    gboolean counted = FALSE;
    ASSERT_TRUE(gst_structure_get_boolean(t, "counted", &counted));
    EXPECT_TRUE(counted);  // 3 >= 2; and with 5, every track is short, so all count
  }
}

// model=a,b: each window's P(FAKE) combines the members' (mean or max); each
// member's is in the window message and the ROI params.
TEST(Element, EnsembleKeepsEachMembersScore) {
  const cv::Mat img = mesonet_face("real00240.jpg");
  ASSERT_FALSE(img.empty());
  const std::string a = mesonet_dir() + "/Meso4_DF.h5", b = mesonet_dir() + "/Meso4_F2F.h5";
  auto da = dfd::load_detector_shared(a), db = dfd::load_detector_shared(b);
  const float pa = da->score_crops({dfd::crop_face(img, cv::Rect(0, 0, img.cols, img.rows), 0.2f, 256)})[0];
  const float pb = db->score_crops({dfd::crop_face(img, cv::Rect(0, 0, img.cols, img.rows), 0.2f, 256)})[0];
  ASSERT_GT(std::abs(pa - pb), 1e-3) << "the two members should disagree for this test to mean anything";
  for (const char* rule : {"mean", "max"}) {
    SCOPED_TRACE(rule);
    Harness hx({{"sync", "true"}, {"face-detector", "none"}, {"model", a + "," + b}, {"ensemble-rule", rule}}, false);
    hx.set_caps(GST_VIDEO_FORMAT_BGR, img.size());
    ASSERT_EQ(hx.push(img, 0), GST_FLOW_OK);
    hx.eos();
    const double want = std::string(rule) == "max" ? std::max(pa, pb) : (pa + pb) / 2;
    GstBuffer* buf = gst_harness_pull(hx.h);
    ASSERT_NE(buf, nullptr);
    GstVideoRegionOfInterestMeta* roi = gst_buffer_get_video_region_of_interest_meta_id(buf, 1);
    ASSERT_NE(roi, nullptr);
    const GstStructure* ps = gst_video_region_of_interest_meta_get_param(roi, DFD_PARAM_NAME);
    ASSERT_NE(ps, nullptr);
    const GValue* mv = gst_structure_get_value(ps, DFD_FIELD_MEMBER_PROBABILITIES);
    ASSERT_NE(mv, nullptr);
    ASSERT_EQ(gst_value_array_get_size(mv), 2u);
    EXPECT_NEAR(g_value_get_double(gst_value_array_get_value(mv, 0)), pa, 1e-5);
    EXPECT_NEAR(g_value_get_double(gst_value_array_get_value(mv, 1)), pb, 1e-5);
    gst_buffer_unref(buf);
    Msgs m(hx.messages());
    EXPECT_TRUE(m.errors.empty());
    ASSERT_EQ(m.windows.size(), 1u);
    EXPECT_NEAR(m.windows[0].fake_probability, want, 1e-5);
    GstMessage* wm = nullptr;
    for (GstMessage* x : m.all)
      if (dfd_message_has_name(x, DFD_MESSAGE_WINDOW)) wm = x;
    ASSERT_NE(wm, nullptr);
    const GValue* wv = gst_structure_get_value(gst_message_get_structure(wm), DFD_FIELD_MEMBER_PROBABILITIES);
    ASSERT_NE(wv, nullptr);
    ASSERT_EQ(gst_value_array_get_size(wv), 2u);
    EXPECT_NEAR(g_value_get_double(gst_value_array_get_value(wv, 0)), pa, 1e-5);
    EXPECT_NEAR(g_value_get_double(gst_value_array_get_value(wv, 1)), pb, 1e-5);
  }
}

// A bad file among the members: an error naming it (and which member), at start.
TEST(Element, BadEnsembleMemberIsAnError) {
  const std::string good = mesonet_dir() + "/Meso4_DF.h5";
  const std::string bad = std::string(std::getenv("DFD_TEST_DATA")) + "/astronaut.png";
  GstElement* e = gst_element_factory_make("deepfakedetect", nullptr);
  g_object_set(e, "model", (good + "," + bad).c_str(), nullptr);
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(e, bus);
  EXPECT_EQ(gst_element_set_state(e, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  GstMessage* msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  ASSERT_NE(msg, nullptr);
  GError* ge = nullptr;
  gchar* dbg = nullptr;
  gst_message_parse_error(msg, &ge, &dbg);
  const std::string text = ge->message;
  EXPECT_NE(text.find(bad), std::string::npos) << text;
  EXPECT_NE(text.find("member 2 of 2"), std::string::npos) << text;
  EXPECT_EQ(text.find(good), std::string::npos) << text;
  g_error_free(ge);
  g_free(dbg);
  gst_message_unref(msg);
  gst_element_set_state(e, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(e);
}

// The default model is looked for in $DFD_MODEL_DIR first.
TEST(Element, DefaultModelFromDfdModelDir) {
  const std::string dir = ::testing::TempDir() + "dfd-model-dir";
  g_mkdir_with_parents(dir.c_str(), 0755);
  const auto before = dfd::default_model_candidates();
  g_setenv("DFD_MODEL_DIR", dir.c_str(), TRUE);
  const auto cands = dfd::default_model_candidates();
  ASSERT_GE(cands.size(), 3u);
  EXPECT_EQ(cands[0], dir + "/mesonet/Meso4_DF.h5");
  EXPECT_NE(dfd::find_default_model().rfind(dir, 0), 0u);  // not there (yet): the next place
  const std::string flat = dir + "/Meso4_DF.h5";
  {
    std::ifstream in(mesonet_dir() + "/Meso4_DF.h5", std::ios::binary);
    std::ofstream out(flat, std::ios::binary);
    out << in.rdbuf();
  }
  EXPECT_EQ(dfd::find_default_model(), flat);
  g_unsetenv("DFD_MODEL_DIR");
  std::remove(flat.c_str());
  EXPECT_EQ(dfd::default_model_candidates(), before);
}

// Live: a head far slower than the video never holds frames up; windows that
// find the queue full are skipped and counted.
TEST(Element, LiveNeverBlocks) {
  const int n = 40;
  dfd_test::ClipSpec spec;
  spec.size = {160, 120};
  const auto frames = dfd_test::clip(spec, n);
  auto slow = std::make_unique<ScopedSlowModel>(400);
  Harness hx({{"window-size", "2"}, {"window-stride", "1"}, {"sync", "false"}, {"face-detector", "none"},
              {"max-queued-windows", "2"}});
  slow.reset();  // the element's worker keeps it
  hx.set_caps(GST_VIDEO_FORMAT_BGR, spec.size);
  const auto t0 = std::chrono::steady_clock::now();
  double worst = 0;
  for (int i = 0; i < n; ++i) {
    const auto a = std::chrono::steady_clock::now();
    ASSERT_EQ(hx.push(frames[i], i), GST_FLOW_OK);
    worst = std::max(worst, std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
    GstBuffer* b = gst_harness_pull(hx.h);  // the frame is out at once
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(verdicts(b).size(), 1u);
    gst_buffer_unref(b);
  }
  const double pushing = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // 39 windows at 400 ms each would take 15 s: frames must not wait for them.
  EXPECT_LT(pushing, 4.0);
  EXPECT_LT(worst, 0.3);
  EXPECT_GT(hx.u64("windows-skipped"), 0u);
  EXPECT_EQ(hx.u64("frames-processed"), uint64_t(n));
  hx.eos();
  Msgs m(hx.messages());
  ASSERT_EQ(m.summaries.size(), 1u);
  DfdSummary s;
  ASSERT_TRUE(dfd_message_parse_summary(m.summaries[0], &s));
  EXPECT_GT(s.windows_skipped, 0u);
  EXPECT_EQ(s.windows_analysed + s.windows_skipped, uint64_t(n - 1));  // a window ends on every frame but the first
  EXPECT_EQ(s.frames, uint64_t(n));
  std::printf("live: %d frames pushed in %.3f s (worst %.1f ms), %llu windows analysed, %llu skipped\n", n, pushing,
              worst * 1e3, (unsigned long long)s.windows_analysed, (unsigned long long)s.windows_skipped);
}

// interval and detect-interval: fewer crops, boxes still on every frame.
TEST(Element, IntervalsKeepBoxesOnEveryFrame) {
  const int n = 12;
  dfd_test::ClipSpec spec;
  const auto frames = dfd_test::clip(spec, n);
  Harness hx({{"window-size", "3"}, {"sync", "true"}, {"interval", "2"}, {"detect-interval", "4"},
              {"frame-messages", "true"}});
  hx.set_caps(GST_VIDEO_FORMAT_BGR, spec.size);
  for (int i = 0; i < n; ++i) ASSERT_EQ(hx.push(frames[i], i), GST_FLOW_OK);
  hx.eos();
  for (int i = 0; i < n; ++i) {
    GstBuffer* b = gst_harness_pull(hx.h);
    EXPECT_EQ(verdicts(b).size(), 1u) << i;
    gst_buffer_unref(b);
  }
  Msgs m(hx.messages());
  std::vector<int64_t> cropped;
  for (const auto& f : m.frames) cropped.push_back(f.frame);
  EXPECT_EQ(cropped, (std::vector<int64_t>{0, 2, 4, 6, 8, 10}));
  ASSERT_EQ(m.windows.size(), 2u);
  EXPECT_EQ(m.windows[0].window_start, 0);
  EXPECT_EQ(m.windows[0].window_end, 4);
  EXPECT_EQ(m.windows[0].frames, 3);
}

// sync=auto follows the source: a live source never waits for the model (and
// the element adds no latency), a file-like source gets every window analysed.
TEST(Element, AutoSyncFollowsLivenessAndLatency) {
  for (bool live : {true, false}) {
    SCOPED_TRACE(live ? "live" : "not live");
    auto slow = std::make_unique<ScopedSlowModel>(200);
    const std::string desc = std::string("videotestsrc num-buffers=30 is-live=") + (live ? "true" : "false") +
                             " ! video/x-raw,format=BGR,width=160,height=120,framerate=30/1"
                             " ! deepfakedetect name=d face-detector=none window-size=2 window-stride=1 "
                             "max-queued-windows=2 model=" + test_model_path() + " ! fakesink sync=true";
    GError* err = nullptr;
    GstElement* p = gst_parse_launch(desc.c_str(), &err);
    ASSERT_NE(p, nullptr) << (err ? err->message : "");
    GstElement* d = gst_bin_get_by_name(GST_BIN(p), "d");
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
    slow.reset();  // started: the element's worker keeps it
    GstState st;
    gst_element_get_state(p, &st, nullptr, 10 * GST_SECOND);
    // The latency query (as the sink asks it) goes through the element unchanged.
    GstQuery* q = gst_query_new_latency();
    GstPad* src = gst_element_get_static_pad(d, "src");
    ASSERT_TRUE(gst_pad_query(src, q));
    gst_object_unref(src);
    gboolean is_live = FALSE;
    GstClockTime min = 0, max = 0;
    gst_query_parse_latency(q, &is_live, &min, &max);
    gst_query_unref(q);
    EXPECT_EQ(bool(is_live), live);
    if (live) {
      EXPECT_EQ(min, GST_SECOND / 30);  // videotestsrc's one frame; nothing added
    }
    GstBus* bus = gst_element_get_bus(p);
    GstMessage* m = gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND, GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(GST_MESSAGE_TYPE(m), GST_MESSAGE_EOS);
    gst_message_unref(m);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    guint64 skipped = 0, analysed = 0;
    g_object_get(d, "windows-skipped", &skipped, "windows-analysed", &analysed, nullptr);
    if (live) {
      // Windows were dropped rather than waited for: the live source never
      // waited on the 200 ms model (the time is printed, not asserted).
      EXPECT_GT(skipped, 0u);
      EXPECT_LT(analysed, 29u);
    } else {
      EXPECT_EQ(skipped, 0u);
      EXPECT_EQ(analysed, 29u);
    }
    std::printf("%s: %.2f s, %llu windows analysed, %llu skipped\n", live ? "live" : "not live", secs,
                (unsigned long long)analysed, (unsigned long long)skipped);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(bus);
    gst_object_unref(d);
    gst_object_unref(p);
  }
}

// Stopping a pipeline whose streaming thread waits on a slow worker (sync
// mode draining the queue at EOS) must not wait for every queued window.
TEST(Element, StopWhileDrainingReturnsPromptly) {
  auto slow = std::make_unique<ScopedSlowModel>(1500);
  const std::string desc =
      "videotestsrc num-buffers=12 ! video/x-raw,format=BGR,width=160,height=120,framerate=30/1"
      " ! deepfakedetect name=d sync=true face-detector=none window-size=1 max-queued-windows=32 model=" +
      test_model_path() + " ! fakesink sync=false";
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(desc.c_str(), &err);
  ASSERT_NE(p, nullptr) << (err ? err->message : "");
  ASSERT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  slow.reset();  // started: the element's worker keeps it
  std::this_thread::sleep_for(std::chrono::milliseconds(800));  // EOS reached: 12 windows queued, draining
  const auto t0 = std::chrono::steady_clock::now();
  gst_element_set_state(p, GST_STATE_NULL);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // At most the window in progress (1.5 s) finishes; all 12 would take 18 s.
  EXPECT_LT(secs, 8.0);
  gst_object_unref(p);
}

// Unset window-size and threshold come from the model card, so a model
// trained with deepfake-train deploys with its own window and threshold.
TEST(Element, WindowSizeAndThresholdDefaultToTheModelCard) {
  dfd::Checkpoint ck = dfd::read_checkpoint(test_model_path());
  ASSERT_TRUE(ck.card.has_value());
  dfd::ModelCard card = *ck.card;
  card.window_size = 3;
  card.threshold = 0.25f;
  const std::string path = ::testing::TempDir() + "card-defaults.safetensors";
  dfd::write_safetensors(path, ck.tensors, card);
  const int n = 9;
  dfd_test::ClipSpec spec;
  spec.size = {160, 120};
  const auto frames = dfd_test::clip(spec, n);
  Harness hx({{"model", path}, {"sync", "true"}, {"face-detector", "none"}}, /*with_model=*/false);
  hx.set_caps(GST_VIDEO_FORMAT_BGR, spec.size);
  for (int i = 0; i < n; ++i) ASSERT_EQ(hx.push(frames[i], i), GST_FLOW_OK);
  hx.eos();
  Msgs m(hx.messages());
  ASSERT_EQ(m.windows.size(), 3u);  // 9 frames in windows of the card's 3
  for (const auto& w : m.windows) EXPECT_EQ(w.window_end - w.window_start, 2);
  ASSERT_EQ(m.summaries.size(), 1u);
  gdouble thr = 0;
  ASSERT_TRUE(gst_structure_get_double(gst_message_get_structure(m.summaries[0]), "threshold", &thr));
  EXPECT_NEAR(thr, 0.25, 1e-6);
  std::remove(path.c_str());
}

// precision=bf16 where the CPU has AVX512_BF16: verdicts close to fp32 on the
// same frames; elsewhere a clear error on the bus. Bad values are errors.
namespace {
std::string start_error(const char* precision) {
  GstElement* e = gst_element_factory_make("deepfakedetect", nullptr);
  g_object_set(e, "model", test_model_path().c_str(), "precision", precision, nullptr);
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(e, bus);
  std::string text;
  if (gst_element_set_state(e, GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE) {
    text = "failed";
    if (GstMessage* err = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
      GError* ge = nullptr;
      gchar* dbg = nullptr;
      gst_message_parse_error(err, &ge, &dbg);
      text = std::string(ge->message) + " | " + (dbg ? dbg : "");
      g_error_free(ge);
      g_free(dbg);
      gst_message_unref(err);
    }
  }
  gst_element_set_state(e, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(e);
  return text;
}
}  // namespace

TEST(Element, PrecisionProperty) {
  const int n = 4;
  dfd_test::ClipSpec spec;
  spec.size = {160, 120};
  const auto frames = dfd_test::clip(spec, n);
  auto prob = [&](const char* precision) {
    Harness hx({{"window-size", "4"}, {"sync", "true"}, {"face-detector", "none"}, {"precision", precision}});
    hx.set_caps(GST_VIDEO_FORMAT_BGR, spec.size);
    for (int i = 0; i < n; ++i) hx.push(frames[i], i);
    hx.eos();
    Msgs m(hx.messages());
    return m.windows.empty() ? -1.0 : m.windows.back().fake_probability;
  };
  const double p32 = prob("fp32");
  ASSERT_GE(p32, 0.0);
  const std::string e16 = start_error("bf16");
  if (e16.empty()) {
    EXPECT_NEAR(prob("bf16"), p32, 0.1);
  } else {
    EXPECT_NE(e16.find("bf16"), std::string::npos) << e16;  // this CPU has no native bf16
  }
  const std::string bad = start_error("fp8");
  EXPECT_NE(bad.find("precision"), std::string::npos) << bad;
}

// num-threads above the CPUs this process may use is clamped to them, with
// one warning naming both numbers; a sensible value passes silently.
TEST(Element, NumThreadsClampedToTheCpus) {
  const int cpus = int(g_get_num_processors());
  auto warnings_about_threads = [](Msgs& m) {
    std::vector<std::string> out;
    for (GstMessage* w : m.warnings) {
      GError* ge = nullptr;
      gst_message_parse_warning(w, &ge, nullptr);
      if (std::string(ge->message).find("num-threads") != std::string::npos) out.push_back(ge->message);
      g_error_free(ge);
    }
    return out;
  };
  {
    Harness hx({{"num-threads", "1024"}, {"window-size", "2"}, {"sync", "true"}, {"face-detector", "none"}});
    Msgs m(hx.messages());
    const auto w = warnings_about_threads(m);
    ASSERT_EQ(w.size(), 1u);
    const std::string expect = "num-threads=1024 is more than the " + std::to_string(cpus) +
                               " CPUs available: using " + std::to_string(cpus);
    EXPECT_EQ(w[0], expect);
    gint asked = 0;
    g_object_get(hx.element, "num-threads", &asked, nullptr);
    EXPECT_EQ(asked, 1024);  // the property keeps what was asked; the clamp is the runtime's
  }
  {
    Harness hx({{"num-threads", std::to_string(cpus)}, {"window-size", "2"}, {"sync", "true"}, {"face-detector", "none"}});
    Msgs m(hx.messages());
    EXPECT_TRUE(warnings_about_threads(m).empty());
  }
}

namespace {

// Everything a run of the element gives, per frame and on the bus.
struct RunRecord {
  std::vector<std::string> metas;               // per frame: every face's ROI meta, serialized
  std::vector<std::vector<uint8_t>> pixels;     // per frame: the output bytes (overlay drawn)
  std::vector<std::string> messages;            // window, frame and summary messages, in order
  int frames_with_score = 0;                    // frames whose every face has a verdict (not PENDING)
};

RunRecord run_clip(const std::vector<cv::Mat>& frames, const std::vector<std::pair<std::string, std::string>>& props,
                   int slow_ms) {
  std::unique_ptr<ScopedSlowModel> slow;
  if (slow_ms > 0) slow = std::make_unique<ScopedSlowModel>(slow_ms);
  Harness hx(props);
  slow.reset();
  hx.set_caps(GST_VIDEO_FORMAT_BGR, frames[0].size());
  for (size_t i = 0; i < frames.size(); ++i) EXPECT_EQ(hx.push(frames[i], int64_t(i)), GST_FLOW_OK);
  hx.eos();
  RunRecord r;
  EXPECT_EQ(gst_harness_buffers_received(hx.h), guint(frames.size()));
  for (size_t i = 0; i < frames.size(); ++i) {
    GstBuffer* b = gst_harness_pull(hx.h);
    if (!b) break;
    std::string metas;
    bool all = true;
    gpointer state = nullptr;
    while (GstMeta* meta = gst_buffer_iterate_meta_filtered(b, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
      auto* roi = reinterpret_cast<GstVideoRegionOfInterestMeta*>(meta);
      GstStructure* s = gst_video_region_of_interest_meta_get_param(roi, "deepfake");
      gchar* str = s ? gst_structure_to_string(s) : g_strdup("none");
      metas += std::to_string(roi->x) + "," + std::to_string(roi->y) + "," + std::to_string(roi->w) + "," +
               std::to_string(roi->h) + " " + str + "\n";
      g_free(str);
    }
    for (const auto& v : verdicts(b)) all = all && std::string(v.label) != "PENDING";
    if (all && !verdicts(b).empty()) ++r.frames_with_score;
    r.metas.push_back(metas);
    GstMapInfo mi;
    gst_buffer_map(b, &mi, GST_MAP_READ);
    r.pixels.emplace_back(mi.data, mi.data + mi.size);
    gst_buffer_unmap(b, &mi);
    gst_buffer_unref(b);
  }
  Msgs m(hx.messages());
  EXPECT_TRUE(m.errors.empty());
  for (GstMessage* msg : m.all)
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ELEMENT) {
      gchar* str = gst_structure_to_string(gst_message_get_structure(msg));
      r.messages.push_back(str);
      g_free(str);
    }
  return r;
}

}  // namespace

// Offline (sync) results depend on the frames only: the same clip with the
// worker slowed (a slow model registered from outside the element) gives the
// same ROI metas, messages and overlay pixels on every frame, for both heads.
TEST(Element, SyncResultsDoNotDependOnWorkerSpeed) {
  const int n = 36;
  dfd_test::ClipSpec spec;
  const auto frames = dfd_test::clip(spec, n);
  for (const char* head : {"reference", "temporal"}) {
    SCOPED_TRACE(head);
    const std::vector<std::pair<std::string, std::string>> props = {
        {"window-size", "6"}, {"window-stride", "3"}, {"sync", "true"},          {"overlay", "true"},
        {"frame-messages", "true"}, {"head", head},   {"max-queued-windows", "2"}};
    const RunRecord fast = run_clip(frames, props, 0);
    const RunRecord slow = run_clip(frames, props, 250);
    std::printf("%s head: frames with a score: %d of %d (worker at full speed), %d of %d (slowed)\n", head,
                fast.frames_with_score, n, slow.frames_with_score, n);
    EXPECT_EQ(fast.frames_with_score, n);  // every frame is covered by a window
    EXPECT_EQ(slow.frames_with_score, n);
    ASSERT_EQ(fast.metas.size(), size_t(n));
    ASSERT_EQ(slow.metas.size(), size_t(n));
    for (int i = 0; i < n; ++i) {
      EXPECT_EQ(fast.metas[i], slow.metas[i]) << "frame " << i;
      EXPECT_TRUE(fast.pixels[i] == slow.pixels[i]) << "overlay pixels differ on frame " << i;
    }
    EXPECT_EQ(fast.messages, slow.messages);
    EXPECT_GT(fast.messages.size(), size_t(n));  // n frame messages, the windows, the summary
  }
}

// Sync mode holds a frame until its window is classified, but never more than
// max(window-size, window-stride) x interval + track-expiry + detect-interval
// + 1 frames (the one arriving included): with a worker far slower than the
// video the streaming thread waits instead of holding more. The latency it
// reports includes what holding adds.
TEST(Element, HeldFramesAreBounded) {
  const int n = 30, window = 4, expiry = 2;
  const int bound = window * 1 + expiry + 1 + 1;  // interval 1, detect-interval 1
  dfd_test::ClipSpec spec;
  spec.size = {160, 120};
  const auto frames = dfd_test::clip(spec, n);
  auto slow = std::make_unique<ScopedSlowModel>(300);
  Harness hx({{"window-size", std::to_string(window)}, {"sync", "true"}, {"face-detector", "none"},
              {"track-expiry", std::to_string(expiry)}, {"max-queued-windows", "16"}});
  slow.reset();
  hx.set_caps(GST_VIDEO_FORMAT_BGR, spec.size);
  int most_held = 0;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(hx.push(frames[i], i), GST_FLOW_OK);
    const int held = (i + 1) - int(gst_harness_buffers_received(hx.h));
    EXPECT_LE(held, bound - 1) << "after frame " << i;  // the bound, the arriving frame included
    most_held = std::max(most_held, held);
  }
  EXPECT_EQ(most_held, bound - 1);  // reached: the worker is slow
  // Latency: the harness upstream is live with none; holding adds (bound - 1) frames.
  GstQuery* q = gst_query_new_latency();
  GstPad* src = gst_element_get_static_pad(hx.element, "src");
  ASSERT_TRUE(gst_pad_query(src, q));
  gst_object_unref(src);
  GstClockTime min = 0, max = 0;
  gst_query_parse_latency(q, nullptr, &min, &max);
  gst_query_unref(q);
  EXPECT_EQ(min, GstClockTime(bound - 1) * GST_SECOND / 25);
  hx.eos();
  ASSERT_EQ(gst_harness_buffers_received(hx.h), guint(n));
  for (int i = 0; i < n; ++i) {
    GstBuffer* b = gst_harness_pull(hx.h);
    EXPECT_EQ(GST_BUFFER_PTS(b), GstClockTime(i) * GST_SECOND / 25);
    auto v = verdicts(b);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_STRNE(v[0].label, "PENDING") << i;
    gst_buffer_unref(b);
  }
  std::printf("held at most %d frames (bound %d, the arriving one included)\n", most_held, bound);
}

// Caps changes mid-stream (concat of 512x512, 16x16 and 320x320 sources, each
// in its own streaming thread) run to EOS every time: every frame out with its
// verdict, one summary, EOS; repeated, each run bounded (security item 12: a
// hang after the summary, once in three runs).
TEST(Element, ConcatCapsChangesReachEosEveryTime) {
  const int runs = 12, per_source = 6;
  for (int r = 0; r < runs; ++r) {
    SCOPED_TRACE("run " + std::to_string(r));
    const char* detector = r % 2 ? "haar" : "none";
    const std::string desc =
        std::string("concat name=c ! deepfakedetect name=d window-size=4 face-detector=") + detector +
        " model=" + test_model_path() + " ! fakesink name=s signal-handoffs=true sync=false"
        " videotestsrc num-buffers=" + std::to_string(per_source) + " ! video/x-raw,format=BGR,width=512,height=512 ! c."
        " videotestsrc num-buffers=" + std::to_string(per_source) + " ! video/x-raw,format=BGR,width=16,height=16 ! c."
        " videotestsrc num-buffers=" + std::to_string(per_source) + " ! video/x-raw,format=BGR,width=320,height=320 ! c.";
    GError* err = nullptr;
    GstElement* p = gst_parse_launch(desc.c_str(), &err);
    ASSERT_NE(p, nullptr) << (err ? err->message : "");
    GstElement* sink = gst_bin_get_by_name(GST_BIN(p), "s");
    struct Count {
      std::atomic<int> frames{0}, pending{0};
    } count;
    g_signal_connect(sink, "handoff", G_CALLBACK(+[](GstElement*, GstBuffer* b, GstPad*, gpointer data) {
                       auto* c = static_cast<Count*>(data);
                       c->frames++;
                       for (const auto& v : verdicts(b))
                         if (std::string(v.label) == "PENDING") c->pending++;
                     }),
                     &count);
    ASSERT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
    GstBus* bus = gst_element_get_bus(p);
    int summaries = 0;
    GstMessage* end = nullptr;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!end && std::chrono::steady_clock::now() < deadline) {
      GstMessage* m = gst_bus_timed_pop(bus, GST_SECOND);
      if (!m) continue;
      if (dfd_message_has_name(m, DFD_MESSAGE_SUMMARY)) ++summaries;
      if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS || GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
        end = m;
        break;
      }
      gst_message_unref(m);
    }
    ASSERT_NE(end, nullptr) << "no EOS within 60 s (" << summaries << " summaries)";
    EXPECT_EQ(GST_MESSAGE_TYPE(end), GST_MESSAGE_EOS);
    gst_message_unref(end);
    EXPECT_EQ(summaries, 1);
    EXPECT_EQ(count.frames.load(), 3 * per_source);
    if (std::string(detector) == "none") EXPECT_EQ(count.pending.load(), 0);  // sync: every frame its window's verdict
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(bus);
    gst_object_unref(sink);
    gst_object_unref(p);
  }
}

// face-detector=yunet without face-detector-model: the shipped YuNet
// (models/yunet). With the default model (the shipped Meso4_DF, per-crop) the
// first frame with a face carries its score, no PENDING wait, and so does
// every frame the tracker carries the face to between detections
// (detect-interval 5 by default); on the next detection frame, black, the
// face is gone. align=true (eyes level) runs the same way.
TEST(Element, ShippedYuNetAndDefaultModelScoreTheFirstFaceFrame) {
  const cv::Mat face = cv::imread(std::string(std::getenv("DFD_TEST_DATA")) + "/astronaut.png", cv::IMREAD_COLOR);
  ASSERT_FALSE(face.empty());
  const cv::Mat blank(face.size(), CV_8UC3, cv::Scalar::all(0));
  const cv::Rect true_face(175, 70, 100, 110);  // as in tests/faces/test_face_detector.cpp
  for (const char* align : {"false", "true"}) {
    SCOPED_TRACE(std::string("align=") + align);
    Harness hx({{"sync", "true"}, {"face-detector", "yunet"}, {"align", align}}, /*with_model=*/false);
    gboolean al = FALSE;
    gint detect_interval = 0;
    g_object_get(hx.element, "align", &al, "detect-interval", &detect_interval, nullptr);
    EXPECT_EQ(al, std::string(align) == "true");
    ASSERT_EQ(detect_interval, 5);
    hx.set_caps(GST_VIDEO_FORMAT_BGR, face.size());
    for (int i = 0; i < 5; ++i) ASSERT_EQ(hx.push(face, i), GST_FLOW_OK);
    ASSERT_EQ(hx.push(blank, 5), GST_FLOW_OK);  // detection runs here again
    hx.eos();
    for (int i = 0; i < 5; ++i) {
      GstBuffer* b = gst_harness_pull(hx.h);
      ASSERT_NE(b, nullptr);
      const auto v = verdicts(b);
      ASSERT_EQ(v.size(), 1u) << "frame " << i;
      EXPECT_STRNE(v[0].label, "PENDING") << "frame " << i;
      EXPECT_EQ(v[0].window_start, i);
      EXPECT_GE(v[0].frame_fake_probability, 0.0);
      EXPECT_EQ(v[0].track_id, 1u);  // one face, one track
      EXPECT_GT(iou(cv::Rect(v[0].x, v[0].y, v[0].width, v[0].height), true_face), 0.5) << "frame " << i;
      EXPECT_TRUE(v[0].trained);
      gst_buffer_unref(b);
    }
    GstBuffer* b = gst_harness_pull(hx.h);
    ASSERT_NE(b, nullptr);
    EXPECT_TRUE(verdicts(b).empty());  // YuNet finds nothing on a black frame
    gst_buffer_unref(b);
    Msgs m(hx.messages());
    EXPECT_TRUE(m.errors.empty());
    EXPECT_EQ(m.windows.size(), 5u);
  }
}

// face-detector-model naming a file that is not a YuNet network: a
// RESOURCE/NOT_FOUND error naming it, the state change fails.
TEST(Element, BadYuNetModelIsAnError) {
  const std::string bad = std::string(std::getenv("DFD_TEST_DATA")) + "/astronaut.png";
  GstElement* e = gst_element_factory_make("deepfakedetect", nullptr);
  gst_util_set_object_arg(G_OBJECT(e), "face-detector", "yunet");
  g_object_set(e, "face-detector-model", bad.c_str(), nullptr);
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(e, bus);
  EXPECT_EQ(gst_element_set_state(e, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  GstMessage* err = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  ASSERT_NE(err, nullptr);
  GError* ge = nullptr;
  gchar* dbg = nullptr;
  gst_message_parse_error(err, &ge, &dbg);
  EXPECT_TRUE(ge->domain == GST_RESOURCE_ERROR);
  EXPECT_NE(std::string(dbg ? dbg : "").find(bad), std::string::npos) << (dbg ? dbg : "");
  g_error_free(ge);
  g_free(dbg);
  gst_message_unref(err);
  gst_element_set_state(e, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(e);
}
