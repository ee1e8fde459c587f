// Limits on what a model file may make the readers do. Model files come from
// strangers, so every size, count and depth a file declares is checked
// against these before any memory is allocated for it. The values are far
// above anything a real checkpoint of our architectures needs (stated beside
// each) and far below what would exhaust a 2-core, 24 GB machine.
#pragma once
#include <cstdint>

namespace dfd::limits {

// A state_dict's pickle: ResNeXt50+LSTM's is about 30 KB.
constexpr uint64_t kMaxPickleBytes = 8ull << 20;
// Values the pickle may create (tensor records, strings, ints, marks...):
// about 4,000 for ResNeXt50+LSTM.
constexpr uint64_t kMaxPickleValues = 1'000'000;
// Pickle stack entries and memo slots: a few thousand in a real state dict.
constexpr uint64_t kMaxPickleStack = 100'000;
constexpr uint64_t kMaxPickleMemo = 200'000;
// Containers inside containers: a state dict is 3 deep (dict, tuple, tuple).
constexpr int kMaxPickleDepth = 64;
// Dimensions of one tensor: 4 for a convolution weight.
constexpr int kMaxTensorRank = 8;
// Elements of one tensor: the largest, the LSTM's 8192x2048, has 16.8 M.
constexpr int64_t kMaxTensorElements = int64_t(1) << 26;
// Bytes of one archive entry once inflated, and of all entries read from one
// file: the whole ResNeXt50+LSTM is 230 MB.
constexpr uint64_t kMaxEntryBytes = 512ull << 20;
constexpr uint64_t kMaxArchiveBytes = 2ull << 30;
// Entries in a zip archive: torch.save writes one per storage (about 330).
constexpr uint64_t kMaxArchiveEntries = 100'000;

}  // namespace dfd::limits
