// OneDnnResNeXt: the published ResNeXt50 + LSTM module's arithmetic on
// oneDNN alone (see the header for why). Folding each batch norm into its
// convolution follows the LibTorch path (model/resnext_net.cpp) operation by
// operation, in float32: scale = gamma / sqrt(var + eps), w * scale,
// beta - mean * scale. The LSTM has no biases (architecture.h); the
// reference per-frame step starts from a zero state, so the forget gate and
// weight_hh play no part in it (reference-model.md).
#include "model/onednn_resnext.h"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <future>
#include <stdexcept>
#include <string>

#include "model/architecture.h"
#include "model/cpu_features.h"
#include "model/onednn_backbone.h"

namespace dfd {

namespace {

constexpr float kBatchNormEps = 1e-5f;  // nn.BatchNorm2d's default
constexpr int64_t kGates = 4 * kFeatureDim;  // LSTM rows: input, forget, cell, output

OneDnnBackbone::Conv fold(const StateDict& sd, const std::string& conv, const std::string& bn, int64_t stride,
                          int64_t pad, int64_t groups) {
  const TensorData& w = tensor_named(sd, conv + "weight");
  const auto gamma = float32_values(tensor_named(sd, bn + "weight")), beta = float32_values(tensor_named(sd, bn + "bias"));
  const auto mean = float32_values(tensor_named(sd, bn + "running_mean"));
  const auto var = float32_values(tensor_named(sd, bn + "running_var"));
  OneDnnBackbone::Conv c;
  c.weights = float32_values(w);
  c.out_channels = w.shape.at(0);
  c.in_channels = w.shape.at(1) * groups;
  c.kernel = w.shape.at(2);
  c.stride = stride;
  c.pad = pad;
  c.groups = groups;
  const size_t per_output = c.weights.size() / size_t(c.out_channels);
  c.bias.resize(size_t(c.out_channels));
  for (size_t o = 0; o < c.bias.size(); ++o) {
    const float scale = gamma[o] / std::sqrt(var[o] + kBatchNormEps);
    float* row = c.weights.data() + o * per_output;
    for (size_t i = 0; i < per_output; ++i) row[i] *= scale;
    c.bias[o] = beta[o] - mean[o] * scale;
  }
  return c;
}

std::unique_ptr<OneDnnBackbone> make_backbone(const StateDict& sd, OneDnnBackbone::Precision precision) {
  OneDnnBackbone::Conv stem = fold(sd, "model.0.", "model.1.", 2, 3, 1);
  std::vector<OneDnnBackbone::Block> blocks;
  for (const auto& spec : resnext50_blocks()) {
    OneDnnBackbone::Block b;
    b.c1 = fold(sd, spec.prefix + "conv1.", spec.prefix + "bn1.", 1, 0, 1);
    b.c2 = fold(sd, spec.prefix + "conv2.", spec.prefix + "bn2.", spec.stride, 1, kGroups);
    b.c3 = fold(sd, spec.prefix + "conv3.", spec.prefix + "bn3.", 1, 0, 1);
    if ((b.has_down = spec.downsample))
      b.down = fold(sd, spec.prefix + "downsample.0.", spec.prefix + "downsample.1.", spec.stride, 0, 1);
    blocks.push_back(std::move(b));
  }
  return std::make_unique<OneDnnBackbone>(std::move(stem), std::move(blocks), precision);
}

// C[m x n] = A[m x k] . B[n x k]^T + beta * C, row-major: B as nn.Linear and
// nn.LSTM store their weights (one output per row).
void gemm_by_rows(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float beta, float* c) {
  if (dnnl_sgemm('N', 'T', m, n, k, 1.f, a, k, b, k, beta, c, n) != dnnl_success)
    throw std::runtime_error("oneDNN sgemm failed");
}

float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

std::shared_ptr<void> aligned_floats(size_t n) {
  const size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes ? bytes : 64);
  if (!p) throw std::bad_alloc();
  return std::shared_ptr<void>(p, std::free);
}

}  // namespace

