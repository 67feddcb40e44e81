"""Model calls: the native chat API, an OpenAI-compatible alias, and embeddings.

`stream: true` answers as server-sent events. Lambda (through API Gateway) buffers a function's response, so
there the events arrive together when the answer is complete; the local cloud's front does the same.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from strata.auth import Principal
from strata.errors import InvalidInputError
from strata.events.common import TaskKey
from strata.web import require_scope
from strata_model_gateway import catalogue, embeddings, gateway
from strata_model_gateway.providers.base import Message, Tool, ToolCall
from strata_model_gateway.routing import Requirements, Strategy

router = APIRouter(tags=["model calls"])
ToolName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class ToolCallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200)
    name: ToolName
    arguments: dict[str, Any]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant", "tool"]
    content: str = Field(default="", max_length=500_000)
    tool_calls: list[ToolCallIn] = Field(default_factory=list, max_length=64)
    tool_call_id: str | None = Field(default=None, max_length=200, description="For role tool: the call answered")
    name: str | None = Field(default=None, max_length=64)


class ToolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: ToolName
    description: str = Field(default="", max_length=4000)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"}, description="A JSON Schema")


class ChatBody(BaseModel):
    """Name a model (and fallbacks), or give requirements and a strategy."""

    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(default=None, max_length=200, description="A catalogue name; else routed")
    fallbacks: list[str] = Field(default_factory=list, max_length=5, description="Tried in order after it")
    requirements: Requirements = Field(default_factory=Requirements)
    strategy: Strategy = "cheapest"
    messages: list[ChatMessage] = Field(min_length=1, max_length=500)
    tools: list[ToolSpec] = Field(default_factory=list, max_length=64)
    response_schema: dict[str, Any] | None = Field(default=None, description="The answer must validate against it")
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=65_536)
    stop: list[str] = Field(default_factory=list, max_length=4)
    stream: bool = False
    cache: bool = Field(default=True, description="false: never answer from (or store in) the answer cache")
    purpose: str = Field(default="", max_length=50, description="e.g. planning, agent_turn, judge")
    run_id: UUID | None = None
    task_id: TaskKey | None = None


class ModelAttempt(BaseModel):
    model: str
    provider: str
    outcome: str
    detail: str
    latency_ms: float
    cost_micro_usd: int


class ToolCallOut(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any]


class TokenUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    cached_tokens: int


class ChatAnswer(BaseModel):
    model: str
    provider: str
    content: str
    tool_calls: list[ToolCallOut]
    finish_reason: str
    usage: TokenUsage
    cost_micro_usd: int
    latency_ms: float
    cache: Literal["hit", "semantic_hit", "miss", "off"]
    attempts: list[ModelAttempt]


# routes whose gateway call charges the caller's request limits with its own (strata.web: self_limiting_paths)
SELF_LIMITING_PATHS = ("/v1/models/chat", "/v1/chat/completions", "/v1/models/embeddings")


def _messages(items: list[ChatMessage]) -> tuple[Message, ...]:
    return tuple(
        Message(
            role=m.role,
            content=m.content,
            tool_calls=tuple(ToolCall(c.id, c.name, c.arguments) for c in m.tool_calls),
            tool_call_id=m.tool_call_id,
            name=m.name,
        )
        for m in items
    )


def _tools(items: list[ToolSpec]) -> tuple[Tool, ...]:
    if len({t.name for t in items}) != len(items):
        raise InvalidInputError("tool names must be unique")
    return tuple(Tool(t.name, t.description, t.parameters) for t in items)


def _call(body: ChatBody, principal: Principal, request: Request) -> gateway.Call:
    return gateway.Call(
        tenant_id=principal.tenant_id,
        tier=principal.tier,
        correlation_id=request.state.correlation_id,
        messages=_messages(body.messages),
        model=body.model,
        requirements=body.requirements,
        strategy=body.strategy,
        fallbacks=tuple(body.fallbacks),
        tools=_tools(body.tools),
        json_schema=body.response_schema,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
        stop=tuple(body.stop),
        cache=body.cache and not body.stream,
        purpose=body.purpose,
        run_id=body.run_id,
        task_id=body.task_id,
    )


async def _sse(events: AsyncIterator[tuple[str, dict[str, Any]]]) -> AsyncIterator[bytes]:
    async for event, data in events:
        yield f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


async def _first_then_rest(
    events: AsyncIterator[tuple[str, dict[str, Any]]],
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Pull the first event before the response starts, so that limits, routing and budget problems still
    answer with their own status (problem+json), not inside a 200 stream."""
    first = await anext(events)

    async def chained() -> AsyncIterator[tuple[str, dict[str, Any]]]:
        yield first
        async for item in events:
            yield item

    return chained()


