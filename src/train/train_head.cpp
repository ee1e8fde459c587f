// LibTorch side of deepfake-train: the trainable head (and backbone). The
// only training translation unit that includes torch headers.
#include "train/train_head.h"

#include "model/preprocess.h"

#include <torch/torch.h>

#include "model/torch_tensor.h"

#include <cstring>
#include <map>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

#include "model/architecture.h"

namespace dfd::train {

namespace {

torch::Tensor to_tensor(const TensorData& t) { return tensor_copy(t); }

const TensorData& at(const StateDict& sd, const std::string& k) { return tensor_at(sd, k); }

TensorData from_tensor(const torch::Tensor& x, DType dtype) {
  auto c = x.detach().to(torch::kCPU).to(dtype == DType::I64 ? torch::kInt64 : torch::kFloat32).contiguous();
  TensorData t;
  t.dtype = dtype;
  t.shape.assign(c.sizes().begin(), c.sizes().end());
  t.bytes.resize(size_t(c.numel()) * dtype_size(dtype));
  if (!t.bytes.empty()) std::memcpy(t.bytes.data(), c.data_ptr(), t.bytes.size());
  return t;
}

std::string archive_key(const std::string& name) {
  std::string s = name;
  for (auto& c : s)
    if (c == '.') c = '_';
  return s;
}

// ResNeXt50_32x4d bottleneck with torchvision's child names, so that
// named_parameters() and named_buffers() spell the state_dict keys.
struct BottleneckImpl : torch::nn::Module {
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
  explicit BottleneckImpl(const BottleneckSpec& s) {
    using torch::nn::Conv2dOptions;
    conv1 = register_module("conv1", torch::nn::Conv2d(Conv2dOptions(s.in, s.width, 1).bias(false)));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(s.width));
    conv2 = register_module("conv2", torch::nn::Conv2d(Conv2dOptions(s.width, s.width, 3).stride(s.stride).padding(1).groups(kGroups).bias(false)));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(s.width));
    conv3 = register_module("conv3", torch::nn::Conv2d(Conv2dOptions(s.width, s.out, 1).bias(false)));
    bn3 = register_module("bn3", torch::nn::BatchNorm2d(s.out));
    if (s.downsample)
      downsample = register_module("downsample", torch::nn::Sequential(
          torch::nn::Conv2d(Conv2dOptions(s.in, s.out, 1).stride(s.stride).bias(false)), torch::nn::BatchNorm2d(s.out)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::relu(bn1(conv1(x)));
    y = torch::relu(bn2(conv2(y)));
    y = bn3(conv3(y));
    return torch::relu(y + (downsample ? downsample->forward(x) : x));
  }
};
TORCH_MODULE(Bottleneck);

// The temporal LSTM over a whole window as one autograd node, with a
// hand-written backward pass (BPTT). Autograd on the step loop would build,
// zero and accumulate a 64 MiB gradient of weight_hh at every time step;
// here the weight gradients are two matrix products over all steps at once.
// Forward: the same operations, in the same order, as Model's temporal head.
struct WindowLSTM : torch::autograd::Function<WindowLSTM> {
  // x [B, T, D], w_ih [4H, D], w_hh [4H, H] -> last hidden state [B, H]
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w_ih,
                               const torch::Tensor& w_hh) {
    const int64_t B = x.size(0), T = x.size(1), H = w_hh.size(1);
    auto G = torch::matmul(x, w_ih.t());  // [B, T, 4H]
    auto acts = torch::empty({B, T, 4 * H}, x.options());  // sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
    auto cs = torch::empty({B, T, H}, x.options());
    auto hs = torch::empty({B, T, H}, x.options());
    auto h = torch::zeros({B, H}, x.options());
    auto c = torch::zeros({B, H}, x.options());
    for (int64_t t = 0; t < T; ++t) {
      auto g = G.select(1, t) + torch::mm(h, w_hh.t());
      auto q = g.chunk(4, 1);
      auto i = torch::sigmoid(q[0]), f = torch::sigmoid(q[1]), cc = torch::tanh(q[2]), o = torch::sigmoid(q[3]);
      c = f * c + i * cc;
      h = o * torch::tanh(c);
      acts.select(1, t).copy_(torch::cat({i, f, cc, o}, 1));
      cs.select(1, t).copy_(c);
      hs.select(1, t).copy_(h);
    }
    ctx->save_for_backward({x, w_ih, w_hh, acts, cs, hs});
    return h;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    auto x = saved[0], w_ih = saved[1], w_hh = saved[2], acts = saved[3], cs = saved[4], hs = saved[5];
    const int64_t B = x.size(0), T = x.size(1), D = x.size(2), H = w_hh.size(1);
    auto dG = torch::empty({B, T, 4 * H}, x.options());
    auto dh = grad_out[0].contiguous();
    auto dc = torch::zeros({B, H}, x.options());
    for (int64_t t = T - 1; t >= 0; --t) {
      auto q = acts.select(1, t).chunk(4, 1);
      const auto &i = q[0], &f = q[1], &cc = q[2], &o = q[3];
      auto tc = torch::tanh(cs.select(1, t));
      auto c_prev = t > 0 ? cs.select(1, t - 1) : torch::zeros({B, H}, x.options());
      dc = dc + dh * o * (1 - tc * tc);
      auto dgi = dc * cc * i * (1 - i);
      auto dgf = dc * c_prev * f * (1 - f);
      auto dgc = dc * i * (1 - cc * cc);
      auto dgo = dh * tc * o * (1 - o);
      auto dg = dG.select(1, t);
      dg.copy_(torch::cat({dgi, dgf, dgc, dgo}, 1));
      dh = torch::mm(dg, w_hh);  // to h_{t-1}
      dc = dc * f;               // to c_{t-1}
    }
    torch::Tensor gx, gih, ghh;
    auto dG2 = dG.reshape({B * T, 4 * H});
    if (ctx->needs_input_grad(0)) gx = torch::matmul(dG, w_ih);
    if (ctx->needs_input_grad(1)) gih = torch::mm(dG2.t(), x.reshape({B * T, D}));
    if (ctx->needs_input_grad(2)) {
      if (T > 1)
        ghh = torch::mm(dG.narrow(1, 1, T - 1).reshape({B * (T - 1), 4 * H}).t(),
                        hs.narrow(1, 0, T - 1).reshape({B * (T - 1), H}));
      else
        ghh = torch::zeros_like(w_hh);
    }
    return {gx, gih, ghh};
  }
};

// One of layer1..layer4: bottlenecks named "0", "1", ...
struct LayerImpl : torch::nn::Module {
  std::vector<Bottleneck> blocks;
  explicit LayerImpl(const std::string& prefix) {
    for (const auto& s : resnext50_blocks())
      if (s.prefix.rfind(prefix, 0) == 0) blocks.push_back(register_module(std::to_string(blocks.size()), Bottleneck(s)));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& b : blocks) x = b->forward(x);
    return x;
  }
};
TORCH_MODULE(Layer);

