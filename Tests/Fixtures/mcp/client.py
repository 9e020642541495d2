"""An MCP client built on the official `mcp` Python SDK, for llmos's tests and the
serve benchmark: it starts a server over stdio, as any MCP host would, and reports
what it saw as one JSON object on stdout.

    python client.py [--mode MODE] [--bench N --warmup N] -- COMMAND [ARGS...]
    python client.py [--mode MODE] [--bench N --warmup N] --http URL [--api-key KEY]

The first form starts the server over stdio; the second connects to a running one over
streamable HTTP (mcp.client.streamable_http, with Authorization: Bearer KEY when given).
--mode is the SDK's `Client(mode=...)`: `legacy` (the default here: ClientSession and
initialize, protocol 2025-11-25), `auto` (server/discover first, initialize if the
server does not speak 2026-07-28) or `2026-07-28` (stateless, no probe).

Without --bench it reads a scenario from stdin,
    {"calls": [{"name": "calc.add", "arguments": {"a": 1, "b": 2}}, ...]}
initializes, lists the tools, makes each call in order and prints
    {"mcp_version", "protocol_version", "server_info", "instructions", "capabilities",
     "tools": [Tool as on the wire], "calls": [{"name", "result": CallToolResult} or
     {"name", "error": {"type", "code", "message"}}]}
A call with "progress": true also reports "progress": [{"progress", "total", "message"}],
as the call's progress callback saw them. A scenario with "listen": true (not legacy)
opens Client.listen(tools_list_changed=True) after the calls and reports
"listen": {"honored": SubscriptionFilter, "events": [...]} once it has waited
"listen_seconds" (default 0.5) for events, then closes the subscription.

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

import anyio

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
                report["calls"].append(await make_call(session, call))
    return report


async def make_call(session, call):
    """One scenario call on a ClientSession or a Client (both have call_tool)."""
    entry = {"name": call["name"]}
    seen = []

    async def on_progress(progress, total, message):
        seen.append({"progress": progress, "total": total, "message": message})

    try:
        result = await session.call_tool(call["name"], call.get("arguments", {}),
                                         progress_callback=on_progress if call.get("progress") else None)
        entry["result"] = wire(result)
    except Exception as exc:  # a JSON-RPC error, or the SDK refusing a result
        entry["error"] = error_report(exc)
    if call.get("progress"):
        entry["progress"] = seen
    return entry


@contextlib.asynccontextmanager
async def connect_client(params, mode):
    """The SDK's high-level Client in `mode`, over stdio or streamable HTTP."""
    from mcp.client.client import Client
    if isinstance(params, StdioServerParameters):
        async with Client(params, mode=mode) as client:
            yield client
        return
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    headers = {"Authorization": f"Bearer {params['api_key']}"} if params.get("api_key") else None
    async with create_mcp_http_client(headers=headers) as http:
        async with Client(streamable_http_client(params["url"], http_client=http), mode=mode) as client:
            yield client


async def client_scenario(params, mode, scenario_input):
    report = {"mcp_version": version("mcp"), "calls": []}
    async with connect_client(params, mode) as client:
        report["protocol_version"] = client.protocol_version
        info = client.server_info
        report["server_info"] = wire(info) if info is not None else None
        report["capabilities"] = wire(client.server_capabilities)
        discover = client.session.discover_result
        if discover is not None:
            report["discover"] = wire(discover)
        report["tools"] = [wire(tool) for tool in (await client.list_tools()).tools]
        for call in scenario_input.get("calls", []):
            report["calls"].append(await make_call(client, call))
        if scenario_input.get("listen"):
            events = []
            async with client.listen(tools_list_changed=True) as subscription:
                listened = {"honored": wire(subscription.honored), "subscription_id": subscription.subscription_id}
                with anyio.move_on_after(scenario_input.get("listen_seconds", 0.5)):
                    async for event in subscription:
                        events.append(repr(event))
            listened["events"] = events
            report["listen"] = listened
    return report


async def bench(params, tool, arguments, calls, warmup, mode="legacy"):
    start = time.perf_counter()
    if mode != "legacy":
        async with connect_client(params, mode) as client:
            session_start_ms = (time.perf_counter() - start) * 1000
            samples = await timed_calls(client, tool, arguments, calls, warmup, session_start_ms)
        return summary(samples, calls, session_start_ms)
    async with connect(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            session_start_ms = (time.perf_counter() - start) * 1000
            samples = await timed_calls(session, tool, arguments, calls, warmup, session_start_ms)
    return summary(samples, calls, session_start_ms)


async def timed_calls(session, tool, arguments, calls, warmup, session_start_ms):
    """`session` is a ClientSession or a Client: both have call_tool."""
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
    return samples


def summary(samples, calls, session_start_ms):
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
    parser.add_argument("--mode", default="legacy", help="legacy (initialize), auto (discover, then initialize) or 2026-07-28")
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
        result = asyncio.run(bench(params, args.tool, json.loads(args.arguments), args.bench, args.warmup, args.mode))
    elif args.mode == "legacy":
        result = asyncio.run(scenario(params, json.load(sys.stdin).get("calls", [])))
    else:
        result = asyncio.run(client_scenario(params, args.mode, json.load(sys.stdin)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
