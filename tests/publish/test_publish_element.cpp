// deepfakemetapublish, the element: GstHarness tests on frames carrying the
// ROI metas deepfakedetect attaches (built here with its field names from
// deepfakedetect-meta.h), its custom events, and pipelines for the errors.
// MQTT tests start a real mosquitto broker.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "deepfakedetect-meta.h"
#include "mosquitto_broker.h"
#include "mqtt_subscriber.h"

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

class GstEnv : public ::testing::Environment {
 public:
  void SetUp() override { gst_init(nullptr, nullptr); }
};
const auto* const gst_env = ::testing::AddGlobalTestEnvironment(new GstEnv);

constexpr int kW = 64, kH = 48;
const char* kCaps = "video/x-raw,format=RGB,width=64,height=48,framerate=25/1";

struct Face {
  guint64 track;
  int x, y, w, h;
  double p;  // -1: PENDING
  const char* label;
  gint64 ws, we, ago;
};

GstBuffer* frame(GstClockTime pts, const std::vector<Face>& faces) {
  GstBuffer* buf = gst_buffer_new_allocate(nullptr, kW * kH * 3, nullptr);
  GST_BUFFER_PTS(buf) = pts;
  GST_BUFFER_DURATION(buf) = GST_SECOND / 25;
  for (const Face& f : faces) {
    GstVideoRegionOfInterestMeta* m =
        gst_buffer_add_video_region_of_interest_meta(buf, DFD_ROI_TYPE, f.x, f.y, f.w, f.h);
    m->id = (gint)f.track;
    gst_video_region_of_interest_meta_add_param(
        m, gst_structure_new(DFD_PARAM_NAME, DFD_FIELD_FAKE_PROBABILITY, G_TYPE_DOUBLE, f.p, DFD_FIELD_LABEL,
                             G_TYPE_STRING, f.label, DFD_FIELD_TRACK_ID, G_TYPE_UINT64, f.track,
                             DFD_FIELD_WINDOW_START, G_TYPE_INT64, f.ws, DFD_FIELD_WINDOW_END, G_TYPE_INT64, f.we,
                             DFD_FIELD_FRAMES_AGO, G_TYPE_INT64, f.ago, DFD_FIELD_WINDOW_FAKE_PROBABILITY,
                             G_TYPE_DOUBLE, f.p, DFD_FIELD_MODEL, G_TYPE_STRING, "Meso4_DF", DFD_FIELD_TRAINED,
                             G_TYPE_BOOLEAN, TRUE, nullptr));
  }
  return buf;
}

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/dfd-publish-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::vector<Json> read_lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<Json> out;
  for (std::string l; std::getline(in, l);) out.push_back(Json::parse(l));
  return out;
}

// A harness around a deepfakemetapublish made from `props`, with a bus to
// read its warnings.
struct Publish {
  GstHarness* h;
  GstBus* bus = gst_bus_new();
  GstElement* element;
  explicit Publish(const std::string& props) {
    GError* err = nullptr;
    element = gst_parse_launch(("deepfakemetapublish " + props).c_str(), &err);
    EXPECT_EQ(err, nullptr) << (err ? err->message : "");
    gst_element_set_bus(element, bus);
    h = gst_harness_new_with_element(element, "sink", "src");
    gst_harness_set_src_caps_str(h, kCaps);
  }
  ~Publish() {
    gst_harness_teardown(h);
    gst_object_unref(element);
    gst_object_unref(bus);
  }
  void push(GstBuffer* b) { ASSERT_EQ(gst_harness_push(h, b), GST_FLOW_OK); }
  void eos() { ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_eos())); }
  guint64 counter(const char* name) {
    guint64 v = 0;
    g_object_get(element, name, &v, nullptr);
    return v;
  }
  // First WARNING whose text contains `what` (waits up to 10 s).
  std::string warning(const std::string& what) {
    for (int i = 0; i < 500; i++) {
      while (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING)) {
        GError* e = nullptr;
        gst_message_parse_warning(m, &e, nullptr);
        std::string text = e->message;
        g_error_free(e);
        gst_message_unref(m);
        if (text.find(what) != std::string::npos) return text;
      }
      std::this_thread::sleep_for(20ms);
    }
    return "";
  }
};

