// deepfake-bench-multistream: many deepfakedetect streams in one process,
// sharing one inference scheduler (the element's default: same model, same
// scheduler). Prints a table; asserts nothing.
//
//   deepfake-bench-multistream --portrait tests/data/astronaut.png [--frames 150]
//       [--streams 1,2,4,8] [--work DIR] [--props "batch-size=16 ..."]
//
// Makes a 720p H.264 clip with one face (bench/clip_maker, then x264enc),
// then for each stream count N runs two child processes of itself (so that
// each starts with a fresh heap, for the memory figures):
//   throughput  N pipelines (filesrc ! decodebin ! deepfakedetect sync=true !
//               fakesink) at full speed: total face crops per second, the
//               scheduler's mean batch, and the peak RSS;
//   live        N pipelines paced at the clip's frame rate (identity
//               sync=true) into deepfakedetect sync=false (live mode): the
//               time each frame spends inside the element, p99 per stream,
//               and the windows skipped.
//   decode      the same N pipelines without the element (identity): what
//               decoding alone costs in memory, for comparison.
// RSS per extra stream = (peak RSS with N - peak RSS with 1) / (N - 1).
// "{i}" in --props becomes each stream's number: --props "model-instance-id=s{i}"
// gives every stream a scheduler of its own (no sharing), for comparison.
#include <gst/gst.h>
#include <gst/video/video.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "clip_maker.h"

using Clock = std::chrono::steady_clock;

namespace {

std::map<std::string, std::string> parse(int argc, char** argv, int from) {
  std::map<std::string, std::string> m;
  for (int i = from; i + 1 < argc; i += 2) m[argv[i]] = argv[i + 1];
  return m;
}

double status_mb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(std::string(key).size())) / 1024.0;
  return 0;
}

// Runs a pipeline description to EOS; throws with the error's text.
void run_to_eos(const std::string& desc) {
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(desc.c_str(), &err);
  if (!p) throw std::runtime_error(std::string("bad pipeline: ") + (err ? err->message : "?"));
  gst_element_set_state(p, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(p);
  GstMessage* m = gst_bus_timed_pop_filtered(bus, GST_CLOCK_TIME_NONE, GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  std::string error;
  if (m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
    GError* e = nullptr;
    gst_message_parse_error(m, &e, nullptr);
    error = e->message;
    g_error_free(e);
  }
  if (m) gst_message_unref(m);
  gst_object_unref(bus);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
  if (!error.empty()) throw std::runtime_error(error);
}

// 720p, one face, H.264 (x264enc) in MP4.
std::string make_h264_clip(const std::string& portrait, const std::string& dir, int frames) {
  const std::string avi = dir + "/multistream-720p.avi", mp4 = dir + "/multistream-720p.mp4";
  dfd::bench::ClipSpec spec;
  spec.frames = frames;
  dfd::bench::make_clip(portrait, avi, spec);
  run_to_eos("filesrc location=" + avi + " ! avidemux ! jpegdec ! videoconvert ! video/x-raw,format=I420 ! "
             "x264enc speed-preset=veryfast key-int-max=30 bitrate=3000 ! h264parse ! mp4mux ! filesink location=" + mp4);
  return mp4;
}

struct Stream {
  GstElement* pipeline = nullptr;
  GstElement* detect = nullptr;
  std::mutex mu;
  std::map<uint64_t, Clock::time_point> entered;
  std::vector<double> latency_ms;
};

GstPadProbeReturn enter_probe(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* s = static_cast<Stream*>(data);
  std::lock_guard<std::mutex> lk(s->mu);
  s->entered[GST_BUFFER_PTS(GST_PAD_PROBE_INFO_BUFFER(info))] = Clock::now();
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn leave_probe(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* s = static_cast<Stream*>(data);
  const auto now = Clock::now();
  std::lock_guard<std::mutex> lk(s->mu);
  auto it = s->entered.find(GST_BUFFER_PTS(GST_PAD_PROBE_INFO_BUFFER(info)));
  if (it != s->entered.end()) {
    s->latency_ms.push_back(std::chrono::duration<double, std::milli>(now - it->second).count());
    s->entered.erase(it);
  }
  return GST_PAD_PROBE_OK;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5))];
}

uint64_t u64_field(const GstStructure* s, const char* f) {
  guint64 v = 0;
  gst_structure_get_uint64(s, f, &v);
  return v;
}

