// LibTorch implementation of the detector. This is one of the few
// translation units that include torch headers (build time on 2 cores).
//
// The backbone keeps batch norms folded into the convolutions (inference
// only), laid out channels-last so oneDNN takes the fast path. The head keeps
// the LSTM weights as published; the reference per-frame step needs only the
// input, cell and output gate rows of weight_ih (forget gate times a zero
// cell state is zero), so those rows are kept contiguous apart.
#include "model/model.h"

#include <torch/torch.h>

#include <fstream>
#include <mutex>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <unordered_map>

#include "model/architecture.h"
#include "model/preprocess.h"

namespace dfd {

namespace {

struct ConvBN {
  torch::Tensor w, b;
  torch::Tensor w_packed;  // oneDNN's blocked layout, reordered once at load
  int64_t stride = 1, pad = 0, groups = 1;
  torch::Tensor operator()(const torch::Tensor& x) const {
    if (x.is_mkldnn()) return packed(x);
    return torch::conv2d(x, w, b, {stride, stride}, {pad, pad}, {1, 1}, groups);
  }
  torch::Tensor b_packed;  // bias in the packed precision
  void pack(torch::ScalarType t) {
    w_packed = torch::mkldnn_reorder_conv2d_weight(w.contiguous().to(t).to_mkldnn(), {pad, pad}, {stride, stride}, {1, 1}, groups);
    b_packed = b.to(t);
  }
  torch::Tensor packed(const torch::Tensor& x) const {
    return torch::mkldnn_convolution(x, w_packed, b_packed, {pad, pad}, {stride, stride}, {1, 1}, groups);
  }
};

struct Block {
  ConvBN c1, c2, c3, down;
  bool has_down = false;
};

torch::ScalarType scalar_type(DType d) {
  switch (d) {
    case DType::F32: return torch::kFloat32;
    case DType::F64: return torch::kFloat64;
    case DType::F16: return torch::kFloat16;
    case DType::BF16: return torch::kBFloat16;
    case DType::I64: return torch::kInt64;
    case DType::I32: return torch::kInt32;
    case DType::U8: return torch::kUInt8;
    case DType::Bool: return torch::kBool;
  }
  return torch::kFloat32;
}

torch::Tensor to_tensor(const TensorData& t) {
  auto x = torch::from_blob(const_cast<uint8_t*>(t.bytes.data()), t.shape, torch::TensorOptions().dtype(scalar_type(t.dtype)));
  return x.to(torch::kFloat32).clone();
}

const TensorData& at(const StateDict& sd, const std::string& k) {
  auto it = sd.find(k);
  if (it == sd.end()) throw std::runtime_error("missing key '" + k + "'");
  return it->second;
}

ConvBN fold(const StateDict& sd, const std::string& conv, const std::string& bn, int64_t stride, int64_t pad,
            int64_t groups) {
  constexpr double eps = 1e-5;  // nn.BatchNorm2d default
  auto w = to_tensor(at(sd, conv + "weight"));
  auto gamma = to_tensor(at(sd, bn + "weight")), beta = to_tensor(at(sd, bn + "bias"));
  auto mean = to_tensor(at(sd, bn + "running_mean")), var = to_tensor(at(sd, bn + "running_var"));
  auto scale = gamma / torch::sqrt(var + eps);
  ConvBN c;
  c.w = (w * scale.view({-1, 1, 1, 1})).contiguous(torch::MemoryFormat::ChannelsLast);
  c.b = (beta - mean * scale).contiguous();
  c.stride = stride;
  c.pad = pad;
  c.groups = groups;
  return c;
}

// oneDNN runs bf16 convolutions natively only with AVX512_BF16 or AMX;
// elsewhere it emulates them, slower than fp32, so we refuse.
bool cpu_has_bf16() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("flags", 0) == 0) return line.find(" avx512_bf16") != std::string::npos || line.find(" amx_bf16") != std::string::npos;
  return false;
}

}  // namespace

