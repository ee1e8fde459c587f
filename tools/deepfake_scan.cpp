// deepfake-scan: is this video (or image) a deepfake? Runs the deepfakedetect
// element over the file in sync mode (every window analysed),
//   uridecodebin ! videoconvert ! deepfakedetect sync=true frame-messages=true ! fakesink
// gathers its bus messages into a JSON report (src/report.h) and exits with
// the verdict:
//   0 REAL, 10 FAKE, 11 NO_FACE, 1 error (one line on stderr), 2 bad command line.
// Linked with export_dynamic: the plugin binds to this program's copy of the
// dfd library, so the model loaded here (for the report's checksum and to
// fail early) is the very instance the element uses.
#include <gst/gst.h>

#include "dfd_config.h"
#include <gst/video/video.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "deepfakedetect-meta.h"
#include "model.h"
#include "report.h"
#include "stream_analyzer.h"

namespace {

constexpr int kExitReal = 0, kExitError = 1, kExitUsage = 2, kExitFake = 10, kExitNoFace = 11;

const char* kUsage =
    "usage: deepfake-scan [OPTIONS] FILE\n"
    "Scans a video or an image for deepfaked faces with the deepfakedetect element.\n"
    "  --model PATH             reference .pt checkpoint or .safetensors model\n"
    "                           (default: an untrained demo model, with a warning)\n"
    "  --json PATH              write the JSON report there; - for stdout (default: -)\n"
    "  --face-detector KIND     haar (default), lbp, yunet or none (the whole frame is the face)\n"
    "  --face-detector-model P  cascade XML or YuNet ONNX file\n"
    "  --head MODE              auto (model card, default), reference or temporal\n"
    "  --window-size N          crops per window (default 20)\n"
    "  --window-stride N        new window every N crops (default 0 = window size)\n"
    "  --interval N             analyse every Nth frame (default 1)\n"
    "  --detect-interval N      run the face detector every N frames (default 1)\n"
    "  --min-face-size N        pixels (default 40)\n"
    "  --max-faces N            per frame (default 8)\n"
    "  --crop-margin X          box growth before cropping (default 0)\n"
    "  --threshold X            FAKE above it (default 0.5)\n"
    "  --aggregation A          last, mean (default), max or ema\n"
    "  --device D               cpu (default) or cuda\n"
    "  --num-threads N          LibTorch threads (default: LibTorch's)\n"
    "  --quiet                  no verdict line on stderr\n"
    "Exit status: 0 REAL, 10 FAKE, 11 NO_FACE, 1 error, 2 bad command line.\n";

struct Options {
  std::string input, json = "-", model;
  std::map<std::string, std::string> props;  // element properties
  bool quiet = false;
};

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "deepfake-scan: %s\n%s", msg.c_str(), kUsage);
  std::exit(kExitUsage);
}

[[noreturn]] void fail(const std::string& msg) {
  std::string one = msg;
  for (char& c : one)
    if (c == '\n' || c == '\r') c = ' ';
  std::fprintf(stderr, "deepfake-scan: %s\n", one.c_str());
  std::exit(kExitError);
}

Options parse_args(int argc, char** argv) {
  Options o;
  const std::map<std::string, std::string> prop_of = {
      {"--face-detector", "face-detector"}, {"--face-detector-model", "face-detector-model"},
      {"--head", "head"}, {"--window-size", "window-size"}, {"--window-stride", "window-stride"},
      {"--interval", "interval"}, {"--detect-interval", "detect-interval"}, {"--min-face-size", "min-face-size"},
      {"--max-faces", "max-faces"}, {"--crop-margin", "crop-margin"}, {"--threshold", "threshold"},
      {"--aggregation", "aggregation"}, {"--device", "device"}, {"--num-threads", "num-threads"}};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    const auto eq = a.find('=');
    const bool has_eq = a.rfind("--", 0) == 0 && eq != std::string::npos;
    if (has_eq) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    auto next = [&]() -> std::string {
      if (has_eq) return value;
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--model") {
      o.model = next();
    } else if (a == "--json") {
      o.json = next();
    } else if (a == "--quiet" || a == "-q") {
      o.quiet = true;
    } else if (prop_of.count(a)) {
      o.props[prop_of.at(a)] = next();
    } else if (a.rfind("-", 0) == 0 && a != "-") {
      usage_error("unknown option " + a);
    } else if (o.input.empty()) {
      o.input = a;
    } else {
      usage_error("more than one input file");
    }
  }
  if (o.input.empty()) usage_error("no input file");
  return o;
}

