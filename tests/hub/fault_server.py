#!/usr/bin/env python3
"""fault_server.py ROOT PORTFILE LOGFILE — the hub tests' HTTP server with
faults on demand (Python standard library only; run with /usr/bin/python3).

Serves files under ROOT at /f/SPEC/PATH with Range, If-Range, ETag and
Last-Modified like a real server, where SPEC is "-" (no fault) or a
comma-separated list of faults; a fault given as NAME=VALUE:N hits only the
first N requests for that URL (default 1):
  drop=BYTES[:N]     send BYTES of the body, then cut the connection
  status=CODE[:N]    answer CODE (e.g. 500, 503, 429) instead
  retry_after=SECS   with status: send Retry-After
  slow=BYTES_PER_S   throttle the whole body (every request)
  stall=BYTES        send BYTES, then stop sending (every request)
  norange            ignore Range and If-Range, no Accept-Ranges
  corrupt            flip one byte in the middle of the body
PUT /put/NAME stores the body under ROOT/uploads/NAME and answers 400 when
the X-Checksum-Sha256 header does not match it. Each request is logged to
LOGFILE as one JSON line: method, path, range, if_range, status, sent
(body bytes written), auth (whether an Authorization header came). The
chosen port is written to PORTFILE once the server listens.
"""
import hashlib
import http.server
import json
import os
import sys
import threading
import time
from email.utils import formatdate

ROOT, PORTFILE, LOGFILE = sys.argv[1], sys.argv[2], sys.argv[3]
counts = {}
lock = threading.Lock()


def log(entry):
    entry["t"] = round(time.time(), 3)
    with lock:
        with open(LOGFILE, "a") as f:
            f.write(json.dumps(entry) + "\n")


def parse_spec(spec):
    faults = {}
    if spec in ("", "-"):
        return faults
    for part in spec.split(","):
        name, _, value = part.partition("=")
        times = None
        if ":" in value:
            value, t = value.split(":", 1)
            times = int(t)
        faults[name] = (value, times)
    return faults


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def hit(self, key):
        with lock:
            counts[key] = counts.get(key, 0) + 1
            return counts[key]

    def active(self, faults, name, n):
        if name not in faults:
            return None
        value, times = faults[name]
        if times is None:
            times = 1 if name in ("drop", "status") else 10 ** 9
        return value if n <= times else None

    def entry(self, status, sent, extra=None):
        e = {"method": self.command, "path": self.path, "range": self.headers.get("Range"),
             "if_range": self.headers.get("If-Range"), "status": status, "sent": sent,
             "auth": self.headers.get("Authorization") is not None}
        if extra:
            e.update(extra)
        log(e)

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        parts = self.path.split("?")[0].split("/", 3)
        if len(parts) < 4 or parts[1] != "f":
            return self.plain(404, head)
        spec, rel = parts[2], parts[3]
        faults = parse_spec(spec)
        n = self.hit(self.path)
        path = os.path.join(ROOT, rel)
        if not os.path.isfile(path):
            return self.plain(404, head)
        status = self.active(faults, "status", n)
        if status:
            extra = {}
            if "retry_after" in faults:
                extra["Retry-After"] = faults["retry_after"][0]
            return self.plain(int(status), head, extra)
        st = os.stat(path)
        size = st.st_size
        etag = '"%x-%x"' % (st.st_mtime_ns, size)
        lastmod = formatdate(st.st_mtime, usegmt=True)
        start, end = 0, size - 1
        code = 200
        rng = self.headers.get("Range")
        if rng and "norange" not in faults:
            if_range = self.headers.get("If-Range")
            if if_range is None or if_range == etag or if_range == lastmod:
                a, _, b = rng.replace("bytes=", "").partition("-")
                start = int(a)
                end = int(b) if b else size - 1
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */%d" % size)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self.entry(416, 0)
                    return
                code = 206
        self.send_response(code)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Content-Type", "application/octet-stream")
        if "norange" not in faults:
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", lastmod)
        if code == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.end_headers()
        if head:
            self.entry(code, 0)
            return
        drop = self.active(faults, "drop", n)
        stall = self.active(faults, "stall", n)
        slow = self.active(faults, "slow", n)
        corrupt = "corrupt" in faults
        limit = end - start + 1
        if drop is not None:
            limit = min(limit, int(drop))
        if stall is not None:
            limit = min(limit, int(stall))
        sent = 0
        try:
            with open(path, "rb") as f:
                f.seek(start)
                t0 = time.time()
                while sent < limit:
                    chunk = f.read(min(65536, limit - sent))
                    if not chunk:
                        break
                    if corrupt and start + sent <= size // 2 < start + sent + len(chunk):
                        i = size // 2 - start - sent
                        chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
                    self.wfile.write(chunk)
                    sent += len(chunk)
                    if slow:
                        ahead = sent / float(slow) - (time.time() - t0)
                        if ahead > 0:
                            time.sleep(ahead)
                self.wfile.flush()
                if stall is not None and sent < end - start + 1:
                    t1 = time.time()
                    while time.time() - t1 < 60:
                        time.sleep(0.2)
                        try:
                            self.wfile.write(b"")
                            self.wfile.flush()
                        except OSError:
                            break
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.entry(code, sent, {"dropped": sent < end - start + 1})
        if sent < end - start + 1:
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass

    def do_PUT(self):
        parts = self.path.split("/", 2)
        if len(parts) < 3 or parts[1] != "put":
            return self.plain(404, False)
        n = self.hit(self.path)
        length = int(self.headers.get("Content-Length", "0"))
        if self.headers.get("Expect", "").lower() == "100-continue":
            self.send_response_only(100)
            self.end_headers()
        body = self.rfile.read(length)
        spec = parse_spec(self.headers.get("X-Test-Fault", "-"))
        status = self.active(spec, "status", n)
        if status:
            return self.plain(int(status), False)
        want = self.headers.get("X-Checksum-Sha256")
        got = hashlib.sha256(body).hexdigest()
        if want != got:
            self.plain(400, False, {}, {"checksum_ok": False})
            return
        os.makedirs(os.path.join(ROOT, "uploads"), exist_ok=True)
        with open(os.path.join(ROOT, "uploads", os.path.basename(parts[2])), "wb") as f:
            f.write(body)
        self.plain(201, False, {}, {"checksum_ok": True, "digest": self.headers.get("Digest")})

    def plain(self, code, head, headers=None, extra=None):
        body = ("%d\n" % code).encode()
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
        self.entry(code, 0, extra)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    with open(PORTFILE + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(PORTFILE + ".tmp", PORTFILE)
    srv.serve_forever()


if __name__ == "__main__":
    main()
