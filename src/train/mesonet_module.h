// A trainable MesoNet (Meso4, MesoInception4) for deepfake-train. The
// interface is free of LibTorch; mesonet_module.cpp is its only LibTorch
// translation unit.
//
// The graph is the one model/mesonet_layout.h states and model/mesonet.cpp
// runs at inference, with the authors' training-time parts added:
//   training  conv -> ReLU -> batch norm on the batch's statistics (running
//             averages updated, epsilon 1e-3 as Keras) ->
//             max pool; flatten; dropout 0.5; fc1; LeakyReLU 0.1; dropout
//             0.5; fc2 -> the logit of P(REAL).
//   eval      the same ops as model/mesonet.cpp in the same order and memory
//             format (batch norm as one precomputed scale and shift from the
//             running statistics, channels-last activations), so an exported
//             model gives the element the outputs seen here.
// Loss: binary cross-entropy of sigmoid(logit) = P(REAL) against the label
// (class 1 = real, as the authors), with per-class weights. Adam.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "checkpoint/state_dict.h"
#include "model/mesonet_layout.h"

namespace dfd::train {

struct MesoTrainerConfig {
  double lr = 1e-3;            // the authors' Adam learning rate
  double weight_decay = 0;     // L2, as torch.optim.Adam's weight_decay
  double dropout = 0.5;        // the authors' two dropouts in the head
  // Batch norm running averages: x_run += momentum * (x_batch - x_run). Keras'
  // 0.99 would be 0.01 here, which needs hundreds of steps before the eval
  // statistics follow the weights (a 20-step run that learnt a separable set
  // in training mode still scored at chance in eval mode); PyTorch's 0.1
  // suits short CPU runs.
  double bn_momentum = 0.1;
  bool flip = true;            // random horizontal flips of training crops
  uint64_t seed = 0;           // dropout, flips
  int threads = 0;             // LibTorch intra-op threads; 0 leaves its choice
};

class MesoTrainer {
 public:
  // `init`: MesoNet tensors in our names (validated here), e.g. from
  // random_mesonet_state_dict or a published file via resolve_checkpoint.
  // Throws std::runtime_error when they do not fit `variant`.
  MesoTrainer(MesoVariant variant, const StateDict& init, const MesoTrainerConfig& config);
  ~MesoTrainer();
  MesoTrainer(const MesoTrainer&) = delete;
  MesoTrainer& operator=(const MesoTrainer&) = delete;

  // One Adam step on a batch of BGR CV_8UC3 crops (any size; resized to 256
  // as at inference). `labels`: kClassFake (0) or kClassReal (1). Returns the
  // batch's weighted mean loss.
  float step(const std::vector<const cv::Mat*>& crops, const std::vector<int>& labels,
             const std::array<float, 2>& class_weights);

  // Evaluation mode: the logit of P(REAL) per crop, as the exported model's
  // Detector::features gives it.
  std::vector<float> logits(const std::vector<const cv::Mat*>& crops) const;

  // The current weights in our names (float32), ready for write_safetensors.
  StateDict export_state_dict() const;

  MesoVariant variant() const;
  int64_t trainable_parameters() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Fresh weights for training from scratch: Keras' defaults, as the authors'
// nets started (Glorot-uniform kernels, zero biases, batch norm gamma 1, beta
// 0, running mean 0 and variance 1), from a seed.
StateDict random_mesonet_state_dict(MesoVariant variant, uint64_t seed);

}  // namespace dfd::train
