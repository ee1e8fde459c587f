#!/usr/bin/python3
"""deepfake-monitor against real servers: an RTSP camera (gst-rtsp-server,
tests/monitor/rtsp_camera.cpp) this test starts on a free port, the REST API
over HTTP, a file source and bad configs/bodies.

  test_monitor.py rtsp|rest|config

Environment (set by tests/monitor/meson.build): DFD_MONITOR_BIN,
DFD_RTSP_CAMERA_BIN, DFD_TEST_DATA_DIR, GST_PLUGIN_PATH.
Everything waits by polling with generous limits (a loaded 2-core machine);
nothing asserts on timing.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

MONITOR = os.environ.get("DFD_MONITOR_BIN", "")
CAMERA = os.environ.get("DFD_RTSP_CAMERA_BIN", "")
DATA = os.environ.get("DFD_TEST_DATA_DIR", "")
PICTURE = os.path.join(DATA, "astronaut.png")
# Cheap settings for a shared 2-core machine: one LibTorch thread per process.
DETECT = {"num-threads": 1}


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: " + msg, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Sanitizer runs (scripts/test --sanitize, --tsan) set DFD_TEST_TIME_SCALE:
# instrumented monitors start and decode several times slower.
TIME_SCALE = max(1.0, float(os.environ.get("DFD_TEST_TIME_SCALE", "1")))


def poll(what, fn, timeout=60.0, step=0.25):
    """Calls fn until it returns something true; fails after timeout seconds (scaled)."""
    end = time.monotonic() + timeout * TIME_SCALE
    last = None
    while time.monotonic() < end:
        try:
            last = fn()
            if last:
                return last
        except (OSError, urllib.error.URLError, ValueError) as e:
            last = e
        time.sleep(step)
    fail("timed out waiting for %s (last: %r)" % (what, last))


class Process:
    """A child process we started, stopped by its own pid."""

    def __init__(self, args, log):
        self.log = open(log, "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)

    def wait_line(self, prefix, timeout=60.0):
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        end = time.monotonic() + timeout * TIME_SCALE
        while time.monotonic() < end:
            if sel.select(timeout=0.5):
                line = self.proc.stdout.readline()
                if not line:
                    break
                if line.startswith(prefix):
                    return line.strip()
            if self.proc.poll() is not None:
                break
        self.dump_stacks()
        fail("%s did not print '%s' (exit %s); see %s" % (self.proc.args[0], prefix, self.proc.poll(), self.log.name))

    def dump_stacks(self):
        """A process that is still running but silent: every thread's stack
        into its log (where gdb is installed), so that a hang says where."""
        gdb = shutil.which("gdb")
        if self.proc.poll() is not None or not gdb:
            return
        try:
            out = subprocess.run([gdb, "-batch", "-p", str(self.proc.pid), "-ex", "thread apply all bt"],
                                 capture_output=True, text=True, timeout=60).stdout
        except subprocess.TimeoutExpired:
            return
        self.log.write("\n== stacks (gdb) ==\n" + out)
        self.log.flush()
        print(out[-6000:], flush=True)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30 * TIME_SCALE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def http(method, url, body=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def start_camera(work, port, name="camera"):
    cam = Process([CAMERA, str(port), PICTURE], os.path.join(work, name + ".log"))
    cam.wait_line("ready", timeout=30)
    return cam


def start_monitor(work, config):
    path = os.path.join(work, "monitor.json")
    with open(path, "w") as f:
        json.dump(config, f)
    mon = Process([MONITOR, "--config", path, "--port", "0"], os.path.join(work, "monitor.log"))
    url = mon.wait_line("listening on ", timeout=60).split()[-1]
    return mon, url


def sources(url):
    status, body = http("GET", url + "/api/v1/sources")
    if status != 200:
        fail("GET /api/v1/sources: %d %s" % (status, body))
    return {s["id"]: s for s in json.loads(body)["sources"]}


def metric(text, name, labels):
    want = "%s{%s}" % (name, ",".join('%s="%s"' % kv for kv in labels.items())) if labels else name
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return None


def config_for(work, srcs, reconnect=None):
    c = {"listen": {"bind": "127.0.0.1", "port": 0},
         "reconnect": reconnect or {"initial_s": 0.5, "max_s": 4, "stall_timeout_s": 6},
         "defaults": {"detect": DETECT, "publish": {"method": "file", "file-format": "json-lines"}},
         "sources": srcs}
    return c


def check_latency(s, text, what):
    """The source's queue depth and added latency, in its JSON and /metrics, are sane."""
    lat = s["added_latency_s"]
    check(lat is not None and lat["window_frames"] > 0, "%s: added latency measured: %s" % (what, lat))
    check(0 < lat["mean"] < 60 and 0 < lat["p99"] < 60 and 0 <= lat["last"] < 60 and lat["p50"] <= lat["p99"],
          "%s: added latency in (0, 60) s: %s" % (what, lat))
    check(s["queue_depth"] >= 0, "%s: queue depth %d" % (what, s["queue_depth"]))
    labels = {"source": s["id"]}
    check(metric(text, "dfd_monitor_queue_depth", labels) is not None, "%s: /metrics has the queue depth" % what)
    p99 = metric(text, "dfd_monitor_added_latency_seconds", dict(labels, quantile="0.99"))
    count = metric(text, "dfd_monitor_added_latency_seconds_count", labels)
    check(p99 is not None and 0 < p99 < 60 and count is not None and count > 0,
          "%s: /metrics has the added latency summary (p99 %s s, %s frames)" % (what, p99, count))
    return count