// The published backbone (resnext50_32x4d without avgpool and fc) with the
// state_dict's child names: "0" conv1, "1" bn1, "4".."7" layer1..layer4.
struct BackboneImpl : torch::nn::Module {
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  std::vector<Layer> layers;
  BackboneImpl() {
    conv = register_module("0", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false)));
    bn = register_module("1", torch::nn::BatchNorm2d(64));
    for (int l = 4; l <= 7; ++l) layers.push_back(register_module(std::to_string(l), Layer("model." + std::to_string(l) + ".")));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::max_pool2d(torch::relu(bn(conv(x))), {3, 3}, {2, 2}, {1, 1});
    for (auto& l : layers) y = l->forward(y);
    return y;  // [N, 2048, 4, 4]
  }
};
TORCH_MODULE(Backbone);

}  // namespace

double lstm_gradient_check(uint64_t seed) {
  torch::manual_seed(seed);
  const int64_t B = 3, T = 4, D = 5, H = 6;
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  auto x = torch::randn({B, T, D}, opts).requires_grad_(true);
  auto w_ih = (torch::randn({4 * H, D}, opts) * 0.5).requires_grad_(true);
  auto w_hh = (torch::randn({4 * H, H}, opts) * 0.5).requires_grad_(true);
  auto probe = torch::randn({B, H}, opts);
  // Reference: autograd through the plain step loop.
  auto h = torch::zeros({B, H}, opts), c = torch::zeros({B, H}, opts);
  auto G = torch::matmul(x, w_ih.t());
  for (int64_t t = 0; t < T; ++t) {
    auto q = (G.select(1, t) + torch::mm(h, w_hh.t())).chunk(4, 1);
    c = torch::sigmoid(q[1]) * c + torch::sigmoid(q[0]) * torch::tanh(q[2]);
    h = torch::sigmoid(q[3]) * torch::tanh(c);
  }
  auto ref = torch::autograd::grad({(h * probe).sum()}, {x, w_ih, w_hh});
  auto h2 = WindowLSTM::apply(x, w_ih, w_hh);
  auto got = torch::autograd::grad({(h2 * probe).sum()}, {x, w_ih, w_hh});
  double worst = (h - h2).abs().max().item<double>();
  for (size_t k = 0; k < 3; ++k) worst = std::max(worst, (ref[k] - got[k]).abs().max().item<double>());
  return worst;
}

