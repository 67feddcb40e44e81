"""Loopback model providers for tests: an OpenAI-compatible server and an Ollama server, scripted per request.

Each runs uvicorn in a thread of its own (so it serves sync and async tests alike, and a slow answer never blocks
the test's loop), speaks its provider's documented wire format, records every request, and answers each with the
next scripted `Reply` (or `default` when the script is empty)::

    with FakeOpenAI() as fake:
        fake.script(Reply(text="hi"), Reply(status=429, retry_after="2"))
        ...
        assert fake.requests[0].body["model"] == "gpt-4o-mini"
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import json
import logging
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from starlette.types import Message, Receive, Scope, Send

from strata_cli.localcloud.servers import Headers, QuietServer, bind_loopback, port_of, read_body, respond, serve

EMBEDDING_DIMENSIONS = 8
GREETING = "Hello! How can I help you today?"


@dataclass(frozen=True)
class FakeToolCall:
    """A tool call the fake model makes; `arguments` given as text are sent verbatim (e.g. broken JSON)."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None  # OpenAI: generated when None; Ollama: sent only when set (Ollama names no calls)


@dataclass(frozen=True)
class Reply:
    """How the fake answers one request."""

    text: str | None = None  # default: a greeting, or nothing when the reply calls tools or answers JSON
    json_answer: Any = None  # when set, the answer is this, serialised (structured output)
    tool_calls: tuple[FakeToolCall, ...] = ()
    finish_reason: str | None = None  # default: "tool_calls" (OpenAI) / "stop" (Ollama) with calls, else "stop"
    status: int = 200
    error: str = "something went wrong"  # the message of an error answer (status >= 400)
    retry_after: str | None = None  # Retry-After header value
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0  # before the answer starts
    chunk_delay_s: float = 0.0  # between streamed chunks
    cut_after: int | None = None  # streaming: stop after this many chunks, without the terminator
    cut_cleanly: bool = False  # with cut_after: end the HTTP body properly (else drop the connection)
    prompt_tokens: int = 11
    completion_tokens: int = 7
    cached_tokens: int = 0
    model: str | None = None  # the model the answer names; default: the one requested

    @property
    def content(self) -> str:
        if self.json_answer is not None:
            return json.dumps(self.json_answer)
        if self.text is not None:
            return self.text
        return "" if self.tool_calls else GREETING


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body (None when there was none or it was not JSON)


def embedding_for(text: str) -> tuple[float, ...]:
    """The vector both fakes return for `text`: deterministic, so tests can compare."""
    digest = hashlib.sha256(text.encode()).digest()
    return tuple(round(byte / 255, 6) for byte in digest[:EMBEDDING_DIMENSIONS])


def text_pieces(text: str) -> list[str]:
    """How the fakes split a streamed answer: one piece per word with its trailing space."""
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


class ConnectionDroppedError(Exception):
    """Raised inside the ASGI app to make uvicorn drop the connection mid-answer (a scripted cut)."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDroppedError))


_quiet_drops = _QuietDrops()


class FakeProviderServer(abc.ABC):
    """The scripted loopback server; subclasses speak one wire format."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.default = Reply()
        self._script: deque[Reply] = deque()
        self.responder: Callable[[RecordedRequest], Reply | None] | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: QuietServer | None = None
        self._stopping: asyncio.Event | None = None
        self._port = 0

    @property
    def url(self) -> str:
        if not self._port:
            raise RuntimeError("the fake provider is not running")
        return f"http://127.0.0.1:{self._port}"

    def script(self, *replies: Reply) -> None:
        """Queue answers for the next requests, in order (any endpoint)."""
        with self._lock:
            self._script.extend(replies)

    def respond_with(self, responder: Callable[[RecordedRequest], Reply | None] | None) -> None:
        """Answer each request by what it asks (for concurrent callers whose order a script cannot know): the
        responder's reply, or when it gives None, the script's next or the default."""
        with self._lock:
            self.responder = responder

    def reset(self) -> None:
        """Forget recorded requests, unused scripted answers and the responder; restore the default answer."""
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.default = Reply()
            self.responder = None

    def start(self) -> Self:
        if self._thread is not None:
            return self
        logging.getLogger("uvicorn.error").addFilter(_quiet_drops)
        sock = bind_loopback()
        self._port = port_of(sock)
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(sock, ready))
            except BaseException as exc:  # surfaced by start() when it happens before serving
                failure.append(exc)
                ready.set()
            finally:
                loop.close()
                sock.close()

        self._thread = threading.Thread(target=run, name=f"{type(self).__name__}:{self._port}", daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            self.stop()
            raise RuntimeError(f"{type(self).__name__} did not start") from (failure[0] if failure else None)
        return self

    def stop(self) -> None:
        thread, loop, server, stopping = self._thread, self._loop, self._server, self._stopping
        if thread is None:
            return
        if server is not None:
            server.should_exit = True
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)  # ends scripted delays at once
        thread.join(10)
        self._thread = self._loop = self._server = self._stopping = None
        self._port = 0

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    async def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        server, task = serve(self, sock, keep_alive_s=5, graceful_s=1)
        self._server = server
        while not server.started and not task.done():
            await asyncio.sleep(0.005)
        ready.set()
        await task

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = await read_body(receive)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        request = RecordedRequest(method=scope["method"], path=scope["path"], headers=headers, body=body)
        with self._lock:
            self.requests.append(request)
            reply = self.responder(request) if self.responder is not None else None
            if reply is None:
                reply = self._script.popleft() if self._script else self.default
        await self._pause(reply.delay_s)
        await self.handle(request, reply, send)

    @abc.abstractmethod
    async def handle(self, request: RecordedRequest, reply: Reply, send: Send) -> None:
        """Answer one request in the provider's wire format."""

    async def _pause(self, seconds: float) -> None:
        if seconds > 0 and self._stopping is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)

    async def send_json(self, send: Send, status: int, body: Any, extra: Sequence[tuple[str, str]] = ()) -> None:
        data = json.dumps(body).encode()
        headers = [("content-type", "application/json"), ("content-length", str(len(data))), *extra]
        await respond(send, status, headers, data)

    async def send_stream(self, send: Send, content_type: str, chunks: list[bytes], reply: Reply) -> None:
        """Send `chunks` as a chunked body, honouring the reply's chunk delay and cut."""
        start: Message = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", content_type.encode()), (b"cache-control", b"no-cache")],
        }
        await send(start)
        limit = len(chunks) if reply.cut_after is None else min(reply.cut_after, len(chunks))
        for chunk in chunks[:limit]:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await self._pause(reply.chunk_delay_s)
        if reply.cut_after is not None and not reply.cut_cleanly:
            raise ConnectionDroppedError(f"scripted cut after {limit} chunks")
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    def reply_headers(reply: Reply) -> Headers:
        extra = list(reply.headers)
        if reply.retry_after is not None:
            extra.append(("retry-after", reply.retry_after))
        return extra


