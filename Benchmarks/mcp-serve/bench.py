"""llmos serve --mcp next to the reference MCP server, both driven by the official
`mcp` Python client over stdio (Tests/Fixtures/mcp/client.py --bench), in turns.

    python bench.py --llmos PATH/TO/llmos [--calls N] [--warmup N] [--rounds N]

Run it from the repository root (./manifests is on llmos's driver path) with the
interpreter of a venv that has Benchmarks/mcp-reference/requirements.txt installed.
Prints one JSON object on stdout:
    {"llmos": {...}, "llmos_audited": {...}, "reference": {...}, "rounds", "calls"}
where each side is the round with the median p50 of client.py's figures (p50_us,
p90_us, p99_us, mean_us, session_start_ms). Progress goes to stderr.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLIENT = os.path.join(ROOT, "Tests", "Fixtures", "mcp", "client.py")
REFERENCE = os.path.join(ROOT, "Benchmarks", "mcp-reference", "server.py")


def measure(command, tool, arguments, calls, warmup):
    out = subprocess.run(
        [sys.executable, CLIENT, "--bench", str(calls), "--warmup", str(warmup), "--tool", tool,
         "--arguments", json.dumps(arguments), "--", *command],
        check=True, stdout=subprocess.PIPE, cwd=ROOT,
    ).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llmos", required=True, help="the llmos executable")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    audit_dir = tempfile.mkdtemp(prefix="llmos-mcp-bench-")
    sides = {
        "llmos": ([args.llmos, "serve", "--mcp", "--no-audit-log", "--tools", "calc.*"], "calc.add"),
        # The same with every call on the audit log (SQLite, hash-chained), as a default install runs.
        "llmos_audited": ([args.llmos, "serve", "--mcp", "--audit-log", os.path.join(audit_dir, "audit.sqlite3"),
                           "--tools", "calc.*"], "calc.add"),
        "reference": ([sys.executable, REFERENCE], "add"),
    }
    results = {name: [] for name in sides}
    for round_number in range(args.rounds):
        for name, (command, tool) in sides.items():
            print(f"round {round_number + 1}/{args.rounds}: {name}", file=sys.stderr)
            results[name].append(measure(command, tool, {"a": 40, "b": 2}, args.calls, args.warmup))
    summary = {"rounds": args.rounds, "calls": args.calls}
    for name, runs in results.items():
        runs.sort(key=lambda r: r["p50_us"])
        summary[name] = runs[len(runs) // 2]
        summary[name]["session_start_ms_all"] = sorted(r["session_start_ms"] for r in runs)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
