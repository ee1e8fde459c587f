// libFuzzer target: deepfake-monitor's config file and its POST
// /api/v1/sources body (src/monitor/monitor_config.h). Either parses or
// throws ConfigError; nothing else may happen.
#include <cstddef>
#include <cstdint>
#include <string>

#include "monitor/monitor_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto config = dfd::monitor::parse_monitor_config(text);
    // Every source it accepted is a valid source: same id and URI rules.
    for (const auto& s : config.sources) {
      dfd::monitor::check_source_id(s.id, "id");
      dfd::monitor::check_source_uri(s.uri, "uri");
    }
  } catch (const dfd::monitor::ConfigError&) {
  }
  try {
    dfd::monitor::parse_source_json(text, {{"num-threads", "1"}}, {{"method", "file"}});
  } catch (const dfd::monitor::ConfigError&) {
  }
  return 0;
}
