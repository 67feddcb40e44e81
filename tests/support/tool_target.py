"""A loopback HTTP server for the http_request tool's end-to-end tests: JSON data, an echo of the request, and a
counter of side effects (so a test can check a call happened exactly once); a POST to /slow... answers after
SLOW_S seconds (a side effect in flight while a test kills a worker)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SLOW_S = 1.5


class ToolTarget:
    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        target = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # quiet
                pass

            def _answer(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                target.hits[self.path] = target.hits.get(self.path, 0) + 1
                if self.path.startswith("/data"):
                    self._answer(200, {"items": [{"name": "a", "score": 3}, {"name": "b", "score": 7}]})
                else:
                    self._answer(404, {"error": "no such path"})

            def do_POST(self) -> None:
                target.hits[self.path] = target.hits.get(self.path, 0) + 1
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode()
                if self.path.startswith("/slow"):  # a side effect that takes a while to answer
                    time.sleep(SLOW_S)
                self._answer(201, {"method": "POST", "path": self.path, "body": body})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"

    def start(self) -> ToolTarget:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
