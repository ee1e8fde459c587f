// deepfake-monitor's configuration: the sources, each one pipeline
// (uridecodebin ! videoconvert ! deepfakedetect ! deepfakemetapublish ! fakesink),
// the element settings, the reconnect policy and the REST address.
//
// Parsed strictly from JSON text (a config file, a POST /api/v1/sources body):
// an unknown key, a value of the wrong type, a duplicate id or a URI that is
// not one the monitor can play is a ConfigError naming the field, e.g.
// "sources[2].detect.window-size: expected an integer, got string". No
// GStreamer here: element settings are kept as the strings
// gst_util_set_object_arg takes, and their ranges and enum values are checked
// by the element's own property specs when the pipeline is built.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace dfd::monitor {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Element property name -> value as text ("5", "0.5", "true", "yunet").
using ElementSettings = std::map<std::string, std::string>;

enum class RestartPolicy { Always, OnError, Never };
const char* restart_policy_name(RestartPolicy p);

struct SourceConfig {
  std::string id;    // [A-Za-z0-9_.-]{1,64}: in URLs and metric labels
  std::string uri;   // file, http(s), rtsp(s/t/u) or v4l2
  ElementSettings detect;   // deepfakedetect, over the defaults
  ElementSettings publish;  // deepfakemetapublish, over the defaults
  RestartPolicy restart = RestartPolicy::Always;  // after an error / after the end of the stream
};

struct ReconnectPolicy {
  double initial_s = 1;         // first delay after an error or end
  double max_s = 30;            // delays double up to this
  double stall_timeout_s = 20;  // no frame for this long while playing counts as an error; 0 = off
};

struct MonitorConfig {
  std::string bind = "127.0.0.1";
  int port = 8090;
  ReconnectPolicy reconnect;
  ElementSettings detect_defaults;
  ElementSettings publish_defaults;
  std::vector<SourceConfig> sources;
};

// A whole config file. Throws ConfigError.
MonitorConfig parse_monitor_config(const std::string& text);

// One source, as a config's "sources" entry or a POST body; the defaults are
// merged under its own settings. Throws ConfigError (field names without a
// "sources[i]." prefix).
SourceConfig parse_source_json(const std::string& text, const ElementSettings& detect_defaults = {},
                               const ElementSettings& publish_defaults = {});

// Throws ConfigError naming `field` when the URI is not one the monitor plays.
void check_source_uri(const std::string& uri, const std::string& field);
// Throws ConfigError naming `field` when the id is not [A-Za-z0-9_.-]{1,64}.
void check_source_id(const std::string& id, const std::string& field);

// The deepfakedetect / deepfakemetapublish settings the config accepts.
std::vector<std::string> detect_setting_names();
std::vector<std::string> publish_setting_names();

}  // namespace dfd::monitor
