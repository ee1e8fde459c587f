// Face crops as the reference prepares them: a box (tight by default), an
// optional margin, clipped to the frame, resized to 112x112 bilinear.
#include "faces/crop.h"

#include <opencv2/imgproc.hpp>
#include <stdexcept>

#include "analysis/feature.h"

namespace dfd {

cv::Mat crop_face(const cv::Mat& bgr, const cv::Rect& box, float margin) {
  cv::Rect r = box;
  if (margin > 0) {
    const int dx = int(box.width * margin), dy = int(box.height * margin);
    r = cv::Rect(box.x - dx, box.y - dy, box.width + 2 * dx, box.height + 2 * dy);
  }
  r &= cv::Rect(0, 0, bgr.cols, bgr.rows);
  if (r.empty()) throw std::invalid_argument("face box lies outside the frame");
  cv::Mat out;
  cv::resize(bgr(r), out, cv::Size(kInputSize, kInputSize), 0, 0, cv::INTER_LINEAR);
  return out;
}

}  // namespace dfd
