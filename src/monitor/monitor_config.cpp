#include "monitor/monitor_config.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <set>
#include <vector>

namespace dfd::monitor {

using nlohmann::json;

namespace {

constexpr size_t kMaxTextBytes = 1u << 20;  // a config or a body larger than this is not one
constexpr size_t kMaxSources = 1024;

enum class Kind { Integer, Number, Boolean, String };

// deepfakedetect's writable settings (docs/element.md). post-messages is left
// out: the monitor's figures come from those messages.
const std::map<std::string, Kind>& detect_kinds() {
  static const std::map<std::string, Kind> k = {
      {"model", Kind::String},           {"ensemble-rule", Kind::String},
      {"min-track-length", Kind::Integer}, {"head", Kind::String},
      {"window-size", Kind::Integer},    {"window-stride", Kind::Integer},
      {"interval", Kind::Integer},       {"detect-interval", Kind::Integer},
      {"face-detector", Kind::String},   {"face-detector-model", Kind::String},
      {"align", Kind::Boolean},          {"retain-memory", Kind::Boolean},
      {"min-face-size", Kind::Integer},  {"max-faces", Kind::Integer},
      {"track-expiry", Kind::Integer},   {"crop-margin", Kind::Number},
      {"threshold", Kind::Number},       {"aggregation", Kind::String},
      {"precision", Kind::String},       {"device", Kind::String},
      {"num-threads", Kind::Integer},    {"max-queued-windows", Kind::Integer},
      {"sync", Kind::String},            {"overlay", Kind::Boolean},
      {"frame-messages", Kind::Boolean}, {"model-instance-id", Kind::String},
      {"batch-size", Kind::Integer},     {"max-batch-latency", Kind::Integer},
  };
  return k;
}

// deepfakemetapublish's settings (docs/publish.md). "source" defaults to the
// source's URI.
const std::map<std::string, Kind>& publish_kinds() {
  static const std::map<std::string, Kind> k = {
      {"method", Kind::String},        {"file-path", Kind::String},
      {"file-format", Kind::String},   {"address", Kind::String},
      {"topic", Kind::String},         {"mqtt-client-id", Kind::String},
      {"username", Kind::String},      {"password", Kind::String},
      {"ca-file", Kind::String},       {"cert-file", Kind::String},
      {"key-file", Kind::String},      {"max-reconnect-interval", Kind::Integer},
      {"max-buffered", Kind::Integer}, {"flush-timeout", Kind::Integer},
      {"source", Kind::String},        {"add-empty-results", Kind::Boolean},
      {"file-append", Kind::Boolean},
  };
  return k;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Integer: return "an integer";
    case Kind::Number: return "a number";
    case Kind::Boolean: return "a boolean";
    case Kind::String: return "a string";
  }
  return "?";
}

[[noreturn]] void fail(const std::string& field, const std::string& what) {
  throw ConfigError(field + ": " + what);
}

std::string type_of(const json& v) { return v.type_name(); }

void expect(const json& v, json::value_t t, const char* want, const std::string& field) {
  if (v.type() == t) return;
  // Unsigned and signed integers are both "an integer".
  if (t == json::value_t::number_integer && v.is_number_unsigned()) return;
  fail(field, std::string("expected ") + want + ", got " + type_of(v));
}

json parse_text(const std::string& text, const std::string& what) {
  if (text.size() > kMaxTextBytes)
    throw ConfigError(what + ": larger than " + std::to_string(kMaxTextBytes) + " bytes");
  // nlohmann keeps the last of two equal keys silently; a config that says
  // "port" twice is refused instead (one set of keys per open object).
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  const json::parser_callback_t check_duplicates = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) open_objects.emplace_back();
    else if (event == json::parse_event_t::object_end && !open_objects.empty()) open_objects.pop_back();
    else if (event == json::parse_event_t::key && !open_objects.empty() && duplicate.empty() &&
             !open_objects.back().insert(parsed.get<std::string>()).second)
      duplicate = parsed.get<std::string>();
    return true;
  };
  try {
    json j = json::parse(text, check_duplicates);
    if (!duplicate.empty()) throw ConfigError(what + ": the key '" + duplicate + "' appears twice in one object");
    return j;
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers like 1e400
    throw ConfigError(what + ": not JSON: " + e.what());
  }
}

void check_keys(const json& obj, const std::set<std::string>& allowed, const std::string& prefix) {
  for (const auto& [key, value] : obj.items()) {
    (void)value;
    if (allowed.count(key)) continue;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    fail(prefix + key, "unknown key (allowed: " + list + ")");
  }
}

