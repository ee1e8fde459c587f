// The element's library side without GStreamer: StreamAnalyzer (FaceStage +
// WindowStage), SummaryBuilder, the JSON report and the overlay.
#include <atomic>
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <chrono>
#include <set>
#include <thread>

#include "clip.h"
#include "faces/crop.h"
#include "model/family.h"
#include "model/model.h"
#include "report/overlay.h"
#include "report/report.h"
#include "analysis/stream_analyzer.h"

using namespace dfd;

namespace {

std::shared_ptr<const Model> model() {
  static std::shared_ptr<const Model> m = [] {
    const char* p = std::getenv("DFD_GST_TEST_MODEL");
    if (!p) throw std::runtime_error("DFD_GST_TEST_MODEL not set");
    return Model::load_shared(p);
  }();
  return m;
}

AnalyzerConfig whole_frame(int window, int stride) {
  AnalyzerConfig c;
  c.detector.kind = DetectorKind::None;
  c.window_size = window;
  c.window_stride = stride;
  return c;
}

FrameTimes at(int64_t i) {
  FrameTimes t;
  t.index = i;
  t.pts_ns = uint64_t(i) * 40'000'000;
  t.duration_ns = 40'000'000;
  return t;
}

cv::Mat small_frame(int i) {
  dfd_test::ClipSpec s;
  s.size = {160, 120};
  s.side = 120;
  return dfd_test::clip_frame(s, i);
}

std::vector<std::pair<int64_t, int64_t>> spans(const std::vector<WindowJob>& jobs) {
  std::vector<std::pair<int64_t, int64_t>> v;
  for (const auto& j : jobs) v.push_back({j.start_index(), j.end_index()});
  return v;
}

}  // namespace

TEST(FaceStage, WindowsEveryStrideAndALastOneAtFinish) {
  FaceStage st(whole_frame(4, 2));
  std::vector<WindowJob> jobs;
  for (int i = 0; i < 9; ++i) {
    auto out = st.process(small_frame(i), at(i));
    ASSERT_EQ(out.faces.size(), 1u);
    EXPECT_EQ(out.faces[0].track_id, 1u);
    EXPECT_EQ(out.faces[0].box, cv::Rect(0, 0, 160, 120));
    EXPECT_TRUE(out.faces[0].cropped);
    for (auto& j : out.windows) jobs.push_back(std::move(j));
  }
  EXPECT_EQ(spans(jobs), (std::vector<std::pair<int64_t, int64_t>>{{0, 3}, {2, 5}, {4, 7}}));
  auto last = st.finish();
  EXPECT_EQ(spans(last), (std::vector<std::pair<int64_t, int64_t>>{{5, 8}}));
  EXPECT_TRUE(last[0].final);
  for (const auto& j : jobs) {
    EXPECT_FALSE(j.final);
    for (const auto& f : j.frames) EXPECT_EQ(f.crop.size(), cv::Size(kInputSize, kInputSize));
  }
  // After finish (or reset) track ids go on, never repeat.
  auto out = st.process(small_frame(9), at(9));
  ASSERT_EQ(out.faces.size(), 1u);
  EXPECT_EQ(out.faces[0].track_id, 2u);
}

TEST(FaceStage, ShortStreamGivesOneShortWindow) {
  FaceStage st(whole_frame(20, 0));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(st.process(small_frame(i), at(i)).windows.empty());
  auto last = st.finish();
  EXPECT_EQ(spans(last), (std::vector<std::pair<int64_t, int64_t>>{{0, 2}}));
  EXPECT_TRUE(st.finish().empty());  // nothing twice
}

TEST(FaceStage, IntervalCropsEveryNthFrame) {
  AnalyzerConfig c = whole_frame(2, 0);
  c.interval = 3;
  FaceStage st(c);
  std::vector<int64_t> cropped;
  for (int i = 0; i < 9; ++i) {
    auto out = st.process(small_frame(i), at(i));
    EXPECT_EQ(out.analysed, i % 3 == 0);
    ASSERT_EQ(out.faces.size(), 1u);  // boxes on every frame
    if (out.faces[0].cropped) cropped.push_back(i);
  }
  EXPECT_EQ(cropped, (std::vector<int64_t>{0, 3, 6}));
}

