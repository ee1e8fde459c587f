// LibTorch backend of MesoNet (Meso4, MesoInception4): the forward pass
// stated in mesonet_layout.h, in libdfd-torch (ModelOptions::backend =
// "libtorch"; the default is OpenCV's dnn, model/mesonet_dnn.cpp). One of
// the few translation units that include torch headers. The nets are tiny (about 28k weights, ~0.1 GFLOP per
// 256x256 crop), so the graph is run as plain ATen ops; batch norm (which
// follows a ReLU, so it cannot be folded into the conv before it) is one
// precomputed scale and shift per channel. Activations are kept channels-last,
// which lets LibTorch hand these few-channel convolutions to oneDNN (about
// 2x faster than its NCHW path here).
#include "model/mesonet.h"

#include <torch/torch.h>

#include "model/mesonet_detector.h"
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

class MesoNetDetector final : public MesoNetDetectorBase {
 public:
  MesoNetDetector(const StateDict& sd, const ModelCard& card, MesoVariant v, const std::string& source)
      : MesoNetDetectorBase(sd, card, v, source) {
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

 protected:
  void logits(const float* nchw, size_t n, float* out) const override {
    c10::InferenceMode guard;
    const int64_t s = kMesoInputSize;
    auto x = torch::from_blob(const_cast<float*>(nchw), {int64_t(n), 3, s, s}, torch::kFloat32);
    auto z = forward(x.contiguous(torch::MemoryFormat::ChannelsLast)).contiguous();  // [n] logits of P(REAL)
    std::copy_n(z.data_ptr<float>(), n, out);
  }

 private:
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
    if (variant() == MesoVariant::Meso4) {
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

  std::map<std::string, Conv> convs_;
  std::array<BatchNorm, 4> bns_;
  torch::Tensor fc1_w_t_, fc1_b_, fc2_w_t_, fc2_b_;
};

}  // namespace

std::shared_ptr<const Detector> make_mesonet_detector(const StateDict& tensors, const ModelCard& card,
                                                      const ModelOptions& opts, const std::string& source) {
  const MesoVariant v = check_mesonet_load(tensors, card, opts);
  // int8 is OpenCV's (model/mesonet_dnn.h): this forward is float32 only.
  if (opts.precision != "fp32")
    throw std::invalid_argument("MesoNet on LibTorch runs in precision=fp32 only (int8 runs on backend=opencv)");
  if (opts.num_threads > 0) torch::set_num_threads(opts.num_threads);
  c10::InferenceMode guard;
  return std::make_shared<MesoNetDetector>(tensors, card, v, source);
}

}  // namespace dfd