def test_rtsp(work):
    port = free_port()
    cam = start_camera(work, port)
    events = os.path.join(work, "door.jsonl")
    uri = "rtsp://127.0.0.1:%d/cam" % port
    mon, url = start_monitor(work, config_for(work, [
        {"id": "door", "uri": uri, "publish": {"file-path": events}}]))
    try:
        # Verdicts arrive: the astronaut's face is classified.
        s = poll("frames, faces and verdicts from the RTSP camera",
                 lambda: (lambda d: d if d["frames"] > 0 and d["faces"] > 0 and d["windows"] > 0 else None)(
                     sources(url)["door"]), timeout=90)
        check(s["state"] == "playing", "RTSP source is playing")
        check(s["last_verdict"] is not None and s["last_verdict"]["label"] in ("FAKE", "REAL"),
              "last verdict is FAKE or REAL: %s" % s["last_verdict"])
        check(sum(s["verdicts"].values()) == s["windows"], "verdict counts add up to the windows")
        status, text = http("GET", url + "/metrics")
        check(status == 200 and metric(text, "dfd_monitor_frames_total", {"source": "door"}) > 0,
              "/metrics has door's frames")
        check(metric(text, "dfd_monitor_process_resident_memory_bytes", {}) > 10e6, "/metrics has the process RSS")
        check_latency(sources(url)["door"], text, "RTSP source")
        # The camera dies; the monitor notices and keeps retrying.
        cam.stop(signal.SIGKILL)
        poll("the source to go reconnecting", lambda: sources(url)["door"]["state"] == "reconnecting", timeout=60)
        down = sources(url)["door"]
        check(down["last_error"], "last_error says why: %s" % down["last_error"])
        # The camera comes back on the same port: frames flow again.
        cam = poll("the camera to restart on port %d" % port, lambda: start_camera(work, port, "camera2"), timeout=30)
        frames_before = sources(url)["door"]["frames"]
        s = poll("frames again after the restart",
                 lambda: (lambda d: d if d["state"] == "playing" and d["frames"] > frames_before + 10 else None)(
                     sources(url)["door"]), timeout=90)
        check(s["reconnects"] > 0, "reconnects counted: %d" % s["reconnects"])
        status, text = http("GET", url + "/metrics")
        check(metric(text, "dfd_monitor_reconnects_total", {"source": "door"}) >= 1, "/metrics counts reconnects")
        # The camera hangs (SIGSTOP: connection open, nothing sent): the stall
        # watchdog gives up on it, and it plays again once the camera resumes.
        errors_before = sources(url)["door"]["errors"]
        cam.proc.send_signal(signal.SIGSTOP)
        try:
            s = poll("the stall to be noticed", lambda: (lambda d: d if d["errors"] > errors_before and
                                                          "no frame for" in (d["last_error"] or "") else None)(
                sources(url)["door"]), timeout=60)
        finally:
            cam.proc.send_signal(signal.SIGCONT)
        check(True, "stall noticed: %s" % s["last_error"])
        frames_before = sources(url)["door"]["frames"]
        poll("frames again after the stall",
             lambda: (lambda d: d["state"] == "playing" and d["frames"] > frames_before + 10)(sources(url)["door"]),
             timeout=90)
        check(True, "frames flow again after the stall")
        status, body = http("GET", url + "/healthz")
        check(status == 200 and json.loads(body)["status"] == "ok", "/healthz ok")
    finally:
        rc = mon.stop()
        cam.stop()
    check(rc == 0, "monitor exits 0 on SIGTERM")
    with open(events) as f:
        kinds = [json.loads(line)["type"] for line in f if line.strip()]
    check("window" in kinds and "frame" in kinds, "deepfakemetapublish wrote frame and window events")