struct OneDnnResNeXt::Impl {
  std::string device = "cpu", precision, engine = "onednn-fused";
  int batch = 0;    // crops per forward; 0: all at once
  int threads = 0;  // OpenMP threads for oneDNN; 0 leaves the calling thread's count
  std::unique_ptr<OneDnnBackbone> backbone;
  std::vector<float> w_ih, w_hh;  // [8192, 2048] each, as published
  std::vector<float> lin_w, lin_b;  // [2, 2048], [2]
  // The first forward pass at a batch size makes oneDNN's primitives and
  // reorders the weights (about 0.1 s for 100 MB): done for one crop on
  // another thread as soon as the model is built, while the caller goes on
  // (a pipeline starting, the first frame decoded); a call before it ends
  // waits on the backbone's lock.
  std::future<void> warm_up;

  ~Impl() {
    if (warm_up.valid()) warm_up.wait();
  }

  // oneDNN (OpenMP) takes the calling thread's count; setting it is cheap
  // (an ICV, no pool reset), and the callers are the element's threads.
  void use_threads() const {
    if (threads > 0) omp_set_num_threads(threads);
  }

  // Last feature maps of n crops: n x 2048 x side x side floats.
  std::vector<float> maps(const float* crops, int64_t n, int64_t* side) const {
    *side = backbone->map_side(kInputSize);
    std::vector<float> out(size_t(n * backbone->channels() * *side * *side));
    use_threads();
    backbone->feature_map(crops, n, kInputSize, out.data());
    return out;
  }

  // Pooled features of n crops into rows (n x 2048): the mean of each map.
  void pooled(const float* crops, int64_t n, float* rows) const {
    int64_t side = 0;
    const auto m = maps(crops, n, &side);
    const int64_t cells = side * side;
    for (int64_t i = 0; i < n * kFeatureDim; ++i) {
      float sum = 0;
      for (int64_t j = 0; j < cells; ++j) sum += m[size_t(i * cells + j)];
      rows[i] = sum / float(cells);
    }
  }

  // f(first crop's floats, crops, index of the first) over the batch in chunks.
  template <class F>
  void for_chunks(const Batch& b, F f) const {
    const int64_t n = int64_t(b.crops()), step = batch > 0 ? batch : std::max<int64_t>(n, 1);
    const int64_t floats = 3 * int64_t(kInputSize) * kInputSize;
    for (int64_t i = 0; i < n; i += step) f(b.data() + i * floats, std::min(step, n - i), i);
  }

