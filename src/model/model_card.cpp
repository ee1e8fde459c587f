#include "model/model_card.h"

#include <cfloat>
#include <climits>
#include <cmath>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>

namespace dfd {

const char* to_string(HeadMode m) { return m == HeadMode::Reference ? "reference" : "temporal"; }

HeadMode head_mode_from_string(const std::string& s) {
  if (s == "reference") return HeadMode::Reference;
  if (s == "temporal") return HeadMode::Temporal;
  throw std::invalid_argument("unknown head mode '" + s + "' (expected reference or temporal)");
}

std::string ModelCard::to_json() const {
  nlohmann::json j;
  j["format_version"] = format_version;
  j["name"] = name;
  j["architecture"] = architecture;
  j["head"] = to_string(head);
  j["input_size"] = input_size;
  j["channel_order"] = channel_order;
  j["mean"] = mean;
  j["std"] = std;
  j["class_names"] = class_names;
  j["window_size"] = window_size;
  j["threshold"] = threshold;
  j["trained"] = trained;
  j["training_data"] = training_data;
  j["provenance"] = provenance;
  if (!licence.empty()) j["licence"] = licence;
  j["metrics"] = nlohmann::json::parse(metrics_json.empty() ? "{}" : metrics_json);
  j["seed"] = seed;
  return j.dump(2);
}

namespace {
// Numbers from an untrusted card are range-checked before conversion:
// nlohmann converts with a plain cast, undefined for a value such as 3e49
// read into an integer or a float.
const nlohmann::json* field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}
[[noreturn]] void bad_field(const char* key, const char* what) {
  throw std::runtime_error(std::string("model card field '") + key + "' " + what);
}
int int_field(const nlohmann::json& j, const char* key, int fallback) {
  const auto* v = field(j, key);
  if (!v) return fallback;
  if (!v->is_number_integer()) bad_field(key, "must be an integer");
  if (v->is_number_unsigned() ? v->get<uint64_t>() > uint64_t(INT_MAX)
                              : v->get<int64_t>() < INT_MIN || v->get<int64_t>() > INT_MAX)
    bad_field(key, "is out of range");
  return int(v->get<int64_t>());
}
float float_value(const nlohmann::json& v, const char* key) {
  if (!v.is_number()) bad_field(key, "must be a number");
  const double d = v.get<double>();
  if (!std::isfinite(d) || std::fabs(d) > double(FLT_MAX)) bad_field(key, "is out of range");
  return float(d);
}
float float_field(const nlohmann::json& j, const char* key, float fallback) {
  const auto* v = field(j, key);
  return v ? float_value(*v, key) : fallback;
}
std::array<float, 3> triple_field(const nlohmann::json& j, const char* key, std::array<float, 3> fallback) {
  const auto* v = field(j, key);
  if (!v) return fallback;
  if (!v->is_array() || v->size() != 3) bad_field(key, "must hold three numbers");
  return {float_value((*v)[0], key), float_value((*v)[1], key), float_value((*v)[2], key)};
}
uint64_t seed_field(const nlohmann::json& j) {
  const auto* v = field(j, "seed");
  if (!v) return 0;
  if (!v->is_number_unsigned() && !(v->is_number_integer() && v->get<int64_t>() >= 0))
    bad_field("seed", "must be a non-negative integer");
  return v->get<uint64_t>();
}
}  // namespace

ModelCard ModelCard::from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("model card is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw std::runtime_error("model card is not a JSON object");
  ModelCard c;
  try {
    c.format_version = int_field(j, "format_version", 1);
    if (c.format_version != 1)
      throw std::runtime_error("unsupported model card format_version " + std::to_string(c.format_version));
    c.name = j.value("name", c.name);
    c.architecture = j.value("architecture", c.architecture);
    c.head = head_mode_from_string(j.value("head", std::string("reference")));
    c.input_size = int_field(j, "input_size", c.input_size);
    c.channel_order = j.value("channel_order", c.channel_order);
    c.mean = triple_field(j, "mean", c.mean);
    c.std = triple_field(j, "std", c.std);
    c.class_names = j.value("class_names", c.class_names);
    c.window_size = int_field(j, "window_size", c.window_size);
    c.threshold = float_field(j, "threshold", c.threshold);
    if (!j.contains("trained") || !j.at("trained").is_boolean())
      throw std::runtime_error("model card lacks the boolean field 'trained'");
    c.trained = j.at("trained").get<bool>();
    c.training_data = j.value("training_data", std::string());
    c.provenance = j.value("provenance", std::string());
    c.licence = j.value("licence", std::string());
    c.metrics_json = j.contains("metrics") ? j.at("metrics").dump() : "{}";
    c.seed = seed_field(j);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(std::string("model card has a field of the wrong type: ") + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("model card: ") + e.what());
  }
  if (!is_known_architecture(c.architecture))
    throw std::runtime_error("unsupported architecture '" + c.architecture + "'");
  if (c.input_size != expected_input_size(c.architecture))
    throw std::runtime_error("unsupported input_size " + std::to_string(c.input_size) + " for architecture '" +
                             c.architecture + "' (expected " + std::to_string(expected_input_size(c.architecture)) + ")");
  if (c.channel_order != "BGR" && c.channel_order != "RGB")
    throw std::runtime_error("channel_order must be BGR or RGB");
  if (c.class_names.size() != 2) throw std::runtime_error("class_names must name exactly two classes");
  if (c.window_size < 1) throw std::runtime_error("window_size must be >= 1");
  return c;
}

bool is_known_architecture(const std::string& a) { return expected_input_size(a) != 0; }

int expected_input_size(const std::string& a) {
  if (a == kResNeXtArchitecture) return 112;
  if (a == "meso4" || a == "mesoinception4") return 256;
  return 0;
}

ModelCard pytorch_checkpoint_card(const std::string& path) {
  const std::string base = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  ModelCard card;
  card.name = base;
  card.head = HeadMode::Reference;
  card.trained = true;
  card.training_data = "not recorded in the checkpoint";
  card.provenance = "PyTorch state_dict " + base;
  std::smatch m;
  if (std::regex_search(base, m, std::regex("_(\\d{1,4})_frames"))) card.window_size = std::max(1, std::stoi(m[1]));
  return card;
}

std::string ModelCard::trust_notice() const {
  if (!trained) return "UNTRAINED model (random weights): verdicts are meaningless";
  return "";
}

}  // namespace dfd
