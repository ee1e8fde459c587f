// The model family: registry, loading by content, and the ResNeXt adapter.
// No LibTorch here: the families' networks live in model.cpp (ResNeXt, on
// LibTorch in libdfd-torch), mesonet_dnn.cpp (MesoNet on OpenCV's dnn, the
// default) and mesonet.cpp (MesoNet on LibTorch, in libdfd-torch).
#include "model/family.h"

#include <malloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_map>

#include "dfd_config.h"
#include "model/architecture.h"
#include "model/mesonet_calibration.h"
#include "model/mesonet_dnn.h"
#include "model/mesonet_layout.h"
#include "model/torch_module.h"

namespace dfd {

const char* to_string(ColourOrder c) { return c == ColourOrder::BGR ? "BGR" : "RGB"; }

cv::Mat Detector::activation_map(const cv::Mat&, int) const {
  throw std::logic_error(info().architecture + " has no class activation map");
}

std::vector<float> Detector::score_crops(const std::vector<cv::Mat>& crops) const {
  const auto feats = features(crops);
  std::vector<const Feature*> ptrs;
  for (const auto& f : feats) ptrs.push_back(&f);
  std::vector<float> out;
  for (const auto& p : classify_frames(ptrs)) out.push_back(p.prob_fake);
  return out;
}

std::vector<float> Detector::score_windows(const std::vector<std::vector<cv::Mat>>& windows) const {
  std::vector<cv::Mat> all;
  for (const auto& w : windows) all.insert(all.end(), w.begin(), w.end());
  const auto feats = features(all);
  std::vector<std::vector<const Feature*>> ptrs;
  size_t k = 0;
  for (const auto& w : windows) {
    ptrs.emplace_back();
    for (size_t i = 0; i < w.size(); ++i) ptrs.back().push_back(&feats[k++]);
  }
  std::vector<float> out;
  for (const auto& p : classify_windows(ptrs, card().head)) out.push_back(p.prob_fake);
  return out;
}

namespace {

// The existing ResNeXt50+LSTM Model behind the family interface.
class ResNeXtDetector final : public Detector {
 public:
  ResNeXtDetector(std::shared_ptr<const Model> m, const std::string& source)
      : m_(std::move(m)), source_(source.empty() ? m_->source() : source) {
    const ModelCard& c = m_->card();
    info_.architecture = c.architecture;
    info_.input_size = kInputSize;
    info_.colour_order = c.channel_order == "RGB" ? ColourOrder::RGB : ColourOrder::BGR;
    info_.normalisation = Normalisation{c.mean, c.std, c.channel_order == "RGB"};
    info_.crop_margin = 0.f;  // the reference crops the tight detector box
    info_.per_crop = c.head == HeadMode::Reference;
    info_.needs_window = c.head == HeadMode::Temporal;
    info_.has_cam = true;
    info_.feature_dim = kFeatureDim;
    info_.window_head = true;
  }
  const DetectorInfo& info() const override { return info_; }
  const ModelCard& card() const override { return m_->card(); }
  const std::string& checksum() const override { return m_->checksum(); }
  const std::string& source() const override { return source_; }
  std::vector<Feature> features(const std::vector<cv::Mat>& crops) const override { return m_->features(crops); }
  std::vector<Prediction> classify_frames(const std::vector<const Feature*>& f) const override {
    return m_->classify_frames(f);
  }
  std::vector<Prediction> classify_windows(const std::vector<std::vector<const Feature*>>& w,
                                           HeadMode mode) const override {
    return m_->classify_windows(w, mode);
  }
  cv::Mat activation_map(const cv::Mat& crop, int cls) const override { return m_->activation_map(crop, cls); }
  std::shared_ptr<const Model> resnext_model() const override { return m_; }

 private:
  std::shared_ptr<const Model> m_;
  std::string source_;
  DetectorInfo info_;
};

// MesoNet on OpenCV's dnn unless LibTorch is asked for (model_options.h).
std::shared_ptr<const Detector> make_mesonet(const StateDict& tensors, const ModelCard& card, const ModelOptions& opts,
                                             const std::string& source) {
  if (opts.backend == "auto" || opts.backend == "opencv") return make_mesonet_dnn_detector(tensors, card, opts, source);
  if (opts.backend == "libtorch" && opts.precision == "int8")
    throw std::invalid_argument("precision=int8 runs MesoNet on backend=opencv only (LibTorch's MesoNet is fp32)");
  if (opts.backend == "libtorch")
    return torch_backend("MesoNet on backend=libtorch").make_mesonet(tensors, card, opts, source);
  throw std::invalid_argument("unknown backend '" + opts.backend + "' (auto, opencv or libtorch)");
}

struct Registry {
  std::mutex mu;
  std::unordered_map<std::string, DetectorFactory> factories;
};

Registry& registry() {
  static Registry r;
  static const bool builtins = [] {
    Registry& reg = r;
    reg.factories[kResNeXtArchitecture] = [](const StateDict& sd, const ModelCard& card, const ModelOptions& opts,
                                             const std::string& source) {
      return as_detector(Model::from_state_dict(sd, card, opts), source);
    };
    for (const char* a : {"meso4", "mesoinception4"}) reg.factories[a] = make_mesonet;
    return true;
  }();
  (void)builtins;
  return r;
}

std::string basename(const std::string& p) {
  const auto s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

// Our MesoNet names without a card (a .pt or card-less safetensors).
std::optional<MesoVariant> mesonet_names(const StateDict& sd) {
  if (!sd.count("fc2.weight") || !sd.count("bn4.running_var")) return std::nullopt;
  return sd.count("inc1.b1.weight") ? MesoVariant::MesoInception4 : MesoVariant::Meso4;
}

}  // namespace

void register_detector_family(const std::string& architecture, DetectorFactory factory) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.factories[architecture] = std::move(factory);
}

std::vector<std::string> detector_architectures() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> out;
  for (const auto& [a, f] : r.factories) out.push_back(a);
  std::sort(out.begin(), out.end());
  return out;
}

