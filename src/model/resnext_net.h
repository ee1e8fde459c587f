// The ResNeXt50 + LSTM network itself, on a device: folded weights in, float
// crops in, features and predictions out. No LibTorch and no OpenCV in this
// header: Model (model/model.h) feeds it cv::Mat crops, the GPU benchmark
// (bench/gpu/) feeds it synthetic ones and builds without OpenCV.
//
// Two code paths share everything but the convolutions' form:
//   prepacked (CPU, default)  oneDNN weights reordered once at load, as before;
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

#include "analysis/feature.h"
#include "checkpoint/state_dict.h"
#include "model/model_options.h"

namespace dfd {

class ResNeXtNet {
 public:
  // Host memory for n crops, n x 3 x 112 x 112 floats in NCHW order,
  // normalised. Page-locked on CUDA, so a batch is uploaded as one
  // asynchronous copy. Movable; owns its memory.
  class Batch {
   public:
    float* data() { return data_; }
    const float* data() const { return data_; }
    size_t crops() const { return n_; }

   private:
    friend class ResNeXtNet;
    std::shared_ptr<void> tensor_;  // the torch::Tensor that owns the memory
    float* data_ = nullptr;
    size_t n_ = 0;
  };

  // `sd` must already be the reference layout (validate_state_dict).
  // Throws std::invalid_argument for an unknown device, precision or a
  // negative batch size, std::runtime_error when the device or precision is
  // not available here (e.g. "no CUDA device: this LibTorch is CPU-only").
  ResNeXtNet(const StateDict& sd, const ModelOptions& opts);
  // The same checks of the options alone, before any weights are read.
  static void check(const ModelOptions& opts);
  virtual ~ResNeXtNet();
  ResNeXtNet(const ResNeXtNet&) = delete;
  ResNeXtNet& operator=(const ResNeXtNet&) = delete;

  virtual Batch batch(size_t n) const;

  // Pooled 2048-d backbone features, brought back to the host.
  virtual std::vector<Feature> features(const Batch& crops) const;
  // Backbone and reference head (one zero-state LSTM step per crop) on the
  // device; only the predictions come back, and the features only when
  // `features` is given.
  virtual std::vector<Prediction> classify_crops(const Batch& crops, std::vector<Feature>* features = nullptr) const;
  // Reference head on host features (n x 2048 floats).
  virtual std::vector<Prediction> classify_frames(const float* x, size_t n) const;
  // LSTM recurrence from zero state over b windows of t frames each
  // (b x t x 2048 floats, window-major), head on the last hidden state.
  virtual std::vector<Prediction> classify_temporal(const float* x, size_t b, size_t t) const;
  // The last feature map of one crop weighted by the head's row for `cls`:
  // rows x cols cells, row-major (4 x 4 for 112x112 crops).
  virtual std::vector<float> activation_cells(const Batch& one_crop, int cls, int* rows, int* cols) const;

  // "cpu" or "cuda:N", as resolved at load.
  virtual const std::string& device() const;
  virtual const std::string& precision() const;
  // Crops per forward pass; 0: all crops in one (CPU auto).
  virtual int batch_size() const;
  virtual bool prepacked() const;  // a oneDNN CPU path (fused or through LibTorch)
  // "onednn-fused", "libtorch-mkldnn" or "libtorch" (Model::engine).
  virtual const std::string& engine() const;
  // CUDA with DFD_CUDNN_FUSED=1: cuDNN's fused conv+bias(+add)+ReLU, an
  // experiment for bench/gpu (not the default until measured on a GPU).
  virtual bool fused() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfd
