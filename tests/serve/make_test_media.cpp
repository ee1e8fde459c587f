// make_test_media clip OUT.avi [FRAMES] | face OUT.jpg | noface OUT.png
// Test media for the browser test (tests/serve/browser/run.sh).
#include <cstdio>
#include <string>

#include "serve_test_util.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: make_test_media clip|face|noface OUT [FRAMES]\n");
    return 2;
  }
  const std::string what = argv[1], out = argv[2];
  try {
    if (what == "clip") dfd::test::make_clip(out, argc > 3 ? std::atoi(argv[3]) : 12);
    else if (what == "face") dfd::test::make_face_jpeg(out);
    else if (what == "noface") dfd::test::make_noface_png(out);
    else throw std::runtime_error("unknown kind " + what);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_test_media: %s\n", e.what());
    return 1;
  }
  return 0;
}
