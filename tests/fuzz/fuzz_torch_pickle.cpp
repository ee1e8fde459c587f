// libFuzzer target: the restricted pickle interpreter alone (no zip around
// it, so the fuzzer reaches opcodes faster), then each tensor view copied out
// of a zero storage of the size the pickle declares (bounded here to 1 MiB).
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "checkpoint/torch_pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    for (const auto& t : dfd::parse_state_dict_pickle(data, size)) {
      const uint64_t bytes = uint64_t(t.storage_numel) * dfd::dtype_size(t.dtype);
      if (bytes > (1u << 20)) continue;
      try {
        dfd::materialize(t, std::vector<uint8_t>(bytes, 0));
      } catch (const std::runtime_error&) {
      }
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
