"""The embedded provider running the real Gemma 3 270M through llama.cpp: text, structured output, tools, streaming."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncGenerator
from typing import Any, cast

import jsonschema
import pytest

from strata_model_gateway.providers.base import ChatRequest, Message, Provider, ProviderError, StreamChunk, Tool
from strata_model_gateway.providers.embedded import EmbeddedProvider

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: run scripts/install-embedded-model")


@pytest.fixture(scope="module")
def provider() -> EmbeddedProvider:
    return EmbeddedProvider()


def ask(question: str, **options: Any) -> ChatRequest:
    messages = (Message("system", "You are a concise assistant."), Message("user", question))
    return ChatRequest(model="gemma-3-270m-q4_k_m", messages=messages, temperature=0.0, **options)


def test_is_a_provider() -> None:
    provider: Provider = EmbeddedProvider()
    assert provider.name == "embedded"


async def test_plain_prompt_returns_text_and_token_counts(provider: EmbeddedProvider) -> None:
    result = await provider.chat(ask("What are the three primary colours?", max_tokens=24))

    assert result.content.strip()
    assert result.finish_reason in ("stop", "length")
    assert result.usage.input_tokens > 10  # the system line, the question and the transcript labels
    assert 0 < result.usage.output_tokens <= 24
    assert "\nUser:" not in result.content  # the transcript's next turn is a stop sequence


async def test_json_schema_answer_validates(provider: EmbeddedProvider) -> None:
    # GIVEN a schema with an enum, an integer and a bounded string
    schema = {
        "type": "object",
        "properties": {
            "colour": {"type": "string", "enum": ["red", "green", "blue"]},
            "suns": {"type": "integer"},
            "note": {"type": "string", "maxLength": 20},
        },
        "required": ["colour", "suns", "note"],
        "additionalProperties": False,
    }

    # WHEN the model answers under it
    result = await provider.chat(
        ask("What colour is the sky, and how many suns does Earth have?", json_schema=schema, max_tokens=48)
    )

    # THEN the content is JSON that the schema accepts
    answer = json.loads(result.content)
    jsonschema.validate(answer, schema)
    assert result.usage.output_tokens > 0


async def test_tools_request_returns_a_tool_call_or_an_answer(provider: EmbeddedProvider) -> None:
    # GIVEN two tools with argument schemas
    tools = (
        Tool(
            "get_weather",
            "Current weather for a city.",
            {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 30}},
                "required": ["city"],
                "additionalProperties": False,
            },
        ),
        Tool(
            "add",
            "Add two integers.",
            {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
                "additionalProperties": False,
            },
        ),
    )

    # WHEN the user asks something a tool answers
    result = await provider.chat(ask("What is the weather in Paris right now?", tools=tools, max_tokens=64))

    # THEN the reply is a well-formed call of one of the tools, or a plain answer
    if result.tool_calls:
        (call,) = result.tool_calls
        tool = next(t for t in tools if t.name == call.name)
        jsonschema.validate(call.arguments, tool.parameters)
        assert call.id
        assert result.finish_reason == "tool_calls"
        assert result.content == ""
    else:
        assert result.content.strip()
    assert result.usage.input_tokens > 0
    assert result.usage.output_tokens > 0


async def test_stream_yields_deltas_then_a_final_chunk_with_usage(provider: EmbeddedProvider) -> None:
    chunks: list[StreamChunk] = [c async for c in provider.stream(ask("Name a large animal.", max_tokens=24))]

    *pieces, last = chunks
    assert pieces
    assert all(p.delta and not p.done for p in pieces)
    assert "".join(p.delta for p in pieces).strip()
    assert last.done
    assert last.finish_reason in ("stop", "length")
    assert last.usage is not None
    assert last.usage.input_tokens > 0
    assert 0 < last.usage.output_tokens <= 24 + 2  # counted by re-tokenising the text: may differ by a token


async def test_a_consumer_that_stops_early_frees_the_model_for_the_next_call(provider: EmbeddedProvider) -> None:
    # GIVEN a stream abandoned after its first delta
    # (stream() is an async generator; the protocol promises only an iterator)
    stream = cast(
        AsyncGenerator[StreamChunk, None], provider.stream(ask("Write a long poem about the sea.", max_tokens=200))
    )
    first = await anext(stream)
    await stream.aclose()

    # WHEN another call comes
    result = await provider.chat(ask("Say hello.", max_tokens=8))

    # THEN it is answered: the abandoned generation stopped and let go of the model
    assert first.delta
    assert result.usage.output_tokens > 0


async def test_embeddings_are_pooled_normalised_vectors(provider: EmbeddedProvider) -> None:
    result = await provider.embed("gemma-3-270m-q4_k_m", ["a cat sat on the mat", "stock markets fell today"])

    first, second = result.vectors
    assert len(first) == len(second) > 100
    assert math.isclose(math.fsum(x * x for x in first), 1.0, rel_tol=1e-3)
    assert first != second
    assert result.usage.input_tokens > 0


async def test_a_prompt_longer_than_the_context_is_a_bad_request(provider: EmbeddedProvider) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.chat(ask("word " * 3000, max_tokens=8))

    assert caught.value.kind == "bad_request"


async def test_a_generation_past_its_deadline_is_a_timeout(provider: EmbeddedProvider) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.chat(ask("Count to one hundred.", max_tokens=64, timeout_s=0.0))

    assert caught.value.kind == "timeout"
    assert caught.value.retryable
