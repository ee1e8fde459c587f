// make-synthetic-dataset DIR PORTRAIT [N_REAL N_FAKE SEED FRAMES ARTEFACT]
// Writes the synthetic real/fake clips the training tests use (synthetic.h),
// for trying deepfake-train by hand. Also: --frame OUT.png FAKE(0|1) SEED T.
#include <iostream>
#include <string>

#include "synthetic.h"

int main(int argc, char** argv) {
  if (argc >= 7 && std::string(argv[1]) == "--frame") {
    cv::Mat p = cv::imread(argv[3]);
    dfd_test::ClipSpec c;
    c.fake = std::stoi(argv[4]) != 0;
    c.seed = std::stoull(argv[5]);
    return cv::imwrite(argv[2], dfd_test::synth_frame(p, c, std::stoi(argv[6]))) ? 0 : 1;
  }
  if (argc < 3) {
    std::cerr << "usage: make-synthetic-dataset DIR PORTRAIT [N_REAL N_FAKE SEED FRAMES ARTEFACT]\n";
    return 1;
  }
  cv::Mat p = cv::imread(argv[2]);
  if (p.empty()) {
    std::cerr << "cannot read " << argv[2] << "\n";
    return 1;
  }
  const int nr = argc > 3 ? std::stoi(argv[3]) : 6, nf = argc > 4 ? std::stoi(argv[4]) : 6;
  const uint64_t seed = argc > 5 ? std::stoull(argv[5]) : 1;
  const int frames = argc > 6 ? std::stoi(argv[6]) : 16;
  const double art = argc > 7 ? std::stod(argv[7]) : 1.0;
  if (!dfd_test::make_dataset(argv[1], p, nr, nf, seed, frames, art)) {
    std::cerr << "cannot write clips (no MJPG writer?)\n";
    return 1;
  }
  std::cout << "wrote " << nr << " real and " << nf << " fake clips of " << frames << " frames to " << argv[1] << "\n";
  return 0;
}
