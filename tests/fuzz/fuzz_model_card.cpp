// libFuzzer target: the model card JSON carried in a model file.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "model/model_card.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto card = dfd::ModelCard::from_json(std::string(reinterpret_cast<const char*>(data), size));
    dfd::ModelCard::from_json(card.to_json());  // what we write we must read back
  } catch (const std::runtime_error&) {
  }
  return 0;
}
