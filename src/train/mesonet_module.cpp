// LibTorch side of the trainable MesoNet (see mesonet_module.h). Parameters
// are plain tensors kept by our tensor names, so export and import are a
// copy, and the eval forward repeats model/mesonet.cpp's ops one for one.
#include "train/mesonet_module.h"

#include <torch/torch.h>

#include "model/torch_tensor.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <stdexcept>

#include "analysis/feature.h"
#include "model/preprocess.h"

namespace dfd::train {

namespace {

constexpr size_t kEvalChunk = 4;           // as MesoNetDetector::kChunk: same batch shapes, same kernels

torch::Tensor to_tensor(const TensorData& t) {
  if (!is_floating(t.dtype)) throw std::runtime_error("MesoNet weights must be floating point");
  return float_tensor(t);
}

TensorData to_data(const torch::Tensor& x) {
  auto c = x.detach().to(torch::kFloat32).contiguous();
  TensorData t;
  t.dtype = DType::F32;
  t.shape = c.sizes().vec();
  const auto* p = reinterpret_cast<const uint8_t*>(c.data_ptr<float>());
  t.bytes.assign(p, p + size_t(c.numel()) * sizeof(float));
  return t;
}

// MesoNet's input: RGB / 255 at 256x256, from BGR crops (the card's normalisation).
torch::Tensor input_of(const std::vector<const cv::Mat*>& crops) {
  const int s = kMesoInputSize;
  auto x = torch::empty({int64_t(crops.size()), 3, s, s}, torch::kFloat32);
  Normalisation n{{0.f, 0.f, 0.f}, {1.f, 1.f, 1.f}, true};
  crops_to_nchw(crops, n, s, x.data_ptr<float>());
  return x;
}

}  // namespace

struct MesoTrainer::Impl {
  MesoVariant variant;
  MesoTrainerConfig cfg;
  std::map<std::string, torch::Tensor> params;   // trained, requires_grad
  std::map<std::string, torch::Tensor> buffers;  // bnN.running_mean / running_var
  std::unique_ptr<torch::optim::Adam> opt;
  std::mt19937_64 rng;

  const torch::Tensor& p(const std::string& k) const { return params.at(k); }

  torch::Tensor conv(const torch::Tensor& x, const MesoConv& c, bool eval) const {
    const int64_t pad = int64_t(c.dilation) * (c.kernel / 2);
    auto w = p(c.name + ".weight");
    if (eval) w = w.contiguous(torch::MemoryFormat::ChannelsLast);
    return torch::relu(torch::conv2d(x, w, p(c.name + ".bias"), {1, 1}, {pad, pad}, {c.dilation, c.dilation}));
  }

  torch::Tensor bn(const torch::Tensor& x, int i, bool eval) const {
    const std::string k = "bn" + std::to_string(i) + ".";
    const auto& mean = buffers.at(k + "running_mean");
    const auto& var = buffers.at(k + "running_var");
    if (!eval)
      return torch::batch_norm(x, p(k + "weight"), p(k + "bias"), mean, var, /*training=*/true, cfg.bn_momentum,
                               kMesoBatchNormEps, /*cudnn_enabled=*/false);
    // model/mesonet.cpp's BatchNorm: one scale and shift per channel.
    auto scale = p(k + "weight") / torch::sqrt(var + kMesoBatchNormEps);
    auto shift = (p(k + "bias") - mean * scale).view({-1, 1, 1}).contiguous();
    return torch::addcmul(shift, x, scale.view({-1, 1, 1}).contiguous());
  }

  torch::Tensor block(const torch::Tensor& x, int i, int64_t pool, bool eval) const {
    return torch::max_pool2d(bn(x, i, eval), {pool, pool}, {pool, pool});
  }

  torch::Tensor inception(const torch::Tensor& x, const std::string& pre, bool eval) const {
    std::map<std::string, const MesoConv*> c;
    for (const auto& m : mesonet_convs(variant)) c[m.name] = &m;
    auto b1 = conv(x, *c.at(pre + ".b1"), eval);
    auto b2 = conv(conv(x, *c.at(pre + ".b2.0"), eval), *c.at(pre + ".b2.1"), eval);
    auto b3 = conv(conv(x, *c.at(pre + ".b3.0"), eval), *c.at(pre + ".b3.1"), eval);
    auto b4 = conv(conv(x, *c.at(pre + ".b4.0"), eval), *c.at(pre + ".b4.1"), eval);
    return torch::cat({b1, b2, b3, b4}, 1);
  }

  const MesoConv& named(const std::string& n) const {
    for (const auto& m : mesonet_convs(variant))
      if (m.name == n) return m;
    throw std::logic_error("no conv " + n);
  }

