// What runs the ResNeXt50 + LSTM network for Model (model/model.h): folded
// weights in, normalised float crops in, features and predictions out.
// Two implementations:
//   OneDnnResNeXt (model/onednn_resnext.h)  the CPU default, in the core
//       library: the backbone on oneDNN with fused post-ops, the head on
//       oneDNN's sgemm. No LibTorch: a process that runs it never loads
//       libtorch_cpu.so (about 0.85 s of the start-up, docs/performance.md).
//   ResNeXtNet (model/resnext_net.h)  LibTorch, in libdfd-torch: CUDA, the
//       device-generic path, and LibTorch's own mkldnn path on the CPU
//       (backend=libtorch), kept to compare with and for the GPU benchmark.
// No LibTorch, OpenCV or oneDNN in this header.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "analysis/feature.h"

namespace dfd {

class ResNeXtEngine {
 public:
  // Host memory for n crops, n x 3 x 112 x 112 floats in NCHW order,
  // normalised; owned by whatever the engine allocated it as (a pinned
  // torch::Tensor on CUDA, so that a batch uploads as one asynchronous copy).
  class Batch {
   public:
    Batch() = default;
    Batch(std::shared_ptr<void> owner, float* data, size_t n) : owner_(std::move(owner)), data_(data), n_(n) {}
    float* data() { return data_; }
    const float* data() const { return data_; }
    size_t crops() const { return n_; }
    const std::shared_ptr<void>& owner() const { return owner_; }

   private:
    std::shared_ptr<void> owner_;
    float* data_ = nullptr;
    size_t n_ = 0;
  };

  virtual ~ResNeXtEngine() = default;

  virtual Batch batch(size_t n) const = 0;
  // Pooled 2048-d backbone features.
  virtual std::vector<Feature> features(const Batch& crops) const = 0;
  // Backbone and reference head (one zero-state LSTM step per crop); the
  // features too when `features` is given.
  virtual std::vector<Prediction> classify_crops(const Batch& crops, std::vector<Feature>* features = nullptr) const = 0;
  // Reference head on host features (n x 2048 floats).
  virtual std::vector<Prediction> classify_frames(const float* x, size_t n) const = 0;
  // LSTM recurrence from zero state over b windows of t frames each
  // (b x t x 2048 floats, window-major), head on the last hidden state.
  virtual std::vector<Prediction> classify_temporal(const float* x, size_t b, size_t t) const = 0;
  // The last feature map of one crop weighted by the head's row for `cls`:
  // rows x cols cells, row-major (4 x 4 for 112x112 crops).
  virtual std::vector<float> activation_cells(const Batch& one_crop, int cls, int* rows, int* cols) const = 0;

  // "cpu" or "cuda:N", as resolved at load.
  virtual const std::string& device() const = 0;
  virtual const std::string& precision() const = 0;
  // Crops per forward pass; 0: all crops in one (CPU auto).
  virtual int batch_size() const = 0;
  // "onednn-fused", "libtorch-mkldnn" or "libtorch" (Model::engine).
  virtual const std::string& engine() const = 0;
};

}  // namespace dfd
