// LibTorch implementation of the ResNeXt50 + LSTM network. This is one of
// the few translation units that include torch headers (build time on 2
// cores). It uses only APIs common to LibTorch 1.13 (Debian, CPU) and 2.x
// (CUDA): the device is a runtime value, never an #ifdef.
//
// The backbone keeps batch norms folded into the convolutions (inference
// only), laid out channels-last. On the CPU it runs on LibTorch's mkldnn
// tensors with the folded weights reordered once into oneDNN's blocked
// layout (the CPU default is OneDnnResNeXt, model/onednn_resnext.h, which
// fuses more and needs no LibTorch; this path stays to compare with and
// for backend=libtorch). The head keeps
// the LSTM weights as published; the reference per-frame step needs only the
// input, cell and output gate rows of weight_ih (forget gate times a zero
// cell state is zero), so those rows are kept contiguous apart.
#include "model/resnext_net.h"

#include <torch/torch.h>

#include "model/torch_tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>

#include "model/architecture.h"
#include "model/cpu_features.h"

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
  // cuDNN's fused forms, CUDA only: relu(conv(x) + b), relu(conv(x) + b + z).
  // Note the argument order: stride before padding, unlike conv2d.
  torch::Tensor relu(const torch::Tensor& x) const {
    return torch::cudnn_convolution_relu(x, w, b, {stride, stride}, {pad, pad}, {1, 1}, groups);
  }
  torch::Tensor add_relu(const torch::Tensor& x, const torch::Tensor& z) const {
    static const c10::Scalar one(1.0);
    return torch::cudnn_convolution_add_relu(x, w, z, one, b, {stride, stride}, {pad, pad}, {1, 1}, groups);
  }
  // The generic path's weights: on the device, in the backbone's precision.
  void place(const torch::Device& d, torch::ScalarType t) {
    w = w.to(d, t).contiguous(torch::MemoryFormat::ChannelsLast);
    b = b.to(d, t);
  }
};

struct Block {
  ConvBN c1, c2, c3, down;
  bool has_down = false;
};

torch::Tensor to_tensor(const TensorData& t) { return float_tensor(t); }
const TensorData& at(const StateDict& sd, const std::string& k) { return tensor_at(sd, k); }

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

// "cpu", "cuda", "cuda:N" -> a device this process can use, or a clear error.
torch::Device resolve_device(const std::string& s) {
  if (s == "cpu") return torch::Device(torch::kCPU);
  if (s != "cuda" && s.rfind("cuda:", 0) != 0)
    throw std::invalid_argument("unknown device '" + s + "' (expected cpu, cuda or cuda:N)");
  int index = 0;
  if (s != "cuda") {
    const std::string n = s.substr(5);
    if (n.empty() || n.size() > 3 || n.find_first_not_of("0123456789") != std::string::npos)
      throw std::invalid_argument("unknown device '" + s + "' (expected cpu, cuda or cuda:N)");
    index = std::stoi(n);
  }
  if (!at::hasCUDA())
    throw std::runtime_error("device=" + s + ": no CUDA device: this LibTorch is CPU-only (Debian's libtorch-dev); "
                             "build against a LibTorch with CUDA (docs/gpu.md)");
  const size_t count = torch::cuda::is_available() ? torch::cuda::device_count() : 0;
  if (count == 0) throw std::runtime_error("device=" + s + ": no CUDA device visible to this process");
  if (size_t(index) >= count)
    throw std::runtime_error("device=" + s + ": only " + std::to_string(count) + " CUDA device(s) here");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

// The backbone's arithmetic for this device and path, or a clear error.
torch::ScalarType resolve_precision(const std::string& p, const torch::Device& d) {
  if (p == "fp32") return torch::kFloat32;
  if (p == "bf16") {
    if (d.is_cpu() && (!torch::hasMKLDNN() || !cpu_has_native_bf16()))
      throw std::runtime_error("precision=bf16 needs oneDNN on a CPU with AVX512_BF16 (or AMX); use fp32");
    return torch::kBFloat16;
  }
  if (p == "fp16") {
    if (d.is_cpu()) throw std::runtime_error("precision=fp16 needs a CUDA device; on a CPU use fp32 (or bf16)");
    return torch::kFloat16;
  }
  if (p == "int8") throw std::invalid_argument("precision=int8 runs ResNeXt on backend=onednn (the CPU default) only");
  throw std::invalid_argument("unknown precision '" + p + "' (expected fp32, bf16 or fp16)");
}


}  // namespace

struct ResNeXtNet::Impl {
  torch::Device device{torch::kCPU};
  std::string device_name, precision, engine = "libtorch";
  int batch = 0;                                     // crops per forward; 0: all at once
  bool use_mkldnn = false;                           // the prepacked CPU path
  // CUDA, opt-in (DFD_CUDNN_FUSED=1, for bench/gpu to compare): convolution,
  // bias, residual add and ReLU as one cuDNN call each instead of three or
  // four kernels. Not the default until measured on a GPU.
  bool fused = false;
  torch::ScalarType compute_type = torch::kFloat32;  // backbone arithmetic
  ConvBN stem;
  std::vector<Block> blocks;
  // As published, [8192, 2048]; used through transposed views (BLAS takes
  // them as they are), so loading copies no 64 MB matrix a second time.
  torch::Tensor w_ih, w_hh;
  torch::Tensor w_ico_t;  // [2048, 6144]: input, cell, output gate columns
  torch::Tensor lin_w_t;  // [2048, 2]
  torch::Tensor lin_b;    // [2]
  torch::Tensor head_w;   // [2, 2048], for activation maps

  void for_each_conv(const std::function<void(ConvBN&)>& f) {
    f(stem);
    for (auto& b : blocks)
      for (ConvBN* c : {&b.c1, &b.c2, &b.c3, &b.down})
        if (c->w.defined()) f(*c);
  }

  // Host NCHW floats -> the backbone's input on the device. The prepacked
  // path converts to oneDNN's layout itself; the generic one uploads the
  // (pinned) batch as one asynchronous copy, then casts and re-lays it out
  // there.
  torch::Tensor upload(const torch::Tensor& host) const {
    if (use_mkldnn) return host;
    auto x = device.is_cpu() ? host : host.to(device, /*non_blocking=*/true);
    return x.to(compute_type).contiguous(torch::MemoryFormat::ChannelsLast);
  }

  torch::Tensor fused_feature_map(const torch::Tensor& x) const {
    auto y = torch::max_pool2d(stem.relu(x), {3, 3}, {2, 2}, {1, 1});
    for (const auto& b : blocks) {
      auto identity = b.has_down ? b.down(y) : y;
      y = b.c3.add_relu(b.c2.relu(b.c1.relu(y)), identity);
    }
    return y.to(torch::kFloat32);
  }

  torch::Tensor feature_map(const torch::Tensor& input) const {
    if (fused) return fused_feature_map(input);
    auto x = use_mkldnn ? input.contiguous().to(compute_type).to_mkldnn() : input;
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
    return y.is_mkldnn() ? y.to_dense().to(torch::kFloat32) : y.to(torch::kFloat32);  // [N, 2048, 4, 4]
  }

  torch::Tensor pooled(const torch::Tensor& host) const { return feature_map(upload(host)).mean({2, 3}); }

  // Calls f(chunk, first row) over the batch in chunks of `batch` crops.
  template <class F>
  void for_chunks(const Batch& b, F f) const {
    const auto& host = *static_cast<const torch::Tensor*>(b.owner().get());
    const int64_t n = host.size(0), step = batch > 0 ? batch : std::max<int64_t>(n, 1);
    for (int64_t i = 0; i < n; i += step) f(host.narrow(0, i, std::min(step, n - i)), i);
  }

  // Only the logits come back from the device; softmax on the host.
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

