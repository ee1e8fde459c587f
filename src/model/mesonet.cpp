// LibTorch implementation of MesoNet (Meso4, MesoInception4): the forward
// pass stated in mesonet_layout.h. One of the few translation units that
// include torch headers. The nets are tiny (about 28k weights, ~0.1 GFLOP per
// 256x256 crop), so the graph is run as plain ATen ops; batch norm (which
// follows a ReLU, so it cannot be folded into the conv before it) is one
// precomputed scale and shift per channel. Activations are kept channels-last,
// which lets LibTorch hand these few-channel convolutions to oneDNN (about
// 2x faster than its NCHW path here).
#include "model/mesonet.h"

#include <torch/torch.h>

#include "model/torch_tensor.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <stdexcept>

namespace dfd {

namespace {

torch::Tensor to_tensor(const TensorData& t) {
  if (!is_floating(t.dtype)) throw std::runtime_error("MesoNet weights must be floating point");
  return float_tensor(t);
}

const TensorData& at(const StateDict& sd, const std::string& k) { return tensor_at(sd, k); }

struct Conv {
  torch::Tensor w, b;
  int64_t pad = 0, dilation = 1;
  torch::Tensor operator()(const torch::Tensor& x) const {
    return torch::relu(torch::conv2d(x, w, b, {1, 1}, {pad, pad}, {dilation, dilation}));
  }
};

struct BatchNorm {
  torch::Tensor scale, shift;  // [C, 1, 1]
  torch::Tensor operator()(const torch::Tensor& x) const { return torch::addcmul(shift, x, scale); }
};

class MesoNetDetector final : public Detector {
 public:
  static constexpr size_t kChunk = 4;  // crops per forward pass

  MesoNetDetector(const StateDict& sd, const ModelCard& card, MesoVariant v, const std::string& source)
      : variant_(v), card_(card), checksum_(weights_checksum(sd)), source_(source) {
    info_.architecture = architecture_name(v);
    info_.input_size = kMesoInputSize;
    info_.colour_order = card.channel_order == "BGR" ? ColourOrder::BGR : ColourOrder::RGB;
    info_.normalisation = Normalisation{card.mean, card.std, card.channel_order == "RGB"};
    info_.crop_margin = kMesoCropMargin;
    info_.per_crop = true;
    info_.needs_window = false;
    info_.has_cam = false;
    info_.feature_dim = 1;
    for (const auto& c : mesonet_convs(v)) {
      Conv conv;
      conv.w = to_tensor(at(sd, c.name + ".weight")).contiguous(torch::MemoryFormat::ChannelsLast);
      conv.b = to_tensor(at(sd, c.name + ".bias"));
      conv.dilation = c.dilation;
      conv.pad = int64_t(c.dilation) * (c.kernel / 2);  // 'same' for odd kernels, stride 1
      convs_[c.name] = conv;
    }
    for (int i = 1; i <= 4; ++i) {
      const std::string p = "bn" + std::to_string(i) + ".";
      auto gamma = to_tensor(at(sd, p + "weight")), beta = to_tensor(at(sd, p + "bias"));
      auto mean = to_tensor(at(sd, p + "running_mean")), var = to_tensor(at(sd, p + "running_var"));
      auto scale = gamma / torch::sqrt(var + kMesoBatchNormEps);
      bns_[size_t(i - 1)] = {scale.view({-1, 1, 1}).contiguous(), (beta - mean * scale).view({-1, 1, 1}).contiguous()};
    }
    fc1_w_t_ = to_tensor(at(sd, "fc1.weight")).t().contiguous();  // [1024, 16]
    fc1_b_ = to_tensor(at(sd, "fc1.bias"));
    fc2_w_t_ = to_tensor(at(sd, "fc2.weight")).t().contiguous();  // [16, 1]
    fc2_b_ = to_tensor(at(sd, "fc2.bias"));
  }

  const DetectorInfo& info() const override { return info_; }
  const ModelCard& card() const override { return card_; }
  const std::string& checksum() const override { return checksum_; }
  const std::string& source() const override { return source_; }

  std::vector<Feature> features(const std::vector<cv::Mat>& crops) const override {
    if (crops.empty()) return {};
    c10::InferenceMode guard;
    const int s = kMesoInputSize;
    std::vector<Feature> out(crops.size(), Feature(1));
    // A few crops per forward: the first activations are 2 MB per crop, and
    // blocks above glibc's 32 MB mmap threshold are returned to the kernel
    // and faulted in again on every op (slow here: batch 16 in one go was
    // 2-3x slower per crop on the 2-core VM).
    for (size_t from = 0; from < crops.size(); from += kChunk) {
      const size_t n = std::min(kChunk, crops.size() - from);
      auto x = torch::empty({int64_t(n), 3, s, s}, torch::kFloat32);
      std::vector<const cv::Mat*> ptrs;
      for (size_t i = 0; i < n; ++i) ptrs.push_back(&crops[from + i]);
      crops_to_nchw(ptrs, info_.normalisation, s, x.data_ptr<float>());
      auto z = forward(x.contiguous(torch::MemoryFormat::ChannelsLast)).contiguous();  // [n] logits of P(REAL)
      const float* d = z.data_ptr<float>();
      for (size_t i = 0; i < n; ++i) out[from + i][0] = d[i];
    }
    return out;
  }