// A child: N pipelines at once; prints one "RESULT k=v ..." line.
int child(const std::string& mode, int n, const std::string& clip, const std::string& props) {
  const bool live = mode == "live", decode = mode == "decode";
  std::vector<std::unique_ptr<Stream>> streams;
  for (int i = 0; i < n; ++i) {
    auto s = std::make_unique<Stream>();
    // "{i}" in the properties becomes the stream's number (model-instance-id=s{i}: no sharing).
    std::string own = props;
    for (size_t at; (at = own.find("{i}")) != std::string::npos;) own.replace(at, 3, std::to_string(i));
    const std::string element = decode ? "identity name=d" : "deepfakedetect name=d " + own + (live ? " sync=false" : " sync=true");
    const std::string desc = "filesrc location=" + clip + " ! decodebin ! videoconvert ! video/x-raw,format=BGR ! " +
                             (live ? "identity sync=true ! " : "") + element + " ! fakesink sync=false";
    GError* err = nullptr;
    s->pipeline = gst_parse_launch(desc.c_str(), &err);
    if (!s->pipeline) {
      std::cerr << "bad pipeline: " << (err ? err->message : "?") << "\n";
      return 1;
    }
    s->detect = gst_bin_get_by_name(GST_BIN(s->pipeline), "d");
    GstPad* sink = gst_element_get_static_pad(s->detect, "sink");
    GstPad* src = gst_element_get_static_pad(s->detect, "src");
    gst_pad_add_probe(sink, GST_PAD_PROBE_TYPE_BUFFER, enter_probe, s.get(), nullptr);
    gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, leave_probe, s.get(), nullptr);
    gst_object_unref(sink);
    gst_object_unref(src);
    streams.push_back(std::move(s));
  }
  // Peak RSS while running, sampled (VmHWM would include the clip making of the parent: not here, a fresh process).
  std::atomic<bool> done{false};
  std::atomic<double> peak{0};
  std::thread sampler([&] {
    while (!done) {
      peak = std::max(peak.load(), status_mb("VmRSS:"));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  // Start them all (the model and the scheduler come with the first), then time from PLAYING.
  for (auto& s : streams) gst_element_set_state(s->pipeline, GST_STATE_PAUSED);
  for (auto& s : streams) gst_element_get_state(s->pipeline, nullptr, nullptr, GST_CLOCK_TIME_NONE);
  const auto t0 = Clock::now();
  for (auto& s : streams) gst_element_set_state(s->pipeline, GST_STATE_PLAYING);
  int errors = 0;
  for (auto& s : streams) {
    GstBus* bus = gst_element_get_bus(s->pipeline);
    GstMessage* m = gst_bus_timed_pop_filtered(bus, GST_CLOCK_TIME_NONE, GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    if (m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
      GError* e = nullptr;
      gst_message_parse_error(m, &e, nullptr);
      std::cerr << "error: " << e->message << "\n";
      g_error_free(e);
      ++errors;
    }
    if (m) gst_message_unref(m);
    gst_object_unref(bus);
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  done = true;
  sampler.join();

  uint64_t crops = 0, skipped = 0, windows = 0, frames = 0;
  double worst_p99 = 0, sum_p99 = 0, worst_p50 = 0;
  GstStructure* last = nullptr;
  for (auto& s : streams) {
    if (decode) continue;
    GstStructure* st = nullptr;
    g_object_get(s->detect, "scheduler-stats", &st, nullptr);
    crops += u64_field(st, "stream-crops");
    guint64 sk = 0, wa = 0, fr = 0;
    g_object_get(s->detect, "windows-skipped", &sk, "windows-analysed", &wa, "frames-processed", &fr, nullptr);
    skipped += sk;
    windows += wa;
    frames += fr;
    if (last) gst_structure_free(last);
    last = st;
    std::lock_guard<std::mutex> lk(s->mu);
    const double p99 = percentile(s->latency_ms, 0.99);
    worst_p99 = std::max(worst_p99, p99);
    worst_p50 = std::max(worst_p50, percentile(s->latency_ms, 0.5));
    sum_p99 += p99;
  }
  if (decode) {
    std::printf("RESULT mode=decode streams=%d wall_s=%.3f rss_peak_mb=%.1f errors=%d\n", n, wall, peak.load(), errors);
    for (auto& s : streams) {
      gst_element_set_state(s->pipeline, GST_STATE_NULL);
      gst_object_unref(s->detect);
      gst_object_unref(s->pipeline);
    }
    return errors ? 1 : 0;
  }
  gdouble mean_batch = 0;
  gst_structure_get_double(last, "mean-batch-size", &mean_batch);
  std::printf("RESULT mode=%s streams=%d wall_s=%.3f frames=%llu crops=%llu crops_per_s=%.2f windows=%llu skipped=%llu "
              "mean_batch=%.2f batches=%llu mixed=%llu p50_ms=%.2f p99_worst_ms=%.2f p99_mean_ms=%.2f "
              "rss_peak_mb=%.1f errors=%d\n",
              mode.c_str(), n, wall, (unsigned long long)frames, (unsigned long long)crops, double(crops) / wall,
              (unsigned long long)windows, (unsigned long long)skipped, mean_batch,
              (unsigned long long)u64_field(last, "batches"), (unsigned long long)u64_field(last, "mixed-batches"),
              worst_p50, worst_p99, sum_p99 / n, peak.load(), errors);
  gst_structure_free(last);
  for (auto& s : streams) {
    gst_element_set_state(s->pipeline, GST_STATE_NULL);
    gst_object_unref(s->detect);
    gst_object_unref(s->pipeline);
  }
  return errors ? 1 : 0;
}

std::map<std::string, std::string> run_child(const char* self, const std::string& mode, int n, const std::string& clip,
                                             const std::string& props) {
  gchar* out = nullptr;
  gint status = 0;
  const std::string ns = std::to_string(n);
  const gchar* argv[] = {self, "--child", mode.c_str(), ns.c_str(), clip.c_str(), props.c_str(), nullptr};
  GError* err = nullptr;
  if (!g_spawn_sync(nullptr, const_cast<gchar**>(argv), nullptr, G_SPAWN_CHILD_INHERITS_STDIN, nullptr, nullptr, &out,
                    nullptr, &status, &err))
    throw std::runtime_error(err ? err->message : "spawn failed");
  std::map<std::string, std::string> r;
  std::istringstream lines(out ? out : "");
  g_free(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("RESULT ", 0) != 0) continue;
    std::istringstream kv(line.substr(7));
    for (std::string tok; kv >> tok;) {
      const auto eq = tok.find('=');
      if (eq != std::string::npos) r[tok.substr(0, eq)] = tok.substr(eq + 1);
    }
  }
  if (r.empty()) throw std::runtime_error("the " + mode + " run with " + ns + " streams printed no result");
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  if (argc >= 6 && std::string(argv[1]) == "--child") return child(argv[2], std::stoi(argv[3]), argv[4], argc > 5 ? argv[5] : "");
  auto a = parse(argc, argv, 1);
  if (!a.count("--portrait")) {
    std::cerr << "usage: deepfake-bench-multistream --portrait PNG [--frames 150] [--streams 1,2,4,8] [--work DIR] "
                 "[--props \"element properties\"]\n";
    return 2;
  }
  const int frames = a.count("--frames") ? std::stoi(a["--frames"]) : 150;
  const std::string work = a.count("--work") ? a["--work"] : g_get_tmp_dir();
  const std::string props = a.count("--props") ? a["--props"] : "";
  std::vector<int> counts;
  {
    std::istringstream in(a.count("--streams") ? a["--streams"] : "1,2,4,8");
    for (std::string t; std::getline(in, t, ',');) counts.push_back(std::stoi(t));
  }
  try {
    const std::string clip = make_h264_clip(a["--portrait"], work, frames);
    std::printf("clip: %s (1280x720 H.264, one face, %d frames at 30 fps); element props: '%s'; %u CPUs\n", clip.c_str(),
                frames, props.c_str(), g_get_num_processors());
    std::printf("%7s | %9s %7s %10s %9s | %11s %11s %8s | %8s %12s %12s %12s\n", "streams", "crops/s", "vs 1",
                "mean batch", "mixed", "live p50 ms", "live p99 ms", "skipped", "RSS MB", "MB/extra", "live MB/ex", "decode MB/ex");
    double base_rate = 0, base_rss = 0, base_decode = 0, base_live = 0;
    for (int n : counts) {
      auto t = run_child(argv[0], "throughput", n, clip, props);
      auto l = run_child(argv[0], "live", n, clip, props);
      auto d = run_child(argv[0], "decode", n, clip, props);
      const double rate = std::stod(t["crops_per_s"]), rss = std::stod(t["rss_peak_mb"]), dec = std::stod(d["rss_peak_mb"]);
      const double live_rss = std::stod(l["rss_peak_mb"]);
      if (n == counts.front()) base_rate = rate, base_rss = rss, base_decode = dec, base_live = live_rss;
      const double windows = std::stod(l["windows"]) + std::stod(l["skipped"]);
      char extra[32] = "-", dextra[32] = "-", lextra[32] = "-";
      if (n > counts.front()) {
        std::snprintf(lextra, sizeof lextra, "%.1f", (live_rss - base_live) / double(n - counts.front()));
        std::snprintf(extra, sizeof extra, "%.1f", (rss - base_rss) / double(n - counts.front()));
        std::snprintf(dextra, sizeof dextra, "%.1f", (dec - base_decode) / double(n - counts.front()));
      }
      std::printf("%7d | %9.1f %6.2fx %10s %9s | %11s %11s %7.1f%% | %8.1f %12s %12s %12s\n", n, rate, rate / base_rate,
                  t["mean_batch"].c_str(), (t["mixed"] + "/" + t["batches"]).c_str(), l["p50_ms"].c_str(),
                  l["p99_worst_ms"].c_str(), windows > 0 ? 100.0 * std::stod(l["skipped"]) / windows : 0.0, rss, extra,
                  lextra, dextra);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::cerr << "deepfake-bench-multistream: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
