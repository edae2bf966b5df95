#!/usr/bin/env python3
"""One service of the mesh demo (`./run.sh mesh-demo`): plain HTTP on
loopback, behind its ringway sidecar (examples/mesh/<name>.toml).

    app.py NAME LISTEN OUTBOUND
    app.py orders 127.0.0.1:24080 127.0.0.1:24001

GET /NAME/...       its own API (reached through its inbound sidecar):
                    answers JSON with the caller's identity, taken from the
                    X-Forwarded-Client-Cert header the sidecar added
GET /call/PEER/...  calls service PEER's API at /PEER/... through its OWN
                    outbound sidecar, by name (Host: PEER), and returns the
                    answer
GET /seen           what its API saw so far (asked on loopback directly)
"""

import http.client
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME, LISTEN, OUTBOUND = sys.argv[1], sys.argv[2], sys.argv[3]
seen = {"requests": 0, "callers": {}}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body are two writes

    def log_message(self, *args):
        pass

    def reply(self, status, doc):
        body = (json.dumps(doc, indent=2) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith(f"/{NAME}/"):
            xfcc = self.headers.get("X-Forwarded-Client-Cert", "")
            m = re.search(r"URI=([^;,]+)", xfcc)
            caller = m.group(1) if m else None
            with lock:
                seen["requests"] += 1
                key = caller or "(no identity)"
                seen["callers"][key] = seen["callers"].get(key, 0) + 1
            self.reply(200, {"service": NAME, "path": self.path,
                             "caller": caller, "xfcc": xfcc})
        elif self.path.startswith("/call/"):
            peer, _, rest = self.path[len("/call/"):].partition("/")
            host, port = OUTBOUND.rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=5)
            try:
                conn.request("GET", f"/{peer}/{rest}", headers={"Host": peer})
                resp = conn.getresponse()
                text = resp.read().decode(errors="replace")
                try:
                    answer = json.loads(text)
                except ValueError:
                    answer = text
                status = resp.status
            except OSError as e:
                status, answer = 0, f"{type(e).__name__}: {e}"
            finally:
                conn.close()
            self.reply(200 if status == 200 else 502,
                       {"service": NAME, "called": peer, "via": OUTBOUND,
                        "status": status, "answer": answer})
        elif self.path == "/seen":
            with lock:
                self.reply(200, dict(seen))
        else:
            self.reply(404, {"service": NAME, "error": "no such path"})


host, port = LISTEN.rsplit(":", 1)
server = ThreadingHTTPServer((host, int(port)), Handler)
server.daemon_threads = True
print(f"{NAME}: listening on {LISTEN}, outbound sidecar {OUTBOUND}", flush=True)
server.serve_forever()
