"""Amazon Bedrock in one region: chat through Converse / ConverseStream, embeddings through InvokeModel.

botocore is synchronous, so every call runs in a worker thread (`asyncio.to_thread`); a stream is read in a thread
that hands its events to the async side through a queue. boto3 is imported on first use (not at cold start) and
each client is built with botocore retries off (one attempt: the gateway's router does its own retries) and the
request's `timeout_s` as its read timeout.

Structured output: Bedrock has no JSON mode common to all its models, so a request with `json_schema` gets one
more tool, `answer`, whose input schema is that schema, and `toolChoice` forces it: `{"tool": {"name": "answer"}}`,
or `{"any": {}}` when the request has tools of its own (the model may still call those; its call of `answer` is
the final answer). The input the model gives `answer`, serialised as JSON, is the result's `content`; that call is
never reported as a tool call. Bedrock accepts a forced tool for Anthropic Claude 3+, Mistral Large and Amazon
Nova; other models answer ValidationException (`bad_request`). In a stream the answer comes as one delta when its
block closes, so only valid JSON is ever emitted.

Usage: Bedrock counts cached prompt tokens apart from `inputTokens`; `Usage.input_tokens` is the whole prompt
(`inputTokens + cacheReadInputTokens + cacheWriteInputTokens`) and `cached_tokens` is `cacheReadInputTokens`.
Tool results go to Bedrock as text blocks (`{"text": ...}`), which every Converse model accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from strata_model_gateway.providers.base import (
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    ErrorKind,
    Message,
    ProviderError,
    StreamChunk,
    ToolCall,
    Usage,
)

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "other"]

ANSWER_TOOL = "answer"
ANSWER_DESCRIPTION = "Give the final answer. Its input is the answer itself and must follow the input schema."
CONNECT_TIMEOUT_S = 10.0
COHERE_TEXTS_PER_CALL = 96  # Cohere Embed's limit per InvokeModel call
TITAN_CONCURRENCY = 8  # Titan embeds one text per call: this many calls in flight at once
MAX_CLIENTS = 8  # one botocore client per distinct read timeout

_FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}
_MALFORMED_STOPS = frozenset({"malformed_model_output", "malformed_tool_use"})

# botocore error codes (the x-amzn-ErrorType of an HTTP error; the :exception-type of an event-stream exception
# frame, which starts lower case), compared lower-cased
_ERROR_KINDS: dict[str, ErrorKind] = {
    "throttlingexception": "rate_limited",
    "servicequotaexceededexception": "rate_limited",
    "serviceunavailableexception": "unavailable",
    "internalserverexception": "unavailable",
    "modelnotreadyexception": "unavailable",
    "modelerrorexception": "unavailable",
    "modeltimeoutexception": "timeout",
    "accessdeniedexception": "auth",
    "unrecognizedclientexception": "auth",
    "invalidsignatureexception": "auth",
    "expiredtokenexception": "auth",
    "validationexception": "bad_request",
    "resourcenotfoundexception": "bad_request",
    "modelstreamerrorexception": "cut",
}
# What an exception frame in the middle of a stream means: a broken answer, unless the service says why
_MID_STREAM_KINDS: frozenset[str] = frozenset({"rate_limited", "bad_request"})


class BedrockProvider:
    """Bedrock Runtime in `region` (`endpoint_url`: another endpoint speaking its protocol, e.g. a VPC endpoint)."""

    def __init__(self, name: str, region: str, endpoint_url: str | None = None) -> None:
        self.name = name
        self.region = region
        self.endpoint_url = endpoint_url
        self._session: Any = None
        self._clients: dict[float, BedrockRuntimeClient] = {}
        self._lock = threading.Lock()

    async def chat(self, request: ChatRequest) -> ChatResult:
        body, answer_tool = converse_request(request)
        try:
            response = await asyncio.to_thread(self._converse, body, request.timeout_s)
        except Exception as exc:
            raise provider_error(exc) from exc
        return chat_result(response, request.model, answer_tool)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        body, answer_tool = converse_request(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        stopping = threading.Event()
        opened: list[Any] = []  # the botocore EventStream, to close if the consumer leaves early

        def put(item: _Item) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening any more
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def pump() -> None:
            started = False
            try:
                events = self._client(request.timeout_s).converse_stream(**body)["stream"]
                opened.append(events)
                started = True
                for event in events:
                    if stopping.is_set():
                        return
                    put(_Item("event", event=event))
                put(_Item("end"))
            except Exception as exc:
                put(_Item("error", error=exc, mid_stream=started))

        pumping = asyncio.ensure_future(asyncio.to_thread(pump))
        assembler = StreamAssembler(answer_tool)
        try:
            while True:
                item = await queue.get()
                if item.kind == "error":
                    assert item.error is not None
                    raise provider_error(item.error, mid_stream=item.mid_stream) from item.error
                if item.kind == "end":
                    yield assembler.finish()
                    return
                for chunk in assembler.feed(item.event):
                    yield chunk
        finally:
            if not pumping.done():
                stopping.set()
                for events in opened:
                    with contextlib.suppress(Exception):  # best effort: the thread ends at its next read anyway
                        events.close()

    async def embed(self, model: str, texts: list[str], timeout_s: float = 30.0) -> EmbeddingResult:
        family = embedding_family(model)
        try:
            if family == "cohere":
                batches = [texts[i : i + COHERE_TEXTS_PER_CALL] for i in range(0, len(texts), COHERE_TEXTS_PER_CALL)]
                bodies: list[dict[str, Any]] = [{"texts": batch, "input_type": "search_document"} for batch in batches]
            else:
                bodies = [{"inputText": text} for text in texts]
            limit = asyncio.Semaphore(TITAN_CONCURRENCY)

            async def call(body: dict[str, Any]) -> tuple[list[list[float]], int]:
                async with limit:
                    return await asyncio.to_thread(self._invoke_embedding, model, family, body, timeout_s)

            answers = await asyncio.gather(*(call(body) for body in bodies))
        except ProviderError:
            raise
        except Exception as exc:
            raise provider_error(exc) from exc
        vectors = tuple(tuple(vector) for batch, _ in answers for vector in batch)
        if len(vectors) != len(texts):
            raise ProviderError("malformed", f"Bedrock returned {len(vectors)} embeddings for {len(texts)} texts")
        return EmbeddingResult(vectors=vectors, usage=Usage(input_tokens=sum(tokens for _, tokens in answers)))

    async def aclose(self) -> None:
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.close()

    # --- the synchronous side (worker threads) ---

    def _client(self, timeout_s: float) -> BedrockRuntimeClient:
        key = round(timeout_s, 3)
        with self._lock:  # boto3 sessions are not thread-safe: clients are built one at a time
            client = self._clients.get(key)
            if client is None:
                import boto3
                from botocore.config import Config

                if self._session is None:
                    self._session = boto3.session.Session(region_name=self.region)
                config = Config(
                    read_timeout=timeout_s,
                    connect_timeout=min(timeout_s, CONNECT_TIMEOUT_S),
                    # total_max_attempts counts the first attempt; botocore's max_attempts counts retries only
                    retries={"mode": "standard", "total_max_attempts": 1},
                )
                client = self._session.client(
                    "bedrock-runtime", region_name=self.region, endpoint_url=self.endpoint_url, config=config
                )
                if len(self._clients) >= MAX_CLIENTS:
                    self._clients.pop(next(iter(self._clients))).close()
                self._clients[key] = client
            return client

    def _converse(self, body: dict[str, Any], timeout_s: float) -> Mapping[str, Any]:
        return self._client(timeout_s).converse(**body)

    def _invoke_embedding(
        self, model: str, family: str, body: dict[str, Any], timeout_s: float
    ) -> tuple[list[list[float]], int]:
        response = self._client(timeout_s).invoke_model(
            modelId=model, body=json.dumps(body), contentType="application/json", accept="application/json"
        )
        answer = _json_object(response["body"].read(), "InvokeModel body")
        if family == "cohere":
            embeddings = answer.get("embeddings")
            if isinstance(embeddings, dict):  # Embed v4, or v3 asked for embedding_types: {"float": [[...], ...]}
                embeddings = embeddings.get("float")
            vectors = embeddings if isinstance(embeddings, list) else None
        else:
            vectors = [answer.get("embedding")]
        if vectors is None or not all(_is_vector(vector) for vector in vectors):
            raise ProviderError("malformed", f"Bedrock returned no float embeddings from {model}")
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        tokens = headers.get("x-amzn-bedrock-input-token-count", answer.get("inputTextTokenCount", 0))
        return [[float(x) for x in vector] for vector in vectors], int(tokens)


# --- the wire format ---


def converse_request(request: ChatRequest) -> tuple[dict[str, Any], str | None]:
    """The Converse (and ConverseStream) parameters for `request`, and the forced answer tool's name if any."""
    system = [{"text": m.content} for m in request.messages if m.role == "system" and m.content]
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "system":
            continue
        role, blocks = _content_blocks(message)
        if messages and messages[-1]["role"] == role:
            # Bedrock wants user and assistant turns to alternate: tool results (and any user text after them)
            # share one user turn
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    body: dict[str, Any] = {"modelId": request.model, "messages": messages}
    if system:
        body["system"] = system
    inference: dict[str, Any] = {}
    if request.max_tokens is not None:
        inference["maxTokens"] = request.max_tokens
    if request.temperature is not None:
        inference["temperature"] = request.temperature
    if request.stop:
        inference["stopSequences"] = list(request.stop)
    if inference:
        body["inferenceConfig"] = inference
    tools = [_tool_spec(tool.name, tool.description, tool.parameters) for tool in request.tools]
    answer_tool: str | None = None
    if request.json_schema is not None:
        answer_tool = _unused_name(ANSWER_TOOL, {tool.name for tool in request.tools})
        tools.append(_tool_spec(answer_tool, ANSWER_DESCRIPTION, request.json_schema))
    if tools:
        tool_config: dict[str, Any] = {"tools": tools}
        if answer_tool is not None:
            tool_config["toolChoice"] = {"any": {}} if request.tools else {"tool": {"name": answer_tool}}
        body["toolConfig"] = tool_config
    return body, answer_tool