TEST(AnalyzerConfig, Validation) {
  AnalyzerConfig c;
  EXPECT_NO_THROW(c.validate());
  c.window_size = 0;
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c = AnalyzerConfig();
  c.threshold = 1.5f;
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c = AnalyzerConfig();
  c.interval = 0;
  EXPECT_THROW(FaceStage{c}, std::invalid_argument);
}

// Overlapping windows share crops: each runs through the backbone once, and
// a dropped window (a full queue) does not disturb the next ones.
TEST(WindowStage, BackboneOncePerCropAndSkippableWindows) {
  FaceStage st(whole_frame(4, 2));
  std::vector<WindowJob> jobs;
  for (int i = 0; i < 10; ++i)
    for (auto& j : st.process(small_frame(i), at(i)).windows) jobs.push_back(std::move(j));
  ASSERT_EQ(jobs.size(), 4u);  // 0-3, 2-5, 4-7, 6-9

  WindowStage all(model(), whole_frame(4, 2));
  int computed = 0;
  std::vector<WindowVerdict> verdicts;
  for (const auto& j : jobs) {
    auto out = all.run({j});
    computed += out.crops_computed;
    verdicts.insert(verdicts.end(), out.windows.begin(), out.windows.end());
  }
  EXPECT_EQ(computed, 10);  // ten frames, ten backbone runs

  // The same windows in one batch, and with window 2 (2-5) dropped.
  WindowStage batch(model(), whole_frame(4, 2));
  auto out = batch.run(jobs);
  EXPECT_EQ(out.crops_computed, 10);
  WindowStage skipping(model(), whole_frame(4, 2));
  auto a = skipping.run({jobs[0]});
  auto b = skipping.run({jobs[2], jobs[3]});
  EXPECT_EQ(a.crops_computed + b.crops_computed, 10);  // frames 4 and 5 are computed for window 4-7 instead
  ASSERT_EQ(out.windows.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(out.windows[i].prob_fake(), verdicts[i].prob_fake(), 1e-5);
  EXPECT_NEAR(b.windows[0].prob_fake(), verdicts[2].prob_fake(), 1e-5);
  EXPECT_NEAR(b.windows[1].prob_fake(), verdicts[3].prob_fake(), 1e-5);
  // Aggregate: the mean of the track's windows so far.
  EXPECT_NEAR(verdicts[3].track_probability,
              (verdicts[0].prob_fake() + verdicts[1].prob_fake() + verdicts[2].prob_fake() + verdicts[3].prob_fake()) / 4,
              1e-6);
  EXPECT_EQ(verdicts[3].track_windows, 4);
}

TEST(StreamAnalyzer, EqualsModelOnTheSameCrops) {
  for (HeadMode head : {HeadMode::Reference, HeadMode::Temporal}) {
    AnalyzerConfig c = whole_frame(5, 0);
    c.head = head;
    c.frame_probabilities = true;
    StreamAnalyzer an(model(), c);
    std::vector<cv::Mat> crops;
    std::vector<WindowVerdict> windows;
    std::vector<FrameVerdict> frames;
    for (int i = 0; i < 5; ++i) {
      const cv::Mat f = small_frame(i);
      crops.push_back(crop_face(f, cv::Rect(0, 0, f.cols, f.rows)));
      auto r = an.process(f);
      windows.insert(windows.end(), r.verdicts.windows.begin(), r.verdicts.windows.end());
      frames.insert(frames.end(), r.verdicts.frames.begin(), r.verdicts.frames.end());
    }
    ASSERT_EQ(windows.size(), 1u);
    ASSERT_EQ(frames.size(), 5u);
    auto feats = model()->features(crops);
    std::vector<const Feature*> w;
    for (const auto& f : feats) w.push_back(&f);
    auto pred = model()->classify_windows({w}, head);
    EXPECT_NEAR(windows[0].prob_fake(), pred[0].prob_fake, 1e-5);
    auto per_frame = model()->classify_frames(w);
    for (int i = 0; i < 5; ++i) EXPECT_NEAR(frames[i].prob_fake, per_frame[i].prob_fake, 1e-5);
    const auto s = an.summary();
    EXPECT_EQ(s.frames, 5u);
    EXPECT_EQ(s.windows_analysed, 1u);
    EXPECT_EQ(s.crops_analysed, 5u);
    ASSERT_EQ(s.tracks.size(), 1u);
    EXPECT_EQ(s.tracks[0].crops, 5);
    EXPECT_NEAR(s.fake_probability, pred[0].prob_fake, 1e-5);
  }
}

TEST(StreamAnalyzer, FindsTheFaceWithHaar) {
  dfd_test::ClipSpec spec;
  AnalyzerConfig c;
  c.window_size = 3;
  StreamAnalyzer an(model(), c);
  for (int i = 0; i < 3; ++i) {
    auto r = an.process(dfd_test::clip_frame(spec, i));
    ASSERT_EQ(r.faces.faces.size(), 1u);
    const cv::Rect b = r.faces.faces[0].box;
    // The portrait (256 px) sits at x 8..24, y 52; its face at about 40% of it.
    EXPECT_GT(b.width, 40);
    EXPECT_LT(b.width, 90);
    EXPECT_GT(b.y, 52);
    EXPECT_LT(b.y + b.height, 52 + 256 / 2);
  }
  EXPECT_EQ(an.summary().windows_analysed, 1u);
}

TEST(SummaryBuilder, VerdictIsTheWorstTrack) {
  SummaryBuilder sb(0.5f);
  EXPECT_EQ(sb.build().verdict, "NO_FACE");
  WindowVerdict a, b;
  a.track_id = 1;
  a.start.index = 0;
  a.end.index = 3;
  a.frames = 4;
  a.frame_indices = {0, 1, 2, 3};
  a.track_probability = 0.2f;
  b = a;
  b.track_id = 2;
  b.track_probability = 0.7f;
  sb.add_window(a);
  sb.add_window(b);
  a.start.index = 2;
  a.end.index = 5;
  a.frame_indices = {2, 3, 4, 5};
  a.track_probability = 0.3f;
  sb.add_window(a);
  sb.add_skipped(2);
  auto s = sb.build();
  EXPECT_EQ(s.verdict, "FAKE");
  EXPECT_FLOAT_EQ(s.fake_probability, 0.7f);
  ASSERT_EQ(s.tracks.size(), 2u);
  EXPECT_EQ(s.tracks[0].crops, 6);  // 0..5, overlap counted once
  EXPECT_EQ(s.tracks[0].windows, 2);
  EXPECT_EQ(s.tracks[0].verdict, "REAL");
  EXPECT_EQ(s.tracks[1].verdict, "FAKE");
  EXPECT_EQ(s.windows_skipped, 2u);
}

TEST(Report, BuildsTheIssueSchemaAndRoundTrips) {
  ReportModel m;
  m.name = "m";
  m.head = "reference";
  ReportBuilder rb("clip.mp4", m, 0.5f);
  FrameVerdict f;
  f.track_id = 3;
  f.times = at(1);
  f.box = cv::Rect(1, 2, 30, 40);
  f.prob_fake = 0.25f;
  rb.add_frame(f);
  f.times = at(0);
  rb.add_frame(f);
  WindowVerdict w;
  w.track_id = 3;
  w.start = at(0);
  w.end = at(1);
  w.frames = 2;
  w.prediction.prob_fake = 0.8f;
  w.track_probability = 0.8f;
  rb.add_window(w);
  Report r = rb.build();
  EXPECT_EQ(r.verdict, "FAKE");
  const auto j = nlohmann::json::parse(r.to_json());
  EXPECT_EQ(j["source"], "clip.mp4");
  EXPECT_EQ(j["model"]["name"], "m");
  EXPECT_EQ(j["tracks"][0]["id"], 3);
  EXPECT_EQ(j["tracks"][0]["frames"][0]["index"], 0);  // sorted
  EXPECT_EQ(j["tracks"][0]["frames"][1]["bbox"], nlohmann::json({1, 2, 30, 40}));
  EXPECT_EQ(j["tracks"][0]["windows"][0]["start_ns"], 0);
  EXPECT_EQ(j["tracks"][0]["windows"][0]["end_ns"], 80'000'000);  // last frame's end
  EXPECT_EQ(j["tracks"][0]["windows"][0]["frames"], 2);
  const Report back = Report::from_json(r.to_json());
  EXPECT_EQ(back.to_json(), r.to_json());
  EXPECT_THROW(Report::from_json("{}"), std::runtime_error);
  // No face at all.
  ReportBuilder empty("x", m, 0.5f);
  EXPECT_EQ(empty.build().verdict, "NO_FACE");
}

TEST(Overlay, DrawsInEachFormatsOwnColours) {
  const int w = 64, h = 48;
  const cv::Rect box(10, 10, 30, 20);
  std::vector<OverlayItem> items{{box, OverlayItem::Kind::Fake, ""}};
  // Packed: red in the frame's own channel order.
  for (auto [fmt, ch, red] : {std::tuple{PixelFormat::BGR, 3, cv::Scalar(0, 0, 255)},
                              std::tuple{PixelFormat::RGB, 3, cv::Scalar(255, 0, 0)},
                              std::tuple{PixelFormat::RGBA, 4, cv::Scalar(255, 0, 0, 255)},
                              std::tuple{PixelFormat::BGRx, 4, cv::Scalar(0, 0, 255, 255)}}) {
    cv::Mat img(h, w, CV_8UC(ch), cv::Scalar::all(0));
    RawFrame f;
    f.format = fmt;
    f.width = w;
    f.height = h;
    f.planes[0] = img.data;
    f.strides[0] = int(img.step);
    draw_overlay(f, items, "");
    for (int c = 0; c < ch; ++c) EXPECT_EQ(img.ptr<uint8_t>(20)[10 * ch + c], uint8_t(red[c])) << int(fmt) << " ch " << c;
    EXPECT_EQ(img.ptr<uint8_t>(20)[25 * ch], 0);  // inside the box: untouched
  }
  // I420: luma and both chroma planes carry the colour (BT.601 red: Y 81, U 90, V 240).
  std::vector<uint8_t> yuv(w * h * 3 / 2, 128);
  RawFrame f;
  f.format = PixelFormat::I420;
  f.width = w;
  f.height = h;
  f.planes[0] = yuv.data();
  f.planes[1] = yuv.data() + w * h;
  f.planes[2] = yuv.data() + w * h + w * h / 4;
  f.strides[0] = w;
  f.strides[1] = f.strides[2] = w / 2;
  draw_overlay(f, items, "");
  EXPECT_NEAR(yuv[20 * w + 10], 81, 2);
  EXPECT_NEAR(f.planes[1][10 * (w / 2) + 5], 90, 2);
  EXPECT_NEAR(f.planes[2][10 * (w / 2) + 5], 240, 2);
  EXPECT_EQ(yuv[20 * w + 25], 128);
}

// Live mode: the detector runs on its own thread. process() hands frames
// over and returns; the boxes arrive on a later frame and keep one track id.
TEST(FaceStage, AsyncDetectionFindsTheFaceOnALaterFrame) {
  dfd_test::ClipSpec spec;
  AnalyzerConfig c;
  c.window_size = 4;
  c.detect_interval = 2;
  FaceStage stage(c);
  stage.set_async_detection(true);
  ASSERT_TRUE(stage.async_detection());
  auto first = stage.process(dfd_test::clip_frame(spec, 0), at(0));
  EXPECT_FALSE(first.detector_ran);  // nothing can be back yet: the frame was only handed over
  EXPECT_TRUE(first.faces.empty());
  std::set<uint64_t> ids;
  int frames_with_face = 0, windows = 0;
  for (int i = 1; i < 40; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(40));  // a 25 fps camera
    auto out = stage.process(dfd_test::clip_frame(spec, i), at(i));
    for (const auto& f : out.faces) ids.insert(f.track_id);
    frames_with_face += out.faces.empty() ? 0 : 1;
    windows += int(out.windows.size());
  }
  EXPECT_GT(frames_with_face, 20);
  EXPECT_EQ(ids.size(), 1u);  // one face, one track, despite late boxes
  EXPECT_GE(windows, 4);
  // Back to inline detection: the next detection frame runs the detector itself.
  stage.set_async_detection(false);
  stage.reset();
  auto inline_out = stage.process(dfd_test::clip_frame(spec, 0), at(0));
  EXPECT_TRUE(inline_out.detector_ran);
  EXPECT_EQ(inline_out.faces.size(), 1u);
}

