// Where the MesoNet tests find their files: the shipped weights, the PyTorch
// rebuild's fixtures (written by the build) and the sample faces, each from
// the environment meson sets (tests/unit/meson.build), else relative to the
// source root.
#pragma once
#include <cstdlib>
#include <string>

namespace mesonet_test {

inline std::string env(const char* k, const char* def) {
  const char* v = std::getenv(k);
  return v ? v : def;
}
inline std::string model_path(const std::string& f) { return env("DFD_MESONET_MODELS", "models/mesonet") + "/" + f; }
inline std::string fixture(const std::string& f) { return env("DFD_MESONET_REFERENCE", "tests/python") + "/" + f; }
inline std::string face(const std::string& f) { return env("DFD_TEST_DATA", "tests/data") + "/mesonet-faces/" + f; }

}  // namespace mesonet_test
