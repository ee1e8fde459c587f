// Runs a libFuzzer target's entry point over files and folders given on the
// command line, without libFuzzer: the seed corpus and every crash ever found
// (tests/fuzz/regressions/) are replayed by the ordinary test suite, and
// under AddressSanitizer by `scripts/test --sanitize`.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  int runs = 0;
  auto run = [&](const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(f), {}};
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    ++runs;
  };
  for (int i = 1; i < argc; ++i) {
    if (!fs::exists(argv[i])) continue;
    if (fs::is_directory(argv[i])) {
      for (auto& e : fs::recursive_directory_iterator(argv[i]))
        if (e.is_regular_file()) run(e.path());
    } else {
      run(argv[i]);
    }
  }
  std::printf("%d inputs replayed without a crash\n", runs);
  return runs > 0 ? 0 : 1;
}
