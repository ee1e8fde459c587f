#include "clip_maker.h"

#include <cmath>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <stdexcept>

namespace dfd::bench {

namespace {
struct Layout {
  int cols, rows, cell_w, cell_h, side;
  explicit Layout(const ClipSpec& s)
      : cols(s.faces > 1 ? 2 : 1), rows((s.faces + cols - 1) / cols), cell_w(s.width / cols),
        cell_h(s.height / rows), side(int(std::min(cell_w, cell_h) * 0.8)) {}
};
}  // namespace

std::vector<cv::Rect> portrait_boxes(const ClipSpec& s, int i) {
  const Layout l(s);
  std::vector<cv::Rect> out;
  for (int f = 0; f < s.faces; ++f) {
    const int cx = (f % l.cols) * l.cell_w, cy = (f / l.cols) * l.cell_h;
    // Slow sinusoidal drift: the tracker must follow, the detector re-find.
    const int dx = int((l.cell_w - l.side) / 2 + std::sin(i * 0.05 + f) * (l.cell_w - l.side) / 2.5);
    const int dy = int((l.cell_h - l.side) / 2 + std::cos(i * 0.04 + f) * (l.cell_h - l.side) / 3.0);
    out.emplace_back(cx + dx, cy + dy, l.side, l.side);
  }
  return out;
}

int make_clip(const std::string& portrait_png, const std::string& path, const ClipSpec& s) {
  cv::Mat portrait = cv::imread(portrait_png, cv::IMREAD_COLOR);
  if (portrait.empty()) throw std::runtime_error("cannot read " + portrait_png);
  if (s.fourcc.size() != 4) throw std::invalid_argument("fourcc must have 4 characters");
  cv::VideoWriter w(path, cv::VideoWriter::fourcc(s.fourcc[0], s.fourcc[1], s.fourcc[2], s.fourcc[3]), s.fps,
                    cv::Size(s.width, s.height));
  if (!w.isOpened()) throw std::runtime_error("cannot write " + path);
  // Faces laid out on a grid of cells; each portrait fills 80% of a cell's height.
  const Layout l(s);
  cv::Mat face;
  cv::resize(portrait, face, cv::Size(l.side, l.side), 0, 0, cv::INTER_AREA);
  cv::Mat background(s.height, s.width, CV_8UC3);
  cv::randu(background, cv::Scalar::all(40), cv::Scalar::all(90));
  cv::GaussianBlur(background, background, cv::Size(0, 0), 3);
  cv::Mat frame;
  for (int i = 0; i < s.frames; ++i) {
    background.copyTo(frame);
    for (const auto& r : portrait_boxes(s, i)) face.copyTo(frame(r));
    w.write(frame);
  }
  return s.frames;
}

}  // namespace dfd::bench
