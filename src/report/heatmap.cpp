#include "report/heatmap.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

#include "faces/crop.h"

namespace dfd {

cv::Mat blend_heatmap(const cv::Mat& bgr, const cv::Mat& cam, double alpha) {
  if (bgr.empty() || bgr.type() != CV_8UC3) throw std::invalid_argument("blend_heatmap: image must be BGR CV_8UC3");
  if (cam.empty() || cam.type() != CV_8UC1) throw std::invalid_argument("blend_heatmap: map must be CV_8UC1");
  cv::Mat m = cam;
  if (m.size() != bgr.size()) cv::resize(cam, m, bgr.size(), 0, 0, cv::INTER_LINEAR);
  cv::Mat colours, out;
  cv::applyColorMap(m, colours, cv::COLORMAP_JET);
  cv::addWeighted(bgr, 1.0 - alpha, colours, alpha, 0.0, out);
  return out;
}

FaceHeatmap face_heatmap(const Model& model, const cv::Mat& frame_bgr, const cv::Rect& box, int cls, float margin,
                         int display_size) {
  if (display_size < 16) throw std::invalid_argument("face_heatmap: display_size too small");
  // What the model saw (the analyser's crop) ...
  const cv::Mat input = crop_face(frame_bgr, box, margin);
  const cv::Mat cam112 = model.activation_map(input, cls);
  // ... and the same region of the frame at display size (sharper than the 112 crop).
  cv::Rect r = box;
  if (margin > 0) {
    const int dx = int(box.width * margin), dy = int(box.height * margin);
    r = cv::Rect(box.x - dx, box.y - dy, box.width + 2 * dx, box.height + 2 * dy);
  }
  r &= cv::Rect(0, 0, frame_bgr.cols, frame_bgr.rows);
  FaceHeatmap h;
  const cv::Size size(display_size, display_size);
  cv::resize(frame_bgr(r), h.crop, size, 0, 0, display_size >= r.width ? cv::INTER_CUBIC : cv::INTER_AREA);
  cv::resize(cam112, h.cam, size, 0, 0, cv::INTER_LINEAR);
  h.heatmap = blend_heatmap(h.crop, h.cam);
  return h;
}

std::vector<uint8_t> encode_png(const cv::Mat& image) {
  std::vector<uint8_t> out;
  if (image.empty() || !cv::imencode(".png", image, out)) throw std::runtime_error("could not encode a PNG image");
  return out;
}

std::string base64_encode(const uint8_t* data, size_t size) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < size; i += 3) {
    const uint32_t v = (uint32_t(data[i]) << 16) | (uint32_t(data[i + 1]) << 8) | data[i + 2];
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += abc[(v >> 6) & 63];
    out += abc[v & 63];
  }
  if (i + 1 == size) {
    const uint32_t v = uint32_t(data[i]) << 16;
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == size) {
    const uint32_t v = (uint32_t(data[i]) << 16) | (uint32_t(data[i + 1]) << 8);
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += abc[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string png_data_uri(const std::string& png_bytes) { return "data:image/png;base64," + base64_encode(png_bytes); }

}  // namespace dfd
