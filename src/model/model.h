// The ResNeXt50 + LSTM detector. The public face has no LibTorch in it: the
// backbone turns crops into features once, the head classifies frames or
// windows of features, so a sliding window never recomputes the backbone.
// A loaded Model is immutable and safe to share between threads and elements.
// The network runs where ModelOptions put it (the CPU on oneDNN, or CUDA
// where LibTorch has it: model/resnext_engine.h); crops and results stay on
// the host.
#pragma once
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "analysis/feature.h"
#include "model/model_card.h"
#include "checkpoint/state_dict.h"
#include "model/model_options.h"

namespace dfd {

class Model {
 public:
  // A .pt state_dict written by torch.save or our .safetensors format.
  static std::shared_ptr<const Model> load(const std::string& path, const ModelOptions& opts = {});
  // As load(), but one shared instance per (path, device) while anybody holds it,
  // so that several elements in one process keep a single copy of the weights.
  static std::shared_ptr<const Model> load_shared(const std::string& path, const ModelOptions& opts = {});
  // `checksum`: weights_checksum(sd) under way since the reader started it
  // (Checkpoint::checksum), awaited once the network is built; not started:
  // computed here, also while the network is built. `source`: where the
  // weights came from (source()); precision=int8 looks for its calibration
  // faces beside it first (model/mesonet_calibration.h).
  static std::shared_ptr<const Model> from_state_dict(const StateDict& sd, const ModelCard& card,
                                                      const ModelOptions& opts = {},
                                                      PendingChecksum checksum = PendingChecksum(),
                                                      const std::string& source = {});
  // As load_shared, for a checkpoint already read from `path`
  // (load_detector_shared), so that its weights are not read twice.
  static std::shared_ptr<const Model> shared_from_state_dict(const std::string& path, const StateDict& sd,
                                                             const ModelCard& card, PendingChecksum checksum,
                                                             const ModelOptions& opts);
  // Untrained reference-architecture model from a seed (card.trained = false).
  static std::shared_ptr<const Model> untrained(uint64_t seed, const ModelOptions& opts = {});
  static ModelCard untrained_card(uint64_t seed);

  ~Model();
  const ModelCard& card() const;
  const std::string& checksum() const;  // of the weights as loaded
  const std::string& source() const;    // file it came from, or "untrained:seed=N"

  // Backbone: each crop is a BGR CV_8UC3 image (resized to 112x112 bilinear
  // when it is not already), normalised as the card says. One batch forward.
  std::vector<Feature> features(const std::vector<cv::Mat>& crops) const;

  // Backbone and reference head in one pass on the device, one prediction
  // per crop; only the predictions come back, the features too when
  // `features` is given (what classify_frames(features(crops)) gives).
  std::vector<Prediction> classify_crops(const std::vector<cv::Mat>& crops,
                                         std::vector<Feature>* features = nullptr) const;

  // Reference semantics per frame: one zero-state LSTM step, then the head.
  std::vector<Prediction> classify_frames(const std::vector<const Feature*>& frames) const;

  // One prediction per window (each a list of frames in time order).
  // Reference: the published module's output for that window, i.e. the last
  // frame's per-frame step. Temporal: LSTM recurrence over the window from a
  // zero state, head on the last hidden state. Windows are batched together.
  std::vector<Prediction> classify_windows(const std::vector<std::vector<const Feature*>>& windows,
                                           HeadMode mode) const;

  // Class activation map of one crop: the last feature map weighted by the
  // head's weights for class `cls` (what the original app drew), min-max
  // scaled to 0..255, resized to the crop size. CV_8UC1.
  cv::Mat activation_map(const cv::Mat& crop, int cls = kClassFake) const;

  // Where and how it runs, as resolved at load: "cpu" or "cuda:N"; the
  // backbone precision; crops per forward pass (0: all in one).
  const std::string& device() const;
  const std::string& precision() const;
  int batch_size() const;
  // What runs the network (model/resnext_engine.h): "onednn-fused" (the CPU
  // default; no LibTorch), "libtorch-mkldnn" (the CPU with backend=libtorch)
  // or "libtorch" (the device-generic path: CUDA, or the CPU with generic_path).
  const std::string& engine() const;

  struct Impl;

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfd
