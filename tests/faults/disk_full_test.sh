#!/bin/bash
# A full disk while writing reports or storing uploads: every tool says so in
# one line, fails (exit 1, HTTP 507), leaves no half-written file behind, and
# the service goes on answering.
# usage: disk_full_test.sh DEEPFAKE_SCAN DEEPFAKE_SERVE PLUGIN_DIR WORKDIR
# Needs a small tmpfs (mount, as root); skips (exit 77) with a message where
# mounting is not allowed. /dev/full is used where no mount is needed.
set -u
scan=$1 serve=$2 plugin_dir=$3 work=$4
data=${DFD_TEST_DATA:-tests/data}
face=$data/mesonet-faces/df00204.jpg
export GST_PLUGIN_PATH=$plugin_dir
pass=0 fail=0
check() {  # check NAME CONDITION...
  local name=$1; shift
  if "$@"; then pass=$((pass + 1)); echo "ok   $name"; else fail=$((fail + 1)); echo "FAIL $name"; fi
}
rm -rf "$work"; mkdir -p "$work"

# 1. The report to stdout on a full disk: exit 1 and a line saying so, not a
#    verdict exit code with the report lost.
"$scan" -q "$face" --json - > /dev/full 2> "$work/stdout.err"
rc=$?
check "report to a full stdout: exit 1 (got $rc)" test "$rc" = 1
check "report to a full stdout: one line naming the problem" grep -q "No space left on device" "$work/stdout.err"

# 2. The report to a file on a full disk.
"$scan" -q "$face" --json /dev/full 2> "$work/file.err"
rc=$?
check "report file on a full disk: exit 1 (got $rc)" test "$rc" = 1
check "report file on a full disk: says it could not write" grep -q "/dev/full" "$work/file.err"

# The rest needs a filesystem that fills up.
full=$work/full
mkdir -p "$full"
if ! mount -t tmpfs -o size=64k tmpfs "$full" 2> /dev/null; then
  echo "SKIP: cannot mount a small tmpfs here (needs root); /dev/full cases ran: $pass passed, $fail failed"
  [ "$fail" = 0 ] && exit 77 || exit 1
fi
trap 'umount "$full" 2> /dev/null' EXIT

# The service starts while there is room (its private directory), then the
# disk fills up to the last byte.
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TMPDIR=$full "$serve" --port "$port" > "$work/serve.out" 2> "$work/serve.err" &
pid=$!
for _ in $(seq 1 300); do grep -q "listening on" "$work/serve.out" 2> /dev/null && break; sleep 0.1; done
check "service started with its directory on the small disk" grep -q "listening on" "$work/serve.out"
mkdir -p "$full/reports"
head -c 1000000 /dev/zero > "$full/filler" 2> /dev/null

# 3. Many files into a full --output-dir: each input a failed row naming the
#    cause, exit 1, no partial report (reports are written whole or not at all).
"$scan" -q "$face" "$data/mesonet-faces/real00240.jpg" --output-dir "$full/reports" --summary "$work/summary.csv" \
  > "$work/many.out" 2> "$work/many.err"
rc=$?
check "reports on a full disk: exit 1 (got $rc)" test "$rc" = 1
check "reports on a full disk: no report or temporary file left" test -z "$(ls -A "$full/reports")"
check "reports on a full disk: both rows failed, naming the cause" \
  test "$(grep -c 'No space left on device' "$work/summary.csv")" = 2

# 4. The service storing an upload on a full disk: 507, the reason, nothing
#    left in its directory, and once there is room the next upload is analysed.
code=$(curl -s -o "$work/serve.json" -w '%{http_code}' -F "file=@$face;type=image/jpeg" "http://127.0.0.1:$port/predict_media")
check "upload on a full disk: HTTP 507 (got $code)" test "$code" = 507
check "upload on a full disk: the reason in the answer" grep -q "No space left on device" "$work/serve.json"
check "upload on a full disk: nothing left in the service's directory" \
  test -z "$(find "$full" -name 'upload-*' | head -1)"
rm -f "$full/filler"
code=$(curl -s -o "$work/serve2.json" -w '%{http_code}' -F "file=@$face;type=image/jpeg" "http://127.0.0.1:$port/predict_media")
check "room again: the next upload is analysed (got $code)" test "$code" = 200
kill "$pid"; wait "$pid" 2> /dev/null

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
