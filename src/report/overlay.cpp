#include "report/overlay.h"

#include <algorithm>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

namespace dfd {

cv::Scalar overlay_colour(OverlayItem::Kind k) {
  switch (k) {
    case OverlayItem::Kind::Fake: return {0, 0, 255};
    case OverlayItem::Kind::Real: return {0, 200, 0};
    case OverlayItem::Kind::Pending: return {0, 220, 255};
  }
  return {255, 255, 255};
}

namespace {

// A drawing surface in the frame's own format. Colours are given in BGR.
class Canvas {
 public:
  explicit Canvas(const RawFrame& f) : f_(f) {
    auto* p0 = const_cast<uint8_t*>(f.planes[0]);
    switch (f.format) {
      case PixelFormat::BGR:
      case PixelFormat::RGB:
        main_ = cv::Mat(f.height, f.width, CV_8UC3, p0, stride(0, f.width * 3));
        break;
      case PixelFormat::BGRx:
      case PixelFormat::BGRA:
      case PixelFormat::RGBx:
      case PixelFormat::RGBA:
        main_ = cv::Mat(f.height, f.width, CV_8UC4, p0, stride(0, f.width * 4));
        break;
      case PixelFormat::I420: {
        const int cw = (f.width + 1) / 2, ch = (f.height + 1) / 2;
        main_ = cv::Mat(f.height, f.width, CV_8UC1, p0, stride(0, f.width));
        u_ = cv::Mat(ch, cw, CV_8UC1, const_cast<uint8_t*>(f.planes[1]), stride(1, cw));
        v_ = cv::Mat(ch, cw, CV_8UC1, const_cast<uint8_t*>(f.planes[2]), stride(2, cw));
        break;
      }
      case PixelFormat::NV12: {
        const int cw = (f.width + 1) / 2, ch = (f.height + 1) / 2;
        main_ = cv::Mat(f.height, f.width, CV_8UC1, p0, stride(0, f.width));
        u_ = cv::Mat(ch, cw, CV_8UC2, const_cast<uint8_t*>(f.planes[1]), stride(1, cw * 2));
        break;
      }
    }
  }

  void rect(const cv::Rect& r, const cv::Scalar& bgr, int thickness) {
    cv::rectangle(main_, r, main_colour(bgr), thickness);
    if (!u_.empty()) {
      const cv::Rect h(r.x / 2, r.y / 2, std::max(1, r.width / 2), std::max(1, r.height / 2));
      const int t = thickness < 0 ? thickness : std::max(1, thickness / 2);
      const cv::Scalar yuv = to_yuv(bgr);
      if (v_.empty()) {
        cv::rectangle(u_, h, cv::Scalar(yuv[1], yuv[2]), t);  // NV12: interleaved UV
      } else {
        cv::rectangle(u_, h, cv::Scalar(yuv[1]), t);
        cv::rectangle(v_, h, cv::Scalar(yuv[2]), t);
      }
    }
  }

  void text(const std::string& s, cv::Point org, double scale, const cv::Scalar& bgr, int thickness) {
    // Text goes on luma only for planar YUV: its chroma is the background's.
    cv::putText(main_, s, org, cv::FONT_HERSHEY_SIMPLEX, scale, main_colour(bgr), thickness, cv::LINE_AA);
  }

  int width() const { return f_.width; }
  int height() const { return f_.height; }

 private:
  size_t stride(int i, int min_bytes) const {
    const int s = f_.strides[i] == 0 ? min_bytes : f_.strides[i];
    if (s < min_bytes || !f_.planes[i]) throw std::invalid_argument("overlay: bad plane layout");
    return size_t(s);
  }
  static cv::Scalar to_yuv(const cv::Scalar& bgr) {  // BT.601 limited range
    const double b = bgr[0], g = bgr[1], r = bgr[2];
    return {16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0, 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0,
            128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0};
  }
  cv::Scalar main_colour(const cv::Scalar& bgr) const {
    switch (f_.format) {
      case PixelFormat::BGR: return bgr;
      case PixelFormat::BGRx:
      case PixelFormat::BGRA: return {bgr[0], bgr[1], bgr[2], 255};
      case PixelFormat::RGB: return {bgr[2], bgr[1], bgr[0]};
      case PixelFormat::RGBx:
      case PixelFormat::RGBA: return {bgr[2], bgr[1], bgr[0], 255};
      case PixelFormat::I420:
      case PixelFormat::NV12: return {to_yuv(bgr)[0]};
    }
    return bgr;
  }

  RawFrame f_;
  cv::Mat main_, u_, v_;
};

void label(Canvas& c, const std::string& s, cv::Point anchor, const cv::Scalar& bg, double scale, int thick) {
  int base = 0;
  const cv::Size ts = cv::getTextSize(s, cv::FONT_HERSHEY_SIMPLEX, scale, thick, &base);
  const int pad = std::max(2, thick * 2);
  int x = std::clamp(anchor.x, 0, std::max(0, c.width() - ts.width - 2 * pad));
  int y = anchor.y - ts.height - base - 2 * pad;  // above the anchor when it fits
  if (y < 0) y = std::min(anchor.y, std::max(0, c.height() - ts.height - base - 2 * pad));
  const cv::Rect bgr(x, y, ts.width + 2 * pad, ts.height + base + 2 * pad);
  c.rect(bgr & cv::Rect(0, 0, c.width(), c.height()), bg, cv::FILLED);
  const bool dark_text = bg[1] > 150 && bg[2] > 150;  // yellow background
  c.text(s, cv::Point(x + pad, y + pad + ts.height), scale, dark_text ? cv::Scalar(0, 0, 0) : cv::Scalar(255, 255, 255), thick);
}

}  // namespace

void draw_overlay(const RawFrame& frame, const std::vector<OverlayItem>& items, const std::string& notice) {
  if (frame.width <= 0 || frame.height <= 0) return;
  Canvas c(frame);
  const int side = std::min(frame.width, frame.height);
  const double scale = std::clamp(side / 600.0, 0.35, 1.5);
  const int thick = std::max(1, int(side / 300));
  const int box_thick = std::max(2, side / 200);
  const cv::Rect all(0, 0, frame.width, frame.height);
  for (const auto& it : items) {
    const cv::Rect r = it.box & all;
    if (r.empty()) continue;
    const cv::Scalar col = overlay_colour(it.kind);
    c.rect(r, col, box_thick);
    if (!it.text.empty()) label(c, it.text, cv::Point(r.x, r.y), col, scale, thick);
  }
  if (!notice.empty()) {
    double ns = scale * 0.9;  // shrunk until the banner fits the width
    while (ns > 0.25 && cv::getTextSize(notice, cv::FONT_HERSHEY_SIMPLEX, ns, thick, nullptr).width + 8 > frame.width)
      ns *= 0.9;
    label(c, notice, cv::Point(0, 0), cv::Scalar(40, 40, 40), ns, thick);
  }
}

}  // namespace dfd
