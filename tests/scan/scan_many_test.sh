#!/bin/bash
# deepfake-scan with many files, end to end, with the shipped MesoNet (the
# default model) on clips and pictures made by make_clip: reports per input
# (equal base names in two folders), the CSV and JSON Lines summaries checked
# value by value against the reports, failed inputs (corrupt, not media,
# missing, remote URI) that do not stop the others, an empty directory,
# globs and file:// URIs, --jobs 2 giving the reports of --jobs 1, --resume
# after a partial run, after a damaged report and after a run killed with
# SIGKILL (no half report), SIGTERM, the progress lines, --html-reports, the
# exit codes and the usage errors.
#   scan_many_test.sh DEEPFAKE_SCAN MAKE_CLIP WORK_DIR
set -u
SCAN=$1
MAKE_CLIP=$2
WORK=$3
unset GST_DEBUG
rm -rf "$WORK"
mkdir -p "$WORK/media/a" "$WORK/media/b" "$WORK/media/bad" "$WORK/media/empty/sub" "$WORK/media/deep/er"
M=$WORK/media
# (Haar finds the face from a side of about 220 pixels at these sizes.)
"$MAKE_CLIP" "$M/a/clip.avi" --frames 12 --width 400 --height 300 --side 280 || exit 1
"$MAKE_CLIP" "$M/b/clip.avi" --frames 6 --width 320 --height 240 --no-face || exit 1   # same base name, no face
"$MAKE_CLIP" "$M/still.png" --width 320 --height 240 --side 220 2>/dev/null || exit 1
"$MAKE_CLIP" "$M/deep/er/face.png" --width 400 --height 300 --side 260 2>/dev/null || exit 1
echo "not a picture" >"$M/empty/sub/readme.txt"
printf 'this is not a video' >"$M/bad/notmedia.mp4"
python3 - "$M/a/clip.avi" "$M/bad/corrupt.avi" <<'PY'
import random, sys
data = bytearray(open(sys.argv[1], "rb").read())
r = random.Random(1)
for i in range(4096, len(data)):
    data[i] = r.randrange(256)
open(sys.argv[2], "wb").write(bytes(data))
PY
fail=0
bad() { echo "FAIL: $*"; fail=1; }
ok() { echo "ok: $*"; }

# check_summary NAME SUMMARY EXPECTED: every row against its report, value by
# value, and against EXPECTED, a Python dict {input: (status, verdict or error_kind)}.
check_summary() {
  local name=$1 summary=$2 expected=$3
  if python3 - "$summary" "$expected" <<'PY'
import csv, json, os, sys
path, expected = sys.argv[1], eval(sys.argv[2])
if path.endswith(".csv"):
    rows = list(csv.DictReader(open(path, newline="")))
    assert list(rows[0].keys()) if rows else True
    header = open(path).readline().strip()
    assert header == "input,status,verdict,fake_probability,threshold,tracks,frames,elapsed_s,report,error_kind,error", header
    num = lambda v: float(v)
else:
    rows = [json.loads(l) for l in open(path)]
    num = lambda v: v
got = {r["input"]: r for r in rows}
assert len(got) == len(rows), "an input listed twice"
assert set(got) == set(expected), (sorted(got), sorted(expected))
for inp, (status, what) in expected.items():
    r = got[inp]
    assert r["status"] == status, (inp, r)
    if status == "failed":
        assert r["error_kind"] == what and r["error"], (inp, r)
        assert r["verdict"] in ("", None) and r["report"] in ("", None) and r["fake_probability"] in ("", None), r
        continue
    assert r["verdict"] == what, (inp, r)
    d = json.load(open(r["report"]))
    assert d["source"] == inp, (d["source"], inp)
    assert d["verdict"] == r["verdict"]
    assert abs(num(r["fake_probability"]) - d["fake_probability"]) < 6e-7, (r, d["fake_probability"])
    assert abs(num(r["threshold"]) - d["threshold"]) < 6e-7
    assert int(r["tracks"]) == len(d["tracks"]) and int(r["frames"]) == d["stats"]["frames"], r
    assert abs(num(r["elapsed_s"]) - d["stats"]["elapsed_s"]) < 6e-4, r
    assert os.path.basename(r["report"]).startswith(os.path.basename(inp) + "-"), r["report"]
PY
  then ok "$name"; else bad "$name: $summary: $(cat "$summary")"; fi
}

