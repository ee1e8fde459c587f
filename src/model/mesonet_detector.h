// What the MesoNet detectors share whatever runs the network: the checks of
// weights, card and options, DetectorInfo, the crops' preparation and the
// logit -> P(FAKE) arithmetic. A backend supplies only the forward pass
// (logits of P(REAL) for a batch of prepared crops):
//   model/mesonet_dnn.cpp  OpenCV's dnn module, the default (no LibTorch);
//   model/mesonet.cpp      LibTorch, in libdfd-torch (model/torch_module.h),
//                          for ModelOptions::backend = "libtorch".
// Torch-free.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/family.h"
#include "model/mesonet_layout.h"

namespace dfd {

// The variant of `card`, after checking that `tensors` fit it, that the card's
// input size is MesoNet's and that the options ask for the CPU in fp32 (or
// int8, which only the OpenCV backend runs: model/family.cpp refuses it for
// LibTorch).
// Throws std::runtime_error (weights, card) / std::invalid_argument (options).
MesoVariant check_mesonet_load(const StateDict& tensors, const ModelCard& card, const ModelOptions& opts);

class MesoNetDetectorBase : public Detector {
 public:
  MesoNetDetectorBase(const StateDict& tensors, const ModelCard& card, MesoVariant v, const std::string& source);

  const DetectorInfo& info() const override { return info_; }
  const ModelCard& card() const override { return card_; }
  const std::string& checksum() const override { return checksum_; }
  const std::string& source() const override { return source_; }

  // Crops go through the backend in chunks of chunk_size(): the first
  // activations are 2 MB per crop, and blocks above glibc's mmap threshold
  // are faulted in again on every op (batch 16 in one go was 2-3x slower
  // per crop on the 2-core VM).
  std::vector<Feature> features(const std::vector<cv::Mat>& crops) const override;
  std::vector<Prediction> classify_frames(const std::vector<const Feature*>& frames) const override;
  // A window's P(FAKE) is the mean of its crops' (MesoNet has no temporal head).
  std::vector<Prediction> classify_windows(const std::vector<std::vector<const Feature*>>& windows,
                                           HeadMode) const override;

  // The net's sigmoid(z) is P(REAL); P(FAKE) = 1 - sigmoid(z) = sigmoid(-z).
  static double p_fake(float logit_real);

 protected:
  MesoVariant variant() const { return variant_; }
  // The backend's forward pass: `n` crops prepared as n x 3 x 256 x 256
  // floats (NCHW, normalised, in the card's colour order) -> n logits of P(REAL).
  virtual void logits(const float* nchw, size_t n, float* out) const = 0;
  virtual size_t chunk_size() const { return 4; }

 private:
  MesoVariant variant_;
  ModelCard card_;
  std::string checksum_, source_;
  DetectorInfo info_;
};

}  // namespace dfd
