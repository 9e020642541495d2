#!/usr/bin/env python3
"""The HTTP server the net.fetch tests talk to. Loopback only.

Listens on 127.0.0.1 (and, when it can, 127.0.0.2) on ephemeral ports, prints one JSON line
{"port": N, "port2": M or null} once it listens, and exits when its stdin closes (the test
holds the other end, so a crashed test never leaves a server behind).

Routes (any listener):
  /ok                      200 "ok\n"
  /big?n=N[&chunked=1]     N bytes of "a" (with Content-Length, or chunked without it)
  /binary                  the 256 byte values
  /slow?ms=M               waits M ms, then 200 "slow\n"
  /redirect?to=URL[&status=302]   a redirect to URL
  /loop                    a redirect to itself
  /headers                 the request headers as JSON
  /echo                    any method: {"method", "path", "headers", "body"} as JSON
  /stats                   {"127.0.0.1": connections accepted, "127.0.0.2": ...}
"""
import json
import os
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

CONNECTIONS = {}
LOCK = threading.Lock()


class CountingServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # Clients that hang up early (a capped body, a TLS hello to plain HTTP) are expected.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    def get_request(self):
        request = super().get_request()
        with LOCK:
            CONNECTIONS[self.server_address[0]] = CONNECTIONS.get(self.server_address[0], 0) + 1
        return request


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, content_type="text/plain", extra=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def route(self):
        url = urlparse(self.path)
        query = parse_qs(url.query)
        body = self.read_body()
        if url.path == "/ok":
            return self.send(200, "ok\n")
        if url.path == "/big":
            n = int(query.get("n", ["0"])[0])
            if query.get("chunked"):
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"a" * 65536
                sent = 0
                try:
                    while sent < n:
                        part = chunk[: min(len(chunk), n - sent)]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                        sent += len(part)
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return
            try:
                return self.send(200, b"a" * n)
            except (BrokenPipeError, ConnectionResetError):
                return
        if url.path == "/binary":
            return self.send(200, bytes(range(256)), "application/octet-stream")
        if url.path == "/slow":
            time.sleep(int(query.get("ms", ["1000"])[0]) / 1000)
            try:
                return self.send(200, "slow\n")
            except (BrokenPipeError, ConnectionResetError):
                return
        if url.path == "/redirect":
            status = int(query.get("status", ["302"])[0])
            return self.send(status, "", extra=[("Location", query.get("to", ["/ok"])[0])])
        if url.path == "/loop":
            return self.send(302, "", extra=[("Location", "/loop")])
        if url.path == "/headers":
            return self.send(200, json.dumps({k.lower(): v for k, v in self.headers.items()}), "application/json")
        if url.path == "/echo":
            return self.send(200, json.dumps({
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }), "application/json")
        if url.path == "/stats":
            with LOCK:
                return self.send(200, json.dumps(CONNECTIONS), "application/json")
        return self.send(404, "no route %s\n" % url.path)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = route


def serve(host):
    try:
        server = CountingServer((host, 0), Handler)
    except OSError:
        return None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def main():
    port = serve("127.0.0.1")
    port2 = serve("127.0.0.2")
    print(json.dumps({"port": port, "port2": port2}), flush=True)
    sys.stdin.read()  # until the test closes it
    os._exit(0)


if __name__ == "__main__":
    main()