template <typename T>
struct Unref {
  void operator()(T* p) const {
    if (p) gst_object_unref(p);
  }
};
using ElementPtr = std::unique_ptr<GstElement, Unref<GstElement>>;
using BusPtr = std::unique_ptr<GstBus, Unref<GstBus>>;

GstElement* make(const char* factory) {
  GstElement* e = gst_element_factory_make(factory, nullptr);
  if (!e) {
    if (std::string(factory) == "deepfakedetect")
      fail("the deepfakedetect element is not installed (set GST_PLUGIN_PATH to the folder of libgstdeepfakedetect.so)");
    fail(std::string("GStreamer element '") + factory + "' is missing (install the GStreamer plugins packages)");
  }
  return e;
}

void on_pad_added(GstElement*, GstPad* pad, gpointer convert) {
  GstCaps* caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, nullptr);
  const bool video = caps && gst_caps_get_size(caps) > 0 &&
                     g_str_has_prefix(gst_structure_get_name(gst_caps_get_structure(caps, 0)), "video/");
  if (caps) gst_caps_unref(caps);
  if (!video) return;  // audio and other streams are left unlinked (uridecodebin ignores them)
  GstPad* sink = gst_element_get_static_pad(GST_ELEMENT(convert), "sink");
  if (!gst_pad_is_linked(sink)) gst_pad_link(pad, sink);
  gst_object_unref(sink);
}