TEST(FaceStage, AsyncResetDropsResultsOfTheOldSegment) {
  dfd_test::ClipSpec spec;
  AnalyzerConfig c;
  FaceStage stage(c);
  stage.set_async_detection(true);
  stage.process(dfd_test::clip_frame(spec, 0), at(0));  // detection in flight
  stage.reset();                                        // a seek: it belongs to the old segment
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto out = stage.process(dfd_test::clip_frame(spec, 100), at(100));
  EXPECT_FALSE(out.detector_ran);  // the old frame's boxes were discarded, a new detection just started
  EXPECT_TRUE(out.faces.empty());
}

// A registered inference wrapper sees the model calls of every WindowStage
// made after it (not before, not after it is removed); per-crop scores name
// the job that first held the crop.
TEST(WindowStage, InferenceWrapperAndFrameJobs) {
  struct Counting : dfd::Inference {
    std::shared_ptr<const dfd::Inference> inner;
    std::shared_ptr<std::atomic<int>> calls;
    std::vector<dfd::Feature> features(const std::vector<cv::Mat>& c) const override {
      ++*calls;
      return inner->features(c);
    }
    std::vector<dfd::Prediction> classify_frames(const std::vector<const dfd::Feature*>& f) const override {
      ++*calls;
      return inner->classify_frames(f);
    }
    std::vector<dfd::Prediction> classify_windows(const std::vector<std::vector<const dfd::Feature*>>& w,
                                                  dfd::HeadMode m) const override {
      ++*calls;
      return inner->classify_windows(w, m);
    }
  };
  FaceStage st(whole_frame(4, 2));
  std::vector<WindowJob> jobs;
  for (int i = 0; i < 8; ++i)
    for (auto& j : st.process(small_frame(i), at(i)).windows) jobs.push_back(std::move(j));
  ASSERT_EQ(jobs.size(), 3u);  // 0-3, 2-5, 4-7
  auto cfg = whole_frame(4, 2);
  cfg.frame_probabilities = true;
  WindowStage before(model(), cfg);
  auto calls = std::make_shared<std::atomic<int>>(0);
  dfd::set_inference_wrapper([calls](std::shared_ptr<const dfd::Inference> inner) {
    auto c = std::make_shared<Counting>();
    c->inner = std::move(inner);
    c->calls = calls;
    return c;
  });
  WindowStage wrapped(model(), cfg);
  dfd::set_inference_wrapper(nullptr);
  WindowStage after(model(), cfg);
  const auto a = before.run(jobs);
  EXPECT_EQ(calls->load(), 0);
  const auto w = wrapped.run(jobs);
  EXPECT_EQ(calls->load(), 3);  // features, classify_frames, classify_windows
  after.run(jobs);
  EXPECT_EQ(calls->load(), 3);
  ASSERT_EQ(w.frames.size(), 8u);
  for (const auto& f : w.frames) EXPECT_EQ(f.job, f.times.index < 4 ? 0u : f.times.index < 6 ? 1u : 2u) << f.times.index;
  ASSERT_EQ(w.windows.size(), a.windows.size());
  for (size_t i = 0; i < w.windows.size(); ++i) EXPECT_EQ(w.windows[i].prob_fake(), a.windows[i].prob_fake());
}

