#!/usr/bin/env bash
# deepfake-model end to end: init, import, info, and bad input (exit 1, one line).
set -u
TOOL=$1 REF=$2 HOSTILE=${3:-}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
check() {  # description, condition
  if eval "$2"; then echo "ok   - $1"; else echo "FAIL - $1"; fails=$((fails + 1)); fi
}
one_line_error() {  # args...: must exit 1 with exactly one stderr line naming the problem
  "$TOOL" "$@" >"$T/out" 2>"$T/err"
  local code=$?
  [ "$code" -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "^deepfake-model: error: " "$T/err"
}

"$TOOL" init --seed 3 --window-size 10 --out "$T/u.safetensors" >/dev/null
check "init writes a model" "[ -s $T/u.safetensors ]"
"$TOOL" info "$T/u.safetensors" >"$T/info"
check "info shows 322 tensors" "grep -q '^tensors: *322' $T/info"
check "info shows the published parameter count" "grep -q '^parameters: *56538434' $T/info"
check "info warns the model is untrained" "grep -q 'UNTRAINED' $T/info"
check "card keeps the window size" "grep -q '\"window_size\": 10' $T/info"
"$TOOL" init --seed 3 --window-size 10 --out "$T/u2.safetensors" >/dev/null
check "init is deterministic per seed" "[ \"\$($TOOL info $T/u.safetensors | grep checksum)\" = \"\$($TOOL info $T/u2.safetensors | grep checksum)\" ]"

"$TOOL" import "$REF/reference.pt" --out "$T/imp.safetensors" --name published >/dev/null
check "import writes a model" "[ -s $T/imp.safetensors ]"
check "import keeps the weights (same checksum)" "[ \"\$($TOOL info $REF/reference.pt | grep checksum)\" = \"\$($TOOL info $T/imp.safetensors | grep checksum)\" ]"
"$TOOL" info --json "$T/imp.safetensors" >"$T/imp.json"
check "imported card carries the name and head" "grep -q '\"name\": \"published\"' $T/imp.json && grep -q '\"head\": \"reference\"' $T/imp.json"

check "info on a missing file" "one_line_error info $T/nope.pt"
check "info on random bytes" "one_line_error info $REF/bad_random.bin"
check "info on a truncated checkpoint" "one_line_error info $REF/bad_truncated.pt"
check "import with a missing key" "one_line_error import $REF/bad_missing_key.pt --out $T/x.safetensors"
check "nothing written on a failed import" "[ ! -e $T/x.safetensors ]"
check "import with a wrong shape" "one_line_error import $REF/bad_wrong_shape.pt --out $T/x.safetensors"
# Hostile checkpoints (security): one clear line and exit 1, never a signal.
if [ -n "$HOSTILE" ]; then
  for f in wild_stride.pt wild_stride_wrap.pt deep_lists.pt deep_tuples.pt pickle_bomb.pt \
           duplicate_key.safetensors wrapped_shape.safetensors; do
    check "info on hostile $f" "one_line_error info $HOSTILE/$f"
  done
fi
check "unknown command" "one_line_error frobnicate"
check "unknown option" "one_line_error init --out $T/y.safetensors --colour blue"
check "bad seed" "one_line_error init --out $T/y.safetensors --seed abc"
check "bad head" "one_line_error init --out $T/y.safetensors --head sideways"
check "import without --out" "one_line_error import $REF/reference.pt"
[ "$fails" -eq 0 ]
