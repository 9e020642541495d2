"""llmos serve --mcp next to the reference MCP server, both driven by the official
`mcp` Python client (Tests/Fixtures/mcp/client.py --bench), in turns: over stdio, and
over streamable HTTP (llmos serve --http's /mcp against the reference server's
streamable-http transport).

    python bench.py --llmos PATH/TO/llmos [--calls N] [--warmup N] [--rounds N] [--no-http] [--markdown FILE]

Run it from the repository root (./manifests is on llmos's driver path) with the
interpreter of a venv that has Benchmarks/mcp-reference/requirements.txt installed.
Prints one JSON object on stdout:
    {"llmos": {...}, "llmos_audited": {...}, "reference": {...},
     "llmos_http": {...}, "reference_http": {...}, "rounds", "calls"}
where each side is the round with the median p50 of client.py's figures (p50_us,
p90_us, p99_us, mean_us, session_start_ms). Over HTTP the server is started once per
round and session_start_ms is the client's initialize (not the server's start-up).
Progress goes to stderr. With --markdown FILE (`make bench`: BENCHMARKS.md) it also writes
the table into FILE's mcp-serve section (between its llmos-bench:mcp-serve markers).
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLIENT = os.path.join(ROOT, "Tests", "Fixtures", "mcp", "client.py")
REFERENCE = os.path.join(ROOT, "Benchmarks", "mcp-reference", "server.py")


def measure(target, tool, arguments, calls, warmup):
    """target: a server command line (stdio), or {"url", "api_key"} (HTTP)."""
    if isinstance(target, dict):
        how = ["--http", target["url"]] + (["--api-key", target["api_key"]] if target.get("api_key") else [])
    else:
        how = ["--", *target]
    out = subprocess.run(
        [sys.executable, CLIENT, "--bench", str(calls), "--warmup", str(warmup), "--tool", tool,
         "--arguments", json.dumps(arguments), *how],
        check=True, stdout=subprocess.PIPE, cwd=ROOT,
    ).stdout
    return json.loads(out)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llmos_http(llmos, key):
    """llmos serve --http on a free port; (process, url) once it says it listens."""
    env = dict(os.environ, LLMOS_API_KEY=key)
    process = subprocess.Popen([llmos, "serve", "--http", "127.0.0.1:0", "--no-audit-log", "--tools", "calc.*"],
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, cwd=ROOT, env=env, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if found:
            return process, found.group(1) + "/mcp"
    process.kill()
    raise SystemExit("llmos serve --http did not start")


def start_reference_http():
    port = free_port()
    process = subprocess.Popen([sys.executable, REFERENCE, "--http", str(port)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"http://127.0.0.1:{port}/mcp"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the reference server did not start")


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llmos", required=True, help="the llmos executable")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-http", action="store_true", help="stdio only")
    parser.add_argument("--markdown", help="write the table into this file's mcp-serve section")
    args = parser.parse_args()
    audit_dir = tempfile.mkdtemp(prefix="llmos-mcp-bench-")
    sides = {
        "llmos": ([args.llmos, "serve", "--mcp", "--no-audit-log", "--tools", "calc.*"], "calc.add"),
        # The same with every call on the audit log (SQLite, hash-chained), as a default install runs.
        "llmos_audited": ([args.llmos, "serve", "--mcp", "--audit-log", os.path.join(audit_dir, "audit.sqlite3"),
                           "--tools", "calc.*"], "calc.add"),
        "reference": ([sys.executable, REFERENCE], "add"),
    }
    if not args.no_http:
        sides["llmos_http"] = ("llmos-http", "calc.add")
        sides["reference_http"] = ("reference-http", "add")
    key = "bench-" + os.urandom(12).hex()
    results = {name: [] for name in sides}
    for round_number in range(args.rounds):
        for name, (command, tool) in sides.items():
            print(f"round {round_number + 1}/{args.rounds}: {name}", file=sys.stderr)
            server = None
            if command == "llmos-http":
                server, url = start_llmos_http(args.llmos, key)
                target = {"url": url, "api_key": key}
            elif command == "reference-http":
                server, url = start_reference_http()
                target = {"url": url}
            else:
                target = command
            try:
                results[name].append(measure(target, tool, {"a": 40, "b": 2}, args.calls, args.warmup))
            finally:
                if server:
                    stop(server)
    summary = {"rounds": args.rounds, "calls": args.calls}
    for name, runs in results.items():
        runs.sort(key=lambda r: r["p50_us"])
        summary[name] = runs[len(runs) // 2]
        summary[name]["session_start_ms_all"] = sorted(r["session_start_ms"] for r in runs)
    print(json.dumps(summary))
    if args.markdown:
        write_markdown(args.markdown, summary, args.llmos)


ROWS = [
    ("llmos", "`llmos serve --mcp` (stdio), `calc.add`, no audit log"),
    ("llmos_audited", "`llmos serve --mcp` (stdio), `calc.add`, audit log on"),
    ("reference", "the reference Python server (stdio), `add`"),
    ("llmos_http", "`llmos serve --http` `/mcp` (streamable HTTP), `calc.add`, no audit log"),
    ("reference_http", "the reference Python server (streamable HTTP), `add`"),
]


def write_markdown(path, summary, llmos):
    def us(x):
        return f"{x / 1000:.1f} ms" if x >= 2000 else f"{x:.0f} µs"
    starts = lambda r: f"{min(r['session_start_ms_all']):.0f}–{max(r['session_start_ms_all']):.0f} ms"
    lines = [
        f"Measured {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} by `make bench` "
        f"(`Benchmarks/mcp-serve/bench.py --llmos {llmos} --calls {summary['calls']} --rounds {summary['rounds']}`): "
        "the official `mcp` Python client (Tests/Fixtures/mcp/client.py), a trivial call, every row side by side "
        "in one run, each the round with the median p50. Over HTTP, llmos is `llmos serve --http 127.0.0.1:0` "
        "(its `/mcp`, with the API key) and the reference is the same server on the SDK's `streamable-http` "
        "transport (uvicorn). Session start over stdio includes starting the server process; over HTTP the "
        "server is already running and it is the client's `initialize` alone.",
        "",
        "| trivial call | p50 | p90 | p99 | session start |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in ROWS:
        if key in summary:
            r = summary[key]
            lines.append(f"| {label} | {us(r['p50_us'])} | {us(r['p90_us'])} | {us(r['p99_us'])} | {starts(r)} |")
    block = "<!-- llmos-bench:mcp-serve:begin -->\n" + "\n".join(lines) + "\n<!-- llmos-bench:mcp-serve:end -->"
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        text = "# Benchmarks\n\n"
    begin, end = text.find("<!-- llmos-bench:mcp-serve:begin -->"), text.find("<!-- llmos-bench:mcp-serve:end -->")
    if begin >= 0 and end >= 0:
        text = text[:begin] + block + text[end + len("<!-- llmos-bench:mcp-serve:end -->"):]
    else:
        text += "\n## MCP: `llmos serve --mcp` next to the reference Python MCP server, same client\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
