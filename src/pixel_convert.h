// Raw video frames (as GStreamer maps them, but no GStreamer here) to a BGR
// cv::Mat. Packed BGR frames are wrapped without copying when possible.
#pragma once
#include <cstdint>
#include <opencv2/core.hpp>
#include <string>

namespace dfd {

enum class PixelFormat { BGR, BGRx, BGRA, RGB, RGBx, RGBA, I420, NV12 };
PixelFormat pixel_format_from_string(const std::string& s);  // GStreamer format names; throws

struct RawFrame {
  PixelFormat format = PixelFormat::BGR;
  int width = 0, height = 0;
  const uint8_t* planes[3] = {nullptr, nullptr, nullptr};
  int strides[3] = {0, 0, 0};
};

// BGR CV_8UC3 view or copy of the frame.
cv::Mat to_bgr(const RawFrame& f);

}  // namespace dfd
