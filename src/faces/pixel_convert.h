// Raw video frames (as GStreamer maps them, but no GStreamer here) to a BGR
// cv::Mat. Packed BGR frames are wrapped without copying when possible.
#pragma once
#include <cstdint>
#include <opencv2/core.hpp>
#include <string>

namespace dfd {

enum class PixelFormat { BGR, BGRx, BGRA, RGB, RGBx, RGBA, I420, NV12 };
PixelFormat pixel_format_from_string(const std::string& s);  // GStreamer format names; throws std::invalid_argument
const char* to_string(PixelFormat f);                        // the GStreamer name

struct RawFrame {
  PixelFormat format = PixelFormat::BGR;
  int width = 0, height = 0;
  // Packed formats use plane 0; I420 uses Y, U, V; NV12 uses Y, UV. Chroma
  // planes are ceil(w/2) x ceil(h/2), as GStreamer lays them out, so odd
  // sizes are fine. A stride of 0 means tightly packed rows.
  const uint8_t* planes[3] = {nullptr, nullptr, nullptr};
  int strides[3] = {0, 0, 0};
};

// BGR CV_8UC3 view or copy of the frame. For BGR input the result is a view
// of planes[0] (valid only while that memory is); every other format gives a
// new image. Throws std::invalid_argument on a bad size, a missing plane or a
// stride shorter than a row.
cv::Mat to_bgr(const RawFrame& f);

}  // namespace dfd