class FakeOpenAI(FakeProviderServer):
    """An OpenAI-compatible server: `/v1/chat/completions` (plain and SSE), `/v1/embeddings`, `/v1/models`.

    With `api_key` set, requests without `Authorization: Bearer <api_key>` get OpenAI's 401.
    """

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self._serial = 0

    async def handle(self, request: RecordedRequest, reply: Reply, send: Send) -> None:
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            error = _openai_error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
            await self.send_json(send, 401, error)
            return
        if reply.status >= 400:
            kind = "rate_limit_exceeded" if reply.status == 429 else "invalid_request_error"
            await self.send_json(send, reply.status, _openai_error(reply.error, kind), self.reply_headers(reply))
            return
        body = request.body if isinstance(request.body, dict) else {}
        route = (request.method, request.path)
        if route == ("POST", "/v1/chat/completions"):
            if not isinstance(body.get("messages"), list) or not body.get("model"):
                await self.send_json(send, 400, _openai_error("'model' and 'messages' are required", "invalid_request"))
            elif body.get("stream"):
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                chunks = [f"data: {json.dumps(c)}\n\n".encode() for c in self._chunks(body, reply, include_usage)]
                await self.send_stream(send, "text/event-stream", [*chunks, b"data: [DONE]\n\n"], reply)
            else:
                await self.send_json(send, 200, self._completion(body, reply), self.reply_headers(reply))
        elif route == ("POST", "/v1/embeddings"):
            await self.send_json(send, 200, self._embeddings(body, reply))
        elif route == ("GET", "/v1/models"):
            model = {"id": reply.model or "gpt-4o-mini", "object": "model", "created": 1686935002, "owned_by": "fake"}
            await self.send_json(send, 200, {"object": "list", "data": [model]})
        else:
            await self.send_json(send, 404, _openai_error(f"Unknown request URL: {request.path}", "invalid_request"))

    def _next_id(self) -> str:
        self._serial += 1
        return f"chatcmpl-{self._serial:06d}"

    def _usage(self, reply: Reply) -> dict[str, Any]:
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }

    def _finish(self, reply: Reply) -> str:
        return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content or None, "refusal": None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id or f"call_{index:02d}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": _arguments_text(call)},
                }
                for index, call in enumerate(reply.tool_calls)
            ]
        return {
            "id": self._next_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply.model or body.get("model"),
            "system_fingerprint": "fp_44709d6fcb",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self._finish(reply)}],
            "usage": self._usage(reply),
        }

    def _chunks(self, body: dict[str, Any], reply: Reply, include_usage: bool) -> list[dict[str, Any]]:
        envelope = {
            "id": self._next_id(),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": reply.model or body.get("model"),
            "system_fingerprint": "fp_44709d6fcb",
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**envelope, "choices": [choice], **({"usage": None} if include_usage else {})}

        chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
        chunks += [chunk({"content": piece}) for piece in text_pieces(reply.content)]
        for index, call in enumerate(reply.tool_calls):
            opening = {"index": index, "id": call.id or f"call_{index:02d}", "type": "function"}
            chunks.append(chunk({"tool_calls": [{**opening, "function": {"name": call.name, "arguments": ""}}]}))
            arguments = _arguments_text(call)
            middle = len(arguments) // 2  # two pieces, so clients must join them
            for piece in (arguments[:middle], arguments[middle:]):
                chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
        chunks.append(chunk({}, self._finish(reply)))
        if include_usage:
            chunks.append({**envelope, "choices": [], "usage": self._usage(reply)})
        return chunks

    def _embeddings(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": index, "embedding": list(embedding_for(text))}
                for index, text in enumerate(texts)
            ],
            "model": reply.model or body.get("model"),
            "usage": {"prompt_tokens": reply.prompt_tokens, "total_tokens": reply.prompt_tokens},
        }


