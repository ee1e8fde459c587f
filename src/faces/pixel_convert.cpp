// Raw frame layouts as GStreamer's video/x-raw describes them, converted to
// BGR with OpenCV. Planar YUV is first packed into the contiguous layout
// cv::cvtColor expects, because GStreamer pads rows (and planes) freely.
#include "faces/pixel_convert.h"

#include <cstring>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <string>

namespace dfd {

PixelFormat pixel_format_from_string(const std::string& s) {
  if (s == "BGR") return PixelFormat::BGR;
  if (s == "BGRx") return PixelFormat::BGRx;
  if (s == "BGRA") return PixelFormat::BGRA;
  if (s == "RGB") return PixelFormat::RGB;
  if (s == "RGBx") return PixelFormat::RGBx;
  if (s == "RGBA") return PixelFormat::RGBA;
  if (s == "I420") return PixelFormat::I420;
  if (s == "NV12") return PixelFormat::NV12;
  throw std::invalid_argument("unsupported pixel format '" + s +
                              "' (expected BGR, BGRx, BGRA, RGB, RGBx, RGBA, I420 or NV12)");
}

const char* to_string(PixelFormat f) {
  switch (f) {
    case PixelFormat::BGR: return "BGR";
    case PixelFormat::BGRx: return "BGRx";
    case PixelFormat::BGRA: return "BGRA";
    case PixelFormat::RGB: return "RGB";
    case PixelFormat::RGBx: return "RGBx";
    case PixelFormat::RGBA: return "RGBA";
    case PixelFormat::I420: return "I420";
    case PixelFormat::NV12: return "NV12";
  }
  return "?";
}

namespace {

// Stride of plane `i`, 0 meaning tightly packed rows of `min_bytes`.
int plane_stride(const RawFrame& f, int i, int min_bytes) {
  const int s = f.strides[i] == 0 ? min_bytes : f.strides[i];
  if (s < min_bytes)
    throw std::invalid_argument(std::string(to_string(f.format)) + " plane " + std::to_string(i) + ": stride " +
                                std::to_string(s) + " is shorter than a row (" + std::to_string(min_bytes) + " bytes)");
  if (!f.planes[i])
    throw std::invalid_argument(std::string(to_string(f.format)) + " plane " + std::to_string(i) + " is missing");
  return s;
}

cv::Mat packed_view(const RawFrame& f, int channels) {
  const int stride = plane_stride(f, 0, f.width * channels);
  // cv::Mat has no const-data constructor; the view is only read from.
  return cv::Mat(f.height, f.width, CV_8UC(channels), const_cast<uint8_t*>(f.planes[0]), size_t(stride));
}

void copy_rows(uint8_t* dst, int dst_stride, const uint8_t* src, int src_stride, int row_bytes, int rows) {
  for (int y = 0; y < rows; ++y) std::memcpy(dst + size_t(y) * dst_stride, src + size_t(y) * src_stride, row_bytes);
}

// I420 / NV12. GStreamer sizes chroma as ceil(w/2) x ceil(h/2); OpenCV wants
// even dimensions, so odd frames are converted at the next even size (the
// extra luma column/row repeats the last one) and cropped back.
cv::Mat yuv420_to_bgr(const RawFrame& f) {
  const int w = f.width, h = f.height;
  const int W = (w + 1) & ~1, H = (h + 1) & ~1;  // even size
  const int cw = W / 2, ch = H / 2;              // chroma plane size

  cv::Mat yuv(H + ch, W, CV_8UC1);  // Y rows, then chroma packed behind them
  uint8_t* base = yuv.data;

  const int ys = plane_stride(f, 0, w);
  copy_rows(base, W, f.planes[0], ys, w, h);
  if (W != w)
    for (int y = 0; y < h; ++y) base[size_t(y) * W + w] = base[size_t(y) * W + w - 1];
  if (H != h) std::memcpy(base + size_t(h) * W, base + size_t(h - 1) * W, W);

  uint8_t* chroma = base + size_t(W) * H;
  int code;
  if (f.format == PixelFormat::I420) {
    const int us = plane_stride(f, 1, cw), vs = plane_stride(f, 2, cw);
    copy_rows(chroma, cw, f.planes[1], us, cw, ch);
    copy_rows(chroma + size_t(cw) * ch, cw, f.planes[2], vs, cw, ch);
    code = cv::COLOR_YUV2BGR_I420;
  } else {
    const int uvs = plane_stride(f, 1, 2 * cw);
    copy_rows(chroma, 2 * cw, f.planes[1], uvs, 2 * cw, ch);
    code = cv::COLOR_YUV2BGR_NV12;
  }
  cv::Mat bgr;
  cv::cvtColor(yuv, bgr, code);
  if (W != w || H != h) bgr = bgr(cv::Rect(0, 0, w, h)).clone();
  return bgr;
}

}  // namespace

cv::Mat to_bgr(const RawFrame& f) {
  if (f.width <= 0 || f.height <= 0)
    throw std::invalid_argument("frame size " + std::to_string(f.width) + "x" + std::to_string(f.height) +
                                " is not positive");
  cv::Mat out;
  switch (f.format) {
    case PixelFormat::BGR: return packed_view(f, 3);  // no copy
    case PixelFormat::RGB: cv::cvtColor(packed_view(f, 3), out, cv::COLOR_RGB2BGR); return out;
    // The x/A byte is ignored either way: alpha has no meaning for analysis.
    case PixelFormat::BGRx:
    case PixelFormat::BGRA: cv::cvtColor(packed_view(f, 4), out, cv::COLOR_BGRA2BGR); return out;
    case PixelFormat::RGBx:
    case PixelFormat::RGBA: cv::cvtColor(packed_view(f, 4), out, cv::COLOR_RGBA2BGR); return out;
    case PixelFormat::I420:
    case PixelFormat::NV12: return yuv420_to_bgr(f);
  }
  throw std::invalid_argument("unknown pixel format");
}

}  // namespace dfd
