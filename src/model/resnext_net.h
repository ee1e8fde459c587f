// The ResNeXt50 + LSTM network on LibTorch, on a device: folded weights in,
// float crops in, features and predictions out. No LibTorch and no OpenCV in
// this header: Model (model/model.h) feeds it cv::Mat crops, the GPU
// benchmark (bench/gpu/) feeds it synthetic ones and builds without OpenCV.
// The CPU default is not this class but OneDnnResNeXt (model/onednn_resnext.h,
// no LibTorch); Model takes this one for CUDA, the generic path and
// backend=libtorch (model/resnext_engine.h).
//
// Two code paths share everything but the convolutions' form:
//   prepacked (CPU)  LibTorch's mkldnn tensors, weights reordered once at load;
//   generic   (CUDA, or CPU with ModelOptions::generic_path)  plain folded
//             conv weights, channels-last, through torch::conv2d, with the
//             backbone in the asked precision (.to(kHalf/kBFloat16)).
// Batch norms are folded into the convolutions on the CPU at load on both
// paths (inference only); on CUDA the folded weights are then uploaded once.
//
// Built in libdfd-torch (model/torch_module.h): the core library gets a
// ResNeXtNet from the module's make_resnext and calls it through virtual
// functions only, so that it links no LibTorch symbol.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/state_dict.h"
#include "model/model_options.h"
#include "model/resnext_engine.h"

namespace dfd {

class ResNeXtNet : public ResNeXtEngine {
 public:
  // `sd` must already be the reference layout (validate_state_dict).
  // Throws std::invalid_argument for an unknown device, precision or a
  // negative batch size, std::runtime_error when the device or precision is
  // not available here (e.g. "no CUDA device: this LibTorch is CPU-only").
  ResNeXtNet(const StateDict& sd, const ModelOptions& opts);
  // The same checks of the options alone, before any weights are read.
  static void check(const ModelOptions& opts);
  ~ResNeXtNet() override;
  ResNeXtNet(const ResNeXtNet&) = delete;
  ResNeXtNet& operator=(const ResNeXtNet&) = delete;

  Batch batch(size_t n) const override;

  // Pooled 2048-d backbone features, brought back to the host.
  std::vector<Feature> features(const Batch& crops) const override;
  // Backbone and reference head (one zero-state LSTM step per crop) on the
  // device; only the predictions come back, and the features only when
  // `features` is given.
  std::vector<Prediction> classify_crops(const Batch& crops, std::vector<Feature>* features = nullptr) const override;
  // Reference head on host features (n x 2048 floats).
  std::vector<Prediction> classify_frames(const float* x, size_t n) const override;
  // LSTM recurrence from zero state over b windows of t frames each
  // (b x t x 2048 floats, window-major), head on the last hidden state.
  std::vector<Prediction> classify_temporal(const float* x, size_t b, size_t t) const override;
  // The last feature map of one crop weighted by the head's row for `cls`:
  // rows x cols cells, row-major (4 x 4 for 112x112 crops).
  std::vector<float> activation_cells(const Batch& one_crop, int cls, int* rows, int* cols) const override;

  // "cpu" or "cuda:N", as resolved at load.
  const std::string& device() const override;
  const std::string& precision() const override;
  // Crops per forward pass; 0: all crops in one (CPU auto).
  int batch_size() const override;
  virtual bool prepacked() const;  // LibTorch's oneDNN (mkldnn) CPU path
  // "libtorch-mkldnn" (the CPU) or "libtorch" (the generic path).
  const std::string& engine() const override;
  // CUDA with DFD_CUDNN_FUSED=1: cuDNN's fused conv+bias(+add)+ReLU, an
  // experiment for bench/gpu (not the default until measured on a GPU).
  virtual bool fused() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfd
