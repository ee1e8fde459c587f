// oneDNN 2.x implementation of OneDnnBackbone (see the header for why).
// int8 follows oneDNN 2.x's quantization model: u8 = f32 * scale; a
// convolution's output scales take its s32 accumulator to the output's
// scale, and its bias is added to the accumulator before them (so it is
// given in the accumulator's scale, checked against oneDNN 2.6 by the
// parity tests).
// Threads: Debian's libdnnl runs on OpenMP (libgomp); the caller's OpenMP
// count applies (OneDnnResNeXt sets it from num-threads per call).
#include "model/onednn_backbone.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace dfd {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

int64_t out_side(int64_t in, int64_t k, int64_t s, int64_t p) { return (in + 2 * p - k) / s + 1; }

// u8 per unit of an activation whose largest value is `range` (ReLU
// outputs: never negative).
float activation_scale(float range) { return range > 0 ? 255.f / range : 1.f; }

// s8 per unit of each output channel's weights: its largest magnitude to 127.
std::vector<float> weight_scales(const OneDnnBackbone::Conv& c) {
  std::vector<float> scales(size_t(c.out_channels));
  const size_t per_output = c.weights.size() / scales.size();
  for (size_t o = 0; o < scales.size(); ++o) {
    float top = 0;
    for (size_t i = 0; i < per_output; ++i) top = std::max(top, std::fabs(c.weights[o * per_output + i]));
    scales[o] = top > 0 ? 127.f / top : 1.f;
  }
  return scales;
}

// The largest value in a float32 activation buffer (blocked layouts pad
// with zeros, which ReLU outputs never fall below).
float largest(const memory& m) {
  const float* f = static_cast<const float*>(m.get_data_handle());
  const size_t n = m.get_desc().get_size() / sizeof(float);
  return n ? *std::max_element(f, f + n) : 0.f;
}

// A buffer that grows to the largest size any batch needed, reused by every
// call (calls are serialised by Impl::mutex).
// 64-byte aligned, as oneDNN recommends for its vector loads.
struct Arena {
  std::unique_ptr<void, void (*)(void*)> data{nullptr, std::free};
  size_t size = 0;
  void* at_least(size_t n) {
    if (n > size) {
      const size_t rounded = (n + 63) / 64 * 64;
      data.reset(std::aligned_alloc(64, rounded));
      if (!data) throw std::bad_alloc();
      size = rounded;
    }
    return data.get();
  }
};

// One convolution's primitive for one batch size, and where its operands live.
struct ConvStep {
  dnnl::convolution_forward prim;
  memory::desc src, dst, scratchpad;
  memory weights, bias;  // reordered for this primitive's choice (shared when equal)
  bool reorder_in = false;  // the activations come in another layout (same type) than `src`
  dnnl::reorder to_src;
};

// The same convolution with every `f` neighbouring groups merged into one
// group of f times the channels, its weights block-diagonal (zero between
// the merged groups, so the sums are the same). oneDNN's optimised kernels
// need at least 8 channels a group on AVX2; ResNeXt's first stage has 4.
OneDnnBackbone::Conv merge_groups(const OneDnnBackbone::Conv& c, int64_t f) {
  const int64_t g = c.groups, oc = c.out_channels / g, ic = c.in_channels / g, kk = c.kernel * c.kernel;
  OneDnnBackbone::Conv m = c;
  m.groups = g / f;
  m.weights.assign(size_t(c.out_channels * ic * f * kk), 0.f);
  for (int64_t o = 0; o < c.out_channels; ++o) {
    const int64_t sub = (o / oc) % f;  // which of the merged groups this output belongs to
    for (int64_t i = 0; i < ic; ++i)
      for (int64_t k = 0; k < kk; ++k)
        m.weights[size_t((o * ic * f + sub * ic + i) * kk + k)] = c.weights[size_t((o * ic + i) * kk + k)];
  }
  return m;
}

}  // namespace

