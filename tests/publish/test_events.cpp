// src/events/ alone (no GStreamer): the event JSON, the meta follower, the
// bounded queue, and the three publishers against real endpoints: a file, a
// mosquitto broker started here (stopped and restarted mid-stream), and
// librdkafka's mock cluster.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "events/event_json.h"
#include "events/event_queue.h"
#include "events/meta_follower.h"
#include "events/publisher.h"
#include "mosquitto_broker.h"
#include "mqtt_subscriber.h"

using namespace dfd::events;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

FaceObject face(uint64_t id, double p, const std::string& label, int64_t ws, int64_t we, int64_t ago) {
  FaceObject f;
  f.track_id = id;
  f.x = 40;
  f.y = 30;
  f.w = 80;
  f.h = 60;
  f.fake_probability = p;
  f.label = label;
  f.window_start = ws;
  f.window_end = we;
  f.frames_ago = ago;
  f.window_fake_probability = p;
  f.model = "Meso4_DF";
  f.trained = true;
  return f;
}

fs::path temp_dir() {
  char tmpl[] = "/tmp/dfd-events-XXXXXX";
  return mkdtemp(tmpl);
}

std::vector<std::string> lines_of(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string numbered(int i) { return Json{{"seq", i}}.dump(); }

int seq_of(const std::string& s) { return Json::parse(s).at("seq").get<int>(); }

}  // namespace

// ---- event JSON ----

TEST(EventJson, FrameEventHasTheGvaMetaConvertShape) {
  FrameInfo frame{400, 300, "file:///clip.mp4", 2000000000ull};
  const Json e = frame_event(7, frame, {face(3, 0.8, "FAKE", 10, 19, 2)});
  EXPECT_EQ(e["type"], "frame");
  EXPECT_EQ(e["seq"], 7);
  EXPECT_EQ(e["resolution"]["width"], 400);
  EXPECT_EQ(e["resolution"]["height"], 300);
  EXPECT_EQ(e["source"], "file:///clip.mp4");
  EXPECT_EQ(e["timestamp"], 2000000000ull);
  ASSERT_EQ(e["objects"].size(), 1u);
  const Json& o = e["objects"][0];
  EXPECT_DOUBLE_EQ(o["detection"]["bounding_box"]["x_min"].get<double>(), 0.1);
  EXPECT_DOUBLE_EQ(o["detection"]["bounding_box"]["y_min"].get<double>(), 0.1);
  EXPECT_DOUBLE_EQ(o["detection"]["bounding_box"]["x_max"].get<double>(), 0.3);
  EXPECT_DOUBLE_EQ(o["detection"]["bounding_box"]["y_max"].get<double>(), 0.3);
  EXPECT_TRUE(o["detection"]["confidence"].is_null());
  EXPECT_EQ(o["x"], 40);
  EXPECT_EQ(o["y"], 30);
  EXPECT_EQ(o["w"], 80);
  EXPECT_EQ(o["h"], 60);
  EXPECT_EQ(o["id"], 3);
  EXPECT_EQ(o["deepfake"]["label"], "FAKE");
  EXPECT_DOUBLE_EQ(o["deepfake"]["confidence"].get<double>(), 0.8);
  EXPECT_EQ(o["deepfake"]["model"], "Meso4_DF");
  EXPECT_EQ(o["deepfake"]["trained"], true);
  EXPECT_EQ(o["deepfake"]["frames_ago"], 2);
  EXPECT_EQ(o["deepfake"]["window"]["start_frame"], 10);
  EXPECT_EQ(o["deepfake"]["window"]["end_frame"], 19);
}

TEST(EventJson, PendingFaceHasNullConfidenceAndNoWindow) {
  const Json e = frame_event(0, FrameInfo{100, 100, "", std::nullopt}, {face(1, -1, "PENDING", -1, -1, -1)});
  EXPECT_TRUE(e["source"].is_null());
  EXPECT_TRUE(e["timestamp"].is_null());
  const Json& d = e["objects"][0]["deepfake"];
  EXPECT_EQ(d["label"], "PENDING");
  EXPECT_TRUE(d["confidence"].is_null());
  EXPECT_TRUE(d["frames_ago"].is_null());
  EXPECT_TRUE(d["window"].is_null());
}

