// Several deepfakedetect elements in one process sharing one inference
// scheduler (model-instance-id, or the model by default): the counters prove
// that batches mixed both streams' crops, the verdicts equal those of an
// element alone, live elements never block on a slow shared model, and one
// stream's EOS or caps change drains only that stream.
//
// The shipped MesoNet (Meso4_DF.h5) with face-detector=none: every frame is
// one crop and one window (MesoNet windows are single crops), so the counts
// below follow from the frames pushed.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "clip.h"
#include "deepfakedetect-meta.h"
#include "slow_inference.h"

namespace {

std::string meso(const char* file = "Meso4_DF.h5") {
  const char* dir = std::getenv("DFD_MESONET_MODELS");
  return std::string(dir ? dir : "models/mesonet") + "/" + file;
}

class Env : public ::testing::Environment {
 public:
  void SetUp() override { gst_init(nullptr, nullptr); }
};
const auto* const env = ::testing::AddGlobalTestEnvironment(new Env);

const cv::Size kSize{320, 240};

GstBuffer* make_buffer(const cv::Mat& bgr, int64_t index) {
  const size_t size = bgr.total() * bgr.elemSize();
  GstBuffer* buf = gst_buffer_new_allocate(nullptr, size, nullptr);
  gst_buffer_fill(buf, 0, bgr.data, size);  // BGR, 320 px a row: no padding
  GST_BUFFER_PTS(buf) = GstClockTime(index) * GST_SECOND / 25;
  GST_BUFFER_DURATION(buf) = GST_SECOND / 25;
  return buf;
}

std::string caps_for(cv::Size s) {
  return "video/x-raw,format=BGR,width=" + std::to_string(s.width) + ",height=" + std::to_string(s.height) +
         ",framerate=25/1";
}

// One harnessed element with its own bus; frames pulled as they come out.
struct Stream {
  GstElement* element = nullptr;
  GstBus* bus = nullptr;
  GstHarness* h = nullptr;
  cv::Size caps_size = kSize;

  using Props = std::vector<std::pair<std::string, std::string>>;
  explicit Stream(const Props& props) {
    element = gst_element_factory_make("deepfakedetect", nullptr);
    if (!element) throw std::runtime_error("deepfakedetect not found (GST_PLUGIN_PATH?)");
    g_object_set(element, "model", meso().c_str(), nullptr);
    gst_util_set_object_arg(G_OBJECT(element), "face-detector", "none");
    for (const auto& [k, v] : props) gst_util_set_object_arg(G_OBJECT(element), k.c_str(), v.c_str());
    bus = gst_bus_new();
    gst_element_set_bus(element, bus);
    h = gst_harness_new_with_element(element, "sink", "src");
    gst_harness_set_src_caps_str(h, caps_for(kSize).c_str());
  }
  ~Stream() {
    gst_harness_teardown(h);
    gst_object_unref(bus);
    gst_object_unref(element);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Pushes frames [from, to) of the clip at `size` (new caps first when it changes).
  void push(int from, int to, cv::Size size = kSize) {
    if (size != caps_size) {
      gst_harness_set_src_caps_str(h, caps_for(size).c_str());
      caps_size = size;
    }
    dfd_test::ClipSpec spec;
    spec.size = size;
    spec.side = std::min(size.height, 200);
    for (int i = from; i < to; ++i) {
      ASSERT_EQ(gst_harness_push(h, make_buffer(dfd_test::clip_frame(spec, i), i)), GST_FLOW_OK);
    }
  }
  void eos() { ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos())); }
  uint64_t u64(const char* prop) {
    guint64 v = 0;
    g_object_get(element, prop, &v, nullptr);
    return v;
  }
  // scheduler-stats, as a copy the caller frees.
  GstStructure* stats() {
    GstStructure* s = nullptr;
    g_object_get(element, "scheduler-stats", &s, nullptr);
    return s;
  }
};