  std::vector<Prediction> classify_frames(const std::vector<const Feature*>& frames) const override {
    std::vector<Prediction> out;
    out.reserve(frames.size());
    for (const Feature* f : frames) out.push_back(from_logit(logit_of(f)));
    return out;
  }

  std::vector<Prediction> classify_windows(const std::vector<std::vector<const Feature*>>& windows,
                                           HeadMode) const override {
    std::vector<Prediction> out;
    out.reserve(windows.size());
    for (const auto& w : windows) {
      if (w.empty()) throw std::invalid_argument("empty window");
      double sum = 0;
      for (const Feature* f : w) sum += p_fake(logit_of(f));
      out.push_back(from_p_fake(sum / double(w.size())));
    }
    return out;
  }

 private:
  static float logit_of(const Feature* f) {
    if (!f || f->size() != 1) throw std::invalid_argument("MesoNet feature must have 1 value");
    return (*f)[0];
  }
  // The net's sigmoid(z) is P(REAL); P(FAKE) = 1 - sigmoid(z) = sigmoid(-z).
  static double p_fake(float z) { return 1.0 / (1.0 + std::exp(double(z))); }
  // Logits [FAKE, REAL] = [0, z]: their softmax is [1 - sigmoid(z), sigmoid(z)].
  static Prediction from_logit(float z) {
    Prediction p;
    p.logits = {0.f, z};
    p.prob_fake = float(p_fake(z));
    return p;
  }
  static Prediction from_p_fake(double pf) {
    const double c = std::min(std::max(pf, 1e-30), 1.0 - 1e-16);
    Prediction p;
    p.logits = {0.f, float(std::log1p(-c) - std::log(c))};
    p.prob_fake = float(pf);
    return p;
  }

  torch::Tensor block(const torch::Tensor& x, size_t bn, int64_t pool) const {
    return torch::max_pool2d(bns_[bn](x), {pool, pool}, {pool, pool});
  }

  torch::Tensor inception(const torch::Tensor& x, const std::string& p) const {
    const auto& c = convs_;
    auto b1 = c.at(p + ".b1")(x);
    auto b2 = c.at(p + ".b2.1")(c.at(p + ".b2.0")(x));
    auto b3 = c.at(p + ".b3.1")(c.at(p + ".b3.0")(x));
    auto b4 = c.at(p + ".b4.1")(c.at(p + ".b4.0")(x));
    return torch::cat({b1, b2, b3, b4}, 1);
  }

  torch::Tensor forward(const torch::Tensor& input) const {
    torch::Tensor x;
    if (variant_ == MesoVariant::Meso4) {
      x = block(convs_.at("conv1")(input), 0, 2);
      x = block(convs_.at("conv2")(x), 1, 2);
    } else {
      x = block(inception(input, "inc1"), 0, 2);
      x = block(inception(x, "inc2"), 1, 2);
    }
    x = block(convs_.at("conv3")(x), 2, 2);
    x = block(convs_.at("conv4")(x), 3, 4);  // [N, 16, 8, 8]
    x = x.flatten(1);                       // (C, H, W) order: fc1's columns were reordered at import
    x = torch::leaky_relu(torch::addmm(fc1_b_, x, fc1_w_t_), 0.1);
    return torch::addmm(fc2_b_, x, fc2_w_t_).view({-1});
  }

  MesoVariant variant_;
  ModelCard card_;
  std::string checksum_, source_;
  DetectorInfo info_;
  std::map<std::string, Conv> convs_;
  std::array<BatchNorm, 4> bns_;
  torch::Tensor fc1_w_t_, fc1_b_, fc2_w_t_, fc2_b_;
};

}  // namespace

std::shared_ptr<const Detector> make_mesonet_detector(const StateDict& tensors, const ModelCard& card,
                                                      const ModelOptions& opts, const std::string& source) {
  const auto v = mesonet_variant(card.architecture);
  if (!v) throw std::runtime_error("architecture '" + card.architecture + "' is not MesoNet");
  validate_mesonet_state_dict(tensors, *v);
  if (card.input_size != kMesoInputSize)
    throw std::runtime_error("MesoNet card: input_size must be " + std::to_string(kMesoInputSize));
  if (opts.device != "cpu")
    throw std::invalid_argument("MesoNet runs on device=cpu only (asked for '" + opts.device + "')");
  if (opts.precision != "fp32")
    throw std::invalid_argument("MesoNet runs in precision=fp32 only (asked for '" + opts.precision + "')");
  if (opts.num_threads > 0) torch::set_num_threads(opts.num_threads);
  c10::InferenceMode guard;
  return std::make_shared<MesoNetDetector>(tensors, card, *v, source);
}

}  // namespace dfd
