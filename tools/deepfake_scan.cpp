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
// Many inputs (several files, directories, globs, or any of --output-dir,
// --summary, --jobs, --resume): the many-file mode of tools/scan_batch/
// (docs/scan.md): the model loaded once, --jobs scans at once, one report
// per input, a summary, and exit 0 / 10 (FAKE found) / 1 (an input failed)
// / 12 (both).
// Linked with export_dynamic: the plugin binds to this program's copy of the
// dfd library, so the model loaded here (for the report's checksum, the
// heatmaps and to fail early) is the very instance the element uses.
#include <gst/gst.h>

#include <glib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
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
#include "fleet/fleet_submit.h"
#include "scan_batch/batch_progress.h"
#include "scan_batch/batch_run.h"
#include "scan_runner.h"

namespace {

using dfd::kExitError;
using dfd::kExitUsage;

const char* kUsageHead =
    "usage: deepfake-scan [OPTIONS] FILE\n"
    "       deepfake-scan [OPTIONS] [--output-dir DIR] [--summary FILE] INPUT...\n"
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
    "  --timeout S              give up (exit 1) after S seconds (default 0 = no limit); with\n"
    "                           many files, per file (that file fails, the others go on)\n"
    "  --max-pixels N           refuse (exit 1) pictures and video frames larger than N pixels\n"
    "                           (width x height), from their declared size, before decoding\n"
    "                           (default 40000000 = 40 megapixels; 0 = no limit)\n"
    "  -q, --quiet              no progress bar and no verdict line on stderr\n"
    "Many files (several INPUTs, a directory, a glob, or any of the options below):\n"
    "  INPUT                    a file, a directory (walked recursively for video and picture\n"
    "                           extensions), a quoted glob pattern, or a file:// URI\n"
    "  --output-dir DIR         one JSON report per input there, named BASENAME-HASH.json\n"
    "                           (HASH: of the file's absolute path); written whole or not at all\n"
    "  --html-reports           also BASENAME-HASH.html per input (needs --output-dir)\n"
    "  --summary FILE           one row per input: FILE.csv (CSV) or FILE.jsonl (JSON Lines)\n"
    "  --jobs N                 scans at once (default: the CPUs, at most 4); --num-threads is\n"
    "                           then the inference threads of all of them together (default: the\n"
    "                           CPUs), split between the scans\n"
    "  --resume                 skip inputs whose report is already in --output-dir\n"
    "  A table of the results goes to stdout; progress to stderr (one line redrawn on a\n"
    "  terminal, a line per file otherwise). A bad file is a FAILED row; the others go on.\n"
    "Many machines (docs/fleet.md):\n"
    "  --redis URL --submit INPUT...  queue the inputs (as file:// URIs of their absolute paths)\n"
    "                           for deepfake-worker processes; prints JOB_ID<TAB>INPUT per input\n"
    "  --wait                   with --submit: wait for the results, print the table and exit\n"
    "                           as a many-file scan (a dead-lettered job is a failed input)\n"
    "  --wait-timeout S         give up waiting after S seconds: unfinished jobs are failed rows\n"
    "                           (they stay queued; default 0 = wait as long as it takes)\n"
    "  --prefix P               the queue's key prefix (default dfd)\n"
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
    "  2   bad command line\n"
    "Exit status with many files:\n"
    "  0   every input scanned, none FAKE (REAL or NO_FACE)\n"
    "  10  at least one FAKE, every input scanned\n"
    "  1   at least one input failed, none FAKE\n"
    "  12  at least one FAKE and at least one failed\n"
    "  130 interrupted (SIGINT or SIGTERM): the summary lists what was done\n";

std::string usage() { return std::string(kUsageHead) + dfd::element_options_usage() + kUsageTail; }

struct Options {
  std::string input, json = "-", html, model;
  std::vector<std::string> inputs;  // every non-option argument
  std::string output_dir, summary;
  bool html_reports = false, resume = false, json_given = false;
  int jobs = 0;  // 0: not given
  int html_crops = 3;
  double timeout_s = 0;
  uint64_t max_pixels = dfd::kDefaultMaxPixels;
  std::map<std::string, std::string> props;  // element properties, validated by the element's ranges
  bool quiet = false;
  dfd::fleet::SubmitOptions fleet;  // --redis URL --submit [--wait]
  bool submit = false;
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

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() > tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool parse_number(const std::string& s, double* out) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || !end || *end) return false;
  *out = v;
  return true;
}

