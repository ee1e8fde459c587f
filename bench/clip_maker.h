// Synthetic benchmark clips: the fixture portrait, 1 to 4 copies, moving
// slowly over a textured background, written as MJPG AVI (what the real
// pipeline then decodes with jpegdec / FFmpeg).
#pragma once
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace dfd::bench {

struct ClipSpec {
  int width = 1280, height = 720, faces = 1, frames = 300, fps = 30;
  std::string fourcc = "MJPG";  // FFV1: lossless, decoded bit-exactly by FFmpeg and GStreamer alike
};

// Where the portraits are on frame `i` (the truth for detection rates).
std::vector<cv::Rect> portrait_boxes(const ClipSpec& spec, int i);

// Writes `path`; returns the number of frames written. Throws on failure.
int make_clip(const std::string& portrait_png, const std::string& path, const ClipSpec& spec);

}  // namespace dfd::bench