@router.post(
    "/v1/models/chat",
    response_model=ChatAnswer,
    summary="Call a model: named, or routed by requirements; fallbacks, budgets, caching and metering included.",
    responses={200: {"content": {"text/event-stream": {}}, "description": "With stream: true, server-sent events"}},
)
async def chat(
    body: ChatBody, principal: Annotated[Principal, Depends(require_scope("models:invoke"))], request: Request
) -> Any:
    """Call a model: named, or routed by requirements; fallbacks, budgets, caching and metering included."""
    call = _call(body, principal, request)
    if body.stream:
        events = await _first_then_rest(gateway.stream(call))
        return StreamingResponse(_sse(events), media_type="text/event-stream", headers={"cache-control": "no-cache"})
    # the gateway builds this answer itself: returned as it is, it skips a second validation (the hot path)
    return JSONResponse(gateway.answer_body(await gateway.chat(call)))


# --- the OpenAI-compatible alias ---


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class OpenAIChatBody(BaseModel):
    """The subset of OpenAI's chat completion request Strata honours; other fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1, max_length=200, description="A catalogue name, or 'auto' to route")
    messages: list[OpenAIMessage] = Field(min_length=1, max_length=500)
    tools: list[dict[str, Any]] = Field(default_factory=list, max_length=64)
    response_format: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=65_536)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=65_536)
    stop: str | list[str] | None = None
    stream: bool = False
    n: int = Field(default=1, ge=1, le=1, description="Only one choice is supported")


def _openai_text(content: str | list[dict[str, Any]] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = [part.get("text", "") for part in content if part.get("type") == "text"]
    if len(texts) != len(content):
        raise InvalidInputError("only text content parts are supported")
    return "".join(texts)


def _from_openai(body: OpenAIChatBody) -> tuple[list[ChatMessage], list[ToolSpec], dict[str, Any] | None]:
    messages = []
    for m in body.messages:
        calls = []
        for c in m.tool_calls or []:
            function = c.get("function") or {}
            try:
                arguments = json.loads(function.get("arguments") or "{}")
            except ValueError as exc:
                raise InvalidInputError("a tool call's arguments are not JSON") from exc
            calls.append(ToolCallIn(id=str(c.get("id", "")), name=str(function.get("name", "")), arguments=arguments))
        role = "system" if m.role == "developer" else m.role
        messages.append(
            ChatMessage(role=role, content=_openai_text(m.content), tool_calls=calls, tool_call_id=m.tool_call_id)
        )
    tools = []
    for t in body.tools:
        function = t.get("function") or {}
        if t.get("type") != "function" or not function.get("name"):
            raise InvalidInputError("tools must be of type function, with a name")
        tools.append(
            ToolSpec(
                name=function["name"],
                description=function.get("description", ""),
                parameters=function.get("parameters") or {"type": "object"},
            )
        )
    schema = None
    if body.response_format is not None:
        kind = body.response_format.get("type")
        if kind == "json_schema":
            schema = (body.response_format.get("json_schema") or {}).get("schema")
            if not isinstance(schema, dict):
                raise InvalidInputError("response_format.json_schema.schema must be a JSON Schema object")
        elif kind == "json_object":
            schema = {"type": "object"}
        elif kind != "text":
            raise InvalidInputError(f"response_format type {kind!r} is not supported")
    return messages, tools, schema


def _openai_answer(answer: dict[str, Any], completion_id: str, created: int) -> dict[str, Any]:
    calls = [
        {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
        for c in answer["tool_calls"]
    ]
    message: dict[str, Any] = {"role": "assistant", "content": answer["content"] if not calls else None}
    if calls:
        message["tool_calls"] = calls
    usage = answer["usage"]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": answer["model"],
        "choices": [{"index": 0, "message": message, "finish_reason": answer["finish_reason"], "logprobs": None}],
        "usage": {
            "prompt_tokens": usage["input_tokens"],
            "completion_tokens": usage["output_tokens"],
            "total_tokens": usage["input_tokens"] + usage["output_tokens"],
            "prompt_tokens_details": {"cached_tokens": usage["cached_tokens"]},
        },
    }


async def _openai_chunks(answer: dict[str, Any], completion_id: str, created: int) -> AsyncIterator[bytes]:
    """The answer as OpenAI's chunk stream (sent once it is complete and valid, so fallbacks stay invisible)."""
    whole = _openai_answer(answer, completion_id, created)
    base = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": whole["model"]}
    message = whole["choices"][0]["message"]
    delta: dict[str, Any] = {"role": "assistant", "content": message["content"]}
    if "tool_calls" in message:
        delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(message["tool_calls"])]
    for payload in (
        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": whole["choices"][0]["finish_reason"]}]},
        {**base, "choices": [], "usage": whole["usage"]},
    ):
        yield f"data: {json.dumps(payload)}\n\n".encode()
    yield b"data: [DONE]\n\n"