// The many-file mode: more than one input, one that is a directory or an
// unmatched-as-a-name glob, or an option that only it has.
bool many_files(const Options& o) {
  if (o.inputs.size() > 1 || !o.output_dir.empty() || !o.summary.empty() || o.jobs > 0 || o.resume || o.html_reports)
    return true;
  std::string in = o.inputs.front();
  if (in.rfind("file://", 0) == 0) {
    gchar* p = g_filename_from_uri(in.c_str(), nullptr, nullptr);
    in = p ? p : "";
    g_free(p);
  }
  if (g_file_test(in.c_str(), G_FILE_TEST_IS_DIR)) return true;
  return !g_file_test(in.c_str(), G_FILE_TEST_EXISTS) && in.find_first_of("*?[") != std::string::npos;
}

Options parse_args(int argc, char** argv) {
  Options o;
  const auto& prop_of = dfd::element_option_flags();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], value;
    const bool has_eq = dfd::split_flag_value(a, value);
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
      o.json_given = true;
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
    } else if (a == "--output-dir") {
      o.output_dir = next();
      if (o.output_dir.empty()) usage_error("--output-dir needs a directory");
    } else if (a == "--html-reports") {
      o.html_reports = true;
    } else if (a == "--summary") {
      o.summary = next();
      if (!ends_with(o.summary, ".csv") && !ends_with(o.summary, ".jsonl"))
        usage_error("--summary needs a file name ending in .csv or .jsonl, not '" + o.summary + "'");
    } else if (a == "--jobs") {
      const std::string v = next();
      double n = 0;
      if (!parse_number(v, &n) || n < 1 || n > 256 || n != double(int(n)))
        usage_error("bad value '" + v + "' for --jobs (1 to 256)");
      o.jobs = int(n);
    } else if (a == "--resume") {
      o.resume = true;
    } else if (a == "--redis") {
      o.fleet.redis_url = next();
    } else if (a == "--submit") {
      o.submit = true;
    } else if (a == "--wait") {
      o.fleet.wait = true;
    } else if (a == "--wait-timeout") {
      const std::string v = next();
      if (!parse_number(v, &o.fleet.wait_timeout_s) || o.fleet.wait_timeout_s < 0)
        usage_error("bad value '" + v + "' for --wait-timeout");
    } else if (a == "--prefix") {
      o.fleet.prefix = next();
    } else if (prop_of.count(a)) {
      o.props[prop_of.at(a)] = next();
    } else if (a.rfind("-", 0) == 0 && a != "-") {
      usage_error("unknown option " + a);
    } else {
      o.inputs.push_back(a);
    }
  }
  if (o.inputs.empty()) usage_error("no input file");
  if (o.submit != !o.fleet.redis_url.empty()) usage_error("--redis URL and --submit go together");
  if (o.fleet.wait && !o.submit) usage_error("--wait needs --redis URL --submit");
  if (o.submit && (!o.model.empty() || !o.props.empty()))
    usage_error("with --submit the workers' model and settings apply: give them to deepfake-worker");
  o.input = o.inputs.front();
  if (many_files(o)) {
    if (o.json_given) usage_error("--json names one report: with many files use --output-dir");
    if (!o.html.empty()) usage_error("--html names one report: with many files use --output-dir and --html-reports");
    if (o.html_reports && o.output_dir.empty()) usage_error("--html-reports needs --output-dir");
    if (o.resume && o.output_dir.empty()) usage_error("--resume needs --output-dir (where the reports are)");
  }
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

// The element options, checked against the element, and the model path
// (the shipped default named explicitly, so that the element shares the
// instance this program loads). Exits on error.
dfd::ScanOptions base_options(const Options& opt) {
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
  return so;
}

