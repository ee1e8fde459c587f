// The reference architecture as data: every state_dict key with its shape.
// Used to validate checkpoints before any tensor is built, so a wrong file
// is reported by name ("missing key ...", "shape mismatch ...").
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "checkpoint/state_dict.h"

namespace dfd {

struct BottleneckSpec {
  std::string prefix;  // e.g. "model.5.0."
  int in, width, out, stride;
  bool downsample;
};

// ResNeXt50_32x4d layer1..layer4 blocks, in forward order.
const std::vector<BottleneckSpec>& resnext50_blocks();
constexpr int kGroups = 32;

// All 322 keys of the published module's state_dict, with shapes.
const std::map<std::string, std::vector<int64_t>>& reference_shapes();

// Throws std::runtime_error listing missing keys, unexpected keys and shape
// or dtype mismatches (up to a few of each) when `sd` is not the reference layout.
void validate_state_dict(const StateDict& sd);

// "[8192, 2048]": a shape as error messages print it.
std::string shape_str(const std::vector<int64_t>& shape);

// Deterministic untrained weights from a seed (Kaiming-normal convolutions,
// identity batch norms, PyTorch's default uniform LSTM/linear init).
StateDict untrained_state_dict(uint64_t seed);

}  // namespace dfd
