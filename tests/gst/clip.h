// Test video made at test time from tests/data/astronaut.png (512x512, a face
// at about x 175..275, y 70..180): copies of the portrait, scaled, on a plain
// canvas, moving a little from frame to frame.
#pragma once
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace dfd_test {

inline const cv::Mat& astronaut() {
  static const cv::Mat img = [] {
    const char* dir = std::getenv("DFD_TEST_DATA");
    cv::Mat m = cv::imread(std::string(dir ? dir : "tests/data") + "/astronaut.png", cv::IMREAD_COLOR);
    if (m.empty()) throw std::runtime_error("cannot read astronaut.png (set DFD_TEST_DATA)");
    return m;
  }();
  return img;
}

struct ClipSpec {
  cv::Size size{480, 360};
  int copies = 1;      // portraits side by side
  int side = 256;      // portrait side in pixels (the face is about 40% of it)
  int step = 2;        // horizontal motion per frame, pixels (back and forth)
  bool faces = true;   // false: a smooth gradient with no face at all
};

// Frame `i` of the clip, BGR CV_8UC3.
inline cv::Mat clip_frame(const ClipSpec& c, int i) {
  cv::Mat f(c.size, CV_8UC3);
  for (int y = 0; y < f.rows; ++y)
    f.row(y).setTo(cv::Scalar(90 + 60 * y / f.rows, 100, 120 - 40 * y / f.rows));
  if (!c.faces) return f;
  cv::Mat portrait;
  cv::resize(astronaut(), portrait, cv::Size(c.side, c.side), 0, 0, cv::INTER_AREA);
  const int swing = 16;
  const int phase = (i * c.step) % (2 * swing);
  const int dx = phase < swing ? phase : 2 * swing - phase;
  const int gap = c.copies > 1 ? std::max(0, (c.size.width - c.copies * c.side - swing) / (c.copies + 1)) : 8;
  for (int k = 0; k < c.copies; ++k) {
    const int x = gap + k * (c.side + gap) + dx;
    const int y = std::max(0, (c.size.height - c.side) / 2 - (k % 2) * 4);
    const cv::Rect r = cv::Rect(x, y, c.side, c.side) & cv::Rect(0, 0, f.cols, f.rows);
    portrait(cv::Rect(0, 0, r.width, r.height)).copyTo(f(r));
  }
  return f;
}

inline std::vector<cv::Mat> clip(const ClipSpec& c, int n) {
  std::vector<cv::Mat> v;
  for (int i = 0; i < n; ++i) v.push_back(clip_frame(c, i));
  return v;
}

}  // namespace dfd_test