def make_clip(work):
    clip = os.path.join(work, "clip.mp4")
    subprocess.run(["gst-launch-1.0", "-q", "filesrc", "location=" + PICTURE, "!", "pngdec", "!",
                    "imagefreeze", "num-buffers=30", "!", "videoconvert", "!", "videoscale", "!",
                    "video/x-raw,width=320,height=240,framerate=10/1", "!", "x264enc", "speed-preset=ultrafast", "!",
                    "mp4mux", "!", "filesink", "location=" + clip], check=True, timeout=60)
    return clip


def test_rest(work):
    clip = make_clip(work)
    port = free_port()
    cam = start_camera(work, port)
    cam_uri = "rtsp://127.0.0.1:%d/cam" % port
    mon, url = start_monitor(work, config_for(work, [
        {"id": "clip", "uri": "file://" + clip, "restart": "never",
         "publish": {"file-path": os.path.join(work, "clip.jsonl")}}]))
    try:
        # A file source analyses every frame (sync mode) and stops at its end.
        s = poll("the file source to end", lambda: (lambda d: d if d["state"] == "stopped" else None)(
            sources(url)["clip"]), timeout=90)
        check(s["frames"] == 30, "file source: all 30 frames (%d)" % s["frames"])
        check(s["windows"] > 0 and s["windows_skipped"] == 0, "file source: windows %d, none skipped" % s["windows"])
        check(s["last_error"] is None and s["reconnects"] == 0, "file source: no error, no restart")
        status, text = http("GET", url + "/metrics")
        count = check_latency(s, text, "file source")
        check(s["queue_depth"] == 0 and count == 30,
              "file source ended: queue empty (%d), all 30 frames timed (%s)" % (s["queue_depth"], count))
        # The same clip over HTTP (a plain file server this test starts).
        http_port = free_port()
        web = Process([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", work,
                       str(http_port)], os.path.join(work, "http.log"))
        try:
            poll("the HTTP server", lambda: http("GET", "http://127.0.0.1:%d/clip.mp4" % http_port)[0] == 200,
                 timeout=30)
            status, _ = http("POST", url + "/api/v1/sources", {"id": "web", "restart": "never",
                                                                  "uri": "http://127.0.0.1:%d/clip.mp4" % http_port})
            check(status == 201, "POST an http:// source: 201")
            w = poll("the HTTP source to end", lambda: (lambda d: d if d["state"] == "stopped" else None)(
                sources(url)["web"]), timeout=90)
            check(w["frames"] == 30 and w["windows"] > 0 and w["last_error"] is None,
                  "http source: all 30 frames, %d windows, no error" % w["windows"])
        finally:
            web.stop()
        # Add the camera at run time.
        status, body = http("POST", url + "/api/v1/sources",
                            {"id": "cam", "uri": cam_uri, "publish": {"file-path": os.path.join(work, "cam.jsonl")}})
        check(status == 201 and json.loads(body)["id"] == "cam", "POST adds 'cam': %d" % status)
        poll("frames from the added camera", lambda: sources(url)["cam"]["frames"] > 5, timeout=60)
        status, body = http("POST", url + "/api/v1/sources", {"id": "cam", "uri": cam_uri})
        check(status == 409 and "exists" in json.loads(body)["error"], "same id again: 409")
        # A source nobody serves: a clear error in its state, the others untouched.
        dead = "rtsp://127.0.0.1:%d/none" % free_port()
        status, _ = http("POST", url + "/api/v1/sources", {"id": "dead", "uri": dead})
        check(status == 201, "POST an unreachable camera: 201")
        d = poll("the unreachable camera's error", lambda: (lambda d: d if d["last_error"] else None)(
            sources(url)["dead"]), timeout=60)
        check(d["state"] in ("reconnecting", "playing") and d["errors"] >= 1, "unreachable: %s" % d["last_error"])
        # Its retries back off: 0.5, 1, 2, then the 4 s cap, and stay there.
        d = poll("four retries of the unreachable camera", lambda: (lambda d: d if d["reconnects"] >= 4 and
                                                                     d["state"] == "reconnecting" else None)(
            sources(url)["dead"]), timeout=60)
        check(d["next_retry_s"] == 4 and d["errors"] >= 5,
              "backoff capped at max_s: next retry in %s s after %d reconnects" % (d["next_retry_s"], d["reconnects"]))
        # Sources added and removed in quick succession (while starting up).
        for i in range(5):
            status, text = http("POST", url + "/api/v1/sources", {"id": "churn", "uri": cam_uri})
            check(status == 201, "churn %d: added" % i)
            time.sleep(0.3 * (i % 3))
            status, text = http("DELETE", url + "/api/v1/sources/churn")
            check(status == 200, "churn %d: removed" % i)
        cam_frames = sources(url)["cam"]["frames"]
        poll("'cam' to keep going beside 'dead' and the churn",
             lambda: sources(url)["cam"]["frames"] > cam_frames + 5, timeout=60)
        check(sources(url)["cam"]["errors"] == 0, "'cam' had no error")
        # Bad bodies: 400 naming the field.
        bad = [
            (b"{not json", "not JSON"),
            (b"[]", "expected an object"),
            ({"uri": cam_uri}, "id: missing"),
            ({"id": "x", "uri": "ftp://host/a"}, "unsupported scheme"),
            ({"id": "x", "uri": "file://relative"}, "absolute path"),
            ({"id": "x y", "uri": cam_uri}, "id: may hold only"),
            ({"id": "x", "uri": cam_uri, "colour": 1}, "colour: unknown key"),
            ({"id": "x", "uri": cam_uri, "detect": {"window-size": "4"}}, "detect.window-size: expected an integer"),
            ({"id": "x", "uri": cam_uri, "detect": {"window-size": 5000}}, "detect.window-size: 5000 is out of range"),
            ({"id": "x", "uri": cam_uri, "detect": {"face-detector": "eyes"}}, "detect.face-detector"),
            ({"id": "x", "uri": cam_uri, "publish": {"method": "carrier-pigeon"}}, "publish.method"),
            ({"id": "x", "uri": cam_uri, "restart": "sometimes"}, "restart: expected always"),
        ]
        for body, words in bad:
            status, text = http("POST", url + "/api/v1/sources", body)
            msg = json.loads(text).get("error", "")
            check(status == 400 and words in msg, "bad body %r -> 400 '%s'" % (body, msg))
        check("x" not in sources(url), "no bad body added a source")
        # Remove, and unknown ids.
        status, _ = http("DELETE", url + "/api/v1/sources/dead")
        check(status == 200 and "dead" not in sources(url), "DELETE removes 'dead'")
        status, text = http("DELETE", url + "/api/v1/sources/dead")
        check(status == 404 and "no source 'dead'" in json.loads(text)["error"], "DELETE unknown id: 404")
        status, _ = http("GET", url + "/api/v1/sources/nope")
        check(status == 404, "GET unknown id: 404")
        status, _ = http("PUT", url + "/api/v1/sources", {})
        check(status == 405, "PUT: 405")
        status, text = http("GET", url + "/metrics")
        check(metric(text, "dfd_monitor_frames_total", {"source": "clip"}) == 30 and
              metric(text, "dfd_monitor_frames_total", {"source": "dead"}) is None and
              metric(text, "dfd_monitor_sources", {}) == 3,
              "/metrics: clip's 30 frames, 'dead' gone, 3 sources")
        status, _ = http("DELETE", url + "/api/v1/sources/cam")
        check(status == 200, "DELETE cam")
        with open(os.path.join(work, "cam.jsonl")) as f:
            lines = [json.loads(x) for x in f if x.strip()]
        check(len(lines) > 0, "cam's events were flushed when it was removed (%d)" % len(lines))
    finally:
        rc = mon.stop()
        cam.stop()
    check(rc == 0, "monitor exits 0 on SIGTERM")