struct Model::Impl {
  ModelCard card;
  std::string checksum, source;
  torch::Device device{torch::kCPU};
  ConvBN stem;
  std::vector<Block> blocks;
  torch::Tensor w_ih_t;   // [2048, 8192] transposed for X @ W
  torch::Tensor w_ico_t;  // [2048, 6144]: input, cell, output gate columns
  torch::Tensor w_hh_t;   // [2048, 8192]
  torch::Tensor lin_w_t;  // [2048, 2]
  torch::Tensor lin_b;    // [2]
  torch::Tensor head_w;   // [2, 2048], for activation maps

  torch::Tensor input_tensor(const std::vector<cv::Mat>& crops) const {
    auto x = torch::empty({int64_t(crops.size()), 3, kInputSize, kInputSize}, torch::kFloat32);
    std::vector<const cv::Mat*> ptrs;
    for (const auto& c : crops) ptrs.push_back(&c);
    Normalisation norm{card.mean, card.std, card.channel_order == "RGB"};
    crops_to_nchw(ptrs, norm, x.data_ptr<float>());
    return x.contiguous(torch::MemoryFormat::ChannelsLast).to(device);
  }

  bool use_mkldnn = false;
  torch::ScalarType packed_type = torch::kFloat32;  // bf16 when asked for and supported

  torch::Tensor feature_map(const torch::Tensor& input) const {
    auto x = use_mkldnn ? input.contiguous().to(packed_type).to_mkldnn() : input;
    auto y = stem(x);
    y.relu_();
    y = torch::max_pool2d(y, {3, 3}, {2, 2}, {1, 1});
    for (const auto& b : blocks) {
      auto identity = b.has_down ? b.down(y) : y;
      auto z = b.c1(y);
      z.relu_();
      z = b.c2(z);
      z.relu_();
      z = b.c3(z);
      z.add_(identity).relu_();
      y = z;
    }
    return y.is_mkldnn() ? y.to_dense().to(torch::kFloat32) : y;  // [N, 2048, 4, 4]
  }

  std::vector<Prediction> predictions(const torch::Tensor& h) const {
    auto logits = torch::addmm(lin_b, h, lin_w_t).to(torch::kCPU).contiguous();
    auto probs = torch::softmax(logits, 1).contiguous();
    std::vector<Prediction> out(size_t(logits.size(0)));
    auto l = logits.accessor<float, 2>();
    auto p = probs.accessor<float, 2>();
    for (size_t i = 0; i < out.size(); ++i) {
      out[i].logits = {l[int64_t(i)][0], l[int64_t(i)][1]};
      out[i].prob_fake = p[int64_t(i)][kClassFake];
    }
    return out;
  }

  torch::Tensor stack(const std::vector<const Feature*>& frames) const {
    auto x = torch::empty({int64_t(frames.size()), kFeatureDim}, torch::kFloat32);
    float* d = x.data_ptr<float>();
    for (size_t i = 0; i < frames.size(); ++i) {
      if (!frames[i] || frames[i]->size() != size_t(kFeatureDim)) throw std::invalid_argument("feature must have 2048 values");
      std::memcpy(d + i * kFeatureDim, frames[i]->data(), sizeof(float) * kFeatureDim);
    }
    return x.to(device);
  }

  // One zero-state LSTM step per row of x ([N, 2048]), then the head.
  torch::Tensor reference_step(const torch::Tensor& x) const {
    auto g = torch::mm(x, w_ico_t);
    auto gates = g.chunk(3, 1);
    auto c = torch::sigmoid(gates[0]) * torch::tanh(gates[1]);
    return torch::sigmoid(gates[2]) * torch::tanh(c);
  }

  // Time-major recurrence over x ([B, T, 2048]) from zero state; last h.
  torch::Tensor temporal(const torch::Tensor& x) const {
    const int64_t B = x.size(0), T = x.size(1);
    auto G = torch::matmul(x, w_ih_t);  // input projections of every step at once
    auto h = torch::zeros({B, kFeatureDim}, x.options());
    auto c = torch::zeros({B, kFeatureDim}, x.options());
    for (int64_t t = 0; t < T; ++t) {
      auto g = G.select(1, t) + torch::mm(h, w_hh_t);
      auto q = g.chunk(4, 1);  // PyTorch gate order: input, forget, cell, output
      c = torch::sigmoid(q[1]) * c + torch::sigmoid(q[0]) * torch::tanh(q[2]);
      h = torch::sigmoid(q[3]) * torch::tanh(c);
    }
    return h;
  }
};

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;
const ModelCard& Model::card() const { return impl_->card; }
const std::string& Model::checksum() const { return impl_->checksum; }
const std::string& Model::source() const { return impl_->source; }

