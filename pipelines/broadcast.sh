#!/bin/bash
# A broadcast chain: the source is analysed once, then shown (with verdicts
# drawn) and encoded to a recording, while every verdict is logged.
#   pipelines/broadcast.sh rtsp://camera/stream record.mkv verdicts.log
#   DFD_SRC="v4l2src ! video/x-raw,width=1280,height=720" pipelines/broadcast.sh - record.mkv verdicts.log
# Encoder and muxer: DFD_ENCODER (default avenc_mpeg4 from gst-libav; x264enc
# where installed), DFD_MUXER (default matroskamux).
. "$(dirname "$0")/common.sh"
[ $# -ge 3 ] || { echo "usage: $0 SOURCE-URI|- RECORDING VERDICT-LOG" >&2; exit 2; }
SRC=${DFD_SRC:-"uridecodebin uri=$1"}
RECORD=$2
export DFD_LOG=$3
SINK=${DFD_SINK:-"autovideosink sync=false"}
ENCODER=${DFD_ENCODER:-"avenc_mpeg4 bitrate=4000000"}
MUXER=${DFD_MUXER:-matroskamux}
dfd_run $SRC ! videoconvert ! $(dfd_element overlay=true) ! tee name=t \
  t. ! queue ! videoconvert ! $SINK \
  t. ! queue ! videoconvert ! $ENCODER ! $MUXER ! filesink location=$RECORD
