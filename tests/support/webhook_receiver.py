"""A loopback webhook receiver for end-to-end tests: every request is recorded per endpoint (a path of its own, so
tests do not see each other's deliveries), and each endpoint answers as it is told: 200, or a failure (a status,
optionally after a delay longer than the sender's timeout) a number of times or always."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it (header names in lower case)."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Failure:
    remaining: int | None  # None: always
    status: int
    delay_s: float
    headers: dict[str, str]


@dataclass
class Endpoint:
    """One path of the receiver: what it received and how it answers."""

    receiver: WebhookReceiver
    path: str
    _received: list[Received] = field(default_factory=list)
    _failure: _Failure | None = None

    @property
    def url(self) -> str:
        return f"{self.receiver.url}{self.path}"

    @property
    def received(self) -> list[Received]:
        with self.receiver.lock:
            return list(self._received)

    def fail(
        self, times: int | None = None, status: int = 500, delay_s: float = 0.0, headers: dict[str, str] | None = None
    ) -> Endpoint:
        """Answer the next `times` requests (None: every one) with `status`, each after `delay_s`."""
        with self.receiver.lock:
            self._failure = _Failure(times, status, delay_s, dict(headers or {}))
        return self

    def recover(self) -> Endpoint:
        """Answer 200 from now on."""
        with self.receiver.lock:
            self._failure = None
        return self

    def _answer(self, request: Received) -> tuple[int, float, dict[str, str]]:
        with self.receiver.lock:
            self._received.append(request)
            failure = self._failure
            if failure is None:
                return 200, 0.0, {}
            if failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failure = None
            return failure.status, failure.delay_s, failure.headers


class WebhookReceiver:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.endpoints: dict[str, Endpoint] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = Received(
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                    at=time.time(),
                )
                endpoint = receiver.endpoints.get(self.path)
                if endpoint is None:
                    self._send(404, b"no such endpoint", {})
                    return
                status, delay_s, headers = endpoint._answer(request)
                if delay_s:
                    time.sleep(delay_s)
                text = "received" if 200 <= status < 300 else "failing on purpose"
                body = f"{text}: {request.headers.get('strata-delivery-id', '')}".encode()
                self._send(status, body, headers)

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("content-type", "text/plain")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the sender gave up (its timeout)
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"

    def endpoint(self) -> Endpoint:
        """A new endpoint with a path of its own."""
        made = Endpoint(self, f"/hooks/{uuid.uuid4().hex}")
        with self.lock:
            self.endpoints[made.path] = made
        return made

    def start(self) -> WebhookReceiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


_shared: WebhookReceiver | None = None
_shared_lock = threading.Lock()


def shared_receiver() -> WebhookReceiver:
    """The process's one receiver, started on first use: the local cloud's settings name its host (the operator's
    private-hosts allowlist) before any test runs."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = WebhookReceiver().start()
        return _shared
