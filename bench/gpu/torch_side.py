"""The same network in PyTorch on the same device, for the side-by-side in
scripts/gpu-bench: the published module (tests/python/reference_module.py,
written from shared/reference-model.md) per crop, as Model::classify_crops
does it: backbone, average pool, one zero-state LSTM step per crop (the
reference head), linear, softmax. One timed call: pinned host batch ->
upload -> forward -> probabilities back on the host, as the C++ side.

Configurations: eager fp32 (as published), eager fp32 channels-last, eager
bf16/fp16 autocast channels-last, and torch.compile of the best eager one per
precision. torch.compile compiles once per batch size, which takes long, so
it runs within --compile-budget seconds, most useful batches first, and says
which it skipped.

Prints a table; with --json, one JSON object per line. Figures only.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "python"))
from reference_module import seeded_model  # noqa: E402


class PerCrop(torch.nn.Module):
    """Per-crop reference semantics over the published module's parts."""

    def __init__(self, m, channels_last=False):
        super().__init__()
        self.m = m
        self.channels_last = channels_last

    def forward(self, x):
        if self.channels_last:  # the input too, as the C++ side lays it out on the device
            x = x.contiguous(memory_format=torch.channels_last)
        f = self.m.avgpool(self.m.model(x)).flatten(1)  # [N, 2048]
        with torch.autocast(x.device.type, enabled=False):  # the head in fp32, as the C++ side
            h, _ = self.m.lstm(f.unsqueeze(0).float())  # time 1, LSTM batch N: zero-state step per crop
            return torch.softmax(self.m.linear1(h[0]), 1)[:, 0]  # P(FAKE), class 0


def timed(fn, host, device, seconds, min_iters):
    def once():
        x = host.to(device, non_blocking=True)
        return fn(x).cpu()  # ends synchronised, as the C++ side

    for _ in range(3):
        once()
    ms = []
    start = time.perf_counter()
    while len(ms) < min_iters or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        once()
        ms.append((time.perf_counter() - t0) * 1000.0)
    return sum(ms) / len(ms), min(ms), len(ms)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batches", default="1,8,32,128,512")
    ap.add_argument("--precisions", default="fp32,bf16,fp16")
    ap.add_argument("--seconds", type=float, default=0.5)
    ap.add_argument("--min-iters", type=int, default=5)
    ap.add_argument("--compile-budget", type=float, default=90.0,
                    help="seconds for torch.compile runs in all (0: none)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()
    device = torch.device(a.device)
    batches = [int(b) for b in a.batches.split(",") if b]
    precisions = [p for p in a.precisions.split(",") if p]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the C++ side
    out = open(a.json, "w") if a.json else None
    model = PerCrop(seeded_model(a.seed)).to(device).eval()
    cl = PerCrop(seeded_model(a.seed), channels_last=True).to(device).eval().to(memory_format=torch.channels_last)
    dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    pin = device.type == "cuda"

    def report(config, prec, bs, t):
        ms, mn, it = t
        cps = 1000.0 * bs / ms
        print(f"{'torch':6s} {str(device):8s} {prec:6s} {bs:6d} {ms:10.3f} {mn:10.3f} {cps:10.1f} {it:6d}  {config}", flush=True)
        if out:
            out.write(json.dumps({"impl": "pytorch", "config": config, "device": str(device), "precision": prec,
                                  "batch": bs, "ms_per_batch": round(ms, 4), "ms_min": round(mn, 4),
                                  "crops_per_s": round(cps, 2), "iters": it}) + "\n")
            out.flush()

    def runner(module, prec):
        dt = dtypes[prec]
        if dt is None:
            return module
        if device.type == "cpu" and dt == torch.float16:
            raise RuntimeError("fp16 autocast is for CUDA")

        def f(x):
            with torch.autocast(device.type, dtype=dt):
                return module(x)
        return f

    def host_batch(bs):
        g = torch.Generator().manual_seed(a.seed + 2)
        x = torch.randn(bs, 3, 112, 112, generator=g)
        return x.pin_memory() if pin else x

    print(f"# PyTorch {torch.__version__} on {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    print(f"{'impl':6s} {'device':8s} {'prec':6s} {'batch':>6s} {'ms/batch':>10s} {'min ms':>10s} {'crops/s':>10s} {'iters':>6s}  config")
    best = {}
    with torch.inference_mode():
        for prec in precisions:
            for name, module in (("eager", model), ("eager channels_last", cl)):
                if prec != "fp32" and name == "eager":
                    continue  # reduced precision: channels-last only (tensor cores want NHWC)
                try:
                    fn = runner(module, prec)
                except RuntimeError as e:
                    print(f"torch  {prec} {name} skipped: {e}")
                    continue
                for bs in batches:
                    t = timed(fn, host_batch(bs), device, a.seconds, a.min_iters)
                    report(f"torch {name} {prec}", prec, bs, t)
                    if bs == max(batches) and (prec not in best or t[0] < best[prec][1]):
                        best[prec] = (module, t[0])

    if a.compile_budget <= 0 or not hasattr(torch, "compile"):
        print("# torch.compile: not run (" + ("--compile-budget 0" if a.compile_budget <= 0 else "this torch has none") + ")")
        return
    # Most telling batches first; each new batch size compiles anew.
    order = sorted(batches, key=lambda b: (b != 128, b != 512, b != 32, b))
    deadline = time.perf_counter() + a.compile_budget
    for prec in [p for p in ("bf16", "fp16", "fp32") if p in precisions and p in best]:
        compiled = torch.compile(runner(best[prec][0], prec))
        for bs in order:
            if time.perf_counter() > deadline:
                print(f"# torch.compile {prec} batch {bs}: skipped (compile budget {a.compile_budget:.0f} s spent)")
                continue
            t0 = time.perf_counter()
            with torch.inference_mode():
                t = timed(compiled, host_batch(bs), device, a.seconds, a.min_iters)
            report(f"torch compile {prec} (compiled in {time.perf_counter() - t0:.0f} s)", prec, bs, t)


if __name__ == "__main__":
    main()
