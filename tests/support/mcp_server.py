"""A real MCP server (the `mcp` SDK's FastMCP over streamable HTTP) on loopback, for L03's MCP tests: arithmetic,
a tool with a counted side effect (so a test can check a call happened exactly once), and a tool that fails."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn
from mcp.server.fastmcp import FastMCP


class McpTestServer:
    def __init__(self) -> None:
        self.notes: list[str] = []
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}/mcp"
        server = FastMCP("strata-test-tools", host="127.0.0.1", port=self.port, stateless_http=True)
        notes = self.notes

        @server.tool(description="Add two integers.")
        def add(a: int, b: int) -> int:
            return a + b

        @server.tool(name="Record.Note", description="Keep a note (a side effect the test counts).")
        def record_note(note: str) -> dict[str, Any]:
            notes.append(note)
            return {"kept": note, "count": len(notes)}

        @server.tool(description="Always fails.")
        def explode(reason: str = "boom") -> str:
            raise ValueError(reason)

        config = uvicorn.Config(server.streamable_http_app(), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> McpTestServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the MCP test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