struct Trainer::Impl {
  TrainerConfig cfg;
  // Head parameters. Temporal: w_ih [8192, 2048], w_hh [8192, 2048].
  // Reference: w_ico [6144, 2048] (input, cell, output gate rows); the
  // forget rows and w_hh are carried unchanged from the starting model.
  torch::Tensor w_ih, w_hh, w_ico, w_forget, lin_w, lin_b;
  mutable Backbone backbone{nullptr};
  std::vector<std::pair<std::string, torch::Tensor>> named;  // everything saved, in a fixed order
  std::unique_ptr<torch::optim::Adam> adam;

  bool temporal() const { return cfg.head == HeadMode::Temporal; }

  torch::Tensor stack(const std::vector<FeatureWindowRef>& windows, int64_t& T) const {
    if (windows.empty()) throw std::invalid_argument("empty batch");
    T = int64_t(windows.front().size());
    for (auto& w : windows)
      if (int64_t(w.size()) != T || T == 0) throw std::invalid_argument("windows of a batch must share one non-zero length");
    auto x = torch::empty({int64_t(windows.size()), T, kFeatureDim}, torch::kFloat32);
    float* d = x.data_ptr<float>();
    for (auto& w : windows)
      for (const Feature* f : w) {
        if (!f || f->size() != size_t(kFeatureDim)) throw std::invalid_argument("feature must have 2048 values");
        std::memcpy(d, f->data(), sizeof(float) * kFeatureDim);
        d += kFeatureDim;
      }
    return x;
  }

  torch::Tensor input_tensor(const std::vector<const cv::Mat*>& crops) const {
    auto x = torch::empty({int64_t(crops.size()), 3, kInputSize, kInputSize}, torch::kFloat32);
    crops_to_nchw(crops, Normalisation{cfg.mean, cfg.stdev, cfg.rgb}, x.data_ptr<float>());
    return x;
  }

  torch::Tensor backbone_features(const std::vector<const cv::Mat*>& crops) const {
    return backbone->forward(input_tensor(crops)).mean({2, 3});  // [N, 2048]
  }

  // x: [B, T, 2048] -> h of the last step [B, 2048] (temporal) or, in
  // reference mode, per-frame h [B*T, 2048] (all frames) / [B, 2048] (last frames).
  torch::Tensor hidden(const torch::Tensor& x, bool all_frames) const {
    const int64_t B = x.size(0), T = x.size(1);
    if (!temporal()) {
      auto f = all_frames ? x.reshape({B * T, kFeatureDim}) : x.select(1, T - 1);
      auto g = torch::mm(f, w_ico.t()).chunk(3, 1);
      auto c = torch::sigmoid(g[0]) * torch::tanh(g[1]);
      return torch::sigmoid(g[2]) * torch::tanh(c);
    }
    (void)B;
    (void)T;
    return WindowLSTM::apply(x, w_ih, w_hh);
  }

  torch::Tensor logits(const torch::Tensor& h) const { return torch::addmm(lin_b, h, lin_w.t()); }

