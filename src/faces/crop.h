#pragma once
#include <opencv2/core.hpp>

namespace dfd {
// size x size crop of `box` from a BGR frame: box grown by `margin` (fraction
// of its size on each side), clipped to the frame, resized bilinear. 112 is
// the ResNeXt's input; a detector's own is DetectorInfo::input_size (MesoNet
// 256). Throws std::invalid_argument when the box misses the frame or size < 1.
cv::Mat crop_face(const cv::Mat& bgr, const cv::Rect& box, float margin = 0.f, int size = 112);

// The same crop turned about the box centre so that the two eyes (the
// detector's eye landmarks, full-resolution pixels, either order) lie on one
// row: a tilted head comes out upright. The grown box is not clipped: what
// lies outside the frame repeats the frame's edge pixels. Same errors as
// crop_face.
cv::Mat crop_face_aligned(const cv::Mat& bgr, const cv::Rect& box, cv::Point2f eye_a, cv::Point2f eye_b,
                          float margin = 0.f, int size = 112);
}  // namespace dfd