// --- the model family in the analysis ---------------------------------------

namespace {
std::string mesonet_file(const char* f) {
  const char* d = std::getenv("DFD_MESONET_MODELS");
  return std::string(d ? d : "models/mesonet") + "/" + f;
}
WindowVerdict window_of(uint64_t track, int64_t first, int n, float track_prob) {
  WindowVerdict v;
  v.track_id = track;
  v.start.index = first;
  v.end.index = first + n - 1;
  v.frames = n;
  for (int i = 0; i < n; ++i) v.frame_indices.push_back(first + i);
  v.track_probability = track_prob;
  return v;
}
}  // namespace

// A false detection for two frames (a confident FAKE) does not decide a video
// whose real face was tracked for 30 frames; it is still reported.
TEST(SummaryBuilder, ShortTracksDoNotDecide) {
  SummaryBuilder sb(0.5f, 5);
  for (int64_t i = 0; i < 30; ++i) sb.add_window(window_of(1, i, 1, 0.1f));
  sb.add_window(window_of(2, 10, 1, 0.95f));
  sb.add_window(window_of(2, 11, 1, 0.95f));
  auto s = sb.build();
  EXPECT_EQ(s.verdict, "REAL");
  EXPECT_FLOAT_EQ(s.fake_probability, 0.1f);
  EXPECT_EQ(s.min_track_length, 5);
  ASSERT_EQ(s.tracks.size(), 2u);
  EXPECT_TRUE(s.tracks[0].counted);
  EXPECT_FALSE(s.tracks[1].counted);
  EXPECT_EQ(s.tracks[1].crops, 2);
  EXPECT_EQ(s.tracks[1].verdict, "FAKE");  // its own verdict stays
  // Without the minimum (the old behaviour) the false track decides.
  SummaryBuilder old(0.5f);
  for (int64_t i = 0; i < 30; ++i) old.add_window(window_of(1, i, 1, 0.1f));
  old.add_window(window_of(2, 10, 2, 0.95f));
  EXPECT_EQ(old.build().verdict, "FAKE");
  // Every track short: they are all there is (not NO_FACE).
  SummaryBuilder shorts(0.5f, 5);
  shorts.add_window(window_of(3, 0, 2, 0.8f));
  shorts.add_window(window_of(4, 0, 1, 0.3f));
  auto t = shorts.build();
  EXPECT_EQ(t.verdict, "FAKE");
  EXPECT_FLOAT_EQ(t.fake_probability, 0.8f);
  EXPECT_TRUE(t.tracks[0].counted && t.tracks[1].counted);
}