class FakeOllama(FakeProviderServer):
    """An Ollama server: `/api/chat` (plain and NDJSON stream, streaming unless `"stream": false`), `/api/embed`,
    `/api/tags` and `/`."""

    def __init__(self, known_models: tuple[str, ...] | None = None) -> None:
        super().__init__()
        self.known_models = known_models  # when set, other models get Ollama's 404 "not found"

    async def handle(self, request: RecordedRequest, reply: Reply, send: Send) -> None:
        extra = self.reply_headers(reply)
        if reply.status >= 400:
            await self.send_json(send, reply.status, {"error": reply.error}, extra)
            return
        body = request.body if isinstance(request.body, dict) else {}
        route = (request.method, request.path)
        model = body.get("model")
        if route in (("POST", "/api/chat"), ("POST", "/api/embed")) and not model:
            await self.send_json(send, 400, {"error": "model is required"})
        elif (
            route in (("POST", "/api/chat"), ("POST", "/api/embed"))
            and self.known_models is not None
            and (model not in self.known_models)
        ):
            await self.send_json(send, 404, {"error": f'model "{model}" not found, try pulling it first'})
        elif route == ("POST", "/api/chat"):
            if body.get("stream", True):
                lines = [(json.dumps(line) + "\n").encode() for line in self._lines(body, reply)]
                await self.send_stream(send, "application/x-ndjson", lines, reply)
            else:
                await self.send_json(send, 200, self._answer(body, reply), extra)
        elif route == ("POST", "/api/embed"):
            texts = body.get("input")
            texts = [texts] if isinstance(texts, str) else list(texts or [])
            answer = {
                "model": reply.model or model,
                "embeddings": [list(embedding_for(text)) for text in texts],
                "total_duration": 14143917,
                "load_duration": 1019500,
                "prompt_eval_count": reply.prompt_tokens,
            }
            await self.send_json(send, 200, answer)
        elif route == ("GET", "/api/tags"):
            names = self.known_models or (reply.model or "llama3.2",)
            await self.send_json(send, 200, {"models": [{"name": name, "model": name} for name in names]})
        elif route == ("GET", "/"):
            await respond(send, 200, [("content-type", "text/plain; charset=utf-8")], b"Ollama is running")
        else:
            await respond(send, 404, [("content-type", "text/plain")], b"404 page not found")

    def _envelope(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        created = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        return {"model": reply.model or body.get("model"), "created_at": created}

    def _final(self, reply: Reply) -> dict[str, Any]:
        return {
            "done": True,
            "done_reason": reply.finish_reason or "stop",
            "total_duration": 5191566416,
            "load_duration": 2154458,
            "prompt_eval_count": reply.prompt_tokens,
            "prompt_eval_duration": 383809000,
            "eval_count": reply.completion_tokens,
            "eval_duration": 4799921000,
        }

    def _tool_calls(self, reply: Reply) -> list[dict[str, Any]]:
        calls = []
        for index, call in enumerate(reply.tool_calls):
            wire: dict[str, Any] = {"function": {"index": index, "name": call.name, "arguments": call.arguments}}
            if call.id:
                wire["id"] = call.id
            calls.append(wire)
        return calls

    def _answer(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.tool_calls:
            message["tool_calls"] = self._tool_calls(reply)
        return {**self._envelope(body, reply), "message": message, **self._final(reply)}

    def _lines(self, body: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
        def line(message: dict[str, Any]) -> dict[str, Any]:
            return {**self._envelope(body, reply), "message": {"role": "assistant", **message}, "done": False}

        lines = [line({"content": piece}) for piece in text_pieces(reply.content)]
        if reply.tool_calls:
            lines.append(line({"content": "", "tool_calls": self._tool_calls(reply)}))
        final = {**self._envelope(body, reply), "message": {"role": "assistant", "content": ""}, **self._final(reply)}
        return [*lines, final]


def _openai_error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _arguments_text(call: FakeToolCall) -> str:
    return call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
