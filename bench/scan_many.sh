#!/bin/bash
# Many files in one deepfake-scan process against one process per file (the
# model loaded once against once per file): N pictures and N short clips
# made by make_clip, the default model (the shipped MesoNet) unless MODEL
# is set. Prints total and per-file seconds; see docs/scan.md.
#   bench/scan_many.sh [BUILD_DIR] [N] [JOBS[:THREADS]...]
#   MODEL=path/to/model.safetensors bench/scan_many.sh build 10 1 1:1 2
# (JOBS:THREADS: --jobs JOBS --num-threads THREADS, the LibTorch budget.)
set -eu
BUILD=${1:-build}
N=${2:-20}
shift $(( $# > 2 ? 2 : $# ))
JOBS=${*:-1 2}
SCAN=$BUILD/tools/deepfake-scan
MAKE_CLIP=$BUILD/tests/gst/make_clip
export GST_PLUGIN_PATH=$PWD/$BUILD/gst
MODEL_ARGS=()
[ -n "${MODEL:-}" ] && MODEL_ARGS=(--model "$MODEL")
WORK=$(mktemp -d /tmp/dfd-scan-many-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/images" "$WORK/clips"
for i in $(seq "$N"); do
  # Faces of a few sizes, so that the files differ (Haar finds each).
  "$MAKE_CLIP" "$WORK/images/p$i.png" --width 400 --height 300 --side $((240 + i % 5 * 10)) 2>/dev/null
  "$MAKE_CLIP" "$WORK/clips/c$i.avi" --frames 25 --width 400 --height 300 --side $((240 + i % 5 * 10)) 2>/dev/null
done
now() { date +%s.%N; }
report() {  # WHAT FILES SECONDS
  awk -v w="$1" -v n="$2" -v s="$3" 'BEGIN { printf "%-44s %3d files  %7.2f s  %6.3f s/file\n", w, n, s, s / n }'
}
cpus=$(nproc)
echo "deepfake-scan, $N pictures (400x300) and $N clips (25 frames, 400x300), ${MODEL:-default model}, $cpus CPUs"
for kind in images clips; do
  files=("$WORK/$kind"/*)
  t0=$(now)
  for f in "${files[@]}"; do "$SCAN" -q "${MODEL_ARGS[@]}" --json "$WORK/one.json" "$f" >/dev/null || [ $? -ge 10 ]; done
  report "$kind: one process per file" "${#files[@]}" "$(echo "$(now) - $t0" | bc)"
  for jt in $JOBS; do
    j=${jt%%:*}
    threads=()
    [ "$jt" != "$j" ] && threads=(--num-threads "${jt#*:}")
    rm -rf "$WORK/out"
    t0=$(now)
    "$SCAN" -q "${MODEL_ARGS[@]}" --jobs "$j" "${threads[@]}" --output-dir "$WORK/out" "$WORK/$kind" >/dev/null || [ $? -eq 10 ]
    report "$kind: one process, --jobs $j ${threads[*]}" "${#files[@]}" "$(echo "$(now) - $t0" | bc)"
  done
done
t0=$(now)
"$SCAN" -q "${MODEL_ARGS[@]}" --json "$WORK/one.json" "$WORK/images/p1.png" >/dev/null || [ $? -ge 10 ]
report "one picture, one process (start + model load)" 1 "$(echo "$(now) - $t0" | bc)"
