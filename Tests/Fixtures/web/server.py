#!/usr/bin/env python3
"""A local stand-in for a SearXNG instance (its JSON API), plus HTML pages for the
http driver's tests. Loopback only.

Listens on 127.0.0.1 on an ephemeral port, prints {"port": N} once it listens, and
exits when its stdin closes (the test holds the other end).

Routes:
  /search?q=Q&format=json[&pageno=P&language=L&categories=C&time_range=T&safesearch=S]
        SearXNG's JSON answer: {"query", "number_of_results", "results": [{"url", "title",
        "content", "engine", "engines", "score", "category", "publishedDate"?}], "answers",
        "suggestions", "corrections", "infoboxes", "unresponsive_engines"}.
        Q "nothing" gives no results; Q "many" gives 30. Without format=json: 403, as a
        SearXNG whose JSON format is not enabled answers.
  /html/search  an HTML page where JSON was expected (a misconfigured endpoint)
  /last         the last /search request as {"path", "query": {k: v}, "headers": {...}}
  /page.html    an HTML page with a title, script, style, entities, a list and links
"""
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LAST = {}
LOCK = threading.Lock()

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Caf&eacute; &amp; Books</title>
<style>body { color: red }</style>
<script>document.write("<p>not text</p>")</script></head>
<body>
<nav><a href="/">Home</a> | <a href="#top">Top</a></nav>
<h1>Opening   hours</h1>
<p>We open at <b>9&nbsp;am</b> &mdash; see the <a href="/hours?day=mon&amp;lang=en">full schedule</a>.</p>
<ul><li>Coffee &lt;3</li><li>Tea &#x2615;</li></ul>
<noscript>enable scripts</noscript>
<p>Write to <a href="mailto:hello@example.org">us</a>.</p>
</body></html>
"""


def results_for(query, page):
    if query == "nothing":
        return []
    count = 30 if query == "many" else 3
    base = (page - 1) * count
    out = []
    for i in range(count):
        n = base + i + 1
        item = {
            "url": "https://example.org/%s/%d" % (query.replace(" ", "-"), n),
            "title": "Result %d for %s" % (n, query),
            "content": "A snippet about %s, number %d. <b>bold</b> &amp; plain" % (query, n),
            "engine": "duckduckgo",
            "engines": ["duckduckgo", "wikipedia"],
            "score": 1.0 / n,
            "category": "general",
            "positions": [n],
        }
        if i == 0:
            item["publishedDate"] = "2026-11-30T12:00:00"
        out.append(item)
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, content_type="application/json"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/search":
            with LOCK:
                LAST.clear()
                LAST.update({"path": self.path, "query": query,
                             "headers": {k.lower(): v for k, v in self.headers.items()}})
            if query.get("format") != "json":
                return self.send(403, "<html><body>403 Forbidden</body></html>", "text/html")
            q = query.get("q", "")
            page = int(query.get("pageno", "1"))
            results = results_for(q, page)
            return self.send(200, json.dumps({
                "query": q,
                "number_of_results": len(results) * 10,
                "results": results,
                "answers": [],
                "corrections": [],
                "infoboxes": [],
                "suggestions": ["%s tutorial" % q] if results else [],
                "unresponsive_engines": [["bing", "timeout"]],
            }))
        if url.path == "/html/search":
            return self.send(200, "<html><body>Welcome to my blog</body></html>", "text/html; charset=utf-8")
        if url.path == "/last":
            with LOCK:
                return self.send(200, json.dumps(LAST))
        if url.path == "/page.html":
            return self.send(200, PAGE, "text/html; charset=utf-8")
        return self.send(404, "no route %s\n" % url.path, "text/plain")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    main()
