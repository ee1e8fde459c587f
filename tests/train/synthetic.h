// A small synthetic deepfake dataset made at test time from the public-domain
// astronaut portrait (tests/data/astronaut.png, face near (175, 70, 100, 110)).
//   real: the portrait seen through a slowly panning and zooming camera, with
//         per-clip lighting, noise and a slight tilt;
//   fake: the same, with a face-swap-like blending artefact: the inner face is
//         colour-shifted and blurred and pasted back through a hard-edged
//         elliptical mask, its strength flickering from frame to frame.
// Clips are MJPG .avi files (Debian's OpenCV writes them with FFmpeg).
#pragma once
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <random>
#include <string>

namespace dfd_test {

struct ClipSpec {
  bool fake = false;
  uint64_t seed = 0;
  int frames = 16;
  int size = 160;         // output frames are size x size
  double artefact = 1.0;  // strength of the fake's artefact
};

inline const cv::Rect kPortraitFace(175, 70, 100, 110);

// Frame t of a clip.
inline cv::Mat synth_frame(const cv::Mat& portrait, const ClipSpec& c, int t) {
  std::mt19937_64 rng(c.seed * 1000003ull + 17);
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  // per-clip constants
  const double x0 = uni(-18, 18), y0 = uni(-14, 14), vx = uni(-1.2, 1.2), vy = uni(-0.8, 0.8);
  const double view0 = uni(250, 290), dview = uni(-1.5, 1.5);
  const double tilt = uni(-3, 3), bright = uni(-18, 18), contrast = uni(0.88, 1.12), noise = uni(1.5, 4);
  const cv::Scalar shift(uni(-30, 30), uni(-30, 30), uni(-30, 30));  // artefact colour shift (B, G, R)
  const double blur = uni(1.5, 2.5);
  // per-frame draws
  std::mt19937_64 frng(c.seed * 7919ull + uint64_t(t) * 104729ull + 3);
  const double flicker = std::uniform_real_distribution<double>(0.55, 1.0)(frng);

  cv::Mat src = portrait.clone();
  if (c.fake) {
    const cv::Point2f centre(kPortraitFace.x + kPortraitFace.width / 2.f, kPortraitFace.y + kPortraitFace.height / 2.f + 6);
    cv::Mat patch;
    src.convertTo(patch, CV_32FC3);
    // A strong, fixed-direction shift plus the clip's own (a swapped-in face's skin tone never matches exactly).
    cv::add(patch, cv::Scalar(35, -20, -35) * c.artefact + shift * 0.5 * c.artefact, patch);
    cv::GaussianBlur(patch, patch, cv::Size(0, 0), blur * c.artefact);
    cv::Mat mask = cv::Mat::zeros(src.size(), CV_32FC1);
    cv::ellipse(mask, cv::RotatedRect(centre, cv::Size2f(80, 96), 0), cv::Scalar(1), cv::FILLED, cv::LINE_AA);
    cv::GaussianBlur(mask, mask, cv::Size(0, 0), 1.2);  // a hard seam: what a crude blend leaves
    mask *= flicker;
    cv::Mat srcf;
    src.convertTo(srcf, CV_32FC3);
    cv::Mat m3;
    cv::merge(std::vector<cv::Mat>{mask, mask, mask}, m3);
    cv::Mat inv;
    cv::subtract(cv::Scalar::all(1), m3, inv);
    cv::Mat outf = patch.mul(m3) + srcf.mul(inv);
    outf.convertTo(src, CV_8UC3);
  }
  // Camera: pan, zoom and tilt around the face.
  const double cx = kPortraitFace.x + kPortraitFace.width / 2.0 + x0 + vx * t;
  const double cy = kPortraitFace.y + kPortraitFace.height / 2.0 + 10 + y0 + vy * t;
  const double view = view0 + dview * t;
  const double s = c.size / view;
  cv::Mat a = cv::getRotationMatrix2D(cv::Point2f(float(cx), float(cy)), tilt, s);
  a.at<double>(0, 2) += c.size / 2.0 - cx;
  a.at<double>(1, 2) += c.size / 2.0 - cy;
  cv::Mat frame;
  cv::warpAffine(src, frame, a, cv::Size(c.size, c.size), cv::INTER_LINEAR, cv::BORDER_REFLECT);
  frame.convertTo(frame, CV_8UC3, contrast, bright + 128 * (1 - contrast));
  cv::Mat n(frame.size(), CV_16SC3);
  cv::randn(n, 0, noise);
  cv::Mat f16;
  frame.convertTo(f16, CV_16SC3);
  f16 += n;
  f16.convertTo(frame, CV_8UC3);
  return frame;
}

inline bool write_clip(const std::string& path, const cv::Mat& portrait, const ClipSpec& c) {
  cv::VideoWriter w(path, cv::CAP_FFMPEG, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 25.0, cv::Size(c.size, c.size));
  if (!w.isOpened()) return false;
  for (int t = 0; t < c.frames; ++t) w.write(synth_frame(portrait, c, t));
  return true;
}

// dir/real/real_XX.avi and dir/fake/fake_XX.avi, seeds from seed0 on.
inline bool make_dataset(const std::string& dir, const cv::Mat& portrait, int n_real, int n_fake, uint64_t seed0,
                         int frames, double artefact = 1.0) {
  namespace fs = std::filesystem;
  fs::create_directories(fs::path(dir) / "real");
  fs::create_directories(fs::path(dir) / "fake");
  for (int i = 0; i < n_real + n_fake; ++i) {
    ClipSpec c;
    c.fake = i >= n_real;
    c.seed = seed0 + uint64_t(i);
    c.frames = frames;
    c.artefact = artefact;
    char name[64];
    std::snprintf(name, sizeof name, "%s/%s_%02d.avi", c.fake ? "fake" : "real", c.fake ? "fake" : "real", c.fake ? i - n_real : i);
    if (!write_clip((fs::path(dir) / name).string(), portrait, c)) return false;
  }
  return true;
}

}  // namespace dfd_test