TEST(EventJson, BoxOutsideTheFrameIsClampedToUnitRange) {
  FaceObject f = face(1, 0.2, "REAL", 0, 0, 0);
  f.x = -10;
  f.w = 200;  // ends at 190 on a 100-wide frame
  const Json b = frame_event(0, FrameInfo{100, 100, "", 0ull}, {f})["objects"][0]["detection"]["bounding_box"];
  EXPECT_EQ(b["x_min"].get<double>(), 0.0);
  EXPECT_EQ(b["x_max"].get<double>(), 1.0);
}

TEST(EventJson, WindowEventFromTheElementCarriesItsExtraFields) {
  WindowVerdict w;
  w.track_id = 5;
  w.start_frame = 0;
  w.end_frame = 9;
  w.fake_probability = 0.7;
  w.track_fake_probability = 0.6;
  w.track_label = "FAKE";
  w.label = "FAKE";
  w.frames = 10;
  w.final = true;
  w.start_pts_ns = 0;
  w.end_pts_ns = 400000000;
  w.origin = "element";
  const Json e = window_event(4, "cam", w);
  EXPECT_EQ(e["type"], "window");
  EXPECT_EQ(e["origin"], "element");
  EXPECT_EQ(e["id"], 5);
  EXPECT_EQ(e["window"]["frames"], 10);
  EXPECT_EQ(e["window"]["final"], true);
  EXPECT_EQ(e["window"]["end_pts"], 400000000);
  EXPECT_DOUBLE_EQ(e["window"]["confidence"].get<double>(), 0.7);
  EXPECT_DOUBLE_EQ(e["deepfake"]["confidence"].get<double>(), 0.6);
  // From metas the element's extra fields are absent, not invented.
  WindowVerdict m;
  const Json me = window_event(0, "", m);
  EXPECT_EQ(me["origin"], "metas");
  EXPECT_FALSE(me["window"].contains("frames"));
  EXPECT_FALSE(me["window"].contains("label"));
}

// ---- meta follower ----

TEST(MetaFollower, ReportsEachWindowOnceWhenItFirstAppears) {
  MetaFollower f;
  FrameInfo fr{100, 100, "", 0ull};
  EXPECT_TRUE(f.on_frame(fr, {face(1, -1, "PENDING", -1, -1, -1)}).empty());
  auto w = f.on_frame(fr, {face(1, 0.3, "REAL", 0, 1, 0)});
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].track_id, 1u);
  EXPECT_EQ(w[0].start_frame, 0);
  EXPECT_EQ(w[0].end_frame, 1);
  EXPECT_DOUBLE_EQ(w[0].fake_probability, 0.3);
  EXPECT_TRUE(f.on_frame(fr, {face(1, 0.3, "REAL", 0, 1, 1)}).empty());  // same window, older
  w = f.on_frame(fr, {face(1, 0.9, "FAKE", 2, 3, 0), face(2, 0.1, "REAL", 3, 3, 0)});
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].end_frame, 3);
  EXPECT_EQ(w[1].track_id, 2u);
}

TEST(MetaFollower, SummaryIsFakeWhenAnyTrackEndsFake) {
  MetaFollower f;
  FrameInfo fr{100, 100, "", 0ull};
  f.on_frame(fr, {face(1, 0.2, "REAL", 0, 0, 0)});
  f.on_frame(fr, {face(1, 0.3, "REAL", 1, 1, 0), face(2, 0.9, "FAKE", 1, 1, 0)});
  f.on_frame(fr, {});
  const StreamSummary s = f.summary();
  EXPECT_EQ(s.verdict, "FAKE");
  EXPECT_DOUBLE_EQ(s.fake_probability, 0.9);
  EXPECT_EQ(s.frames, 3u);
  EXPECT_EQ(s.model, "Meso4_DF");
  ASSERT_EQ(s.tracks.size(), 2u);
  EXPECT_EQ(s.tracks[0].frames, 2);
  EXPECT_EQ(s.tracks[0].windows, 2);
  EXPECT_EQ(s.tracks[0].first_frame, 0);
  EXPECT_EQ(s.tracks[0].last_frame, 1);
  EXPECT_DOUBLE_EQ(s.tracks[0].fake_probability, 0.3);
  EXPECT_EQ(s.tracks[1].verdict, "FAKE");
}

