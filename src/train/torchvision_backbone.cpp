#include "train/torchvision_backbone.h"

#include <sstream>
#include <stdexcept>
#include <vector>

#include "model/architecture.h"

namespace dfd::train {

namespace {

// torchvision name -> ours; empty when the key has no place in the backbone.
std::string our_name(const std::string& k) {
  if (k.rfind("conv1.", 0) == 0) return "model.0." + k.substr(6);
  if (k.rfind("bn1.", 0) == 0) return "model.1." + k.substr(4);
  if (k.size() > 7 && k.rfind("layer", 0) == 0 && k[5] >= '1' && k[5] <= '4' && k[6] == '.')
    return "model." + std::to_string(k[5] - '1' + 4) + "." + k.substr(7);
  return "";
}

bool is_backbone(const std::string& ours) {
  return ours.rfind("model.", 0) == 0;
}

}  // namespace

StateDict backbone_from_torchvision(const StateDict& tv) {
  if (!tv.count("conv1.weight") || !tv.count("layer1.0.conv1.weight"))
    throw std::runtime_error(
        "not a torchvision resnext50_32x4d state dict (no 'conv1.weight' and 'layer1.0.conv1.weight'; "
        "expected torch.save(torchvision.models.resnext50_32x4d(...).state_dict()))");
  const auto& ref = reference_shapes();
  StateDict out;
  for (const auto& [k, t] : tv) {
    if (k.rfind("fc.", 0) == 0) continue;  // the ImageNet classifier: not part of the backbone
    const std::string o = our_name(k);
    if (o.empty() || !ref.count(o))
      throw std::runtime_error("unexpected key '" + k + "' for a torchvision resnext50_32x4d state dict");
    const auto& shape = ref.at(o);
    if (t.shape != shape)
      throw std::runtime_error("shape mismatch for '" + k + "': expected " + shape_str(shape) + " (resnext50_32x4d), got " +
                               shape_str(t.shape));
    const bool counter = shape.empty();
    const bool ok = counter ? t.dtype == DType::I64
                            : (t.dtype == DType::F32 || t.dtype == DType::F64 || t.dtype == DType::F16 || t.dtype == DType::BF16);
    if (!ok) throw std::runtime_error(std::string("dtype ") + dtype_name(t.dtype) + " for '" + k + "'");
    out[o] = t;
  }
  // Every backbone tensor must be there; a missing batch-norm counter is
  // harmless (older torchvision files have none) and starts at 0.
  for (const auto& [o, shape] : ref) {
    if (!is_backbone(o) || out.count(o)) continue;
    if (shape.empty()) {
      TensorData z;
      z.dtype = DType::I64;
      z.bytes.assign(8, 0);
      out[o] = z;
      continue;
    }
    std::string tvk = o;  // back to torchvision's name, for the message
    const size_t dot = o.find('.', 6);
    const int idx = std::stoi(o.substr(6, dot - 6));
    const std::string rest = o.substr(dot + 1);
    tvk = idx == 0 ? "conv1." + rest : idx == 1 ? "bn1." + rest : "layer" + std::to_string(idx - 3) + "." + rest;
    throw std::runtime_error("missing key '" + tvk + "' in the torchvision resnext50_32x4d state dict");
  }
  return out;
}

void load_torchvision_backbone(StateDict& sd, const std::string& path) {
  StateDict tv;
  try {
    Checkpoint ck = read_checkpoint(path);
    if (ck.card) throw std::runtime_error("a model of ours (" + ck.card->architecture + "), not a torchvision state dict");
    tv = std::move(ck.tensors);
    for (auto& [k, t] : backbone_from_torchvision(tv)) sd[k] = std::move(t);
  } catch (const std::exception& e) {
    throw std::runtime_error("--init-backbone '" + path + "': " + e.what());
  }
}

}  // namespace dfd::train
