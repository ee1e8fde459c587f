// Crops into the network's input layout, as the reference prepares them:
// 112x112 (bilinear when the crop is another size), scaled to [0, 1],
// normalised channel by channel in the model card's order (BGR for the
// published model, which never converts from OpenCV's order). Shared by
// inference (model.cpp) and training (train_head.cpp); no LibTorch here.
#pragma once
#include <array>
#include <opencv2/core.hpp>
#include <vector>

namespace dfd {

struct Normalisation {
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
  bool swap_rb = false;  // card channel_order RGB: the crops are BGR, the model wants RGB
};

// Writes crops.size() x 3 x 112 x 112 floats (NCHW) to `out`.
// Throws std::invalid_argument for an empty or non-CV_8UC3 crop.
void crops_to_nchw(const std::vector<const cv::Mat*>& crops, const Normalisation& n, float* out);
// The same at another input size (MesoNet: 256), resized bilinear
// (cv::INTER_LINEAR) when a crop is not size x size.
void crops_to_nchw(const std::vector<const cv::Mat*>& crops, const Normalisation& n, int size, float* out);

}  // namespace dfd
