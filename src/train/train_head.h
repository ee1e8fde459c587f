// Trainable head (and optionally backbone) of the ResNeXt50 + LSTM detector
// for deepfake-train. The interface is free of LibTorch; the implementation
// (src/train_head.cpp) is the training work's only LibTorch translation unit.
//
// The math is the inference model's (src/model.cpp), so an exported model
// behaves in the element exactly as it did here:
//   temporal  - LSTM(2048, 2048, bias=False) run time-major over the window
//               from a zero state (h and c carried), linear1 on the last h.
//   reference - every frame alone: one zero-state LSTM step (only the input,
//               cell and output gate rows of weight_ih matter), linear1.
//               A window's verdict is its last frame's.
// Training adds the original's dropout (p = 0.4 by default) on the logits and
// a class-weighted cross-entropy; the optimiser is Adam with L2 weight decay
// (torch.optim.Adam's weight_decay), the original's settings by default.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "analysis/feature.h"
#include "model/model_card.h"
#include "checkpoint/state_dict.h"

namespace dfd::train {

struct TrainerConfig {
  HeadMode head = HeadMode::Temporal;
  double lr = 1e-5;
  double weight_decay = 1e-5;
  double dropout = 0.4;         // on the logits while training, as the original
  double clip_grad_norm = 0;    // > 0: clip the gradients' global L2 norm to this (the original does not)
  bool freeze_lstm = false;     // train linear1 only
  bool finetune_backbone = false;  // also train the ResNeXt50 (crops in, much slower)
  double backbone_lr = 0;       // 0 = lr
  uint64_t seed = 0;
  int threads = 0;              // LibTorch intra-op threads; 0 leaves its choice
  // Input normalisation for crops (fine-tuning): the starting model's card.
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> stdev{0.229f, 0.224f, 0.225f};
  bool rgb = false;             // card channel_order RGB: swap B and R before normalising
};

// A window of frames for training or prediction: features (head only) or
// crops (backbone fine-tuning); time order.
using FeatureWindowRef = std::vector<const Feature*>;
using CropWindowRef = std::vector<const cv::Mat*>;

class Trainer {
 public:
  // `init`: a full reference state dict; the trained parts start from it.
  // Throws std::runtime_error when it is not the reference layout.
  Trainer(const StateDict& init, const TrainerConfig& config);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // One optimiser step on a batch of windows. `labels` are class indices
  // (kClassFake = 0, kClassReal = 1); `class_weights` weigh the loss per class.
  // In reference mode every frame of a window is a sample with the window's label.
  // Returns the batch's (weighted) mean loss.
  float step(const std::vector<FeatureWindowRef>& windows, const std::vector<int>& labels,
             const std::array<float, 2>& class_weights);
  // The same with crops (only with finetune_backbone).
  float step_crops(const std::vector<CropWindowRef>& windows, const std::vector<int>& labels,
                   const std::array<float, 2>& class_weights);

  // Evaluation mode (no dropout, no gradients): one prediction per window,
  // as Model::classify_windows(windows, head) computes it.
  std::vector<Prediction> predict(const std::vector<FeatureWindowRef>& windows) const;
  // Backbone features of crops with the current (possibly fine-tuned) backbone.
  std::vector<Feature> features(const std::vector<cv::Mat>& crops) const;

  // Sets the dropout random generator for an epoch, so a resumed run repeats it.
  void reseed(uint64_t epoch);

  // `sd` (a full reference state dict) with the trained tensors written in:
  // lstm.* and linear1.* (and the backbone's when fine-tuned). With
  // validate = false `sd` may be partial (e.g. empty: the trained tensors alone).
  void export_into(StateDict& sd, bool validate = true) const;
  // The reverse: the trained tensors set from `sd` (keys as export_into
  // writes them; others ignored). Throws std::runtime_error for a missing key
  // or a wrong shape.
  void load_weights(const StateDict& sd);

  // Resumable state: trained tensors and the optimiser's moments.
  void save(const std::string& path) const;
  void load(const std::string& path);  // throws std::runtime_error when the file does not fit this config

  int64_t trainable_parameters() const;
  const TrainerConfig& config() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Self-check of the temporal LSTM's hand-written backward pass against
// autograd through the plain step loop (float64, small sizes): the largest
// absolute difference in the output and the three gradients.
double lstm_gradient_check(uint64_t seed);

}  // namespace dfd::train
