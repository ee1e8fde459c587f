// Tiny, separable face-crop sets for the MesoNet training tests, made at test
// time from the public-domain portrait (tests/data/astronaut.png):
//   real: a random square view of the portrait (position, size, brightness,
//         sensor noise), 256x256;
//   fake: the same kind of view whose central face-shaped ellipse is blurred
//         and colour-shifted and pasted back with a hard seam, as a crude
//         face swap leaves it.
// The classes differ in sharpness and colour inside the ellipse, which a
// MesoNet learns in a few dozen steps.
#pragma once
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <string>
#include <vector>

namespace dfd_test {

inline cv::Mat meso_synthetic_crop(const cv::Mat& portrait, bool fake, uint64_t seed) {
  std::mt19937_64 rng(seed * 2654435761ull + (fake ? 7 : 3));
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  const int side = int(uni(180, 320));
  const int x = int(uni(0, portrait.cols - side)), y = int(uni(0, portrait.rows - side));
  cv::Mat crop;
  cv::resize(portrait(cv::Rect(x, y, side, side)), crop, cv::Size(256, 256), 0, 0, cv::INTER_AREA);
  cv::Mat f;
  crop.convertTo(f, CV_32FC3, 1.0, uni(-20, 20));
  if (fake) {
    cv::Mat patch;
    cv::GaussianBlur(f, patch, cv::Size(0, 0), uni(2.5, 4.0));
    cv::add(patch, cv::Scalar(uni(20, 40), uni(-25, -10), uni(-40, -20)), patch);
    cv::Mat mask = cv::Mat::zeros(f.size(), CV_8UC1);
    cv::ellipse(mask, cv::Point(128 + int(uni(-10, 10)), 136 + int(uni(-10, 10))), cv::Size(int(uni(70, 90)), int(uni(85, 105))),
                0, 0, 360, cv::Scalar(255), cv::FILLED);
    patch.copyTo(f, mask);
  }
  cv::Mat noise(f.size(), CV_32FC3);
  cv::randn(noise, 0, uni(1, 3));
  f += noise;
  f.convertTo(crop, CV_8UC3);
  return crop;
}

// n crops of each class, seeds from `seed`; labels 1 = real, 0 = fake.
inline void meso_synthetic_set(const cv::Mat& portrait, int n, uint64_t seed, std::vector<cv::Mat>& crops,
                               std::vector<int>& labels) {
  for (int i = 0; i < n; ++i)
    for (int fake = 0; fake < 2; ++fake) {
      crops.push_back(meso_synthetic_crop(portrait, fake != 0, seed + uint64_t(i)));
      labels.push_back(fake ? 0 : 1);
    }
}

}  // namespace dfd_test
