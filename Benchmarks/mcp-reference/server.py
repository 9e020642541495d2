"""The reference MCP server for llmos's isolation benchmark: the official `mcp`
Python SDK (MCPServer), stdio transport, one trivial tool.

    python server.py                # speaks MCP on stdin/stdout (bench.py starts it)
    python server.py --http PORT    # streamable HTTP on http://127.0.0.1:PORT/mcp (Benchmarks/mcp-serve)
"""
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("llmos-mcp-reference")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