// The structure deepfakedetect posts for a window (docs/element.md).
GstStructure* window_structure(guint64 track, double p, const char* label, gint64 ws, gint64 we) {
  GValue bbox = G_VALUE_INIT;
  gst_value_array_init(&bbox, 4);
  for (int v : {4, 5, 20, 24}) {
    GValue i = G_VALUE_INIT;
    g_value_init(&i, G_TYPE_INT);
    g_value_set_int(&i, v);
    gst_value_array_append_and_take_value(&bbox, &i);
  }
  GstStructure* s = gst_structure_new(
      DFD_MESSAGE_WINDOW, DFD_FIELD_TIMESTAMP, G_TYPE_UINT64, (guint64)we * GST_SECOND / 25, DFD_FIELD_TRACK_ID,
      G_TYPE_UINT64, track, DFD_FIELD_FAKE_PROBABILITY, G_TYPE_DOUBLE, p, DFD_FIELD_LABEL, G_TYPE_STRING, label,
      "track-fake-probability", G_TYPE_DOUBLE, p, "track-label", G_TYPE_STRING, label, DFD_FIELD_WINDOW_START,
      G_TYPE_INT64, ws, DFD_FIELD_WINDOW_END, G_TYPE_INT64, we, "window-start-pts", G_TYPE_UINT64,
      (guint64)ws * GST_SECOND / 25, "window-end-pts", G_TYPE_UINT64, (guint64)(we + 1) * GST_SECOND / 25, "frames",
      G_TYPE_INT, (int)(we - ws + 1), "final", G_TYPE_BOOLEAN, FALSE, DFD_FIELD_MODEL, G_TYPE_STRING, "Meso4_DF",
      DFD_FIELD_TRAINED, G_TYPE_BOOLEAN, TRUE, nullptr);
  gst_structure_take_value(s, DFD_FIELD_BBOX, &bbox);
  return s;
}

GstStructure* summary_structure() {
  GstStructure* track = gst_structure_new("track", DFD_FIELD_TRACK_ID, G_TYPE_UINT64, (guint64)1, "verdict",
                                          G_TYPE_STRING, "FAKE", DFD_FIELD_FAKE_PROBABILITY, G_TYPE_DOUBLE, 0.75,
                                          "windows", G_TYPE_INT, 2, "frames", G_TYPE_INT, 4, "first-frame",
                                          G_TYPE_INT64, (gint64)0, "last-frame", G_TYPE_INT64, (gint64)3, nullptr);
  GValue tracks = G_VALUE_INIT, t = G_VALUE_INIT;
  gst_value_array_init(&tracks, 1);
  g_value_init(&t, GST_TYPE_STRUCTURE);
  g_value_take_boxed(&t, track);
  gst_value_array_append_and_take_value(&tracks, &t);
  GstStructure* s = gst_structure_new(DFD_MESSAGE_SUMMARY, "verdict", G_TYPE_STRING, "FAKE",
                                      DFD_FIELD_FAKE_PROBABILITY, G_TYPE_DOUBLE, 0.75, "frames", G_TYPE_UINT64,
                                      (guint64)4, "windows-analysed", G_TYPE_UINT64, (guint64)2, "windows-skipped",
                                      G_TYPE_UINT64, (guint64)0, DFD_FIELD_MODEL, G_TYPE_STRING, "Meso4_DF",
                                      DFD_FIELD_TRAINED, G_TYPE_BOOLEAN, TRUE, nullptr);
  gst_structure_take_value(s, "tracks", &tracks);
  return s;
}

// The four frames most tests push: a face PENDING, then classified twice.
void push_track(Publish& p) {
  p.push(frame(0, {{1, 8, 6, 32, 24, -1, "PENDING", -1, -1, -1}}));
  p.push(frame(40 * GST_MSECOND, {{1, 8, 6, 32, 24, 0.25, "REAL", 0, 1, 0}}));
  p.push(frame(80 * GST_MSECOND, {{1, 8, 6, 32, 24, 0.25, "REAL", 0, 1, 1}}));
  p.push(frame(120 * GST_MSECOND, {{1, 8, 6, 32, 24, 0.75, "FAKE", 2, 3, 0}}));
}

}  // namespace

