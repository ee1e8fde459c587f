// deepfake-bench-pipeline: the deepfakedetect element measured in real
// GStreamer pipelines (decode included). Prints JSON; asserts nothing.
//   e2e     --clip X.avi --model M [--props "detect-interval=5 ..."]
//           frames per second and face crops per second, offline (sync=true),
//           against the same pipeline without the element (decode alone)
//   latency --clip X.avi --model M [--props ...]
//           live-style (sync=false, paced at the clip's frame rate): time each
//           frame spends inside the element, p50/p99, and windows skipped
//   rss     --model M
//           resident memory with one element, then with a second one on the
//           same model file in the same process
#include <gst/gst.h>
#include <gst/video/video.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

using Clock = std::chrono::steady_clock;

namespace {

std::map<std::string, std::string> parse(int argc, char** argv) {
  std::map<std::string, std::string> m;
  for (int i = 2; i + 1 < argc; i += 2) m[argv[i]] = argv[i + 1];
  return m;
}

double rss_mb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

double peak_rss_mb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

struct Counters {
  std::mutex mu;
  uint64_t frames = 0, faces = 0;
  std::map<uint64_t, Clock::time_point> entered;  // by buffer pts
  std::vector<double> latency_ms;
};

GstPadProbeReturn count_probe(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* c = static_cast<Counters*>(data);
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  std::lock_guard<std::mutex> lock(c->mu);
  ++c->frames;
  gpointer state = nullptr;
  while (gst_buffer_iterate_meta_filtered(buf, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) ++c->faces;
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn enter_probe(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* c = static_cast<Counters*>(data);
  std::lock_guard<std::mutex> lock(c->mu);
  c->entered[GST_BUFFER_PTS(GST_PAD_PROBE_INFO_BUFFER(info))] = Clock::now();
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn leave_probe(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* c = static_cast<Counters*>(data);
  const auto now = Clock::now();
  std::lock_guard<std::mutex> lock(c->mu);
  auto it = c->entered.find(GST_BUFFER_PTS(GST_PAD_PROBE_INFO_BUFFER(info)));
  if (it != c->entered.end()) {
    c->latency_ms.push_back(std::chrono::duration<double, std::milli>(now - it->second).count());
    c->entered.erase(it);
  }
  return GST_PAD_PROBE_OK;
}

// Runs to EOS; returns wall seconds. Throws on a pipeline error.
double run(GstElement* pipeline) {
  auto t0 = Clock::now();
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* msg = gst_bus_timed_pop_filtered(bus, GST_CLOCK_TIME_NONE, GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::string err;
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError* e = nullptr;
    gst_message_parse_error(msg, &e, nullptr);
    err = e->message;
    g_error_free(e);
  }
  gst_message_unref(msg);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  if (!err.empty()) throw std::runtime_error("pipeline error: " + err);
  return s;
}

GstElement* launch(const std::string& desc) {
  GError* e = nullptr;
  GstElement* p = gst_parse_launch(desc.c_str(), &e);
  if (e) {
    std::string m = e->message;
    g_error_free(e);
    throw std::runtime_error("cannot build pipeline: " + m + "\n  " + desc);
  }
  return p;
}

std::string decode(const std::string& clip) {
  return "filesrc location=\"" + clip + "\" ! avidemux ! jpegdec ! videoconvert ! video/x-raw,format=BGR";
}

uint64_t prop_u64(GstElement* pipeline, const char* name, const char* prop) {
  GstElement* d = gst_bin_get_by_name(GST_BIN(pipeline), name);
  guint64 v = 0;
  if (d) {
    g_object_get(d, prop, &v, nullptr);
    gst_object_unref(d);
  }
  return v;
}

void attach(GstElement* pipeline, const char* element, const char* pad, GstPadProbeCallback cb, Counters* c) {
  GstElement* e = gst_bin_get_by_name(GST_BIN(pipeline), element);
  GstPad* p = gst_element_get_static_pad(e, pad);
  gst_pad_add_probe(p, GST_PAD_PROBE_TYPE_BUFFER, cb, c, nullptr);
  gst_object_unref(p);
  gst_object_unref(e);
}

nlohmann::json cmd_e2e(const std::map<std::string, std::string>& a) {
  const std::string clip = a.at("--clip"), props = a.count("--props") ? a.at("--props") : "";
  nlohmann::json j;
  {
    Counters c;
    GstElement* p = launch(decode(clip) + " ! fakesink name=sink sync=false");
    attach(p, "sink", "sink", count_probe, &c);
    const double s = run(p);
    gst_object_unref(p);
    j["decode_only"] = {{"frames", c.frames}, {"seconds", s}, {"fps", c.frames / s}};
  }
  Counters c;
  GstElement* p = launch(decode(clip) + " ! deepfakedetect name=d sync=true model=\"" + a.at("--model") + "\" " + props +
                         " ! fakesink name=sink sync=false");
  attach(p, "sink", "sink", count_probe, &c);
  const double s = run(p);
  j["frames"] = c.frames;
  j["face_frames"] = c.faces;
  j["seconds"] = s;
  j["fps"] = c.frames / s;
  j["faces_per_s"] = c.faces / s;
  j["windows_analysed"] = prop_u64(p, "d", "windows-analysed");
  j["windows_skipped"] = prop_u64(p, "d", "windows-skipped");
  j["peak_rss_mb"] = peak_rss_mb();
  j["props"] = props;
  gst_object_unref(p);
  return j;
}

nlohmann::json cmd_latency(const std::map<std::string, std::string>& a) {
  const std::string props = a.count("--props") ? a.at("--props") : "";
  Counters c;
  // identity sync=true paces frames at their timestamps, as a camera would.
  GstElement* p = launch(decode(a.at("--clip")) + " ! identity sync=true ! deepfakedetect name=d sync=false model=\"" +
                         a.at("--model") + "\" " + props + " ! fakesink name=sink sync=false");
  attach(p, "d", "sink", enter_probe, &c);
  attach(p, "d", "src", leave_probe, &c);
  const double s = run(p);
  auto v = c.latency_ms;
  std::sort(v.begin(), v.end());
  auto pct = [&](double q) { return v.empty() ? 0.0 : v[std::min(v.size() - 1, size_t(q * double(v.size())))]; };
  nlohmann::json j;
  j["frames"] = v.size();
  j["seconds"] = s;
  j["latency_ms_p50"] = pct(0.50);
  j["latency_ms_p99"] = pct(0.99);
  j["latency_ms_max"] = v.empty() ? 0.0 : v.back();
  j["windows_analysed"] = prop_u64(p, "d", "windows-analysed");
  j["windows_skipped"] = prop_u64(p, "d", "windows-skipped");
  j["props"] = props;
  gst_object_unref(p);
  return j;
}

nlohmann::json cmd_rss(const std::map<std::string, std::string>& a) {
  const std::string m = a.at("--model");
  auto one = [&](const char* name) {
    return launch("videotestsrc num-buffers=1 ! video/x-raw,format=BGR,width=320,height=240 ! deepfakedetect name=" +
                  std::string(name) + " model=\"" + m + "\" ! fakesink");
  };
  nlohmann::json j;
  j["before_mb"] = rss_mb();
  GstElement* p1 = one("d1");
  gst_element_set_state(p1, GST_STATE_PAUSED);
  gst_element_get_state(p1, nullptr, nullptr, GST_CLOCK_TIME_NONE);
  j["one_element_mb"] = rss_mb();
  GstElement* p2 = one("d2");
  gst_element_set_state(p2, GST_STATE_PAUSED);
  gst_element_get_state(p2, nullptr, nullptr, GST_CLOCK_TIME_NONE);
  j["two_elements_mb"] = rss_mb();
  j["second_element_adds_mb"] = j["two_elements_mb"].get<double>() - j["one_element_mb"].get<double>();
  gst_element_set_state(p2, GST_STATE_NULL);
  gst_element_set_state(p1, GST_STATE_NULL);
  gst_object_unref(p2);
  gst_object_unref(p1);
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  if (argc < 2) {
    std::cerr << "usage: deepfake-bench-pipeline e2e|latency|rss ...\n";
    return 1;
  }
  try {
    auto a = parse(argc, argv);
    const std::string cmd = argv[1];
    nlohmann::json j;
    if (cmd == "e2e") j = cmd_e2e(a);
    else if (cmd == "latency") j = cmd_latency(a);
    else if (cmd == "rss") j = cmd_rss(a);
    else throw std::invalid_argument("unknown command " + cmd);
    std::cout << j.dump(2) << "\n";
    return 0;
  } catch (const std::out_of_range&) {
    std::cerr << "deepfake-bench-pipeline: error: missing a required option\n";
  } catch (const std::exception& e) {
    std::cerr << "deepfake-bench-pipeline: error: " << e.what() << "\n";
  }
  return 1;
}
