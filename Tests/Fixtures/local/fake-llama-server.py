#!/usr/bin/env python3
"""A stand-in for llama.cpp's llama-server, for the local driver's supervision tests.

Takes llama-server's arguments (--model M --host H --port P, the rest ignored) plus:
  --fake-dir DIR     where it leaves traces:
                       DIR/started           one line per start: the pid
                       DIR/inflight-PID      written when a "hang" request arrives (then it
                                             waits 60 s, long enough to be killed mid-request);
                                             only the first such request in DIR hangs
  --fake-fail-start  print an error like llama-server's and exit 1 before listening

Answers GET /health (503 for the first 0.1 s, as while a model loads, then 200),
POST /v1/chat/completions (JSON or server-sent events; the reply names the server's pid),
POST /tokenize and POST /v1/embeddings. Python standard library only.
"""
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = sys.argv[1:]


def arg(name, default=None):
    return args[args.index(name) + 1] if name in args else default


FAKE_DIR = arg("--fake-dir")
STARTED = time.monotonic()

if "--fake-fail-start" in args:
    print("llama_model_load: error loading model: fake failure for the tests", file=sys.stderr, flush=True)
    sys.exit(1)

if FAKE_DIR:
    with open(os.path.join(FAKE_DIR, "started"), "a") as f:
        f.write(f"{os.getpid()}\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            if time.monotonic() - STARTED < 0.1:
                return self.reply(503, {"error": {"message": "Loading model", "code": 503}})
            return self.reply(200, {"status": "ok"})
        if self.path == "/props":
            return self.reply(200, {"default_generation_settings": {"n_ctx": 4096}})
        self.reply(404, {"error": {"message": "not found", "code": 404}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/tokenize":
            return self.reply(200, {"tokens": list(range(len(body.get("content", "").split())))})
        if self.path == "/apply-template":
            return self.reply(200, {"prompt": " ".join(m.get("content") or "" for m in body.get("messages", []))})
        if self.path == "/v1/embeddings":
            inputs = body.get("input", [])
            return self.reply(200, {"model": "fake", "data": [{"index": i, "embedding": [0.1, 0.2, 0.3]} for i, _ in enumerate(inputs)]})
        if self.path != "/v1/chat/completions":
            return self.reply(404, {"error": {"message": "not found", "code": 404}})
        last = ""
        for m in body.get("messages", []):
            if m.get("role") == "user":
                last = m.get("content") or ""
        if "hang" in last and FAKE_DIR:
            marker = os.path.join(FAKE_DIR, "hung")
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.close(fd)
                with open(os.path.join(FAKE_DIR, f"inflight-{os.getpid()}"), "w") as f:
                    f.write(str(os.getpid()))
                time.sleep(60)
            except FileExistsError:
                pass
        text = f"fake reply from pid {os.getpid()}"
        usage = {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
        if not body.get("stream"):
            return self.reply(200, {"id": "chatcmpl-fake", "object": "chat.completion", "model": "fake",
                                    "choices": [{"index": 0, "finish_reason": "stop",
                                                 "message": {"role": "assistant", "content": text}}],
                                    "usage": usage})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for word in text.split(" "):
            chunk = {"choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage}
        self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
        self.wfile.flush()
        self.close_connection = True


server = ThreadingHTTPServer((arg("--host", "127.0.0.1"), int(arg("--port", "8080"))), Handler)
server.daemon_threads = True
print(f"main: server is listening on http://{server.server_address[0]}:{server.server_address[1]}", file=sys.stderr, flush=True)
server.serve_forever()
