"""Lambda for the local cloud: worker processes per function, fed through the real Lambda Runtime API."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.types import Receive, Scope, Send

from strata_cli.localcloud.servers import QuietServer, bind_loopback, port_of, read_body, respond, serve
from strata_cli.localcloud.template import FunctionSpec

BOOTSTRAP = Path(__file__).with_name("worker_bootstrap.py")
RUNTIME_PREFIX = "/2018-06-01/runtime"
ACCOUNT = "000000000000"
INHERITED_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "AWS_CA_BUNDLE",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "XDG_RUNTIME_DIR",
)


class InvocationError(Exception):
    """The function failed: an unhandled error, a timeout, or a crashed worker (Lambda's FunctionError)."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.trace = trace or []

    def to_payload(self) -> dict[str, Any]:
        return {"errorType": self.error_type, "errorMessage": self.message, "stackTrace": self.trace}


@dataclass
class Invocation:
    payload: bytes
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    future: asyncio.Future[bytes] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    timer: asyncio.TimerHandle | None = None


@dataclass
class Worker:
    """One execution environment: a process, and the Runtime API socket it polls."""

    pool: FunctionPool
    sock: socket.socket
    server: QuietServer
    process: asyncio.subprocess.Process | None = None
    current: Invocation | None = None
    polled: bool = False  # its init finished: it has asked the Runtime API for work at least once

    @property
    def port(self) -> int:
        return port_of(self.sock)


class FunctionPool:
    """The execution environments of one function: scaled up on demand to `max_concurrency`, each running one
    invocation at a time with the template's timeout."""

    def __init__(self, spec: FunctionSpec, env: dict[str, str], log_dir: Path, max_concurrency: int) -> None:
        self.spec = spec
        self.env = env
        self.log_dir = log_dir
        self.max_concurrency = min(max_concurrency, spec.reserved_concurrency or max_concurrency)
        self.queue: asyncio.Queue[Invocation] = asyncio.Queue()
        self.workers: dict[int, Worker] = {}
        self.starting = 0
        self.invocations = 0
        self.cold_starts = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._polled = asyncio.Event()
        # reserved concurrency 0 (`aws lambda put-function-concurrency ... 0`): every invocation is throttled, the
        # way an operator takes a function out of service (and how the tests take a layer away)
        self.throttled = False
        # workers polling for work, the most recently idle last: an invocation goes to the environment that
        # finished last (as Lambda prefers its warmest), so a run of calls stays on few environments and the rest
        # idle, instead of rotating through every environment a burst once started
        self._idle: list[tuple[Worker, asyncio.Future[Invocation]]] = []

    @property
    def name(self) -> str:
        return self.spec.logical_id

    async def invoke(self, payload: dict[str, Any] | bytes) -> bytes:
        """Run one invocation and return its response payload; raises InvocationError when the function fails."""
        if self.throttled:
            raise InvocationError("TooManyRequestsException", f"Rate Exceeded: {self.name} has no concurrency")
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        invocation = Invocation(data)
        self.invocations += 1
        if not self._hand_to_idle(invocation):
            # a worker with no current invocation is about to poll or still in its init: it will take one
            available = sum(1 for w in self.workers.values() if w.current is None)
            if (
                available + self.starting <= self.queue.qsize()
                and len(self.workers) + self.starting < self.max_concurrency
            ):
                await self._spawn()
            self.queue.put_nowait(invocation)
        return await invocation.future

    def _hand_to_idle(self, invocation: Invocation) -> bool:
        """Give the invocation to the most recently idle polling worker, if one is waiting."""
        while self._idle:
            _, waiter = self._idle.pop()
            if not waiter.done():
                waiter.set_result(invocation)
                return True
        return False

    async def warm(self, timeout_s: float = 60) -> None:
        """Start one execution environment and wait until its init is done (like provisioned concurrency)."""
        if not self.workers:
            await self._spawn()
        deadline = time.monotonic() + timeout_s
        while not self._polled.is_set():
            if not self.workers and not self.starting:
                raise InvocationError("Runtime.InitError", f"{self.name} failed to start; see {self.log_path}")
            if time.monotonic() > deadline:
                raise InvocationError("Runtime.InitTimeout", f"{self.name} did not start in {timeout_s:.0f} s")
            await asyncio.sleep(0.02)

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    async def _spawn(self) -> None:
        self.starting += 1
        try:
            sock = bind_loopback()
            server, serving = serve(self._runtime_api, sock, keep_alive_s=3600, graceful_s=2)
            self._track(serving)
            while not server.started and not serving.done():  # noqa: ASYNC110 - the first poll needs the API up
                await asyncio.sleep(0.001)
            worker = Worker(self, sock, server)
            env = {
                **{k: os.environ[k] for k in INHERITED_ENV if k in os.environ},
                **self.env,
                "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{worker.port}",
            }
            self.log_dir.mkdir(parents=True, exist_ok=True)
            try:
                with self.log_path.open("ab") as log:
                    worker.process = await asyncio.create_subprocess_exec(
                        sys.executable, str(BOOTSTRAP), env=env, stdout=log, stderr=log, cwd=str(self.spec.code_uri)
                    )
            except OSError:
                server.should_exit = True
                raise
            self.workers[worker.port] = worker  # counted only once its process exists
            self.cold_starts += 1
            self._track(asyncio.create_task(self._watch(worker)))
        finally:
            self.starting -= 1

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self, worker: Worker) -> None:
        assert worker.process is not None
        code = await worker.process.wait()
        error = InvocationError("Runtime.ExitError", f"the worker exited with code {code}; see {self.log_path}")
        if not worker.polled:  # it died in its init without reporting: what is queued fails, as in Lambda
            self._fail_queued(error)
        self._retire(worker, error)

    def _fail_queued(self, error: InvocationError) -> None:
        while not self.queue.empty():
            queued = self.queue.get_nowait()
            if not queued.future.done():
                queued.future.set_exception(error)

    def _retire(self, worker: Worker, error: InvocationError) -> None:
        if self.workers.pop(worker.port, None) is None:
            return
        if worker.current is not None and not worker.current.future.done():
            worker.current.future.set_exception(error)
        worker.server.should_exit = True
        if worker.process is not None and worker.process.returncode is None:
            worker.process.kill()
        if not self.workers and not self.starting and not self.queue.empty():
            # a healthy environment died (timeout, crash) with work queued: start another, as Lambda would
            self._track(asyncio.create_task(self._spawn()))

    def _on_timeout(self, worker: Worker, invocation: Invocation) -> None:
        if not invocation.future.done():
            self._retire(
                worker, InvocationError("Sandbox.Timedout", f"Task timed out after {self.spec.timeout_s:.2f} seconds")
            )

    async def _next(self, worker: Worker, receive: Receive) -> Invocation | None:
        await read_body(receive)  # the GET's empty body; the next receive() reports a disconnect
        worker.polled = True
        self._polled.set()
        if not self.queue.empty():  # a backlog: the oldest waiting invocation first
            invocation = self.queue.get_nowait()
        else:
            waiter: asyncio.Future[Invocation] = asyncio.get_running_loop().create_future()
            entry = (worker, waiter)
            self._idle.append(entry)
            disconnect: asyncio.Future[Any] = asyncio.ensure_future(receive())
            try:
                await asyncio.wait([waiter, disconnect], return_when=asyncio.FIRST_COMPLETED)
            finally:
                disconnect.cancel()
            if not waiter.done():
                waiter.cancel()
                if entry in self._idle:
                    self._idle.remove(entry)
                return None
            invocation = waiter.result()
        if worker.port not in self.workers:  # retired meanwhile: the invocation goes to another
            if not self._hand_to_idle(invocation):
                self.queue.put_nowait(invocation)
            return None
        worker.current = invocation
        invocation.timer = asyncio.get_running_loop().call_later(
            self.spec.timeout_s, self._on_timeout, worker, invocation
        )
        return invocation

    async def _runtime_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The Lambda Runtime API (2018-06-01) for the worker that owns this socket."""
        if scope["type"] != "http":
            return
        worker = self.workers.get(scope["server"][1])
        path: str = scope["path"]
        if worker is None or not path.startswith(RUNTIME_PREFIX):
            await _reply(send, 404, {"errorMessage": "unknown worker or path"})
            return
        action = path[len(RUNTIME_PREFIX) :]
        if scope["method"] == "GET" and action == "/invocation/next":
            invocation = await self._next(worker, receive)
            if invocation is None:
                return
            deadline_ms = int((time.time() + self.spec.timeout_s) * 1000)
            region = self.env.get("AWS_REGION", "us-east-1")
            headers = [
                ("content-type", "application/json"),
                ("lambda-runtime-aws-request-id", invocation.request_id),
                ("lambda-runtime-deadline-ms", str(deadline_ms)),
                ("lambda-runtime-invoked-function-arn", f"arn:aws:lambda:{region}:{ACCOUNT}:function:{self.name}"),
                ("lambda-runtime-trace-id", f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0"),
            ]
            await respond(send, 200, headers, invocation.payload)
            return
        body = await read_body(receive)
        if action == "/init/error":
            error = _error_from(body, "Runtime.InitError")
            self._fail_queued(error)  # Lambda answers queued invocations with the init error
            self._retire(worker, error)
        elif action.startswith("/invocation/"):
            request_id, _, outcome = action[len("/invocation/") :].partition("/")
            invocation = worker.current
            if invocation is None or invocation.request_id != request_id:
                await _reply(send, 400, {"errorMessage": "unknown request id"})
                return
            worker.current = None
            if invocation.timer is not None:
                invocation.timer.cancel()
            if not invocation.future.done():
                if outcome == "response":
                    invocation.future.set_result(body)
                else:
                    invocation.future.set_exception(_error_from(body, "Runtime.Unknown"))
        await _reply(send, 202, {"status": "OK"})

    def stats(self) -> dict[str, Any]:
        return {
            "function": self.name,
            "workers": len(self.workers),
            "invocations": self.invocations,
            "cold_starts": self.cold_starts,
            "queued": self.queue.qsize(),
        }

    async def stop(self) -> None:
        shutdown = InvocationError("Runtime.Shutdown", "the local cloud is stopping")
        self._fail_queued(shutdown)
        for worker in list(self.workers.values()):
            self._retire(worker, shutdown)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _error_from(body: bytes, default_type: str) -> InvocationError:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        data = {"errorMessage": body.decode(errors="replace")}
    return InvocationError(
        str(data.get("errorType") or default_type),
        str(data.get("errorMessage", "")),
        [str(line) for line in data.get("stackTrace") or []],
    )


async def _reply(send: Send, status: int, body: dict[str, Any]) -> None:
    await respond(send, status, [("content-type", "application/json")], json.dumps(body).encode())
