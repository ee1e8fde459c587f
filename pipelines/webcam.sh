#!/bin/bash
# A webcam (V4L2) on screen with verdicts drawn. Live source: the element
# never blocks; windows the model cannot keep up with are skipped.
#   pipelines/webcam.sh                 # /dev/video0
#   DFD_DEVICE=/dev/video2 DFD_OPTS="detect-interval=3" pipelines/webcam.sh
. "$(dirname "$0")/common.sh"
SRC=${DFD_SRC:-"v4l2src device=${DFD_DEVICE:-/dev/video0} ! video/x-raw,width=640,height=480"}
SINK=${DFD_SINK:-"autovideosink sync=false"}
dfd_run $SRC ! videoconvert ! $(dfd_element overlay=true) ! videoconvert ! $SINK
