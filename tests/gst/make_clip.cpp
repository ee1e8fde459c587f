// Writes a test clip made from tests/data/astronaut.png (see clip.h):
//   make_clip OUT.avi [--frames N] [--width W] [--height H] [--copies K] [--side S] [--no-face]
//   make_clip OUT.png ...   (one frame, a still image)
// AVI files are Motion-JPEG (OpenCV's built-in writer): GStreamer decodes them
// with avidemux ! jpegdec, uridecodebin and decodebin.
#include <cstdio>
#include <cstring>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <string>

#include "clip.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: make_clip OUT.avi|OUT.png [--frames N] [--width W] [--height H] [--copies K] [--side S] [--no-face]\n");
    return 2;
  }
  const std::string out = argv[1];
  dfd_test::ClipSpec spec;
  int frames = 30;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (a == "--frames") frames = next();
    else if (a == "--width") spec.size.width = next();
    else if (a == "--height") spec.size.height = next();
    else if (a == "--copies") spec.copies = next();
    else if (a == "--side") spec.side = next();
    else if (a == "--no-face") spec.faces = false;
    else {
      std::fprintf(stderr, "make_clip: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  try {
    if (out.size() > 4 && out.substr(out.size() - 4) == ".png") {
      if (!cv::imwrite(out, dfd_test::clip_frame(spec, 0))) throw std::runtime_error("cannot write " + out);
      return 0;
    }
    cv::VideoWriter w(out, cv::CAP_OPENCV_MJPEG, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 25.0, spec.size);
    if (!w.isOpened()) throw std::runtime_error("cannot open " + out + " for writing");
    for (int i = 0; i < frames; ++i) w.write(dfd_test::clip_frame(spec, i));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_clip: %s\n", e.what());
    return 1;
  }
  return 0;
}
