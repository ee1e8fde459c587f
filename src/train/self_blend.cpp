#include "train/self_blend.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <random>
#include <stdexcept>

namespace dfd {

SelfBlendParams draw_self_blend_params(uint64_t seed) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + 0x5B1Dull);
  auto uni = [&](float a, float b) { return std::uniform_real_distribution<float>(a, b)(rng); };
  auto coin = [&](double p) { return std::bernoulli_distribution(p)(rng); };
  SelfBlendParams p;
  // Colour (albumentations' RGBShift / HueSaturationValue / RandomBrightnessContrast ranges, roughly)
  p.hue_shift = uni(-10, 10);
  p.sat_scale = uni(0.75f, 1.25f);
  p.val_scale = uni(0.8f, 1.2f);
  p.bgr_shift = {uni(-20, 20), uni(-20, 20), uni(-20, 20)};
  p.contrast = uni(0.85f, 1.15f);
  p.brightness = uni(-15, 15);
  // Frequency: a blurred (downscaled) or sharpened source
  const float f = uni(0, 1);
  if (f < 0.4f) {
    p.frequency = 1;
    p.down = uni(0.35f, 0.7f);
  } else if (f < 0.8f) {
    p.frequency = 2;
    p.sharpen = uni(0.5f, 1.5f);
  }
  // Geometry: a slightly resized, shifted copy
  p.scale_x = uni(0.94f, 1.06f);
  p.scale_y = uni(0.94f, 1.06f);
  p.shift_x = uni(-0.03f, 0.03f);
  p.shift_y = uni(-0.03f, 0.03f);
  // Mask: a face-shaped hull with jittered outline
  p.cx = 0.5f + uni(-0.04f, 0.04f);
  p.cy = 0.54f + uni(-0.04f, 0.04f);
  p.rx = uni(0.28f, 0.4f);
  p.ry = uni(0.34f, 0.46f);
  const int n = 10 + int(rng() % 7);
  for (int i = 0; i < n; ++i) p.radial.push_back(uni(0.85f, 1.1f));
  p.morph = coin(0.5) ? int(rng() % 5) - 2 : 0;
  p.blur_sigma = uni(2.f, 7.f);
  static const float ratios[] = {0.25f, 0.5f, 0.75f, 1.f, 1.f, 1.f};
  p.blend = ratios[rng() % 6];
  return p;
}

cv::Mat self_blend_mask(const cv::Size& size, const SelfBlendParams& p) {
  const float side = float(std::min(size.width, size.height));
  const float k = side / 112.f;  // pixel quantities are for a 112 crop
  std::vector<cv::Point> pts;
  const size_t n = p.radial.empty() ? 12 : p.radial.size();
  for (size_t i = 0; i < n; ++i) {
    const double a = 2.0 * M_PI * double(i) / double(n);
    const float r = p.radial.empty() ? 1.f : p.radial[i];
    pts.emplace_back(int(std::lround(size.width * (p.cx + p.rx * r * std::cos(a)))),
                     int(std::lround(size.height * (p.cy + p.ry * r * std::sin(a)))));
  }
  std::vector<cv::Point> hull;
  cv::convexHull(pts, hull);
  cv::Mat m = cv::Mat::zeros(size, CV_8UC1);
  cv::fillConvexPoly(m, hull, cv::Scalar(255), cv::LINE_AA);
  const int morph = int(std::lround(std::abs(p.morph) * k));
  if (morph > 0) {
    auto kernel = cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(2 * morph + 1, 2 * morph + 1));
    if (p.morph > 0) cv::dilate(m, m, kernel);
    else cv::erode(m, m, kernel);
  }
  cv::Mat mf;
  m.convertTo(mf, CV_32F, 1.0 / 255.0);
  const double sigma = std::max(0.5, double(p.blur_sigma * k));
  cv::GaussianBlur(mf, mf, cv::Size(0, 0), sigma);
  // A second, smaller blur of the first keeps the inside opaque (as SBI does).
  cv::GaussianBlur(mf, mf, cv::Size(0, 0), std::max(0.5, sigma / 2));
  double mx = 0;
  cv::minMaxLoc(mf, nullptr, &mx);
  if (mx > 0) mf *= p.blend / mx;
  return mf;
}

namespace {
cv::Mat jitter_source(const cv::Mat& crop, const SelfBlendParams& p) {
  const float k = float(std::min(crop.cols, crop.rows)) / 112.f;
  cv::Mat s;
  // Colour in HSV
  cv::Mat hsv;
  cv::cvtColor(crop, hsv, cv::COLOR_BGR2HSV);
  std::vector<cv::Mat> ch;
  cv::split(hsv, ch);
  cv::Mat h;
  ch[0].convertTo(h, CV_32F);
  h += p.hue_shift;
  h.forEach<float>([](float& v, const int*) { v = std::fmod(v + 180.f, 180.f); });
  h.convertTo(ch[0], CV_8U);
  ch[1].convertTo(ch[1], CV_8U, p.sat_scale);
  ch[2].convertTo(ch[2], CV_8U, p.val_scale);
  cv::merge(ch, hsv);
  cv::cvtColor(hsv, s, cv::COLOR_HSV2BGR);
  cv::Mat f;
  s.convertTo(f, CV_32FC3, p.contrast, 128.0 * (1.0 - p.contrast) + p.brightness);
  cv::add(f, cv::Scalar(p.bgr_shift[0], p.bgr_shift[1], p.bgr_shift[2]), f);
  f.convertTo(s, CV_8UC3);  // saturates
  // Frequency
  if (p.frequency == 1 && p.down < 1.f) {
    cv::Mat small;
    cv::resize(s, small, cv::Size(), p.down, p.down, cv::INTER_AREA);
    cv::resize(small, s, s.size(), 0, 0, cv::INTER_LINEAR);
  } else if (p.frequency == 2 && p.sharpen > 0) {
    cv::Mat blur;
    cv::GaussianBlur(s, blur, cv::Size(0, 0), 1.0 * k);
    cv::addWeighted(s, 1.0 + p.sharpen, blur, -p.sharpen, 0, s);
  }
  // Geometry: scale about the centre, then shift
  const double cx = crop.cols / 2.0, cy = crop.rows / 2.0;
  cv::Mat a = (cv::Mat_<double>(2, 3) << p.scale_x, 0, cx - p.scale_x * cx + p.shift_x * crop.cols, 0, p.scale_y,
               cy - p.scale_y * cy + p.shift_y * crop.rows);
  cv::Mat out;
  cv::warpAffine(s, out, a, s.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT);
  return out;
}
}  // namespace

cv::Mat self_blend(const cv::Mat& crop, const SelfBlendParams& p, cv::Mat* mask_out) {
  if (crop.empty() || crop.type() != CV_8UC3) throw std::invalid_argument("self_blend needs a non-empty BGR CV_8UC3 image");
  const cv::Mat src = jitter_source(crop, p);
  const cv::Mat mask = self_blend_mask(crop.size(), p);
  cv::Mat out(crop.size(), CV_8UC3);
  for (int y = 0; y < crop.rows; ++y) {
    const auto* t = crop.ptr<cv::Vec3b>(y);
    const auto* s = src.ptr<cv::Vec3b>(y);
    const float* m = mask.ptr<float>(y);
    auto* o = out.ptr<cv::Vec3b>(y);
    for (int x = 0; x < crop.cols; ++x)
      for (int c = 0; c < 3; ++c) o[x][c] = cv::saturate_cast<uint8_t>(m[x] * s[x][c] + (1.f - m[x]) * t[x][c]);
  }
  if (mask_out) *mask_out = mask;
  return out;
}

}  // namespace dfd
