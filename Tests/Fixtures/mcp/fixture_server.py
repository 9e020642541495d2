"""A small MCP server (the official `mcp` SDK's MCPServer, stdio) for the mcp driver's
tests: its tool list can change between runs and during one, and it misbehaves on demand.

    python fixture_server.py [--state FILE] [--garbage] [--starts FILE] [--http]
                             [--listens FILE] [--listen-error | --listen-malformed]

--state FILE   a JSON object read at start: {"echo_description": str, "echo_extra_arg": bool,
               "hide_add": bool}; a test edits it between runs to change the tool definitions
               (a "rug pull")
--garbage      write a line that is not JSON on stdout before serving (a broken server)
--starts FILE  append this process's pid to FILE at start (the tests count starts)
--listens FILE append "open ID" / "close ID" to FILE as subscriptions/listen streams
               (2026-07-28) open and end
--listen-error answer subscriptions/listen with an error (still advertising listChanged)
--listen-malformed acknowledge subscriptions/listen with a malformed filter, then hold it open
--tools-ttl-ms N  the cache hint on tools/list results (2026-07-28 ttlMs; default 0: stale at once)

Tools: echo, add, getenv, pid, sleep (seconds), crash (exits at once, after a line on stderr),
corrupt (writes a non-JSON line on stdout), add_tool (registers a tool `extra_NAME`),
change_echo (gives echo a new description), end_listens (closes the listen streams, as a
server going away gracefully does); add_tool and change_echo report the change as the
revision in use does: notifications/tools/list_changed on the session (2025-11-25), an
event on the subscriptions/listen streams (2026-07-28). read_file, write_file and connect
(a TCP connect to 127.0.0.1:PORT) do what a server could do behind its tools' backs: the
sandbox tests see which the operating system refuses.
"""
import argparse
import asyncio
import json
import os
import sys

import anyio
import mcp_types
from mcp.server.caching import CacheHint
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.subscriptions import ListenHandler
from mcp.shared.exceptions import MCPError

parser = argparse.ArgumentParser()
parser.add_argument("--state")
parser.add_argument("--garbage", action="store_true")
parser.add_argument("--starts")
parser.add_argument("--listens")
parser.add_argument("--tools-ttl-ms", type=int, default=0)
parser.add_argument("--listen-error", action="store_true")
parser.add_argument("--listen-malformed", action="store_true")
parser.add_argument("--http", action="store_true", help="serve streamable HTTP on a free loopback port; print {\"port\": N}; exit when stdin closes")
options = parser.parse_args()

state = {}
if options.state and os.path.exists(options.state):
    with open(options.state) as f:
        state = json.load(f)
if options.starts:
    with open(options.starts, "a") as f:
        f.write(f"{os.getpid()}\n")
if options.garbage:
    os.write(1, b"Starting fixture server v1.0 ... ready!\n")

# The protocol's pipe, before the SDK moves it off fd 1 (it diverts fd 1 to stderr so a
# print() cannot corrupt the stream): corrupt() writes there on purpose.
WIRE = os.fstat(1)

server = MCPServer("llmos-mcp-fixture", cache_hints={"tools/list": CacheHint(ttl_ms=options.tools_ttl_ms)})


def echo(text: str, loud: bool = False) -> str:
    return text.upper() if loud else text


def echo_plain(text: str) -> str:
    return text


server.add_tool(echo if state.get("echo_extra_arg") else echo_plain, name="echo",
                description=state.get("echo_description", "Echo the text back."))

if not state.get("hide_add"):
    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b


@server.tool()
def getenv(name: str) -> str:
    """An environment variable of the server's ("" when unset)."""
    return os.environ.get(name, "")


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
async def sleep(seconds: float) -> str:
    """Sleep, then say so."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@server.tool()
def crash(code: int = 3) -> str:
    """Exit at once, as a crashing server would."""
    sys.stderr.write("fixture: crashing on purpose\n")
    sys.stderr.flush()
    os._exit(code)


@server.tool()
def corrupt() -> str:
    """Write a line that is not JSON on the protocol stream (a server that prints)."""
    for fd in wire_fds():
        os.write(fd, b"debug: oops, printed to stdout\n")
    return "corrupted"


def wire_fds() -> list[int]:
    """The descriptors of the protocol's pipe (where the SDK moved fd 1)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if fd > 2 and (st.st_dev, st.st_ino) == (WIRE.st_dev, WIRE.st_ino):
            found.append(fd)
    return found