TEST(PublishElement, JsonLinesCarryFramesWindowsAndSummaryValueByValue) {
  TempDir dir;
  const fs::path out = dir.path / "events.jsonl";
  {
    Publish p("file-path=" + out.string() + " source=cam-1");
    push_track(p);
    p.eos();
    EXPECT_EQ(gst_harness_buffers_received(p.h), 4u);  // video passes through
    GstBuffer* b = gst_harness_pull(p.h);
    EXPECT_NE(gst_buffer_get_video_region_of_interest_meta(b), nullptr);  // metas untouched
    gst_buffer_unref(b);
  }
  const auto ev = read_lines(out);
  ASSERT_EQ(ev.size(), 7u);
  const std::vector<std::string> types = {"frame", "window", "frame", "frame", "window", "frame", "summary"};
  for (size_t i = 0; i < ev.size(); i++) {
    EXPECT_EQ(ev[i]["type"], types[i]) << i;
    EXPECT_EQ(ev[i]["seq"], i);
    EXPECT_EQ(ev[i]["source"], "cam-1");
  }
  EXPECT_EQ(ev[0]["resolution"]["width"], kW);
  EXPECT_EQ(ev[0]["resolution"]["height"], kH);
  EXPECT_EQ(ev[0]["timestamp"], 0);
  EXPECT_EQ(ev[0]["objects"][0]["deepfake"]["label"], "PENDING");
  EXPECT_TRUE(ev[0]["objects"][0]["deepfake"]["confidence"].is_null());
  EXPECT_EQ(ev[0]["objects"][0]["id"], 1);
  EXPECT_DOUBLE_EQ(ev[0]["objects"][0]["detection"]["bounding_box"]["x_max"].get<double>(), 40.0 / kW);
  EXPECT_DOUBLE_EQ(ev[0]["objects"][0]["detection"]["bounding_box"]["y_max"].get<double>(), 30.0 / kH);
  EXPECT_EQ(ev[1]["origin"], "metas");
  EXPECT_EQ(ev[1]["window"]["end_frame"], 1);
  EXPECT_EQ(ev[1]["timestamp"], 40 * GST_MSECOND);
  EXPECT_EQ(ev[3]["timestamp"], 80 * GST_MSECOND);
  EXPECT_EQ(ev[3]["objects"][0]["deepfake"]["frames_ago"], 1);
  EXPECT_DOUBLE_EQ(ev[4]["window"]["confidence"].get<double>(), 0.75);
  EXPECT_EQ(ev[4]["deepfake"]["label"], "FAKE");
  EXPECT_EQ(ev[5]["objects"][0]["deepfake"]["model"], "Meso4_DF");
  EXPECT_EQ(ev[5]["objects"][0]["deepfake"]["trained"], true);
  const Json& s = ev[6];
  EXPECT_EQ(s["origin"], "metas");
  EXPECT_EQ(s["verdict"], "FAKE");
  EXPECT_DOUBLE_EQ(s["confidence"].get<double>(), 0.75);
  EXPECT_EQ(s["frames"], 4);
  ASSERT_EQ(s["tracks"].size(), 1u);
  EXPECT_EQ(s["tracks"][0]["windows"], 2);
  EXPECT_EQ(s["tracks"][0]["frames"], 4);
}

TEST(PublishElement, FramesWithoutFacesOnlyWithAddEmptyResults) {
  TempDir dir;
  for (bool empty : {false, true}) {
    const fs::path out = dir.path / (empty ? "with.jsonl" : "without.jsonl");
    {
      Publish p("file-path=" + out.string() + (empty ? " add-empty-results=true" : ""));
      for (int i = 0; i < 3; i++) p.push(frame(i * 40 * GST_MSECOND, {}));
      p.eos();
    }
    const auto ev = read_lines(out);
    ASSERT_EQ(ev.size(), empty ? 4u : 1u);
    EXPECT_EQ(ev.back()["type"], "summary");
    EXPECT_EQ(ev.back()["verdict"], "NO_FACE");
    if (empty) EXPECT_TRUE(ev[0]["objects"].empty());
  }
}

TEST(PublishElement, JsonArrayIsValidAtEos) {
  TempDir dir;
  const fs::path out = dir.path / "events.json";
  Publish p("file-path=" + out.string() + " file-format=json");
  push_track(p);
  p.eos();
  std::ifstream in(out);  // read while the element is still PLAYING
  const Json all = Json::parse(in);
  ASSERT_TRUE(all.is_array());
  ASSERT_EQ(all.size(), 7u);
  EXPECT_EQ(all[6]["type"], "summary");
}