@router.post(
    "/v1/chat/completions",
    summary="OpenAI-compatible chat completions over the gateway (model: a catalogue name, or auto).",
    responses={200: {"content": {"text/event-stream": {}}, "description": "With stream: true, OpenAI's chunks"}},
)
async def chat_completions(
    body: OpenAIChatBody, principal: Annotated[Principal, Depends(require_scope("models:invoke"))], request: Request
) -> Any:
    """OpenAI-compatible chat completions over the gateway (model: a catalogue name, or auto)."""
    messages, tools, schema = _from_openai(body)
    stop = [body.stop] if isinstance(body.stop, str) else (body.stop or [])
    native = ChatBody(
        model=None if body.model == "auto" else body.model,
        messages=messages,
        tools=tools,
        response_schema=schema,
        temperature=body.temperature,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        stop=stop[:4],
    )
    answer = gateway.answer_body(await gateway.chat(_call(native, principal, request)))
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        return StreamingResponse(_openai_chunks(answer, completion_id, created), media_type="text/event-stream")
    return _openai_answer(answer, completion_id, created)


# --- embeddings ---


class EmbeddingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=200, description="A catalogue name with the embeddings capability")
    input: str | list[Annotated[str, Field(max_length=100_000)]] = Field(description="One text or up to 256")
    purpose: str = Field(default="", max_length=50)
    run_id: UUID | None = None
    task_id: TaskKey | None = None


class EmbeddingVector(BaseModel):
    index: int
    embedding: list[float]


class EmbeddingsAnswer(BaseModel):
    model: str
    data: list[EmbeddingVector]
    usage: TokenUsage
    cost_micro_usd: int


@router.post("/v1/models/embeddings", response_model=EmbeddingsAnswer, summary="Embed texts with a catalogue model.")
async def embed(
    body: EmbeddingsBody, principal: Annotated[Principal, Depends(require_scope("models:invoke"))], request: Request
) -> dict[str, Any]:
    """Embed texts with a catalogue model."""
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not 1 <= len(texts) <= 256:
        raise InvalidInputError("input holds one to 256 texts")
    entries = await catalogue.entries(principal.tenant_id)
    return await embeddings.embed(
        principal, entries, body.model, texts, body.purpose, body.run_id, body.task_id, request.state.correlation_id
    )
