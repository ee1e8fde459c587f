// torchvision's ImageNet resnext50_32x4d state dict as the backbone of the
// ResNeXt50 + LSTM detector, as the original training started from it
// (`models.resnext50_32x4d(pretrained=True)`, children up to the pooling).
// No LibTorch: a renaming of keys with checks.
//
// The published module is nn.Sequential(*list(resnext.children())[:-2]) under
// `model.`, so torchvision's children map by position:
//   conv1.*  -> model.0.*      bn1.*    -> model.1.*
//   layerN.* -> model.(N+3).*  (layer1 -> model.4 ... layer4 -> model.7)
//   fc.*     dropped (the detector has its own head); avgpool has no weights.
#pragma once
#include <string>

#include "checkpoint/state_dict.h"

namespace dfd::train {

// Our backbone keys (model.0.* .. model.7.*) from a torchvision state dict.
// Throws std::runtime_error naming the problem: not a torchvision ResNeXt50
// layout (no conv1.weight / layer1..), a missing key, a wrong shape or dtype,
// an unexpected key.
StateDict backbone_from_torchvision(const StateDict& torchvision);

// `sd` (a full reference state dict) with its backbone replaced by the
// torchvision weights read from `path` (a torch.save'd state dict).
// Errors name the file.
void load_torchvision_backbone(StateDict& sd, const std::string& path);

}  // namespace dfd::train
