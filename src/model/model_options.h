// How a detector is placed and run: device, arithmetic, batch. Neither
// LibTorch nor OpenCV here, so the network core (model/resnext_net.h) and the
// GPU benchmark (bench/gpu/) can use it without either.
#pragma once
#include <string>

namespace dfd {

struct ModelOptions {
  // "cpu", or "cuda" / "cuda:N" where LibTorch was built with CUDA and sees
  // a device (Debian's LibTorch is CPU-only: then a clear error at load).
  std::string device = "cpu";
  int num_threads = 0;  // intra-op threads (LibTorch's, or OpenCV's for the dnn backend); 0 leaves its choice
  // Backbone arithmetic: "fp32"; "bf16" on CUDA, or on CPUs with
  // AVX512_BF16/AMX; "fp16" on CUDA only; "int8" on the CPU (ResNeXt on
  // oneDNN, MesoNet on OpenCV's dnn), its scales from calibration faces
  // (model/mesonet_calibration.h). The LSTM head stays fp32.
  std::string precision = "fp32";
  // Crops per backbone forward; larger requests run in chunks of this size.
  // 0 = auto: on CPU one forward for all crops (as always), on CUDA
  // kAutoCudaBatch.
  int batch_size = 0;
  // CPU only: run the device-generic code (plain folded convolution weights
  // through torch::conv2d, as on CUDA) instead of oneDNN-prepacked weights,
  // so that the code the GPU runs is exercised and tested on a CPU.
  bool generic_path = false;
  // What runs the network: "auto" (MesoNet on OpenCV's dnn; ResNeXt on
  // oneDNN on the CPU, on LibTorch on CUDA or with generic_path), "opencv"
  // (MesoNet only), "onednn" (ResNeXt on the CPU only) or "libtorch" (either;
  // MesoNet on LibTorch is the training code's forward pass, ResNeXt on
  // LibTorch's mkldnn path on the CPU). LibTorch lives in libdfd-torch,
  // loaded on first use (model/torch_module.h).
  std::string backend = "auto";
};

// The automatic batch on CUDA: large enough to fill an H100/H200-class GPU
// with 112x112 crops (about 5 MB of activations each), small enough for an
// 8 GB card. bench/gpu measures batches 1..512 to revisit it.
constexpr int kAutoCudaBatch = 256;

}  // namespace dfd
