"""A loopback Amazon Bedrock Runtime speaking the REST protocol botocore sends, with scripted answers per model id.

Routes (rest-json, `{modelId}` URL-encoded in the path as botocore sends it):

- `POST /model/{modelId}/converse`: JSON in, JSON out (`output.message.content`, `stopReason`, `usage`, `metrics`).
- `POST /model/{modelId}/converse-stream`: `application/vnd.amazon.eventstream`, one AWS event-stream frame per
  event (messageStart, contentBlockStart for a tool use, contentBlockDelta, contentBlockStop, messageStop,
  metadata); an exception is a frame with `:message-type` "exception" and its `:exception-type`.
- `POST /model/{modelId}/invoke`: embeddings (Titan Text Embeddings `{"inputText"}`, Cohere Embed `{"texts"}`), the
  input token count in `X-Amzn-Bedrock-Input-Token-Count` as Bedrock sends it.

Errors are what botocore parses into a ClientError: the HTTP status, `x-amzn-ErrorType` and a body
`{"message": ...}`. A model id nobody scripted gets Bedrock's ValidationException for an unknown model.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import hashlib
import json
import logging
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from starlette.types import Receive, Scope, Send

from strata_cli.localcloud.servers import QuietServer, bind_loopback, port_of, read_body, respond, serve

EVENT_STREAM = "application/vnd.amazon.eventstream"
ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"  # as AWS appends it; botocore drops it
EMBEDDING_DIMENSIONS = 8


# --- AWS event-stream encoding ---


def encode_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total length, headers length, CRC32), headers, payload, CRC32."""
    raw_headers = b"".join(_string_header(name, value) for name, value in headers.items())
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    message = prelude + raw_headers + payload
    return message + struct.pack(">I", binascii.crc32(message))


def _string_header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    # header value type 7: a string, its length as a big-endian uint16
    return struct.pack(">B", len(raw_name)) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value


