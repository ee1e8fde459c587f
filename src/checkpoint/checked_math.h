// Integer arithmetic on sizes declared by untrusted files: every product and
// sum is checked, so a declared shape or stride can never wrap around into a
// small, plausible number.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace dfd {

inline int64_t checked_mul(int64_t a, int64_t b, const std::string& what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw std::runtime_error(what + ": size overflows 64 bits");
  return r;
}

inline int64_t checked_add(int64_t a, int64_t b, const std::string& what) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) throw std::runtime_error(what + ": size overflows 64 bits");
  return r;
}

// Elements of a tensor of this shape; refuses negative dimensions, more than
// `max_rank` of them, and products above `max_elements`.
inline int64_t checked_numel(const std::vector<int64_t>& shape, int max_rank, int64_t max_elements,
                             const std::string& what) {
  if (shape.size() > size_t(max_rank))
    throw std::runtime_error(what + ": " + std::to_string(shape.size()) + " dimensions (at most " +
                             std::to_string(max_rank) + ")");
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw std::runtime_error(what + ": negative dimension " + std::to_string(d));
    n = checked_mul(n, d, what);
    if (n > max_elements)
      throw std::runtime_error(what + ": more than " + std::to_string(max_elements) + " elements");
  }
  return n;
}

}  // namespace dfd