std::string value_text(const json& v, Kind kind, const std::string& field) {
  switch (kind) {
    case Kind::Integer:
      if (v.is_number_integer()) return v.dump();
      break;
    case Kind::Number:
      if (v.is_number() && std::isfinite(v.get<double>())) return v.dump();
      break;
    case Kind::Boolean:
      if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
      break;
    case Kind::String:
      if (v.is_string()) {
        const std::string s = v.get<std::string>();
        if (s.find('\0') != std::string::npos) fail(field, "contains a NUL character");
        return s;
      }
      break;
  }
  fail(field, std::string("expected ") + kind_name(kind) + ", got " + type_of(v));
}

ElementSettings parse_settings(const json& obj, const std::map<std::string, Kind>& kinds,
                               const std::string& field) {
  expect(obj, json::value_t::object, "an object", field);
  std::set<std::string> allowed;
  for (const auto& [name, kind] : kinds) allowed.insert(name);
  check_keys(obj, allowed, field + ".");
  ElementSettings out;
  for (const auto& [key, value] : obj.items()) out[key] = value_text(value, kinds.at(key), field + "." + key);
  return out;
}

double parse_seconds(const json& v, const std::string& field, double lo, double hi) {
  if (!v.is_number()) fail(field, "expected a number, got " + type_of(v));
  const double s = v.get<double>();
  if (!std::isfinite(s) || s < lo || s > hi)
    fail(field, "must be between " + json(lo).dump() + " and " + json(hi).dump() + " seconds");
  return s;
}

SourceConfig parse_source(const json& obj, const std::string& prefix, const ElementSettings& detect_defaults,
                          const ElementSettings& publish_defaults) {
  const std::string where = prefix.empty() ? "source" : prefix.substr(0, prefix.size() - 1);
  expect(obj, json::value_t::object, "an object", where);
  check_keys(obj, {"id", "uri", "detect", "publish", "restart"}, prefix);
  SourceConfig s;
  if (!obj.contains("id")) fail(prefix + "id", "missing");
  expect(obj["id"], json::value_t::string, "a string", prefix + "id");
  s.id = obj["id"].get<std::string>();
  check_source_id(s.id, prefix + "id");
  if (!obj.contains("uri")) fail(prefix + "uri", "missing");
  expect(obj["uri"], json::value_t::string, "a string", prefix + "uri");
  s.uri = obj["uri"].get<std::string>();
  check_source_uri(s.uri, prefix + "uri");
  s.detect = detect_defaults;
  s.publish = publish_defaults;
  if (obj.contains("detect"))
    for (auto& [k, v] : parse_settings(obj["detect"], detect_kinds(), prefix + "detect")) s.detect[k] = v;
  if (obj.contains("publish"))
    for (auto& [k, v] : parse_settings(obj["publish"], publish_kinds(), prefix + "publish")) s.publish[k] = v;
  if (obj.contains("restart")) {
    const json& r = obj["restart"];
    expect(r, json::value_t::string, "a string", prefix + "restart");
    const std::string v = r.get<std::string>();
    if (v == "always") s.restart = RestartPolicy::Always;
    else if (v == "on-error") s.restart = RestartPolicy::OnError;
    else if (v == "never") s.restart = RestartPolicy::Never;
    else fail(prefix + "restart", "expected always, on-error or never, got '" + v + "'");
  }
  return s;
}

}  // namespace

const char* restart_policy_name(RestartPolicy p) {
  switch (p) {
    case RestartPolicy::Always: return "always";
    case RestartPolicy::OnError: return "on-error";
    case RestartPolicy::Never: return "never";
  }
  return "?";
}

void check_source_id(const std::string& id, const std::string& field) {
  if (id.empty() || id.size() > 64) fail(field, "must be 1 to 64 characters");
  for (unsigned char c : id)
    if (!(std::isalnum(c) || c == '_' || c == '-' || c == '.'))
      fail(field, "may hold only letters, digits, '_', '-' and '.'");
}