TEST(PublishElement, ElementVerdictEventsReplaceTheOnesFromMetas) {
  TempDir dir;
  const fs::path out = dir.path / "events.jsonl";
  {
    Publish p("file-path=" + out.string());
    p.push(frame(0, {{1, 8, 6, 32, 24, -1, "PENDING", -1, -1, -1}}));
    gst_harness_push_event(p.h, gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM, window_structure(1, 0.25, "REAL", 0, 1)));
    p.push(frame(40 * GST_MSECOND, {{1, 8, 6, 32, 24, 0.25, "REAL", 0, 1, 0}}));
    gst_harness_push_event(p.h, gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM, window_structure(1, 0.75, "FAKE", 2, 3)));
    p.push(frame(120 * GST_MSECOND, {{1, 8, 6, 32, 24, 0.75, "FAKE", 2, 3, 0}}));
    gst_harness_push_event(p.h, gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM, summary_structure()));
    p.eos();
  }
  const auto ev = read_lines(out);
  std::vector<Json> windows, summaries;
  for (const auto& e : ev) {
    if (e["type"] == "window") windows.push_back(e);
    if (e["type"] == "summary") summaries.push_back(e);
  }
  ASSERT_EQ(windows.size(), 2u);  // not four: the metas' copies are not sent
  EXPECT_EQ(windows[0]["origin"], "element");
  EXPECT_EQ(windows[0]["window"]["frames"], 2);
  EXPECT_EQ(windows[0]["window"]["label"], "REAL");
  EXPECT_EQ(windows[0]["window"]["end_pts"], 2 * GST_SECOND / 25);
  EXPECT_EQ(windows[1]["deepfake"]["label"], "FAKE");
  ASSERT_EQ(summaries.size(), 1u);  // not a second one from metas at EOS
  EXPECT_EQ(summaries[0]["origin"], "element");
  EXPECT_EQ(summaries[0]["windows_analysed"], 2);
  EXPECT_EQ(summaries[0]["tracks"][0]["last_frame"], 3);
  EXPECT_EQ(ev.back()["type"], "summary");
}

// ---- errors ----

