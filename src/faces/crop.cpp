// Face crops as the reference prepares them: a box (tight by default), an
// optional margin, clipped to the frame, resized bilinear to the detector's
// input size (112x112 for the ResNeXt). Optionally aligned on the eyes.
#include "faces/crop.h"

#include <cmath>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

namespace dfd {

namespace {
cv::Rect grown(const cv::Rect& box, float margin) {
  if (margin <= 0) return box;
  const int dx = int(box.width * margin), dy = int(box.height * margin);
  return cv::Rect(box.x - dx, box.y - dy, box.width + 2 * dx, box.height + 2 * dy);
}

void check(const cv::Mat& bgr, const cv::Rect& box, int size) {
  if (size < 1) throw std::invalid_argument("crop size must be at least 1");
  if ((box & cv::Rect(0, 0, bgr.cols, bgr.rows)).empty()) throw std::invalid_argument("face box lies outside the frame");
}
}  // namespace

cv::Mat crop_face(const cv::Mat& bgr, const cv::Rect& box, float margin, int size) {
  check(bgr, grown(box, margin), size);
  const cv::Rect r = grown(box, margin) & cv::Rect(0, 0, bgr.cols, bgr.rows);
  cv::Mat out;
  cv::resize(bgr(r), out, cv::Size(size, size), 0, 0, cv::INTER_LINEAR);
  return out;
}

cv::Mat crop_face_aligned(const cv::Mat& bgr, const cv::Rect& box, cv::Point2f eye_a, cv::Point2f eye_b, float margin,
                          int size) {
  const cv::Rect r = grown(box, margin);
  check(bgr, r, size);
  // Tilt of the line from the eye on the image's left to the other; ordering
  // by x keeps a reversed pair from turning the face upside down.
  const cv::Point2f left = eye_a.x <= eye_b.x ? eye_a : eye_b, right = eye_a.x <= eye_b.x ? eye_b : eye_a;
  const double a = std::atan2(double(right.y - left.y), double(right.x - left.x));
  const double c = std::cos(a), s = std::sin(a);
  const double cx = r.x + r.width * 0.5, cy = r.y + r.height * 0.5;
  const double sx = double(size) / r.width, sy = double(size) / r.height;
  // Output = scale * rotate(-a) * (input - centre) + the output's centre:
  // the eye line (cos a, sin a) becomes horizontal.
  const cv::Matx23d m(sx * c, sx * s, size * 0.5 - sx * (c * cx + s * cy),
                      -sy * s, sy * c, size * 0.5 - sy * (-s * cx + c * cy));
  cv::Mat out;
  cv::warpAffine(bgr, out, cv::Mat(m), cv::Size(size, size), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  return out;
}

}  // namespace dfd
