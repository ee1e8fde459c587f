#include "model/preprocess.h"

#include <opencv2/imgproc.hpp>
#include <stdexcept>

#include "analysis/feature.h"

namespace dfd {

void crops_to_nchw(const std::vector<const cv::Mat*>& crops, const Normalisation& n, float* out) {
  crops_to_nchw(crops, n, kInputSize, out);
}

void crops_to_nchw(const std::vector<const cv::Mat*>& crops, const Normalisation& n, int size, float* out) {
  if (size < 1) throw std::invalid_argument("input size must be positive");
  const int s = size;
  float scale[3], shift[3];
  for (int c = 0; c < 3; ++c) {  // (v / 255 - mean) / std as one multiply-add
    scale[c] = 1.f / (255.f * n.std[size_t(c)]);
    shift[c] = -n.mean[size_t(c)] / n.std[size_t(c)];
  }
  cv::Mat resized;
  for (size_t i = 0; i < crops.size(); ++i) {
    const cv::Mat* src = crops[i];
    if (!src || src->empty() || src->type() != CV_8UC3) throw std::invalid_argument("crop must be a non-empty CV_8UC3 BGR image");
    const cv::Mat* img = src;
    if (src->rows != s || src->cols != s) {
      cv::resize(*src, resized, cv::Size(s, s), 0, 0, cv::INTER_LINEAR);
      img = &resized;
    }
    float* dst = out + i * size_t(3 * s * s);
    for (int y = 0; y < s; ++y) {
      const uint8_t* row = img->ptr<uint8_t>(y);
      for (int x = 0; x < s; ++x)
        for (int c = 0; c < 3; ++c) {
          const int from = n.swap_rb ? 2 - c : c;
          dst[(size_t(c) * s + size_t(y)) * s + size_t(x)] = row[x * 3 + from] * scale[c] + shift[c];
        }
    }
  }
}

}  // namespace dfd
