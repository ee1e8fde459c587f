// deepfake-scan: is this video (or image) a deepfake? Runs the deepfakedetect
// element over the file in sync mode (every window analysed) through the
// shared scan runner (tools/scan_runner.h, also behind deepfake-serve),
//   uridecodebin ! videoconvert ! deepfakedetect sync=true frame-messages=true ! fakesink
// writes the JSON report (src/report.h) and, with --html, the self-contained
// HTML report (src/html_report.h: gauge, per-track charts, the most
// suspicious crops with their FAKE-class heatmaps, model card), and exits
// with the verdict:
//   0 REAL, 10 FAKE, 11 NO_FACE, 1 error (one line on stderr), 2 bad command line.
// A progress bar goes to stderr while scanning when stderr is a terminal.
// Linked with export_dynamic: the plugin binds to this program's copy of the
// dfd library, so the model loaded here (for the report's checksum, the
// heatmaps and to fail early) is the very instance the element uses.
#include <gst/gst.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dfd_config.h"
#include "report/html_report.h"
#include "model/family.h"
#include "report/report.h"
#include "element_options.h"
#include "scan_runner.h"

namespace {

using dfd::kExitError;
using dfd::kExitUsage;

const char* kUsageHead =
    "usage: deepfake-scan [OPTIONS] FILE\n"
    "Scans a video or an image for deepfaked faces with the deepfakedetect element.\n"
    "  --model PATH             model file(s): .h5 (Keras MesoNet), .safetensors or .pt;\n"
    "                           several, comma-separated, make an ensemble (default: the\n"
    "                           shipped trained MesoNet, models/mesonet/Meso4_DF.h5)\n"
    "  --json PATH              write the JSON report there; - for stdout (default: -)\n"
    "  --html PATH              also write a self-contained HTML report there: verdict and\n"
    "                           confidence gauge, score chart per face track, the most\n"
    "                           suspicious crops with their heatmaps, model card\n"
    "  --html-crops N           crops (with heatmaps) per face track in the HTML (default 3)\n"
    ;
const char* kUsageTail =
    "  --timeout S              give up (exit 1) after S seconds (default 0 = no limit)\n"
    "  --max-pixels N           refuse (exit 1) pictures and video frames larger than N pixels\n"
    "                           (width x height), from their declared size, before decoding\n"
    "                           (default 40000000 = 40 megapixels; 0 = no limit)\n"
    "  -q, --quiet              no progress bar and no verdict line on stderr\n"
    "  -h, --help               this text\n"
    "A progress bar (frames, fps, ETA) is drawn on stderr while scanning when stderr is a\n"
    "terminal.\n"
    "Exit status:\n"
    "  0   REAL\n"
    "  10  FAKE\n"
    "  11  NO_FACE (no face anywhere in the file)\n"
    "  1   error: unreadable, empty, corrupt or truncated input, not an image or a video,\n"
    "      picture or frames over --max-pixels, bad model, time limit, ... (one line on\n"
    "      stderr, no report written)\n"
    "  2   bad command line\n";

std::string usage() { return std::string(kUsageHead) + dfd::element_options_usage() + kUsageTail; }

struct Options {
  std::string input, json = "-", html, model;
  int html_crops = 3;
  double timeout_s = 0;
  uint64_t max_pixels = dfd::kDefaultMaxPixels;
  std::map<std::string, std::string> props;  // element properties, validated by the element's ranges
  bool quiet = false;
};

std::string one_line(const std::string& msg) {
  std::string one = msg;
  for (char& c : one)
    if (c == '\n' || c == '\r') c = ' ';
  return one;
}

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "deepfake-scan: %s\n%s", one_line(msg).c_str(), usage().c_str());
  std::exit(kExitUsage);
}

[[noreturn]] void fail(const std::string& msg) {
  std::fprintf(stderr, "deepfake-scan: %s\n", one_line(msg).c_str());
  std::exit(kExitError);
}

bool parse_number(const std::string& s, double* out) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || !end || *end) return false;
  *out = v;
  return true;
}

