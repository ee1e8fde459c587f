#pragma once
#include <opencv2/core.hpp>

namespace dfd {
// 112x112 crop of `box` from a BGR frame: box grown by `margin` (fraction of
// its size on each side), clipped to the frame, resized bilinear.
// Throws std::invalid_argument when the box misses the frame.
cv::Mat crop_face(const cv::Mat& bgr, const cv::Rect& box, float margin = 0.f);
}  // namespace dfd
