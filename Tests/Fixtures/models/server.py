#!/usr/bin/env python3
"""A fake model server for the cpu driver tests: the OpenAI Chat Completions protocol and
the Anthropic Messages protocol, on 127.0.0.1 (an ephemeral port). Python stdlib only.

Prints one JSON line {"port": N} once it listens; exits when stdin closes.

  server.py --key KEY [--no-tokenize]

The reply depends on "scenario:NAME" in the last user message:
  (none)          text "Hello from the fake model."
  tool            one tool call of the first tool, {"a": 1, "b": 2}
  parallel        two tool calls: the first tool {"a": 1, "b": 2}, the last {"a": 3, "b": 4}
  badargs         a tool call whose arguments are not JSON
  500             HTTP 500 every time
  429             HTTP 429 with Retry-After: 1 the first time this exact message is seen, then text
  429forever      HTTP 429 with Retry-After: 1 every time
  429date         like 429, with Retry-After as an HTTP date (one second from now)
  slow            the answer after 3 s (streaming: one piece, then 3 s of silence)
  drop            streaming: two pieces, then the connection is closed mid-response
  forever         streaming: a piece every 50 ms for 10 s; a client that hangs up is counted in
                  /stats "closed" under the message
  notools         HTTP 400 "tools are not supported" when the request has tools
  constrained-bad with response_format: invalid arguments first, valid ones after the repair
  constrained-answer  with response_format: {"answer": "42"}
Wrong key: 401 (the OpenAI one quotes the key it got, as OpenAI's does, to test redaction).
Model other than test-model / claude-test: 404 model not found.
GET /stats: {"requests": {message: count}, "closed": {message: count}}.
"""
import email.utils
import json
import re
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = None
TOKENIZE = True
COUNTS = {}
CLOSED = {}
LOCK = threading.Lock()
TEXT = "Hello from the fake model."


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # 100 clients connecting at once (the scheduler benchmark) overflow the default backlog
    # of 5, and the kernel then drops SYNs that are retried only after a second.
    request_queue_size = 256

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def last_user_text(messages):
    for m in reversed(messages):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, list):
                return " ".join(b.get("text", "") or str(b.get("content", "")) for b in c if isinstance(b, dict))
            return c or ""
    return ""


