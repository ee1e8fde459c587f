// Raw checkpoint tensors (checkpoint/state_dict.h) as LibTorch tensors, for
// the few translation units that include torch headers anyway (model/
// resnext_net, model/mesonet, train/train_head, train/mesonet_module). Header
// only, so no further translation unit pays for LibTorch's headers.
#pragma once
#include <torch/torch.h>

#include <stdexcept>
#include <string>

#include "checkpoint/state_dict.h"

namespace dfd {

inline torch::ScalarType scalar_type(DType d) {
  switch (d) {
    case DType::F32: return torch::kFloat32;
    case DType::F64: return torch::kFloat64;
    case DType::F16: return torch::kFloat16;
    case DType::BF16: return torch::kBFloat16;
    case DType::I64: return torch::kInt64;
    case DType::I32: return torch::kInt32;
    case DType::U8: return torch::kUInt8;
    case DType::Bool: return torch::kBool;
  }
  throw std::invalid_argument("unknown tensor dtype");
}

inline bool is_floating(DType d) { return d == DType::F32 || d == DType::F64 || d == DType::F16 || d == DType::BF16; }

// A tensor that owns a copy of the bytes, in their own dtype.
inline torch::Tensor tensor_copy(const TensorData& t) {
  return torch::from_blob(const_cast<uint8_t*>(t.bytes.data()), t.shape, torch::TensorOptions().dtype(scalar_type(t.dtype)))
      .clone();
}

// A float32 copy (weights are computed in float32 whatever they were stored as).
inline torch::Tensor float_tensor(const TensorData& t) {
  auto x = torch::from_blob(const_cast<uint8_t*>(t.bytes.data()), t.shape, torch::TensorOptions().dtype(scalar_type(t.dtype)));
  return x.to(torch::kFloat32).clone();
}

// The named tensor of a state dict; a missing one is an error naming it.
inline const TensorData& tensor_at(const StateDict& sd, const std::string& key) { return tensor_named(sd, key); }

}  // namespace dfd
