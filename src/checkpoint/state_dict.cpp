// The plain tensor record's own helpers (checkpoint/state_dict.h), apart
// from any file format so that code needing only them (model/architecture,
// the GPU benchmark) links without JSON, zip or HDF5.
#include "checkpoint/state_dict.h"

#include "checkpoint/checked_math.h"

namespace dfd {

const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::U8: return "U8";
    case DType::Bool: return "BOOL";
  }
  return "?";
}

size_t dtype_size(DType d) {
  switch (d) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::U8: case DType::Bool: return 1;
  }
  return 1;
}

int64_t TensorData::numel() const {
  int64_t n = 1;
  for (auto s : shape) n = checked_mul(n, s, "tensor shape");
  return n;
}

}  // namespace dfd
