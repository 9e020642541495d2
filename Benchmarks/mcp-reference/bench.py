"""Times trivial tool calls to the reference MCP server (server.py) over stdio,
with the SDK's own stdio client: the MCP column of llmos's isolation benchmark.

    python bench.py [--calls N] [--warmup N] [--python PATH]

Prints one JSON object on stdout:
    {"p50_us", "p90_us", "p99_us", "mean_us", "calls", "session_start_ms", "mcp_version"}
progress goes to stderr. session_start_ms is spawning the server plus the
initialize handshake; each timed call is one tools/call round trip, awaited.
"""
import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from importlib.metadata import version

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

HERE = os.path.dirname(os.path.abspath(__file__))


def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list."""
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


async def run(calls: int, warmup: int, python: str) -> dict:
    params = StdioServerParameters(command=python, args=[os.path.join(HERE, "server.py")])
    start = time.perf_counter()
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            session_start_ms = (time.perf_counter() - start) * 1000
            print(f"session started in {session_start_ms:.1f} ms; warming up ({warmup} calls)", file=sys.stderr)
            result = await session.call_tool("add", {"a": 40, "b": 2})
            if result.is_error or result.structured_content != {"result": 42}:
                raise SystemExit(f"unexpected result from add(40, 2): {result}")
            for i in range(warmup):
                await session.call_tool("add", {"a": i, "b": 1})
            print(f"timing {calls} calls", file=sys.stderr)
            samples = []
            for i in range(calls):
                t0 = time.perf_counter_ns()
                await session.call_tool("add", {"a": i, "b": 2})
                samples.append((time.perf_counter_ns() - t0) / 1000)
    samples.sort()
    return {
        "p50_us": round(percentile(samples, 50), 1),
        "p90_us": round(percentile(samples, 90), 1),
        "p99_us": round(percentile(samples, 99), 1),
        "mean_us": round(statistics.fmean(samples), 1),
        "calls": calls,
        "session_start_ms": round(session_start_ms, 1),
        "mcp_version": version("mcp"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs server.py")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.calls, args.warmup, args.python))))


if __name__ == "__main__":
    main()