  float optimise(const torch::Tensor& x, const std::vector<int>& labels, const std::array<float, 2>& cw) {
    const int64_t B = x.size(0), T = x.size(1);
    if (int64_t(labels.size()) != B) throw std::invalid_argument("one label per window");
    std::vector<int64_t> y;
    for (int l : labels) {
      if (l != kClassFake && l != kClassReal) throw std::invalid_argument("label must be a class index (0 FAKE, 1 REAL)");
      const int64_t rep = temporal() ? 1 : T;  // reference: every frame is a sample
      for (int64_t k = 0; k < rep; ++k) y.push_back(l);
    }
    auto target = torch::tensor(y, torch::kInt64);
    auto out = logits(hidden(x, /*all_frames=*/true));
    if (cfg.dropout > 0) out = torch::dropout(out, cfg.dropout, /*train=*/true);
    auto weight = torch::tensor({cw[0], cw[1]}, torch::kFloat32);
    auto loss = torch::nn::functional::cross_entropy(out, target, torch::nn::functional::CrossEntropyFuncOptions().weight(weight));
    adam->zero_grad();
    loss.backward();
    if (cfg.clip_grad_norm > 0) {
      std::vector<torch::Tensor> params;
      for (auto& g : adam->param_groups())
        for (auto& p : g.params()) params.push_back(p);
      torch::nn::utils::clip_grad_norm_(params, cfg.clip_grad_norm);
    }
    adam->step();
    return loss.item<float>();
  }
};

Trainer::Trainer(const StateDict& init, const TrainerConfig& config) : impl_(std::make_unique<Impl>()) {
  validate_state_dict(init);
  auto& m = *impl_;
  m.cfg = config;
  if (!(config.lr > 0)) throw std::invalid_argument("learning rate must be > 0");
  if (!(config.weight_decay >= 0)) throw std::invalid_argument("weight decay must be >= 0");
  if (!(config.dropout >= 0 && config.dropout < 1)) throw std::invalid_argument("dropout must lie in [0, 1)");
  if (!(config.clip_grad_norm >= 0)) throw std::invalid_argument("gradient clipping norm must be >= 0");
  if (config.threads > 0) torch::set_num_threads(config.threads);
  torch::manual_seed(config.seed);
  auto w_ih = to_tensor(at(init, "lstm.weight_ih_l0")).to(torch::kFloat32);
  m.w_hh = to_tensor(at(init, "lstm.weight_hh_l0")).to(torch::kFloat32);
  m.lin_w = to_tensor(at(init, "linear1.weight")).to(torch::kFloat32);
  m.lin_b = to_tensor(at(init, "linear1.bias")).to(torch::kFloat32);
  const bool train_lstm = !config.freeze_lstm;
  if (m.temporal()) {
    m.w_ih = w_ih;
    m.w_ih.set_requires_grad(train_lstm);
    m.w_hh.set_requires_grad(train_lstm);
    m.named = {{"w_ih", m.w_ih}, {"w_hh", m.w_hh}};
  } else {
    auto q = w_ih.chunk(4, 0);
    m.w_ico = torch::cat({q[0], q[2], q[3]}, 0).contiguous();
    m.w_forget = q[1].contiguous();
    m.w_ico.set_requires_grad(train_lstm);
    m.named = {{"w_ico", m.w_ico}};
  }
  m.lin_w.set_requires_grad(true);
  m.lin_b.set_requires_grad(true);
  m.named.push_back({"lin_w", m.lin_w});
  m.named.push_back({"lin_b", m.lin_b});
  std::vector<torch::Tensor> head;
  for (auto& [n, t] : m.named)
    if (t.requires_grad()) head.push_back(t);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(head);
  if (config.finetune_backbone) {
    m.backbone = Backbone();
    torch::NoGradGuard ng;
    std::vector<torch::Tensor> bb;
    for (auto& p : m.backbone->named_parameters()) {
      p.value().copy_(to_tensor(at(init, "model." + p.key())));
      bb.push_back(p.value());
      m.named.push_back({"backbone." + p.key(), p.value()});
    }
    for (auto& b : m.backbone->named_buffers()) {
      b.value().copy_(to_tensor(at(init, "model." + b.key())));
      m.named.push_back({"backbone." + b.key(), b.value()});
    }
    // Batch statistics of a few crops are noise: batch norms keep the
    // starting model's running statistics (eval mode); their affine
    // parameters still train.
    m.backbone->eval();
    auto opts = std::make_unique<torch::optim::AdamOptions>(config.backbone_lr > 0 ? config.backbone_lr : config.lr);
    opts->weight_decay(config.weight_decay);
    groups.emplace_back(bb, std::move(opts));
  }
  m.adam = std::make_unique<torch::optim::Adam>(groups, torch::optim::AdamOptions(config.lr).weight_decay(config.weight_decay));
}

