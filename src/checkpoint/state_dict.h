// Raw named tensors as read from a checkpoint, before any model is built.
// Plain bytes, no LibTorch: readers and writers of formats live apart from
// the model so that they compile quickly and can be fuzzed on their own.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/model_card.h"

namespace dfd {

enum class DType { F32, F64, F16, BF16, I64, I32, U8, Bool };
const char* dtype_name(DType d);  // safetensors spelling: "F32", "I64", ...
size_t dtype_size(DType d);

struct TensorData {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // contiguous, row-major, little-endian
  int64_t numel() const;  // checked: throws if the shape overflows
};

// Ordered by name (std::map) so that files we write are reproducible.
using StateDict = std::map<std::string, TensorData>;

// The named tensor; a missing one is an error naming it (std::runtime_error).
const TensorData& tensor_named(const StateDict& sd, const std::string& key);

// The values as float32, whatever floating type they were stored in (weights
// are computed in float32, as LibTorch's .to(kFloat32)). Throws
// std::runtime_error for an integer tensor or one shorter than its shape.
std::vector<float> float32_values(const TensorData& t);

class ChecksumFollower;

// weights_checksum() of tensors still in use, being computed on another
// thread (checkpoint/checksum.h): the safetensors reader starts it as the
// file is read, and whoever builds a network from the tensors asks for it
// once the network is built, so that the hashing (FNV-1a is one byte at a
// time: 0.25-0.35 s for ResNeXt's 227 MB) overlaps both. It reads the
// tensors: they must not change until get() returns, and it is declared
// after them, so that it stops before they go.
class PendingChecksum {
 public:
  PendingChecksum();
  explicit PendingChecksum(std::unique_ptr<ChecksumFollower> follower);
  PendingChecksum(PendingChecksum&&) noexcept;
  PendingChecksum& operator=(PendingChecksum&&) noexcept;
  ~PendingChecksum();  // stops the work if get() was never called

  bool started() const { return follower_ != nullptr || !value_.empty(); }
  std::string get();  // waits for it; "" when none was started

 private:
  std::unique_ptr<ChecksumFollower> follower_;
  std::string value_;
};

struct Checkpoint {
  StateDict tensors;
  std::optional<ModelCard> card;  // present in our format, absent in a .pt
  std::string format;             // "safetensors" or "pytorch-zip"
  // weights_checksum(tensors), under way since the file was read
  // (safetensors files); not started otherwise. After `tensors`: see above.
  PendingChecksum checksum;
};

// Reads a checkpoint, choosing the reader by content (never by extension):
// a PyTorch zip archive written by torch.save(state_dict) or a safetensors
// file. Throws std::runtime_error naming the problem for anything else.
Checkpoint read_checkpoint(const std::string& path);

// Our format: safetensors with the model card JSON in __metadata__["model_card"].
void write_safetensors(const std::string& path, const StateDict& tensors, const ModelCard& card);
Checkpoint read_safetensors(const std::string& path);

// torch.save() zip archive. Reading executes no code: the pickle is
// interpreted by a restricted reader that knows only the few globals a
// state_dict uses (checkpoint/torch_pickle.h), and every size the archive
// declares is bounded (checkpoint/limits.h). The memory form exists for fuzzing.
Checkpoint read_pytorch_zip(const std::string& path);
Checkpoint read_pytorch_zip_memory(const uint8_t* data, size_t size);

// Safetensors held in memory (for fuzzing; files are read with read_safetensors).
Checkpoint read_safetensors_memory(const uint8_t* data, size_t size);

// 64-bit FNV-1a over names, shapes and bytes: a short checksum of the weights
// (checkpoint/checksum.h).
std::string weights_checksum(const StateDict& tensors);

}  // namespace dfd