# 1. Two folders with a clip each under the same name, a picture, an empty
#    folder: one report each, none FAKE at threshold 1 (exit 0).
"$SCAN" --threshold 1 --output-dir "$WORK/out1" --summary "$WORK/out1.csv" \
  "$M/a" "$M/b" "$M/still.png" "$M/empty" >"$WORK/out1.table" 2>"$WORK/out1.err"
status=$?
[ $status -eq 0 ] || bad "run 1: exit $status: $(cat "$WORK/out1.err")"
check_summary "equal base names, a picture, an empty folder: CSV against the reports" "$WORK/out1.csv" "{
  '$M/a/clip.avi': ('scanned', 'REAL'), '$M/b/clip.avi': ('scanned', 'NO_FACE'), '$M/still.png': ('scanned', 'REAL')}"
[ "$(ls "$WORK/out1" | grep -c '^clip.avi-[0-9a-f]\{12\}.json$')" -eq 2 ] && ok "two clip.avi reports side by side" ||
  bad "reports: $(ls -a "$WORK/out1")"
[ "$(ls -A "$WORK/out1" | wc -l)" -eq 3 ] && ok "nothing else in the output folder" || bad "out1: $(ls -A "$WORK/out1")"
grep -q "$M/empty: no media files" "$WORK/out1.err" && ok "the empty folder is named on stderr" || bad "stderr: $(cat "$WORK/out1.err")"
# Plain progress lines (stderr is no terminal): one per input.
[ "$(grep -c '^\[[1-3]/3\] ' "$WORK/out1.err")" -eq 3 ] && ! grep -q $'\r' "$WORK/out1.err" &&
  ok "one plain progress line per input" || bad "progress: $(cat -A "$WORK/out1.err")"
grep -q '^3 inputs: 0 FAKE, 2 REAL, 1 NO_FACE, 0 failed$' "$WORK/out1.table" && grep -q '^NO_FACE .*b/clip.avi$' "$WORK/out1.table" &&
  ok "table on stdout" || bad "table: $(cat "$WORK/out1.table")"

# 2. The whole tree: corrupt and not-media files fail, the others are scanned (exit 1).
"$SCAN" -q --threshold 1 --jobs 2 --output-dir "$WORK/out2" --summary "$WORK/out2.jsonl" "$M" >/dev/null 2>"$WORK/out2.err"
status=$?
[ $status -eq 1 ] && ok "an input failed: exit 1" || bad "run 2: exit $status"
check_summary "failures in the JSON Lines summary, the others scanned" "$WORK/out2.jsonl" "{
  '$M/a/clip.avi': ('scanned', 'REAL'), '$M/b/clip.avi': ('scanned', 'NO_FACE'), '$M/still.png': ('scanned', 'REAL'),
  '$M/deep/er/face.png': ('scanned', 'REAL'),
  '$M/bad/corrupt.avi': ('failed', 'decode'), '$M/bad/notmedia.mp4': ('failed', 'not-media')}"
[ "$(ls "$WORK/out2" | wc -l)" -eq 4 ] && ok "no report for the failed inputs" || bad "out2: $(ls "$WORK/out2")"
[ ! -s "$WORK/out2.err" ] && ok "--quiet: nothing on stderr" || bad "--quiet stderr: $(cat "$WORK/out2.err")"

