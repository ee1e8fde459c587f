#include "model/mesonet_detector.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "model/preprocess.h"

namespace dfd {

MesoVariant check_mesonet_load(const StateDict& tensors, const ModelCard& card, const ModelOptions& opts) {
  const auto v = mesonet_variant(card.architecture);
  if (!v) throw std::runtime_error("architecture '" + card.architecture + "' is not MesoNet");
  validate_mesonet_state_dict(tensors, *v);
  if (card.input_size != kMesoInputSize)
    throw std::runtime_error("MesoNet card: input_size must be " + std::to_string(kMesoInputSize));
  if (opts.device != "cpu")
    throw std::invalid_argument("MesoNet runs on device=cpu only (asked for '" + opts.device + "')");
  // int8: OpenCV's dnn only (model/mesonet_dnn.cpp); make_mesonet_detector
  // (LibTorch) and make_mesonet (family.cpp) refuse it for LibTorch.
  if (opts.precision != "fp32" && opts.precision != "int8")
    throw std::invalid_argument("MesoNet runs in precision=fp32 or int8 (asked for '" + opts.precision + "')");
  return *v;
}

MesoNetDetectorBase::MesoNetDetectorBase(const StateDict& tensors, const ModelCard& card, MesoVariant v,
                                         const std::string& source)
    : variant_(v), card_(card), checksum_(weights_checksum(tensors)), source_(source) {
  info_.architecture = architecture_name(v);
  info_.input_size = kMesoInputSize;
  info_.colour_order = card.channel_order == "BGR" ? ColourOrder::BGR : ColourOrder::RGB;
  info_.normalisation = Normalisation{card.mean, card.std, card.channel_order == "RGB"};
  info_.crop_margin = kMesoCropMargin;
  info_.per_crop = true;
  info_.needs_window = false;
  info_.has_cam = false;
  info_.feature_dim = 1;
}

std::vector<Feature> MesoNetDetectorBase::features(const std::vector<cv::Mat>& crops) const {
  if (crops.empty()) return {};
  const size_t plane = size_t(3) * kMesoInputSize * kMesoInputSize;
  const size_t chunk = chunk_size();
  std::vector<Feature> out(crops.size(), Feature(1));
  std::vector<float> x(std::min(chunk, crops.size()) * plane), z(chunk);
  for (size_t from = 0; from < crops.size(); from += chunk) {
    const size_t n = std::min(chunk, crops.size() - from);
    std::vector<const cv::Mat*> ptrs;
    for (size_t i = 0; i < n; ++i) ptrs.push_back(&crops[from + i]);
    crops_to_nchw(ptrs, info_.normalisation, kMesoInputSize, x.data());
    logits(x.data(), n, z.data());
    for (size_t i = 0; i < n; ++i) out[from + i][0] = z[i];
  }
  return out;
}

namespace {

float logit_of(const Feature* f) {
  if (!f || f->size() != 1) throw std::invalid_argument("MesoNet feature must have 1 value");
  return (*f)[0];
}

// Logits [FAKE, REAL] = [0, z]: their softmax is [1 - sigmoid(z), sigmoid(z)].
Prediction from_logit(float z) {
  Prediction p;
  p.logits = {0.f, z};
  p.prob_fake = float(MesoNetDetectorBase::p_fake(z));
  return p;
}

Prediction from_p_fake(double pf) {
  const double c = std::min(std::max(pf, 1e-30), 1.0 - 1e-16);
  Prediction p;
  p.logits = {0.f, float(std::log1p(-c) - std::log(c))};
  p.prob_fake = float(pf);
  return p;
}

}  // namespace

double MesoNetDetectorBase::p_fake(float z) { return 1.0 / (1.0 + std::exp(double(z))); }

std::vector<Prediction> MesoNetDetectorBase::classify_frames(const std::vector<const Feature*>& frames) const {
  std::vector<Prediction> out;
  out.reserve(frames.size());
  for (const Feature* f : frames) out.push_back(from_logit(logit_of(f)));
  return out;
}

std::vector<Prediction> MesoNetDetectorBase::classify_windows(const std::vector<std::vector<const Feature*>>& windows,
                                                              HeadMode) const {
  std::vector<Prediction> out;
  out.reserve(windows.size());
  for (const auto& w : windows) {
    if (w.empty()) throw std::invalid_argument("empty window");
    double sum = 0;
    for (const Feature* f : w) sum += p_fake(logit_of(f));
    out.push_back(from_p_fake(sum / double(w.size())));
  }
  return out;
}

}  // namespace dfd
