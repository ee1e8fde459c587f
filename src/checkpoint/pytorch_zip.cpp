// Reads the zip archive torch.save() writes: <prefix>/data.pkl (the pickled
// state dict, read by our restricted interpreter) and one record
// <prefix>/data/<key> per storage. No LibTorch: the archive is read with
// libzip through ZipArchive, whose reads are bounded, and every size is
// checked against what the pickle declares before it is read.
#include <map>
#include <stdexcept>

#include "checkpoint/checked_math.h"
#include "checkpoint/limits.h"
#include "checkpoint/state_dict.h"
#include "checkpoint/torch_pickle.h"
#include "checkpoint/zip_archive.h"

namespace dfd {
namespace {

// torch.save puts every record under one folder ("archive/" today, the file
// stem in older versions); the pickle is <folder>/data.pkl.
std::string record_prefix(const ZipArchive& zip) {
  for (const auto& name : zip.names()) {
    const auto slash = name.find('/');
    if (slash != std::string::npos && name.compare(slash, std::string::npos, "/data.pkl") == 0)
      return name.substr(0, slash + 1);
  }
  throw std::runtime_error("no data.pkl (a TorchScript archive, or not a torch.save state_dict?)");
}

// Reads each storage the tensors use, once, after checking that its record
// holds exactly the bytes the pickle declares and that the total stays
// within the limit.
std::map<std::string, std::vector<uint8_t>> read_storages(const ZipArchive& zip, const std::string& prefix,
                                                          const std::vector<PickledTensor>& tensors) {
  std::map<std::string, std::vector<uint8_t>> storages;
  uint64_t total = 0;
  for (const auto& t : tensors) {
    if (storages.count(t.storage_key)) continue;
    const std::string rec = prefix + "data/" + t.storage_key;
    if (!zip.has(rec)) throw std::runtime_error("storage record data/" + t.storage_key + " missing (truncated file?)");
    const auto expected = uint64_t(checked_mul(t.storage_numel, int64_t(dtype_size(t.dtype)), "storage " + t.storage_key));
    if (zip.declared_size(rec) != expected)
      throw std::runtime_error("storage record data/" + t.storage_key + " holds " +
                               std::to_string(zip.declared_size(rec)) + " bytes where the pickle declares " +
                               std::to_string(expected));
    total += expected;
    if (total > limits::kMaxArchiveBytes)
      throw std::runtime_error("storages add up to more than the limit of " + std::to_string(limits::kMaxArchiveBytes) + " bytes");
    storages[t.storage_key] = zip.read(rec, limits::kMaxEntryBytes);
  }
  return storages;
}

Checkpoint read_archive(const ZipArchive& zip) {
  const std::string prefix = record_prefix(zip);
  const auto pickle = zip.read(prefix + "data.pkl", limits::kMaxPickleBytes);
  const auto tensors = parse_state_dict_pickle(pickle.data(), pickle.size());
  const auto storages = read_storages(zip, prefix, tensors);
  Checkpoint ck;
  ck.format = "pytorch-zip";
  uint64_t total = 0;
  for (const auto& t : tensors) {
    auto data = materialize(t, storages.at(t.storage_key));
    total += data.bytes.size();
    if (total > limits::kMaxArchiveBytes)
      throw std::runtime_error("tensors add up to more than the limit of " + std::to_string(limits::kMaxArchiveBytes) + " bytes");
    ck.tensors[t.name] = std::move(data);
  }
  return ck;
}

}  // namespace

Checkpoint read_pytorch_zip(const std::string& path) {
  try {
    return read_archive(ZipArchive::open_file(path));
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

Checkpoint read_pytorch_zip_memory(const uint8_t* data, size_t size) { return read_archive(ZipArchive::open_memory(data, size)); }

}  // namespace dfd