// FaceStage cuts crops at crop_size with crop_margin.
TEST(FaceStage, CropsAtTheConfiguredSizeAndMargin) {
  AnalyzerConfig c;  // Haar
  c.window_size = 1;
  c.crop_size = 256;
  c.crop_margin = 0.2f;
  FaceStage fs(c);
  dfd_test::ClipSpec spec;
  const cv::Mat f = dfd_test::clip_frame(spec, 0);
  auto out = fs.process(f, at(0));
  ASSERT_EQ(out.windows.size(), 1u);
  const CropFrame& cf = out.windows[0].frames[0];
  EXPECT_EQ(cf.crop.size(), cv::Size(256, 256));
  EXPECT_EQ(cv::norm(cf.crop, crop_face(f, cf.box, 0.2f, 256), cv::NORM_INF), 0.0);
  EXPECT_GT(cv::norm(cf.crop, crop_face(f, cf.box, 0.f, 256), cv::NORM_INF), 0.0);
  c.crop_size = 0;
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c.crop_size = 112;
  c.min_track_length = 0;
  EXPECT_THROW(c.validate(), std::invalid_argument);
}

// StreamAnalyzer runs any Detector: MesoNet, windows of one crop, scores the
// first crop on its own frame, equal to the detector on the same crop.
TEST(StreamAnalyzer, RunsAMesoNetDetector) {
  auto det = load_detector_shared(mesonet_file("Meso4_DF.h5"));
  AnalyzerConfig c = whole_frame(1, 1);
  c.crop_size = det->info().input_size;
  c.crop_margin = det->info().crop_margin;
  StreamAnalyzer a(det, c);
  const cv::Mat f = small_frame(0);
  auto r = a.process(f, at(0));
  ASSERT_EQ(r.verdicts.windows.size(), 1u);
  const float want = det->score_crops({crop_face(f, cv::Rect(0, 0, f.cols, f.rows), 0.2f, 256)})[0];
  EXPECT_NEAR(r.verdicts.windows[0].prob_fake(), want, 1e-6);
  EXPECT_TRUE(r.verdicts.windows[0].member_probabilities.empty());
  EXPECT_EQ(&a.detector(), det.get());
  EXPECT_THROW(a.model(), std::logic_error);  // not a ResNeXt
}