def chat_result(response: Mapping[str, Any], model: str, answer_tool: str | None) -> ChatResult:
    """A Converse response as a `ChatResult`."""
    blocks = response.get("output", {}).get("message", {}).get("content", [])
    texts: list[str] = []
    calls: list[ToolCall] = []
    answer: dict[str, Any] | None = None
    for block in blocks:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = use.get("input")
            if not isinstance(arguments, dict):
                raise ProviderError("malformed", f"tool {use.get('name')!r} was called with a non-object input")
            if use.get("name") == answer_tool and answer is None:
                answer = arguments
            else:
                calls.append(ToolCall(id=use["toolUseId"], name=use["name"], arguments=arguments))
    return ChatResult(
        content=json.dumps(answer) if answer is not None else "".join(texts),
        tool_calls=tuple(calls),
        finish_reason=finish_reason(response.get("stopReason", ""), bool(calls)),
        usage=usage_of(response.get("usage", {})),
        raw_model=model,  # Converse does not name the model that answered: it is the one asked
    )


def finish_reason(stop_reason: str, called_tools: bool) -> FinishReason:
    if stop_reason in _MALFORMED_STOPS:
        raise ProviderError("malformed", f"Bedrock stopped with {stop_reason}")
    reason = _FINISH_REASONS.get(stop_reason, "other")
    if reason == "tool_calls" and not called_tools:
        return "stop"  # the only tool called was the forced answer tool
    return reason


