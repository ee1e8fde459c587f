// Faults around the element: a source that stops delivering without an error
// (a stalled camera or a network file that hangs). The defined outcome:
// nothing errors while the source is silent, the element's threads do not
// spin, the pipeline stops promptly when asked, and no frame is lost. A live
// source's frames go straight through (async mode); a non-live source's
// frames may stay held (sync mode, at most the element's hold bound) until
// the next frame or the end of the stream, which releases them all, scored.
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "deepfakedetect-meta.h"

namespace {

std::string data_dir() {
  const char* d = std::getenv("DFD_TEST_DATA");
  return d ? d : "tests/data";
}

std::string default_model() {  // the shipped default (a per-crop MesoNet)
  const char* d = std::getenv("DFD_MESONET_MODELS");
  return std::string(d ? d : "models/mesonet") + "/Meso4_DF.h5";
}

GstBuffer* face_frame(const cv::Mat& bgr, int index) {
  GstBuffer* buf = gst_buffer_new_memdup(bgr.data, bgr.total() * bgr.elemSize());
  GST_BUFFER_PTS(buf) = GST_BUFFER_DTS(buf) = guint64(index) * GST_SECOND / 25;
  GST_BUFFER_DURATION(buf) = GST_SECOND / 25;
  return buf;
}

struct Sink {
  std::atomic<int> frames{0}, scored{0};
};

// appsrc (live or not) -> deepfakedetect -> fakesink; `pushed` frames of the
// portrait, then silence: no EOS, no error.
class StalledSource {
 public:
  StalledSource(bool live, int pushed) {
    const std::string desc = std::string("appsrc name=src format=time is-live=") + (live ? "true" : "false") +
                             " ! deepfakedetect name=d model=" + default_model() +
                             " ! fakesink name=s sync=false signal-handoffs=true";
    GError* err = nullptr;
    pipeline_ = gst_parse_launch(desc.c_str(), &err);
    if (!pipeline_) throw std::runtime_error(err ? err->message : "parse failed");
    cv::Mat img = cv::imread(data_dir() + "/astronaut.png", cv::IMREAD_COLOR);
    if (img.empty()) throw std::runtime_error("no astronaut.png in " + data_dir());
    cv::resize(img, img, cv::Size(256, 256), 0, 0, cv::INTER_AREA);
    GstElement* src = gst_bin_get_by_name(GST_BIN(pipeline_), "src");
    GstCaps* caps = gst_caps_from_string("video/x-raw,format=BGR,width=256,height=256,framerate=25/1");
    gst_app_src_set_caps(GST_APP_SRC(src), caps);
    gst_caps_unref(caps);
    GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline_), "s");
    g_signal_connect(sink, "handoff", G_CALLBACK(+[](GstElement*, GstBuffer* b, GstPad*, gpointer data) {
                       auto* s = static_cast<Sink*>(data);
                       s->frames++;
                       DfdFaceVerdict v[8];
                       const guint n = dfd_buffer_get_verdicts(b, v, 8);
                       for (guint i = 0; i < n && i < 8; ++i)
                         if (v[i].fake_probability >= 0) s->scored++;
                     }),
                     &sink_);
    gst_object_unref(sink);
    gst_element_set_state(pipeline_, GST_STATE_PLAYING);
    for (int i = 0; i < pushed; ++i) gst_app_src_push_buffer(GST_APP_SRC(src), face_frame(img, i));
    gst_object_unref(src);
  }
  ~StalledSource() {
    if (pipeline_) {
      gst_element_set_state(pipeline_, GST_STATE_NULL);
      gst_object_unref(pipeline_);
    }
  }
  // Waits (bounded) until `n` frames reached the sink.
  bool wait_frames(int n, int seconds) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (sink_.frames.load() < n && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return sink_.frames.load() >= n;
  }
  // An error or EOS on the bus within `ms` (there must be none while stalled).
  GstMessage* bus_end(int ms) {
    GstBus* bus = gst_element_get_bus(pipeline_);
    GstMessage* m = gst_bus_timed_pop_filtered(bus, GstClockTime(ms) * GST_MSECOND,
                                               GstMessageType(GST_MESSAGE_ERROR | GST_MESSAGE_EOS));
    gst_object_unref(bus);
    return m;
  }
  guint64 frames_processed() {
    GstElement* d = gst_bin_get_by_name(GST_BIN(pipeline_), "d");
    guint64 n = 0;
    g_object_get(d, "frames-processed", &n, nullptr);
    gst_object_unref(d);
    return n;
  }
  void end_of_stream() {
    GstElement* src = gst_bin_get_by_name(GST_BIN(pipeline_), "src");
    gst_app_src_end_of_stream(GST_APP_SRC(src));
    gst_object_unref(src);
  }
  // Stops the pipeline on another thread; false if it did not stop within `seconds`.
  bool stops_within(int seconds) {
    GstElement* p = std::exchange(pipeline_, nullptr);
    auto done = std::async(std::launch::async, [p] {
      gst_element_set_state(p, GST_STATE_NULL);
      gst_object_unref(p);
    });
    return done.wait_for(std::chrono::seconds(seconds)) == std::future_status::ready;
  }
  Sink sink_;

 private:
  GstElement* pipeline_ = nullptr;
};

// CPU time this process used, in seconds.
double cpu_seconds() {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

// `pushed` frames, then a silent source: no error or EOS and an idle CPU
// while it lasts. Then either the stream ends (every frame out, scored) or
// the pipeline is stopped while still stalled (it stops promptly).
void check_stall(bool live, bool then_eos) {
  const int pushed = 6;
  StalledSource run(live, pushed);
  if (live)  // async mode: frames do not wait for their verdicts
    ASSERT_TRUE(run.wait_frames(pushed, 120)) << "only " << run.sink_.frames.load() << " of " << pushed
                                              << " live frames came out before the source went silent";
  // Every frame has reached the element (the last one's analysis may still run).
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (run.frames_processed() < guint64(pushed) && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(run.frames_processed(), guint64(pushed));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // its analysis done
  // The source is silent now: no error, no EOS, and the element does not
  // burn the CPU waiting (a busy-waiting thread would use ~1 s per second).
  const double cpu0 = cpu_seconds();
  GstMessage* m = run.bus_end(1500);
  const double idle_cpu = cpu_seconds() - cpu0;
  EXPECT_EQ(m, nullptr) << "the element ended or failed while the source was merely silent";
  if (m) gst_message_unref(m);
  EXPECT_LT(idle_cpu, 0.5) << "threads kept the CPU busy while no frame arrived";
  if (then_eos) {
    run.end_of_stream();
    GstMessage* end = run.bus_end(120000);
    ASSERT_NE(end, nullptr) << "no EOS after the stalled source ended";
    EXPECT_EQ(GST_MESSAGE_TYPE(end), GST_MESSAGE_EOS);
    gst_message_unref(end);
    EXPECT_EQ(run.sink_.frames.load(), pushed) << "frames lost across the stall";
    if (!live) EXPECT_EQ(run.sink_.scored.load(), pushed) << "sync mode: every frame carries its face's score";
  }
  EXPECT_TRUE(run.stops_within(30)) << "the pipeline did not stop after its source stalled";
}

TEST(Faults, StalledLiveSourceThenEos) { check_stall(true, true); }
TEST(Faults, StalledFileSourceThenEos) { check_stall(false, true); }
TEST(Faults, StalledLiveSourceStopsWhileSilent) { check_stall(true, false); }
TEST(Faults, StalledFileSourceStopsWhileSilent) { check_stall(false, false); }

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