# 3. --jobs 2 gives the very reports of --jobs 1 (but for the time taken).
same_reports() {
  python3 - "$1" "$2" <<'PY'
import json, os, sys
a, b = sys.argv[1:]
names = sorted(os.listdir(a))
assert names == sorted(os.listdir(b)) and names, (names, os.listdir(b))
for n in names:
    x, y = json.load(open(os.path.join(a, n))), json.load(open(os.path.join(b, n)))
    x["stats"].pop("elapsed_s"); y["stats"].pop("elapsed_s")
    assert x == y, n
PY
}
"$SCAN" -q --threshold 1 --jobs 1 --output-dir "$WORK/out3" "$M/a" "$M/b" "$M/still.png" "$M/deep" >/dev/null
s1=$?
"$SCAN" -q --threshold 1 --jobs 2 --output-dir "$WORK/out3j" "$M/a" "$M/b" "$M/still.png" "$M/deep" >/dev/null
s2=$?
[ $s1 -eq 0 ] && [ $s2 -eq 0 ] && same_reports "$WORK/out3" "$WORK/out3j" && ok "--jobs 2: the reports of --jobs 1" ||
  bad "--jobs 1 ($s1) and --jobs 2 ($s2) differ"

# 4. Exit codes: FAKE found (threshold 0) 10; FAKE and a failure 12; a
#    failure alone 1 (above); single-file codes unchanged.
"$SCAN" -q --threshold 0 --jobs 2 --output-dir "$WORK/out4" "$M/a" "$M/b" >/dev/null
status=$?; [ $status -eq 10 ] && ok "FAKE found: exit 10" || bad "FAKE found: exit $status"
"$SCAN" -q --threshold 0 --summary "$WORK/out5.csv" "$M/a" "$M/bad/corrupt.avi" >"$WORK/out5.table"
status=$?; [ $status -eq 12 ] && ok "FAKE and a failure: exit 12" || bad "FAKE and failed: exit $status"
python3 - "$WORK/out5.csv" "$M" <<'PY'
import csv, sys
rows = {r["input"]: r for r in csv.DictReader(open(sys.argv[1]))}
m = sys.argv[2]
assert rows[m + "/a/clip.avi"]["verdict"] == "FAKE" and rows[m + "/a/clip.avi"]["report"] == ""
assert rows[m + "/bad/corrupt.avi"]["status"] == "failed" and rows[m + "/bad/corrupt.avi"]["error_kind"] == "decode"
assert rows[m + "/bad/corrupt.avi"]["error"] and "\n" not in rows[m + "/bad/corrupt.avi"]["error"]
PY
[ $? -eq 0 ] && ok "summary without reports" || bad "out5: $(cat "$WORK/out5.csv")"
"$SCAN" -q "$M/b/clip.avi" >/dev/null; s1=$?
"$SCAN" -q --output-dir "$WORK/out6" "$M/b/clip.avi" >/dev/null; s2=$?
[ $s1 -eq 11 ] && [ $s2 -eq 0 ] && ok "one file: NO_FACE is 11 as before; in many-file mode 0" || bad "NO_FACE: $s1 / $s2"

# 5. Missing files, an unmatched glob, a remote URI: failed inputs; a glob
#    and a file:// URI that match: scanned.
"$SCAN" -q --threshold 1 --summary "$WORK/out7.csv" "$M/missing.avi" "$M/*.nothing" "https://example.org/v.mp4" \
  "$M/*.png" "file://$M/deep/er/face.png" >/dev/null
status=$?; [ $status -eq 1 ] && ok "missing inputs: exit 1" || bad "missing inputs: exit $status"
python3 - "$WORK/out7.csv" "$M" <<'PY'
import csv, sys
m = sys.argv[2]
rows = [(r["input"], r["status"], r["verdict"], r["error_kind"], r["error"]) for r in csv.DictReader(open(sys.argv[1]))]
assert rows == [
    (m + "/missing.avi", "failed", "", "input", "no such file or directory"),
    (m + "/*.nothing", "failed", "", "input", "no file matches this pattern"),
    ("https://example.org/v.mp4", "failed", "", "input",
     "only local files can be scanned (paths or file:// URIs), not https://"),
    (m + "/still.png", "scanned", "REAL", "", ""),
    ("file://" + m + "/deep/er/face.png", "scanned", "REAL", "", ""),
], rows
PY
[ $? -eq 0 ] && ok "missing, unmatched, remote: failed rows; glob and file:// scanned" || bad "out7: $(cat "$WORK/out7.csv")"