  torch::Tensor host_rows(const float* x, int64_t rows) const {
    auto t = torch::from_blob(const_cast<float*>(x), {rows, kFeatureDim}, torch::kFloat32);
    return device.is_cpu() ? t.clone() : t.to(device);
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
    auto G = torch::matmul(x, w_ih.t());  // input projections of every step at once
    auto h = torch::zeros({B, kFeatureDim}, x.options());
    auto c = torch::zeros({B, kFeatureDim}, x.options());
    for (int64_t t = 0; t < T; ++t) {
      auto g = G.select(1, t) + torch::mm(h, w_hh.t());
      auto q = g.chunk(4, 1);  // PyTorch gate order: input, forget, cell, output
      c = torch::sigmoid(q[1]) * c + torch::sigmoid(q[0]) * torch::tanh(q[2]);
      h = torch::sigmoid(q[3]) * torch::tanh(c);
    }
    return h;
  }
};

void ResNeXtNet::check(const ModelOptions& opts) {
  const torch::Device d = resolve_device(opts.device);
  if (opts.generic_path && !d.is_cpu())
    throw std::invalid_argument("generic_path is a CPU option: CUDA always runs the generic path");
  resolve_precision(opts.precision, d);
  if (opts.batch_size < 0) throw std::invalid_argument("batch size must be 0 (auto) or positive");
}

ResNeXtNet::ResNeXtNet(const StateDict& sd, const ModelOptions& opts) : impl_(std::make_unique<Impl>()) {
  check(opts);
  Impl& m = *impl_;
  m.device = resolve_device(opts.device);
  m.compute_type = resolve_precision(opts.precision, m.device);
  m.batch = opts.batch_size > 0 ? opts.batch_size : (m.device.is_cuda() ? kAutoCudaBatch : 0);
  m.precision = opts.precision;
  m.device_name = m.device.str();
  m.use_mkldnn = m.device.is_cpu() && !opts.generic_path && torch::hasMKLDNN() && !std::getenv("DFD_NO_MKLDNN");
  if (opts.num_threads > 0) torch::set_num_threads(opts.num_threads);
  c10::InferenceMode guard;
  m.stem = fold(sd, "model.0.", "model.1.", 2, 3, 1);
  for (const auto& spec : resnext50_blocks()) {
    Block b;
    b.c1 = fold(sd, spec.prefix + "conv1.", spec.prefix + "bn1.", 1, 0, 1);
    b.c2 = fold(sd, spec.prefix + "conv2.", spec.prefix + "bn2.", spec.stride, 1, kGroups);
    b.c3 = fold(sd, spec.prefix + "conv3.", spec.prefix + "bn3.", 1, 0, 1);
    if ((b.has_down = spec.downsample)) b.down = fold(sd, spec.prefix + "downsample.0.", spec.prefix + "downsample.1.", spec.stride, 0, 1);
    m.blocks.push_back(std::move(b));
  }
  if (m.use_mkldnn) {
    m.for_each_conv([&](ConvBN& c) { c.pack(m.compute_type); });
    m.engine = "libtorch-mkldnn";
  } else {
    m.for_each_conv([&](ConvBN& c) { c.place(m.device, m.compute_type); });
  }
  m.w_ih = to_tensor(at(sd, "lstm.weight_ih_l0"));
  auto q = m.w_ih.chunk(4, 0);
  m.w_ico_t = torch::cat({q[0], q[2], q[3]}, 0).t().contiguous();
  m.w_hh = to_tensor(at(sd, "lstm.weight_hh_l0"));
  m.head_w = to_tensor(at(sd, "linear1.weight"));
  m.lin_w_t = m.head_w.t().contiguous();
  m.lin_b = to_tensor(at(sd, "linear1.bias"));
  if (m.device.is_cuda()) {
    const char* f = std::getenv("DFD_CUDNN_FUSED");
    m.fused = f && std::string(f) == "1";
    for (auto* t : {&m.w_ih, &m.w_ico_t, &m.w_hh, &m.lin_w_t, &m.lin_b, &m.head_w}) *t = t->to(m.device);
    // Per input shape, cuDNN times its algorithms once and keeps the fastest
    // (the grouped 3x3 convolutions differ most). Process-wide by nature.
    at::globalContext().setBenchmarkCuDNN(true);
  }
}