def usage_of(usage: Mapping[str, Any]) -> Usage:
    cache_read = int(usage.get("cacheReadInputTokens") or 0)
    cache_write = int(usage.get("cacheWriteInputTokens") or 0)
    return Usage(
        input_tokens=int(usage.get("inputTokens") or 0) + cache_read + cache_write,
        output_tokens=int(usage.get("outputTokens") or 0),
        cached_tokens=cache_read,
    )


@dataclass
class _ToolBlock:
    id: str
    name: str
    fragments: list[str] = field(default_factory=list)


class StreamAssembler:
    """Turns ConverseStream events into `StreamChunk`s: text deltas as they come, each tool call whole when its
    block stops (its input JSON arrives in fragments), and a last chunk once messageStop and metadata were seen."""

    def __init__(self, answer_tool: str | None) -> None:
        self.answer_tool = answer_tool
        self._tools: dict[int, _ToolBlock] = {}
        self._called_tools = False
        self._stop_reason: str | None = None
        self._usage: Usage | None = None

    def feed(self, event: Mapping[str, Any]) -> list[StreamChunk]:
        if "contentBlockStart" in event:
            start = event["contentBlockStart"]
            use = start.get("start", {}).get("toolUse")
            if use is not None:
                self._tools[start["contentBlockIndex"]] = _ToolBlock(id=use["toolUseId"], name=use["name"])
        elif "contentBlockDelta" in event:
            delta_event = event["contentBlockDelta"]
            delta = delta_event.get("delta", {})
            if delta.get("text"):
                return [StreamChunk(delta=delta["text"])]
            if "toolUse" in delta:
                block = self._tools.get(delta_event["contentBlockIndex"])
                if block is None:
                    raise ProviderError("malformed", "tool input arrived for a block that never started")
                block.fragments.append(delta["toolUse"].get("input", ""))
        elif "contentBlockStop" in event:
            block = self._tools.pop(event["contentBlockStop"]["contentBlockIndex"], None)
            if block is not None:
                return [self._tool_chunk(block)]
        elif "messageStop" in event:
            self._stop_reason = event["messageStop"].get("stopReason", "")
        elif "metadata" in event:
            self._usage = usage_of(event["metadata"].get("usage", {}))
        return []

    def finish(self) -> StreamChunk:
        if self._stop_reason is None or self._usage is None:
            raise ProviderError("cut", "the Bedrock stream ended before its messageStop and metadata events")
        return StreamChunk(
            done=True, finish_reason=finish_reason(self._stop_reason, self._called_tools), usage=self._usage
        )

    def _tool_chunk(self, block: _ToolBlock) -> StreamChunk:
        text = "".join(block.fragments)
        try:
            arguments = json.loads(text) if text.strip() else {}
        except ValueError as exc:
            raise ProviderError("malformed", f"tool {block.name!r} input is not JSON: {exc}") from exc
        if not isinstance(arguments, dict):
            raise ProviderError("malformed", f"tool {block.name!r} was called with a non-object input")
        if block.name == self.answer_tool:
            return StreamChunk(delta=json.dumps(arguments))
        self._called_tools = True
        return StreamChunk(tool_calls=(ToolCall(id=block.id, name=block.name, arguments=arguments),))