# 6. An empty folder alone: nothing to scan, nothing failed: exit 0, a summary of no rows.
"$SCAN" --summary "$WORK/out8.csv" "$M/empty" >"$WORK/out8.table" 2>"$WORK/out8.err"
status=$?
[ $status -eq 0 ] && [ "$(cat "$WORK/out8.csv")" = "input,status,verdict,fake_probability,threshold,tracks,frames,elapsed_s,report,error_kind,error" ] &&
  grep -q '^0 inputs: 0 FAKE, 0 REAL, 0 NO_FACE, 0 failed$' "$WORK/out8.table" && ok "empty folder alone: exit 0, empty summary" ||
  bad "empty folder: exit $status, $(cat "$WORK/out8.csv" "$WORK/out8.table" "$WORK/out8.err")"

# 7. --resume after a partial run: the earlier reports are taken as they are
#    (not rewritten), the rest scanned; a damaged report is scanned again.
"$SCAN" -q --threshold 1 --output-dir "$WORK/out9" "$M/a" >/dev/null || bad "partial run"
a_report=$(ls "$WORK/out9"/clip.avi-*.json)
before=$(stat -c '%Y %s %i' "$a_report"); sum_before=$(md5sum <"$a_report")
sleep 1  # so that a rewrite would show in the modification time
"$SCAN" -q --threshold 1 --resume --output-dir "$WORK/out9" --summary "$WORK/out9.csv" "$M/a" "$M/b" "$M/still.png" >/dev/null
status=$?
[ $status -eq 0 ] || bad "resume: exit $status"
check_summary "--resume after a partial run" "$WORK/out9.csv" "{
  '$M/a/clip.avi': ('resumed', 'REAL'), '$M/b/clip.avi': ('scanned', 'NO_FACE'), '$M/still.png': ('scanned', 'REAL')}"
[ "$(stat -c '%Y %s %i' "$a_report")" = "$before" ] && [ "$(md5sum <"$a_report")" = "$sum_before" ] &&
  ok "the earlier report was left as it was" || bad "resumed report rewritten"
still_report=$(ls "$WORK/out9"/still.png-*.json)
head -c 100 "$still_report" >"$still_report.cut" && mv "$still_report.cut" "$still_report"
"$SCAN" -q --threshold 1 --resume --output-dir "$WORK/out9" --summary "$WORK/out9b.jsonl" "$M/a" "$M/b" "$M/still.png" >/dev/null
check_summary "--resume scans a damaged report's input again" "$WORK/out9b.jsonl" "{
  '$M/a/clip.avi': ('resumed', 'REAL'), '$M/b/clip.avi': ('resumed', 'NO_FACE'), '$M/still.png': ('scanned', 'REAL')}"
"$SCAN" -q --threshold 1 --resume --html-reports --output-dir "$WORK/out9" --summary "$WORK/out9c.csv" "$M/a" "$M/still.png" >/dev/null
check_summary "--resume with --html-reports rescans inputs without their HTML" "$WORK/out9c.csv" "{
  '$M/a/clip.avi': ('scanned', 'REAL'), '$M/still.png': ('scanned', 'REAL')}"
python3 - "$WORK/out9" <<'PY'
import glob, json, os, sys
pages = sorted(glob.glob(sys.argv[1] + "/*.html"))
assert len(pages) == 2, pages
for p in pages:
    d = json.load(open(p[:-5] + ".json"))
    h = open(p).read()
    assert h.startswith("<!DOCTYPE html>") and 'data-verdict="%s"' % d["verdict"] in h, p
PY
[ $? -eq 0 ] && ok "--html-reports: a page per input beside its JSON" || bad "html reports: $(ls "$WORK/out9")"