namespace {

// Runs a launch line to its first ERROR or EOS (at most 30 s); returns the
// error's text ("" at EOS).
std::string run_to_error(const std::string& line) {
  GError* err = nullptr;
  GstElement* pipe = gst_parse_launch(line.c_str(), &err);
  EXPECT_EQ(err, nullptr) << err->message;
  gst_element_set_state(pipe, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(pipe);
  GstMessage* m = gst_bus_timed_pop_filtered(bus, 30 * GST_SECOND, (GstMessageType)(GST_MESSAGE_ERROR | GST_MESSAGE_EOS));
  std::string text = "(no message)";
  if (m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
    GError* e = nullptr;
    gst_message_parse_error(m, &e, nullptr);
    text = e->message;
    g_error_free(e);
  } else if (m) {
    text = "";
  }
  if (m) gst_message_unref(m);
  gst_element_set_state(pipe, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(pipe);
  return text;
}

}  // namespace

TEST(PublishElement, BadFilePathIsAnElementError_rejected) {
  const std::string e = run_to_error(
      "videotestsrc num-buffers=2 ! deepfakemetapublish file-path=/nonexistent-dir/events.jsonl ! fakesink");
  EXPECT_NE(e.find("Could not open the events file"), std::string::npos) << e;
  EXPECT_NE(e.find("/nonexistent-dir/events.jsonl"), std::string::npos) << e;
}

TEST(PublishElement, BadMethodIsRefused_rejected) {
  GError* err = nullptr;
  GstElement* pipe = gst_parse_launch("videotestsrc ! deepfakemetapublish method=pigeon ! fakesink", &err);
  ASSERT_NE(err, nullptr);
  EXPECT_NE(std::string(err->message).find("method"), std::string::npos) << err->message;
  g_error_free(err);
  if (pipe) gst_object_unref(pipe);
}

TEST(PublishElement, BadAddressIsAnElementError_rejected) {
  const std::string e =
      run_to_error("videotestsrc num-buffers=2 ! deepfakemetapublish method=mqtt address=localhost:port ! fakesink");
  EXPECT_NE(e.find("Could not set up the event publisher"), std::string::npos) << e;
  EXPECT_NE(e.find("localhost:port"), std::string::npos) << e;
}

// ---- MQTT ----

#define NEED_MOSQUITTO()                                                                \
  if (!dfd_test::have_mosquitto()) GTEST_SKIP() << "no " << dfd_test::kMosquitto         \
                                                << " (Debian package mosquitto)"

TEST(PublishElement, UnreachableBrokerWarnsVideoFlowsDropsCountedExactly) {
  NEED_MOSQUITTO();
  const std::string address = "127.0.0.1:" + std::to_string(dfd_test::free_port());
  {
    Publish p("method=mqtt address=" + address + " max-buffered=10 flush-timeout=0");
    EXPECT_NE(p.warning("unreachable"), "");
    for (int i = 0; i < 50; i++) p.push(frame(i * 40 * GST_MSECOND, {{1, 8, 6, 32, 24, 0.5, "REAL", i, i, 0}}));
    p.eos();
    // Every frame went on; 50 frames + 50 windows + the summary = 101 events, 10 kept.
    EXPECT_EQ(gst_harness_buffers_received(p.h), 50u);
    EXPECT_EQ(p.counter("dropped"), 91u);
    EXPECT_EQ(p.counter("published"), 0u);
    gst_element_set_state(p.element, GST_STATE_NULL);
    EXPECT_EQ(p.counter("dropped"), 101u);  // the 10 never delivered
  }
}

TEST(PublishElement, BrokerRestartedMidStreamEveryEventArrives) {
  NEED_MOSQUITTO();
  dfd_test::MosquittoBroker broker;
  ASSERT_TRUE(broker.start());
  dfd_test::MqttSubscriber sub("127.0.0.1", broker.port(), "cameras/door");
  ASSERT_TRUE(sub.wait_subscribed());
  Publish p("method=mqtt address=" + broker.address() + " topic=cameras/door max-reconnect-interval=1");
  int n = 0;
  auto push = [&](int count) {
    for (int i = 0; i < count; i++, n++)
      p.push(frame(n * 40 * GST_MSECOND, {{1, 8, 6, 32, 24, -1, "PENDING", -1, -1, -1}}));
  };
  push(20);
  ASSERT_TRUE(sub.wait_for([](const auto& m) { return m.size() >= 20; }));
  broker.stop();
  push(20);  // the broker is down: frames still go through at once
  EXPECT_EQ(gst_harness_buffers_received(p.h), 40u);
  ASSERT_TRUE(broker.start());
  push(20);
  p.eos();  // + the summary: 61 events
  std::set<int> seqs;
  ASSERT_TRUE(sub.wait_for([&](const auto& m) {
    seqs.clear();
    for (const auto& s : m) seqs.insert(Json::parse(s)["seq"].template get<int>());
    return seqs.size() >= 61;
  })) << seqs.size();
  EXPECT_EQ(*seqs.rbegin(), 60);
  const auto got = sub.messages();
  EXPECT_EQ(Json::parse(got.back())["type"], "summary");
  gst_element_set_state(p.element, GST_STATE_NULL);
  EXPECT_EQ(p.counter("published"), 61u);
  EXPECT_EQ(p.counter("dropped"), 0u);
}


// ---- Kafka: the element against librdkafka's mock cluster ----

TEST(PublishElement, KafkaEventsReachTheMockCluster) {
  char err[256];
  rd_kafka_t* owner = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), err, sizeof err);
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(owner, 1);
  rd_kafka_mock_topic_create(cluster, "deepfake", 1, 1);
  const std::string bootstraps = rd_kafka_mock_cluster_bootstraps(cluster);
  {
    Publish p("method=kafka topic=deepfake address=" + bootstraps);
    push_track(p);
    p.eos();
    gst_element_set_state(p.element, GST_STATE_NULL);  // flushes
    EXPECT_EQ(p.counter("published"), 7u);
    EXPECT_EQ(p.counter("dropped"), 0u);
  }
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "group.id", "dfd-element-test", err, sizeof err);
  rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof err);
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  rd_kafka_poll_set_consumer(consumer);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, "deepfake", RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(consumer, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  std::vector<Json> got;
  for (int i = 0; i < 300 && got.size() < 7; i++) {  // at most ~30 s
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
    if (!m) continue;
    if (!m->err) got.push_back(Json::parse(std::string(static_cast<const char*>(m->payload), m->len)));
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(owner);
  ASSERT_EQ(got.size(), 7u);
  for (size_t i = 0; i < got.size(); i++) EXPECT_EQ(got[i]["seq"], i);
  EXPECT_EQ(got[4]["type"], "window");
  EXPECT_DOUBLE_EQ(got[4]["window"]["confidence"].get<double>(), 0.75);
  EXPECT_EQ(got[6]["verdict"], "FAKE");
}
