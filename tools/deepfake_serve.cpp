// deepfake-serve: the HTTP service the original app talks to (POST
// /predict_media), a JSON/HTML analysis API and an upload page, on top of the
// deepfakedetect element. See docs/service.md.
//
//   deepfake-serve [--port N] [--bind ADDR] [--model PATH] [--max-upload-mb N]
//                  [--max-pixels N] [--max-concurrent N] [--timeout-s S]
//                  [--header-timeout-s S] [--body-timeout-s S]
//                  [--max-connections[-per-client] N] [element settings...]
//
// Prints "listening on http://ADDR:PORT" on stdout once it accepts requests.
// Exit status: 0 after SIGINT/SIGTERM, 1 when it cannot start, 2 on a bad
// command line.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>

#include "dfd_config.h"
#include "serve/history_api.h"
#include "serve/server.h"

namespace {

const char* kUsage =
    "usage: deepfake-serve [options]\n"
    "  --port N              TCP port (default 5000, the original API's; 0 = any free port)\n"
    "  --bind ADDR           IP address to listen on (default 127.0.0.1)\n"
    "  --model PATH          model file (Keras .h5 MesoNet, .safetensors or .pt); default: the\n"
    "                        shipped trained MesoNet (models/mesonet/Meso4_DF.h5). An untrained\n"
    "                        model (deepfake-model init) is announced in every response\n"
    "  --max-upload-mb N     upload size cap in MiB (default 16); beyond it 413, answered as\n"
    "                        soon as the headers say so\n"
    "  --max-pixels N        pictures and video frames larger than N pixels (width x height) are\n"
    "                        refused from their declared size, before decoding: 413 (default\n"
    "                        40000000 = 40 megapixels; 0 = no limit)\n"
    "  --max-concurrent N    analyses running at once; more get 503 (default 2)\n"
    "  --timeout-s S         time limit per request; beyond it 504 (default 120)\n"
    "  --preroll-timeout-s S a file none of whose frames decodes within S seconds is rejected\n"
    "                        as corrupt (422; default 10)\n"
    "  --header-timeout-s S  request line and headers must arrive within S seconds of the\n"
    "                        connection's start, else 408 and the connection is closed (default 10)\n"
    "  --body-timeout-s S    the request body must arrive within S seconds of the headers, else\n"
    "                        408 and the connection is closed (default 60)\n"
    "  --max-connections-per-client N\n"
    "                        open connections from one IP address; more are answered 503 and\n"
    "                        closed (default 16; behind a reverse proxy every client is the proxy)\n"
    "  --max-connections N   open connections in all (default 256)\n"
    "  --images N            suspicious crops with heatmaps per face track in /api/v1/analyze (default 3)\n"
    "  --window-size N --window-stride N --interval N --detect-interval N\n"
    "  --face-detector haar|yunet|none --face-detector-model PATH --min-face-size N --max-faces N\n"
    "  --threshold P --aggregation last|mean|max|ema --head auto|reference|temporal\n"
    "  --num-threads N --crop-margin F --precision fp32|bf16|int8 --device cpu|cuda\n"
    "                        deepfakedetect settings for every request (docs/element.md)\n"
    "  --plugin-path DIR     directory holding the deepfakedetect plugin (else GST_PLUGIN_PATH)\n"
    "  --redis URL           also a fleet front end (docs/fleet.md): POST /api/v1/jobs queues an\n"
    "                        upload or a URI for deepfake-worker processes (202 + job id), GET\n"
    "                        /api/v1/jobs/ID answers its state and report; 503 while Redis is away\n"
    "  --history URL         the result history: a path or sqlite:PATH (SQLite), postgresql://... or\n"
    "                        postgres://... (PostgreSQL), or none; default: $DFD_HISTORY, else\n"
    "                        SQLite in DATA-DIR/history.db. Uploads already scanned with the same\n"
    "                        model are answered from it (GET/DELETE /api/v1/scans, docs/service.md)\n"
    "  --data-dir DIR        the service's data directory (default $XDG_DATA_HOME/deepfakedetect\n"
    "                        or ~/.local/share/deepfakedetect)\n"
    "  --version, --help\n";

struct Usage : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

int to_int(const std::string& k, const std::string& v) {
  try {
    size_t pos = 0;
    const long x = std::stol(v, &pos);
    if (pos != v.size()) throw std::invalid_argument(v);
    return int(x);
  } catch (const std::exception&) {
    throw Usage(k + " must be an integer, got '" + v + "'");
  }
}

double to_double(const std::string& k, const std::string& v) {
  try {
    size_t pos = 0;
    const double x = std::stod(v, &pos);
    if (pos != v.size()) throw std::invalid_argument(v);
    return x;
  } catch (const std::exception&) {
    throw Usage(k + " must be a number, got '" + v + "'");
  }
}

dfd::serve::ServerConfig parse(int argc, char** argv) {
  dfd::serve::ServerConfig c;
  c.scan.window_size = 0;  // the model card's: 20, the original API's sequence length, for published checkpoints
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i], v;
    if (k == "--help" || k == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (k == "--version") {
      std::printf("deepfake-serve %s\n", DFD_VERSION);
      std::exit(0);
    }
    if (k.rfind("--", 0) != 0) throw Usage("unexpected argument '" + k + "'");
    const auto eq = k.find('=');
    if (eq != std::string::npos) {
      v = k.substr(eq + 1);
      k = k.substr(0, eq);
    } else {
      if (i + 1 >= argc) throw Usage("option " + k + " needs a value");
      v = argv[++i];
    }
    if (k == "--port") c.port = to_int(k, v);
    else if (k == "--bind") c.bind = v;
    else if (k == "--model") c.model = v;
    else if (k == "--max-upload-mb") {
      const int mb = to_int(k, v);
      if (mb < 1 || mb > 4096) throw Usage("--max-upload-mb must be 1..4096");
      c.max_upload_bytes = size_t(mb) << 20;
    } else if (k == "--max-concurrent") c.max_concurrent = to_int(k, v);
    else if (k == "--timeout-s") c.timeout_s = to_double(k, v);
    else if (k == "--preroll-timeout-s") c.scan.preroll_timeout_s = to_double(k, v);
    else if (k == "--max-pixels") {
      const double px = to_double(k, v);
      if (px < 0 || px > 1e12 || px != double(uint64_t(px))) throw Usage("--max-pixels must be a whole number, 0 to 10^12");
      c.scan.max_pixels = uint64_t(px);
    } else if (k == "--header-timeout-s") c.header_timeout_s = to_double(k, v);
    else if (k == "--body-timeout-s") c.body_timeout_s = to_double(k, v);
    else if (k == "--max-connections-per-client") c.max_connections_per_client = to_int(k, v);
    else if (k == "--max-connections") c.max_connections = to_int(k, v);
    else if (k == "--images") c.images_per_track = to_int(k, v);
    else if (k == "--window-size") c.scan.window_size = to_int(k, v);
    else if (k == "--window-stride") c.scan.window_stride = to_int(k, v);
    else if (k == "--interval") c.scan.interval = to_int(k, v);
    else if (k == "--detect-interval") c.scan.detect_interval = to_int(k, v);
    else if (k == "--face-detector") c.scan.face_detector = v;
    else if (k == "--face-detector-model") c.scan.face_detector_model = v;
    else if (k == "--min-face-size") c.scan.min_face_size = to_int(k, v);
    else if (k == "--max-faces") c.scan.max_faces = to_int(k, v);
    else if (k == "--threshold") c.scan.threshold = to_double(k, v);
    else if (k == "--aggregation") c.scan.aggregation = v;
    else if (k == "--head") c.scan.head = v;
    else if (k == "--num-threads") c.scan.num_threads = to_int(k, v);
    else if (k == "--crop-margin") c.scan.crop_margin = to_double(k, v);
    else if (k == "--precision") c.scan.precision = v;
    else if (k == "--device") c.scan.device = v;
    else if (k == "--plugin-path") c.plugin_dir = v;
    else if (k == "--redis") c.redis_url = v;
    else if (k == "--history") {
      if (v.empty()) throw Usage("--history needs a URL, a path or none");
      c.history = v;
    } else if (k == "--data-dir") c.data_dir = v;
    else throw Usage("unknown option " + k);
  }
  if (c.max_concurrent < 1 || c.max_concurrent > 64) throw Usage("--max-concurrent must be 1..64");
  if (c.timeout_s <= 0) throw Usage("--timeout-s must be positive");
  if (c.header_timeout_s <= 0 || c.header_timeout_s > 3600) throw Usage("--header-timeout-s must be in (0, 3600]");
  if (c.body_timeout_s <= 0 || c.body_timeout_s > 86400) throw Usage("--body-timeout-s must be in (0, 86400]");
  if (c.max_connections < 1 || c.max_connections > 65536) throw Usage("--max-connections must be 1..65536");
  if (c.max_connections_per_client < 1 || c.max_connections_per_client > c.max_connections)
    throw Usage("--max-connections-per-client must be 1..--max-connections");
  if (c.images_per_track < 0 || c.images_per_track > 32) throw Usage("--images must be 0..32");
  if (c.scan.window_size < 0) throw Usage("--window-size must be at least 1 (0: the model card's)");
  if (c.scan.threshold > 1 || (c.scan.threshold < 0 && c.scan.threshold != -1)) throw Usage("--threshold must be in [0, 1]");
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  dfd::serve::ServerConfig config;
  try {
    config = parse(argc, argv);
  } catch (const Usage& e) {
    std::fprintf(stderr, "deepfake-serve: %s\n%s", e.what(), kUsage);
    return 2;
  }
  try {
    config.history = dfd::serve::resolve_history_url(config.history, config.data_dir);
    dfd::serve::Server server(config);
    server.listen();
    std::fprintf(stderr, "deepfake-serve: %s\n", server.model_summary().c_str());
    std::printf("listening on %s\n", server.url().c_str());
    std::fflush(stdout);
    server.run();
    std::fprintf(stderr, "deepfake-serve: stopping\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deepfake-serve: %s\n", e.what());
    return 1;
  }
  return 0;
}
