"""Side-by-side table for scripts/gpu-bench from the JSON lines that
bench_gpu.cpp (--json) and torch_side.py (--json) write: crops/s per batch
size for each C++ precision, the best eager PyTorch configuration and the
best torch.compile one, and the goal line (issue 16: >= 2,000 crops/s on one
H200, at or ahead of the best PyTorch configuration). Markdown on stdout.

Usage: summary.py CPP.jsonl TORCH.jsonl
"""
import json
import sys

GOAL = 2000.0


def load(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def main():
    cpp, torch_rows = load(sys.argv[1]), load(sys.argv[2])
    rows = cpp + torch_rows
    if not rows:
        print("no results")
        return 1
    batches = sorted({r["batch"] for r in rows})
    cpp_precs = [p for p in ("fp32", "bf16", "fp16") if any(r["precision"] == p for r in cpp)]

    def best(pred, bs):
        c = [r for r in rows if pred(r) and r["batch"] == bs]
        return max(c, key=lambda r: r["crops_per_s"]) if c else None

    eager = lambda r: r["impl"] == "pytorch" and "compile" not in r["config"]  # noqa: E731
    compiled = lambda r: r["impl"] == "pytorch" and "compile" in r["config"]  # noqa: E731
    device = rows[0]["device"]
    print(f"GPU benchmark on {device}: crops/s (ms per batch), one call = upload + forward + P(FAKE) back\n")
    head = ["batch"] + [f"LibTorch C++ {p}" for p in cpp_precs] + ["best PyTorch eager", "best torch.compile"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for bs in batches:
        cells = [str(bs)]
        for p in cpp_precs:
            r = best(lambda r: r["impl"] == "libtorch" and r["precision"] == p, bs)
            fused = " fused" if r and "fused" in r["config"] else ""
            cells.append(f"{r['crops_per_s']:.0f} ({r['ms_per_batch']:.2f} ms{fused})" if r else "-")
        for pred in (eager, compiled):
            r = best(pred, bs)
            cells.append(f"{r['crops_per_s']:.0f} ({r['config'].replace('torch ', '')})" if r else "-")
        print("| " + " | ".join(cells) + " |")
    print()
    for cfg in sorted({r["config"] for r in cpp}):
        d = [r["max_abs_dprob_vs_cpu"] for r in cpp if r["config"] == cfg]
        print(f"- {cfg}: largest |P(FAKE) device - P(FAKE) prepacked CPU fp32| = {max(d):.2e}")
    bc = max(cpp, key=lambda r: r["crops_per_s"]) if cpp else None
    bt = max(torch_rows, key=lambda r: r["crops_per_s"]) if torch_rows else None
    if bc:
        goal = (f"; goal {GOAL:.0f} crops/s on one H200: {'met' if bc['crops_per_s'] >= GOAL else 'not met'}"
                if bc["device"].startswith("cuda") else " (a CPU: the goal is for a GPU)")
        print(f"- best C++: {bc['crops_per_s']:.0f} crops/s ({bc['precision']}, batch {bc['batch']}){goal}")
    if bt:
        print(f"- best PyTorch: {bt['crops_per_s']:.0f} crops/s ({bt['config']}, batch {bt['batch']})")
    if bc and bt:
        ratio = bc["crops_per_s"] / bt["crops_per_s"]
        print(f"- C++ / best PyTorch: {ratio:.2f}x ({'at or ahead' if ratio >= 1.0 else 'behind'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