// Loads the model once (an ensemble: each element loads its members). Exits on error.
std::shared_ptr<const dfd::Detector> load_model(const dfd::ScanOptions& so) {
  std::shared_ptr<const dfd::Detector> model;
  const dfd::ModelOptions mopts = dfd::model_options_of(so);
  try {
    if (so.model.find(',') == std::string::npos) model = dfd::load_detector_shared(so.model, mopts);
  } catch (const std::exception& e) {
    fail("cannot load model " + so.model + ": " + e.what());
  }
  return model;
}

int scan_one(const Options& opt) {
  const dfd::ScanOptions so = base_options(opt);
  const std::shared_ptr<const dfd::Detector> model = load_model(so);

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
    // A full disk or a closed pipe must fail the run, not lose the report.
    const bool written = std::fwrite(json.data(), 1, json.size(), stdout) == json.size();
    if (std::fflush(stdout) != 0 || !written || std::ferror(stdout))
      fail(std::string("cannot write the report to standard output: ") + std::strerror(errno));
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

std::atomic<bool> g_interrupted{false};
void on_interrupt(int) { g_interrupted.store(true); }

// SIGINT/SIGTERM stop the running scans and start no more (the summary is
// still written); a second one ends the program at once.
void catch_interrupts() {
  struct sigaction sa = {};
  sa.sa_handler = on_interrupt;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int scan_many(const Options& opt) {
  dfd::ScanOptions so = base_options(opt);
  const int cpus = std::max(1, int(g_get_num_processors()));
  dfd::BatchOptions bo;
  bo.jobs = opt.jobs > 0 ? opt.jobs : std::min(cpus, 4);
  std::vector<std::string> notes, warnings;
  const std::vector<dfd::BatchInput> inputs = dfd::expand_inputs(opt.inputs, &notes);
  // One LibTorch thread budget for the run: each scan's streaming thread gets
  // its own OpenMP team of num_threads, so the budget is divided between the
  // scans that can run at once.
  const int running = int(std::max<size_t>(1, std::min(size_t(bo.jobs), inputs.size())));
  so.num_threads = dfd::threads_per_scan(so.num_threads > 0 ? so.num_threads : cpus, running);
  const std::shared_ptr<const dfd::Detector> model = load_model(so);
  bo.scan = so;
  bo.output_dir = opt.output_dir;
  bo.html = opt.html_reports;
  bo.html_crops = opt.html_crops;
  bo.resume = opt.resume;
  bo.cancel = &g_interrupted;
  if (!opt.quiet)
    for (const auto& n : notes) std::fprintf(stderr, "deepfake-scan: %s\n", one_line(n).c_str());
  dfd::BatchProgress progress(stderr, inputs.size(), isatty(fileno(stderr)), opt.quiet);
  dfd::BatchObserver observer;
  observer.started = [&](size_t) { progress.started(); };
  observer.finished = [&](size_t, const dfd::BatchRow& row) { progress.finished(row); };
  catch_interrupts();
  std::vector<dfd::BatchRow> rows;
  try {
    rows = dfd::run_batch(inputs, bo, model.get(), observer, &warnings);
  } catch (const std::exception& e) {
    fail(e.what());
  }
  progress.finish();
  const std::string table = dfd::summary_table(rows);
  std::fwrite(table.data(), 1, table.size(), stdout);
  std::fflush(stdout);
  if (!opt.summary.empty()) {
    try {
      dfd::write_file_atomically(opt.summary, ends_with(opt.summary, ".csv") ? dfd::summary_csv(rows)
                                                                              : dfd::summary_jsonl(rows));
    } catch (const std::exception& e) {
      fail(e.what());
    }
  }
  if (!opt.quiet)
    for (const auto& w : warnings) std::fprintf(stderr, "deepfake-scan: warning: %s\n", one_line(w).c_str());
  if (g_interrupted.load()) return 130;
  return dfd::batch_exit_code(rows);
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse_args(argc, argv);
  opt.fleet.quiet = opt.quiet;
  if (opt.submit) return dfd::fleet::submit_inputs(opt.inputs, opt.fleet, stdout, stderr);
  return many_files(opt) ? scan_many(opt) : scan_one(opt);
}