def event_frame(event_type: str, body: dict[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_frame(headers, json.dumps(body).encode())


def exception_frame(exception_type: str, body: dict[str, Any]) -> bytes:
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return encode_frame(headers, json.dumps(body).encode())


# --- scripted behaviours ---


@dataclass(frozen=True)
class ToolUse:
    """A tool call in an answer; `input` as a string is sent as is (streamed in fragments), to script bad JSON."""

    tool_use_id: str
    name: str
    input: dict[str, Any] | str


@dataclass(frozen=True)
class Answer:
    """The model answers: text, then tool uses. Streams send text in `piece_chars` pieces and tool input JSON in
    `piece_chars` fragments. `cut_after_frames`: the body ends cleanly after that many frames; `abort_after_frames`:
    the connection breaks (half a frame sent, no final chunk); `exception_after_frames`: an exception frame of
    type `stream_exception` instead of the rest."""

    text: str = ""
    tool_uses: tuple[ToolUse, ...] = ()
    stop_reason: str = "end_turn"
    input_tokens: int = 25
    output_tokens: int = 9
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    delay_s: float = 0.0
    piece_chars: int = 4
    cut_after_frames: int | None = None
    abort_after_frames: int | None = None
    exception_after_frames: int | None = None
    stream_exception: str = "modelStreamErrorException"


@dataclass(frozen=True)
class Failure:
    """An error response: `status`, `x-amzn-ErrorType: {error_type}` and `{"message": message}`."""

    status: int
    error_type: str
    message: str = "scripted failure"
    delay_s: float = 0.0


Behaviour = Answer | Failure


@dataclass(frozen=True)
class RecordedRequest:
    operation: str  # "converse", "converse-stream" or "invoke"
    model_id: str
    path: str  # as sent (URL-encoded)
    headers: dict[str, str]
    body: Any  # the decoded JSON body


def embedding_for(text: str) -> list[float]:
    """The vector this server returns for `text`: deterministic, so tests can compare."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round(byte / 255, 6) for byte in digest[:EMBEDDING_DIMENSIONS]]


def token_count(text: str) -> int:
    return len(text.split())


class _Abort(Exception):
    """Raised inside the app to make uvicorn drop the connection mid-body."""


class _HideAborts(logging.Filter):
    """An aborted response is the server's own doing: uvicorn need not log it as an application error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _Abort))


_hide_aborts = _HideAborts()


class BedrockServer:
    """Bedrock Runtime on 127.0.0.1 (any free port), served by uvicorn in a thread of its own."""

    def __init__(self) -> None:
        self._scripts: dict[str, list[Behaviour]] = {}
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._sock = bind_loopback()
        self._sock.listen(128)
        self._server: QuietServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="bedrock-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{port_of(self._sock)}"

    def script(self, model_id: str, *behaviours: Behaviour) -> None:
        """Answer calls to `model_id` with `behaviours` in turn; the last one repeats."""
        with self._lock:
            self._scripts[model_id] = list(behaviours)

    def requests(self, model_id: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if r.model_id == model_id]

    def start(self) -> BedrockServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not (self._server is not None and self._server.started):
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Bedrock test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._closing is not None:
            self._loop.call_soon_threadsafe(self._closing.set)  # ends scripted delays now
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(10)

    def _run(self) -> None:
        logging.getLogger("uvicorn.error").addFilter(_hide_aborts)  # the same object each time: added once
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._closing = asyncio.Event()
        server, task = serve(self._app, self._sock, keep_alive_s=5, graceful_s=1)
        self._server = server
        await task

    def _next(self, model_id: str) -> Behaviour | None:
        with self._lock:
            script = self._scripts.get(model_id)
            if not script:
                return None
            return script.pop(0) if len(script) > 1 else script[0]

    # --- the ASGI app ---

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        parts = raw_path.decode("latin-1").split("?", 1)[0].split("/")
        body = await read_body(receive)
        if scope["method"] != "POST" or len(parts) != 4 or parts[1] != "model":
            await self._error(send, Failure(404, "UnknownOperationException", "no such operation"))
            return
        model_id, operation = unquote(parts[2]), parts[3]
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        try:
            decoded = json.loads(body) if body else None
        except ValueError:
            await self._error(send, Failure(400, "SerializationException", "the body is not JSON"))
            return
        with self._lock:
            self._requests.append(RecordedRequest(operation, model_id, raw_path.decode("latin-1"), headers, decoded))
        if operation == "invoke":
            await self._invoke(send, model_id, decoded)
            return
        if operation not in ("converse", "converse-stream"):
            await self._error(send, Failure(404, "UnknownOperationException", f"no operation {operation}"))
            return
        behaviour = self._next(model_id)
        if behaviour is None:
            behaviour = Failure(400, "ValidationException", "The provided model identifier is invalid.")
        await self._delay(behaviour.delay_s)
        if isinstance(behaviour, Failure):
            await self._error(send, behaviour)
        elif operation == "converse":
            await self._json(send, 200, converse_response(behaviour))
        else:
            await self._stream(send, behaviour)

    async def _delay(self, seconds: float) -> None:
        if seconds > 0 and self._closing is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), seconds)

    async def _stream(self, send: Send, answer: Answer) -> None:
        headers = [("content-type", EVENT_STREAM), ("x-amzn-requestid", str(uuid.uuid4()))]
        raw = [(name.encode(), value.encode()) for name, value in headers]
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        for sent, frame in enumerate(stream_frames(answer)):
            if sent == answer.cut_after_frames:
                break
            if sent == answer.abort_after_frames:
                await send({"type": "http.response.body", "body": frame[: len(frame) // 2], "more_body": True})
                raise _Abort  # uvicorn closes the connection without the chunked body's last chunk
            if sent == answer.exception_after_frames:
                body = {"message": "The model stream failed.", "originalStatusCode": 500}
                await send({"type": "http.response.body", "body": exception_frame(answer.stream_exception, body)})
                return
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _invoke(self, send: Send, model_id: str, body: Any) -> None:
        behaviour = self._next(model_id)
        if isinstance(behaviour, Failure):
            await self._delay(behaviour.delay_s)
            await self._error(send, behaviour)
            return
        if (
            model_id.startswith("amazon.titan-embed")
            and isinstance(body, dict)
            and isinstance(body.get("inputText"), str)
        ):
            text = body["inputText"]
            tokens = token_count(text)
            answer: dict[str, Any] = {
                "embedding": embedding_for(text),
                "inputTextTokenCount": tokens,
                "embeddingsByType": {"float": embedding_for(text)},
            }
        elif model_id.startswith("cohere.embed") and isinstance(body, dict) and isinstance(body.get("texts"), list):
            texts = [str(t) for t in body["texts"]]
            tokens = sum(token_count(t) for t in texts)
            answer = {
                "id": str(uuid.uuid4()),
                "texts": texts,
                "embeddings": [embedding_for(t) for t in texts],
                "response_type": "embeddings_floats",
            }
        else:
            await self._error(send, Failure(400, "ValidationException", "Malformed input request"))
            return
        await self._json(send, 200, answer, [("x-amzn-bedrock-input-token-count", str(tokens))])

    async def _json(self, send: Send, status: int, body: Any, extra: list[tuple[str, str]] | None = None) -> None:
        data = json.dumps(body).encode()
        headers = [
            ("content-type", "application/json"),
            ("content-length", str(len(data))),
            ("x-amzn-requestid", str(uuid.uuid4())),
            *(extra or []),
        ]
        await respond(send, status, headers, data)

    async def _error(self, send: Send, failure: Failure) -> None:
        await self._json(
            send,
            failure.status,
            {"message": failure.message},
            [("x-amzn-errortype", failure.error_type + ERROR_TYPE_SUFFIX)],
        )


# --- responses, modelled on AWS's documented examples ---


def _usage(answer: Answer) -> dict[str, int]:
    usage = {
        "inputTokens": answer.input_tokens,
        "outputTokens": answer.output_tokens,
        "totalTokens": answer.input_tokens
        + answer.output_tokens
        + answer.cache_read_tokens
        + answer.cache_write_tokens,
    }
    if answer.cache_read_tokens or answer.cache_write_tokens:
        usage["cacheReadInputTokens"] = answer.cache_read_tokens
        usage["cacheWriteInputTokens"] = answer.cache_write_tokens
    return usage


def _tool_input(use: ToolUse) -> str:
    return use.input if isinstance(use.input, str) else json.dumps(use.input)


def converse_response(answer: Answer) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if answer.text:
        content.append({"text": answer.text})
    for use in answer.tool_uses:
        content.append({"toolUse": {"toolUseId": use.tool_use_id, "name": use.name, "input": use.input}})
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": answer.stop_reason,
        "usage": _usage(answer),
        "metrics": {"latencyMs": 321},
    }


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def stream_frames(answer: Answer) -> Iterator[bytes]:
    """The ConverseStream events of `answer`, one frame each, as Bedrock orders them."""
    padding = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"  # Bedrock pads events with a "p" field; clients ignore it
    yield event_frame("messageStart", {"role": "assistant", "p": padding[:8]})
    index = 0
    if answer.text:
        for piece in _pieces(answer.text, answer.piece_chars):
            yield event_frame("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}, "p": "ab"})
        yield event_frame("contentBlockStop", {"contentBlockIndex": index, "p": padding[:12]})
        index += 1
    for use in answer.tool_uses:
        start = {"toolUse": {"toolUseId": use.tool_use_id, "name": use.name}}
        yield event_frame("contentBlockStart", {"contentBlockIndex": index, "start": start, "p": "abc"})
        for fragment in _pieces(_tool_input(use), answer.piece_chars):
            delta = {"toolUse": {"input": fragment}}
            yield event_frame("contentBlockDelta", {"contentBlockIndex": index, "delta": delta, "p": "abcd"})
        yield event_frame("contentBlockStop", {"contentBlockIndex": index, "p": padding[:5]})
        index += 1
    yield event_frame("messageStop", {"stopReason": answer.stop_reason, "p": padding[:10]})
    yield event_frame("metadata", {"usage": _usage(answer), "metrics": {"latencyMs": 321}, "p": padding[:3]})
