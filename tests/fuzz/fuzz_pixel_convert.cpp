// libFuzzer target: raw-frame conversion with odd sizes and strides. The
// first bytes choose format, size and strides; planes are allocated as
// GStreamer lays them out (stride x rows, chroma ceil(w/2) x ceil(h/2)) and
// filled from the rest of the input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "faces/pixel_convert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 7) return 0;
  dfd::RawFrame f;
  f.format = dfd::PixelFormat(data[0] % 8);
  f.width = data[1] % 70;   // 0 and odd sizes included
  f.height = data[2] % 70;
  const bool planar = f.format == dfd::PixelFormat::I420 || f.format == dfd::PixelFormat::NV12;
  std::vector<uint8_t> planes[3];
  for (int p = 0; p < 3; ++p) {
    f.strides[p] = data[3 + p] % 2 ? 0 : data[3 + p] * 2;  // 0 = packed, else up to 510 (may be short)
    const int rows = p == 0 || !planar ? f.height : (f.height + 1) / 2;
    const int bpp = planar ? (p == 1 && f.format == dfd::PixelFormat::NV12 ? 2 : 1)
                           : (f.format == dfd::PixelFormat::BGR || f.format == dfd::PixelFormat::RGB ? 3 : 4);
    const int cols = p == 0 || !planar ? f.width : (f.width + 1) / 2;
    const int stride = f.strides[p] ? f.strides[p] : cols * bpp;
    planes[p].assign(size_t(std::max(stride, cols * bpp)) * size_t(rows) + 1, 0);
    std::copy_n(data + 6, std::min(planes[p].size(), size - 6), planes[p].begin());
    f.planes[p] = planes[p].data();
  }
  try {
    cv::Mat bgr = dfd::to_bgr(f);
    if (bgr.rows != f.height || bgr.cols != f.width) __builtin_trap();
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