def reported(action):
    """Run `action`; an OSError becomes the tool's error with its errno text (the SDK
    shows a client only `Error executing tool` for other exceptions)."""
    try:
        return action()
    except OSError as error:
        raise ToolError(f"{type(error).__name__}: {error}") from error


@server.tool()
def read_file(path: str) -> str:
    """Read a file."""
    return reported(lambda: open(path).read())


@server.tool()
def write_file(path: str, text: str) -> str:
    """Write a file."""
    def write():
        with open(path, "w") as f:
            f.write(text)
        return "written"
    return reported(write)


@server.tool()
def connect(port: int) -> str:
    """Open a TCP connection to 127.0.0.1:PORT and close it."""
    import socket
    def attempt():
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return "connected"
    return reported(attempt)


@server.tool()
async def add_tool(name: str, ctx: Context) -> str:
    """Register a tool extra_NAME and tell the client the tool list changed."""
    def extra(x: int) -> int:
        return x * 2
    server.add_tool(extra, name=f"extra_{name}", description=f"Double x ({name}).")
    await tools_changed(ctx)
    return f"added extra_{name}"


@server.tool()
async def change_echo(description: str, ctx: Context) -> str:
    """Give echo a new description (a rug pull during the run)."""
    server.remove_tool("echo")
    server.add_tool(echo_plain, name="echo", description=description)
    await tools_changed(ctx)
    return "changed echo"


async def tools_changed(ctx: Context) -> None:
    await ctx.session.send_tool_list_changed()   # 2025-11-25: a notification on the session
    await ctx.notify_tools_changed()             # 2026-07-28: an event on subscriptions/listen streams


def record_listen(line: str) -> None:
    if options.listens:
        with open(options.listens, "a") as f:
            f.write(line + "\n")


class RecordedListen(ListenHandler):
    """The SDK's own listen handler, recording when each stream opens and ends."""

    async def __call__(self, ctx, params):
        record_listen(f"open {ctx.request_id}")
        try:
            return await super().__call__(ctx, params)
        finally:
            record_listen(f"close {ctx.request_id}")


@server.tool()
def end_listens() -> str:
    """End every open subscriptions/listen stream gracefully (the SDK's ListenHandler.close)."""
    if isinstance(listen, ListenHandler):
        listen.close()
    return "ended"


async def refuse_listen(ctx, params):
    raise MCPError(mcp_types.INTERNAL_ERROR, "subscriptions are switched off on this server")


async def malformed_listen(ctx, params):
    # An acknowledgement whose filter is not an object, written past the SDK (which
    # would not send it), then a stream that never ends.
    ack = {"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
           "params": {"_meta": {"io.modelcontextprotocol/subscriptionId": ctx.request_id}, "notifications": "everything"}}
    for fd in wire_fds():
        os.write(fd, (json.dumps(ack) + "\n").encode())
    await anyio.sleep_forever()


# The fixture does send list_changed, so it says so on 2025-11-25 too (the SDK's default is
# false there; on 2026-07-28 the flag follows whether subscriptions/listen is served).
_initialization_options = server._lowlevel_server.create_initialization_options
server._lowlevel_server.create_initialization_options = lambda notification_options=None, *args, **kwargs: \
    _initialization_options(notification_options or NotificationOptions(tools_changed=True), *args, **kwargs)

listen = refuse_listen if options.listen_error else malformed_listen if options.listen_malformed else RecordedListen(server._subscriptions)
server._lowlevel_server.add_request_handler("subscriptions/listen", mcp_types.SubscriptionsListenRequestParams, listen)


if __name__ == "__main__":
    if options.http:
        import socket
        import threading
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        print(json.dumps({"port": port}), flush=True)
        threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
        server.run("streamable-http", host="127.0.0.1", port=port)
    else:
        server.run("stdio")
