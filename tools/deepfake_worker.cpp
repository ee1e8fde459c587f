// deepfake-worker: one member of a scanning fleet (docs/fleet.md). Loads the
// model once, then takes jobs from a Redis stream (consumer group "workers"),
// scans each with the deepfakedetect element through the shared scan runner
// (the same path as deepfake-scan), stores the report in Redis and
// acknowledges; any number of workers on any number of machines share the queue.
//
//   deepfake-worker --redis redis://HOST:6379 [--model PATH] [element options]
//
// SIGTERM or SIGINT: the current job is finished and delivered, then the
// worker exits 0 (a second signal ends it at once; its job is then taken
// over by another worker after --claim-timeout). Redis away: the worker waits
// and reconnects (one line on stderr). Exit 1 when it cannot start (model,
// plugin), 2 on a bad command line.
// Linked with export_dynamic, like deepfake-scan: the element shares the
// model instance loaded here.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "dfd_config.h"
#include "element_options.h"
#include "fleet/worker_loop.h"
#include "model/family.h"
#include "scan_runner.h"
#include "fleet/worker_history.h"

namespace {

const char* kUsageHead =
    "usage: deepfake-worker --redis URL [OPTIONS]\n"
    "Takes scan jobs from a Redis stream, scans them and stores the reports (docs/fleet.md).\n"
    "  --redis URL              redis://[:PASSWORD@]HOST[:PORT][/DB] or unix:PATH (required)\n"
    "  --prefix P               key prefix of the queue (default dfd: stream dfd:jobs, ...)\n"
    "  --name NAME              this worker's consumer name (default HOST-PID)\n"
    "  --claim-timeout S        a job pending this long without a heartbeat belongs to a dead\n"
    "                           worker and is taken over (default 60)\n"
    "  --max-attempts N         claims of a job before it goes to the dead-letter stream (default 3)\n"
    "  --max-jobs N             exit after N jobs (default 0: run until SIGTERM)\n"
    "  --history URL            also record each result in the result history: a path or\n"
    "                           sqlite:PATH (SQLite), or postgresql://... (PostgreSQL)\n"
    "  --model PATH             model file(s), as deepfake-scan (default: the shipped MesoNet)\n"
    "  --timeout S              give up a scan after S seconds (default 0 = no limit)\n"
    "  --max-pixels N           refuse pictures and frames larger than N pixels (default 40000000)\n";
const char* kUsageTail =
    "  -q, --quiet              no line per job on stderr\n"
    "  -h, --help               this text\n";

struct Usage : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

double number(const std::string& flag, const std::string& v, double lo, double hi) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end || !(x >= lo && x <= hi))
    throw Usage("bad value '" + v + "' for " + flag + " (" + std::to_string(lo) + " to " + std::to_string(hi) + ")");
  return x;
}

struct Options {
  dfd::fleet::WorkerOptions worker;
  std::string model, history;
  double timeout_s = 0;
  uint64_t max_pixels = dfd::kDefaultMaxPixels;
  std::map<std::string, std::string> props;
};

Options parse(int argc, char** argv) {
  Options o;
  const auto& prop_of = dfd::element_option_flags();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], value;
    const bool has_eq = dfd::split_flag_value(a, value);
    auto next = [&]() -> std::string {
      if (has_eq) return value;
      if (i + 1 >= argc) throw Usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::printf("%s%s%s", kUsageHead, dfd::element_options_usage(), kUsageTail);
      std::exit(0);
    } else if (a == "--redis") o.worker.redis_url = next();
    else if (a == "--prefix") o.worker.queue.prefix = next();
    else if (a == "--name") o.worker.consumer = next();
    else if (a == "--claim-timeout") o.worker.queue.claim_timeout_ms = int64_t(number(a, next(), 0.05, 86400) * 1000);
    else if (a == "--max-attempts") o.worker.queue.max_attempts = int(number(a, next(), 1, 1000));
    else if (a == "--max-jobs") o.worker.max_jobs = int(number(a, next(), 0, 1e9));
    else if (a == "--history") o.history = next();
    else if (a == "--model") o.model = next();
    else if (a == "--timeout") o.timeout_s = number(a, next(), 0, 1e7);
    else if (a == "--max-pixels") o.max_pixels = uint64_t(number(a, next(), 0, 1e12));
    else if (a == "-q" || a == "--quiet") o.worker.quiet = true;
    else if (prop_of.count(a)) o.props[prop_of.at(a)] = next();
    else throw Usage("unknown argument " + a);
  }
  if (o.worker.redis_url.empty()) throw Usage("--redis URL is required");
  if (o.worker.queue.prefix.empty()) throw Usage("--prefix must not be empty");
  try {
    dfd::fleet::parse_redis_url(o.worker.redis_url);
  } catch (const std::exception& e) {
    throw Usage(e.what());
  }
  return o;
}

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    o = parse(argc, argv);
  } catch (const Usage& e) {
    std::fprintf(stderr, "deepfake-worker: %s\n%s%s%s", e.what(), kUsageHead, dfd::element_options_usage(), kUsageTail);
    return 2;
  }
  dfd::ScanOptions& so = o.worker.scan;
  so.model = o.model;
  so.timeout_s = o.timeout_s;
  so.max_pixels = o.max_pixels;
  so.frame_probabilities = true;
  std::shared_ptr<const dfd::Detector> model;
  std::unique_ptr<dfd::fleet::WorkerHistory> history;
  try {
    dfd::scan_init();
    try {
      dfd::apply_element_options(o.props, so);
    } catch (const dfd::ElementOptionError& e) {
      std::fprintf(stderr, "deepfake-worker: %s\n", e.what());
      return 2;
    }
    // The model, loaded once; every job's element gets this instance.
    if (so.model.empty()) so.model = dfd::find_default_model();
    if (so.model.empty()) throw std::runtime_error("no --model given and the default model is not installed");
    if (so.model.find(',') == std::string::npos) {
      model = dfd::load_detector_shared(so.model, dfd::model_options_of(so));
    }
    if (!o.history.empty()) {
      history = std::make_unique<dfd::fleet::WorkerHistory>(o.history);
      o.worker.on_result = [&history](const dfd::fleet::Claim& c, const dfd::Report& r, const std::string& json,
                                      const std::string& sha) { history->record(c, r, json, sha); };
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deepfake-worker: %s\n", e.what());
    return 1;
  }
  struct sigaction sa = {};
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  const std::string name = o.worker.consumer.empty() ? dfd::fleet::default_consumer_name() : o.worker.consumer;
  o.worker.consumer = name;
  if (!o.worker.quiet)
    std::fprintf(stderr, "deepfake-worker %s: %s on %s, model %s\n", DFD_VERSION, name.c_str(),
                 dfd::fleet::parse_redis_url(o.worker.redis_url).text().c_str(), so.model.c_str());
  const size_t n = dfd::fleet::run_worker(o.worker, model.get(), g_stop);
  if (!o.worker.quiet) std::fprintf(stderr, "deepfake-worker: stopping after %zu job%s\n", n, n == 1 ? "" : "s");
  return 0;
}
