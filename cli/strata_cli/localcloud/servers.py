"""Small HTTP plumbing the local cloud's servers share: loopback sockets, uvicorn servers, ASGI bodies."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Send

Headers = list[tuple[str, str]]


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the local cloud (several run in one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_loopback(port: int = 0) -> socket.socket:
    """A listening-ready socket on 127.0.0.1 (`port` 0: any free port)."""
    # proto named explicitly: asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and without it
    # a response's headers and body (two writes) meet the peer's delayed ACK: ~40 ms per exchange
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted connections inherit it
    sock.bind(("127.0.0.1", port))
    return sock


def port_of(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


def serve(
    app: ASGIApp, sock: socket.socket, keep_alive_s: int, graceful_s: int
) -> tuple[QuietServer, asyncio.Task[Any]]:
    """Start serving `app` on `sock` in the running loop."""
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        interface="asgi3",
        timeout_keep_alive=keep_alive_s,
        timeout_graceful_shutdown=graceful_s,
    )
    server = QuietServer(config)
    return server, asyncio.create_task(server.serve(sockets=[sock]))


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def respond(send: Send, status: int, headers: Headers, body: bytes) -> None:
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
