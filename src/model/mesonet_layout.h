// MesoNet (Afchar et al., WIFS 2018) as data: the two nets' layers, our
// tensor names and shapes, the mapping from the authors' Keras HDF5 files,
// and the model cards. No LibTorch here (the network runs in mesonet.cpp).
//
// Our tensor names (PyTorch layouts, as a torch.nn rebuild would name them):
//   Meso4           conv1..conv4            .weight [out, in, k, k], .bias [out]
//   MesoInception4  inc1.b1, inc1.b2.0, inc1.b2.1, inc1.b3.0, inc1.b3.1,
//                   inc1.b4.0, inc1.b4.1, the same under inc2., conv3, conv4
//   both            bn1..bn4                .weight (gamma), .bias (beta),
//                                           .running_mean, .running_var
//                   fc1.weight [16, 1024], fc1.bias [16]
//                   fc2.weight [1, 16],    fc2.bias [1]
// fc1.weight's columns are in channel-major (C, H, W) order, i.e. what a
// plain flatten of an NCHW map gives; Keras flattened channel-last (H, W, C),
// and the import reorders the columns once.
//
// Forward: every conv has 'same' padding, stride 1 and ReLU; then batch norm
// (epsilon 1e-3, after the ReLU) and max pooling. Meso4: conv1 3x3 -> bn1 ->
// pool 2, conv2 5x5 -> bn2 -> pool 2, conv3 5x5 -> bn3 -> pool 2, conv4 5x5 ->
// bn4 -> pool 4. MesoInception4: inception(1, 4, 4, 2) -> bn1 -> pool 2,
// inception(2, 4, 4, 2) -> bn2 -> pool 2, then conv3/conv4 as Meso4. An
// inception(a, b, c, d) concatenates, in this order, b1 (1x1, a), b2 (1x1
// then 3x3, b), b3 (1x1 then 3x3 dilation 2, c), b4 (1x1 then 3x3 dilation
// 3, d). Head: flatten 8x8x16 -> fc1 -> LeakyReLU(0.1) -> fc2 -> sigmoid =
// P(real) (class 1 = real). Dropout is inactive at inference.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/state_dict.h"
#include "model/model_card.h"

namespace dfd {

enum class MesoVariant { Meso4, MesoInception4 };
const char* architecture_name(MesoVariant v);  // "meso4", "mesoinception4"
// The variant of a card's architecture string, or none for other families.
std::optional<MesoVariant> mesonet_variant(const std::string& architecture);

constexpr int kMesoInputSize = 256;
constexpr float kMesoBatchNormEps = 1e-3f;  // Keras' default
constexpr float kMesoCropMargin = 0.2f;     // the authors' face crop: box + 20 % on each side

struct MesoConv {
  std::string name;  // "conv1", "inc1.b3.1", ...
  int out, in, kernel, dilation;
};
// In the order the authors' code creates them (the Keras files number their
// conv2d_N layers in this order). Batch norms bn1..bn4 have 8, 8, 16, 16
// (Meso4) or 11, 12, 16, 16 (MesoInception4) channels.
const std::vector<MesoConv>& mesonet_convs(MesoVariant v);

// Every tensor name with its shape.
const std::map<std::string, std::vector<int64_t>>& mesonet_shapes(MesoVariant v);

// Throws std::runtime_error naming missing, unexpected and mis-shaped tensors.
void validate_mesonet_state_dict(const StateDict& sd, MesoVariant v);

// True when the names are a Keras file's "<layer>/<weight>" (checkpoint/hdf5.h).
bool has_keras_names(const StateDict& sd);

// A Keras MesoNet weight file (as read by read_keras_h5) in our names and
// layouts. The variant comes from the layer counts (4 conv2d layers: Meso4,
// 16: MesoInception4; both have 4 batch_normalization and 2 dense), and the
// layers are matched by their number. Throws std::runtime_error naming the
// first problem: an unexpected layer, a missing or extra weight, a shape.
struct MesoImport {
  MesoVariant variant;
  StateDict tensors;
};
MesoImport mesonet_from_keras(const StateDict& keras);

// The card for MesoNet weights. The authors' four published files are
// recognised by their weights' checksum (weights_checksum of our tensors)
// and get their provenance, licence and training data; any other weights
// get an honest "not recorded". `file_name` names the source file.
ModelCard mesonet_card(MesoVariant v, const std::string& checksum, const std::string& file_name);

}  // namespace dfd