@dataclass
class _Item:
    kind: Literal["event", "end", "error"]
    event: Mapping[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    mid_stream: bool = False


def embedding_family(model: str) -> Literal["titan", "cohere"]:
    """Which request body an embedding model takes, from its id (a cross-region profile prefix allowed)."""
    base = model.rsplit("/", 1)[-1].lower()
    if "cohere.embed" in base:
        return "cohere"
    if "amazon.titan-embed" in base:
        return "titan"
    raise ProviderError("bad_request", f"{model!r} is not a Bedrock embedding model this gateway knows")


def provider_error(exc: BaseException, *, mid_stream: bool = False) -> ProviderError:
    """Classify what botocore (or urllib3 under it) raised; `mid_stream`: after a stream had started."""
    if isinstance(exc, ProviderError):
        return exc
    import urllib3.exceptions
    from botocore import exceptions as boto

    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        meta = exc.response.get("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode")
        kind = _ERROR_KINDS.get(code.lower()) or _kind_of_status(status)
        if mid_stream and kind not in _MID_STREAM_KINDS:
            kind = "cut"
        retry_after = meta.get("HTTPHeaders", {}).get("retry-after")
        return ProviderError(
            kind,
            f"Bedrock {code or 'error'}: {error.get('Message', '')}",
            status=None if mid_stream else status,
            retry_after_s=float(retry_after) if retry_after and retry_after.isdigit() else None,
        )
    if isinstance(
        exc, boto.ConnectTimeoutError | boto.ReadTimeoutError | urllib3.exceptions.TimeoutError | TimeoutError
    ):
        return ProviderError("timeout", f"Bedrock timed out: {exc}")
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return ProviderError("auth", f"no AWS credentials for Bedrock: {exc}")
    if isinstance(exc, boto.ParamValidationError):
        return ProviderError("bad_request", f"invalid Bedrock request: {exc}")
    if mid_stream:
        return ProviderError("cut", f"the Bedrock stream broke: {exc!r}")
    if isinstance(exc, boto.ConnectionError | boto.HTTPClientError | urllib3.exceptions.HTTPError | OSError):
        return ProviderError("unavailable", f"Bedrock unreachable: {exc}")
    return ProviderError("other", f"Bedrock call failed: {exc!r}")


def _kind_of_status(status: int | None) -> ErrorKind:
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "auth"
    if status is not None and 400 <= status < 500:
        return "bad_request"
    if status is not None and status >= 500:
        return "unavailable"
    return "other"


def _content_blocks(message: Message) -> tuple[str, list[dict[str, Any]]]:
    if message.role == "tool":
        if not message.tool_call_id:
            raise ProviderError("bad_request", "a tool message needs the tool_call_id of the call it answers")
        result = {"toolUseId": message.tool_call_id, "content": [{"text": message.content}], "status": "success"}
        return "user", [{"toolResult": result}]
    blocks: list[dict[str, Any]] = []
    if message.content or not message.tool_calls:
        blocks.append({"text": message.content})
    for call in message.tool_calls:
        blocks.append({"toolUse": {"toolUseId": call.id, "name": call.name, "input": call.arguments}})
    return message.role, blocks


def _tool_spec(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"toolSpec": {"name": name, "description": description, "inputSchema": {"json": schema}}}


def _unused_name(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    return candidate


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ProviderError("malformed", f"{what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ProviderError("malformed", f"{what} is not a JSON object")
    return value


def _is_vector(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(x, int | float) for x in value)