std::shared_ptr<const Model> Model::from_state_dict(const StateDict& sd, const ModelCard& card, const ModelOptions& opts) {
  if (card.architecture != kResNeXtArchitecture)
    throw std::runtime_error("architecture '" + card.architecture +
                             "' is not ResNeXt50+LSTM: load it with dfd::load_detector (model/family.h)");
  validate_state_dict(sd);
  if (opts.device != "cpu") {
    if (opts.device != "cuda") throw std::invalid_argument("unknown device '" + opts.device + "' (expected cpu or cuda)");
    if (!torch::cuda::is_available())
      throw std::runtime_error("device=cuda requested but this LibTorch has no CUDA support (Debian's libtorch is CPU-only)");
  }
  if (opts.num_threads > 0) torch::set_num_threads(opts.num_threads);
  c10::InferenceMode guard;
  auto impl = std::make_unique<Impl>();
  impl->card = card;
  impl->checksum = weights_checksum(sd);
  impl->device = torch::Device(opts.device == "cuda" ? torch::kCUDA : torch::kCPU);
  impl->stem = fold(sd, "model.0.", "model.1.", 2, 3, 1);
  for (const auto& spec : resnext50_blocks()) {
    Block b;
    b.c1 = fold(sd, spec.prefix + "conv1.", spec.prefix + "bn1.", 1, 0, 1);
    b.c2 = fold(sd, spec.prefix + "conv2.", spec.prefix + "bn2.", spec.stride, 1, kGroups);
    b.c3 = fold(sd, spec.prefix + "conv3.", spec.prefix + "bn3.", 1, 0, 1);
    if ((b.has_down = spec.downsample)) b.down = fold(sd, spec.prefix + "downsample.0.", spec.prefix + "downsample.1.", spec.stride, 0, 1);
    impl->blocks.push_back(std::move(b));
  }
  impl->use_mkldnn = impl->device.is_cpu() && torch::hasMKLDNN() && !std::getenv("DFD_NO_MKLDNN");
  if (opts.precision == "bf16") {
    if (!impl->use_mkldnn || !cpu_has_bf16())
      throw std::runtime_error("precision=bf16 needs oneDNN on a CPU with AVX512_BF16 (or AMX); use fp32");
    impl->packed_type = torch::kBFloat16;
  } else if (opts.precision != "fp32") {
    throw std::invalid_argument("unknown precision '" + opts.precision + "' (expected fp32 or bf16)");
  }
  if (impl->use_mkldnn) {
    impl->stem.pack(impl->packed_type);
    for (auto& b : impl->blocks)
      for (ConvBN* c : {&b.c1, &b.c2, &b.c3, &b.down})
        if (c->w.defined()) c->pack(impl->packed_type);
  }
  auto w_ih = to_tensor(at(sd, "lstm.weight_ih_l0"));
  impl->w_ih_t = w_ih.t().contiguous();
  auto q = w_ih.chunk(4, 0);
  impl->w_ico_t = torch::cat({q[0], q[2], q[3]}, 0).t().contiguous();
  impl->w_hh_t = to_tensor(at(sd, "lstm.weight_hh_l0")).t().contiguous();
  impl->head_w = to_tensor(at(sd, "linear1.weight"));
  impl->lin_w_t = impl->head_w.t().contiguous();
  impl->lin_b = to_tensor(at(sd, "linear1.bias"));
  if (impl->device.is_cuda()) {
    auto mv = [&](torch::Tensor& t) { t = t.to(impl->device); };
    for (auto& b : impl->blocks)
      for (ConvBN* c : {&b.c1, &b.c2, &b.c3, &b.down})
        if (c->w.defined()) { mv(c->w); mv(c->b); }
    mv(impl->stem.w); mv(impl->stem.b);
    for (auto* t : {&impl->w_ih_t, &impl->w_ico_t, &impl->w_hh_t, &impl->lin_w_t, &impl->lin_b, &impl->head_w}) mv(*t);
  }
  return std::shared_ptr<const Model>(new Model(std::move(impl)));
}

