#!/usr/bin/env bash
# deepfake-eval end to end on a generated labelled set (real/ and fake/ with a
# clip, images and one broken file), then its error paths. Where the dev clips
# exist (../shared/data/clips-dev, never committed), the shipped default model
# is evaluated on them too; elsewhere that part is skipped with a message.
set -u
EVAL=$1 MEDIA=$2 MODEL=$3 DEV=${4:-}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
check() {  # description, condition
  if eval "$2"; then echo "ok   - $1"; else echo "FAIL - $1"; fails=$((fails + 1)); fi
}
mkdir -p "$T/set/real" "$T/set/fake"
"$MEDIA" clip "$T/set/real/clip.avi" 12
"$MEDIA" face "$T/set/real/face.jpg"
"$MEDIA" face "$T/set/fake/face.jpg"
"$MEDIA" noface "$T/set/fake/noface.png"
head -c 3000 /dev/urandom > "$T/set/fake/broken.mp4"

"$EVAL" "$T/set" --model "$MODEL" --json "$T/eval.json" --html "$T/eval.html" >"$T/out" 2>"$T/err"
code=$?
check "a failed clip makes the exit status 1" "[ $code -eq 1 ]"
check "every clip is listed" "[ \$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))[\"clips\"]))' $T/eval.json) -eq 5 ]"
check "the broken clip is reported with its error" "python3 -c 'import json,sys; c=[x for x in json.load(open(sys.argv[1]))[\"clips\"] if x[\"id\"]==\"fake/broken.mp4\"][0]; assert c[\"error\"]' $T/eval.json"
check "metrics cover the four scanned clips" "python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))[\"metrics\"]; assert m[\"n\"]==4 and m[\"n_fake\"]==2 and m[\"failed\"]==1 and m[\"no_face\"]==1, m' $T/eval.json"
check "the no-face image scores 0" "python3 -c 'import json,sys; c=[x for x in json.load(open(sys.argv[1]))[\"clips\"] if x[\"id\"]==\"fake/noface.png\"][0]; assert c[\"verdict\"]==\"NO_FACE\" and c[\"fake_probability\"]==0' $T/eval.json"
check "the table shows AUC and the confusion matrix" "grep -q 'ROC AUC' $T/out && grep -q 'confusion:' $T/out"
check "the HTML page has the ROC curve" "grep -q '<svg' $T/eval.html && grep -q 'fake/broken.mp4' $T/eval.html"
check "per-clip progress on stderr" "grep -q '\[5/5\]' $T/err"

"$EVAL" "$T/nope" --model "$MODEL" >/dev/null 2>"$T/err"; code=$?
check "a missing dataset: exit 1, one line" "[ $code -eq 1 ] && [ \$(wc -l <$T/err) -eq 1 ] && grep -q 'does not exist' $T/err"
"$EVAL" "$T/set" --model "$T/nope.h5" >/dev/null 2>"$T/err"; code=$?
check "a missing model: exit 1, one line" "[ $code -eq 1 ] && [ \$(wc -l <$T/err) -eq 1 ]"
"$EVAL" "$T/set" --frobnicate >/dev/null 2>"$T/err"; code=$?
check "an unknown option: exit 2" "[ $code -eq 2 ]"
"$EVAL" "$T/set" --min-face-size abc >/dev/null 2>"$T/err"; code=$?
check "a bad element option value: exit 2" "[ $code -eq 2 ] && grep -q 'min-face-size' $T/err"

if [ -n "$DEV" ] && [ -d "$DEV/real" ]; then
  "$EVAL" "$DEV" -q --json "$T/dev.json" >"$T/dev.txt" 2>&1; code=$?
  check "dev clips: all 15 scanned with the default model" "[ $code -eq 0 ] && python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))[\"metrics\"]; assert m[\"n\"]==15, m' $T/dev.json"
  cat "$T/dev.txt"
else
  echo "skip - dev clips not found (../shared/data/clips-dev): the dev-set evaluation is not run"
fi
echo "$fails failed"
[ $fails -eq 0 ]