def test_config(work):
    def run(config_text):
        path = os.path.join(work, "bad.json")
        with open(path, "w") as f:
            f.write(config_text)
        p = subprocess.run([MONITOR, "--config", path, "--port", "0"], capture_output=True, text=True, timeout=60)
        return p.returncode, p.stderr

    ok_uri = "file:///tmp/a.mp4"
    cases = [
        ("{", "not JSON"),
        ('{"source": []}', "source: unknown key"),
        ('{"sources": {}}', "sources: expected an array"),
        ('{"sources": [{"id": "a", "uri": "%s"}, {"id": "a", "uri": "%s"}]}' % (ok_uri, ok_uri),
         "sources[1].id: duplicate id 'a'"),
        ('{"sources": [{"id": "a", "uri": "not a uri"}]}', "sources[0].uri"),
        ('{"sources": [{"id": "a", "uri": "gopher://h/x"}]}', "sources[0].uri: unsupported scheme"),
        ('{"sources": [{"id": "a"}]}', "sources[0].uri: missing"),
        ('{"listen": {"port": 70000}}', "listen.port"),
        ('{"listen": {"port": "80"}}', "listen.port: expected an integer"),
        ('{"reconnect": {"initial_s": 5, "max_s": 1}}', "reconnect.max_s"),
        ('{"reconnect": {"backoff": 2}}', "reconnect.backoff: unknown key"),
        ('{"defaults": {"detect": {"treshold": 0.5}}}', "defaults.detect.treshold: unknown key"),
        ('{"defaults": {"detect": {"overlay": 1}}}', "defaults.detect.overlay: expected a boolean"),
        ('{"sources": [{"id": "a", "uri": "%s", "detect": {"max-faces": 0}}]}' % ok_uri,
         "detect.max-faces: 0 is out of range"),
        ('{"sources": [{"id": "a", "uri": "%s", "publish": {"file-format": "xml"}}]}' % ok_uri,
         "publish.file-format"),
    ]
    for text, words in cases:
        rc, err = run(text)
        check(rc == 1 and words in err, "config %s -> exit 1 '%s'" % (text, err.strip()))
    p = subprocess.run([MONITOR, "--config", os.path.join(work, "missing.json")], capture_output=True, text=True)
    check(p.returncode == 1 and "cannot read" in p.stderr, "missing config file: exit 1")
    p = subprocess.run([MONITOR, "--port", "x"], capture_output=True, text=True)
    check(p.returncode == 2, "bad command line: exit 2")
    # The port is taken: exit 1 with the reason.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        path = os.path.join(work, "empty.json")
        with open(path, "w") as f:
            f.write("{}")
        p = subprocess.run([MONITOR, "--config", path, "--port", str(s.getsockname()[1])],
                           capture_output=True, text=True, timeout=60)
        check(p.returncode == 1 and "cannot listen" in p.stderr, "port taken: exit 1 '%s'" % p.stderr.strip())


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("rtsp", "rest", "config"):
        print(__doc__)
        return 2
    for binary in (MONITOR, CAMERA):
        if not binary or not os.access(binary, os.X_OK):
            print("SKIP: %s not built" % binary)
            return 77
    work = tempfile.mkdtemp(prefix="dfd-monitor-")
    try:
        {"rtsp": test_rtsp, "rest": test_rest, "config": test_config}[sys.argv[1]](work)
    except SystemExit:
        print("logs kept in " + work)
        for name in os.listdir(work):
            if name.endswith(".log"):
                print("== " + name)
                print(open(os.path.join(work, name)).read()[-3000:])
        raise
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
