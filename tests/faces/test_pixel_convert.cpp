// Raw frame layouts to BGR. Sources are made from a known BGR image with
// cv::cvtColor and copied into buffers with padded rows, as GStreamer maps them.
#include <gtest/gtest.h>

#include <cstring>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <vector>

#include "faces/pixel_convert.h"

namespace dfd {
namespace {

// A 320x240 (or odd-sized) colourful crop of the astronaut.
cv::Mat reference_bgr(int w = 320, int h = 240) {
  cv::Mat im = cv::imread(DFD_TEST_DATA_DIR "/astronaut.png", cv::IMREAD_COLOR);
  if (im.empty()) throw std::runtime_error("cannot read astronaut.png");
  cv::Mat out;
  cv::resize(im, out, cv::Size(w, h), 0, 0, cv::INTER_AREA);
  return out;
}

// Plane storage with `pad` junk bytes after each row.
struct Plane {
  std::vector<uint8_t> bytes;
  int stride = 0;
};

Plane padded(const cv::Mat& m, int pad) {
  const int row = int(m.cols * m.elemSize());
  Plane p;
  p.stride = row + pad;
  p.bytes.assign(size_t(p.stride) * m.rows, 0xA5);
  for (int y = 0; y < m.rows; ++y) std::memcpy(p.bytes.data() + size_t(y) * p.stride, m.ptr(y), row);
  return p;
}

double mean_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat d;
  cv::absdiff(a, b, d);
  const cv::Scalar s = cv::mean(d);
  return (s[0] + s[1] + s[2]) / 3.0;
}

double max_abs_diff(const cv::Mat& a, const cv::Mat& b) { return cv::norm(a, b, cv::NORM_INF); }

RawFrame packed_frame(PixelFormat fmt, const Plane& p, int w, int h) {
  RawFrame f;
  f.format = fmt;
  f.width = w;
  f.height = h;
  f.planes[0] = p.bytes.data();
  f.strides[0] = p.stride;
  return f;
}

TEST(PixelConvert, BgrIsAViewHonouringStride) {
  const cv::Mat ref = reference_bgr();
  const Plane p = padded(ref, 7);
  const cv::Mat out = to_bgr(packed_frame(PixelFormat::BGR, p, ref.cols, ref.rows));
  EXPECT_EQ(out.data, p.bytes.data());  // no copy
  EXPECT_EQ(out.step, size_t(p.stride));
  ASSERT_EQ(out.type(), CV_8UC3);
  EXPECT_EQ(max_abs_diff(out, ref), 0);
}

TEST(PixelConvert, Rgb) {
  const cv::Mat ref = reference_bgr();
  cv::Mat rgb;
  cv::cvtColor(ref, rgb, cv::COLOR_BGR2RGB);
  const Plane p = padded(rgb, 5);
  const cv::Mat out = to_bgr(packed_frame(PixelFormat::RGB, p, ref.cols, ref.rows));
  ASSERT_EQ(out.type(), CV_8UC3);
  ASSERT_EQ(out.size(), ref.size());
  EXPECT_EQ(max_abs_diff(out, ref), 0);
}

// Four-byte formats; the fourth byte is set to junk to show it is ignored.
void check_four_byte(PixelFormat fmt, int code) {
  const cv::Mat ref = reference_bgr();
  cv::Mat four;
  cv::cvtColor(ref, four, code);
  for (int y = 0; y < four.rows; ++y)
    for (int x = 0; x < four.cols; ++x) four.at<cv::Vec4b>(y, x)[3] = uint8_t(x * 7 + y);
  const Plane p = padded(four, 12);
  const cv::Mat out = to_bgr(packed_frame(fmt, p, ref.cols, ref.rows));
  ASSERT_EQ(out.type(), CV_8UC3) << to_string(fmt);
  ASSERT_EQ(out.size(), ref.size());
  EXPECT_EQ(max_abs_diff(out, ref), 0) << to_string(fmt);
}

TEST(PixelConvert, Bgrx) { check_four_byte(PixelFormat::BGRx, cv::COLOR_BGR2BGRA); }
TEST(PixelConvert, Bgra) { check_four_byte(PixelFormat::BGRA, cv::COLOR_BGR2BGRA); }
TEST(PixelConvert, Rgbx) { check_four_byte(PixelFormat::RGBx, cv::COLOR_BGR2RGBA); }
TEST(PixelConvert, Rgba) { check_four_byte(PixelFormat::RGBA, cv::COLOR_BGR2RGBA); }

// I420 planes of `ref` (even or odd size) as GStreamer lays them out: chroma
// planes ceil(w/2) x ceil(h/2). OpenCV converts even sizes only, so an odd
// image is edge-extended to even, converted and the luma cropped back.
struct Yuv420 {
  cv::Mat y, u, v;
};
Yuv420 make_i420(const cv::Mat& ref) {
  const int W = (ref.cols + 1) & ~1, H = (ref.rows + 1) & ~1;
  cv::Mat even;
  cv::copyMakeBorder(ref, even, 0, H - ref.rows, 0, W - ref.cols, cv::BORDER_REPLICATE);
  cv::Mat yuv;
  cv::cvtColor(even, yuv, cv::COLOR_BGR2YUV_I420);  // H*3/2 rows of W bytes
  Yuv420 out;
  out.y = yuv(cv::Rect(0, 0, W, H))(cv::Rect(0, 0, ref.cols, ref.rows)).clone();
  const uint8_t* chroma = yuv.ptr(H);
  out.u = cv::Mat(H / 2, W / 2, CV_8UC1, const_cast<uint8_t*>(chroma)).clone();
  out.v = cv::Mat(H / 2, W / 2, CV_8UC1, const_cast<uint8_t*>(chroma + (W / 2) * (H / 2))).clone();
  return out;
}

cv::Mat convert_i420(const cv::Mat& ref, int pad, bool swap_uv = false) {
  const Yuv420 p = make_i420(ref);
  const Plane y = padded(p.y, pad), u = padded(swap_uv ? p.v : p.u, pad / 2 + 1),
              v = padded(swap_uv ? p.u : p.v, pad / 2 + 3);
  RawFrame f;
  f.format = PixelFormat::I420;
  f.width = ref.cols;
  f.height = ref.rows;
  f.planes[0] = y.bytes.data();
  f.planes[1] = u.bytes.data();
  f.planes[2] = v.bytes.data();
  f.strides[0] = y.stride;
  f.strides[1] = u.stride;
  f.strides[2] = v.stride;
  return to_bgr(f);
}

cv::Mat convert_nv12(const cv::Mat& ref, int pad) {
  const Yuv420 p = make_i420(ref);
  cv::Mat uv;
  cv::merge(std::vector<cv::Mat>{p.u, p.v}, uv);  // interleaved U,V pairs
  const Plane y = padded(p.y, pad), c = padded(uv, pad + 2);
  RawFrame f;
  f.format = PixelFormat::NV12;
  f.width = ref.cols;
  f.height = ref.rows;
  f.planes[0] = y.bytes.data();
  f.planes[1] = c.bytes.data();
  f.strides[0] = y.stride;
  f.strides[1] = c.stride;
  return to_bgr(f);
}

TEST(PixelConvert, I420WithPaddedStrides) {
  const cv::Mat ref = reference_bgr();
  const cv::Mat out = convert_i420(ref, 16);
  ASSERT_EQ(out.type(), CV_8UC3);
  ASSERT_EQ(out.size(), ref.size());
  EXPECT_LT(mean_abs_diff(out, ref), 3.0);
}

TEST(PixelConvert, I420ToleranceCatchesSwappedChroma) {
  // The tolerance above is tight enough to notice U and V read the wrong way round.
  const cv::Mat ref = reference_bgr();
  EXPECT_GT(mean_abs_diff(convert_i420(ref, 16, true), ref), 10.0);
}

TEST(PixelConvert, I420OddSize) {
  const cv::Mat ref = reference_bgr(321, 241);
  const cv::Mat out = convert_i420(ref, 3);
  ASSERT_EQ(out.size(), cv::Size(321, 241));
  EXPECT_LT(mean_abs_diff(out, ref), 3.0);
  // The last column and row come from real data, not padding.
  EXPECT_LT(mean_abs_diff(out.col(320), ref.col(320)), 6.0);
  EXPECT_LT(mean_abs_diff(out.row(240), ref.row(240)), 6.0);
}

TEST(PixelConvert, Nv12WithPaddedStrides) {
  const cv::Mat ref = reference_bgr();
  const cv::Mat out = convert_nv12(ref, 32);
  ASSERT_EQ(out.type(), CV_8UC3);
  ASSERT_EQ(out.size(), ref.size());
  EXPECT_LT(mean_abs_diff(out, ref), 3.0);
}

TEST(PixelConvert, Nv12OddSize) {
  const cv::Mat ref = reference_bgr(199, 151);
  const cv::Mat out = convert_nv12(ref, 1);
  ASSERT_EQ(out.size(), cv::Size(199, 151));
  EXPECT_LT(mean_abs_diff(out, ref), 3.0);
}

TEST(PixelConvert, TightStrideZeroMeansPacked) {
  const cv::Mat ref = reference_bgr(64, 48);
  cv::Mat rgb;
  cv::cvtColor(ref, rgb, cv::COLOR_BGR2RGB);  // continuous
  RawFrame f;
  f.format = PixelFormat::RGB;
  f.width = 64;
  f.height = 48;
  f.planes[0] = rgb.data;
  EXPECT_EQ(max_abs_diff(to_bgr(f), ref), 0);
}

TEST(PixelConvert, FormatNames) {
  const std::pair<const char*, PixelFormat> names[] = {
      {"BGR", PixelFormat::BGR},   {"BGRx", PixelFormat::BGRx}, {"BGRA", PixelFormat::BGRA},
      {"RGB", PixelFormat::RGB},   {"RGBx", PixelFormat::RGBx}, {"RGBA", PixelFormat::RGBA},
      {"I420", PixelFormat::I420}, {"NV12", PixelFormat::NV12}};
  for (const auto& [name, fmt] : names) {
    EXPECT_EQ(pixel_format_from_string(name), fmt) << name;
    EXPECT_STREQ(to_string(fmt), name);
  }
  EXPECT_THROW(pixel_format_from_string("bgr"), std::invalid_argument);  // names are case-sensitive
  EXPECT_THROW(pixel_format_from_string("YUY2"), std::invalid_argument);
  EXPECT_THROW(pixel_format_from_string(""), std::invalid_argument);
}

TEST(PixelConvert, BadFramesThrow) {
  std::vector<uint8_t> buf(64 * 48 * 4);
  RawFrame f;
  f.format = PixelFormat::BGRx;
  f.width = 64;
  f.height = 48;
  f.planes[0] = buf.data();
  f.strides[0] = 64 * 3;  // shorter than a BGRx row
  EXPECT_THROW(to_bgr(f), std::invalid_argument);
  f.strides[0] = 64 * 4;
  EXPECT_NO_THROW(to_bgr(f));
  f.width = 0;
  EXPECT_THROW(to_bgr(f), std::invalid_argument);
  f.width = 64;
  f.format = PixelFormat::I420;
  f.strides[0] = 64;
  f.strides[1] = f.strides[2] = 32;
  f.planes[1] = buf.data();  // V plane missing
  EXPECT_THROW(to_bgr(f), std::invalid_argument);
}

}  // namespace
}  // namespace dfd
