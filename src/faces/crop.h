#pragma once
#include <opencv2/core.hpp>

namespace dfd {
// size x size crop of `box` from a BGR frame: box grown by `margin` (fraction
// of its size on each side), clipped to the frame, resized bilinear. 112 is
// the ResNeXt's input; a detector's own is DetectorInfo::input_size (MesoNet
// 256). Throws std::invalid_argument when the box misses the frame or size < 1.
cv::Mat crop_face(const cv::Mat& bgr, const cv::Rect& box, float margin = 0.f, int size = 112);
}  // namespace dfd
