#!/bin/bash
# A video file on screen with face boxes and verdicts drawn on it.
#   pipelines/file-to-screen.sh clip.mp4
#   DFD_MODEL=model.safetensors pipelines/file-to-screen.sh clip.mp4
# Offline source: the element runs in sync mode (every window analysed), so
# playback slows down where the model is slower than real time; add
# DFD_OPTS="sync=false" to keep real-time playback and skip windows instead.
. "$(dirname "$0")/common.sh"
[ $# -ge 1 ] || [ -n "${DFD_SRC:-}" ] || { echo "usage: $0 FILE" >&2; exit 2; }
SRC=${DFD_SRC:-"filesrc location=$1 ! decodebin"}
SINK=${DFD_SINK:-autovideosink}
dfd_run $SRC ! videoconvert ! $(dfd_element overlay=true) ! videoconvert ! $SINK