TEST(MetaFollower, SummaryIsRealOrNoFace) {
  MetaFollower real;
  real.on_frame({}, {face(1, 0.2, "REAL", 0, 0, 0)});
  EXPECT_EQ(real.summary().verdict, "REAL");
  EXPECT_DOUBLE_EQ(real.summary().fake_probability, 0.2);
  MetaFollower none;
  none.on_frame({}, {});
  EXPECT_EQ(none.summary().verdict, "NO_FACE");
  EXPECT_TRUE(none.summary().tracks.empty());
  MetaFollower pending;  // a face never classified: no verdict to give
  pending.on_frame({}, {face(1, -1, "PENDING", -1, -1, -1)});
  EXPECT_EQ(pending.summary().verdict, "NO_FACE");
  EXPECT_EQ(pending.summary().tracks.at(0).verdict, "PENDING");
}

// ---- bounded queue ----

TEST(EventQueue, OverflowDropsTheOldestAndCountsExactly) {
  EventQueue q(3);
  for (int i = 0; i < 10; i++) q.push(numbered(i));
  EXPECT_EQ(q.dropped(), 7u);
  EXPECT_EQ(q.size(), 3u);
  auto left = q.take_all();
  ASSERT_EQ(left.size(), 3u);
  EXPECT_EQ(seq_of(left[0]), 7);
  EXPECT_EQ(seq_of(left[2]), 9);
}

TEST(EventQueue, CapacityZeroDropsEverything) {
  EventQueue q(0);
  EXPECT_FALSE(q.push("a"));
  EXPECT_FALSE(q.push("b"));
  EXPECT_EQ(q.dropped(), 2u);
  EXPECT_FALSE(q.pop(0ms).has_value());
}

TEST(EventQueue, PutBackGoesFirstUnlessFull) {
  EventQueue q(2);
  q.push("b");
  q.push_front("a");
  EXPECT_EQ(*q.pop(0ms), "a");
  q.push("c");
  q.push_front("x");  // full: the put-back one is the oldest, dropped
  EXPECT_EQ(q.dropped(), 1u);
  EXPECT_EQ(*q.pop(0ms), "b");
}

TEST(EventQueue, CloseWakesAWaitingPop) {
  EventQueue q(1);
  std::thread t([&] {
    std::this_thread::sleep_for(50ms);
    q.close();
  });
  EXPECT_FALSE(q.pop(std::chrono::milliseconds(60000)).has_value());
  t.join();
}

// ---- addresses ----

TEST(Address, SplitsHostAndPort) {
  EXPECT_EQ(split_address("broker:1884", 1883), std::make_pair(std::string("broker"), 1884));
  EXPECT_EQ(split_address("broker", 1883), std::make_pair(std::string("broker"), 1883));
}

TEST(Address, BadPortsAreRejected) {
  for (const char* bad : {"broker:", "broker:x", "broker:0", "broker:70000", ":1883", "broker:12ab"})
    EXPECT_THROW(split_address(bad, 1883), std::runtime_error) << bad;
}

// ---- file ----

TEST(FilePublisher, JsonLinesOneEventPerLineInOrder) {
  const fs::path dir = temp_dir();
  PublisherConfig c;
  c.file_path = dir / "events.jsonl";
  auto p = make_publisher(c);
  for (int i = 0; i < 50; i++) p->publish(numbered(i));
  p->end_of_stream(10s);
  auto lines = lines_of(c.file_path);
  ASSERT_EQ(lines.size(), 50u);
  for (int i = 0; i < 50; i++) EXPECT_EQ(seq_of(lines[i]), i);
  p->finish(10s);
  EXPECT_EQ(p->stats().published, 50u);
  EXPECT_EQ(p->stats().dropped, 0u);
  fs::remove_all(dir);
}

