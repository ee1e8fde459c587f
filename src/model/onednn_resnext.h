// The ResNeXt50 + LSTM network on the CPU without LibTorch: the backbone on
// oneDNN with its ReLUs and residual adds fused into the convolutions
// (model/onednn_backbone.h), the LSTM head and the linear layer on oneDNN's
// sgemm. The CPU default (engine "onednn-fused"): in the core library, so a
// process that runs a ResNeXt model on the CPU never loads LibTorch, whose
// dynamic load alone was 0.83-0.89 s of the start-up (docs/performance.md).
// Same arithmetic as the published module to float tolerance
// (tests/unit/test_model_parity.cpp compares it with PyTorch and with the
// LibTorch path).
#pragma once
#include <memory>
#include <vector>

#include "checkpoint/state_dict.h"
#include "model/model_options.h"
#include "model/resnext_engine.h"

namespace dfd {

class OneDnnResNeXt : public ResNeXtEngine {
 public:
  // `sd` must already be the reference layout (validate_state_dict).
  // precision int8: `calibration` holds the crops that fix the activation
  // scales (n x 3 x 112 x 112 floats, prepared as for batch()), calibrated
  // here (a float32 forward over them); other precisions ignore it.
  // Throws what check() throws, std::invalid_argument for int8 without
  // calibration crops.
  OneDnnResNeXt(const StateDict& sd, const ModelOptions& opts, const std::vector<float>& calibration = {});
  // The options alone, before any weights are read: std::invalid_argument
  // for a device other than "cpu", generic_path, an unknown precision or a
  // negative batch size; std::runtime_error for bf16 on a CPU without
  // AVX512_BF16/AMX and for fp16 (CUDA only). int8 runs on any CPU oneDNN
  // supports, fastest with VNNI or AMX (docs/performance.md).
  static void check(const ModelOptions& opts);
  ~OneDnnResNeXt() override;

  Batch batch(size_t n) const override;
  std::vector<Feature> features(const Batch& crops) const override;
  std::vector<Prediction> classify_crops(const Batch& crops, std::vector<Feature>* features = nullptr) const override;
  std::vector<Prediction> classify_frames(const float* x, size_t n) const override;
  std::vector<Prediction> classify_temporal(const float* x, size_t b, size_t t) const override;
  std::vector<float> activation_cells(const Batch& one_crop, int cls, int* rows, int* cols) const override;
  const std::string& device() const override;
  const std::string& precision() const override;
  int batch_size() const override;
  const std::string& engine() const override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfd
