// oneDNN 2.x implementation of OneDnnBackbone (see the header for why).
// Threads: Debian's libdnnl runs on OpenMP (libgomp); the caller's OpenMP
// count applies (OneDnnResNeXt sets it from num-threads per call).
#include "model/onednn_backbone.h"

#include <oneapi/dnnl/dnnl.hpp>

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
  bool reorder_in = false;  // the activations come in another layout than `src`
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
  dt act = dt::f32;  // activations and weights
  Conv stem;
  std::vector<Block> blocks;
  std::mutex mutex;

  // Weights reordered per (conv, layout asked for); the layout rarely
  // depends on the batch size, so usually one copy per convolution.
  std::map<const Conv*, std::vector<std::pair<memory::desc, memory>>> packed;
  std::map<const Conv*, memory> biases;
  std::map<std::pair<const Conv*, int64_t>, Conv> merged;  // group-merged forms (conv, factor), made when needed

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
    dnnl::reorder(user, m).execute(strm, user, m);
    strm.wait();
    cache.emplace_back(want, m);
    return m;
  }

  memory bias_for(const Conv& c) {
    auto it = biases.find(&c);
    if (it != biases.end()) return it->second;
    memory m({{c.out_channels}, dt::f32, tag::x}, eng);
    std::copy(c.bias.begin(), c.bias.end(), static_cast<float*>(m.get_data_handle()));
    return biases.emplace(&c, m).first->second;
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
                                                   const memory::desc& dst_want, Post post) {
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
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // one buffer for all, not an allocation per call
    auto make = [&](const memory::desc& src, const memory::desc& dst) {
      dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src,
                                        memory::desc(wdims, act, tag::any), memory::desc({c.out_channels}, dt::f32, tag::x),
                                        dst, {c.stride, c.stride}, {c.pad, c.pad}, {c.pad, c.pad});
      return dnnl::convolution_forward::primitive_desc(d, attr, eng);
    };
    if (!dst_want && act == dt::f32) {
      // On AVX-512, oneDNN 2.6 answers `any` in float32 with channels-last
      // brgemm kernels; its blocked (nChw16c) AVX-512 JIT kernels, LibTorch's
      // choice, run the same layers with the same post-ops faster (the
      // backbone at batch 8: 70.9 -> 60.8 ms a forward, oneDNN's verbose
      // timings, 2 threads). Where they do not exist (AVX2) `any` stays, and
      // so it does for bf16, whose AMX kernels are brgemm ones.
      try {
        auto blocked = make(memory::desc(src_dims, act, tag::any), memory::desc(dst_dims, act, tag::nChw16c));
        const std::string impl = blocked.impl_info_str();
        if (impl.rfind("jit", 0) == 0 && impl.find("avx512") != std::string::npos) return blocked;
      } catch (const dnnl::error&) {
        // no kernel for that layout: oneDNN's own choice below
      }
    }
    auto pd = make(memory::desc(src_dims, act, tag::any), dst_want ? dst_want : memory::desc(dst_dims, act, tag::any));
    if (kernel(pd) == "ref" && prev) pd = make(prev, dst_want ? dst_want : memory::desc(dst_dims, act, tag::any));
    if (kernel(pd) == "ref") pd = make(memory::desc(src_dims, act, tag::nchw), dst_want ? dst_want : memory::desc(dst_dims, act, tag::nchw));
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
                     Post post) {
    const Conv* c = &orig;
    auto pd = choose(*c, n, side_in, prev, dst_want, post);
    const int64_t per_group = orig.in_channels / orig.groups;
    for (int64_t f = 2; kernel(pd) != "jit" && orig.groups % f == 0 && per_group * f <= 16; f *= 2) {
      auto key = std::make_pair(&orig, f);
      if (!merged.count(key)) merged.emplace(key, merge_groups(orig, f));
      auto tried = choose(merged.at(key), n, side_in, prev, dst_want, post);
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
    s.bias = bias_for(*c);
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
    for (const Block& b : blocks) {
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
      y = s.c3.dst;
      side = side2;
      p.blocks.push_back(std::move(s));
    }
    p.out = y;
    p.user_out = memory::desc({n, channels(), side, side}, dt::f32, tag::nchw);
    p.to_user = dnnl::reorder(memory(p.out, eng, nullptr), memory(p.user_out, eng, nullptr));
    return p;
  }

  int64_t channels() const { return blocks.empty() ? stem.out_channels : blocks.back().c3.out_channels; }

  // Activation buffers: the block's input/output pair (the residual is
  // summed in place over the identity, so two suffice), two scratch, and
  // one for a convolution's input reordered to its layout.
  Arena io[2], scratch[2], relaid, pad;

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

  void run(const Plan& p, const float* in, float* out) {
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
      memory t1(s.c1.dst, eng, scratch[0].at_least(s.c1.dst.get_size()));
      memory t2(s.c2.dst, eng, scratch[1].at_least(s.c2.dst.get_size()));
      conv(s.c1, y, t1);
      conv(s.c2, t1, t2);
      memory z = y;  // c3 sums into the identity: y itself when no layout change
      if (s.has_down || s.reorder_identity) {
        cur ^= 1;
        z = memory(s.c3.dst, eng, io[cur].at_least(s.c3.dst.get_size()));
        if (s.has_down) conv(s.down, y, z);
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

OneDnnBackbone::OneDnnBackbone(Conv stem, std::vector<Block> blocks, bool bf16) : impl_(std::make_unique<Impl>()) {
  impl_->act = bf16 ? dt::bf16 : dt::f32;
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

void OneDnnBackbone::feature_map(const float* crops, int64_t n, int64_t size, float* out) {
  if (n <= 0) return;
  std::lock_guard<std::mutex> lock(impl_->mutex);
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