struct OneDnnBackbone::Impl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  dt act = dt::f32;  // activations and weights (int8: of the stem, the pool and the blocks' outputs)
  bool int8 = false;
  std::vector<float> ranges;  // int8: per block, its input's, c1's and c2's largest value (calibrate)
  Conv stem;
  std::vector<Block> blocks;
  std::mutex mutex;

  // Weights reordered per (conv, layout asked for); the layout rarely
  // depends on the batch size, so usually one copy per convolution.
  std::map<const Conv*, std::vector<std::pair<memory::desc, memory>>> packed;
  std::map<const Conv*, memory> biases;  // float32, or int8's in the accumulator's scale
  std::map<std::pair<const Conv*, int64_t>, Conv> merged;
  // int8: each convolution's weight scales (one pass over its weights), made
  // once and kept across plans and calibrations, which do not change them.
  std::map<const Conv*, std::vector<float>> weight_scale_cache;

  const std::vector<float>& scales_of(const Conv& c) {
    auto it = weight_scale_cache.find(&c);
    if (it == weight_scale_cache.end()) it = weight_scale_cache.emplace(&c, weight_scales(c)).first;
    return it->second;
  }  // group-merged forms (conv, factor), made when needed

  // The reordered weights of `c` in layout `want`, made once.
  memory weights_for(const Conv& c, const memory::desc& want) {
    auto& cache = packed[&c];
    for (auto& [d, m] : cache)
      if (d == want) return m;
    const memory::dims dims = c.groups > 1
        ? memory::dims{c.groups, c.out_channels / c.groups, c.in_channels / c.groups, c.kernel, c.kernel}
        : memory::dims{c.out_channels, c.in_channels, c.kernel, c.kernel};
    memory user({dims, dt::f32, c.groups > 1 ? tag::goihw : tag::oihw}, eng, const_cast<float*>(c.weights.data()));
    memory m(want, eng);
    dnnl::primitive_attr attr;
    if (want.data_type() == dt::s8) attr.set_output_scales(c.groups > 1 ? 0b11 : 0b1, scales_of(c));
    dnnl::reorder(user, m, attr).execute(strm, user, m);
    strm.wait();
    cache.emplace_back(want, m);
    return m;
  }

  // int8: how a convolution's input and output are quantized; out == 0
  // for a float32 output.
  struct Int8 {
    float in = 1, out = 0;
  };

  // `c`'s bias; for int8 in its accumulator's scale (input x weight scale).
  memory bias_for(const Conv& c, const Int8* q) {
    auto it = biases.find(&c);
    if (it != biases.end()) return it->second;
    memory m({{c.out_channels}, dt::f32, tag::x}, eng);
    float* b = static_cast<float*>(m.get_data_handle());
    std::copy(c.bias.begin(), c.bias.end(), b);
    if (q) {
      const auto& ws = scales_of(c);
      for (size_t o = 0; o < ws.size(); ++o) b[o] *= q->in * ws[o];
    }
    return biases.emplace(&c, m).first->second;
  }

  // A convolution's data types, and for int8 its output scales per channel.
  struct Types {
    dt src, weights, dst;
    std::vector<float> scales;
  };
  Types types_for(const Conv& c, const Int8* q) {
    if (!q) return {act, act, act, {}};
    Types t{dt::u8, dt::s8, q->out > 0 ? dt::u8 : dt::f32, scales_of(c)};
    for (float& s : t.scales) s = (q->out > 0 ? q->out : 1.f) / (q->in * s);
    return t;
  }

  // The primitive descriptor for `c` reading activations laid out as
  // `prev`, its output in layout `dst_want` (its own choice when zero), with
  // the post-ops asked: ReLU, or residual sum then ReLU. The convolution
  // first picks its own input layout (the activations are reordered to it
  // when `prev` differs); where oneDNN has only its reference kernel for
  // that, it takes `prev` as it is, and failing that plain NCHW (the GEMM
  // kernel, as LibTorch uses for such convolutions).
  enum class Post { None, Relu, SumRelu };
  dnnl::convolution_forward::primitive_desc choose(const Conv& c, int64_t n, int64_t side_in, const memory::desc& prev,
                                                   const memory::desc& dst_want, Post post, const Types& t) {
    const int64_t side = out_side(side_in, c.kernel, c.stride, c.pad);
    const memory::dims src_dims{n, c.in_channels, side_in, side_in}, dst_dims{n, c.out_channels, side, side};
    const memory::dims wdims = c.groups > 1
        ? memory::dims{c.groups, c.out_channels / c.groups, c.in_channels / c.groups, c.kernel, c.kernel}
        : memory::dims{c.out_channels, c.in_channels, c.kernel, c.kernel};
    dnnl::post_ops ops;
    if (post == Post::SumRelu) ops.append_sum(1.f);
    if (post != Post::None) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    if (!t.scales.empty()) attr.set_output_scales(1 << 1, t.scales);  // per output channel
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // one buffer for all, not an allocation per call
    auto make = [&](const memory::desc& src, const memory::desc& dst) {
      dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src,
                                        memory::desc(wdims, t.weights, tag::any), memory::desc({c.out_channels}, dt::f32, tag::x),
                                        dst, {c.stride, c.stride}, {c.pad, c.pad}, {c.pad, c.pad});
      return dnnl::convolution_forward::primitive_desc(d, attr, eng);
    };
    const memory::desc any_src(src_dims, t.src, tag::any), any_dst(dst_dims, t.dst, tag::any);
    if (!dst_want && t.src == dt::f32) {
      // On AVX-512, oneDNN 2.6 answers `any` in float32 with channels-last
      // brgemm kernels; its blocked (nChw16c) AVX-512 JIT kernels, LibTorch's
      // choice, run the same layers with the same post-ops faster (the
      // backbone at batch 8: 70.9 -> 60.8 ms a forward, oneDNN's verbose
      // timings, 2 threads). Where they do not exist (AVX2) `any` stays, and
      // so it does for bf16 and int8, whose AMX kernels are brgemm ones.
      try {
        auto blocked = make(any_src, memory::desc(dst_dims, t.dst, tag::nChw16c));
        const std::string impl = blocked.impl_info_str();
        if (impl.rfind("jit", 0) == 0 && impl.find("avx512") != std::string::npos) return blocked;
      } catch (const dnnl::error&) {
        // no kernel for that layout: oneDNN's own choice below
      }
    }
    auto pd = make(any_src, dst_want ? dst_want : any_dst);
    if (kernel(pd) == "ref" && prev) pd = make(prev, dst_want ? dst_want : any_dst);
    if (kernel(pd) == "ref") {  // plain layouts: NCHW for GEMM in floats, int8's kernels want channels last
      const tag plain = t.src == dt::u8 ? tag::nhwc : tag::nchw;
      pd = make(memory::desc(src_dims, t.src, plain), dst_want ? dst_want : memory::desc(dst_dims, t.dst, plain));
    }
    return pd;
  }

  // "jit", "gemm" or "ref": which kind of kernel oneDNN chose. The
  // optimised ones are "jit:..." / "jit_1x1:..." and, on AVX-512 and AMX
  // CPUs, the brgemm-based "brgconv..." / "brg..." (taking those for
  // reference kernels sent every layer on such a CPU to plain NCHW and GEMM:
  // 1.3-1.4x slower than LibTorch there). "gemm" is the im2col GEMM kernel.
  static std::string kernel(const dnnl::convolution_forward::primitive_desc& pd) {
    const std::string impl = pd.impl_info_str();
    if (impl.rfind("jit", 0) == 0 || impl.rfind("brg", 0) == 0) return "jit";
    if (impl.find("gemm") != std::string::npos) return "gemm";
    return "ref";
  }

  // `orig` as one step: where a grouped convolution has too few channels a
  // group for oneDNN's JIT kernels on this CPU (ResNeXt's first stage has 4;
  // AVX2 kernels want 8, AVX-512 ones 16), neighbouring groups are merged
  // (merge_groups) until it gets one: more multiply-adds by zero, but no
  // GEMM kernel and no reorders around it.
  ConvStep make_conv(const Conv& orig, int64_t n, int64_t side_in, const memory::desc& prev, const memory::desc& dst_want,
                     Post post, const Int8* q = nullptr) {
    const Conv* c = &orig;
    const Types t = types_for(orig, q);  // merged groups keep each output channel's weights, so its scale
    auto pd = choose(*c, n, side_in, prev, dst_want, post, t);
    const int64_t per_group = orig.in_channels / orig.groups;
    for (int64_t f = 2; kernel(pd) != "jit" && orig.groups % f == 0 && per_group * f <= 16; f *= 2) {
      auto key = std::make_pair(&orig, f);
      if (!merged.count(key)) merged.emplace(key, merge_groups(orig, f));
      auto tried = choose(merged.at(key), n, side_in, prev, dst_want, post, t);
      if (kernel(tried) == "jit") {
        c = &merged.at(key);
        pd = tried;
      }
    }
    ConvStep s;
    s.prim = dnnl::convolution_forward(pd);
    s.src = pd.src_desc();
    s.dst = pd.dst_desc();
    s.scratchpad = pd.scratchpad_desc();
    s.weights = weights_for(*c, pd.weights_desc());
    s.bias = bias_for(*c, q);
    if (prev && s.src != prev) {
      s.reorder_in = true;
      s.to_src = dnnl::reorder(memory(prev, eng, nullptr), memory(s.src, eng, nullptr));
    }
    return s;
  }

  // Everything one batch size needs, made on its first call.
  struct Plan {
    memory::desc user_in, user_out;
    dnnl::reorder to_stem, to_user;
    ConvStep stem;
    dnnl::pooling_forward pool;
    memory::desc pool_dst;
    struct BlockSteps {
      ConvStep c1, c2, c3, down;
      bool has_down = false, reorder_identity = false;
      dnnl::reorder identity;  // y -> c3's output layout, when they differ
      // int8: y quantized to c1's input, and apart for the downsample when
      // it asks for another layout.
      bool int8 = false, quantize_down_apart = false;
      dnnl::reorder quantize, quantize_down;
    };
    std::vector<BlockSteps> blocks;
    memory::desc out;  // the last block's output
  };
  std::unordered_map<int64_t, Plan> plans;  // by (batch, size) key

  Plan make_plan(int64_t n, int64_t size) {
    Plan p;
    p.user_in = memory::desc({n, 3, size, size}, dt::f32, tag::nchw);
    p.stem = make_conv(stem, n, size, {}, {}, Post::Relu);
    p.to_stem = dnnl::reorder(memory(p.user_in, eng, nullptr), memory(p.stem.src, eng, nullptr));
    int64_t side = out_side(size, stem.kernel, stem.stride, stem.pad);
    const int64_t pooled = out_side(side, 3, 2, 1);
    p.pool_dst = memory::desc({n, stem.out_channels, pooled, pooled}, act, tag::any);
    dnnl::pooling_forward::desc pdsc(dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max, p.stem.dst,
                                     p.pool_dst, {2, 2}, {3, 3}, {1, 1}, {1, 1});
    dnnl::pooling_forward::primitive_desc ppd(pdsc, eng);
    p.pool = dnnl::pooling_forward(ppd);
    p.pool_dst = ppd.dst_desc();
    side = pooled;
    memory::desc y = p.pool_dst;
    for (size_t i = 0; i < blocks.size(); ++i) {
      p.blocks.push_back(quantized() ? int8_block(blocks[i], i, n, side, y) : float_block(blocks[i], n, side, y));
      y = p.blocks.back().c3.dst;
      side = out_side(side, blocks[i].c2.kernel, blocks[i].c2.stride, blocks[i].c2.pad);
    }
    p.out = y;
    p.user_out = memory::desc({n, channels(), side, side}, dt::f32, tag::nchw);
    p.to_user = dnnl::reorder(memory(p.out, eng, nullptr), memory(p.user_out, eng, nullptr));
    return p;
  }

  bool quantized() const { return int8 && !ranges.empty(); }

  // Plans, packed weights and biases are made for one precision's
  // arithmetic (biases are cached by convolution, in float32 or in an int8
  // accumulator's scale): dropped when calibrate() changes it.
  void forget_plans() {
    plans.clear();
    packed.clear();
    biases.clear();
  }

  // One block on input `y` (side x side): c1, c2, then c3 summing into the
  // identity (the downsample's output, or y itself) with its ReLU.
  Plan::BlockSteps float_block(const Block& b, int64_t n, int64_t side, const memory::desc& y) {
    Plan::BlockSteps s;
    s.c1 = make_conv(b.c1, n, side, y, {}, Post::Relu);
    s.c2 = make_conv(b.c2, n, side, s.c1.dst, {}, Post::Relu);
    const int64_t side2 = out_side(side, b.c2.kernel, b.c2.stride, b.c2.pad);
    s.c3 = make_conv(b.c3, n, side2, s.c2.dst, {}, Post::SumRelu);
    if ((s.has_down = b.has_down)) {
      s.down = make_conv(b.down, n, side, y, s.c3.dst, Post::None);  // written where c3 sums into
    } else if (y != s.c3.dst) {
      s.reorder_identity = true;
      s.identity = dnnl::reorder(memory(y, eng, nullptr), memory(s.c3.dst, eng, nullptr));
    }
    return s;
  }

  // The same block in int8 (see the header): y quantized once, c1 and c2
  // u8 -> u8, c3 and the downsample u8 -> float32.
  Plan::BlockSteps int8_block(const Block& b, size_t i, int64_t n, int64_t side, const memory::desc& y) {
    const float in = activation_scale(ranges[3 * i]), s1 = activation_scale(ranges[3 * i + 1]);
    const float s2 = activation_scale(ranges[3 * i + 2]);
    const Int8 q1{in, s1}, q2{s1, s2}, q3{s2, 0}, qd{in, 0};
    Plan::BlockSteps s;
    s.int8 = true;
    s.c1 = make_conv(b.c1, n, side, {}, {}, Post::Relu, &q1);
    s.c2 = make_conv(b.c2, n, side, s.c1.dst, {}, Post::Relu, &q2);
    const int64_t side2 = out_side(side, b.c2.kernel, b.c2.stride, b.c2.pad);
    s.c3 = make_conv(b.c3, n, side2, s.c2.dst, {}, Post::SumRelu, &q3);
    s.quantize = quantizer(y, s.c1.src, in);
    if ((s.has_down = b.has_down)) {
      s.down = make_conv(b.down, n, side, s.c1.src, s.c3.dst, Post::None, &qd);
      s.down.reorder_in = false;  // its input is quantized from y, not relaid from c1's
      if ((s.quantize_down_apart = s.down.src != s.c1.src)) s.quantize_down = quantizer(y, s.down.src, in);
    } else if (y != s.c3.dst) {
      s.reorder_identity = true;
      s.identity = dnnl::reorder(memory(y, eng, nullptr), memory(s.c3.dst, eng, nullptr));
    }
    return s;
  }

  // float32 `from` -> u8 `to` at `scale` (rounded, saturated).
  dnnl::reorder quantizer(const memory::desc& from, const memory::desc& to, float scale) {
    dnnl::primitive_attr attr;
    attr.set_output_scales(0, {scale});
    return dnnl::reorder(memory(from, eng, nullptr), memory(to, eng, nullptr), attr);
  }

  int64_t channels() const { return blocks.empty() ? stem.out_channels : blocks.back().c3.out_channels; }

  // Activation buffers: the block's input/output pair (the residual is
  // summed in place over the identity, so two suffice), two scratch, and
  // one for a convolution's input reordered to its layout.
  Arena io[2], scratch[2], relaid, pad, quantized_in[2];

  void conv(const ConvStep& s, const memory& src, const memory& dst) {
    memory in = src;
    if (s.reorder_in) {
      memory from = src;  // reorder::execute takes non-const handles
      in = memory(s.src, eng, relaid.at_least(s.src.get_size()));
      s.to_src.execute(strm, from, in);
    }
    memory scratchpad(s.scratchpad, eng, pad.at_least(s.scratchpad.get_size()));
    s.prim.execute(strm, {{DNNL_ARG_SRC, in}, {DNNL_ARG_WEIGHTS, s.weights}, {DNNL_ARG_BIAS, s.bias}, {DNNL_ARG_DST, dst},
                          {DNNL_ARG_SCRATCHPAD, scratchpad}});
  }

  // `observed` (calibration): each block's input's, c1's and c2's largest
  // value are appended, in that order.
  void run(const Plan& p, const float* in, float* out, std::vector<float>* observed = nullptr) {
    auto observe = [&](const memory& m) {
      if (!observed) return;
      strm.wait();
      observed->push_back(largest(m));
    };
    memory user_in(p.user_in, eng, const_cast<float*>(in));
    memory stem_in(p.stem.src, eng, scratch[0].at_least(p.stem.src.get_size()));
    p.to_stem.execute(strm, user_in, stem_in);
    memory stem_out(p.stem.dst, eng, scratch[1].at_least(p.stem.dst.get_size()));
    conv(p.stem, stem_in, stem_out);
    int cur = 0;
    memory y(p.pool_dst, eng, io[cur].at_least(p.pool_dst.get_size()));
    p.pool.execute(strm, {{DNNL_ARG_SRC, stem_out}, {DNNL_ARG_DST, y}});
    for (size_t i = 0; i < p.blocks.size(); ++i) {
      const auto& s = p.blocks[i];
      observe(y);
      memory in1 = y, in_down = y;
      if (s.int8) {
        in1 = memory(s.c1.src, eng, quantized_in[0].at_least(s.c1.src.get_size()));
        s.quantize.execute(strm, y, in1);
        in_down = in1;
        if (s.quantize_down_apart) {
          in_down = memory(s.down.src, eng, quantized_in[1].at_least(s.down.src.get_size()));
          s.quantize_down.execute(strm, y, in_down);
        }
      }
      memory t1(s.c1.dst, eng, scratch[0].at_least(s.c1.dst.get_size()));
      memory t2(s.c2.dst, eng, scratch[1].at_least(s.c2.dst.get_size()));
      conv(s.c1, in1, t1);
      observe(t1);
      conv(s.c2, t1, t2);
      observe(t2);
      memory z = y;  // c3 sums into the identity: y itself when no layout change
      if (s.has_down || s.reorder_identity) {
        cur ^= 1;
        z = memory(s.c3.dst, eng, io[cur].at_least(s.c3.dst.get_size()));
        if (s.has_down) conv(s.down, in_down, z);
        else s.identity.execute(strm, y, z);
      }
      conv(s.c3, t2, z);
      y = z;
    }
    memory user_out(p.user_out, eng, out);
    p.to_user.execute(strm, y, user_out);
    strm.wait();
  }
};

