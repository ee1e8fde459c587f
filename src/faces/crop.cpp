// Face crops as the reference prepares them: a box (tight by default), an
// optional margin, clipped to the frame, resized bilinear to the detector's
// input size (112x112 for the ResNeXt).
#include "faces/crop.h"

#include <opencv2/imgproc.hpp>
#include <stdexcept>

namespace dfd {

cv::Mat crop_face(const cv::Mat& bgr, const cv::Rect& box, float margin, int size) {
  if (size < 1) throw std::invalid_argument("crop size must be at least 1");
  cv::Rect r = box;
  if (margin > 0) {
    const int dx = int(box.width * margin), dy = int(box.height * margin);
    r = cv::Rect(box.x - dx, box.y - dy, box.width + 2 * dx, box.height + 2 * dy);
  }
  r &= cv::Rect(0, 0, bgr.cols, bgr.rows);
  if (r.empty()) throw std::invalid_argument("face box lies outside the frame");
  cv::Mat out;
  cv::resize(bgr(r), out, cv::Size(size, size), 0, 0, cv::INTER_LINEAR);
  return out;
}

}  // namespace dfd