std::shared_ptr<const Model> Model::load(const std::string& path, const ModelOptions& opts) {
  Checkpoint ck = read_checkpoint(path);
  if (!ck.card && ck.format == "keras-h5")
    throw std::runtime_error(path + ": a Keras (MesoNet) file is not ResNeXt50+LSTM: load it with dfd::load_detector (model/family.h)");
  // A published-style .pt carries no card: describe what we know.
  const ModelCard card = ck.card ? *ck.card : pytorch_checkpoint_card(path);
  try {
    auto model = from_state_dict(ck.tensors, card, opts);
    const_cast<Model*>(model.get())->impl_->source = path;
    return model;
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

std::shared_ptr<const Model> Model::load_shared(const std::string& path, const ModelOptions& opts) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::weak_ptr<const Model>> cache;
  const std::string key = opts.device + "|" + opts.precision + "|" + path;
  std::lock_guard<std::mutex> lock(mu);
  if (auto m = cache[key].lock()) return m;
  auto m = load(path, opts);
  cache[key] = m;
  return m;
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
  auto m = from_state_dict(untrained_state_dict(seed), untrained_card(seed), opts);
  const_cast<Model*>(m.get())->impl_->source = "untrained:seed=" + std::to_string(seed);
  return m;
}

std::vector<Feature> Model::features(const std::vector<cv::Mat>& crops) const {
  if (crops.empty()) return {};
  c10::InferenceMode guard;
  auto f = impl_->feature_map(impl_->input_tensor(crops)).mean({2, 3}).to(torch::kCPU).contiguous();
  std::vector<Feature> out(crops.size(), Feature(kFeatureDim));
  const float* d = f.data_ptr<float>();
  for (size_t i = 0; i < out.size(); ++i) std::memcpy(out[i].data(), d + i * kFeatureDim, sizeof(float) * kFeatureDim);
  return out;
}

std::vector<Prediction> Model::classify_frames(const std::vector<const Feature*>& frames) const {
  if (frames.empty()) return {};
  c10::InferenceMode guard;
  return impl_->predictions(impl_->reference_step(impl_->stack(frames)));
}

std::vector<Prediction> Model::classify_windows(const std::vector<std::vector<const Feature*>>& windows,
                                                HeadMode mode) const {
  std::vector<Prediction> out(windows.size());
  if (windows.empty()) return out;
  c10::InferenceMode guard;
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
    auto x = impl_->stack(flat).view({int64_t(idx.size()), int64_t(len), kFeatureDim});
    auto preds = impl_->predictions(impl_->temporal(x));
    for (size_t j = 0; j < idx.size(); ++j) out[idx[j]] = preds[j];
  }
  return out;
}

cv::Mat Model::activation_map(const cv::Mat& crop, int cls) const {
  if (cls != kClassFake && cls != kClassReal) throw std::invalid_argument("class index must be 0 or 1");
  c10::InferenceMode guard;
  auto fmap = impl_->feature_map(impl_->input_tensor({crop}))[0];  // [2048, 4, 4]
  auto cam = torch::einsum("c,chw->hw", {impl_->head_w[cls], fmap}).to(torch::kCPU).contiguous();
  cam = cam - cam.min();
  const float mx = cam.max().item<float>();
  if (mx > 0) cam = cam / mx;
  cam = (cam * 255.f).to(torch::kUInt8).contiguous();
  cv::Mat small(int(cam.size(0)), int(cam.size(1)), CV_8UC1, cam.data_ptr<uint8_t>());
  cv::Mat out;
  cv::resize(small, out, crop.size(), 0, 0, cv::INTER_LINEAR);
  return out;
}

}  // namespace dfd
