#!/bin/bash
# Verdicts as JSON events (deepfakemetapublish, docs/publish.md): one event
# per frame with faces, per classified window, and a summary at the end.
#   pipelines/publish.sh file:///data/clip.mp4 > events.jsonl      JSON lines on stdout
#   DFD_PUBLISH="method=mqtt address=broker:1883 topic=cameras/door" pipelines/publish.sh rtsp://camera/stream
#   DFD_PUBLISH="method=kafka address=kafka:9092 topic=deepfake" pipelines/publish.sh rtsp://camera/stream
# DFD_PUBLISH holds deepfakemetapublish's properties (default: JSON lines to
# stdout); the event's "source" field is the URI.
. "$(dirname "$0")/common.sh"
[ $# -ge 1 ] || [ -n "${DFD_SRC:-}" ] || { echo "usage: $0 URI" >&2; exit 2; }
URI=${1:-}
SRC=${DFD_SRC:-"uridecodebin uri=$URI"}
PUBLISH=${DFD_PUBLISH:-"method=file file-path=-"}
# -q: gst-launch's own lines would mix with the events on stdout.
$GST_LAUNCH -q -e $SRC ! videoconvert ! $(dfd_element) \
  ! deepfakemetapublish ${URI:+source=$URI} $PUBLISH ! fakesink
