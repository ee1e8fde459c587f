#!/usr/bin/python3
"""The baseline for bench/run: the original pipeline done as fast as it
honestly goes in eager PyTorch (Debian's python3-torch), not a straw man.

- OpenCV Haar cascade on every full frame (as the original app does),
- each face crop resized to 112x112 and normalised as the reference,
- crops batched by the window size through the backbone, and the per-frame
  head (one zero-state LSTM step per crop) in the same call, so every crop is
  classified exactly once and the backbone never runs twice for a frame,
- torch.no_grad, the thread count of the machine.

Prints one JSON object: timings and per-frame probabilities (for the
"same probabilities where the faces are the same" check).

Usage: baseline.py VIDEO CHECKPOINT.pt [--window 20] [--frames N] [--threads N]
"""
import argparse
import json
import os
import sys
import time

import cv2
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
from reference_module import ReferenceModel, normalise  # noqa: E402

CASCADE = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("video")
    ap.add_argument("checkpoint")
    ap.add_argument("--window", type=int, default=20)
    ap.add_argument("--frames", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--boxes", help="JSON {frame index: [[x, y, w, h], ...]}: crop these instead of detecting "
                    "(to compare probabilities on exactly the same faces)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = ReferenceModel()
    model.load_state_dict(torch.load(a.checkpoint))
    model.eval()
    cascade = cv2.CascadeClassifier(CASCADE)
    given = None
    if a.boxes:
        with open(a.boxes) as f:
            given = {int(k): v for k, v in json.load(f).items()}
    cap = cv2.VideoCapture(a.video)
    t = {"decode": 0.0, "detect": 0.0, "crop": 0.0, "model": 0.0}
    frames = faces = 0
    pending = []  # (frame index, box, crop)
    results = []

    def flush():
        nonlocal pending
        if not pending:
            return
        t0 = time.perf_counter()
        crops = torch.from_numpy(__import__("numpy").stack([p[2] for p in pending]))
        x = normalise(crops)
        with torch.no_grad():
            fmap = model.model(x)
            feats = model.avgpool(fmap).view(1, len(pending), 2048)
            out, _ = model.lstm(feats, None)  # batch_first=False: one step per crop
            probs = torch.softmax(model.linear1(out[0]), 1)[:, 0]
        t["model"] += time.perf_counter() - t0
        for (i, box, _), p in zip(pending, probs.tolist()):
            results.append({"index": i, "bbox": box, "fake_probability": p})
        pending = []

    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        ok, frame = cap.read()
        t["decode"] += time.perf_counter() - t0
        if not ok or (a.frames and frames >= a.frames):
            break
        t0 = time.perf_counter()
        if given is not None:
            boxes = given.get(frames, [])
        else:
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            boxes = cascade.detectMultiScale(gray, 1.1, 5, minSize=(40, 40))
        t["detect"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        for (x, y, w, h) in boxes:
            crop = cv2.resize(frame[y:y + h, x:x + w], (112, 112), interpolation=cv2.INTER_LINEAR)
            pending.append((frames, [int(x), int(y), int(w), int(h)], crop))
            faces += 1
        t["crop"] += time.perf_counter() - t0
        if len(pending) >= a.window:
            flush()
        frames += 1
    flush()
    total = time.perf_counter() - start
    print(json.dumps({
        "frames": frames, "crops": faces, "seconds": total,
        "fps": frames / total if total else 0, "crops_per_s": faces / total if total else 0,
        "ms_per_frame": {k: 1000 * v / max(frames, 1) for k, v in t.items()},
        "model_ms_per_crop": 1000 * t["model"] / max(faces, 1),
        "threads": a.threads, "results": results}))


if __name__ == "__main__":
    main()