  // One zero-state LSTM step per row of x (n x 2048): c = sig(i) tanh(g),
  // h = sig(o) tanh(c). Rows of weight_ih: input 0, cell 2, output 3 (x 2048).
  std::vector<float> reference_step(const float* x, int64_t n) const {
    const int64_t d = kFeatureDim;
    std::vector<float> in(size_t(n * d)), cell_out(size_t(n * 2 * d)), h(size_t(n * d));
    use_threads();
    gemm_by_rows(n, d, d, x, w_ih.data(), 0.f, in.data());
    gemm_by_rows(n, 2 * d, d, x, w_ih.data() + 2 * d * d, 0.f, cell_out.data());  // cell and output rows are adjacent
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < d; ++j) {
        const float* co = cell_out.data() + r * 2 * d;
        const float c = sigmoid(in[size_t(r * d + j)]) * std::tanh(co[j]);
        h[size_t(r * d + j)] = sigmoid(co[d + j]) * std::tanh(c);
      }
    return h;
  }

  // Time-major recurrence over b windows of t rows from a zero state: the last h.
  std::vector<float> temporal(const float* x, int64_t b, int64_t t) const {
    const int64_t d = kFeatureDim;
    std::vector<float> inputs(size_t(b * t * kGates));  // every step's input projection at once
    use_threads();
    gemm_by_rows(b * t, kGates, d, x, w_ih.data(), 0.f, inputs.data());
    std::vector<float> h(size_t(b * d), 0.f), c(size_t(b * d), 0.f), g(size_t(b * kGates));
    for (int64_t step = 0; step < t; ++step) {
      for (int64_t w = 0; w < b; ++w)
        std::memcpy(g.data() + w * kGates, inputs.data() + (w * t + step) * kGates, sizeof(float) * size_t(kGates));
      gemm_by_rows(b, kGates, d, h.data(), w_hh.data(), 1.f, g.data());
      for (int64_t w = 0; w < b; ++w) {
        const float* q = g.data() + w * kGates;  // PyTorch's gate order: input, forget, cell, output
        for (int64_t j = 0; j < d; ++j) {
          float& cj = c[size_t(w * d + j)];
          cj = sigmoid(q[d + j]) * cj + sigmoid(q[j]) * std::tanh(q[2 * d + j]);
          h[size_t(w * d + j)] = sigmoid(q[3 * d + j]) * std::tanh(cj);
        }
      }
    }
    return h;
  }

  // The linear layer and a softmax over the two classes, per row of h.
  std::vector<Prediction> predictions(const float* h, int64_t n) const {
    std::vector<float> logits(size_t(n * 2));
    for (int64_t r = 0; r < n; ++r) std::copy(lin_b.begin(), lin_b.end(), logits.begin() + r * 2);
    gemm_by_rows(n, 2, kFeatureDim, h, lin_w.data(), 1.f, logits.data());
    std::vector<Prediction> out(static_cast<size_t>(n));
    for (int64_t r = 0; r < n; ++r) {
      const float l0 = logits[size_t(2 * r)], l1 = logits[size_t(2 * r + 1)], top = std::max(l0, l1);
      const float e0 = std::exp(l0 - top), e1 = std::exp(l1 - top);
      out[size_t(r)].logits = {l0, l1};
      out[size_t(r)].prob_fake = (kClassFake == 0 ? e0 : e1) / (e0 + e1);
    }
    return out;
  }
};

void OneDnnResNeXt::check(const ModelOptions& opts) {
  if (opts.device != "cpu")
    throw std::invalid_argument("the oneDNN ResNeXt runs on the CPU only (device=" + opts.device + "): use backend=libtorch");
  if (opts.generic_path) throw std::invalid_argument("generic_path is LibTorch's: use backend=libtorch");
  if (opts.precision == "bf16") {
    if (!cpu_has_native_bf16())
      throw std::runtime_error("precision=bf16 needs oneDNN on a CPU with AVX512_BF16 (or AMX); use fp32");
  } else if (opts.precision == "fp16") {
    throw std::runtime_error("precision=fp16 needs a CUDA device; on a CPU use fp32 (or bf16)");
  } else if (opts.precision != "fp32" && opts.precision != "int8") {
    throw std::invalid_argument("unknown precision '" + opts.precision + "' (expected fp32, bf16, int8 or fp16)");
  }
  if (opts.batch_size < 0) throw std::invalid_argument("batch size must be 0 (auto) or positive");
}

OneDnnResNeXt::OneDnnResNeXt(const StateDict& sd, const ModelOptions& opts, const std::vector<float>& calibration)
    : impl_(std::make_unique<Impl>()) {
  check(opts);
  const size_t crop_floats = 3 * size_t(kInputSize) * kInputSize;
  if (opts.precision == "int8" && (calibration.empty() || calibration.size() % crop_floats))
    throw std::invalid_argument("precision=int8 needs calibration crops (n x 3 x 112 x 112 floats)");
  Impl& m = *impl_;
  m.precision = opts.precision;
  m.batch = opts.batch_size;
  m.threads = opts.num_threads;
  using P = OneDnnBackbone::Precision;
  m.backbone = make_backbone(sd, opts.precision == "bf16" ? P::bf16 : opts.precision == "int8" ? P::int8 : P::f32);
  if (opts.precision == "int8") {
    m.use_threads();
    m.backbone->calibrate(calibration.data(), int64_t(calibration.size() / crop_floats), kInputSize);
  }
  m.w_ih = float32_values(tensor_named(sd, "lstm.weight_ih_l0"));
  m.w_hh = float32_values(tensor_named(sd, "lstm.weight_hh_l0"));
  m.lin_w = float32_values(tensor_named(sd, "linear1.weight"));
  m.lin_b = float32_values(tensor_named(sd, "linear1.bias"));
  m.warm_up = std::async(std::launch::async, [&m] {
    int64_t side = 0;
    const std::vector<float> zero_crop(size_t(3 * kInputSize * kInputSize), 0.f);
    try {
      m.maps(zero_crop.data(), 1, &side);
    } catch (const std::exception&) {
      // the same error comes back, with its context, from the first real call
    }
  });
}