OneDnnBackbone::OneDnnBackbone(Conv stem, std::vector<Block> blocks, Precision precision)
    : impl_(std::make_unique<Impl>()) {
  impl_->act = precision == Precision::bf16 ? dt::bf16 : dt::f32;
  impl_->int8 = precision == Precision::int8;
  impl_->stem = std::move(stem);
  impl_->blocks = std::move(blocks);
}

OneDnnBackbone::~OneDnnBackbone() = default;

int64_t OneDnnBackbone::channels() const { return impl_->channels(); }

int64_t OneDnnBackbone::map_side(int64_t size) const {
  const Conv& s = impl_->stem;
  int64_t side = out_side(out_side(size, s.kernel, s.stride, s.pad), 3, 2, 1);  // stem, max pool
  for (const Block& b : impl_->blocks) side = out_side(side, b.c2.kernel, b.c2.stride, b.c2.pad);
  return side;
}

void OneDnnBackbone::calibrate(const float* crops, int64_t n, int64_t size) {
  if (!impl_->int8) throw std::invalid_argument("calibrate: the backbone is not int8");
  if (n <= 0) throw std::invalid_argument("calibrate: no calibration crops");
  std::lock_guard<std::mutex> lock(impl_->mutex);
  Impl& m = *impl_;
  std::vector<float> observed;
  m.forget_plans();  // a second calibration: no int8 plan, bias or weights in its float32 pass
  try {
    m.ranges.clear();  // a float32 plan
    std::vector<float> out(size_t(n * channels() * map_side(size) * map_side(size)));
    m.run(m.make_plan(n, size), crops, out.data(), &observed);
  } catch (const dnnl::error& e) {
    throw std::runtime_error(std::string("oneDNN backbone (int8 calibration): ") + e.what());
  }
  m.ranges = std::move(observed);
  m.forget_plans();  // the float32 forms were for calibration only
  // as were activation buffers sized for the whole calibration batch
  for (Arena* a : {&m.io[0], &m.io[1], &m.scratch[0], &m.scratch[1], &m.relaid, &m.pad, &m.quantized_in[0], &m.quantized_in[1]})
    *a = Arena();
}

void OneDnnBackbone::feature_map(const float* crops, int64_t n, int64_t size, float* out) {
  if (n <= 0) return;
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (impl_->int8 && impl_->ranges.empty()) throw std::logic_error("oneDNN backbone: int8 before calibrate()");
  const int64_t key = n * 100000 + size;
  try {
    auto it = impl_->plans.find(key);
    if (it == impl_->plans.end()) {
      if (impl_->plans.size() >= 16) impl_->plans.clear();  // many batch sizes: start again rather than grow
      it = impl_->plans.emplace(key, impl_->make_plan(n, size)).first;
    }
    impl_->run(it->second, crops, out);
  } catch (const dnnl::error& e) {
    throw std::runtime_error(std::string("oneDNN backbone: ") + e.what());
  }
}

}  // namespace dfd