ResNeXtNet::~ResNeXtNet() = default;

ResNeXtNet::Batch ResNeXtNet::batch(size_t n) const {
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(impl_->device.is_cuda());
  auto t = std::make_shared<torch::Tensor>(torch::empty({int64_t(n), 3, kInputSize, kInputSize}, opts));
  float* data = t->data_ptr<float>();
  return Batch(std::move(t), data, n);
}

std::vector<Feature> ResNeXtNet::features(const Batch& crops) const {
  c10::InferenceMode guard;
  std::vector<Feature> out(crops.crops(), Feature(kFeatureDim));
  impl_->for_chunks(crops, [&](const torch::Tensor& chunk, int64_t first) {
    auto f = impl_->pooled(chunk).to(torch::kCPU).contiguous();
    const float* d = f.data_ptr<float>();
    for (int64_t i = 0; i < f.size(0); ++i) std::memcpy(out[size_t(first + i)].data(), d + i * kFeatureDim, sizeof(float) * kFeatureDim);
  });
  return out;
}

std::vector<Prediction> ResNeXtNet::classify_crops(const Batch& crops, std::vector<Feature>* features) const {
  c10::InferenceMode guard;
  std::vector<Prediction> out;
  if (features) features->assign(crops.crops(), Feature(kFeatureDim));
  impl_->for_chunks(crops, [&](const torch::Tensor& chunk, int64_t first) {
    auto f = impl_->pooled(chunk);
    auto p = impl_->predictions(impl_->reference_step(f));
    out.insert(out.end(), p.begin(), p.end());
    if (!features) return;
    f = f.to(torch::kCPU).contiguous();
    const float* d = f.data_ptr<float>();
    for (int64_t i = 0; i < f.size(0); ++i) std::memcpy((*features)[size_t(first + i)].data(), d + i * kFeatureDim, sizeof(float) * kFeatureDim);
  });
  return out;
}

std::vector<Prediction> ResNeXtNet::classify_frames(const float* x, size_t n) const {
  if (n == 0) return {};
  c10::InferenceMode guard;
  return impl_->predictions(impl_->reference_step(impl_->host_rows(x, int64_t(n))));
}

std::vector<Prediction> ResNeXtNet::classify_temporal(const float* x, size_t b, size_t t) const {
  if (b == 0) return {};
  if (t == 0) throw std::invalid_argument("empty window");
  c10::InferenceMode guard;
  auto rows = impl_->host_rows(x, int64_t(b * t)).view({int64_t(b), int64_t(t), kFeatureDim});
  return impl_->predictions(impl_->temporal(rows));
}

std::vector<float> ResNeXtNet::activation_cells(const Batch& one_crop, int cls, int* rows, int* cols) const {
  if (one_crop.crops() != 1) throw std::invalid_argument("activation map: one crop at a time");
  if (cls != kClassFake && cls != kClassReal) throw std::invalid_argument("class index must be 0 or 1");
  c10::InferenceMode guard;
  const auto& host = *static_cast<const torch::Tensor*>(one_crop.owner().get());
  auto fmap = impl_->feature_map(impl_->upload(host))[0];  // [2048, h, w]
  auto cam = torch::einsum("c,chw->hw", {impl_->head_w[cls], fmap}).to(torch::kCPU).contiguous();
  *rows = int(cam.size(0));
  *cols = int(cam.size(1));
  const float* d = cam.data_ptr<float>();
  return std::vector<float>(d, d + cam.numel());
}

const std::string& ResNeXtNet::device() const { return impl_->device_name; }
const std::string& ResNeXtNet::precision() const { return impl_->precision; }
int ResNeXtNet::batch_size() const { return impl_->batch; }
bool ResNeXtNet::prepacked() const { return impl_->use_mkldnn; }
const std::string& ResNeXtNet::engine() const { return impl_->engine; }
bool ResNeXtNet::fused() const { return impl_->fused; }

}  // namespace dfd
