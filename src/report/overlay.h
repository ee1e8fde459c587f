// Drawing verdicts onto raw video frames in their own pixel format (no
// conversion round trip): packed RGB/BGR variants directly, I420 and NV12 on
// the luma plane with the chroma planes coloured at half resolution.
#pragma once
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "faces/pixel_convert.h"

namespace dfd {

struct OverlayItem {
  enum class Kind { Fake, Real, Pending };
  cv::Rect box;
  Kind kind = Kind::Pending;
  std::string text;  // e.g. "FAKE 0.87 #3"
};

// Writes into the frame's planes (which must be mapped writable, although
// RawFrame holds them as const). `notice`, when not empty, is drawn as a
// banner at the top (the model card's trust notice for untrained models).
void draw_overlay(const RawFrame& frame, const std::vector<OverlayItem>& items, const std::string& notice);

// Colours used, BGR: FAKE red, REAL green, pending yellow.
cv::Scalar overlay_colour(OverlayItem::Kind k);

}  // namespace dfd
