// safetensors: an 8-byte little-endian header length, a JSON header naming
// each tensor's dtype, shape and byte range, then the raw bytes. Nothing in
// it can execute code, which is why it is our model format.
#include <cstring>
#include <memory>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "checkpoint/checked_math.h"
#include "checkpoint/checksum.h"
#include "checkpoint/hdf5.h"
#include "checkpoint/limits.h"

#include "checkpoint/state_dict.h"

namespace dfd {

namespace {
constexpr uint64_t kMaxHeader = 100u << 20;

DType dtype_from_name(const std::string& s) {
  static const std::pair<const char*, DType> m[] = {
      {"F32", DType::F32}, {"F64", DType::F64}, {"F16", DType::F16}, {"BF16", DType::BF16},
      {"I64", DType::I64}, {"I32", DType::I32}, {"U8", DType::U8},   {"BOOL", DType::Bool}};
  for (auto& [n, d] : m)
    if (s == n) return d;
  throw std::runtime_error("safetensors: unsupported dtype " + s);
}
}  // namespace

void write_safetensors(const std::string& path, const StateDict& tensors, const ModelCard& card) {
  nlohmann::json header;
  header["__metadata__"] = {{"model_card", card.to_json()}, {"format", "deepfakedetect"}};
  uint64_t offset = 0;
  for (auto& [name, t] : tensors) {
    if (t.bytes.size() != size_t(t.numel()) * dtype_size(t.dtype))
      throw std::runtime_error("tensor " + name + ": byte size does not match its shape");
    header[name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8) h += ' ';  // align the data section
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("cannot write " + tmp);
    uint64_t n = h.size();
    uint8_t le[8];
    for (int i = 0; i < 8; ++i) le[i] = uint8_t(n >> (8 * i));
    f.write(reinterpret_cast<const char*>(le), 8);
    f.write(h.data(), std::streamsize(h.size()));
    for (auto& [name, t] : tensors) f.write(reinterpret_cast<const char*>(t.bytes.data()), std::streamsize(t.bytes.size()));
    if (!f) throw std::runtime_error("write failed: " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp + " to " + path);
}

namespace {

// One tensor's place in the data section, as the header declares it.
struct HeaderEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;  // byte offsets into the data section
};
struct Header {
  std::vector<HeaderEntry> entries;
  std::optional<ModelCard> card;
};

// Parses the JSON header, refusing keys that appear twice (the format
// forbids them; a JSON parser would silently keep the last one).
nlohmann::json parse_json_refusing_duplicates(const std::string& text) {
  std::vector<std::set<std::string>> keys_at_depth;
  auto on_event = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (ev == E::object_start) keys_at_depth.emplace_back();
    if (ev == E::object_end && !keys_at_depth.empty()) keys_at_depth.pop_back();
    if (ev == E::key && !keys_at_depth.empty() && !keys_at_depth.back().insert(parsed.get<std::string>()).second)
      throw std::runtime_error("safetensors: key '" + parsed.get<std::string>() + "' appears twice in the header");
    (void)depth;
    return true;
  };
  try {
    return nlohmann::json::parse(text, on_event);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(std::string("safetensors: header is not JSON: ") + e.what());
  }
}

Header parse_header(const std::string& text, uint64_t data_size) {
  const nlohmann::json header = parse_json_refusing_duplicates(text);
  if (!header.is_object()) throw std::runtime_error("safetensors: header is not a JSON object");
  Header out;
  try {
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        if (it->contains("model_card")) out.card = ModelCard::from_json(it->at("model_card").get<std::string>());
        continue;
      }
      HeaderEntry e{it.key(), dtype_from_name(it->at("dtype").get<std::string>()),
                    it->at("shape").get<std::vector<int64_t>>(), 0, 0};
      const int64_t numel = checked_numel(e.shape, limits::kMaxTensorRank, limits::kMaxTensorElements,
                                          "safetensors: tensor " + e.name);
      auto off = it->at("data_offsets").get<std::vector<uint64_t>>();
      if (off.size() != 2 || off[0] > off[1] || off[1] > data_size)
        throw std::runtime_error("safetensors: tensor " + e.name + " lies outside the file (truncated?)");
      if (off[1] - off[0] != uint64_t(numel) * dtype_size(e.dtype))
        throw std::runtime_error("safetensors: tensor " + e.name + " byte range does not match its shape");
      e.begin = off[0];
      e.end = off[1];
      out.entries.push_back(std::move(e));
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(std::string("safetensors: malformed header: ") + e.what());
  }
  return out;
}

