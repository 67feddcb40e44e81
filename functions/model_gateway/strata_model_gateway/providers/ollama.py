"""Adapter for an Ollama host's native API (`/api/chat`, `/api/embed`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
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


class OllamaProvider(HttpProvider):
    """One Ollama host. Streams yield text deltas and tool calls as Ollama sends them, then one `done` chunk.

    Ollama names no tool calls, so calls without an `id` get `call_<n>` (n counts the answer's calls).
    """

    def __init__(self, name: str, base_url: str) -> None:
        self.name = name
        root = base_url.rstrip("/")
        self._root = root.removesuffix("/api")
        super().__init__({})

    async def chat(self, request: ChatRequest) -> ChatResult:
        url = f"{self._root}/api/chat"
        data = await post_json(self._http(), self.name, url, self._chat_body(request, stream=False), request.timeout_s)
        if data.get("error"):
            raise ProviderError("unavailable", f"{self.name}: {data['error']}")
        message = data.get("message")
        if not isinstance(message, dict):
            raise malformed(self.name, "answer has no message")
        tool_calls = self._tool_calls(message.get("tool_calls"), first_index=0)
        content = message.get("content")
        return ChatResult(
            content=content if isinstance(content, str) else "",
            tool_calls=tool_calls,
            finish_reason=_finish_reason(data.get("done_reason"), bool(tool_calls)),
            usage=_usage(data),
            raw_model=str(data.get("model") or ""),
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        url = f"{self._root}/api/chat"
        body = self._chat_body(request, stream=True)
        calls_seen = 0
        async with contextlib.aclosing(stream_lines(self._http(), self.name, url, body, request.timeout_s)) as lines:
            async for line in lines:
                if not line.strip():
                    continue
                event = self._event(line)
                message = event.get("message") or {}
                text = message.get("content")
                if isinstance(text, str) and text:
                    yield StreamChunk(delta=text)
                tool_calls = self._tool_calls(message.get("tool_calls"), first_index=calls_seen)
                if tool_calls:
                    calls_seen += len(tool_calls)
                    yield StreamChunk(tool_calls=tool_calls)
                if event.get("done"):
                    reason = _finish_reason(event.get("done_reason"), calls_seen > 0)
                    yield StreamChunk(done=True, finish_reason=reason, usage=_usage(event))
                    return
        raise ProviderError("cut", f"{self.name}: the stream ended before the answer was complete")

    async def embed(self, model: str, texts: list[str], timeout_s: float = 30.0) -> EmbeddingResult:
        if not texts:
            return EmbeddingResult(vectors=())
        data = await post_json(
            self._http(), self.name, f"{self._root}/api/embed", {"model": model, "input": texts}, timeout_s
        )
        embeddings = data.get("embeddings")
        if not isinstance(embeddings, list) or len(embeddings) != len(texts):
            raise malformed(self.name, f"expected {len(texts)} embeddings")
        try:
            vectors = tuple(tuple(float(x) for x in vector) for vector in embeddings)
        except (TypeError, ValueError) as exc:
            raise malformed(self.name, "embeddings are not lists of numbers") from exc
        return EmbeddingResult(vectors=vectors, usage=Usage(input_tokens=int(data.get("prompt_eval_count") or 0)))

    def _chat_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": _wire_messages(request.messages),
            "stream": stream,  # explicit: Ollama streams when it is left out
        }
        if request.tools:
            body["tools"] = function_tools(request.tools)
        if request.json_schema is not None:
            body["format"] = request.json_schema
        options: dict[str, Any] = {}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        if request.stop:
            options["stop"] = list(request.stop)
        if options:
            body["options"] = options
        return body

    def _event(self, line: str) -> dict[str, Any]:
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise malformed(self.name, f"stream line is not JSON: {line[:200]!r}") from exc
        if not isinstance(event, dict):
            raise malformed(self.name, "stream line is not a JSON object")
        if event.get("error"):
            # an error inside a 200 stream, e.g. the model runner stopped mid-answer
            raise ProviderError("unavailable", f"{self.name}: {event['error']}")
        return event

    def _tool_calls(self, raw: Any, *, first_index: int) -> tuple[ToolCall, ...]:
        if not raw:
            return ()
        if not isinstance(raw, list):
            raise malformed(self.name, "tool_calls is not a list")
        calls = []
        for offset, item in enumerate(raw):
            function = item.get("function") if isinstance(item, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise malformed(self.name, "tool call without a function name")
            name = function["name"]
            calls.append(
                ToolCall(
                    id=str(item.get("id") or f"call_{first_index + offset}"),
                    name=name,
                    arguments=parse_arguments(self.name, name, function.get("arguments")),
                )
            )
        return tuple(calls)


def _wire_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    tool_names: dict[str, str] = {}  # call id -> tool name, for tool results that do not say which tool answered
    wire: list[dict[str, Any]] = []
    for message in messages:
        entry: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.role == "assistant" and message.tool_calls:
            entry["tool_calls"] = [
                {"function": {"name": call.name, "arguments": call.arguments}} for call in message.tool_calls
            ]
            tool_names.update((call.id, call.name) for call in message.tool_calls)
        if message.role == "tool":
            name = message.name or tool_names.get(message.tool_call_id or "")
            if name:
                entry["tool_name"] = name
        wire.append(entry)
    return wire


def _finish_reason(raw: Any, has_tool_calls: bool) -> FinishReason:
    if has_tool_calls:
        return "tool_calls"  # Ollama says "stop" when the model called tools
    if raw in (None, "", "stop"):
        return "stop"
    return "length" if raw == "length" else "other"


def _usage(event: dict[str, Any]) -> Usage:
    return Usage(input_tokens=int(event.get("prompt_eval_count") or 0), output_tokens=int(event.get("eval_count") or 0))
