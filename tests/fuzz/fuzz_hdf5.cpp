// libFuzzer target: a Keras HDF5 weight file (MesoNet), read from memory
// through HDF5's core driver (checkpoint/hdf5.h).
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "checkpoint/hdf5.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    dfd::read_keras_h5_memory(data, size);
  } catch (const std::runtime_error&) {
  }
  return 0;
}
