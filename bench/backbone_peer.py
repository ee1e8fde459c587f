#!/usr/bin/python3
"""The strongest PyTorch configuration of the ResNeXt50 backbone, for
bench/h264_e2e.sh to set beside `deepfake-bench stages`: eager, and
torch.jit.trace + torch.jit.freeze + torch.jit.optimize_for_inference
(oneDNN fusion of conv/BN/ReLU), fp32, no_grad, the machine's threads,
112x112 crops, batch 1 and 8. Backbone + average pool, as ours.

Prints one JSON object: ms per crop per configuration and batch.

Usage: backbone_peer.py CHECKPOINT.pt [--repeats 5] [--threads N] [--save-traced PATH]

--save-traced also writes the traced (not yet frozen) backbone, which
deepfake-bench-backbone freezes and optimises with LibTorch's own passes and
times beside ours in one process.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
from reference_module import ReferenceModel  # noqa: E402


class Backbone(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.model, self.avgpool = m.model, m.avgpool

    def forward(self, x):
        return self.avgpool(self.model(x)).flatten(1)


def ms_per_crop(net, batch, repeats):
    x = torch.rand(batch, 3, 112, 112)
    with torch.no_grad():
        for _ in range(2):  # warm-up: oneDNN primitives, JIT profiling runs
            net(x)
        t0 = time.perf_counter()
        for _ in range(repeats):
            net(x)
    return 1000 * (time.perf_counter() - t0) / (repeats * batch)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--save-traced")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    m = ReferenceModel()
    m.load_state_dict(torch.load(a.checkpoint))
    eager = Backbone(m).eval()
    with torch.no_grad():
        traced = torch.jit.trace(eager, torch.rand(8, 3, 112, 112))
        if a.save_traced:
            traced.save(a.save_traced)
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
    out = {"threads": a.threads, "torch": torch.__version__}
    for name, net in (("eager", eager), ("frozen", frozen)):
        for b in (1, 8):
            out[f"{name}_ms_per_crop_batch{b}"] = ms_per_crop(net, b, a.repeats)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
