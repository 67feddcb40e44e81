"""Adapter for any server speaking OpenAI's chat-completions and embeddings API (OpenAI, vLLM, llama.cpp, ...)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .base import (
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    FinishReason,
    Message,
    ProviderError,
    StreamChunk,
    ToolCall,
    Usage,
)
from .http import HttpProvider, function_tools, malformed, parse_arguments, post_json, stream_lines

_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


@dataclass
class _PartialToolCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    parsed: dict[str, Any] | None = None  # a server that streams arguments as an object rather than text


class OpenAICompatibleProvider(HttpProvider):
    """One OpenAI-compatible endpoint. `base_url` may end in `/v1` or not; `api_key` is sent as a bearer token.

    Streams yield text deltas as they arrive; tool calls come whole, in one chunk just before the final `done` one.
    """

    def __init__(
        self, name: str, base_url: str, api_key: str | None, extra_headers: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        root = base_url.rstrip("/")
        self._api = root if root.endswith("/v1") else root + "/v1"
        auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        super().__init__({**(extra_headers or {}), **auth})

    async def chat(self, request: ChatRequest) -> ChatResult:
        url = f"{self._api}/chat/completions"
        data = await post_json(self._http(), self.name, url, self._chat_body(request, stream=False), request.timeout_s)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise malformed(self.name, "answer has no choices")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise malformed(self.name, "answer has no message")
        raw_calls = message.get("tool_calls") or []
        if not isinstance(raw_calls, list):
            raise malformed(self.name, "tool_calls is not a list")
        tool_calls = tuple(self._tool_call(index, raw) for index, raw in enumerate(raw_calls))
        content = message.get("content")
        return ChatResult(
            content=content if isinstance(content, str) else "",
            tool_calls=tool_calls,
            finish_reason=_finish_reason(choices[0].get("finish_reason"), bool(tool_calls)),
            usage=_usage(data.get("usage")),
            raw_model=str(data.get("model") or ""),
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        url = f"{self._api}/chat/completions"
        body = self._chat_body(request, stream=True)
        partials: dict[int, _PartialToolCall] = {}
        finish: str | None = None
        usage = Usage()
        terminated = False
        async with contextlib.aclosing(stream_lines(self._http(), self.name, url, body, request.timeout_s)) as lines:
            async for payload in _sse_data(lines):
                if payload.strip() == "[DONE]":
                    terminated = True
                    break
                event = self._event(payload)
                if event.get("usage"):
                    usage = _usage(event["usage"])
                for choice in event.get("choices") or []:
                    if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                        continue
                    delta = choice.get("delta") or {}
                    text = delta.get("content")
                    if isinstance(text, str) and text:
                        yield StreamChunk(delta=text)
                    for position, piece in enumerate(delta.get("tool_calls") or []):
                        _accumulate(partials, position, piece)
                    if choice.get("finish_reason"):
                        finish = str(choice["finish_reason"])
        if not terminated and finish is None:
            raise ProviderError("cut", f"{self.name}: the stream ended before the answer was complete")
        tool_calls = tuple(self._finish_tool_call(index, partials[index]) for index in sorted(partials))
        if tool_calls:
            yield StreamChunk(tool_calls=tool_calls)
        reason = _finish_reason(finish, bool(tool_calls)) if finish is not None else "other"
        yield StreamChunk(done=True, finish_reason=reason, usage=usage)

    async def embed(self, model: str, texts: list[str], timeout_s: float = 30.0) -> EmbeddingResult:
        if not texts:
            return EmbeddingResult(vectors=())
        body = {"model": model, "input": texts, "encoding_format": "float"}
        data = await post_json(self._http(), self.name, f"{self._api}/embeddings", body, timeout_s)
        items = data.get("data")
        if not isinstance(items, list) or len(items) != len(texts):
            raise malformed(self.name, f"expected {len(texts)} embeddings")
        try:
            ordered = sorted(items, key=lambda item: int(item.get("index", 0)))
            vectors = tuple(tuple(float(x) for x in item["embedding"]) for item in ordered)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise malformed(self.name, "embeddings are not lists of numbers") from exc
        return EmbeddingResult(vectors=vectors, usage=_usage(data.get("usage")))

    def _chat_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model, "messages": [_wire_message(m) for m in request.messages]}
        if request.tools:
            body["tools"] = function_tools(request.tools)
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.stop:
            body["stop"] = list(request.stop)
        if request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.json_schema, "strict": True},
            }
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _event(self, payload: str) -> dict[str, Any]:
        try:
            event = json.loads(payload)
        except ValueError as exc:
            raise malformed(self.name, f"stream event is not JSON: {payload[:200]!r}") from exc
        if not isinstance(event, dict):
            raise malformed(self.name, "stream event is not a JSON object")
        if event.get("error"):
            # an error reported inside a 200 stream: the server gave up mid-answer
            error = event["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise ProviderError("unavailable", f"{self.name}: {message}")
        return event

    def _tool_call(self, index: int, raw: Any) -> ToolCall:
        function = raw.get("function") if isinstance(raw, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise malformed(self.name, "tool call without a function name")
        name = function["name"]
        return ToolCall(
            id=str(raw.get("id") or f"call_{index}"),
            name=name,
            arguments=parse_arguments(self.name, name, function.get("arguments")),
        )

    def _finish_tool_call(self, index: int, partial: _PartialToolCall) -> ToolCall:
        if not partial.name:
            raise malformed(self.name, f"streamed tool call {index} has no name")
        arguments = partial.parsed if partial.parsed is not None else "".join(partial.arguments)
        return ToolCall(
            id=partial.id or f"call_{index}",
            name=partial.name,
            arguments=parse_arguments(self.name, partial.name, arguments),
        )


async def _sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The `data` of each server-sent event (multi-line data joined); comments and other fields are skipped."""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def _accumulate(partials: dict[int, _PartialToolCall], position: int, piece: Any) -> None:
    """Merge one streamed tool-call delta into the call it continues (matched by `index`)."""
    if not isinstance(piece, dict):
        return
    index = piece.get("index")
    partial = partials.setdefault(index if isinstance(index, int) else position, _PartialToolCall())
    if piece.get("id"):
        partial.id = str(piece["id"])
    function = piece.get("function") or {}
    if isinstance(function.get("name"), str) and function["name"] and not partial.name:
        partial.name = function["name"]
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        partial.arguments.append(arguments)
    elif isinstance(arguments, dict):
        partial.parsed = arguments


def _wire_message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        if not message.tool_call_id:
            raise ProviderError("bad_request", "a tool message needs the tool_call_id it answers")
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        wire["content"] = message.content or None
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
    return wire


def _finish_reason(raw: Any, has_tool_calls: bool) -> FinishReason:
    reason: FinishReason = _FINISH_REASONS.get(str(raw), "other") if raw else "stop"
    # several compatible servers (and Ollama) say "stop" when the model called tools
    return "tool_calls" if has_tool_calls and reason == "stop" else reason


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        input_tokens=int(raw.get("prompt_tokens") or 0),
        output_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(cached or 0),
    )