struct Results {
  std::map<int64_t, double> window_prob;  // by the window's last frame
  int summaries = 0, errors = 0;
  GstStructure* summary_sched = nullptr;  // the summary's "scheduler" field (owned)
  std::string first_error;
  ~Results() {
    if (summary_sched) gst_structure_free(summary_sched);
  }
};

void collect(Stream& s, Results& r) {
  while (GstMessage* m = gst_bus_pop(s.bus)) {
    DfdWindowVerdict w;
    if (dfd_message_parse_window(m, &w)) {
      r.window_prob[w.window_end] = w.fake_probability;
    } else if (dfd_message_has_name(m, DFD_MESSAGE_SUMMARY)) {
      ++r.summaries;
      const GValue* v = gst_structure_get_value(gst_message_get_structure(m), "scheduler");
      if (v && GST_VALUE_HOLDS_STRUCTURE(v)) r.summary_sched = gst_structure_copy(gst_value_get_structure(v));
    } else if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
      ++r.errors;
      GError* e = nullptr;
      gst_message_parse_error(m, &e, nullptr);
      if (r.first_error.empty()) r.first_error = e->message;
      g_error_free(e);
    }
    gst_message_unref(m);
  }
}

uint64_t field_u64(const GstStructure* s, const char* name) {
  guint64 v = 0;
  EXPECT_TRUE(gst_structure_get_uint64(s, name, &v)) << name;
  return v;
}
int field_int(const GstStructure* s, const char* name) {
  gint v = 0;
  EXPECT_TRUE(gst_structure_get_int(s, name, &v)) << name;
  return v;
}
std::string field_str(const GstStructure* s, const char* name) {
  const char* v = gst_structure_get_string(s, name);
  return v ? v : "";
}

}  // namespace

TEST(SharedInference, SameIdSharesOneSchedulerMixesCropsAndScoresAsAlone) {
  const int n = 30;
  Results solo;
  {
    Stream s({{"sync", "true"}, {"model-instance-id", "solo"}});
    s.push(0, n);
    s.eos();
    collect(s, solo);
  }
  ASSERT_EQ(solo.window_prob.size(), size_t(n));

  // A long latency bound: a crop waits for the other stream's, so batches
  // hold one crop of each while both run.
  const std::vector<std::pair<std::string, std::string>> props = {
      {"sync", "true"}, {"model-instance-id", "cams"}, {"batch-size", "8"}, {"max-batch-latency", "2000"}};
  Stream a(props), b(props);
  GstStructure* running = a.stats();
  EXPECT_EQ(field_str(running, "key"), "id:cams");
  EXPECT_EQ(field_int(running, "streams"), 2);
  gst_structure_free(running);
  std::thread ta([&] { a.push(0, n); a.eos(); });
  std::thread tb([&] { b.push(0, n); b.eos(); });
  ta.join();
  tb.join();
  Results ra, rb;
  collect(a, ra);
  collect(b, rb);
  ASSERT_EQ(ra.errors + rb.errors, 0) << ra.first_error << rb.first_error;

  // Same verdicts as alone. MesoNet scores each crop on its own; a batch of
  // another size may only change the order of a kernel's sums (1e-6).
  int bit_equal = 0;
  for (const Results* r : {&ra, &rb}) {
    ASSERT_EQ(r->window_prob.size(), size_t(n));
    for (const auto& [end, p] : solo.window_prob) {
      ASSERT_TRUE(r->window_prob.count(end)) << end;
      EXPECT_NEAR(r->window_prob.at(end), p, 1e-6) << "window ending on frame " << end;
      bit_equal += r->window_prob.at(end) == p;
    }
  }
  std::printf("shared vs alone: %d of %d window probabilities bit-equal, the rest within 1e-6\n", bit_equal, 2 * n);

  // The counters: both streams' crops went through one scheduler, in mixed batches.
  GstStructure* sa = a.stats();
  GstStructure* sb = b.stats();
  EXPECT_EQ(field_u64(sa, "stream-crops"), uint64_t(n));
  EXPECT_EQ(field_u64(sb, "stream-crops"), uint64_t(n));
  EXPECT_EQ(field_u64(sa, "crops"), uint64_t(2 * n));
  EXPECT_GE(field_u64(sa, "mixed-batches"), 1u);
  EXPECT_GE(field_u64(sa, "stream-shared-batches"), 1u);
  EXPECT_GE(field_u64(sb, "stream-shared-batches"), 1u);
  EXPECT_LT(field_u64(sa, "batches"), uint64_t(2 * n));  // fewer model calls than crops
  gdouble mean = 0;
  EXPECT_TRUE(gst_structure_get_double(sa, "mean-batch-size", &mean));
  EXPECT_GT(mean, 1.0);
  std::printf("scheduler: %s\n", gst_structure_to_string(sa));
  gst_structure_free(sa);
  gst_structure_free(sb);
  // The summary message carries them too.
  ASSERT_EQ(ra.summaries, 1);
  ASSERT_NE(ra.summary_sched, nullptr);
  EXPECT_EQ(field_u64(ra.summary_sched, "stream-crops"), uint64_t(n));
  EXPECT_EQ(field_str(ra.summary_sched, "key"), "id:cams");
}