// The old Model constructors still work (through as_detector).
TEST(WindowStage, ModelConstructorWrapsAsDetector) {
  WindowStage ws(model(), whole_frame(2, 2));
  EXPECT_EQ(&ws.model(), model().get());
  EXPECT_TRUE(ws.detector().info().window_head);
  EXPECT_EQ(ws.detector().info().input_size, 112);
}

// An ensemble's prediction is its members' combined; each member's is kept.
TEST(EnsembleDetector, CombinesMembersAndKeepsTheirScores) {
  auto a = load_detector_shared(mesonet_file("Meso4_DF.h5"));
  auto b = load_detector_shared(mesonet_file("MesoInception_DF.h5"));
  std::vector<cv::Mat> crops = {small_frame(0), small_frame(3)};
  const auto pa = a->score_crops(crops), pb = b->score_crops(crops);
  for (EnsembleRule rule : {EnsembleRule::Mean, EnsembleRule::Max}) {
    auto e = std::make_shared<EnsembleDetector>(std::vector<std::shared_ptr<const Detector>>{a, b}, rule);
    EXPECT_EQ(e->info().feature_dim, a->info().feature_dim + b->info().feature_dim);
    EXPECT_EQ(e->source(), a->source() + "," + b->source());
    const auto pe = e->score_crops(crops);
    for (size_t i = 0; i < crops.size(); ++i)
      EXPECT_NEAR(pe[i], rule == EnsembleRule::Max ? std::max(pa[i], pb[i]) : (pa[i] + pb[i]) / 2, 1e-6);
    AnalyzerConfig c = whole_frame(1, 1);
    c.crop_size = 256;
    WindowStage ws(e, c);
    WindowJob job;
    job.track_id = 1;
    CropFrame cf;
    cf.times = at(0);
    cf.crop = crops[0];
    job.frames.push_back(cf);
    auto out = ws.run({job});
    ASSERT_EQ(out.windows.size(), 1u);
    ASSERT_EQ(out.windows[0].member_probabilities.size(), 2u);
    EXPECT_NEAR(out.windows[0].member_probabilities[0], pa[0], 1e-6);
    EXPECT_NEAR(out.windows[0].member_probabilities[1], pb[0], 1e-6);
    EXPECT_NEAR(out.windows[0].prob_fake(), pe[0], 1e-6);
  }
  EXPECT_THROW(EnsembleDetector({}, EnsembleRule::Mean), std::invalid_argument);
}
