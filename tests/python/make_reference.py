#!/usr/bin/python3
"""Writes the reference fixtures for the C++ parity and loader tests:

  reference.pt        torch.save(state_dict) of the seeded reference module
  crops.u8            N face crops, 112x112 BGR uint8, row-major
  features.f32        the module's pooled 2048-d features of those crops
  expected.json       per-frame logits, window outputs and temporal outputs
  bad_*.pt / .bin     broken checkpoints for the loader's negative tests

Usage: make_reference.py ASTRONAUT_PNG OUT_DIR
"""
import json
import os
import sys
from collections import OrderedDict

import torch
import torchvision

from reference_module import normalise, seeded_model

SEED = 20261125


def crops_from(png):
    rgb = torchvision.io.read_image(png, torchvision.io.ImageReadMode.RGB)  # [3, H, W]
    bgr = rgb.flip(0)
    crops = []
    # The face (roughly x 150..330, y 60..260 of the 512x512 portrait) and shifted boxes.
    for (x, y, s) in [(150, 60, 190), (170, 80, 150), (120, 40, 240), (0, 0, 512), (300, 300, 112)]:
        patch = bgr[:, y:y + s, x:x + s].unsqueeze(0).float()
        patch = torch.nn.functional.interpolate(patch, size=(112, 112), mode="bilinear", align_corners=False)
        crops.append(patch.round().clamp(0, 255).to(torch.uint8)[0])
    g = torch.Generator().manual_seed(7)
    crops.append(torch.randint(0, 256, (3, 112, 112), generator=g, dtype=torch.uint8))
    return torch.stack(crops).permute(0, 2, 3, 1).contiguous()  # [N, 112, 112, 3]


def calibrate_head(model, x):
    """Recentres and rescales linear1 so that the per-frame FAKE
    probabilities of the fixture crops spread over (0, 1) instead of
    saturating: parity is then checked where softmax is sensitive."""
    with torch.no_grad():
        h = []
        for i in range(x.shape[0]):
            feats = model.avgpool(model.model(x[i:i + 1])).view(1, 1, 2048)
            out, _ = model.lstm(feats, None)
            h.append(out[0, 0])
        h = torch.stack(h)
        w = model.linear1.weight
        d = h @ (w[0] - w[1])  # FAKE - REAL logit margin, before bias
        scale = 2.0 / max(d.std().item(), 1e-6)
        w.mul_(scale)
        model.linear1.bias.copy_(torch.tensor([-(d.mean().item() * scale) / 2, (d.mean().item() * scale) / 2]))


def main():
    png, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    model = seeded_model(SEED)
    crops = crops_from(png)
    x = normalise(crops)  # [N, 3, 112, 112]
    n = x.shape[0]
    calibrate_head(model, x)
    exp = {"seed": SEED, "n": n}
    with torch.no_grad():
        fmap = model.model(x)
        feats = model.avgpool(fmap).flatten(1)  # [N, 2048]
        per_frame = []
        for i in range(n):
            _, logits = model(x[i:i + 1].unsqueeze(0))  # a one-frame window
            per_frame.append(logits[0].tolist())
        exp["per_frame_logits"] = per_frame
        exp["per_frame_prob_fake"] = [torch.softmax(torch.tensor(l), 0)[0].item() for l in per_frame]
        # A multi-frame window through the module as published: [1, T, 3, 112, 112].
        _, wl = model(x[:4].unsqueeze(0))
        exp["window_0_3_logits"] = wl[0].tolist()
        _, wl = model(x.unsqueeze(0))
        exp["window_all_logits"] = wl[0].tolist()
        # Temporal head: nn.LSTM run time-major over the window, head on the last output.
        lstm = model.lstm
        out_t, _ = lstm(feats[:4].unsqueeze(1))  # [T, batch=1, 2048]
        exp["temporal_0_3_logits"] = model.linear1(out_t[-1, 0]).tolist()
        out_t, _ = lstm(feats.unsqueeze(1))
        exp["temporal_all_logits"] = model.linear1(out_t[-1, 0]).tolist()
        # Class activation map of crop 0 for FAKE, 4x4 before resizing, min-max scaled.
        cam = torch.einsum("c,chw->hw", model.linear1.weight[0], fmap[0])
        cam = cam - cam.min()
        exp["cam_0_fake_4x4"] = (cam / cam.max()).flatten().tolist()
    crops.numpy().tofile(os.path.join(out, "crops.u8"))
    feats.numpy().astype("float32").tofile(os.path.join(out, "features.f32"))
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(exp, f)

    sd = model.state_dict()
    torch.save(sd, os.path.join(out, "reference.pt"))
    bad = OrderedDict(sd)
    del bad["lstm.weight_hh_l0"]
    torch.save(bad, os.path.join(out, "bad_missing_key.pt"))
    bad = OrderedDict(sd)
    bad["linear1.weight"] = torch.zeros(3, 2048)
    torch.save(bad, os.path.join(out, "bad_wrong_shape.pt"))
    bad = OrderedDict(sd)
    bad["lstm.bias_ih_l0"] = torch.zeros(8192)
    torch.save(bad, os.path.join(out, "bad_extra_key.pt"))
    torch.save({"note": "a pickled object, not tensors", "fn": os.getcwd}, os.path.join(out, "bad_pickled_object.pt"))
    blob = open(os.path.join(out, "reference.pt"), "rb").read()
    open(os.path.join(out, "bad_truncated.pt"), "wb").write(blob[: len(blob) // 2])
    g = torch.Generator().manual_seed(3)
    open(os.path.join(out, "bad_random.bin"), "wb").write(bytes(torch.randint(0, 256, (4096,), generator=g, dtype=torch.uint8).tolist()))


if __name__ == "__main__":
    main()