# 8. A run killed with SIGKILL leaves whole reports only; --resume finishes
#    the rest. SIGTERM stops a run cleanly: exit 130, the summary says what
#    was not scanned.
mkdir -p "$WORK/many"
for i in 1 2 3 4 5 6; do "$MAKE_CLIP" "$WORK/many/c$i.avi" --frames 10 --width 320 --height 240 --side 220 || exit 1; done
wait_for_report() {  # DIR: up to 120 s for the first report
  for _ in $(seq 1200); do
    ls "$1"/*.json >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
"$SCAN" -q --threshold 1 --jobs 1 --output-dir "$WORK/killed" "$WORK/many" >/dev/null 2>&1 &
pid=$!
wait_for_report "$WORK/killed" || bad "no report within 120 s"
kill -KILL $pid; wait $pid 2>/dev/null
done_before=$(ls "$WORK/killed"/*.json | wc -l)
python3 - "$WORK/killed" <<'PY'
import glob, json, sys
for p in glob.glob(sys.argv[1] + "/*.json"):
    json.load(open(p))  # every visible report parses
PY
[ $? -eq 0 ] && ok "killed run: $done_before whole reports, no half one" || bad "killed: $(ls -a "$WORK/killed")"
"$SCAN" -q --threshold 1 --resume --output-dir "$WORK/killed" --summary "$WORK/killed.csv" "$WORK/many" >/dev/null
status=$?
python3 - "$WORK/killed.csv" "$done_before" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 6, rows
assert sum(r["status"] == "resumed" for r in rows) == int(sys.argv[2]), rows
assert all(r["status"] in ("resumed", "scanned") and r["verdict"] == "REAL" for r in rows), rows
PY
checked=$?
[ $checked -eq 0 ] && [ $status -eq 0 ] && ok "--resume after SIGKILL: $done_before resumed, the rest scanned" ||
  bad "resume after SIGKILL: exit $status, $(cat "$WORK/killed.csv")"
"$SCAN" --threshold 1 --jobs 1 --output-dir "$WORK/termed" --summary "$WORK/termed.csv" "$WORK/many" >/dev/null 2>&1 &
pid=$!
wait_for_report "$WORK/termed" || bad "no report within 120 s"
kill -TERM $pid; wait $pid
status=$?
python3 - "$WORK/termed.csv" "$WORK/termed" <<'PY'
import csv, glob, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 6, rows
scanned = [r for r in rows if r["status"] == "scanned"]
assert len(scanned) == len(glob.glob(sys.argv[2] + "/*.json")) >= 1, rows
assert len(scanned) < 6 and all(r["error_kind"] == "cancelled" for r in rows if r["status"] == "failed"), rows
PY
checked=$?
[ $checked -eq 0 ] && [ $status -eq 130 ] && ok "SIGTERM: exit 130, the summary lists the unscanned as cancelled" ||
  bad "SIGTERM: exit $status, $(cat "$WORK/termed.csv" 2>&1)"

# 9. The progress line on a terminal (script(1) gives one).
if command -v script >/dev/null 2>&1; then
  script -qec "'$SCAN' --threshold 1 '$M/a' '$M/still.png'" /dev/null </dev/null >"$WORK/tty.txt" 2>&1
  grep -q $'\r\[#*-*\]  [0-2]/2 files  0 FAKE  0 failed  [0-9] running' "$WORK/tty.txt" &&
    grep -q '2 inputs: 0 FAKE, 2 REAL' "$WORK/tty.txt" && ok "progress line on a terminal" || bad "tty: $(cat -A "$WORK/tty.txt")"
else
  echo "skip: progress on a terminal (no script(1))"
fi

# 10. Usage errors: exit 2.
for args in "--json x.json $M/a $M/b" "--html x.html $M/a" "--resume $M/a" "--html-reports $M/a" \
            "--summary out.txt $M/a" "--jobs 0 $M/a" "--jobs x $M/a" "--output-dir= $M/a"; do
  # shellcheck disable=SC2086
  "$SCAN" $args >/dev/null 2>"$WORK/usage.err"
  status=$?
  [ $status -eq 2 ] && ok "usage error: $args" || bad "usage error status $status for $args: $(cat "$WORK/usage.err")"
done
"$SCAN" --help >"$WORK/help.txt"
grep -q -- '--output-dir DIR' "$WORK/help.txt" && grep -q '^  12  at least one FAKE and at least one failed' "$WORK/help.txt" &&
  ok "--help documents many files and their exit codes" || bad "help: $(cat "$WORK/help.txt")"
exit $fail
