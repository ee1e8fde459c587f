// The ResNeXt50 + LSTM detector's public face: crops as cv::Mat in, host
// vectors out. The network itself is an engine (model/resnext_engine.h):
// on the CPU oneDNN in this library (model/onednn_resnext.h), elsewhere
// LibTorch in libdfd-torch (model/resnext_net.h, loaded on first use,
// model/torch_module.h). This file only picks the engine, prepares crops
// (model/preprocess.h) into its host batches and shapes its results.
#include "model/model.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <unordered_map>

#include "checkpoint/checksum.h"
#include "model/architecture.h"
#include "model/mesonet_calibration.h"
#include "model/onednn_resnext.h"
#include "model/preprocess.h"
#include "model/resnext_net.h"
#include "model/torch_module.h"

namespace dfd {

namespace {

// Which engine runs a ResNeXt model: "auto" is oneDNN on the CPU (no
// LibTorch in the process) and LibTorch elsewhere (CUDA, generic_path).
bool on_onednn(const ModelOptions& opts) {
  if (opts.backend == "onednn") return true;
  if (opts.backend == "libtorch") return false;
  if (opts.backend != "auto")
    throw std::invalid_argument("ResNeXt models run on backend=auto, onednn or libtorch (asked for '" + opts.backend + "')");
  return opts.device == "cpu" && !opts.generic_path;
}

// The options' checks, before any weights are read.
void check_options(const ModelOptions& opts) {
  if (on_onednn(opts)) OneDnnResNeXt::check(opts);
  else torch_backend("ResNeXt models on backend=libtorch or a CUDA device").check_resnext(opts);
}

Normalisation normalisation(const ModelCard& card) { return {card.mean, card.std, card.channel_order == "RGB"}; }

std::unique_ptr<ResNeXtEngine> make_engine(const StateDict& sd, const ModelCard& card, const ModelOptions& opts,
                                           const std::string& source) {
  if (on_onednn(opts)) {
    // precision=int8: the faces that fix a quantized MesoNet's scales too.
    const bool int8 = opts.precision == "int8";
    return std::make_unique<OneDnnResNeXt>(
        sd, opts, int8 ? calibration_crops(find_calibration_dir(source), normalisation(card), kInputSize) : std::vector<float>{});
  }
  return torch_backend("ResNeXt models on backend=libtorch or a CUDA device").make_resnext(sd, opts);
}

}  // namespace

struct Model::Impl {
  ModelCard card;
  std::string checksum, source;
  std::unique_ptr<ResNeXtEngine> net;

  ResNeXtEngine::Batch input(const std::vector<cv::Mat>& crops) const {
    auto b = net->batch(crops.size());
    std::vector<const cv::Mat*> ptrs;
    for (const auto& c : crops) ptrs.push_back(&c);
    crops_to_nchw(ptrs, normalisation(card), b.data());
    return b;
  }

