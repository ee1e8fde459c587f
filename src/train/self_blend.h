// Self-blended fakes (after Shiohara & Yamasaki, "Detecting Deepfakes with
// Self-Blended Images", CVPR 2022): a real face crop is blended with a
// colour-, frequency- and geometry-jittered copy of itself through a soft
// face-shaped mask. The result carries the traces a face swap leaves
// (blending boundary, colour and sharpness mismatch) with no second identity,
// so a detector can be trained from real videos only.
//
// Without facial landmarks the mask is the convex hull of points jittered
// around an ellipse that covers the central face region of the crop (the
// tracker's crops are centred on the face), then eroded or dilated and
// blurred. OpenCV only; no LibTorch.
#pragma once
#include <cstdint>
#include <opencv2/core.hpp>
#include <vector>

namespace dfd {

// One draw of the augmentation. Draw once per video and apply to each of its
// crops so the fake sequence is temporally consistent (the mask follows the
// face because the crops do).
struct SelfBlendParams {
  // colour of the source copy
  float hue_shift = 0;        // OpenCV hue units (0..180 wraps)
  float sat_scale = 1, val_scale = 1;
  cv::Vec3f bgr_shift{0, 0, 0};  // added per channel, 0..255 scale
  float contrast = 1, brightness = 0;
  // frequency: 0 none, 1 downscale-upscale (factor `down`), 2 sharpen (amount `sharpen`)
  int frequency = 0;
  float down = 1, sharpen = 0;
  // geometry of the source copy, relative to the crop side
  float scale_x = 1, scale_y = 1, shift_x = 0, shift_y = 0;
  // mask: hull of points around an ellipse (centre and radii relative to the side)
  float cx = 0.5f, cy = 0.55f, rx = 0.33f, ry = 0.4f;
  std::vector<float> radial;  // per hull point: radius factor
  int morph = 0;              // >0 dilate, <0 erode, pixels (on a 112 crop)
  float blur_sigma = 4;       // pixels (on a 112 crop)
  float blend = 1;            // peak opacity of the mask
};

// Deterministic draw from a seed.
SelfBlendParams draw_self_blend_params(uint64_t seed);

// The soft mask (CV_32FC1, values 0..blend) for a crop of the given size.
cv::Mat self_blend_mask(const cv::Size& size, const SelfBlendParams& p);

// Blend of `crop` (BGR CV_8UC3) with its jittered copy. Throws
// std::invalid_argument for an empty or non-BGR image. `mask_out`, when
// given, receives the mask used.
cv::Mat self_blend(const cv::Mat& crop, const SelfBlendParams& p, cv::Mat* mask_out = nullptr);

}  // namespace dfd
