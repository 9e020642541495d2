"""An MCP client built on the official `mcp` Python SDK, for llmos's tests and the
serve benchmark: it starts a server over stdio, as any MCP host would, and reports
what it saw as one JSON object on stdout.

    python client.py [--bench N --warmup N] -- COMMAND [ARGS...]
    python client.py [--bench N --warmup N] --http URL [--api-key KEY]

The first form starts the server over stdio; the second connects to a running one over
streamable HTTP (mcp.client.streamable_http, with Authorization: Bearer KEY when given).

Without --bench it reads a scenario from stdin,
    {"calls": [{"name": "calc.add", "arguments": {"a": 1, "b": 2}}, ...]}
initializes, lists the tools, makes each call in order and prints
    {"mcp_version", "protocol_version", "server_info", "instructions", "capabilities",
     "tools": [Tool as on the wire], "calls": [{"name", "result": CallToolResult} or
     {"name", "error": {"type", "code", "message"}}]}

With --bench N it makes N timed calls of --tool with --arguments (after --warmup N
untimed ones) and prints {"p50_us", "p90_us", "p99_us", "mean_us", "calls",
"session_start_ms", "mcp_version"}, like Benchmarks/mcp-reference/bench.py.
The server inherits this process's environment and working directory.
"""
import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from importlib.metadata import version

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client


def wire(model):
    """A pydantic model as it travels: camelCase keys, no absent fields."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def error_report(exc):
    error = getattr(exc, "error", None)
    return {
        "type": type(exc).__name__,
        "code": getattr(error, "code", None),
        "message": getattr(error, "message", None) or str(exc),
    }


def percentile(sorted_values, p):
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


@contextlib.asynccontextmanager
async def connect(params):
    """The transport's (read, write) streams: stdio (params is StdioServerParameters) or
    streamable HTTP (params is {"url", "api_key"})."""
    if isinstance(params, StdioServerParameters):
        async with stdio_client(params) as (read, write):
            yield read, write
        return
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    headers = {"Authorization": f"Bearer {params['api_key']}"} if params.get("api_key") else None
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(params["url"], http_client=http) as streams:
            yield streams[0], streams[1]


async def scenario(params, calls):
    report = {"mcp_version": version("mcp"), "calls": []}
    async with connect(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            init_wire = wire(init)
            report["protocol_version"] = init_wire.get("protocolVersion")
            report["server_info"] = init_wire.get("serverInfo")
            report["instructions"] = init_wire.get("instructions")
            report["capabilities"] = init_wire.get("capabilities")
            report["tools"] = [wire(tool) for tool in (await session.list_tools()).tools]
            for call in calls:
                entry = {"name": call["name"]}
                try:
                    result = await session.call_tool(call["name"], call.get("arguments", {}))
                    entry["result"] = wire(result)
                except Exception as exc:  # a JSON-RPC error, or the SDK refusing a result
                    entry["error"] = error_report(exc)
                report["calls"].append(entry)
    return report


async def bench(params, tool, arguments, calls, warmup):
    start = time.perf_counter()
    async with connect(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            session_start_ms = (time.perf_counter() - start) * 1000
            print(f"session started in {session_start_ms:.1f} ms; warming up ({warmup} calls)", file=sys.stderr)
            first = await session.call_tool(tool, arguments)
            if first.is_error:
                raise SystemExit(f"{tool} failed: {first}")
            for _ in range(warmup):
                await session.call_tool(tool, arguments)
            print(f"timing {calls} calls of {tool}", file=sys.stderr)
            samples = []
            for _ in range(calls):
                t0 = time.perf_counter_ns()
                await session.call_tool(tool, arguments)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=int, default=0, help="timed calls (0: run the scenario on stdin)")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--tool", default="calc.add")
    parser.add_argument("--arguments", default='{"a": 40, "b": 2}')
    parser.add_argument("--http", metavar="URL", help="connect to a running server's streamable HTTP endpoint (…/mcp)")
    parser.add_argument("--api-key", help="with --http: sent as Authorization: Bearer KEY")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the server's command line")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.http:
        params = {"url": args.http, "api_key": args.api_key}
    elif not command:
        parser.error("give the server's command line after --, or --http URL")
    else:
        params = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ), cwd=os.getcwd())
    if args.bench:
        result = asyncio.run(bench(params, args.tool, json.loads(args.arguments), args.bench, args.warmup))
    else:
        result = asyncio.run(scenario(params, json.load(sys.stdin).get("calls", [])))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