void check_source_uri(const std::string& uri, const std::string& field) {
  static const std::set<std::string> schemes = {"file", "http", "https", "rtsp", "rtsps", "rtspt", "rtspu", "v4l2"};
  const size_t colon = uri.find("://");
  if (colon == std::string::npos || colon == 0) fail(field, "not a URI (expected scheme://...): '" + uri + "'");
  std::string scheme = uri.substr(0, colon);
  for (auto& c : scheme) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (!schemes.count(scheme))
    fail(field, "unsupported scheme '" + scheme + "' (file, http, https, rtsp, rtsps, rtspt, rtspu, v4l2)");
  const std::string rest = uri.substr(colon + 3);
  for (unsigned char c : uri)
    if (c <= 0x20 || c == 0x7f) fail(field, "contains a space or control character (percent-encode it)");
  if (scheme == "file") {
    if (rest.empty() || rest[0] != '/') fail(field, "a file URI needs an absolute path (file:///path)");
  } else if (scheme == "v4l2") {
    if (rest.empty()) fail(field, "a v4l2 URI needs a device (v4l2:///dev/video0)");
  } else {
    const std::string host = rest.substr(0, rest.find_first_of("/?#"));
    if (host.empty() || host.back() == ':') fail(field, "needs a host (" + scheme + "://host[:port]/path)");
  }
}

std::vector<std::string> detect_setting_names() {
  std::vector<std::string> v;
  for (const auto& [k, kind] : detect_kinds()) v.push_back(k);
  return v;
}

std::vector<std::string> publish_setting_names() {
  std::vector<std::string> v;
  for (const auto& [k, kind] : publish_kinds()) v.push_back(k);
  return v;
}

SourceConfig parse_source_json(const std::string& text, const ElementSettings& detect_defaults,
                               const ElementSettings& publish_defaults) {
  return parse_source(parse_text(text, "body"), "", detect_defaults, publish_defaults);
}

MonitorConfig parse_monitor_config(const std::string& text) {
  const json root = parse_text(text, "config");
  expect(root, json::value_t::object, "an object", "config");
  check_keys(root, {"listen", "reconnect", "defaults", "sources"}, "");
  MonitorConfig c;
  if (root.contains("listen")) {
    const json& l = root["listen"];
    expect(l, json::value_t::object, "an object", "listen");
    check_keys(l, {"bind", "port"}, "listen.");
    if (l.contains("bind")) {
      expect(l["bind"], json::value_t::string, "a string", "listen.bind");
      c.bind = l["bind"].get<std::string>();
      if (c.bind.empty()) fail("listen.bind", "empty");
    }
    if (l.contains("port")) {
      expect(l["port"], json::value_t::number_integer, "an integer", "listen.port");
      if (!l["port"].is_number_integer() || l["port"].get<long long>() < 0 || l["port"].get<long long>() > 65535)
        fail("listen.port", "must be 0 to 65535");
      c.port = int(l["port"].get<long long>());
    }
  }
  if (root.contains("reconnect")) {
    const json& r = root["reconnect"];
    expect(r, json::value_t::object, "an object", "reconnect");
    check_keys(r, {"initial_s", "max_s", "stall_timeout_s"}, "reconnect.");
    if (r.contains("initial_s")) c.reconnect.initial_s = parse_seconds(r["initial_s"], "reconnect.initial_s", 0.01, 3600);
    if (r.contains("max_s")) c.reconnect.max_s = parse_seconds(r["max_s"], "reconnect.max_s", 0.01, 86400);
    if (r.contains("stall_timeout_s"))
      c.reconnect.stall_timeout_s = parse_seconds(r["stall_timeout_s"], "reconnect.stall_timeout_s", 0, 86400);
    if (c.reconnect.max_s < c.reconnect.initial_s) fail("reconnect.max_s", "is less than reconnect.initial_s");
  }
  if (root.contains("defaults")) {
    const json& d = root["defaults"];
    expect(d, json::value_t::object, "an object", "defaults");
    check_keys(d, {"detect", "publish"}, "defaults.");
    if (d.contains("detect")) c.detect_defaults = parse_settings(d["detect"], detect_kinds(), "defaults.detect");
    if (d.contains("publish")) c.publish_defaults = parse_settings(d["publish"], publish_kinds(), "defaults.publish");
  }
  if (root.contains("sources")) {
    const json& list = root["sources"];
    expect(list, json::value_t::array, "an array", "sources");
    if (list.size() > kMaxSources) fail("sources", "more than " + std::to_string(kMaxSources) + " sources");
    std::set<std::string> ids;
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string prefix = "sources[" + std::to_string(i) + "].";
      SourceConfig s = parse_source(list[i], prefix, c.detect_defaults, c.publish_defaults);
      if (!ids.insert(s.id).second) fail(prefix + "id", "duplicate id '" + s.id + "'");
      c.sources.push_back(std::move(s));
    }
  }
  return c;
}

}  // namespace dfd::monitor