  // The logit of P(REAL) per crop of x [N, 3, 256, 256].
  torch::Tensor forward(torch::Tensor x, bool eval) const {
    x = x.contiguous(torch::MemoryFormat::ChannelsLast);
    if (variant == MesoVariant::Meso4) {
      x = block(conv(x, named("conv1"), eval), 1, 2, eval);
      x = block(conv(x, named("conv2"), eval), 2, 2, eval);
    } else {
      x = block(inception(x, "inc1", eval), 1, 2, eval);
      x = block(inception(x, "inc2", eval), 2, 2, eval);
    }
    x = block(conv(x, named("conv3"), eval), 3, 2, eval);
    x = block(conv(x, named("conv4"), eval), 4, 4, eval);  // [N, 16, 8, 8]
    x = x.flatten(1);                                     // (C, H, W), as fc1's columns
    if (!eval) x = torch::dropout(x, cfg.dropout, true);
    x = torch::leaky_relu(torch::addmm(p("fc1.bias"), x, p("fc1.weight").t().contiguous()), 0.1);
    if (!eval) x = torch::dropout(x, cfg.dropout, true);
    return torch::addmm(p("fc2.bias"), x, p("fc2.weight").t().contiguous()).view({-1});
  }
};

MesoTrainer::MesoTrainer(MesoVariant variant, const StateDict& init, const MesoTrainerConfig& config)
    : impl_(std::make_unique<Impl>()) {
  validate_mesonet_state_dict(init, variant);
  if (!(config.lr > 0)) throw std::invalid_argument("learning rate must be > 0");
  if (!(config.dropout >= 0 && config.dropout < 1)) throw std::invalid_argument("dropout must lie in [0, 1)");
  if (!(config.bn_momentum > 0 && config.bn_momentum <= 1)) throw std::invalid_argument("batch norm momentum must lie in (0, 1]");
  if (config.threads > 0) torch::set_num_threads(config.threads);
  auto& m = *impl_;
  m.variant = variant;
  m.cfg = config;
  m.rng.seed(config.seed * 0x9E3779B97F4A7C15ull + 1);
  torch::manual_seed(config.seed);  // dropout masks
  std::vector<torch::Tensor> trainable;
  for (const auto& [k, shape] : mesonet_shapes(variant)) {
    auto t = to_tensor(init.at(k));
    const bool running = k.find(".running_") != std::string::npos;
    if (running) {
      m.buffers[k] = t;
    } else {
      t.set_requires_grad(true);
      m.params[k] = t;
      trainable.push_back(t);
    }
  }
  m.opt = std::make_unique<torch::optim::Adam>(
      trainable, torch::optim::AdamOptions(config.lr).weight_decay(config.weight_decay));
}

MesoTrainer::~MesoTrainer() = default;

float MesoTrainer::step(const std::vector<const cv::Mat*>& crops, const std::vector<int>& labels,
                        const std::array<float, 2>& class_weights) {
  if (crops.empty() || crops.size() != labels.size()) throw std::invalid_argument("a batch needs one label per crop");
  auto& m = *impl_;
  auto x = input_of(crops);
  if (m.cfg.flip) {
    for (int64_t i = 0; i < x.size(0); ++i)
      if (m.rng() & 1) x[i] = x[i].flip({2});
  }
  std::vector<float> y(labels.size()), w(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] != kClassFake && labels[i] != kClassReal) throw std::invalid_argument("label must be 0 (FAKE) or 1 (REAL)");
    y[i] = labels[i] == kClassReal ? 1.f : 0.f;
    w[i] = class_weights[size_t(labels[i])];
  }
  auto yt = torch::tensor(y), wt = torch::tensor(w);
  m.opt->zero_grad();
  auto z = m.forward(x, /*eval=*/false);
  auto per = torch::binary_cross_entropy_with_logits(z, yt, {}, {}, at::Reduction::None);
  auto loss = (per * wt).sum() / wt.sum();
  loss.backward();
  m.opt->step();
  return loss.item<float>();
}

std::vector<float> MesoTrainer::logits(const std::vector<const cv::Mat*>& crops) const {
  std::vector<float> out;
  out.reserve(crops.size());
  c10::InferenceMode guard;
  for (size_t from = 0; from < crops.size(); from += kEvalChunk) {
    std::vector<const cv::Mat*> part(crops.begin() + long(from), crops.begin() + long(std::min(crops.size(), from + kEvalChunk)));
    auto z = impl_->forward(input_of(part), /*eval=*/true).contiguous();
    const float* d = z.data_ptr<float>();
    out.insert(out.end(), d, d + z.numel());
  }
  return out;
}

StateDict MesoTrainer::export_state_dict() const {
  StateDict sd;
  for (const auto& [k, t] : impl_->params) sd[k] = to_data(t);
  for (const auto& [k, t] : impl_->buffers) sd[k] = to_data(t);
  return sd;
}

MesoVariant MesoTrainer::variant() const { return impl_->variant; }

int64_t MesoTrainer::trainable_parameters() const {
  int64_t n = 0;
  for (const auto& [k, t] : impl_->params) n += t.numel();
  return n;
}

StateDict random_mesonet_state_dict(MesoVariant variant, uint64_t seed) {
  std::mt19937_64 rng(seed);
  StateDict sd;
  for (const auto& [k, shape] : mesonet_shapes(variant)) {
    TensorData t;
    t.shape = shape;
    t.bytes.assign(size_t(t.numel()) * sizeof(float), 0);
    auto* f = reinterpret_cast<float*>(t.bytes.data());
    const bool weight = k.size() > 7 && k.compare(k.size() - 7, 7, ".weight") == 0;
    if (weight && shape.size() >= 2) {  // Glorot uniform over (fan_in + fan_out)
      const int64_t rf = shape.size() == 4 ? shape[2] * shape[3] : 1;
      const double limit = std::sqrt(6.0 / double(shape[1] * rf + shape[0] * rf));
      std::uniform_real_distribution<float> d(float(-limit), float(limit));
      for (int64_t i = 0; i < t.numel(); ++i) f[i] = d(rng);
    } else if ((weight && k.rfind("bn", 0) == 0) || k.find("running_var") != std::string::npos) {
      std::fill(f, f + t.numel(), 1.f);
    }
    sd[k] = std::move(t);
  }
  return sd;
}

}  // namespace dfd::train
