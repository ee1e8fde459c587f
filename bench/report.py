#!/usr/bin/python3
"""Assembles bench/run's JSON files into results.json and a Markdown table
(ours, the baseline's and the ratio), with the machine's facts."""
import json
import os
import platform
import subprocess
import sys

B, CLIPS, FIRST = sys.argv[1], sys.argv[2].split(), sys.argv[3]


def load(name):
    p = os.path.join(B, name)
    return json.load(open(p)) if os.path.exists(p) else None


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


flags = sh("grep -m1 '^flags' /proc/cpuinfo").split()
machine = {
    "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(),
    "cores": os.cpu_count(),
    "simd": [f for f in flags if f.startswith(("avx", "amx", "fma"))],
    "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    "kernel": platform.release(),
    "blas": os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3"),
    "libtorch": sh("dpkg-query -W -f='${Version}' libtorch-dev"),
}
out = {"machine": machine, "clips": {}}
lines = ["# Benchmark results", "",
         f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB; "
         f"SIMD: {' '.join(machine['simd'])}; BLAS: {machine['blas']}; libtorch {machine['libtorch']}.", ""]
lines += ["| clip | stage / measure | ours | baseline | ratio |", "| --- | --- | ---: | ---: | ---: |"]


def row(clip, what, ours, base=None, unit="", better="higher"):
    if ours is None:
        return
    r = ""
    if base:
        r = f"{(ours / base if better == 'higher' else base / ours):.1f}x"
    b = f"{base:.2f}{unit}" if base is not None else ""
    lines.append(f"| {clip} | {what} | {ours:.2f}{unit} | {b} | {r} |")


for c in CLIPS:
    st, e2e, lat, base = load(f"stages_{c}.json"), load(f"e2e_{c}.json"), load(f"latency_{c}.json"), load(f"baseline_{c}.json")
    out["clips"][c] = {"stages": st, "e2e": e2e, "latency": lat, "baseline": {k: v for k, v in (base or {}).items() if k != "results"}}
    bms = (base or {}).get("ms_per_frame", {})
    if st:
        row(c, "decode ms/frame (OpenCV, both)", st["decode_ms_per_frame"], bms.get("decode"), better="lower")
        row(c, "face detection ms/frame (ours: 480 px every 5th frame + tracking; baseline: full frame, every frame)",
            st["detect_ms_per_frame"], bms.get("detect"), better="lower")
        row(c, "detection rate (faces found / faces present)", st["detection_rate"], st.get("detect_full_frame_rate"))
        row(c, "crop+resize ms/frame", st["crop_ms_per_frame"], bms.get("crop"), better="lower")
        row(c, "backbone ms/crop, batch 8", st["backbone_ms_per_crop_batch8"], (base or {}).get("model_ms_per_crop"), better="lower")
        row(c, "backbone ms/crop, single crop", st["backbone_ms_per_crop_single"])
        row(c, "head, reference, ms per 20 frames (one batch)", st["head_reference_ms_per_20_frames"])
        row(c, "head, temporal, ms per 20-frame window (alone / 4 batched)", st["head_temporal_ms_per_20_frame_window"],
            st["head_temporal_ms_per_window_4_batched"], better="lower")
    if e2e:
        row(c, "end to end frames/s (offline, every window)", e2e["fps"], (base or {}).get("fps"))
        row(c, "face crops analysed /s", e2e["faces_per_s"], (base or {}).get("crops_per_s"))
        row(c, "decode-only pipeline frames/s", e2e["decode_only"]["fps"])
    if lat:
        row(c, "live: added latency p50 ms", lat["latency_ms_p50"])
        row(c, "live: added latency p99 ms", lat["latency_ms_p99"])
        row(c, "live: windows analysed / skipped", float(lat["windows_analysed"]), float(lat["windows_skipped"]), better="none")

rss = load("rss.json")
if rss:
    out["rss"] = rss
    lines += ["", f"Memory: one element {rss['one_element_mb']:.0f} MB resident, two elements on the same model "
              f"{rss['two_elements_mb']:.0f} MB: the second adds {rss['second_element_adds_mb']:.1f} MB."]
scan, bb = load(f"scan_{FIRST}.json"), load(f"baseline_boxes_{FIRST}.json")
if scan and bb:
    ours = {}
    for t in scan.get("tracks", []):
        for fr in t.get("frames", []):
            ours[(fr["index"], tuple(fr["bbox"]))] = fr["fake_probability"]
    diffs = [abs(ours[(r["index"], tuple(r["bbox"]))] - r["fake_probability"])
             for r in bb["results"] if (r["index"], tuple(r["bbox"])) in ours]
    out["probability_parity"] = {"frames_compared": len(diffs), "max_abs_diff": max(diffs) if diffs else None}
    lines += ["", f"Per-frame P(FAKE), ours against the eager PyTorch module on the same {len(diffs)} face crops "
              f"of {FIRST}: largest difference {max(diffs) if diffs else float('nan'):.2e}."]
json.dump(out, open(os.path.join(B, "results.json"), "w"), indent=2)
print("\n".join(lines))