OneDnnResNeXt::~OneDnnResNeXt() = default;

ResNeXtEngine::Batch OneDnnResNeXt::batch(size_t n) const {
  const size_t floats = n * 3 * size_t(kInputSize) * kInputSize;
  auto owner = aligned_floats(floats);
  float* data = static_cast<float*>(owner.get());
  return Batch(std::move(owner), data, n);
}

std::vector<Feature> OneDnnResNeXt::features(const Batch& crops) const {
  std::vector<Feature> out(crops.crops(), Feature(kFeatureDim));
  impl_->for_chunks(crops, [&](const float* x, int64_t n, int64_t first) {
    std::vector<float> rows(size_t(n * kFeatureDim));
    impl_->pooled(x, n, rows.data());
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(out[size_t(first + i)].data(), rows.data() + i * kFeatureDim, sizeof(float) * kFeatureDim);
  });
  return out;
}

std::vector<Prediction> OneDnnResNeXt::classify_crops(const Batch& crops, std::vector<Feature>* features) const {
  std::vector<Prediction> out;
  if (features) features->assign(crops.crops(), Feature(kFeatureDim));
  impl_->for_chunks(crops, [&](const float* x, int64_t n, int64_t first) {
    std::vector<float> rows(size_t(n * kFeatureDim));
    impl_->pooled(x, n, rows.data());
    const auto h = impl_->reference_step(rows.data(), n);
    const auto p = impl_->predictions(h.data(), n);
    out.insert(out.end(), p.begin(), p.end());
    if (!features) return;
    for (int64_t i = 0; i < n; ++i)
      std::memcpy((*features)[size_t(first + i)].data(), rows.data() + i * kFeatureDim, sizeof(float) * kFeatureDim);
  });
  return out;
}

std::vector<Prediction> OneDnnResNeXt::classify_frames(const float* x, size_t n) const {
  if (n == 0) return {};
  const auto h = impl_->reference_step(x, int64_t(n));
  return impl_->predictions(h.data(), int64_t(n));
}

std::vector<Prediction> OneDnnResNeXt::classify_temporal(const float* x, size_t b, size_t t) const {
  if (b == 0) return {};
  if (t == 0) throw std::invalid_argument("empty window");
  const auto h = impl_->temporal(x, int64_t(b), int64_t(t));
  return impl_->predictions(h.data(), int64_t(b));
}

std::vector<float> OneDnnResNeXt::activation_cells(const Batch& one_crop, int cls, int* rows, int* cols) const {
  if (one_crop.crops() != 1) throw std::invalid_argument("activation map: one crop at a time");
  if (cls != kClassFake && cls != kClassReal) throw std::invalid_argument("class index must be 0 or 1");
  int64_t side = 0;
  const auto m = impl_->maps(one_crop.data(), 1, &side);
  const int64_t cells = side * side;
  std::vector<float> cam(size_t(cells), 0.f);
  const float* w = impl_->lin_w.data() + int64_t(cls) * kFeatureDim;
  for (int64_t ch = 0; ch < kFeatureDim; ++ch)
    for (int64_t j = 0; j < cells; ++j) cam[size_t(j)] += w[ch] * m[size_t(ch * cells + j)];
  *rows = *cols = int(side);
  return cam;
}

const std::string& OneDnnResNeXt::device() const { return impl_->device; }
const std::string& OneDnnResNeXt::precision() const { return impl_->precision; }
int OneDnnResNeXt::batch_size() const { return impl_->batch; }
const std::string& OneDnnResNeXt::engine() const { return impl_->engine; }

}  // namespace dfd
