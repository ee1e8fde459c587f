#!/usr/bin/python3
"""The peer for bench/h264_e2e.sh: what a user would write in Python to do
what `deepfake-scan` does with its defaults (Meso4_DF + YuNet), made as fast
as it honestly goes, not a straw man.

- OpenCV decode (cv2.VideoCapture, FFmpeg), the same YuNet ONNX model through
  cv2.FaceDetectorYN on a frame scaled to at most 480 px, every
  --detect-interval frames with the last boxes reused in between (our
  default's cadence, without a tracker),
- each face cropped with the same 20 % margin, resized to 256x256, RGB/255,
- MesoNet in PyTorch built from the same .h5 (tests/python's independent
  rebuild), frozen: torch.jit.trace + torch.jit.freeze +
  torch.jit.optimize_for_inference, torch.no_grad, the machine's threads,
  all crops of a frame in one batch.

The wall time is measured by the caller around the whole process, so start-up
(imports, model build, detector load) counts as it does for deepfake-scan.
Prints one JSON object: frames, crops, seconds inside main() and split times.

Usage: baseline_mesonet.py VIDEO MODEL.h5 YUNET.onnx [--detect-interval 5] [--eager]
"""
import argparse
import json
import os
import sys
import time

T_START = time.perf_counter()

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
from make_mesonet_reference import build  # noqa: E402

MARGIN = 0.2  # the element's MesoNet crop policy (kMesoCropMargin): box + 20 % on each side
DETECT_SIDE = 480
SCORE = 0.9


def frozen(net, threads):
    torch.set_num_threads(threads)
    example = torch.zeros(1, 3, 256, 256)
    with torch.no_grad():
        traced = torch.jit.trace(net, example)
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))


def detector(path, w, h):
    scale = min(1.0, DETECT_SIDE / max(w, h))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    det = cv2.FaceDetectorYN.create(path, "", size, SCORE, 0.3, 5000)
    return det, scale, size


def crop(frame, box):
    x, y, bw, bh = (int(v) for v in box)
    dx, dy = int(bw * MARGIN), int(bh * MARGIN)  # the margin on each side, as src/faces/crop.cpp
    x0, y0 = max(0, x - dx), max(0, y - dy)
    x1, y1 = min(frame.shape[1], x + bw + dx), min(frame.shape[0], y + bh + dy)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    c = cv2.resize(frame[y0:y1, x0:x1], (256, 256), interpolation=cv2.INTER_LINEAR)
    return c[:, :, ::-1]  # RGB


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("video")
    ap.add_argument("model")
    ap.add_argument("yunet")
    ap.add_argument("--detect-interval", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--eager", action="store_true", help="no jit freeze (eager module)")
    a = ap.parse_args()
    t_setup = time.perf_counter()
    net = build(a.model)
    net = net if a.eager else frozen(net, a.threads)
    cap = cv2.VideoCapture(a.video)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    det, scale, size = detector(a.yunet, w, h)
    t = {"setup": time.perf_counter() - t_setup, "decode": 0.0, "detect": 0.0, "crop": 0.0, "model": 0.0}
    frames = crops = 0
    boxes = []
    probs = []
    t_loop = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        ok, frame = cap.read()
        t["decode"] += time.perf_counter() - t0
        if not ok:
            break
        t0 = time.perf_counter()
        if frames % a.detect_interval == 0:
            _, found = det.detect(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
            boxes = [] if found is None else [f[:4] / scale for f in found[:8]]
        t["detect"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        batch = [c for c in (crop(frame, b) for b in boxes) if c is not None]
        t["crop"] += time.perf_counter() - t0
        if batch:
            t0 = time.perf_counter()
            x = torch.from_numpy(np.ascontiguousarray(np.stack(batch))).permute(0, 3, 1, 2).float() / 255.0
            with torch.no_grad():
                p_fake = 1 - torch.sigmoid(net(x)[:, 0])  # the net's sigmoid is P(real)
            probs += p_fake.tolist()
            t["model"] += time.perf_counter() - t0
            crops += len(batch)
        frames += 1
    loop = time.perf_counter() - t_loop
    print(json.dumps({
        "frames": frames, "crops": crops, "loop_seconds": loop,
        "seconds_since_start": time.perf_counter() - T_START,
        "import_seconds": t_setup - T_START,
        "ms_per_frame": {k: 1000 * v / max(frames, 1) for k, v in t.items() if k != "setup"},
        "setup_seconds": t["setup"], "model_ms_per_crop": 1000 * t["model"] / max(crops, 1),
        "mean_p_fake": float(np.mean(probs)) if probs else None,
        "frozen": not a.eager, "threads": a.threads}))


if __name__ == "__main__":
    main()
