// The plain tensor record's own helpers (checkpoint/state_dict.h), apart
// from any file format so that code needing only them (model/architecture,
// the GPU benchmark) links without JSON, zip or HDF5.
#include "checkpoint/state_dict.h"

#include <cstring>
#include <stdexcept>

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

const TensorData& tensor_named(const StateDict& sd, const std::string& key) {
  auto it = sd.find(key);
  if (it == sd.end()) throw std::runtime_error("missing key '" + key + "'");
  return it->second;
}

namespace {

float bits_to_float(uint32_t bits) {
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

// IEEE 754 binary16 -> binary32, exact (every half is a float).
float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (frac << 13));  // inf, NaN
  if (exp != 0) return bits_to_float(sign | ((exp + 112) << 23) | (frac << 13));
  const float sub = float(frac) * 5.9604644775390625e-8f;  // 2^-24: zero and subnormals
  return sign ? -sub : sub;
}

}  // namespace

std::vector<float> float32_values(const TensorData& t) {
  const size_t n = size_t(t.numel()), width = dtype_size(t.dtype);
  if (t.bytes.size() < n * width) throw std::runtime_error("tensor shorter than its shape");
  std::vector<float> out(n);
  const uint8_t* p = t.bytes.data();
  switch (t.dtype) {
    case DType::F32:
      if (n) std::memcpy(out.data(), p, n * 4);
      return out;
    case DType::F64:
      for (size_t i = 0; i < n; ++i) {
        double v;
        std::memcpy(&v, p + 8 * i, 8);
        out[i] = float(v);
      }
      return out;
    case DType::F16:
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = t.dtype == DType::F16 ? half_to_float(h) : bits_to_float(uint32_t(h) << 16);
      }
      return out;
    default:
      throw std::runtime_error(std::string("weights must be floating point, not ") + dtype_name(t.dtype));
  }
}

}  // namespace dfd
