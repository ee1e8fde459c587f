// deepfake-eval: how well does a model (or ensemble) tell real clips from
// deepfakes? Scans every clip of a labelled set through the deepfakedetect
// element (the shared scan runner, exactly as deepfake-scan does, with every
// face and element option), then reports per clip score and verdict and the
// video-level metrics: ROC AUC, EER, accuracy at the model's threshold,
// confusion matrix, log loss (src/report/eval_report.h).
//   deepfake-eval DATA [--model M] [--json PATH] [--html PATH] [element options]
// DATA: a folder with real/ and fake/ (videos and images, found recursively)
// or a CSV file of file,label rows. Exit 0 when every clip was scanned, 1 when
// any failed (they are listed and left out of the metrics), 2 bad command line.
#include <gst/gst.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "dfd_config.h"
#include "element_options.h"
#include "scan_model.h"
#include "report/eval_report.h"
#include "scan_runner.h"
#include "train/train_data.h"

namespace {

const char* kUsage =
    "usage: deepfake-eval [OPTIONS] DATA\n"
    "Scores every clip of a labelled set with the deepfakedetect element and reports\n"
    "video-level ROC AUC, EER, accuracy at the model's threshold, confusion matrix and\n"
    "log loss. DATA: a folder with real/ and fake/ (videos and images) or a CSV file of\n"
    "file,label rows (label REAL or FAKE).\n"
    "  --model PATH             model file (default: the element's default model)\n"
    "  --json PATH              write the evaluation as JSON (- for stdout)\n"
    "  --html PATH              write a page: ROC curve, metrics, clips ranked by score\n"
    "                           with their most suspicious crops\n"
    "  --html-crops N           crops per clip in the page (default 2)\n"
    "  --timeout S              per clip, seconds (default 0 = no limit)\n"
    "  -q, --quiet              no per-clip lines on stderr\n"
    "  -h, --help               this text\n";

struct Options {
  std::string data, model, json, html;
  int html_crops = 2;
  double timeout_s = 0;
  bool quiet = false;
  std::map<std::string, std::string> props;
};

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "deepfake-eval: %s\n%s%s", one_line(msg).c_str(), kUsage, dfd::element_options_usage());
  std::exit(dfd::kExitUsage);
}

[[noreturn]] void fail(const std::string& msg) {
  std::fprintf(stderr, "deepfake-eval: error: %s\n", one_line(msg).c_str());
  std::exit(dfd::kExitError);
}

Options parse_args(int argc, char** argv) {
  Options o;
  const auto& flags = dfd::element_option_flags();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], value;
    const bool has_eq = dfd::split_flag_value(a, value);
    auto next = [&]() -> std::string {
      if (has_eq) return value;
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::printf("%s%s", kUsage, dfd::element_options_usage());
      std::exit(0);
    } else if (a == "--model") {
      o.model = next();
    } else if (a == "--json") {
      o.json = next();
    } else if (a == "--html") {
      o.html = next();
    } else if (a == "--html-crops") {
      const std::string v = next();
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || n < 0 || n > 20) usage_error("bad value '" + v + "' for --html-crops (0 to 20)");
      o.html_crops = int(n);
    } else if (a == "--timeout") {
      const std::string v = next();
      char* end = nullptr;
      o.timeout_s = std::strtod(v.c_str(), &end);
      if (v.empty() || *end || o.timeout_s < 0) usage_error("bad value '" + v + "' for --timeout");
    } else if (a == "-q" || a == "--quiet") {
      o.quiet = true;
    } else if (flags.count(a)) {
      o.props[flags.at(a)] = next();
    } else if (a.rfind("-", 0) == 0) {
      usage_error("unknown option " + a);
    } else if (o.data.empty()) {
      o.data = a;
    } else {
      usage_error("more than one DATA argument");
    }
  }
  if (o.data.empty()) usage_error("no DATA (a folder with real/ and fake/, or a CSV file)");
  return o;
}

std::string options_line(const Options& o) {
  std::string s;
  for (const auto& [k, v] : o.props) s += (s.empty() ? "" : " ") + k + "=" + v;
  return s.empty() ? "element defaults" : s;
}

// Scans one clip; a failure is recorded on the clip, never thrown.
dfd::EvalClip evaluate_clip(const dfd::train::VideoItem& item, dfd::ScanOptions so, const Options& opt) {
  dfd::EvalClip c;
  c.path = item.path;
  c.id = item.id;
  c.fake = item.fake;
  so.input = item.path;
  so.source_name = item.id;
  try {
    const dfd::Report r = dfd::run_scan(so);
    c.verdict = r.verdict;
    c.score = r.verdict == "NO_FACE" ? 0.f : r.fake_probability;
    c.tracks = int(r.tracks.size());
    c.frames = r.stats.frames;
    c.elapsed_s = r.stats.elapsed_s;
    if (!opt.html.empty() && opt.html_crops > 0 && !r.tracks.empty()) c.crops = dfd::render_report_crops(so, r, opt.html_crops);
  } catch (const std::exception& e) {
    c.failed = true;
    c.error = one_line(e.what());
  }
  return c;
}

void write_text(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return;
  }
  std::ofstream out(path, std::ios::binary);
  if (!out || !out.write(text.data(), std::streamsize(text.size())) || !out.flush()) fail("cannot write " + path);
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_args(argc, argv);
  dfd::train::Dataset data;
  try {
    data = dfd::train::list_dataset(opt.data, /*include_images=*/true);
  } catch (const std::exception& e) {
    fail(e.what());
  }
  dfd::ScanOptions base;
  base.model = opt.model;
  base.timeout_s = opt.timeout_s;
  base.frame_probabilities = !opt.html.empty();
  try {
    dfd::scan_init();
    dfd::apply_element_options(opt.props, base);
  } catch (const dfd::ElementOptionError& e) {
    usage_error(e.what());
  } catch (const std::exception& e) {
    fail(e.what());
  }
  // Held for the whole run so that every scan shares one loaded model.
  std::shared_ptr<const void> held;
  dfd::EvalResult result;
  try {
    held = dfd::hold_scan_model(base, &result.model_card, &result.threshold);
  } catch (const std::exception& e) {
    fail("cannot load model " + (opt.model.empty() ? std::string("(default)") : opt.model) + ": " + e.what());
  }
  if (base.threshold >= 0) result.threshold = float(base.threshold);
  result.dataset = data.source;
  result.model = opt.model.empty() ? "(element default)" : opt.model;
  result.options = options_line(opt);
  const size_t n = data.items.size();
  for (size_t i = 0; i < n; ++i) {
    result.clips.push_back(evaluate_clip(data.items[i], base, opt));
    const auto& c = result.clips.back();
    if (!opt.quiet)
      std::fprintf(stderr, "[%zu/%zu] %s: %s %s\n", i + 1, n, c.id.c_str(), c.failed ? "FAILED" : c.verdict.c_str(),
                   c.failed ? c.error.c_str() : (std::to_string(c.score).substr(0, 5) + " (" + (c.fake ? "fake" : "real") + ")").c_str());
  }
  std::fputs(result.table().c_str(), stdout);
  if (!opt.json.empty()) write_text(opt.json, result.to_json() + "\n");
  if (!opt.html.empty()) write_text(opt.html, result.html());
  return result.failed() ? dfd::kExitError : 0;
}