ResolvedCheckpoint resolve_checkpoint(Checkpoint ck, const std::string& path) {
  ResolvedCheckpoint r;
  r.format = ck.format;
  try {
    if (ck.card) {
      r.card = *ck.card;
      if (auto v = mesonet_variant(r.card.architecture)) {
        validate_mesonet_state_dict(ck.tensors, *v);
      } else if (r.card.architecture == kResNeXtArchitecture) {
        validate_state_dict(ck.tensors);
      }
      r.tensors = std::move(ck.tensors);
      r.checksum = std::move(ck.checksum);
    } else if (ck.format == "keras-h5" || has_keras_names(ck.tensors)) {
      MesoImport m = mesonet_from_keras(ck.tensors);
      r.card = mesonet_card(m.variant, weights_checksum(m.tensors), basename(path));
      r.tensors = std::move(m.tensors);
    } else if (auto v = mesonet_names(ck.tensors)) {
      validate_mesonet_state_dict(ck.tensors, *v);
      r.card = mesonet_card(*v, weights_checksum(ck.tensors), basename(path));
      r.tensors = std::move(ck.tensors);
    } else {  // a published-style .pt: the reference architecture
      validate_state_dict(ck.tensors);
      r.card = pytorch_checkpoint_card(path);
      r.tensors = std::move(ck.tensors);
      r.checksum = std::move(ck.checksum);
    }
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  return r;
}

std::shared_ptr<const Detector> detector_from_state_dict(const StateDict& tensors, const ModelCard& card,
                                                         const ModelOptions& opts, const std::string& source) {
  DetectorFactory f;
  {
    auto& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.factories.find(card.architecture);
    if (it == r.factories.end()) throw std::runtime_error("no detector family for architecture '" + card.architecture + "'");
    f = it->second;
  }
  return f(tensors, card, opts, source);
}

std::shared_ptr<const Detector> load_detector(const std::string& path, const ModelOptions& opts) {
  ResolvedCheckpoint r = resolve_checkpoint(read_checkpoint(path), path);
  try {
    return detector_from_state_dict(r.tensors, r.card, opts, path);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

std::shared_ptr<const Detector> load_detector_shared(const std::string& path, const ModelOptions& opts) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::weak_ptr<const Detector>> cache;
  const std::string key =
      opts.device + "|" + opts.precision + "|" + opts.backend + "|" + calibration_cache_key(opts.precision) + path;
  std::lock_guard<std::mutex> lock(mu);
  if (auto d = cache[key].lock()) return d;
  std::shared_ptr<const Detector> d;
  {
    ResolvedCheckpoint r = resolve_checkpoint(read_checkpoint(path), path);
    if (r.card.architecture == kResNeXtArchitecture) {
      // Through the Model cache, so the old API's callers share these weights
      // (the tensors already read: not read a second time).
      d = as_detector(Model::shared_from_state_dict(path, r.tensors, r.card, std::move(r.checksum), opts), path);
    } else {
      try {
        d = detector_from_state_dict(r.tensors, r.card, opts, path);
      } catch (const std::runtime_error& e) {
        throw std::runtime_error(path + ": " + e.what());
      }
    }
  }
  cache[key] = d;
  return d;
}

std::shared_ptr<const Detector> as_detector(std::shared_ptr<const Model> model, const std::string& source) {
  if (!model) throw std::invalid_argument("as_detector: no model");
  return std::make_shared<ResNeXtDetector>(std::move(model), source);
}

void keep_freed_memory_for_reuse() {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

const char* const kDefaultModelFile = "mesonet/Meso4_DF.h5";

std::vector<std::string> default_model_candidates() {
  std::vector<std::string> out;
  const char* env = std::getenv("DFD_MODEL_DIR");
  if (env && *env) {
    const std::string dir(env);
    out.push_back(dir + "/" + kDefaultModelFile);
    const std::string f(kDefaultModelFile);
    out.push_back(dir + "/" + f.substr(f.rfind('/') + 1));
  }
  out.push_back(std::string(DFD_INSTALLED_MODEL_DIR) + "/" + kDefaultModelFile);
  out.push_back(std::string(DFD_SOURCE_MODEL_DIR) + "/" + kDefaultModelFile);
  return out;
}

std::string find_default_model() {
  for (const auto& p : default_model_candidates()) {
    struct stat st;
    if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return p;
  }
  return "";
}

}  // namespace dfd