TEST(SharedInference, DefaultSharesByModelAndIdsKeepApart) {
  Stream a(Stream::Props{}), b(Stream::Props{}), c(Stream::Props{{"model-instance-id", "other"}});
  GstStructure* sa = a.stats();
  GstStructure* sb = b.stats();
  GstStructure* sc = c.stats();
  const std::string key = field_str(sa, "key");
  EXPECT_EQ(key.rfind("model:", 0), 0u) << key;
  EXPECT_NE(key.find("Meso4_DF.h5"), std::string::npos) << key;
  EXPECT_EQ(field_str(sb, "key"), key);
  EXPECT_EQ(field_int(sa, "streams"), 2);
  EXPECT_EQ(field_str(sc, "key"), "id:other");
  EXPECT_EQ(field_int(sc, "streams"), 1);
  gst_structure_free(sa);
  gst_structure_free(sb);
  gst_structure_free(sc);
}

TEST(SharedInference, AnotherModelUnderATakenIdIsAnError) {
  Stream a(Stream::Props{{"model-instance-id", "taken"}});
  GstElement* e = gst_element_factory_make("deepfakedetect", nullptr);
  g_object_set(e, "model", meso("Meso4_F2F.h5").c_str(), "model-instance-id", "taken", nullptr);
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(e, bus);
  EXPECT_EQ(gst_element_set_state(e, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  GstMessage* err = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  ASSERT_NE(err, nullptr);
  GError* ge = nullptr;
  gst_message_parse_error(err, &ge, nullptr);
  const std::string text = ge->message;
  EXPECT_NE(text.find("Meso4_DF.h5"), std::string::npos) << text;
  EXPECT_NE(text.find("Meso4_F2F.h5"), std::string::npos) << text;
  g_error_free(ge);
  gst_message_unref(err);
  gst_element_set_state(e, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(e);
  // The first element still works.
  a.push(0, 3);
  a.eos();
  Results r;
  collect(a, r);
  EXPECT_EQ(r.window_prob.size(), 3u);
}

TEST(SharedInference, BadSchedulerSettingsAreRefusedByTheProperties) {
  GstElement* e = gst_element_factory_make("deepfakedetect", nullptr);
  GParamSpec* bs = g_object_class_find_property(G_OBJECT_GET_CLASS(e), "batch-size");
  GParamSpec* lat = g_object_class_find_property(G_OBJECT_GET_CLASS(e), "max-batch-latency");
  ASSERT_NE(bs, nullptr);
  ASSERT_NE(lat, nullptr);
  EXPECT_EQ(G_PARAM_SPEC_INT(bs)->minimum, 1);
  EXPECT_EQ(G_PARAM_SPEC_INT(lat)->minimum, 0);
  GParamSpec* st = g_object_class_find_property(G_OBJECT_GET_CLASS(e), "scheduler-stats");
  ASSERT_NE(st, nullptr);
  EXPECT_FALSE(st->flags & G_PARAM_WRITABLE);
  // Before start: empty key, zero counters.
  GstStructure* s = nullptr;
  g_object_get(e, "scheduler-stats", &s, nullptr);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(field_str(s, "key"), "");
  EXPECT_EQ(field_u64(s, "batches"), 0u);
  gst_structure_free(s);
  gst_object_unref(e);
}

TEST(SharedInference, LiveStreamsNeverBlockOnASlowSharedModel) {
  const int n = 30;
  // 300 ms per head call, on the scheduler's one thread, for both streams.
  auto slow = std::make_unique<ScopedSlowModel>(300);
  const std::vector<std::pair<std::string, std::string>> props = {
      {"sync", "false"}, {"model-instance-id", "live"}, {"max-queued-windows", "2"}};
  Stream a(props), b(props);
  slow.reset();  // the scheduler keeps it
  auto feed = [n](Stream* s) {
    for (int i = 0; i < n; ++i) {
      s->push(i, i + 1);
      GstBuffer* out = gst_harness_pull(s->h);  // out at once: nothing waits for the model
      ASSERT_NE(out, nullptr);
      gst_buffer_unref(out);
    }
  };
  std::thread ta(feed, &a), tb(feed, &b);
  ta.join();
  tb.join();
  // 30 windows each at 300 ms a call would take 9 s or more: most were skipped.
  EXPECT_GT(a.u64("windows-skipped"), 0u);
  EXPECT_GT(b.u64("windows-skipped"), 0u);
  EXPECT_EQ(a.u64("frames-processed"), uint64_t(n));
  EXPECT_EQ(b.u64("frames-processed"), uint64_t(n));
  GstStructure* s = a.stats();
  EXPECT_EQ(field_u64(s, "stream-windows-skipped"), a.u64("windows-skipped"));
  gst_structure_free(s);
  a.eos();
  b.eos();
  Results ra, rb;
  collect(a, ra);
  collect(b, rb);
  EXPECT_EQ(ra.errors + rb.errors, 0);
  EXPECT_EQ(ra.window_prob.size() + a.u64("windows-skipped"), size_t(n));
}

TEST(SharedInference, EosAndCapsChangeDrainOnlyTheirOwnStream) {
  const std::vector<std::pair<std::string, std::string>> props = {{"sync", "true"}, {"model-instance-id", "drain"}};
  Stream a(props), b(props);
  a.push(0, 10);
  b.push(0, 10);
  // A changes resolution (its tracks end and drain), then ends.
  a.push(10, 15, cv::Size(240, 180));
  a.eos();
  Results ra;
  collect(a, ra);
  EXPECT_EQ(ra.summaries, 1);
  EXPECT_EQ(ra.window_prob.size(), 15u);
  // B was not drained: no summary, it goes on and every frame is scored.
  Results rb_mid;
  collect(b, rb_mid);
  EXPECT_EQ(rb_mid.summaries, 0);
  b.push(10, 25);
  b.eos();
  Results rb;
  collect(b, rb);
  EXPECT_EQ(rb.summaries, 1);
  EXPECT_EQ(rb_mid.window_prob.size() + rb.window_prob.size(), 25u);
  GstStructure* s = b.stats();
  EXPECT_EQ(field_u64(s, "stream-crops"), 25u);
  EXPECT_EQ(field_u64(s, "crops"), 40u);
  EXPECT_EQ(field_u64(s, "cancelled"), 0u);
  gst_structure_free(s);
}
