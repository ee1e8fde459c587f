#!/bin/bash
# Many cameras in one process with deepfake-monitor (docs/monitor.md): each URI
# becomes a source cam1, cam2, ... whose events go to DFD_EVENTS_DIR/camN.jsonl
# (default ./monitor-events); REST API and /metrics on DFD_MONITOR_PORT (8090).
#   pipelines/monitor.sh rtsp://10.0.0.5/stream rtsp://10.0.0.6/stream file:///data/clip.mp4
#   curl -s localhost:8090/api/v1/sources ; curl -s localhost:8090/metrics
# For a config of your own: deepfake-monitor --config pipelines/monitor-example.json
# DFD_MONITOR is the program (default: deepfake-monitor on PATH, else the
# build tree's build/tools/deepfake-monitor).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 URI..." >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
monitor=${DFD_MONITOR:-$(command -v deepfake-monitor || echo "$here/../build/tools/deepfake-monitor")}
events=${DFD_EVENTS_DIR:-$PWD/monitor-events}
mkdir -p "$events"
config=$(mktemp --suffix=.json)
trap 'rm -f "$config"' EXIT
/usr/bin/python3 - "$config" "$events" "${DFD_MONITOR_PORT:-8090}" "$@" <<'PY'
import json, sys
path, events, port, uris = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
sources = [{"id": "cam%d" % (i + 1), "uri": u,
            "publish": {"file-path": "%s/cam%d.jsonl" % (events, i + 1)}} for i, u in enumerate(uris)]
json.dump({"listen": {"port": port}, "sources": sources}, open(path, "w"), indent=1)
PY
"$monitor" --config "$config"