uint64_t header_length(const uint8_t le[8], uint64_t file_size) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(le[i]) << (8 * i);
  if (n > kMaxHeader || n + 8 > file_size)
    throw std::runtime_error("safetensors: header length out of range (not a safetensors file, or truncated)");
  return n;
}

// Builds the checkpoint; `copy(begin, end, dst)` fetches bytes of the data
// section. With `checksum`, the weights' checksum is computed on a second
// thread as the tensors arrive (checkpoint/checksum.h) and goes on after
// this returns, while the caller builds its network.
template <class Copy>
Checkpoint assemble(const Header& h, Copy copy, bool checksum) {
  Checkpoint ck;
  ck.format = "safetensors";
  ck.card = h.card;
  for (const auto& e : h.entries) {  // every node first: the follower holds their addresses
    TensorData& t = ck.tensors[e.name];
    t.dtype = e.dtype;
    t.shape = e.shape;
  }
  ChecksumFollower* follower = nullptr;
  if (checksum) {  // owned by ck.checksum, which stops it if a read fails
    auto f = std::make_unique<ChecksumFollower>(ck.tensors);
    follower = f.get();
    ck.checksum = PendingChecksum(std::move(f));
  }
  for (const auto& e : h.entries) {
    TensorData& t = ck.tensors[e.name];
    t.bytes.resize(e.end - e.begin);
    if (e.end > e.begin) copy(e.begin, e.end, t.bytes.data(), e.name);  // an empty tensor has no buffer
    if (follower) follower->ready(e.name);
  }
  return ck;  // the checksum still under way (Checkpoint::checksum)
}

}  // namespace

Checkpoint read_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  f.seekg(0, std::ios::end);
  const uint64_t file_size = uint64_t(f.tellg());
  f.seekg(0);
  uint8_t le[8];
  if (file_size < 8 || !f.read(reinterpret_cast<char*>(le), 8)) throw std::runtime_error("safetensors: file too short");
  const uint64_t n = header_length(le, file_size);
  std::string text(n, '\0');
  if (!f.read(text.data(), std::streamsize(n))) throw std::runtime_error("safetensors: short read of the header");
  const Header h = parse_header(text, file_size - 8 - n);
  return assemble(h, [&](uint64_t begin, uint64_t end, uint8_t* dst, const std::string& name) {
    f.seekg(std::streamoff(8 + n + begin));
    if (!f.read(reinterpret_cast<char*>(dst), std::streamsize(end - begin)))
      throw std::runtime_error("safetensors: short read of " + name);
  }, /*checksum=*/true);
}

Checkpoint read_safetensors_memory(const uint8_t* data, size_t size) {
  if (size < 8) throw std::runtime_error("safetensors: file too short");
  const uint64_t n = header_length(data, size);
  const Header h = parse_header(std::string(reinterpret_cast<const char*>(data + 8), n), size - 8 - n);
  return assemble(h, [&](uint64_t begin, uint64_t end, uint8_t* dst, const std::string&) {
    std::memcpy(dst, data + 8 + n + begin, end - begin);
  }, /*checksum=*/false);
}

Checkpoint read_checkpoint(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open model file " + path);
  char magic[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  f.read(magic, 8);
  if (f.gcount() < 4) throw std::runtime_error(path + ": file too short to be a model");
  if (f.gcount() == 8 && std::memcmp(magic, kHdf5Magic, 8) == 0) {  // Keras weights (MesoNet)
    try {
      return read_keras_h5(path);
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ": " + e.what());
    }
  }
  if (std::memcmp(magic, "PK\x03\x04", 4) == 0) return read_pytorch_zip(path);
  if (magic[0] == char(0x80)) throw std::runtime_error(path + ": legacy (pre-1.6) torch.save format; re-save it with a current PyTorch");
  try {
    return read_safetensors(path);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": neither a PyTorch checkpoint nor a safetensors model (" + e.what() + ")");
  }
}

}  // namespace dfd
