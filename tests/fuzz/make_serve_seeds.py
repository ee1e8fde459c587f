#!/usr/bin/python3
"""Writes the serve_request fuzz target's seeds (tests/fuzz/corpus/serve_request/):
valid uploads of a tiny JPEG (tests/data/astronaut.png at 96 px) to both
endpoints, bad multipart, truncated bodies and odd requests. The first byte of
each seed picks the framing (see fuzz_serve_request.cpp). Run once; the files
are kept in git. Usage: make_serve_seeds.py ASTRONAUT_PNG OUT_DIR"""
import io
import os
import sys

from PIL import Image

png, out = sys.argv[1], sys.argv[2]
buf = io.BytesIO()
Image.open(png).convert("RGB").resize((96, 96)).save(buf, "JPEG", quality=70)
jpeg = buf.getvalue()
B = b"fuzzboundary"


def part(data, name=b"file", filename=b"face.jpg", ctype=b"image/jpeg"):
    return (b"--" + B + b"\r\nContent-Disposition: form-data; name=\"" + name + b"\"; filename=\"" + filename +
            b"\"\r\nContent-Type: " + ctype + b"\r\n\r\n" + data + b"\r\n")


upload = part(jpeg) + b"--" + B + b"--\r\n"


def raw_post(body, ctype=b"multipart/form-data; boundary=" + B, length=None):
    n = len(body) if length is None else length
    return (b"Host: 127.0.0.1\r\nContent-Type: " + ctype + b"\r\nContent-Length: " + str(n).encode() +
            b"\r\n\r\n" + body)


seeds = {
    "predict_media_jpeg": b"\x00" + upload,
    "analyze_jpeg": b"\x01" + upload,
    "analyze_html_jpeg": b"\x02" + upload,
    "predict_media_two_parts": b"\x00" + part(b"x", name=b"other") + upload,
    "predict_media_no_file_field": b"\x00" + part(jpeg, name=b"image") + b"--" + B + b"--\r\n",
    "predict_media_not_an_image": b"\x00" + part(b"just text", filename=b"a.txt", ctype=b"text/plain") + b"--" + B + b"--\r\n",
    "predict_media_truncated_jpeg": b"\x00" + part(jpeg[: len(jpeg) // 2]) + b"--" + B + b"--\r\n",
    "analyze_no_closing_boundary": b"\x01" + part(jpeg),
    "analyze_bad_multipart": b"\x01--wrong\r\n\r\n\r\n--",
    "raw_predict_truncated_body": b"\x03" + raw_post(upload[:300], length=len(upload)),
    "raw_analyze_no_boundary": b"\x04" + raw_post(upload, ctype=b"multipart/form-data"),
    "raw_analyze_chunked": b"\x04Host: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=fuzzboundary\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n40\r\n" + upload[:64] + b"\r\n0\r\n\r\n",
    "raw_predict_huge_length": b"\x03" + raw_post(b"", length=1 << 40),
    "healthz": b"\x05Host: 127.0.0.1\r\n\r\n",
    "index": b"\x06Host: 127.0.0.1\r\n\r\n",
    "raw_whole_request": b"\x07POST /api/v1/analyze?format=json HTTP/1.0\r\n" + raw_post(upload),
    "raw_garbage_request_line": b"\x07\x00\xff GET / HTTP/9.9\r\n\r\n",
    # The result history (the harness gives the server an SQLite history).
    "history_list": b"\x07GET /api/v1/scans?verdict=FAKE&limit=5&offset=0&since=2026-01-01T00:00:00Z"
                    b"&until=2027-01-01T00:00:00Z HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "history_list_bad_query": b"\x07GET /api/v1/scans?limit=-1&offset=99999999999999999999&verdict=%00 HTTP/1.1\r\n"
                              b"Host: 127.0.0.1\r\n\r\n",
    "history_get": b"\x07GET /api/v1/scans/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "history_delete": b"\x07DELETE /api/v1/scans/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "jobs_without_redis": b"\x07GET /api/v1/jobs/0-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
}
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds, JPEG {len(jpeg)} bytes")
