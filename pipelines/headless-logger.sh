#!/bin/bash
# No display, no recording: verdicts only, one line per window and a summary
# line at the end, to stdout (or DFD_LOG).
#   pipelines/headless-logger.sh rtsp://camera/stream
#   pipelines/headless-logger.sh file:///data/clip.mp4 > verdicts.log
. "$(dirname "$0")/common.sh"
[ $# -ge 1 ] || [ -n "${DFD_SRC:-}" ] || { echo "usage: $0 URI" >&2; exit 2; }
SRC=${DFD_SRC:-"uridecodebin uri=$1"}
export DFD_LOG=${DFD_LOG:--}
dfd_run $SRC ! videoconvert ! $(dfd_element) ! fakesink