Options parse_args(int argc, char** argv) {
  Options o;
  const auto& prop_of = dfd::element_option_flags();
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
      std::fputs(usage().c_str(), stdout);
      std::exit(0);
    } else if (a == "--model") {
      o.model = next();
    } else if (a == "--json") {
      o.json = next();
    } else if (a == "--html") {
      o.html = next();
      if (o.html.empty() || o.html == "-") usage_error("--html needs a file path");
    } else if (a == "--html-crops") {
      const std::string v = next();
      double n = 0;
      if (!parse_number(v, &n) || n < 0 || n > 1000 || n != double(int(n)))
        usage_error("bad value '" + v + "' for --html-crops (0 to 1000)");
      o.html_crops = int(n);
    } else if (a == "--timeout") {
      const std::string v = next();
      if (!parse_number(v, &o.timeout_s) || o.timeout_s < 0) usage_error("bad value '" + v + "' for --timeout");
    } else if (a == "--max-pixels") {
      const std::string v = next();
      double n = 0;
      if (!parse_number(v, &n) || n < 0 || n > 1e12 || n != double(uint64_t(n)))
        usage_error("bad value '" + v + "' for --max-pixels (a whole number of pixels, 0 = no limit)");
      o.max_pixels = uint64_t(n);
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

// "FILE: what", unless the message already names the file.
std::string scan_error_text(const std::string& input, const std::string& what) {
  if (what.find(input) != std::string::npos) return what;
  return input + ": " + what;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  if (!out || !out.write(text.data(), std::streamsize(text.size())) || !out.flush()) fail("cannot write " + path);
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_args(argc, argv);

  dfd::ScanOptions so;
  so.input = opt.input;
  so.model = opt.model;
  so.timeout_s = opt.timeout_s;
  so.max_pixels = opt.max_pixels;
  so.frame_probabilities = true;  // per-frame scores in the report (and the crops for the HTML)
  try {
    // gst_init; the plugin from GST_PLUGIN_PATH or the installed ones, else
    // (run from the build tree) the build's plugin dir, DFD_BUILD_PLUGIN_DIR.
    dfd::scan_init();
  } catch (const dfd::ScanError& e) {
    fail(e.what());
  }
  try {
    dfd::apply_element_options(opt.props, so);
  } catch (const dfd::ElementOptionError& e) {
    usage_error(e.what());
  } catch (const std::exception& e) {
    fail(e.what());
  }

  // The model, loaded once here; the element gets the same instance
  // (load_detector_shared, export_dynamic). Without --model: the element's
  // default, the shipped trained MesoNet, named explicitly so both share it.
  if (so.model.empty()) {
    so.model = dfd::find_default_model();
    if (so.model.empty()) {
      std::string where;
      for (const auto& c : dfd::default_model_candidates()) where += " " + c;
      fail("no --model given and the default model is not installed (looked in" + where + ")");
    }
  }
  std::shared_ptr<const dfd::Detector> model;
  dfd::ModelOptions mopts;
  mopts.device = so.device.empty() ? "cpu" : so.device;
  mopts.num_threads = so.num_threads;
  try {
    if (so.model.find(',') == std::string::npos) model = dfd::load_detector_shared(so.model, mopts);
  } catch (const std::exception& e) {
    fail("cannot load model " + so.model + ": " + e.what());
  }

  dfd::ProgressBar bar = opt.quiet ? dfd::ProgressBar(stderr, false) : dfd::ProgressBar(stderr);
  dfd::ScanProgressCallback progress;
  if (bar.enabled()) progress = [&bar](const dfd::ScanProgress& p) { bar.update(p); };
  std::vector<std::string> warnings;  // printed after a successful scan only: errors stay one line
  dfd::Report report;
  std::string html;
  try {
    report = dfd::run_scan(so, progress, model.get(), &warnings);
    bar.finish();
    if (!opt.html.empty()) {
      dfd::HtmlReportOptions ho;
      if (model) {  // an ensemble has no single card or picture model
        ho.model_card_json = model->card().to_json();
        // NO_FACE: no crop, so no heatmap (and no second decode).
        ho.images = dfd::render_report_images(so, *model, dfd::most_suspicious(report, opt.html_crops));
      }
      ho.generator = std::string("deepfake-scan ") + DFD_VERSION;
      html = dfd::render_html_report(report, ho);
    }
  } catch (const dfd::ScanError& e) {
    bar.finish();
    std::fprintf(stderr, "deepfake-scan: %s\n", one_line(scan_error_text(opt.input, e.what())).c_str());
    return dfd::exit_code_for(e);
  } catch (const std::exception& e) {
    bar.finish();
    fail(scan_error_text(opt.input, e.what()));
  }

  const std::string json = report.to_json(2) + "\n";
  if (opt.json == "-") {
    std::fwrite(json.data(), 1, json.size(), stdout);
    std::fflush(stdout);
  } else {
    write_file(opt.json, json);
  }
  if (!opt.html.empty()) write_file(opt.html, html);
  if (!opt.quiet) {
    for (const auto& w : warnings) std::fprintf(stderr, "deepfake-scan: warning: %s\n", one_line(w).c_str());
    std::fprintf(stderr, "%s %.4f %s (%zu face track%s, %llu windows, %llu frames, %.1f s)%s\n", report.verdict.c_str(),
                 report.fake_probability, opt.input.c_str(), report.tracks.size(), report.tracks.size() == 1 ? "" : "s",
                 (unsigned long long)report.stats.windows_analysed, (unsigned long long)report.stats.frames,
                 report.stats.elapsed_s, report.model.trained ? "" : " [UNTRAINED model: meaningless]");
  }
  return dfd::exit_code_for(report);
}
