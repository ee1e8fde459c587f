#!/bin/bash
# An RTSP camera on screen with verdicts drawn (live: never blocks).
#   pipelines/rtsp-camera.sh rtsp://user:pass@192.0.2.10:554/stream1
. "$(dirname "$0")/common.sh"
[ $# -ge 1 ] || [ -n "${DFD_SRC:-}" ] || { echo "usage: $0 RTSP-URL" >&2; exit 2; }
SRC=${DFD_SRC:-"rtspsrc location=$1 latency=200 ! decodebin"}
SINK=${DFD_SINK:-"autovideosink sync=false"}
dfd_run $SRC ! videoconvert ! $(dfd_element overlay=true detect-interval=2) ! videoconvert ! $SINK
