// One interface for every detector architecture (the model family), with a
// registry keyed by the model card's `architecture`. Torch-free: callers
// (element, tools, ensembles) never name a family or include LibTorch.
//
// Architectures today:
//   "resnext50_32x4d+lstm2048"  the published ResNeXt50+LSTM (model/model.h),
//                               112x112 BGR, ImageNet mean/std, tight crop,
//                               2048-d feature per crop, reference (per-frame)
//                               or temporal (windowed) head, CAM.
//   "meso4", "mesoinception4"   MesoNet (model/mesonet_layout.h; run by OpenCV's
//                               dnn, or LibTorch with ModelOptions::backend =
//                               "libtorch": model/mesonet_detector.h), 256x256 RGB
//                               / 255, face box + 20 % margin, per crop: the
//                               net's sigmoid is P(REAL), so P(FAKE) = 1 - it;
//                               a window's P(FAKE) is the mean of its crops'.
//                               No CAM.
//
// Loading a model file of any architecture and scoring crops:
//     auto det = dfd::load_detector_shared(path);       // .safetensors, .pt, Keras .h5
//     const auto& in = det->info();                     // crop geometry and colour
//     cv::Mat crop = dfd::crop_face(bgr_frame, box, in.crop_margin);   // any size, BGR
//     std::vector<float> p_fake = det->score_crops({crop});            // P(FAKE) per crop
// Or in two stages, as the element does, so a sliding window reuses each
// crop's work: features(crops) once per crop, then classify_windows(...).
#pragma once
#include <functional>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "analysis/feature.h"
#include "checkpoint/state_dict.h"
#include "model/model.h"
#include "model/model_card.h"
#include "model/preprocess.h"

namespace dfd {

enum class ColourOrder { BGR, RGB };
const char* to_string(ColourOrder c);

// What a caller needs to know to feed a detector and read its output.
struct DetectorInfo {
  std::string architecture;  // the card's architecture
  // Crops are given as BGR CV_8UC3 images of any size; the detector resizes
  // them (bilinear) to input_size x input_size and converts to colour_order.
  int input_size = 112;
  ColourOrder colour_order = ColourOrder::BGR;
  Normalisation normalisation;  // (v / 255 - mean) / std per channel, in colour_order
  // Margin for crop_face(frame, box, crop_margin): the fraction of the face
  // box added on each side (0: the tight detector box).
  float crop_margin = 0.f;
  // True when each crop alone gets a meaningful score (MesoNet, the reference
  // head); false when only windows are (temporal head): then needs_window.
  bool per_crop = true;
  bool needs_window = false;
  bool has_cam = false;   // activation_map() works
  int feature_dim = 0;    // values per crop from features()
  // True when classify_windows is a head of its own over the window (the
  // ResNeXt's LSTM, either mode: the card's window_size is part of the
  // model); false when a window's P(FAKE) is only the mean of its crops'
  // (MesoNet), so that a caller may score every crop as it comes.
  bool window_head = false;
};

class Detector {
 public:
  virtual ~Detector() = default;
  virtual const DetectorInfo& info() const = 0;
  virtual const ModelCard& card() const = 0;
  virtual const std::string& checksum() const = 0;  // of the weights as loaded
  virtual const std::string& source() const = 0;    // the file it came from

  // Stage 1, batched, once per crop: info().feature_dim values per crop
  // (ResNeXt: the 2048-d pooled backbone feature; MesoNet: 1 value, the
  // logit of P(REAL)).
  virtual std::vector<Feature> features(const std::vector<cv::Mat>& crops) const = 0;
  // Stage 2: one prediction per frame (each crop alone).
  virtual std::vector<Prediction> classify_frames(const std::vector<const Feature*>& frames) const = 0;
  // Stage 2: one prediction per window (frames in time order). ResNeXt: as
  // Model::classify_windows. MesoNet: P(FAKE) is the mean of the frames'
  // P(FAKE) for either mode (it has no temporal head).
  virtual std::vector<Prediction> classify_windows(const std::vector<std::vector<const Feature*>>& windows,
                                                   HeadMode mode) const = 0;
  // Class activation map (CV_8UC1, the crop's size). Throws std::logic_error
  // when !info().has_cam.
  virtual cv::Mat activation_map(const cv::Mat& crop, int cls = kClassFake) const;

