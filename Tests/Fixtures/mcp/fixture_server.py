"""A small MCP server (the official `mcp` SDK's MCPServer, stdio) for the mcp driver's
tests: its tool list can change between runs and during one, and it misbehaves on demand.

    python fixture_server.py [--state FILE] [--garbage] [--starts FILE] [--http]

--state FILE   a JSON object read at start: {"echo_description": str, "echo_extra_arg": bool,
               "hide_add": bool}; a test edits it between runs to change the tool definitions
               (a "rug pull")
--garbage      write a line that is not JSON on stdout before serving (a broken server)
--starts FILE  append this process's pid to FILE at start (the tests count starts)

Tools: echo, add, getenv, pid, sleep (seconds), crash (exits at once, after a line on stderr),
corrupt (writes a non-JSON line on stdout), add_tool (registers a tool `extra_NAME` and
sends notifications/tools/list_changed); read_file, write_file and connect (a TCP connect to
127.0.0.1:PORT) do what a server could do behind its tools' backs: the sandbox tests see
which the operating system refuses.
"""
import argparse
import asyncio
import json
import os
import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

parser = argparse.ArgumentParser()
parser.add_argument("--state")
parser.add_argument("--garbage", action="store_true")
parser.add_argument("--starts")
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

server = MCPServer("llmos-mcp-fixture")


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
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if fd > 2 and (st.st_dev, st.st_ino) == (WIRE.st_dev, WIRE.st_ino):
            os.write(fd, b"debug: oops, printed to stdout\n")
    return "corrupted"


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
    await ctx.session.send_tool_list_changed()
    return f"added extra_{name}"


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
