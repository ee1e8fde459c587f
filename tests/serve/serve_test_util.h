// Test media for the service tests, made at test time from tests/data/.
#pragma once
#include <cstdlib>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <stdexcept>
#include <string>

namespace dfd::test {

inline std::string env_or(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

inline std::string data_dir() { return env_or("DFD_TEST_DATA_DIR", "tests/data"); }

inline cv::Mat astronaut(int side) {
  cv::Mat img = cv::imread(data_dir() + "/astronaut.png", cv::IMREAD_COLOR);
  if (img.empty()) throw std::runtime_error("cannot read " + data_dir() + "/astronaut.png");
  if (side > 0 && side != img.cols) cv::resize(img, img, cv::Size(side, side), 0, 0, cv::INTER_AREA);
  return img;
}

// An MJPG AVI of the portrait drifting a pixel per frame, 25 fps.
inline void make_clip(const std::string& path, int frames = 12, int side = 256) {
  const cv::Mat base = astronaut(side);
  cv::VideoWriter w(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 25.0, base.size());
  if (!w.isOpened()) throw std::runtime_error("cannot write " + path);
  for (int i = 0; i < frames; ++i) {
    cv::Mat m = (cv::Mat_<double>(2, 3) << 1, 0, i % 4, 0, 1, 0);
    cv::Mat f;
    cv::warpAffine(base, f, m, base.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT);
    w.write(f);
  }
  w.release();
}

// A picture without a face: a smooth colour gradient.
inline void make_noface_png(const std::string& path) {
  cv::Mat img(180, 320, CV_8UC3);
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) img.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(x * 255 / 320), 120, uchar(y));
  if (!cv::imwrite(path, img)) throw std::runtime_error("cannot write " + path);
}

inline void make_face_jpeg(const std::string& path, int side = 320) {
  if (!cv::imwrite(path, astronaut(side))) throw std::runtime_error("cannot write " + path);
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace dfd::test
