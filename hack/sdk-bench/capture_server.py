#!/usr/bin/env python3
"""Tiny loopback-only HTTP stand-in for the quota APIs, to smoke-test python_fetch.py.

It is NOT the simulator: it checks nothing (no signature verification), answers every quota
route with a fixed body in the shape the SDK models expect, and logs every request (method,
target, headers in arrival order, body) as one JSON line to --log (default stderr).

    python hack/sdk-bench/capture_server.py --port 0 --max-requests 50 --timeout 60
    # prints "listening on 127.0.0.1:PORT" on stdout; stops by itself after --max-requests
    # requests or --timeout seconds, whichever comes first.
"""

import argparse
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

IMS = {"quotas": {"resources": [{"type": "image", "used": 3, "quota": 100, "min": 1, "max": 1000}]}}
DWS = {"quotas": {"resources": [{"type": "instances", "used": 1, "quota": 10, "unit": "count"},
                                {"type": "disk_capacity", "used": 200, "quota": 1000, "unit": "GB"}]}}


def evs(project_id):
    detail = {"in_use": 1, "limit": 50, "reserved": 0}
    return {"quota_set": {"id": project_id, "volumes": detail, "gigabytes": detail,
                          "snapshots": detail, "backups": detail, "backup_gigabytes": detail,
                          "per_volume_gigabytes": {"in_use": 0, "limit": 32768, "reserved": 0},
                          "volumes_SSD": detail, "gigabytes_SSD": detail, "snapshots_SSD": detail}}


ZL = {"requestId": "T0000000-0000-0000-0000-000000000001",
      "response": {"requestId": "T0000000-0000-0000-0000-000000000001",
                   "images": [{"zoneId": "asia-east-1a", "count": 1, "maxCount": 5},
                              {"zoneId": "na-west-1a", "count": 0, "maxCount": 5}]}}


def route(method, path):
    path = path.split("?", 1)[0]
    if method == "GET" and path == "/v1/cloudimages/quota":
        return 200, IMS
    if method == "GET" and re.fullmatch(r"/v1\.0/[^/]+/quotas", path):
        return 200, DWS
    m = re.fullmatch(r"/v2/[^/]+/os-quota-sets/([^/]+)", path)
    if method == "GET" and m:
        return 200, evs(m.group(1))
    if method == "POST" and path.startswith("/api/v2/"):
        return 200, ZL
    return 404, {"error_code": "CAPTURE.404", "error_msg": "no such route in capture_server"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--max-requests", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--log", default="-")
    args = ap.parse_args()

    log = sys.stderr if args.log == "-" else open(args.log, "a", encoding="utf-8")
    lock = threading.Lock()
    count = {"n": 0}
    done = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # one buffered write per response and no Nagle: otherwise keep-alive clients (the
        # Huawei SDK keeps its connection) wait ~40 ms per request on delayed ACKs
        wbufsize = -1
        disable_nagle_algorithm = True

        def log_message(self, *a):  # silence the default access log
            pass

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, payload = route(self.command, self.path)
            with lock:
                count["n"] += 1
                log.write(json.dumps({"method": self.command, "target": self.path,
                                      "headers": [[k, v] for k, v in self.headers.items()],
                                      "body": body.decode("utf-8", "replace")},
                                     ensure_ascii=False) + "\n")
                log.flush()
                if count["n"] >= args.max_requests:
                    done.set()
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Request-Id", "capture-%d" % count["n"])
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    done.wait(args.timeout)
    server.shutdown()


if __name__ == "__main__":
    main()
