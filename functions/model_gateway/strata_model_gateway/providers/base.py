"""The one interface every provider adapter implements, and the normalised shapes it speaks.

An adapter turns a `ChatRequest` into its provider's wire format and the answer back into a `ChatResult`
(or a stream of `StreamChunk`s ending in one with `done=True` carrying usage). It raises `ProviderError` for
anything that went wrong: `retryable` tells the router whether another attempt (or the next model) may help.
Tool calls are normalised to `ToolCall(id, name, arguments: dict)`; arguments that are not a JSON object are a
`ProviderError(kind="malformed")`, never passed on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "other"]
ErrorKind = Literal["timeout", "unavailable", "rate_limited", "bad_request", "auth", "malformed", "cut", "other"]
RETRYABLE: frozenset[str] = frozenset({"timeout", "unavailable", "rate_limited", "cut", "malformed"})


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # for role "tool": the call this answers
    name: str | None = None  # for role "tool": the tool's name (some providers want it)


@dataclass(frozen=True)
class Tool:
    """A function the model may call; `parameters` is a JSON Schema object."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ChatRequest:
    """What one provider call needs. `model` is the provider's own model id (catalogue `provider_model`)."""

    model: str
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    json_schema: dict[str, Any] | None = None  # structured output: the answer must validate against it
    temperature: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    timeout_s: float = 60.0


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0


@dataclass(frozen=True)
class ChatResult:
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason = "stop"
    usage: Usage = field(default_factory=Usage)
    raw_model: str = ""  # the model the provider says answered


@dataclass(frozen=True)
class StreamChunk:
    """A piece of a streamed answer; the last has `done=True` and carries `usage` and `finish_reason`."""

    delta: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    done: bool = False
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: tuple[tuple[float, ...], ...]
    usage: Usage = field(default_factory=Usage)


class ProviderError(Exception):
    """A provider call failed; `kind` classifies it, `status` is the provider's HTTP status when there was one."""

    def __init__(self, kind: ErrorKind, message: str, *, status: int | None = None, retry_after_s: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after_s = retry_after_s

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


class Provider(Protocol):
    """One provider endpoint (an Ollama host, an OpenAI-compatible base URL, Bedrock in a region, the embedded
    model). `name` is what the catalogue's `provider` column names."""

    name: str

    async def chat(self, request: ChatRequest) -> ChatResult: ...

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]: ...

    async def embed(self, model: str, texts: list[str], timeout_s: float = 30.0) -> EmbeddingResult: ...

    async def aclose(self) -> None: ...