  // Feature pointers into one contiguous host block of rows x 2048 floats.
  static std::vector<float> rows(const std::vector<const Feature*>& frames) {
    std::vector<float> x(frames.size() * size_t(kFeatureDim));
    for (size_t i = 0; i < frames.size(); ++i) {
      if (!frames[i] || frames[i]->size() != size_t(kFeatureDim)) throw std::invalid_argument("feature must have 2048 values");
      std::memcpy(x.data() + i * kFeatureDim, frames[i]->data(), sizeof(float) * kFeatureDim);
    }
    return x;
  }
};

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;
const ModelCard& Model::card() const { return impl_->card; }
const std::string& Model::checksum() const { return impl_->checksum; }
const std::string& Model::source() const { return impl_->source; }
const std::string& Model::device() const { return impl_->net->device(); }
const std::string& Model::precision() const { return impl_->net->precision(); }
const std::string& Model::engine() const { return impl_->net->engine(); }
int Model::batch_size() const { return impl_->net->batch_size(); }

std::shared_ptr<const Model> Model::from_state_dict(const StateDict& sd, const ModelCard& card, const ModelOptions& opts,
                                                   PendingChecksum pending, const std::string& source) {
  if (card.architecture != kResNeXtArchitecture)
    throw std::runtime_error("architecture '" + card.architecture +
                             "' is not ResNeXt50+LSTM: load it with dfd::load_detector (model/family.h)");
  validate_state_dict(sd);
  auto impl = std::make_unique<Impl>();
  impl->card = card;
  impl->source = source;
  // The checksum reads every byte one at a time (FNV-1a, 0.25-0.35 s for
  // ResNeXt's 227 MB): on another core while the network is built, the
  // reader's if it started one. If the build throws, `pending` stops it
  // before `sd` can go.
  if (!pending.started()) pending = checksum_in_background(sd);
  impl->net = make_engine(sd, card, opts, source);
  impl->checksum = pending.get();
  return std::shared_ptr<const Model>(new Model(std::move(impl)));
}

std::shared_ptr<const Model> Model::load(const std::string& path, const ModelOptions& opts) {
  check_options(opts);  // a wrong option fails before the file is read
  Checkpoint ck = read_checkpoint(path);
  if (!ck.card && ck.format == "keras-h5")
    throw std::runtime_error(path + ": a Keras (MesoNet) file is not ResNeXt50+LSTM: load it with dfd::load_detector (model/family.h)");
  // A published-style .pt carries no card: describe what we know.
  const ModelCard card = ck.card ? *ck.card : pytorch_checkpoint_card(path);
  try {
    return from_state_dict(ck.tensors, card, opts, std::move(ck.checksum), path);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

namespace {

// One Model per (options, path) while anybody holds it.
struct SharedModels {
  std::mutex mu;
  std::unordered_map<std::string, std::weak_ptr<const Model>> cache;

  static std::string key(const std::string& path, const ModelOptions& opts) {
    return opts.device + "|" + opts.precision + "|" + std::to_string(opts.batch_size) + "|" + opts.backend + "|" +
           (opts.generic_path ? "generic|" : "") + calibration_cache_key(opts.precision) + path;
  }
  template <class Make>
  std::shared_ptr<const Model> get(const std::string& path, const ModelOptions& opts, Make make) {
    const std::string k = key(path, opts);
    std::lock_guard<std::mutex> lock(mu);
    if (auto m = cache[k].lock()) return m;
    auto m = make();
    cache[k] = m;
    return m;
  }
};

SharedModels& shared_models() {
  static SharedModels s;
  return s;
}

}  // namespace

std::shared_ptr<const Model> Model::load_shared(const std::string& path, const ModelOptions& opts) {
  return shared_models().get(path, opts, [&] { return load(path, opts); });
}

std::shared_ptr<const Model> Model::shared_from_state_dict(const std::string& path, const StateDict& sd,
                                                           const ModelCard& card, PendingChecksum checksum,
                                                           const ModelOptions& opts) {
  return shared_models().get(path, opts, [&] {
    check_options(opts);
    try {
      return from_state_dict(sd, card, opts, std::move(checksum), path);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(path + ": " + e.what());
    }
  });
}

ModelCard Model::untrained_card(uint64_t seed) {
  ModelCard card;
  card.name = "untrained-resnext50-lstm-seed" + std::to_string(seed);
  card.trained = false;
  card.seed = seed;
  card.training_data = "none: random weights from a seed, for demos and tests only";
  card.provenance = "deepfake-model init --seed " + std::to_string(seed);
  return card;
}

std::shared_ptr<const Model> Model::untrained(uint64_t seed, const ModelOptions& opts) {
  check_options(opts);
  return from_state_dict(untrained_state_dict(seed), untrained_card(seed), opts, PendingChecksum(),
                         "untrained:seed=" + std::to_string(seed));
}

std::vector<Feature> Model::features(const std::vector<cv::Mat>& crops) const {
  if (crops.empty()) return {};
  return impl_->net->features(impl_->input(crops));
}

std::vector<Prediction> Model::classify_crops(const std::vector<cv::Mat>& crops, std::vector<Feature>* features) const {
  if (crops.empty()) {
    if (features) features->clear();
    return {};
  }
  return impl_->net->classify_crops(impl_->input(crops), features);
}

std::vector<Prediction> Model::classify_frames(const std::vector<const Feature*>& frames) const {
  if (frames.empty()) return {};
  const auto x = Impl::rows(frames);
  return impl_->net->classify_frames(x.data(), frames.size());
}

std::vector<Prediction> Model::classify_windows(const std::vector<std::vector<const Feature*>>& windows,
                                                HeadMode mode) const {
  std::vector<Prediction> out(windows.size());
  if (windows.empty()) return out;
  for (auto& w : windows)
    if (w.empty()) throw std::invalid_argument("empty window");
  if (mode == HeadMode::Reference) {  // only each window's last frame matters
    std::vector<const Feature*> last;
    for (auto& w : windows) last.push_back(w.back());
    return classify_frames(last);
  }
  // Temporal: batch windows of equal length into one recurrence each.
  std::map<size_t, std::vector<size_t>> by_len;
  for (size_t i = 0; i < windows.size(); ++i) by_len[windows[i].size()].push_back(i);
  for (auto& [len, idx] : by_len) {
    std::vector<const Feature*> flat;
    for (auto i : idx) flat.insert(flat.end(), windows[i].begin(), windows[i].end());
    const auto x = Impl::rows(flat);
    auto preds = impl_->net->classify_temporal(x.data(), idx.size(), len);
    for (size_t j = 0; j < idx.size(); ++j) out[idx[j]] = preds[j];
  }
  return out;
}

cv::Mat Model::activation_map(const cv::Mat& crop, int cls) const {
  if (cls != kClassFake && cls != kClassReal) throw std::invalid_argument("class index must be 0 or 1");
  int rows = 0, cols = 0;
  auto cells = impl_->net->activation_cells(impl_->input({crop}), cls, &rows, &cols);
  // Min-max to 0..255, truncating as a float -> uint8 tensor cast does.
  const float lo = *std::min_element(cells.begin(), cells.end());
  for (auto& v : cells) v -= lo;
  const float mx = *std::max_element(cells.begin(), cells.end());
  cv::Mat small(rows, cols, CV_8UC1);
  for (int i = 0; i < rows * cols; ++i) {
    float v = cells[size_t(i)];
    if (mx > 0) v = v / mx;
    small.data[i] = static_cast<uint8_t>(v * 255.f);
  }
  cv::Mat out;
  cv::resize(small, out, crop.size(), 0, 0, cv::INTER_LINEAR);
  return out;
}

}  // namespace dfd
