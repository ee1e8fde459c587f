#!/usr/bin/python3
"""Fixtures for deepfake-train --init-backbone: a torchvision-layout
resnext50_32x4d state dict (random init, nothing downloaded), a crop and what
torchvision's own forward (minus fc) gives for it, and bad files.

usage: make_torchvision_backbone.py OUTDIR
Writes:
  tv_resnext50.pt       torch.save(resnext50_32x4d().state_dict()), batch norms
                        given random statistics so that a mis-mapped one shows
  tv_crop.u8            one 112x112 crop, HWC, BGR (OpenCV's order), uint8
  tv_features.f32       2048 float32: the model's pooled features of that crop,
                        fed as RGB / 255 normalised with ImageNet's mean and std
  tv_missing_key.pt     the stem and layer1.0 only (missing keys)
  tv_wrong_shape.pt     conv1.weight of a ResNet-18-like [64, 3, 3, 3]
  tv_not_torchvision.pt a state dict with other names (a plain CNN)
"""
import os
import sys

import torch
import torchvision

out = sys.argv[1]
torch.manual_seed(20240601)
m = torchvision.models.resnext50_32x4d()  # random init: weights=None, no download
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.weight.uniform_(0.5, 1.5)
            mod.bias.uniform_(-0.2, 0.2)
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 2.0)
            mod.num_batches_tracked.fill_(7)
m.eval()
sd = m.state_dict()
torch.save(sd, os.path.join(out, "tv_resnext50.pt"))

# A smooth crop with some texture, in OpenCV's BGR order.
g = torch.Generator().manual_seed(5)
low = torch.rand(1, 3, 14, 14, generator=g)
img = torch.nn.functional.interpolate(low, size=(112, 112), mode="bilinear", align_corners=False)[0]
img = (img * 200 + torch.rand(3, 112, 112, generator=g) * 55).clamp(0, 255).round().to(torch.uint8)  # CHW
bgr = img.permute(1, 2, 0).contiguous()  # HWC, channels as B, G, R
with open(os.path.join(out, "tv_crop.u8"), "wb") as f:
    f.write(bgr.numpy().tobytes())

rgb = bgr.flip(2).permute(2, 0, 1).float() / 255.0
mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
x = ((rgb - mean) / std).unsqueeze(0)
m.fc = torch.nn.Identity()
with torch.no_grad():
    feats = m(x)[0].contiguous()
assert feats.shape == (2048,)
with open(os.path.join(out, "tv_features.f32"), "wb") as f:
    f.write(feats.numpy().astype("<f4").tobytes())

small = {k: v for k, v in sd.items() if k.startswith(("conv1.", "bn1.", "layer1.0."))}
torch.save(small, os.path.join(out, "tv_missing_key.pt"))
wrong = dict(small)
wrong["conv1.weight"] = torch.zeros(64, 3, 3, 3)
torch.save(wrong, os.path.join(out, "tv_wrong_shape.pt"))
plain = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3))
torch.save(plain.state_dict(), os.path.join(out, "tv_not_torchvision.pt"))
