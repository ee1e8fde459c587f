// The ResNeXt50 backbone on oneDNN directly (Debian's libdnnl, the same
// library LibTorch's CPU convolutions run on), for the CPU path of
// ResNeXtNet. What it adds over LibTorch's mkldnn tensors, i.e. over
// torch.jit.freeze + optimize_for_inference: every ReLU runs inside its
// convolution (an eltwise post-op), and each block's residual add and ReLU
// run inside its last convolution (sum + eltwise post-ops, written in place
// over the identity), so no activation is read and written again between
// layers. Weights (batch norms already folded) are reordered once into the
// layout each convolution asks for; primitives are made once per batch size;
// activations live in a few buffers reused from call to call.
//
// precision int8: the stem and the max pool stay float32; in every block the
// input is quantized to u8 once (one scale per tensor), the three
// convolutions and the downsample run u8 x s8 (weights with one scale per
// output channel) with s32 accumulation, c1 and c2 write u8, and c3 writes
// float32 with the residual sum and ReLU over the float32 identity, so the
// block's output and the skip path keep full precision. The activation
// scales come from calibrate(): the largest value of each activation over a
// float32 pass on calibration crops.
//
// No LibTorch here and no oneDNN in this header.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

namespace dfd {

class OneDnnBackbone {
 public:
  // One convolution with its batch norm folded in: weights OIHW (I per
  // group), bias per output channel.
  struct Conv {
    std::vector<float> weights, bias;
    int64_t out_channels = 0, in_channels = 0, kernel = 1, stride = 1, pad = 0, groups = 1;
  };
  struct Block {
    Conv c1, c2, c3, down;
    bool has_down = false;
  };

  // bf16: activations and weights in bfloat16 (bias and accumulation in
  // float32), for CPUs with AVX512_BF16; the caller checks the CPU.
  // int8: see above; calibrate() before the first feature_map().
  enum class Precision { f32, bf16, int8 };
  OneDnnBackbone(Conv stem, std::vector<Block> blocks, Precision precision);
  ~OneDnnBackbone();
  OneDnnBackbone(const OneDnnBackbone&) = delete;
  OneDnnBackbone& operator=(const OneDnnBackbone&) = delete;

  // int8 only: fixes the activation scales from a float32 forward over `n`
  // calibration crops (as feature_map takes them); a second call starts
  // again from float32 on its own crops. Throws
  // std::invalid_argument for no crops or another precision.
  void calibrate(const float* crops, int64_t n, int64_t size);

  // `n` crops, NCHW 3 x size x size floats, normalised -> the last feature
  // map, NCHW channels x rows x cols floats (plain float32) into `out`,
  // which must hold n * map_floats(size). Thread-safe (calls serialise).
  // int8 before calibrate(): std::logic_error.
  void feature_map(const float* crops, int64_t n, int64_t size, float* out);
  int64_t channels() const;
  // Side of the last feature map for `size` x `size` crops (4 for 112).
  int64_t map_side(int64_t size) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfd
