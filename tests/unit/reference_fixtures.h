// Access to the fixtures tests/python/make_reference.py writes at build time.
#pragma once
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace dfd::test {

inline std::string reference_dir() {
  const char* d = std::getenv("DFD_REFERENCE_DIR");
  return d ? d : "tests/python";
}
inline std::string ref_path(const std::string& name) { return reference_dir() + "/" + name; }

inline nlohmann::json expected() {
  std::ifstream f(ref_path("expected.json"));
  return nlohmann::json::parse(f);
}

// The N 112x112 BGR crops the PyTorch module saw.
inline std::vector<cv::Mat> crops() {
  std::ifstream f(ref_path("crops.u8"), std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), {});
  const size_t one = 112 * 112 * 3;
  std::vector<cv::Mat> out;
  for (size_t off = 0; off + one <= bytes.size(); off += one) {
    cv::Mat m(112, 112, CV_8UC3);
    std::memcpy(m.data, bytes.data() + off, one);
    out.push_back(m);
  }
  return out;
}

inline std::vector<std::vector<float>> features() {
  std::ifstream f(ref_path("features.f32"), std::ios::binary);
  std::vector<std::vector<float>> out;
  std::vector<float> v(2048);
  while (f.read(reinterpret_cast<char*>(v.data()), sizeof(float) * 2048)) out.push_back(v);
  return out;
}

}  // namespace dfd::test