TEST(FilePublisher, AppendKeepsEarlierEventsAndRefusesAnArray) {
  const fs::path dir = temp_dir();
  PublisherConfig c;
  c.file_path = dir / "events.jsonl";
  c.file_append = true;
  for (int run = 0; run < 2; run++) {  // a pipeline started twice on one file
    auto p = make_publisher(c);
    for (int i = 0; i < 3; i++) p->publish(numbered(run * 3 + i));
    p->finish(10s);
  }
  auto lines = lines_of(c.file_path);
  ASSERT_EQ(lines.size(), 6u);
  for (int i = 0; i < 6; i++) EXPECT_EQ(seq_of(lines[i]), i);
  c.file_append = false;  // the default empties it
  make_publisher(c)->finish(1s);
  EXPECT_TRUE(lines_of(c.file_path).empty());
  c.file_format = FileFormat::Json;
  c.file_append = true;
  EXPECT_THROW(make_publisher(c), std::runtime_error);
  fs::remove_all(dir);
}

TEST(FilePublisher, JsonArrayIsValidAtEndOfStream) {
  const fs::path dir = temp_dir();
  PublisherConfig c;
  c.file_path = dir / "events.json";
  c.file_format = FileFormat::Json;
  auto p = make_publisher(c);
  for (int i = 0; i < 5; i++) p->publish(numbered(i));
  p->end_of_stream(10s);
  std::ifstream in(c.file_path);
  const Json all = Json::parse(in);  // before finish(): valid at EOS already
  ASSERT_TRUE(all.is_array());
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[4]["seq"], 4);
  p->finish(10s);
  std::ifstream again(c.file_path);
  EXPECT_EQ(Json::parse(again).size(), 5u);  // finish() adds nothing after EOS
  fs::remove_all(dir);
}

TEST(FilePublisher, EmptyStreamIsAnEmptyArray) {
  const fs::path dir = temp_dir();
  PublisherConfig c;
  c.file_path = dir / "events.json";
  c.file_format = FileFormat::Json;
  make_publisher(c)->finish(1s);
  std::ifstream in(c.file_path);
  EXPECT_EQ(Json::parse(in), Json::array());
  fs::remove_all(dir);
}

TEST(FilePublisher, UnwritablePathIsAClearError_rejected) {
  PublisherConfig c;
  c.file_path = "/nonexistent-dir/events.jsonl";
  try {
    make_publisher(c);
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/events.jsonl"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos) << e.what();
  }
}

// ---- MQTT against a real broker ----

#define NEED_MOSQUITTO()                                                                \
  if (!dfd_test::have_mosquitto()) GTEST_SKIP() << "no " << dfd_test::kMosquitto         \
                                                << " (Debian package mosquitto)"

TEST(MqttPublisher, DeliversEveryEventValueByValue) {
  NEED_MOSQUITTO();
  dfd_test::MosquittoBroker broker;
  ASSERT_TRUE(broker.start());
  dfd_test::MqttSubscriber sub("127.0.0.1", broker.port(), "dfd/test");
  ASSERT_TRUE(sub.wait_subscribed());
  PublisherConfig c;
  c.method = Method::Mqtt;
  c.address = broker.address();
  c.topic = "dfd/test";
  auto p = make_publisher(c);
  for (int i = 0; i < 100; i++) p->publish(numbered(i));
  ASSERT_TRUE(sub.wait_for([](const auto& m) { return m.size() >= 100; }));
  p->finish(10s);
  const auto got = sub.messages();
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; i++) EXPECT_EQ(got[i], numbered(i));  // in order, unchanged
  EXPECT_EQ(p->stats().published, 100u);
  EXPECT_EQ(p->stats().dropped, 0u);
}