Trainer::~Trainer() = default;

const TrainerConfig& Trainer::config() const { return impl_->cfg; }

int64_t Trainer::trainable_parameters() const {
  int64_t n = 0;
  for (auto& g : impl_->adam->param_groups())
    for (auto& p : g.params()) n += p.numel();
  return n;
}

void Trainer::reseed(uint64_t epoch) { torch::manual_seed(impl_->cfg.seed * 1000003ull + epoch); }

float Trainer::step(const std::vector<FeatureWindowRef>& windows, const std::vector<int>& labels,
                    const std::array<float, 2>& class_weights) {
  if (impl_->cfg.finetune_backbone) throw std::logic_error("a fine-tuning trainer takes crops (step_crops)");
  int64_t T = 0;
  auto x = impl_->stack(windows, T);
  return impl_->optimise(x, labels, class_weights);
}

float Trainer::step_crops(const std::vector<CropWindowRef>& windows, const std::vector<int>& labels,
                          const std::array<float, 2>& class_weights) {
  if (!impl_->cfg.finetune_backbone) throw std::logic_error("step_crops needs finetune_backbone");
  if (windows.empty()) throw std::invalid_argument("empty batch");
  const int64_t T = int64_t(windows.front().size());
  std::vector<const cv::Mat*> flat;
  for (auto& w : windows) {
    if (int64_t(w.size()) != T || T == 0) throw std::invalid_argument("windows of a batch must share one non-zero length");
    flat.insert(flat.end(), w.begin(), w.end());
  }
  auto f = impl_->backbone_features(flat).view({int64_t(windows.size()), T, kFeatureDim});
  return impl_->optimise(f, labels, class_weights);
}

std::vector<Prediction> Trainer::predict(const std::vector<FeatureWindowRef>& windows) const {
  std::vector<Prediction> out;
  if (windows.empty()) return out;
  torch::NoGradGuard ng;
  // Batch windows of equal length together.
  std::map<size_t, std::vector<size_t>> by_len;
  for (size_t i = 0; i < windows.size(); ++i) {
    if (windows[i].empty()) throw std::invalid_argument("empty window");
    by_len[windows[i].size()].push_back(i);
  }
  out.resize(windows.size());
  for (auto& [len, idx] : by_len) {
    std::vector<FeatureWindowRef> part;
    for (auto i : idx) part.push_back(windows[i]);
    int64_t T = 0;
    auto x = impl_->stack(part, T);
    auto l = impl_->logits(impl_->hidden(x, /*all_frames=*/false)).contiguous();
    auto p = torch::softmax(l, 1).contiguous();
    auto la = l.accessor<float, 2>();
    auto pa = p.accessor<float, 2>();
    for (size_t j = 0; j < idx.size(); ++j) {
      Prediction& pr = out[idx[j]];
      pr.logits = {la[int64_t(j)][0], la[int64_t(j)][1]};
      pr.prob_fake = pa[int64_t(j)][kClassFake];
    }
  }
  return out;
}

std::vector<Feature> Trainer::features(const std::vector<cv::Mat>& crops) const {
  if (!impl_->cfg.finetune_backbone) throw std::logic_error("Trainer::features needs finetune_backbone (use Model::features)");
  std::vector<Feature> out;
  if (crops.empty()) return out;
  torch::NoGradGuard ng;
  std::vector<const cv::Mat*> ptrs;
  for (auto& c : crops) ptrs.push_back(&c);
  auto f = impl_->backbone_features(ptrs).contiguous();
  out.assign(crops.size(), Feature(kFeatureDim));
  const float* d = f.data_ptr<float>();
  for (size_t i = 0; i < out.size(); ++i) std::memcpy(out[i].data(), d + i * kFeatureDim, sizeof(float) * kFeatureDim);
  return out;
}