  // P(FAKE) of each crop alone: classify_frames(features(crops)).
  std::vector<float> score_crops(const std::vector<cv::Mat>& crops) const;
  // P(FAKE) of each window of crops, with the card's head mode.
  std::vector<float> score_windows(const std::vector<std::vector<cv::Mat>>& windows) const;

  // The ResNeXt Model behind this detector, for callers of its own API not
  // yet migrated; nullptr for other architectures.
  virtual std::shared_ptr<const Model> resnext_model() const { return nullptr; }
};

// Builds a detector of one architecture from tensors in our names (already
// validated for the built-in families) and a card.
using DetectorFactory = std::function<std::shared_ptr<const Detector>(
    const StateDict& tensors, const ModelCard& card, const ModelOptions& opts, const std::string& source)>;
// Registers (or replaces) the factory for a card architecture. The built-in
// families are registered before the first use; tests may add fakes.
void register_detector_family(const std::string& architecture, DetectorFactory factory);
std::vector<std::string> detector_architectures();

// A checkpoint in our tensor names with its card: the file's card
// (safetensors), or one made up from the tensor names (.pt: ResNeXt50+LSTM;
// Keras .h5: MesoNet, converted from Keras names and layouts). Validates the
// tensors against the architecture; errors name `path` and the problem.
struct ResolvedCheckpoint {
  StateDict tensors;
  ModelCard card;
  std::string format;  // of the file: "safetensors", "pytorch-zip", "keras-h5"
  PendingChecksum checksum;  // the reader's, when it started one (after `tensors`: it reads them)
};
ResolvedCheckpoint resolve_checkpoint(Checkpoint ck, const std::string& path);

// Any model file, any registered architecture.
std::shared_ptr<const Detector> load_detector(const std::string& path, const ModelOptions& opts = {});
// As load_detector, one shared instance per (path, device, precision) while
// anybody holds it. A ResNeXt file is loaded through Model::load_shared, so
// callers of the old API share the same weights.
std::shared_ptr<const Detector> load_detector_shared(const std::string& path, const ModelOptions& opts = {});
std::shared_ptr<const Detector> detector_from_state_dict(const StateDict& tensors, const ModelCard& card,
                                                         const ModelOptions& opts = {},
                                                         const std::string& source = "");
// The family interface over an existing ResNeXt Model.
std::shared_ptr<const Detector> as_detector(std::shared_ptr<const Model> model, const std::string& source = "");

// Opt-in, process-wide: keeps glibc from returning freed activation buffers
// to the kernel (mmap threshold 256 MB, trim threshold 1 GB), so that each
// forward pass reuses memory instead of page-faulting it in again. On the
// 2-core VM this made MesoNet 4-10x faster (Meso4 ~55 -> ~450 crops/s); the
// price is that the process keeps its peak heap. For programs that run
// detectors (element hosts, tools); a library should not call it on its own.
void keep_freed_memory_for_reuse();

// The shipped default detector (a trained MesoNet, Meso4_DF.h5, Apache-2.0),
// relative to a model folder.
extern const char* const kDefaultModelFile;  // "mesonet/Meso4_DF.h5"
// Where the default model is looked for, in order: $DFD_MODEL_DIR (the file
// below it, or directly in it), the installed data folder
// (<datadir>/deepfakedetect/models), the source tree's models/ folder (for
// programs run from the build tree).
std::vector<std::string> default_model_candidates();
// The first candidate that exists; "" when none does (then
// default_model_candidates() says where it looked).
std::string find_default_model();

}  // namespace dfd
