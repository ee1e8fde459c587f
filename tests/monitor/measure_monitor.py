#!/usr/bin/python3
"""Figures for docs/monitor.md (not a test: it asserts nothing): the monitor
with N sources on one RTSP camera (rtsp_camera, 320x240 at 10 fps, shared
media), its CPU time and RSS over a run, frames/s and windows/s per source.

  DFD_MONITOR_BIN=... DFD_RTSP_CAMERA_BIN=... DFD_TEST_DATA_DIR=... GST_PLUGIN_PATH=... \
    measure_monitor.py N [SECONDS] [SAMPLE_EVERY_S]
DFD_MEASURE_DETECT='{"retain-memory": false}' adds deepfakedetect settings
(default: num-threads 1, as in the tests).
"""
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_monitor as t  # noqa: E402


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    n = int(sys.argv[1])
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60
    every = float(sys.argv[3]) if len(sys.argv) > 3 else 10
    t.DETECT.update(json.loads(os.environ.get("DFD_MEASURE_DETECT", "{}")))
    print("detect settings: %s" % t.DETECT)
    work = tempfile.mkdtemp(prefix="dfd-monitor-measure-")
    port = t.free_port()
    cam = t.start_camera(work, port)
    uri = "rtsp://127.0.0.1:%d/cam" % port
    srcs = [{"id": "cam%d" % i, "uri": uri, "publish": {"file-path": os.path.join(work, "cam%d.jsonl" % i)}}
            for i in range(n)]
    mon, url = t.start_monitor(work, t.config_for(work, srcs))
    pid = mon.proc.pid
    try:
        t.poll("frames on every source", lambda: all(s["frames"] > 20 for s in t.sources(url).values()), timeout=120)
        time.sleep(5)  # past the start-up (model load, first windows)
        c0, w0 = cpu_seconds(pid), time.monotonic()
        s0 = t.sources(url)
        print("load average at start: %s" % open("/proc/loadavg").read().split()[:3])
        while time.monotonic() - w0 < seconds:
            time.sleep(every)
            _, text = t.http("GET", url + "/metrics")
            rss = t.metric(text, "dfd_monitor_process_resident_memory_bytes", {})
            print("t=%5.0f s  RSS %.1f MB" % (time.monotonic() - w0, rss / 1e6), flush=True)
        c1, w1 = cpu_seconds(pid), time.monotonic()
        s1 = t.sources(url)
        wall = w1 - w0
        print("sources %d: CPU %.0f %% of one core over %.0f s" % (n, 100 * (c1 - c0) / wall, wall))
        for k in sorted(s1):
            a, b = s0[k], s1[k]
            print("  %s: %.1f frames/s, %.1f faces/s, %.2f windows/s, %.2f skipped/s, reconnects %d" % (
                k, (b["frames"] - a["frames"]) / wall, (b["faces"] - a["faces"]) / wall,
                (b["windows"] - a["windows"]) / wall, (b["windows_skipped"] - a["windows_skipped"]) / wall,
                b["reconnects"]))
        print("load average at end: %s" % open("/proc/loadavg").read().split()[:3])
    finally:
        mon.stop()
        cam.stop()


if __name__ == "__main__":
    main()
