#!/bin/bash
# deepfakemetapublish after the real deepfakedetect (the shipped MesoNet, whole
# frames as faces): every event is checked against docs/event-schema.json
# (python3-jsonschema) and counted; the example script pipelines/publish.sh;
# MQTT end to end through a mosquitto broker started here, read back with
# mosquitto_sub.
#   test_publish_pipeline.sh VALIDATE_PY PIPELINES_DIR WORK_DIR
# Needs GST_PLUGIN_PATH and DFD_EVENT_SCHEMA.
set -u
VALIDATE=$1
PIPELINES=$2
WORK=$3/run-$$  # a run of its own: repeated runs may overlap
mkdir -p "$WORK"
PY=/usr/bin/python3
fail=0
FRAMES=12
SRC="videotestsrc num-buffers=$FRAMES ! video/x-raw,width=320,height=240,framerate=25/1"
DETECT="deepfakedetect face-detector=none"

ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fail=1; }

# expect NAME FILE FORMAT "frame N" "summary 1" "window N": the validator's counts
expect() {
  local name=$1 file=$2 format=$3
  shift 3
  local counts
  if ! counts=$("$PY" "$VALIDATE" "$DFD_EVENT_SCHEMA" "$file" "$format" 2>&1); then
    bad "$name: $counts"
    return
  fi
  for want in "$@"; do
    grep -qx "$want" <<<"$counts" || { bad "$name: want '$want', got: $(tr '\n' ' ' <<<"$counts")"; return; }
  done
  ok "$name"
}

if ! "$PY" -c "import jsonschema" 2>/dev/null; then
  echo "SKIP: no python3-jsonschema"
  exit 77
fi

# JSON lines: one frame event per frame (the whole frame is a face), one
# window per frame (MesoNet scores every crop), one summary.
gst-launch-1.0 -q $SRC ! $DETECT ! deepfakemetapublish file-path="$WORK/events.jsonl" source=test:videotestsrc \
  ! fakesink >"$WORK/jsonl.log" 2>&1 || bad "json-lines pipeline: $(tail -3 "$WORK/jsonl.log")"
expect json-lines "$WORK/events.jsonl" json-lines "frame $FRAMES" "window $FRAMES" "summary 1"
"$PY" - "$WORK/events.jsonl" <<'PY' || bad "json-lines values"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert [e["seq"] for e in ev] == list(range(len(ev))), "seq not 0..n-1"
frames = [e for e in ev if e["type"] == "frame"]
assert all(e["source"] == "test:videotestsrc" for e in ev)
assert [f["timestamp"] for f in frames] == [i * 40000000 for i in range(len(frames))], "timestamps"
for f in frames:
    o = f["objects"][0]
    assert f["resolution"] == {"width": 320, "height": 240}
    assert o["detection"]["bounding_box"] == {"x_min": 0.0, "y_min": 0.0, "x_max": 1.0, "y_max": 1.0}, o
    assert o["deepfake"]["model"] and o["deepfake"]["trained"] is True
    assert o["deepfake"]["label"] in ("FAKE", "REAL"), "sync mode: every frame has its window"
s = ev[-1]
assert s["type"] == "summary" and s["frames"] == len(frames) and s["verdict"] in ("FAKE", "REAL"), s
assert abs(s["confidence"] - max(f["objects"][0]["deepfake"]["confidence"] for f in frames[-1:])) < 1e-9
PY

# One JSON array, valid once EOS has passed.
gst-launch-1.0 -q $SRC ! $DETECT ! deepfakemetapublish file-path="$WORK/events.json" file-format=json \
  ! fakesink >"$WORK/json.log" 2>&1 || bad "json pipeline: $(tail -3 "$WORK/json.log")"
expect json-array "$WORK/events.json" json "frame $FRAMES" "window $FRAMES" "summary 1"

# The example script: JSON lines on stdout, nothing else there.
DFD_SRC="$SRC" DFD_OPTS="face-detector=none" "$PIPELINES/publish.sh" >"$WORK/script.jsonl" 2>"$WORK/script.err" ||
  bad "pipelines/publish.sh: $(tail -3 "$WORK/script.err")"
expect pipelines/publish.sh "$WORK/script.jsonl" json-lines "frame $FRAMES" "summary 1"

# A bad file path: a clear error, a failure status (gst-launch: 255 when the
# state change fails), no crash (128 + signal).
gst-launch-1.0 $SRC ! deepfakemetapublish file-path=/nonexistent-dir/e.jsonl ! fakesink >"$WORK/badpath.log" 2>&1
status=$?
if [ $status -ne 0 ] && { [ $status -le 128 ] || [ $status -eq 255 ]; } && grep -q "Could not open the events file" "$WORK/badpath.log"; then ok bad-file-path
else bad "bad file path: status $status: $(tail -3 "$WORK/badpath.log")"; fi

# No broker at all: a clear warning, the video still runs to EOS (bounded by
# timeout: a stall fails), and what could not be delivered is counted.
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
timeout 120 gst-launch-1.0 $SRC ! $DETECT ! deepfakemetapublish method=mqtt address=127.0.0.1:$PORT flush-timeout=200 \
  ! fakesink >"$WORK/nobroker.log" 2>&1
status=$?
if [ $status -eq 0 ] && grep -q "Got EOS" "$WORK/nobroker.log" && grep -q "unreachable" "$WORK/nobroker.log"; then ok no-broker
else bad "no broker: status $status: $(grep -m3 -E 'WARN|ERROR' "$WORK/nobroker.log")"; fi

# MQTT end to end, read back with mosquitto_sub.
if [ -x /usr/sbin/mosquitto ] && command -v mosquitto_sub >/dev/null; then
  PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nuser %s\nlog_dest file %s\nlog_type all\n' \
    "$PORT" "$(id -un)" "$WORK/mosquitto.log" >"$WORK/mosquitto.conf"
  /usr/sbin/mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.out" 2>&1 &
  BROKER=$!
  for _ in $(seq 100); do mosquitto_sub -p "$PORT" -t x -W 1 -C 1 2>&1 | grep -q refused || break; sleep 0.1; done
  want=$((FRAMES * 2 + 1))
  timeout 60 mosquitto_sub -h 127.0.0.1 -p "$PORT" -t "cameras/#" -q 1 -C $want >"$WORK/mqtt.jsonl" 2>"$WORK/sub.err" &
  SUB=$!
  # The subscription is made before the first event (the broker logs it).
  for _ in $(seq 100); do grep -q "cameras/#" "$WORK/mosquitto.log" 2>/dev/null && break; sleep 0.1; done
  gst-launch-1.0 -q $SRC ! $DETECT ! deepfakemetapublish method=mqtt address=127.0.0.1:$PORT topic=cameras/test \
    ! fakesink >"$WORK/mqtt.log" 2>&1 || bad "mqtt pipeline: $(tail -3 "$WORK/mqtt.log")"
  wait $SUB || bad "mosquitto_sub got $(wc -l <"$WORK/mqtt.jsonl") of $want events"
  kill $BROKER
  wait $BROKER 2>/dev/null
  expect mqtt "$WORK/mqtt.jsonl" json-lines "frame $FRAMES" "window $FRAMES" "summary 1"
else
  echo "SKIP: mqtt end to end: no mosquitto (Debian packages mosquitto, mosquitto-clients)"
fi

[ $fail -eq 0 ] && { echo "all passed"; rm -rf "$WORK"; }
exit $fail
