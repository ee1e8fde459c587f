// Reads the zip archive torch.save() writes, with PyTorch's own zip reader
// (it handles the archive-name prefix and the 64-byte aligned records);
// the pickle inside is parsed by our restricted reader (torch_pickle.cpp).
#include <caffe2/serialize/inline_container.h>

#include <stdexcept>

#include "checkpoint/state_dict.h"

namespace dfd {

Checkpoint read_pytorch_zip(const std::string& path) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    if (!reader.hasRecord("data.pkl"))
      throw std::runtime_error("no data.pkl (a TorchScript archive rather than a torch.save state_dict?)");
    auto read = [&](const std::string& name) {
      auto [ptr, size] = reader.getRecord(name);
      auto* b = static_cast<const uint8_t*>(ptr.get());
      return std::vector<uint8_t>(b, b + size);
    };
    std::vector<uint8_t> pickle = read("data.pkl");
    std::map<std::string, std::vector<uint8_t>> storages;
    for (const auto& key : pickle_storage_keys(pickle)) {
      if (storages.count(key)) continue;
      const std::string rec = "data/" + key;
      if (!reader.hasRecord(rec)) throw std::runtime_error("storage record " + rec + " missing (truncated file?)");
      storages[key] = read(rec);
    }
    Checkpoint ck;
    ck.format = "pytorch-zip";
    ck.tensors = parse_state_dict_pickle(pickle, storages);
    return ck;
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": unreadable PyTorch archive: " + e.what_without_backtrace());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

}  // namespace dfd
