"""The reference MCP server for llmos's isolation benchmark: the official `mcp`
Python SDK (MCPServer), stdio transport, one trivial tool.

    python server.py        # speaks MCP on stdin/stdout (bench.py starts it)
"""
from mcp.server.mcpserver import MCPServer

server = MCPServer("llmos-mcp-reference")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


if __name__ == "__main__":
    server.run("stdio")
