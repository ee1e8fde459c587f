// Class activation heatmaps of face crops, as the original API's `img`: the
// backbone's last feature map weighted by the head's weights for one class
// (Model::activation_map), JET colours, blended over the crop. Also the small
// image helpers reports and the service need (PNG, base64, data: URIs).
// No LibTorch here: everything goes through the torch-free Model API.
#pragma once
#include <cstdint>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "model/model.h"

namespace dfd {

// JET colour map of `cam` (CV_8UC1, any size; resized bilinear to the image)
// blended over `bgr` (CV_8UC3): (1 - alpha) * image + alpha * colours.
cv::Mat blend_heatmap(const cv::Mat& bgr, const cv::Mat& cam, double alpha = 0.45);

struct FaceHeatmap {
  cv::Mat crop;     // the face region as the analyser cropped it, display_size square, BGR
  cv::Mat cam;      // activation map, CV_8UC1, display_size square (0..255, min-max scaled)
  cv::Mat heatmap;  // blend_heatmap(crop, cam)
};

// The heatmap of one face on a full BGR frame. The model sees exactly the
// analyser's input (crop_face(frame, box, margin): 112x112 bilinear); the
// picture shown is the same region of the frame resized to display_size.
// `cls` is kClassFake for "where the model sees a fake" (reports) or the
// winning class (the original API). Throws std::invalid_argument when the
// box misses the frame.
FaceHeatmap face_heatmap(const Model& model, const cv::Mat& frame_bgr, const cv::Rect& box, int cls = kClassFake,
                         float margin = 0.f, int display_size = 224);

std::vector<uint8_t> encode_png(const cv::Mat& image);  // throws std::runtime_error
std::string base64_encode(const uint8_t* data, size_t size);
inline std::string base64_encode(const std::vector<uint8_t>& bytes) { return base64_encode(bytes.data(), bytes.size()); }
inline std::string base64_encode(const std::string& bytes) {
  return base64_encode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}
// "data:image/png;base64,..." of raw PNG bytes.
std::string png_data_uri(const std::string& png_bytes);

}  // namespace dfd