TEST(MqttPublisher, BrokerStoppedAndRestartedMidStream) {
  NEED_MOSQUITTO();
  dfd_test::MosquittoBroker broker;
  ASSERT_TRUE(broker.start());
  auto sub = std::make_unique<dfd_test::MqttSubscriber>("127.0.0.1", broker.port(), "dfd/test");
  ASSERT_TRUE(sub->wait_subscribed());
  std::vector<std::string> warnings;
  std::mutex wmu;
  PublisherConfig c;
  c.method = Method::Mqtt;
  c.address = broker.address();
  c.topic = "dfd/test";
  c.max_reconnect_interval_s = 1;
  c.on_warning = [&](const std::string& s) {
    std::lock_guard<std::mutex> lk(wmu);
    warnings.push_back(s);
  };
  auto p = make_publisher(c);
  for (int i = 0; i < 30; i++) p->publish(numbered(i));
  ASSERT_TRUE(sub->wait_for([](const auto& m) { return m.size() >= 30; }));
  broker.stop();
  // libmosquitto's thread sees the closed connection a little later.
  for (int i = 0; i < 500 && p->stats().connected; i++) std::this_thread::sleep_for(20ms);
  ASSERT_FALSE(p->stats().connected);
  // While it is away publish() returns at once and events are buffered.
  for (int i = 30; i < 60; i++) p->publish(numbered(i));
  EXPECT_EQ(p->stats().dropped, 0u);
  EXPECT_GE(p->stats().buffered, 30u);  // + any sent before the stop and not yet acknowledged
  ASSERT_TRUE(broker.start());  // same port, the subscriber's session restored
  for (int i = 60; i < 90; i++) p->publish(numbered(i));
  std::set<int> seen;
  ASSERT_TRUE(sub->wait_for([&](const auto& m) {
    seen.clear();
    for (const auto& s : m) seen.insert(seq_of(s));
    return seen.size() >= 90;
  })) << "got " << seen.size();
  p->finish(10s);
  EXPECT_EQ(seen.size(), 90u);
  EXPECT_EQ(*seen.begin(), 0);
  EXPECT_EQ(*seen.rbegin(), 89);
  EXPECT_EQ(p->stats().published, 90u);
  EXPECT_EQ(p->stats().dropped, 0u);
  std::lock_guard<std::mutex> lk(wmu);
  ASSERT_FALSE(warnings.empty());
  EXPECT_NE(warnings[0].find("lost the connection"), std::string::npos) << warnings[0];
}

TEST(MqttPublisher, UnreachableBrokerWarnsBuffersAndCountsDropsExactly) {
  NEED_MOSQUITTO();
  std::vector<std::string> warnings;
  std::mutex wmu;
  PublisherConfig c;
  c.method = Method::Mqtt;
  c.address = "127.0.0.1:" + std::to_string(dfd_test::free_port());
  c.max_buffered = 4;
  c.on_warning = [&](const std::string& s) {
    std::lock_guard<std::mutex> lk(wmu);
    warnings.push_back(s);
  };
  auto p = make_publisher(c);
  for (int i = 0; i < 10; i++) p->publish(numbered(i));
  EXPECT_EQ(p->stats().dropped, 6u);
  EXPECT_EQ(p->stats().buffered, 4u);
  EXPECT_EQ(p->stats().published, 0u);
  // The refused connection is seen by libmosquitto's thread: wait for its warning.
  for (int i = 0; i < 500; i++) {
    {
      std::lock_guard<std::mutex> lk(wmu);
      if (!warnings.empty()) break;
    }
    std::this_thread::sleep_for(20ms);
  }
  p->finish(0ms);
  EXPECT_EQ(p->stats().dropped, 10u);  // the 4 buffered were never delivered
  std::lock_guard<std::mutex> lk(wmu);
  ASSERT_FALSE(warnings.empty());
  EXPECT_NE(warnings[0].find("unreachable"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find(c.address), std::string::npos) << warnings[0];
}

TEST(MqttPublisher, CredentialsAreUsedAndABadPasswordIsRefused) {
  NEED_MOSQUITTO();
  dfd_test::MosquittoBroker broker("camera", "s3cret");
  ASSERT_TRUE(broker.start());
  std::vector<std::string> warnings;
  std::mutex wmu;
  PublisherConfig c;
  c.method = Method::Mqtt;
  c.address = broker.address();
  c.username = "camera";
  c.password = "wrong";
  c.on_warning = [&](const std::string& s) {
    std::lock_guard<std::mutex> lk(wmu);
    warnings.push_back(s);
  };
  auto refused = make_publisher(c);
  refused->publish(numbered(0));
  for (int i = 0; i < 500 && refused->stats().published == 0; i++) {
    std::lock_guard<std::mutex> lk(wmu);
    if (!warnings.empty()) break;
    std::this_thread::sleep_for(20ms);
  }
  refused->finish(0ms);
  EXPECT_EQ(refused->stats().published, 0u);
  EXPECT_EQ(refused->stats().dropped, 1u);
  {
    std::lock_guard<std::mutex> lk(wmu);
    ASSERT_FALSE(warnings.empty());
    EXPECT_NE(warnings[0].find("refused the connection"), std::string::npos) << warnings[0];
  }
  c.password = "s3cret";
  auto p = make_publisher(c);
  for (int i = 0; i < 5; i++) p->publish(numbered(i));
  p->finish(10s);  // waits for the acknowledgements
  EXPECT_EQ(p->stats().published, 5u);
  EXPECT_EQ(p->stats().dropped, 0u);
}

TEST(MqttPublisher, TlsFilesThatDoNotExistAreAClearError_rejected) {
  PublisherConfig c;
  c.method = Method::Mqtt;
  c.ca_file = "/nonexistent/ca.pem";
  EXPECT_THROW(make_publisher(c), std::runtime_error);
  PublisherConfig k;
  k.method = Method::Mqtt;
  k.cert_file = "/tmp/cert.pem";  // a client certificate without TLS
  EXPECT_THROW(make_publisher(k), std::runtime_error);
}

// ---- Kafka with librdkafka's mock cluster ----

namespace {

// A mock cluster lives in an rd_kafka_t of its own.
struct MockKafka {
  rd_kafka_t* rk = nullptr;
  rd_kafka_mock_cluster_t* cluster = nullptr;
  MockKafka() {
    char err[256];
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), err, sizeof err);
    cluster = rd_kafka_mock_cluster_new(rk, 1);
    rd_kafka_mock_topic_create(cluster, "dfd-test", 1, 1);
  }
  ~MockKafka() {
    rd_kafka_mock_cluster_destroy(cluster);
    rd_kafka_destroy(rk);
  }
  std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(cluster); }
};

