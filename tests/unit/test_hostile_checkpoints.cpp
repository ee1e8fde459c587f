// Hostile model files (tests/python/make_hostile_checkpoints.py): each must
// be refused with an error that names the problem, without a crash and
// without the memory the file tries to make the reader allocate. Run under
// AddressSanitizer by `scripts/test --sanitize`.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "checkpoint/state_dict.h"
#include "checkpoint/zip_archive.h"

using namespace dfd;

namespace {
std::string hostile(const std::string& name) {
  const char* dir = std::getenv("DFD_HOSTILE_DIR");
  return std::string(dir ? dir : ".") + "/" + name;
}

std::string error_of(const std::string& path) {
  try {
    read_checkpoint(path);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(accepted)";
}

long peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

std::vector<uint8_t> bytes_of(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

struct Case {
  const char* file;
  const char* error;  // a piece of the message the user must see
};

class Hostile : public ::testing::TestWithParam<Case> {};
}  // namespace

TEST_P(Hostile, IsRefusedWithAClearError) {
  const Case c = GetParam();
  const std::string err = error_of(hostile(c.file));
  EXPECT_NE(err.find(c.error), std::string::npos) << c.file << ": " << err;
  EXPECT_NE(err.find(c.file), std::string::npos) << "the message names the file: " << err;
}

TEST_P(Hostile, IsRefusedFromMemoryToo) {
  const Case c = GetParam();
  const auto bytes = bytes_of(hostile(c.file));
  ASSERT_FALSE(bytes.empty());
  const bool zip = bytes[0] == 'P';
  try {
    if (zip) read_pytorch_zip_memory(bytes.data(), bytes.size());
    else read_safetensors_memory(bytes.data(), bytes.size());
    ADD_FAILURE() << c.file << " accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(c.error), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Checkpoints, Hostile,
    ::testing::Values(
        Case{"wild_stride.pt", "overflows 64 bits"},
        Case{"past_end.pt", "reaches past the end of storage"},
        Case{"wild_stride_wrap.pt", "overflows 64 bits"},
        Case{"wild_negative_stride.pt", "negative stride"},
        Case{"wild_offset.pt", "overflows 64 bits"},
        Case{"wild_numel.pt", "elements"},
        Case{"wild_expand.pt", "more elements than its storage"},
        Case{"wild_storage_numel.pt", "declares 1099511627776 elements"},
        Case{"storage_mismatch.pt", "holds 8 bytes where the pickle declares 16"},
        Case{"duplicate_key.pt", "appears twice"},
        Case{"deep_lists.pt", "stack deeper than 100000"},
        Case{"nested_lists.pt", "nested deeper than 64"},
        Case{"deep_tuples.pt", "nested deeper than 64"},
        Case{"self_list.pt", "nested deeper than 64"},
        Case{"many_marks.pt", "stack deeper than 100000"},
        Case{"oversize_pickle.pt", "more than the limit of 8388608"},
        Case{"pickle_bomb.pt", "more than the limit of 8388608"},
        Case{"storage_bomb.pt", "holds 536870912 bytes where the pickle declares 134217728"},
        Case{"duplicate_key.safetensors", "appears twice"},
        Case{"wrapped_shape.safetensors", "overflows 64 bits"},
        Case{"deep_rank.safetensors", "100 dimensions"}),
    [](const auto& info) {
      std::string n = info.param.file;
      for (auto& ch : n)
        if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return n;
    });

// The bombs declare hundreds of MB; reading them must not allocate it.
TEST(HostileMemory, BombsAreRefusedBeforeTheyInflate) {
  const long before = peak_rss_mb();
  for (const char* f : {"pickle_bomb.pt", "oversize_pickle.pt", "many_marks.pt", "deep_tuples.pt"})
    EXPECT_NE(error_of(hostile(f)), "(accepted)") << f;
  EXPECT_LT(peak_rss_mb() - before, 200) << "peak RSS grew by " << (peak_rss_mb() - before) << " MB";
}

TEST(ZipArchive, RefusesAnEntryAboveTheCallersCap) {
  auto zip = ZipArchive::open_file(hostile("pickle_bomb.pt"));
  EXPECT_EQ(zip.declared_size("archive/data.pkl"), 256u << 20);
  try {
    zip.read("archive/data.pkl", 1 << 20);
    FAIL() << "read past the cap";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("more than the limit of 1048576"), std::string::npos) << e.what();
  }
  EXPECT_EQ(zip.read("archive/version", 16), (std::vector<uint8_t>{'3', '\n'}));
  EXPECT_THROW(zip.read("archive/missing", 16), std::runtime_error);
}

TEST(ZipArchive, RefusesBytesThatAreNotAZip) {
  const uint8_t junk[] = {'P', 'K', 3, 4, 0, 0, 0, 0};
  EXPECT_THROW(ZipArchive::open_memory(junk, sizeof junk), std::runtime_error);
}
