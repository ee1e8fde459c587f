// deepfake-monitor: many sources in one process, each a pipeline with
// deepfakedetect and deepfakemetapublish, restarted with backoff when it
// fails, with a REST API and Prometheus metrics. See docs/monitor.md.
//
//   deepfake-monitor --config FILE.json [--bind ADDR] [--port N] [--plugin-path DIR]
//
// Prints "listening on http://ADDR:PORT" on stdout once it accepts requests.
// Exit status: 0 after SIGINT/SIGTERM, 1 when the config is refused or it
// cannot start, 2 on a bad command line.
#include <gst/gst.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "dfd_config.h"
#include "monitor.h"

namespace {

const char* kUsage =
    "usage: deepfake-monitor --config FILE.json [--bind ADDR] [--port N] [--plugin-path DIR]\n"
    "  --config FILE     sources, element settings, reconnect policy (docs/monitor.md)\n"
    "  --bind ADDR       IP address for the REST API (overrides listen.bind; default 127.0.0.1)\n"
    "  --port N          TCP port (overrides listen.port; default 8090; 0 = any free port)\n"
    "  --plugin-path DIR directory holding the deepfakedetect plugin (else GST_PLUGIN_PATH,\n"
    "                    the installed plugins, then the build tree's)\n"
    "  --version, --help\n";

bool read_file(const std::string& path, std::string& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream s;
  s << f.rdbuf();
  out = s.str();
  return !f.bad();
}

bool to_port(const std::string& v, int& port) {
  char* end = nullptr;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end || x < 0 || x > 65535) return false;
  port = int(x);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path, bind, plugin_dir;
  int port = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--version") {
      std::printf("deepfake-monitor %s\n", DFD_VERSION);
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "deepfake-monitor: %s needs a value\n%s", a.c_str(), kUsage);
      return 2;
    }
    const std::string v = argv[++i];
    if (a == "--config") config_path = v;
    else if (a == "--bind") bind = v;
    else if (a == "--plugin-path") plugin_dir = v;
    else if (a == "--port") {
      if (!to_port(v, port)) {
        std::fprintf(stderr, "deepfake-monitor: --port must be 0 to 65535, got '%s'\n", v.c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr, "deepfake-monitor: unknown option %s\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "deepfake-monitor: --config is required\n%s", kUsage);
    return 2;
  }
  std::string text;
  if (!read_file(config_path, text)) {
    std::fprintf(stderr, "deepfake-monitor: cannot read %s\n", config_path.c_str());
    return 1;
  }
  dfd::monitor::MonitorConfig config;
  try {
    config = dfd::monitor::parse_monitor_config(text);
  } catch (const dfd::monitor::ConfigError& e) {
    std::fprintf(stderr, "deepfake-monitor: %s: %s\n", config_path.c_str(), e.what());
    return 1;
  }
  if (!bind.empty()) config.bind = bind;
  if (port >= 0) config.port = port;

  gst_init(nullptr, nullptr);
  if (!plugin_dir.empty()) gst_registry_scan_path(gst_registry_get(), plugin_dir.c_str());
  GstElementFactory* f = gst_element_factory_find("deepfakedetect");
  if (!f) {  // run from the build tree: the plugin beside the tools
    gst_registry_scan_path(gst_registry_get(), DFD_BUILD_PLUGIN_DIR);
    f = gst_element_factory_find("deepfakedetect");
  }
  if (!f) {
    std::fprintf(stderr, "deepfake-monitor: the deepfakedetect element is not installed: set GST_PLUGIN_PATH "
                         "to the build's gst/ directory or install the plugin\n");
    return 1;
  }
  gst_object_unref(f);

  try {
    dfd::monitor::Monitor monitor(std::move(config));
    monitor.start();
    monitor.listen();
    std::printf("listening on %s\n", monitor.url().c_str());
    std::fflush(stdout);
    monitor.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deepfake-monitor: %s: %s\n", config_path.c_str(), e.what());
    return 1;
  }
  return 0;
}