def scenario_of(messages):
    for m in messages:
        c = m.get("content")
        text = c if isinstance(c, str) else json.dumps(c)
        found = re.search(r"scenario:([a-z0-9-]+)", text or "")
        if found:
            return found.group(1)
    return ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    # -- plumbing

    def send_json(self, status, value, extra=()):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def start_sse(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunks(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def drop(self):
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(2)
        except OSError:
            pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return {}

    def do_GET(self):
        if self.path == "/stats":
            with LOCK:
                return self.send_json(200, {"requests": dict(COUNTS), "closed": dict(CLOSED)})
        if self.path == "/props":
            return self.send_json(200, {"default_generation_settings": {"n_ctx": 4096}})
        self.send_json(404, {"error": {"message": "File Not Found", "code": 404}})

    def do_POST(self):
        req = self.body()
        path = self.path
        if path == "/tokenize" and TOKENIZE:
            return self.send_json(200, {"tokens": list(range(len(req.get("content", "").split())))})
        if path == "/apply-template" and TOKENIZE:
            text = "\n".join("%s: %s" % (m.get("role"), m.get("content")) for m in req.get("messages", []))
            return self.send_json(200, {"prompt": text})
        if path == "/v1/chat/completions":
            return self.openai(req)
        if path == "/v1/embeddings":
            return self.embeddings(req)
        if path == "/v1/messages":
            return self.anthropic(req)
        if path == "/v1/messages/count_tokens":
            if self.headers.get("x-api-key") != KEY:
                return self.send_json(401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
            words = sum(len(str(m.get("content", "")).split()) for m in req.get("messages", []))
            return self.send_json(200, {"input_tokens": words + 3})
        self.send_json(404, {"error": {"message": "File Not Found", "code": 404}})

    # -- shared scenario logic

    def common(self, req, messages, error):
        """Returns (scenario, handled) after the scenarios that answer with an error status."""
        text = last_user_text(messages)
        with LOCK:
            COUNTS[text] = COUNTS.get(text, 0) + 1
            count = COUNTS[text]
        s = scenario_of(messages)
        if s == "500":
            self.send_json(500, error("internal failure in the fake model"))
            return s, True
        if s == "429forever" or (s == "429" and count == 1):
            self.send_json(429, error("rate limited: slow down"), extra=[("Retry-After", "1")])
            return s, True
        if s == "429date" and count == 1:
            when = email.utils.formatdate(time.time() + 1, usegmt=True)
            self.send_json(429, error("rate limited: slow down"), extra=[("Retry-After", when)])
            return s, True
        if s == "notools" and req.get("tools"):
            self.send_json(400, error("tools are not supported by this model"))
            return s, True
        return s, False

    # -- OpenAI

    def openai(self, req):
        auth = self.headers.get("Authorization", "")
        if auth != "Bearer %s" % KEY:
            got = auth[len("Bearer "):] if auth.startswith("Bearer ") else auth
            return self.send_json(401, {"error": {"message": "Incorrect API key provided: %s. You can find your API key at https://example.invalid." % got,
                                                  "type": "invalid_request_error", "code": "invalid_api_key"}})
        model = req.get("model")
        if model != "test-model":
            return self.send_json(404, {"error": {"message": "The model `%s` does not exist or you do not have access to it." % model,
                                                  "type": "invalid_request_error", "code": "model_not_found"}})
        messages = req.get("messages", [])
        s, handled = self.common(req, messages, lambda m: {"error": {"message": m, "type": "server_error"}})
        if handled:
            return
        tools = [t["function"]["name"] for t in req.get("tools") or []]
        calls = []
        content = TEXT
        if s == "tool" and tools:
            calls = [("call_1", tools[0], json.dumps({"a": 1, "b": 2}))]
        elif s == "parallel" and tools:
            calls = [("call_1", tools[0], json.dumps({"a": 1, "b": 2})), ("call_2", tools[-1], json.dumps({"a": 3, "b": 4}))]
        elif s == "badargs" and tools:
            calls = [("call_1", tools[0], "{not json")]
        elif req.get("response_format"):
            schema = req["response_format"].get("json_schema", {}).get("schema", {})
            options = schema.get("oneOf", [schema])
            name = next((o["properties"]["tool"]["const"] for o in options if "tool" in o.get("properties", {})), None)
            repaired = any("That reply is not valid" in str(m.get("content")) for m in messages)
            if s == "constrained-answer" or name is None:
                content = json.dumps({"answer": "42"})
            elif s == "constrained-bad" and not repaired:
                content = json.dumps({"tool": name, "arguments": {"a": "x"}})
            else:
                content = json.dumps({"tool": name, "arguments": {"a": 1, "b": 2}})
        if calls:
            content = None
        finish = "tool_calls" if calls else "stop"
        usage = {"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16}
        if not req.get("stream"):
            if s == "slow":
                time.sleep(3)
            message = {"role": "assistant", "content": content}
            if calls:
                message["tool_calls"] = [{"id": i, "type": "function", "function": {"name": n, "arguments": a}} for i, n, a in calls]
            return self.send_json(200, {"id": "chatcmpl-1", "object": "chat.completion", "model": "test-model",
                                        "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage})
        self.start_sse()
        if s == "forever":
            try:
                for _ in range(200):
                    self.chunk("data: %s\n\n" % json.dumps({"choices": [{"index": 0, "delta": {"content": "."}}]}))
                    time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                with LOCK:
                    text = last_user_text(messages)
                    CLOSED[text] = CLOSED.get(text, 0) + 1
            return self.drop()

        def event(delta, finish_reason=None):
            chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "test-model",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
            self.chunk("data: %s\n\n" % json.dumps(chunk))

        event({"role": "assistant"})
        if calls:
            for index, (i, n, a) in enumerate(calls):
                event({"tool_calls": [{"index": index, "id": i, "type": "function", "function": {"name": n, "arguments": ""}}]})
                half = len(a) // 2
                event({"tool_calls": [{"index": index, "function": {"arguments": a[:half]}}]})
                event({"tool_calls": [{"index": index, "function": {"arguments": a[half:]}}]})
        else:
            pieces = re.findall(r"\S+\s*", content)
            for k, piece in enumerate(pieces):
                event({"content": piece})
                if s == "drop" and k == 1:
                    return self.drop()
                if s == "slow" and k == 0:
                    time.sleep(3)
        event({}, finish)
        self.chunk("data: %s\n\n" % json.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "test-model", "choices": [], "usage": usage}))
        self.chunk("data: [DONE]\n\n")
        self.end_chunks()

    def embeddings(self, req):
        if self.headers.get("Authorization", "") != "Bearer %s" % KEY:
            return self.send_json(401, {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}})
        if req.get("model") not in ("test-model", "test-embed"):
            return self.send_json(404, {"error": {"message": "The model `%s` does not exist" % req.get("model"), "code": "model_not_found"}})
        data = [{"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.5, 0.25]} for i, t in enumerate(req.get("input", []))]
        data.reverse()  # out of order on purpose: the driver sorts by index
        self.send_json(200, {"object": "list", "model": req.get("model"), "data": data})

    # -- Anthropic

    def anthropic(self, req):
        err = lambda kind, m: {"type": "error", "error": {"type": kind, "message": m}}
        if self.headers.get("x-api-key") != KEY:
            return self.send_json(401, err("authentication_error", "invalid x-api-key"))
        if not self.headers.get("anthropic-version"):
            return self.send_json(400, err("invalid_request_error", "anthropic-version header is required"))
        model = req.get("model")
        if model != "claude-test":
            return self.send_json(404, err("not_found_error", "model: %s" % model))
        if not isinstance(req.get("max_tokens"), int):
            return self.send_json(400, err("invalid_request_error", "max_tokens: Field required"))
        messages = req.get("messages", [])
        for m in messages:
            if m.get("role") not in ("user", "assistant"):
                return self.send_json(400, err("invalid_request_error", "messages: roles must be user or assistant"))
        s, handled = self.common(req, messages, lambda m: err("api_error" if "internal" in m else "rate_limit_error", m))
        if handled:
            return
        tools = [t["name"] for t in req.get("tools") or []]
        blocks = []
        if s == "tool" and tools:
            blocks = [{"type": "text", "text": "Let me call it."}, {"type": "tool_use", "id": "toolu_1", "name": tools[0], "input": {"a": 1, "b": 2}}]
        elif s == "parallel" and tools:
            blocks = [{"type": "tool_use", "id": "toolu_1", "name": tools[0], "input": {"a": 1, "b": 2}},
                      {"type": "tool_use", "id": "toolu_2", "name": tools[-1], "input": {"a": 3, "b": 4}}]
        else:
            blocks = [{"type": "text", "text": TEXT}]
        stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
        if not req.get("stream"):
            if s == "slow":
                time.sleep(3)
            return self.send_json(200, {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
                                        "content": blocks, "stop_reason": stop, "usage": {"input_tokens": 12, "output_tokens": 7}})
        self.start_sse()

        def event(kind, data):
            data["type"] = kind
            self.chunk("event: %s\ndata: %s\n\n" % (kind, json.dumps(data)))

        event("message_start", {"message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
                                            "content": [], "usage": {"input_tokens": 12, "output_tokens": 1}}})
        event("ping", {})
        for index, b in enumerate(blocks):
            if b["type"] == "text":
                event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
                for k, piece in enumerate(re.findall(r"\S+\s*", b["text"])):
                    event("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": piece}})
                    if s == "drop" and k == 1:
                        return self.drop()
                    if s == "slow" and k == 0:
                        time.sleep(3)
            else:
                event("content_block_start", {"index": index, "content_block": {"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}})
                a = json.dumps(b["input"])
                half = len(a) // 2
                event("content_block_delta", {"index": index, "delta": {"type": "input_json_delta", "partial_json": a[:half]}})
                event("content_block_delta", {"index": index, "delta": {"type": "input_json_delta", "partial_json": a[half:]}})
            event("content_block_stop", {"index": index})
        event("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 7}})
        event("message_stop", {})
        self.end_chunks()


def main():
    global KEY, TOKENIZE
    args = sys.argv[1:]
    if "--key" in args:
        KEY = args[args.index("--key") + 1]
    if "--no-tokenize" in args:
        TOKENIZE = False
    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
