#include "element_options.h"

#include <gst/gst.h>

namespace dfd {

const std::map<std::string, std::string>& element_option_flags() {
  static const std::map<std::string, std::string> flags = {
      {"--face-detector", "face-detector"}, {"--face-detector-model", "face-detector-model"},
      {"--head", "head"}, {"--window-size", "window-size"}, {"--window-stride", "window-stride"},
      {"--interval", "interval"}, {"--detect-interval", "detect-interval"}, {"--min-face-size", "min-face-size"},
      {"--max-faces", "max-faces"}, {"--crop-margin", "crop-margin"}, {"--threshold", "threshold"},
      {"--aggregation", "aggregation"}, {"--device", "device"}, {"--precision", "precision"},
      {"--num-threads", "num-threads"}};
  return flags;
}

const char* element_options_usage() {
  return "  --face-detector KIND     yunet (default, the shipped model), haar, lbp or none (the whole frame is the face)\n"
         "  --face-detector-model P  cascade XML or YuNet ONNX file (default: the kind's own)\n"
         "  --head MODE              auto (model card, default), reference or temporal\n"
         "  --window-size N          crops per window (default: the model card's)\n"
         "  --window-stride N        new window every N crops (default 0 = window size)\n"
         "  --interval N             analyse every Nth frame (default 1)\n"
         "  --detect-interval N      run the face detector every N frames (default 5; tracking between)\n"
         "  --min-face-size N        pixels (default 40)\n"
         "  --max-faces N            per frame (default 8)\n"
         "  --crop-margin X          box growth before cropping (default: the model's)\n"
         "  --threshold X            FAKE above it (default: the model card's)\n"
         "  --aggregation A          last, mean (default), max or ema\n"
         "  --device D               cpu (default) or cuda\n"
         "  --precision P            fp32 (default); int8 (quantized at load on calibration faces);\n"
         "                           bf16 (ResNeXt on CPUs with AVX512_BF16)\n"
         "  --num-threads N          inference threads (oneDNN/OpenMP, OpenCV dnn or LibTorch;\n"
         "                           default: the library's, i.e. the CPUs)\n";
}

namespace {
// RAII for the probe element and GValues.
struct ElementRef {
  GstElement* e;
  ~ElementRef() {
    if (e) gst_object_unref(e);
  }
};
struct Value {
  GValue v = G_VALUE_INIT;
  explicit Value(GType t) { g_value_init(&v, t); }
  ~Value() { g_value_unset(&v); }
};
}  // namespace

namespace {
// Stores a property value (already validated) into the ScanOptions field it maps to.
void store(const std::string& k, const std::string& text, const GValue* val, GParamSpec* ps, ScanOptions& so) {
  static const std::map<std::string, std::string ScanOptions::*> strings = {
      {"face-detector", &ScanOptions::face_detector},
      {"face-detector-model", &ScanOptions::face_detector_model},
      {"head", &ScanOptions::head},
      {"aggregation", &ScanOptions::aggregation},
      {"device", &ScanOptions::device},
      {"precision", &ScanOptions::precision}};
  static const std::map<std::string, int ScanOptions::*> ints = {
      {"window-size", &ScanOptions::window_size},     {"window-stride", &ScanOptions::window_stride},
      {"interval", &ScanOptions::interval},           {"detect-interval", &ScanOptions::detect_interval},
      {"min-face-size", &ScanOptions::min_face_size}, {"max-faces", &ScanOptions::max_faces},
      {"num-threads", &ScanOptions::num_threads}};
  static const std::map<std::string, double ScanOptions::*> doubles = {
      {"crop-margin", &ScanOptions::crop_margin}, {"threshold", &ScanOptions::threshold}};
  if (strings.count(k)) {
    if (G_IS_PARAM_SPEC_ENUM(ps)) {
      const GEnumValue* ev = g_enum_get_value(G_PARAM_SPEC_ENUM(ps)->enum_class, g_value_get_enum(val));
      if (!ev) throw ElementOptionError("bad value '" + text + "' for --" + k);
      so.*strings.at(k) = ev->value_nick;
    } else {
      const gchar* s = g_value_get_string(val);
      so.*strings.at(k) = s ? s : "";
    }
  } else if (ints.count(k) && G_VALUE_HOLDS_INT(val)) {
    so.*ints.at(k) = g_value_get_int(val);
  } else if (doubles.count(k) && G_VALUE_HOLDS_DOUBLE(val)) {
    so.*doubles.at(k) = g_value_get_double(val);
  } else {
    throw std::runtime_error("--" + k + " is not supported by the scan runner");
  }
}
}  // namespace

void apply_element_options(const std::map<std::string, std::string>& props, ScanOptions& so) {
  ElementRef detect{gst_element_factory_make("deepfakedetect", nullptr)};
  if (!detect.e) {
    if (props.empty()) return;  // nothing asked; the scan itself reports the missing element
    throw std::runtime_error("the deepfakedetect element is not available (set GST_PLUGIN_PATH to the folder of libgstdeepfakedetect.so)");
  }
  gst_object_ref_sink(detect.e);
  GObjectClass* klass = G_OBJECT_GET_CLASS(detect.e);
  // The element's defaults first, for every option not given: ScanOptions'
  // own initial values are older and the element decides (face-detector
  // yunet, detect-interval 5 since 0.2).
  for (const auto& [flag, k] : element_option_flags()) {
    if (props.count(k)) continue;
    GParamSpec* ps = g_object_class_find_property(klass, k.c_str());
    if (!ps) continue;
    store(k, "(default)", g_param_spec_get_default_value(ps), ps, so);
  }
  for (const auto& [k, v] : props) {
    GParamSpec* ps = g_object_class_find_property(klass, k.c_str());
    if (!ps) throw std::runtime_error("the element has no property " + k);
    Value val(ps->value_type);
    if (!gst_value_deserialize(&val.v, v.c_str())) throw ElementOptionError("bad value '" + v + "' for --" + k);
    Value checked(ps->value_type);
    g_value_copy(&val.v, &checked.v);
    if (g_param_value_validate(ps, &checked.v)) throw ElementOptionError("value '" + v + "' out of range for --" + k);
    store(k, v, &val.v, ps, so);
  }
}

bool split_flag_value(std::string& arg, std::string& value) {
  const auto eq = arg.find('=');
  if (arg.rfind("--", 0) != 0 || eq == std::string::npos) return false;
  value = arg.substr(eq + 1);
  arg = arg.substr(0, eq);
  return true;
}

}  // namespace dfd