dfd::FrameTimes times_of(gint64 index, GstClockTime pts) {
  dfd::FrameTimes t;
  t.index = index;
  t.pts_ns = pts;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse_args(argc, argv);
  gst_init(nullptr, nullptr);
  // Run from the build tree without GST_PLUGIN_PATH: look beside the tools.
  if (GstElementFactory* f = gst_element_factory_find("deepfakedetect")) {
    gst_object_unref(f);
  } else {
    gst_registry_scan_path(gst_registry_get(), DFD_BUILD_PLUGIN_DIR);
  }
  const auto started = std::chrono::steady_clock::now();

  // The input: must be a readable file (or a URI).
  std::string uri;
  if (gst_uri_is_valid(opt.input.c_str())) {
    uri = opt.input;
  } else {
    std::ifstream probe(opt.input, std::ios::binary);
    if (!probe) fail("cannot read " + opt.input);
    char c;
    if (!probe.get(c)) fail(opt.input + " is empty");
    GError* err = nullptr;
    gchar* u = gst_filename_to_uri(opt.input.c_str(), &err);
    if (!u) fail("bad file name " + opt.input + ": " + (err ? err->message : "?"));
    uri = u;
    g_free(u);
  }

  // The model, loaded once here; the element gets the same instance.
  std::shared_ptr<const dfd::Model> model;
  dfd::ModelOptions mopts;
  if (opt.props.count("device")) mopts.device = opt.props["device"];
  if (opt.props.count("num-threads")) mopts.num_threads = std::atoi(opt.props["num-threads"].c_str());
  try {
    if (!opt.model.empty()) model = dfd::Model::load_shared(opt.model, mopts);
  } catch (const std::exception& e) {
    fail("cannot load model " + opt.model + ": " + e.what());
  }

  ElementPtr pipeline(GST_ELEMENT(gst_object_ref_sink(gst_pipeline_new("deepfake-scan"))));
  GstElement* src = make("uridecodebin");
  GstElement* convert = make("videoconvert");
  GstElement* detect = make("deepfakedetect");
  GstElement* sink = make("fakesink");
  g_object_set(src, "uri", uri.c_str(), nullptr);
  g_object_set(sink, "sync", FALSE, nullptr);
  g_object_set(detect, "sync", 1 /* true */, "frame-messages", TRUE, "post-messages", TRUE, nullptr);
  if (!opt.model.empty()) g_object_set(detect, "model", opt.model.c_str(), nullptr);
  for (const auto& [k, v] : opt.props) {
    GParamSpec* ps = g_object_class_find_property(G_OBJECT_GET_CLASS(detect), k.c_str());
    if (!ps) fail("the element has no property " + k);
    GValue val = G_VALUE_INIT;
    g_value_init(&val, ps->value_type);
    if (!gst_value_deserialize(&val, v.c_str())) usage_error("bad value '" + v + "' for --" + k);
    GValue checked = G_VALUE_INIT;
    g_value_init(&checked, ps->value_type);
    g_value_copy(&val, &checked);
    if (g_param_value_validate(ps, &checked)) usage_error("value '" + v + "' out of range for --" + k);
    g_object_set_property(G_OBJECT(detect), k.c_str(), &val);
    g_value_unset(&val);
    g_value_unset(&checked);
  }
  gst_bin_add_many(GST_BIN(pipeline.get()), src, convert, detect, sink, nullptr);
  if (!gst_element_link_many(convert, detect, sink, nullptr)) fail("cannot link the pipeline");
  g_signal_connect(src, "pad-added", G_CALLBACK(on_pad_added), convert);

  double threshold = 0.5;
  g_object_get(detect, "threshold", &threshold, nullptr);
  dfd::ReportModel rm;
  if (model) {
    rm.name = model->card().name;
    rm.trained = model->card().trained;
    rm.source = model->source();
    rm.checksum = model->checksum();
    rm.notice = model->card().trust_notice();
  }
  dfd::ReportBuilder builder(opt.input, rm, float(threshold));

  BusPtr bus(gst_element_get_bus(pipeline.get()));
  if (gst_element_set_state(pipeline.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    // The reason is on the bus (e.g. the model): report it below.
  }
  dfd::StreamSummary summary;
  bool have_summary = false, done = false;
  std::string head, error;
  std::vector<std::string> warnings;  // printed after a successful scan only: errors stay one line
  while (!done) {
    GstMessage* msg = gst_bus_timed_pop_filtered(
        bus.get(), GST_CLOCK_TIME_NONE,
        GstMessageType(GST_MESSAGE_ELEMENT | GST_MESSAGE_ERROR | GST_MESSAGE_EOS | GST_MESSAGE_WARNING));
    if (!msg) break;
    switch (GST_MESSAGE_TYPE(msg)) {
      case GST_MESSAGE_ERROR: {
        GError* err = nullptr;
        gchar* dbg = nullptr;
        gst_message_parse_error(msg, &err, &dbg);
        error = err->message;
        if (dbg && GST_MESSAGE_SRC(msg) == GST_OBJECT(detect)) {
          // The element's debug text holds the cause (e.g. the loader's message).
          std::string d = dbg;
          const auto colon = d.rfind(":\n");
          error += ": " + (colon != std::string::npos ? d.substr(colon + 2) : d);
        }
        g_error_free(err);
        g_free(dbg);
        done = true;
        break;
      }
      case GST_MESSAGE_WARNING: {
        GError* err = nullptr;
        gst_message_parse_warning(msg, &err, nullptr);
        warnings.push_back(err->message);
        g_error_free(err);
        break;
      }
      case GST_MESSAGE_EOS: done = true; break;
      case GST_MESSAGE_ELEMENT: {
        DfdWindowVerdict w;
        DfdFrameVerdict f;
        DfdSummary s;
        if (dfd_message_parse_frame(msg, &f)) {
          dfd::FrameVerdict fv;
          fv.track_id = f.track_id;
          fv.times = times_of(f.frame, f.timestamp);
          fv.box = cv::Rect(f.x, f.y, f.width, f.height);
          fv.prob_fake = float(f.fake_probability);
          builder.add_frame(fv);
        } else if (dfd_message_parse_window(msg, &w)) {
          dfd::WindowVerdict v;
          v.track_id = w.track_id;
          v.start = times_of(w.window_start, w.start_pts);
          v.end = times_of(w.window_end, w.end_pts);  // already the end of the last frame
          v.frames = w.frames;
          v.box = cv::Rect(w.x, w.y, w.width, w.height);
          v.prediction.prob_fake = float(w.fake_probability);
          v.track_probability = float(w.track_fake_probability);
          v.final = w.final;
          builder.add_window(v);
          if (rm.name.empty() && w.model) {
            rm.name = w.model;
            rm.trained = w.trained;
          }
        } else if (dfd_message_parse_summary(msg, &s)) {
          have_summary = true;
          summary.verdict = s.verdict;
          summary.fake_probability = float(s.fake_probability);
          summary.frames = s.frames;
          summary.frames_analysed = s.frames_analysed;
          summary.windows_analysed = s.windows_analysed;
          summary.windows_skipped = s.windows_skipped;
          summary.crops_analysed = s.crops_analysed;
          if (const gchar* h = gst_structure_get_string(gst_message_get_structure(msg), "head")) head = h;
          if (rm.name.empty() && s.model) {
            rm.name = s.model;
            rm.trained = s.trained;
          }
          for (guint i = 0; i < s.n_tracks; ++i) {
            DfdTrackSummary t;
            if (!dfd_message_get_summary_track(msg, i, &t)) continue;
            dfd::TrackSummary ts;
            ts.id = t.track_id;
            ts.fake_probability = float(t.fake_probability);
            ts.verdict = t.verdict ? t.verdict : "";
            ts.windows = t.windows;
            ts.crops = t.frames;
            ts.first_index = t.first_frame;
            ts.last_index = t.last_frame;
            summary.tracks.push_back(ts);
          }
        }
        break;
      }
      default: break;
    }
    gst_message_unref(msg);
  }
  gst_element_set_state(pipeline.get(), GST_STATE_NULL);
  if (!error.empty()) fail("cannot scan " + opt.input + ": " + error);
  if (!have_summary) fail("cannot scan " + opt.input + ": the stream ended without a verdict (no video in it?)");
  if (summary.frames == 0) fail("cannot scan " + opt.input + ": no video frame decoded");

  builder.meta().model.name = rm.name;
  builder.meta().model.trained = rm.trained;
  builder.meta().model.head = head;
  if (rm.notice.empty() && !rm.trained) builder.meta().model.notice = dfd::ModelCard{}.trust_notice();
  if (!model) builder.meta().model.source = "untrained:seed=0";
  gchar* agg = nullptr;
  gint window = 0;
  g_object_get(detect, "window-size", &window, nullptr);
  {
    GValue v = G_VALUE_INIT;
    g_value_init(&v, G_PARAM_SPEC_VALUE_TYPE(g_object_class_find_property(G_OBJECT_GET_CLASS(detect), "aggregation")));
    g_object_get_property(G_OBJECT(detect), "aggregation", &v);
    agg = g_strdup(g_enum_get_value(G_ENUM_CLASS(g_type_class_peek(G_VALUE_TYPE(&v))), g_value_get_enum(&v))->value_nick);
    g_value_unset(&v);
    g_value_init(&v, G_PARAM_SPEC_VALUE_TYPE(g_object_class_find_property(G_OBJECT_GET_CLASS(detect), "face-detector")));
    g_object_get_property(G_OBJECT(detect), "face-detector", &v);
    builder.meta().face_detector =
        g_enum_get_value(G_ENUM_CLASS(g_type_class_peek(G_VALUE_TYPE(&v))), g_value_get_enum(&v))->value_nick;
    g_value_unset(&v);
  }
  builder.meta().aggregation = agg;
  builder.meta().window_size = window;
  g_free(agg);
  dfd::Report report = builder.build(&summary);
  report.stats.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  const std::string json = report.to_json(2) + "\n";
  if (opt.json == "-") {
    std::fwrite(json.data(), 1, json.size(), stdout);
    std::fflush(stdout);
  } else {
    std::ofstream out(opt.json, std::ios::binary);
    if (!out || !out.write(json.data(), std::streamsize(json.size()))) fail("cannot write " + opt.json);
  }
  if (!opt.quiet) {
    for (const auto& w : warnings) std::fprintf(stderr, "deepfake-scan: warning: %s\n", w.c_str());
    std::fprintf(stderr, "%s %.4f %s (%zu face track%s, %llu windows, %llu frames, %.1f s)%s\n", report.verdict.c_str(),
                 report.fake_probability, opt.input.c_str(), report.tracks.size(), report.tracks.size() == 1 ? "" : "s",
                 (unsigned long long)report.stats.windows_analysed, (unsigned long long)report.stats.frames,
                 report.stats.elapsed_s, report.model.trained ? "" : " [UNTRAINED model: meaningless]");
  }
  if (report.verdict == "FAKE") return kExitFake;
  if (report.verdict == "NO_FACE") return kExitNoFace;
  return kExitReal;
}