std::vector<std::string> consume(const std::string& bootstraps, size_t want) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[256];
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "group.id", "dfd-test", err, sizeof err);
  rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof err);
  rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  rd_kafka_poll_set_consumer(c);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, "dfd-test", RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(c, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  std::vector<std::string> out;
  for (int i = 0; i < 300 && out.size() < want; i++) {  // at most ~30 s
    rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 100);
    if (!m) continue;
    if (!m->err) out.emplace_back(static_cast<const char*>(m->payload), m->len);
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(c);
  rd_kafka_destroy(c);
  return out;
}

}  // namespace

TEST(KafkaPublisher, DeliversEveryEventToTheMockCluster) {
  MockKafka kafka;
  PublisherConfig c;
  c.method = Method::Kafka;
  c.address = kafka.bootstraps();
  c.topic = "dfd-test";
  auto p = make_publisher(c);
  for (int i = 0; i < 40; i++) p->publish(numbered(i));
  p->finish(20s);
  EXPECT_EQ(p->stats().published, 40u);
  EXPECT_EQ(p->stats().dropped, 0u);
  const auto got = consume(kafka.bootstraps(), 40);
  ASSERT_EQ(got.size(), 40u);
  for (int i = 0; i < 40; i++) EXPECT_EQ(got[i], numbered(i));  // one partition: in order
}

TEST(KafkaPublisher, UnreachableBrokersCountDropsExactly) {
  PublisherConfig c;
  c.method = Method::Kafka;
  c.address = "127.0.0.1:" + std::to_string(dfd_test::free_port());
  c.topic = "dfd-test";
  c.max_buffered = 5;
  auto p = make_publisher(c);
  for (int i = 0; i < 8; i++) p->publish(numbered(i));
  EXPECT_EQ(p->stats().dropped, 3u);  // librdkafka's queue holds 5: the newest 3 refused
  p->finish(0ms);
  EXPECT_EQ(p->stats().dropped, 8u);
  EXPECT_EQ(p->stats().published, 0u);
}

TEST(KafkaPublisher, BadSettingIsAClearError_rejected) {
  PublisherConfig c;
  c.method = Method::Kafka;
  c.key_file = "/nonexistent/key.pem";
  c.ca_file = "/nonexistent/ca.pem";
  EXPECT_THROW(make_publisher(c), std::runtime_error);
}
