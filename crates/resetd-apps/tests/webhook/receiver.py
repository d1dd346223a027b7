#!/usr/bin/env python3
"""A credential receiver for resetd-apps' webhook tests, independent of resetd's code: it checks
each delivery with the reference Standard Webhooks library (`standardwebhooks` from PyPI) and the
password hash with argon2-cffi and bcrypt.

Prints `PORT <n>` once it listens on 127.0.0.1 (a free port). The signing secret comes in the
WEBHOOK_SECRET environment variable. Endpoints:

- POST /hook             a delivery: 401 "invalid signature" unless it verifies, else the mode's answer
- POST /control/mode     {"status": 204, "body": "", "content_type": "text/plain", "delay": 0}
- GET  /control/received every request to /hook: {"headers", "body", "verified"}
- POST /control/check    {"hash", "password"} -> {"ok": bool} (argon2id or bcrypt, by the hash)

Exits with 3 and a message on stderr when a library is missing.
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    import argon2
    import bcrypt
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError as e:  # the test turns this into a skip, or a failure under CI=true
    print(f"missing Python module: {e.name}", file=sys.stderr, flush=True)
    sys.exit(3)

WEBHOOK = Webhook(os.environ["WEBHOOK_SECRET"])
LOCK = threading.Lock()
MODE = {"status": 204, "body": "", "content_type": "text/plain", "delay": 0}
RECEIVED = []


def check(phc, password):
    try:
        if phc.startswith("$argon2"):
            return argon2.PasswordHasher().verify(phc, password)
        if phc.startswith("$2"):
            return bcrypt.checkpw(password.encode(), phc.encode())
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError, ValueError):
        return False
    return False


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", content_type="application/json"):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def do_GET(self):
        if self.path == "/control/received":
            with LOCK:
                self.answer(200, json.dumps(RECEIVED).encode())
        else:
            self.answer(404)

    def do_POST(self):
        raw = self.body()
        if self.path == "/control/mode":
            with LOCK:
                MODE.clear()
                MODE.update({"status": 204, "body": "", "content_type": "text/plain", "delay": 0})
                MODE.update(json.loads(raw))
            self.answer(204)
        elif self.path == "/control/check":
            req = json.loads(raw)
            self.answer(200, json.dumps({"ok": check(req["hash"], req["password"])}).encode())
        elif self.path == "/hook":
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                WEBHOOK.verify(raw, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
            with LOCK:
                RECEIVED.append({"headers": headers, "body": raw.decode(), "verified": verified})
                mode = dict(MODE)
            if not verified:
                self.answer(401, b"invalid signature", "text/plain")
                return
            if mode["delay"]:
                time.sleep(mode["delay"])
            self.answer(mode["status"], mode["body"].encode(), mode["content_type"])
        else:
            self.answer(404)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"PORT {server.server_address[1]}", flush=True)
server.serve_forever()