void Trainer::export_into(StateDict& sd, bool validate) const {
  const auto& m = *impl_;
  torch::NoGradGuard ng;
  if (m.temporal()) {
    sd["lstm.weight_ih_l0"] = from_tensor(m.w_ih, DType::F32);
  } else {
    auto q = m.w_ico.chunk(3, 0);
    sd["lstm.weight_ih_l0"] = from_tensor(torch::cat({q[0], m.w_forget, q[1], q[2]}, 0), DType::F32);
  }
  sd["lstm.weight_hh_l0"] = from_tensor(m.w_hh, DType::F32);
  sd["linear1.weight"] = from_tensor(m.lin_w, DType::F32);
  sd["linear1.bias"] = from_tensor(m.lin_b, DType::F32);
  if (m.backbone) {
    for (auto& p : m.backbone->named_parameters()) sd["model." + p.key()] = from_tensor(p.value(), DType::F32);
    for (auto& b : m.backbone->named_buffers())
      sd["model." + b.key()] = from_tensor(b.value(), b.key().find("num_batches_tracked") != std::string::npos ? DType::I64 : DType::F32);
  }
  if (validate) validate_state_dict(sd);
}

void Trainer::load_weights(const StateDict& sd) {
  auto& m = *impl_;
  torch::NoGradGuard ng;
  auto set = [&](torch::Tensor& dst, const std::string& k) {
    auto v = to_tensor(at(sd, k)).to(torch::kFloat32);
    if (!v.sizes().equals(dst.sizes())) throw std::runtime_error("shape mismatch for '" + k + "'");
    dst.copy_(v);
  };
  auto w_ih = to_tensor(at(sd, "lstm.weight_ih_l0")).to(torch::kFloat32);
  if (w_ih.size(0) != 4 * kFeatureDim || w_ih.size(1) != kFeatureDim) throw std::runtime_error("shape mismatch for 'lstm.weight_ih_l0'");
  if (m.temporal()) {
    m.w_ih.copy_(w_ih);
  } else {
    auto q = w_ih.chunk(4, 0);
    m.w_ico.copy_(torch::cat({q[0], q[2], q[3]}, 0));
    m.w_forget.copy_(q[1]);
  }
  set(m.w_hh, "lstm.weight_hh_l0");
  set(m.lin_w, "linear1.weight");
  set(m.lin_b, "linear1.bias");
  if (m.backbone) {
    for (auto& p : m.backbone->named_parameters()) set(p.value(), "model." + p.key());
    for (auto& b : m.backbone->named_buffers()) {
      auto v = to_tensor(at(sd, "model." + b.key()));
      b.value().copy_(v.to(b.value().scalar_type()));
    }
  }
}

void Trainer::save(const std::string& path) const {
  const auto& m = *impl_;
  torch::serialize::OutputArchive ar;
  ar.write("head_mode", torch::tensor(int64_t(m.temporal() ? 1 : 0)));
  ar.write("finetune_backbone", torch::tensor(int64_t(m.backbone ? 1 : 0)));
  for (auto& [n, t] : m.named) ar.write("param_" + archive_key(n), t.detach(), /*is_buffer=*/true);
  torch::serialize::OutputArchive opt;
  m.adam->save(opt);
  ar.write("adam", opt);
  const std::string tmp = path + ".tmp";
  ar.save_to(tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot write checkpoint '" + path + "'");
}

void Trainer::load(const std::string& path) {
  auto& m = *impl_;
  torch::serialize::InputArchive ar;
  try {
    ar.load_from(path);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read checkpoint '" + path + "': not a deepfake-train checkpoint");
  }
  torch::Tensor mode, ft;
  if (!ar.try_read("head_mode", mode) || !ar.try_read("finetune_backbone", ft))
    throw std::runtime_error("'" + path + "' is not a deepfake-train checkpoint");
  if ((mode.item<int64_t>() == 1) != m.temporal())
    throw std::runtime_error("checkpoint '" + path + "' was made with the " + (m.temporal() ? "reference" : "temporal") + " head");
  if ((ft.item<int64_t>() == 1) != bool(m.backbone))
    throw std::runtime_error(std::string("checkpoint '") + path + "' was made " + (m.backbone ? "without" : "with") + " backbone fine-tuning");
  torch::NoGradGuard ng;
  for (auto& [n, t] : m.named) {
    torch::Tensor v;
    if (!ar.try_read("param_" + archive_key(n), v) || !v.sizes().equals(t.sizes()))
      throw std::runtime_error("checkpoint '" + path + "' lacks or misshapes '" + n + "'");
    t.copy_(v);
  }
  torch::serialize::InputArchive opt;
  if (!ar.try_read("adam", opt)) throw std::runtime_error("checkpoint '" + path + "' has no optimiser state");
  m.adam->load(opt);
}

}  // namespace dfd::train
