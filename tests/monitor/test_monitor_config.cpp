// src/monitor/ alone: the strict config parser, the backoff policy and the
// figures' JSON and Prometheus text, the latency tracker.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "monitor/backoff.h"
#include "monitor/frame_latency.h"
#include "monitor/monitor_config.h"
#include "monitor/source_figures.h"

using namespace dfd::monitor;

namespace {

std::string error_of(const std::string& text) {
  try {
    parse_monitor_config(text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(accepted)";
}

std::string body_error_of(const std::string& text) {
  try {
    parse_source_json(text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(accepted)";
}

}  // namespace

TEST(MonitorConfig, FullExample) {
  const MonitorConfig c = parse_monitor_config(R"({
    "listen": {"bind": "0.0.0.0", "port": 9000},
    "reconnect": {"initial_s": 0.5, "max_s": 60, "stall_timeout_s": 0},
    "defaults": {"detect": {"num-threads": 1, "threshold": 0.6, "align": true},
                 "publish": {"method": "mqtt", "address": "broker:1883", "topic": "cams"}},
    "sources": [
      {"id": "door", "uri": "rtsp://cam1.local:554/stream", "detect": {"threshold": 0.7}},
      {"id": "lobby.2", "uri": "file:///srv/clips/a.mp4", "restart": "never",
       "publish": {"topic": "lobby"}}
    ]})");
  EXPECT_EQ(c.bind, "0.0.0.0");
  EXPECT_EQ(c.port, 9000);
  EXPECT_DOUBLE_EQ(c.reconnect.initial_s, 0.5);
  EXPECT_DOUBLE_EQ(c.reconnect.max_s, 60);
  EXPECT_DOUBLE_EQ(c.reconnect.stall_timeout_s, 0);
  ASSERT_EQ(c.sources.size(), 2u);
  EXPECT_EQ(c.sources[0].id, "door");
  EXPECT_EQ(c.sources[0].detect.at("threshold"), "0.7");   // its own over the default
  EXPECT_EQ(c.sources[0].detect.at("num-threads"), "1");   // the default
  EXPECT_EQ(c.sources[0].detect.at("align"), "true");
  EXPECT_EQ(c.sources[0].publish.at("topic"), "cams");
  EXPECT_EQ(c.sources[0].restart, RestartPolicy::Always);
  EXPECT_EQ(c.sources[1].publish.at("topic"), "lobby");
  EXPECT_EQ(c.sources[1].publish.at("address"), "broker:1883");
  EXPECT_EQ(c.sources[1].restart, RestartPolicy::Never);
}

// pipelines/monitor-example.json, the one docs/monitor.md shows, parses.
TEST(MonitorConfig, ShippedExample) {
  const char* path = std::getenv("DFD_MONITOR_EXAMPLE");
  if (!path) GTEST_SKIP() << "DFD_MONITOR_EXAMPLE not set";
  std::ifstream f(path);
  ASSERT_TRUE(f) << path;
  std::stringstream text;
  text << f.rdbuf();
  const MonitorConfig c = parse_monitor_config(text.str());
  ASSERT_EQ(c.sources.size(), 3u);
  EXPECT_EQ(c.sources[2].restart, RestartPolicy::Never);
  EXPECT_EQ(c.sources[2].publish.at("method"), "file");
  EXPECT_EQ(c.sources[0].publish.at("method"), "mqtt");
  EXPECT_EQ(c.sources[1].detect.at("interval"), "2");
}

TEST(MonitorConfig, DefaultsWhenEmpty) {
  const MonitorConfig c = parse_monitor_config("{}");
  EXPECT_EQ(c.bind, "127.0.0.1");
  EXPECT_EQ(c.port, 8090);
  EXPECT_DOUBLE_EQ(c.reconnect.initial_s, 1);
  EXPECT_DOUBLE_EQ(c.reconnect.max_s, 30);
  EXPECT_TRUE(c.sources.empty());
}

TEST(MonitorConfig, ErrorsNameTheField) {
  EXPECT_NE(error_of("").find("config: not JSON"), std::string::npos);
  EXPECT_NE(error_of(R"({"listen": {"port": 1, "port": 2}})").find("config: the key 'port' appears twice"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"sources": [{"id": "a", "uri": "rtsp://h/x"}], "sources": []})").find("'sources' appears twice"),
            std::string::npos);
  EXPECT_NO_THROW(parse_monitor_config(R"({"sources": [{"id": "a", "uri": "rtsp://h/x"}, {"id": "b", "uri": "rtsp://h/y"}]})"));
  EXPECT_NE(error_of("[1]").find("config: expected an object, got array"), std::string::npos);
  EXPECT_NE(error_of(R"({"sorces": []})").find("sorces: unknown key"), std::string::npos);
  EXPECT_NE(error_of(R"({"listen": {"port": -1}})").find("listen.port: must be 0 to 65535"), std::string::npos);
  EXPECT_NE(error_of(R"({"listen": {"port": 1.5}})").find("listen.port: expected an integer, got number"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"listen": {"bind": 1}})").find("listen.bind: expected a string"), std::string::npos);
  EXPECT_NE(error_of(R"({"reconnect": {"max_s": "10"}})").find("reconnect.max_s: expected a number"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"reconnect": {"initial_s": 0}})").find("reconnect.initial_s: must be between"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"reconnect": {"initial_s": 10, "max_s": 5}})").find("reconnect.max_s: is less than"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"defaults": {"detect": {"window-size": 2.5}}})")
                .find("defaults.detect.window-size: expected an integer, got number"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"defaults": {"detect": {"post-messages": false}}})")
                .find("defaults.detect.post-messages: unknown key"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"defaults": {"publish": {"topic": 3}}})").find("defaults.publish.topic: expected a string"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"defaults": {"detectt": {}}})").find("defaults.detectt: unknown key"), std::string::npos);
  EXPECT_NE(error_of(R"({"sources": [1]})").find("sources[0]: expected an object, got number"), std::string::npos);
  EXPECT_NE(error_of(R"({"sources": [{"uri": "rtsp://h/x"}]})").find("sources[0].id: missing"), std::string::npos);
  EXPECT_NE(error_of(R"({"sources": [{"id": "a", "uri": "rtsp://h/x"}, {"id": "a", "uri": "rtsp://h/y"}]})")
                .find("sources[1].id: duplicate id 'a'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"sources": [{"id": "a", "uri": "rtsp://h/x", "detect": {"threshold": true}}]})")
                .find("sources[0].detect.threshold: expected a number, got boolean"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"sources": [{"id": "a", "uri": "rtsp://h/x", "restart": "twice"}]})")
                .find("sources[0].restart: expected always, on-error or never"),
            std::string::npos);
}

TEST(MonitorConfig, Uris) {
  for (const char* ok : {"rtsp://10.0.0.5:554/live", "RTSP://cam/x", "http://h/a.mp4", "https://h:8443/a",
                         "file:///srv/a.mp4", "v4l2:///dev/video0", "rtspt://h/x"})
    EXPECT_NO_THROW(check_source_uri(ok, "uri")) << ok;
  const std::pair<const char*, const char*> bad[] = {
      {"", "not a URI"},
      {"/srv/a.mp4", "not a URI"},
      {"ftp://h/a", "unsupported scheme 'ftp'"},
      {"file://a.mp4", "absolute path"},
      {"rtsp:///x", "needs a host"},
      {"rtsp://h:/x", "needs a host"},
      {"rtsp://h/a b", "space or control"},
      {"v4l2://", "needs a device"},
  };
  for (const auto& [uri, words] : bad) {
    try {
      check_source_uri(uri, "sources[3].uri");
      ADD_FAILURE() << uri << " accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("sources[3].uri: ", 0), 0u) << e.what();
    }
  }
}

TEST(MonitorConfig, Ids) {
  EXPECT_NO_THROW(check_source_id("Cam_1.door-2", "id"));
  EXPECT_THROW(check_source_id("", "id"), ConfigError);
  EXPECT_THROW(check_source_id(std::string(65, 'a'), "id"), ConfigError);
  EXPECT_THROW(check_source_id("a/b", "id"), ConfigError);
  EXPECT_THROW(check_source_id("a\"b", "id"), ConfigError);
}

TEST(MonitorConfig, SourceBody) {
  const SourceConfig s = parse_source_json(R"({"id": "c", "uri": "rtsp://h/x", "detect": {"interval": 2}})",
                                           {{"num-threads", "1"}, {"interval", "1"}}, {{"method", "file"}});
  EXPECT_EQ(s.detect.at("interval"), "2");
  EXPECT_EQ(s.detect.at("num-threads"), "1");
  EXPECT_EQ(s.publish.at("method"), "file");
  EXPECT_NE(body_error_of("{").find("body: not JSON"), std::string::npos);
  EXPECT_NE(body_error_of(R"({"id": "c", "uri": "rtsp://h/x", "x": 1})").find("x: unknown key"), std::string::npos);
  EXPECT_NE(body_error_of(R"({"id": 5, "uri": "rtsp://h/x"})").find("id: expected a string, got number"),
            std::string::npos);
  EXPECT_NE(body_error_of(R"({"id": "c", "uri": "rtsp://h/x", "publish": []})")
                .find("publish: expected an object, got array"),
            std::string::npos);
  EXPECT_NE(body_error_of(std::string(2u << 20, ' ')).find("larger than"), std::string::npos);
  // nlohmann throws out_of_range, not parse_error, for a number beyond double (found by the fuzz seed).
  EXPECT_NE(body_error_of(R"({"id": "x", "uri": "rtsp://h/x", "detect": {"threshold": 1e400}})").find("body: not JSON"),
            std::string::npos);
}

TEST(Backoff, DoublesUpToTheCapAndResets) {
  Backoff b(0.5, 4);
  EXPECT_DOUBLE_EQ(b.next_delay(), 0.5);
  EXPECT_DOUBLE_EQ(b.next_delay(), 1);
  EXPECT_DOUBLE_EQ(b.next_delay(), 2);
  EXPECT_DOUBLE_EQ(b.next_delay(), 4);
  EXPECT_DOUBLE_EQ(b.next_delay(), 4);
  b.reset();
  EXPECT_DOUBLE_EQ(b.next_delay(), 0.5);
  Backoff odd(3, 10);
  EXPECT_DOUBLE_EQ(odd.next_delay(), 3);
  EXPECT_DOUBLE_EQ(odd.next_delay(), 6);
  EXPECT_DOUBLE_EQ(odd.next_delay(), 10);
}

TEST(SourceFigures, JsonAndMetrics) {
  SourceFigures a;
  a.id = "door";
  a.uri = "rtsp://h/x";
  a.restart = "always";
  a.state = SourceState::Reconnecting;
  a.frames = 120;
  a.faces = 110;
  a.windows = 7;
  a.verdicts = {{"FAKE", 2}, {"REAL", 5}};
  a.reconnects = 3;
  a.events_dropped = 4;
  a.last_error = "src: Could not open resource";
  a.next_retry_s = 2;
  SourceFigures b;
  b.id = "we\"ird";  // ids cannot hold quotes, but the renderer escapes anyway
  const auto j = figures_json(a);
  EXPECT_EQ(j["state"], "reconnecting");
  EXPECT_EQ(j["frames"], 120);
  EXPECT_EQ(j["verdicts"]["FAKE"], 2);
  EXPECT_EQ(j["last_error"], "src: Could not open resource");
  EXPECT_EQ(j["next_retry_s"], 2);
  EXPECT_TRUE(j["last_verdict"].is_null());
  EXPECT_TRUE(figures_json(b)["last_error"].is_null());
  ProcessFigures p;
  p.rss_bytes = 12345;
  p.model = "default";
  const std::string m = render_metrics({a, b}, p);
  EXPECT_NE(m.find("# TYPE dfd_monitor_frames_total counter\n"), std::string::npos);
  EXPECT_NE(m.find("dfd_monitor_frames_total{source=\"door\"} 120\n"), std::string::npos);
  EXPECT_NE(m.find("dfd_monitor_verdicts_total{source=\"door\",label=\"FAKE\"} 2\n"), std::string::npos);
  EXPECT_NE(m.find("dfd_monitor_verdicts_total{source=\"door\",label=\"REAL\"} 5\n"), std::string::npos);
  EXPECT_NE(m.find("dfd_monitor_reconnects_total{source=\"door\"} 3\n"), std::string::npos);
  EXPECT_NE(m.find("dfd_monitor_events_dropped_total{source=\"door\"} 4\n"), std::string::npos);
  EXPECT_NE(m.find("dfd_monitor_source_state{source=\"door\",state=\"reconnecting\"} 1\n"), std::string::npos);
  EXPECT_NE(m.find("dfd_monitor_source_state{source=\"door\",state=\"playing\"} 0\n"), std::string::npos);
  EXPECT_NE(m.find("dfd_monitor_frames_total{source=\"we\\\"ird\"} 0\n"), std::string::npos);
  EXPECT_NE(m.find("dfd_monitor_sources 2\n"), std::string::npos);
  EXPECT_NE(m.find("dfd_monitor_process_resident_memory_bytes 12345\n"), std::string::npos);
  EXPECT_GT(process_rss_bytes(), 1000000u);
}

TEST(FrameLatency, QueueDepthAndWindow) {
  FrameLatency l(4, 8);
  EXPECT_EQ(l.stats().window, 0u);
  l.entered(100, 1'000'000);
  l.entered(200, 1'010'000);
  l.entered(300, 1'020'000);
  EXPECT_EQ(l.stats().queue_depth, 3u);
  l.left(100, 1'050'000);  // 50 ms
  l.left(999, 1'060'000);  // never entered: ignored
  LatencyStats s = l.stats();
  EXPECT_EQ(s.queue_depth, 2u);
  EXPECT_EQ(s.window, 1u);
  EXPECT_DOUBLE_EQ(s.last_s, 0.05);
  l.left(200, 1'040'000);  // 30 ms
  l.left(300, 1'120'000);  // 100 ms
  s = l.stats();
  EXPECT_EQ(s.queue_depth, 0u);
  EXPECT_EQ(s.count, 3u);
  EXPECT_DOUBLE_EQ(s.last_s, 0.1);
  EXPECT_NEAR(s.mean_s, 0.06, 1e-12);
  EXPECT_DOUBLE_EQ(s.p50_s, 0.05);
  EXPECT_DOUBLE_EQ(s.p99_s, 0.1);
  EXPECT_NEAR(s.sum_s, 0.18, 1e-12);
  // The window slides: five more frames of 10..50 ms push the first three out.
  for (int i = 1; i <= 5; ++i) {
    l.entered(1000 + i, 0);
    l.left(1000 + i, i * 10'000);
  }
  s = l.stats();
  EXPECT_EQ(s.window, 4u);
  EXPECT_NEAR(s.mean_s, 0.035, 1e-12);  // 20, 30, 40, 50 ms
  EXPECT_DOUBLE_EQ(s.p99_s, 0.05);
  EXPECT_DOUBLE_EQ(s.p50_s, 0.03);
  EXPECT_EQ(s.count, 8u);
}

TEST(FrameLatency, BoundedAndReset) {
  FrameLatency l(10, 3);
  for (uint64_t pts = 1; pts <= 100; ++pts) l.entered(pts, int64_t(pts));
  EXPECT_EQ(l.stats().queue_depth, 3u);  // capped: the oldest dropped
  l.left(5, 200);                        // dropped long ago: not found
  EXPECT_EQ(l.stats().window, 0u);
  // A frame lost on the way is forgotten once a later one arrives.
  l.left(99, 1099);
  EXPECT_EQ(l.stats().queue_depth, 1u);  // 98 (lost) gone, 100 still in flight
  EXPECT_DOUBLE_EQ(l.stats().last_s, 0.001);
  l.reset();
  const LatencyStats s = l.stats();
  EXPECT_EQ(s.queue_depth, 0u);
  EXPECT_EQ(s.window, 0u);
  EXPECT_EQ(s.count, 1u);  // the summary's counters go on
  l.left(100, 2000);       // stamped before the reset: not measured
  EXPECT_EQ(l.stats().count, 1u);
}

TEST(SourceFigures, LatencyJsonAndMetrics) {
  SourceFigures a;
  a.id = "door";
  SourceFigures b;
  b.id = "idle";
  a.latency.queue_depth = 2;
  a.latency.window = 3;
  a.latency.last_s = 0.25;
  a.latency.mean_s = 0.125;
  a.latency.p50_s = 0.1;
  a.latency.p99_s = 0.5;
  a.latency.sum_s = 1.5;
  a.latency.count = 7;
  const auto j = figures_json(a);
  EXPECT_EQ(j["queue_depth"], 2);
  EXPECT_DOUBLE_EQ(j["added_latency_s"]["last"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(j["added_latency_s"]["mean"].get<double>(), 0.125);
  EXPECT_DOUBLE_EQ(j["added_latency_s"]["p99"].get<double>(), 0.5);
  EXPECT_EQ(j["added_latency_s"]["window_frames"], 3);
  EXPECT_TRUE(figures_json(b)["added_latency_s"].is_null());
  EXPECT_EQ(figures_json(b)["queue_depth"], 0);
  const std::string m = render_metrics({a, b}, ProcessFigures{});
  EXPECT_NE(m.find("# TYPE dfd_monitor_queue_depth gauge\n"), std::string::npos);
  EXPECT_NE(m.find("dfd_monitor_queue_depth{source=\"door\"} 2\n"), std::string::npos);
  EXPECT_NE(m.find("# TYPE dfd_monitor_added_latency_seconds summary\n"), std::string::npos);
  EXPECT_NE(m.find("dfd_monitor_added_latency_seconds{source=\"door\",quantile=\"0.5\"} 0.1\n"), std::string::npos);
  EXPECT_NE(m.find("dfd_monitor_added_latency_seconds{source=\"door\",quantile=\"0.99\"} 0.5\n"), std::string::npos);
  EXPECT_NE(m.find("dfd_monitor_added_latency_seconds_sum{source=\"door\"} 1.5\n"), std::string::npos);
  EXPECT_NE(m.find("dfd_monitor_added_latency_seconds_count{source=\"door\"} 7\n"), std::string::npos);
  EXPECT_NE(m.find("dfd_monitor_added_latency_seconds{source=\"idle\",quantile=\"0.99\"} NaN\n"), std::string::npos);
  EXPECT_NE(m.find("dfd_monitor_added_latency_seconds_count{source=\"idle\"} 0\n"), std::string::npos);
}
