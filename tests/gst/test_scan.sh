#!/bin/bash
# deepfake-scan end to end: video, still image, no face, whole-frame mode, a
# reference .pt checkpoint, and the error cases (one line, non-zero status).
#   test_scan.sh DEEPFAKE_SCAN MAKE_CLIP REFERENCE_PT WORK_DIR
set -u
SCAN=$1
MAKE_CLIP=$2
REF_PT=$3
WORK=$4
MODEL=$DFD_GST_TEST_MODEL
unset GST_DEBUG  # errors must be one line: no debug log on stderr
mkdir -p "$WORK"
"$MAKE_CLIP" "$WORK/clip.avi" --frames 24 --width 400 --height 300 --side 280 || exit 1
"$MAKE_CLIP" "$WORK/still.png" --width 400 --height 300 --side 280 2>/dev/null || exit 1
"$MAKE_CLIP" "$WORK/noface.avi" --frames 8 --width 320 --height 240 --no-face || exit 1
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# expect NAME STATUS WANTED_STATUS [python assertions on the report d]
expect_report() {
  local name=$1 status=$2 want=$3 json=$4 checks=$5
  if [ "$status" -ne "$want" ]; then bad "$name: exit $status, expected $want"; return; fi
  if ! python3 - "$json" <<PY
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("source", "model", "verdict", "fake_probability", "tracks"):
    assert k in d, k
for k in ("name", "head", "trained"):
    assert k in d["model"], k
assert d["verdict"] in ("FAKE", "REAL", "NO_FACE")
for t in d["tracks"]:
    for k in ("id", "verdict", "fake_probability", "frames", "windows"):
        assert k in t, k
    for f in t["frames"]:
        assert set(("index", "pts_ns", "bbox", "fake_probability")) <= set(f), f
        assert len(f["bbox"]) == 4 and 0.0 <= f["fake_probability"] <= 1.0
    for w in t["windows"]:
        assert set(("start_ns", "end_ns", "frames", "fake_probability")) <= set(w), w
        assert w["start_ns"] <= w["end_ns"]
$checks
PY
  then bad "$name: report checks failed ($json)"; return; fi
  echo "ok: $name"
}

"$SCAN" -q --model "$MODEL" --window-size 8 --json "$WORK/clip.json" "$WORK/clip.avi"
expect_report video $? 0 "$WORK/clip.json" '
assert d["verdict"] == "REAL" and d["model"]["trained"] is False and d["model"]["head"] == "reference"
assert len(d["tracks"]) == 1
t = d["tracks"][0]
assert [f["index"] for f in t["frames"]] == list(range(24)), t["frames"]
assert [w["frames"] for w in t["windows"]] == [8, 8, 8]
assert t["windows"][0]["start_ns"] == 0 and t["windows"][-1]["end_ns"] == 24 * 40000000
assert abs(d["fake_probability"] - sum(w["fake_probability"] for w in t["windows"]) / 3) < 1e-5
assert d["stats"]["frames"] == 24 and d["stats"]["windows_skipped"] == 0'

# FAKE at threshold 0: exit 10; stdout JSON.
"$SCAN" -q --model "$MODEL" --window-size 8 --threshold 0 --aggregation max --json - "$WORK/clip.avi" >"$WORK/fake.json"
expect_report fake-exit-code $? 10 "$WORK/fake.json" '
assert d["verdict"] == "FAKE" and d["threshold"] == 0 and d["aggregation"] == "max"'

"$SCAN" -q --model "$MODEL" --json "$WORK/still.json" "$WORK/still.png"
expect_report still-image $? 0 "$WORK/still.json" '
assert len(d["tracks"]) == 1 and len(d["tracks"][0]["frames"]) == 1
assert d["tracks"][0]["windows"][0]["frames"] == 1'

"$SCAN" -q --model "$MODEL" --json "$WORK/noface.json" "$WORK/noface.avi"
expect_report no-face $? 11 "$WORK/noface.json" '
assert d["verdict"] == "NO_FACE" and d["tracks"] == [] and d["fake_probability"] == 0'

"$SCAN" -q --model "$MODEL" --face-detector none --window-size 4 --json "$WORK/whole.json" "$WORK/noface.avi"
expect_report whole-frame $? 0 "$WORK/whole.json" '
assert d["face_detector"] == "none"
assert all(f["bbox"] == [0, 0, 320, 240] for f in d["tracks"][0]["frames"])'

# The reference checkpoint format (torch.save state_dict), head temporal.
"$SCAN" -q --model "$REF_PT" --head temporal --window-size 12 --json "$WORK/ref.json" "$WORK/clip.avi"
expect_report reference-pt $? 0 "$WORK/ref.json" '
assert d["model"]["name"] == "reference.pt" and d["model"]["head"] == "temporal"
assert d["model"]["trained"] is True'

# Errors: exit 1, exactly one line on stderr.
one_line_error() {  # NAME ARGS...
  local name=$1
  shift
  "$SCAN" "$@" >"$WORK/err.out" 2>"$WORK/err.txt"
  local status=$?
  local lines
  lines=$(wc -l <"$WORK/err.txt")
  if [ $status -ne 1 ] || [ "$lines" -ne 1 ] || [ -s "$WORK/err.out" ]; then
    bad "$name: status $status, $lines stderr lines: $(cat "$WORK/err.txt")"
  else
    echo "ok: $name -> $(cat "$WORK/err.txt")"
  fi
}
one_line_error missing-input --model "$MODEL" "$WORK/does-not-exist.avi"
printf 'this is not a video' >"$WORK/garbage.avi"
one_line_error garbage-input --model "$MODEL" "$WORK/garbage.avi"
one_line_error missing-model --model "$WORK/nope.safetensors" "$WORK/clip.avi"
one_line_error bad-model --model "$WORK/garbage.avi" "$WORK/clip.avi"
"$SCAN" --window-size 0 "$WORK/clip.avi" >/dev/null 2>&1
[ $? -eq 2 ] && echo "ok: usage error" || bad "usage error status"
exit $fail
