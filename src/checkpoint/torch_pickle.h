// The pickle inside a torch.save() archive, read by a restricted
// interpreter: a handful of opcodes and only the globals a state_dict needs
// (OrderedDict, torch._utils._rebuild_tensor_v2, storage types). Anything
// else is refused, so loading an untrusted checkpoint executes nothing.
// Every count the pickle can grow (values, stack, memo, nesting) is bounded
// (checkpoint/limits.h) and nothing is freed recursively.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint/state_dict.h"

namespace dfd {

// One entry of the state dict: a view (offset, size, stride, in elements)
// into a storage record `data/<storage_key>` of `storage_numel` elements.
struct PickledTensor {
  std::string name;
  std::string storage_key;
  DType dtype = DType::F32;
  int64_t storage_numel = 0;
  int64_t offset = 0;
  std::vector<int64_t> size, stride;
};

// Parses a state_dict pickle; throws std::runtime_error naming the problem.
std::vector<PickledTensor> parse_state_dict_pickle(const uint8_t* data, size_t size);

// Copies the view out of its storage bytes into a contiguous tensor after
// checking, without overflow, that every element lies inside the storage.
TensorData materialize(const PickledTensor& t, const std::vector<uint8_t>& storage);

}  // namespace dfd
