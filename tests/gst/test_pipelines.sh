#!/bin/bash
# Runs every launch line of pipelines/ to EOS, headless: sources swapped for a
# test clip, display sinks for fakesink (through the scripts' DFD_* variables).
#   test_pipelines.sh MAKE_CLIP PIPELINES_DIR WORK_DIR
# Needs GST_PLUGIN_PATH (the plugin) and DFD_GST_TEST_MODEL (a model file).
set -u
MAKE_CLIP=$1
PIPELINES=$2
WORK=$3
mkdir -p "$WORK"
CLIP=$WORK/pipelines-clip.avi
"$MAKE_CLIP" "$CLIP" --frames 24 --width 400 --height 300 --side 280 || { echo "FAIL: cannot make the clip"; exit 1; }

export DFD_MODEL=$DFD_GST_TEST_MODEL
export DFD_OPTS="window-size=6 detect-interval=2"
export DFD_SINK=fakesink
FILE_SRC="filesrc location=$CLIP ! decodebin"
fail=0

check() {  # check NAME STATUS [FILE PATTERN]...
  local name=$1 status=$2
  shift 2
  if [ "$status" -ne 0 ]; then
    echo "FAIL: $name exited with $status"
    fail=1
    return
  fi
  while [ $# -ge 2 ]; do
    if ! grep -q "$2" "$1"; then
      echo "FAIL: $name: no '$2' in $1"
      sed 's/^/    /' "$1" | tail -20
      fail=1
      return
    fi
    shift 2
  done
  echo "ok: $name"
}

out=$WORK/file-to-screen.out
"$PIPELINES/file-to-screen.sh" "$CLIP" >"$out" 2>&1
check file-to-screen $? "$out" "Got EOS"

out=$WORK/webcam.out
DFD_SRC=$FILE_SRC "$PIPELINES/webcam.sh" >"$out" 2>&1
check webcam $? "$out" "Got EOS"

out=$WORK/rtsp-camera.out
DFD_SRC=$FILE_SRC "$PIPELINES/rtsp-camera.sh" rtsp://unused >"$out" 2>&1
check rtsp-camera $? "$out" "Got EOS"

out=$WORK/broadcast.out
rm -f "$WORK/record.mkv" "$WORK/verdicts.log"
DFD_SRC=$FILE_SRC "$PIPELINES/broadcast.sh" - "$WORK/record.mkv" "$WORK/verdicts.log" >"$out" 2>&1
check broadcast $? "$WORK/verdicts.log" "^[^ ]* deepfakedetect, .*fake-probability=" \
  "$WORK/verdicts.log" "deepfakedetect-summary, verdict="
if [ ! -s "$WORK/record.mkv" ]; then
  echo "FAIL: broadcast: no recording"
  fail=1
else  # the recording plays back with every frame
  n=$(gst-launch-1.0 -m filesrc location="$WORK/record.mkv" ! matroskademux ! decodebin ! fakesink name=s signal-handoffs=true 2>&1 | grep -c "Got EOS")
  [ "$n" -eq 1 ] || { echo "FAIL: broadcast: recording does not decode"; fail=1; }
fi

out=$WORK/headless-logger.out
"$PIPELINES/headless-logger.sh" "file://$CLIP" >"$out" 2>"$out.err"
check headless-logger $? "$out" "deepfakedetect, timestamp=" "$out" "deepfakedetect-summary, verdict="

# Headless logger on the untrained default model (no DFD_MODEL): runs, warns.
out=$WORK/untrained.out
DFD_MODEL= DFD_LOG=- "$PIPELINES/headless-logger.sh" "file://$CLIP" >"$out" 2>&1
check untrained-default $? "$out" "deepfakedetect-summary"

# A bad model fails the pipeline with a clear error, no crash.
out=$WORK/bad-model.out
DFD_MODEL=/nonexistent/model.safetensors "$PIPELINES/file-to-screen.sh" "$CLIP" >"$out" 2>&1
status=$?
if [ $status -eq 0 ] || { [ $status -gt 128 ] && [ $status -lt 255 ]; } || ! grep -q "Could not load the deepfake model" "$out"; then
  echo "FAIL: bad model: status $status"
  sed 's/^/    /' "$out" | tail -5
  fail=1
else
  echo "ok: bad model is an error (status $status)"
fi
exit $fail
