// libFuzzer target: a whole torch.save archive (zip + pickle + storages).
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "checkpoint/state_dict.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    dfd::read_pytorch_zip_memory(data, size);
  } catch (const std::runtime_error&) {
  }
  return 0;
}
