"""The Bedrock adapter through boto3 against a loopback Bedrock Runtime: wire shapes, answers, streams, errors."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import pytest

from strata_model_gateway.providers.base import (
    ChatRequest,
    Message,
    ProviderError,
    StreamChunk,
    Tool,
    ToolCall,
    Usage,
)
from strata_model_gateway.providers.bedrock import BedrockProvider
from tests.support.bedrock_server import Answer, BedrockServer, Failure, ToolUse, embedding_for, token_count
from tests.support.provider_calls import collect

REGION = "us-east-1"
WEATHER = Tool(
    name="get_weather",
    description="The weather in a city now.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"type": "string", "enum": ["pass", "fail"]}, "score": {"type": "number"}},
    "required": ["verdict", "score"],
}


@pytest.fixture(scope="module")
def bedrock() -> Iterator[BedrockServer]:
    server = BedrockServer().start()
    yield server
    server.stop()


@pytest.fixture
async def provider(bedrock: BedrockServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[BedrockProvider]:
    # dummy credentials only: requests are SigV4-signed as for AWS, and no file or metadata service is consulted
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTESTBEDROCK")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    adapter = BedrockProvider("bedrock", REGION, endpoint_url=bedrock.url)
    yield adapter
    await adapter.aclose()


def chat_model() -> str:
    return f"anthropic.claude-test-{uuid.uuid4().hex[:10]}-v1:0"


def ask(model: str, text: str = "Hello?", **overrides: Any) -> ChatRequest:
    return ChatRequest(model=model, messages=(Message(role="user", content=text),), **overrides)


async def stream_error(provider: BedrockProvider, request: ChatRequest) -> tuple[list[StreamChunk], ProviderError]:
    chunks: list[StreamChunk] = []

    async def drain() -> None:
        async for chunk in provider.stream(request):
            chunks.append(chunk)

    with pytest.raises(ProviderError) as caught:
        await drain()
    return chunks, caught.value


# --- request shape ---


async def test_converse_request_carries_system_messages_tools_and_inference_config(
    provider: BedrockProvider, bedrock: BedrockServer
) -> None:
    # GIVEN a conversation with a system prompt, an earlier tool call, its result and a follow-up question
    model = chat_model()
    bedrock.script(model, Answer(text="Sunny, 21 °C."))
    request = ChatRequest(
        model=model,
        messages=(
            Message(role="system", content="You are terse."),
            Message(role="user", content="Weather in Paris?"),
            Message(
                role="assistant",
                content="Checking.",
                tool_calls=(ToolCall(id="tooluse_1", name="get_weather", arguments={"city": "Paris"}),),
            ),
            Message(role="tool", content='{"temp_c": 21}', tool_call_id="tooluse_1", name="get_weather"),
            Message(role="user", content="And in short?"),
        ),
        tools=(WEATHER,),
        temperature=0.2,
        max_tokens=300,
        stop=("END",),
    )

    # WHEN it goes to Bedrock
    await provider.chat(request)

    # THEN botocore sent Converse's REST shape: the model in the path, the rest in the JSON body
    [sent] = bedrock.requests(model)
    assert sent.operation == "converse"
    assert sent.path == f"/model/{quote(model, safe='')}/converse"
    assert sent.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDTESTBEDROCK/")
    assert f"/{REGION}/bedrock/aws4_request" in sent.headers["authorization"]
    assert sent.body == {
        "messages": [
            {"role": "user", "content": [{"text": "Weather in Paris?"}]},
            {
                "role": "assistant",
                "content": [
                    {"text": "Checking."},
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}},
                ],
            },
            {
                # the tool result and the next user text share one user turn: Bedrock wants turns to alternate
                "role": "user",
                "content": [
                    {
                        "toolResult": {
                            "toolUseId": "tooluse_1",
                            "content": [{"text": '{"temp_c": 21}'}],
                            "status": "success",
                        }
                    },
                    {"text": "And in short?"},
                ],
            },
        ],
        "system": [{"text": "You are terse."}],
        "inferenceConfig": {"maxTokens": 300, "temperature": 0.2, "stopSequences": ["END"]},
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "get_weather",
                        "description": "The weather in a city now.",
                        "inputSchema": {"json": WEATHER.parameters},
                    }
                }
            ]
        },
    }


async def test_plain_request_sends_no_optional_sections(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    model = chat_model()
    bedrock.script(model, Answer(text="Hi."))

    await provider.chat(ask(model))

    [sent] = bedrock.requests(model)
    assert sent.body == {"messages": [{"role": "user", "content": [{"text": "Hello?"}]}]}


async def test_tool_message_without_call_id_is_a_bad_request(provider: BedrockProvider) -> None:
    request = ChatRequest(model=chat_model(), messages=(Message(role="tool", content="42"),))

    with pytest.raises(ProviderError) as caught:
        await provider.chat(request)

    assert caught.value.kind == "bad_request"


# --- answers ---


async def test_text_answer_with_usage_and_cache_reads(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    model = chat_model()
    bedrock.script(
        model,
        Answer(
            text="Paris is the capital.", input_tokens=30, output_tokens=6, cache_read_tokens=100, cache_write_tokens=4
        ),
    )

    result = await provider.chat(ask(model, "Capital of France?"))

    assert result.content == "Paris is the capital."
    assert result.tool_calls == ()
    assert result.finish_reason == "stop"
    # the whole prompt is counted as input; cache reads are the cached part of it
    assert result.usage == Usage(input_tokens=134, output_tokens=6, cached_tokens=100)
    assert result.raw_model == model


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("content_filtered", "content_filter"),
        ("guardrail_intervened", "content_filter"),
    ],
)
async def test_stop_reasons_map_to_finish_reasons(
    provider: BedrockProvider, bedrock: BedrockServer, stop_reason: str, finish: str
) -> None:
    model = chat_model()
    bedrock.script(model, Answer(text="Partial", stop_reason=stop_reason))

    result = await provider.chat(ask(model))

    assert result.finish_reason == finish


async def test_tool_use_is_normalised_to_tool_calls(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    model = chat_model()
    bedrock.script(
        model,
        Answer(
            text="Let me look.",
            tool_uses=(ToolUse("tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "get_weather", {"city": "Lyon"}),),
            stop_reason="tool_use",
        ),
    )

    result = await provider.chat(ask(model, "Weather in Lyon?", tools=(WEATHER,)))

    assert result.tool_calls == (
        ToolCall(id="tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", name="get_weather", arguments={"city": "Lyon"}),
    )
    assert result.content == "Let me look."
    assert result.finish_reason == "tool_calls"


async def test_tool_input_that_is_not_an_object_is_malformed(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    model = chat_model()
    bedrock.script(model, Answer(tool_uses=(ToolUse("tooluse_1", "get_weather", '"Lyon"'),), stop_reason="tool_use"))

    with pytest.raises(ProviderError) as caught:
        await provider.chat(ask(model, tools=(WEATHER,)))

    assert caught.value.kind == "malformed"
    assert caught.value.retryable


async def test_structured_output_forces_the_answer_tool(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    # GIVEN a request for an answer following a JSON Schema
    model = chat_model()
    verdict = {"verdict": "pass", "score": 0.9}
    bedrock.script(model, Answer(tool_uses=(ToolUse("tooluse_a", "answer", verdict),), stop_reason="tool_use"))

    # WHEN it is answered
    result = await provider.chat(ask(model, "Grade this.", json_schema=VERDICT_SCHEMA))

    # THEN the schema went as a forced tool, and its input came back as the content, not as a tool call
    [sent] = bedrock.requests(model)
    assert sent.body["toolConfig"]["toolChoice"] == {"tool": {"name": "answer"}}
    [spec] = sent.body["toolConfig"]["tools"]
    assert spec["toolSpec"]["name"] == "answer"
    assert spec["toolSpec"]["inputSchema"] == {"json": VERDICT_SCHEMA}
    assert json.loads(result.content) == verdict
    assert result.tool_calls == ()
    assert result.finish_reason == "stop"


async def test_structured_output_with_tools_lets_the_model_pick_any_tool(
    provider: BedrockProvider, bedrock: BedrockServer
) -> None:
    model = chat_model()
    answer_tool = Tool(
        name="answer",
        description="A tool of the caller's that happens to be called answer.",
        parameters={"type": "object"},
    )
    bedrock.script(
        model, Answer(tool_uses=(ToolUse("tooluse_w", "get_weather", {"city": "Nice"}),), stop_reason="tool_use")
    )

    result = await provider.chat(ask(model, json_schema=VERDICT_SCHEMA, tools=(WEATHER, answer_tool)))

    [sent] = bedrock.requests(model)
    assert sent.body["toolConfig"]["toolChoice"] == {"any": {}}
    names = [tool["toolSpec"]["name"] for tool in sent.body["toolConfig"]["tools"]]
    assert names == ["get_weather", "answer", "answer_2"]  # the forced tool never shadows one of the caller's
    assert result.tool_calls == (ToolCall(id="tooluse_w", name="get_weather", arguments={"city": "Nice"}),)
    assert result.finish_reason == "tool_calls"


# --- streams ---


async def test_stream_text_then_usage(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    model = chat_model()
    bedrock.script(model, Answer(text="Once upon a time, a gateway.", input_tokens=11, output_tokens=8, piece_chars=5))

    chunks = await collect(provider, ask(model, "A story?", max_tokens=50))

    [sent] = bedrock.requests(model)
    assert sent.operation == "converse-stream"
    assert sent.body["inferenceConfig"] == {"maxTokens": 50}
    *pieces, last = chunks
    assert len(pieces) == 6  # one chunk per contentBlockDelta, as they arrive
    assert "".join(chunk.delta for chunk in pieces) == "Once upon a time, a gateway."
    assert not any(chunk.done for chunk in pieces)
    assert last == StreamChunk(done=True, finish_reason="stop", usage=Usage(input_tokens=11, output_tokens=8))


async def test_stream_assembles_tool_input_fragments(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    model = chat_model()
    arguments = {"city": "Saint-Étienne", "units": {"temperature": "celsius"}}
    bedrock.script(
        model,
        Answer(
            text="Looking.",
            tool_uses=(
                ToolUse("tooluse_s1", "get_weather", arguments),
                ToolUse("tooluse_s2", "get_weather", {"city": "Brest"}),
            ),
            stop_reason="tool_use",
            piece_chars=3,
        ),
    )

    chunks = await collect(provider, ask(model, tools=(WEATHER,)))

    calls = [call for chunk in chunks for call in chunk.tool_calls]
    assert calls == [
        ToolCall(id="tooluse_s1", name="get_weather", arguments=arguments),
        ToolCall(id="tooluse_s2", name="get_weather", arguments={"city": "Brest"}),
    ]
    assert "".join(chunk.delta for chunk in chunks) == "Looking."
    assert chunks[-1].done
    assert chunks[-1].finish_reason == "tool_calls"


async def test_stream_structured_output_is_one_json_delta(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    model = chat_model()
    verdict = {"verdict": "fail", "score": 0.1}
    bedrock.script(model, Answer(tool_uses=(ToolUse("tooluse_a", "answer", verdict),), stop_reason="tool_use"))

    chunks = await collect(provider, ask(model, json_schema=VERDICT_SCHEMA))

    assert json.loads("".join(chunk.delta for chunk in chunks)) == verdict
    assert all(chunk.tool_calls == () for chunk in chunks)
    assert chunks[-1].finish_reason == "stop"


async def test_stream_tool_input_that_is_not_json_is_malformed(
    provider: BedrockProvider, bedrock: BedrockServer
) -> None:
    model = chat_model()
    bedrock.script(
        model, Answer(tool_uses=(ToolUse("tooluse_1", "get_weather", '{"city": "Par'),), stop_reason="tool_use")
    )

    _, error = await stream_error(provider, ask(model, tools=(WEATHER,)))

    assert error.kind == "malformed"


async def test_stream_that_ends_early_is_cut(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    # GIVEN a stream whose body ends cleanly after messageStart and two text deltas: no messageStop, no metadata
    model = chat_model()
    bedrock.script(model, Answer(text="A long answer that never ends", cut_after_frames=3))

    chunks, error = await stream_error(provider, ask(model))

    # THEN what came is passed on, and the end is reported as a cut
    assert "".join(chunk.delta for chunk in chunks) == "A long a"
    assert error.kind == "cut"
    assert error.retryable


async def test_stream_whose_connection_breaks_is_cut(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    model = chat_model()
    bedrock.script(model, Answer(text="A long answer that never ends", abort_after_frames=4))

    chunks, error = await stream_error(provider, ask(model))

    assert "".join(chunk.delta for chunk in chunks) == "A long answe"
    assert error.kind == "cut"


async def test_exception_frame_mid_stream_is_cut(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    model = chat_model()
    bedrock.script(model, Answer(text="A long answer", exception_after_frames=2))

    chunks, error = await stream_error(provider, ask(model))

    assert [chunk.delta for chunk in chunks] == ["A lo"]
    assert error.kind == "cut"
    assert "modelStreamErrorException" in str(error)


async def test_throttling_exception_frame_mid_stream_is_rate_limited(
    provider: BedrockProvider, bedrock: BedrockServer
) -> None:
    model = chat_model()
    bedrock.script(
        model, Answer(text="A long answer", exception_after_frames=2, stream_exception="throttlingException")
    )

    _, error = await stream_error(provider, ask(model))

    assert error.kind == "rate_limited"


async def test_stream_error_before_the_first_event(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    model = chat_model()
    bedrock.script(model, Failure(429, "ThrottlingException", "Too many requests, please wait before trying again."))

    chunks, error = await stream_error(provider, ask(model))

    assert chunks == []
    assert (error.kind, error.status) == ("rate_limited", 429)


async def test_consumer_leaving_a_stream_early_does_not_hang(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    model = chat_model()
    bedrock.script(model, Answer(text="x" * 400, piece_chars=1))

    stream = provider.stream(ask(model))
    first = await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]

    assert first.delta == "x"


# --- errors ---


@pytest.mark.parametrize(
    ("status", "error_type", "kind"),
    [
        (429, "ThrottlingException", "rate_limited"),
        (503, "ServiceUnavailableException", "unavailable"),
        (500, "InternalServerException", "unavailable"),
        (429, "ModelNotReadyException", "unavailable"),
        (408, "ModelTimeoutException", "timeout"),
        (403, "AccessDeniedException", "auth"),
        (403, "UnrecognizedClientException", "auth"),
        (400, "ValidationException", "bad_request"),
        (404, "ResourceNotFoundException", "bad_request"),
    ],
)
async def test_error_responses_are_classified(
    provider: BedrockProvider, bedrock: BedrockServer, status: int, error_type: str, kind: str
) -> None:
    model = chat_model()
    bedrock.script(model, Failure(status, error_type, f"scripted {error_type}"))

    with pytest.raises(ProviderError) as caught:
        await provider.chat(ask(model))

    assert (caught.value.kind, caught.value.status) == (kind, status)
    assert f"scripted {error_type}" in str(caught.value)
    assert len(bedrock.requests(model)) == 1  # botocore retried nothing: the router decides


async def test_validation_error_is_not_retryable(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    model = chat_model()
    bedrock.script(model, Failure(400, "ValidationException", "A conversation must start with a user message."))

    with pytest.raises(ProviderError) as caught:
        await provider.chat(ask(model))

    assert caught.value.kind == "bad_request"
    assert not caught.value.retryable


async def test_slow_answer_times_out(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    model = chat_model()
    bedrock.script(model, Answer(text="Too late.", delay_s=5))

    with pytest.raises(ProviderError) as caught:
        await provider.chat(ask(model, timeout_s=0.3))

    assert caught.value.kind == "timeout"
    assert len(bedrock.requests(model)) == 1


async def test_slow_stream_times_out(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    model = chat_model()
    bedrock.script(model, Answer(text="Too late.", delay_s=5))

    _, error = await stream_error(provider, ask(model, timeout_s=0.3))

    assert error.kind == "timeout"


async def test_unreachable_endpoint_is_unavailable(provider: BedrockProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    from strata_cli.localcloud.servers import bind_loopback, port_of

    sock = bind_loopback()  # bound, never listening: connections are refused
    adapter = BedrockProvider("bedrock", REGION, endpoint_url=f"http://127.0.0.1:{port_of(sock)}")
    try:
        with pytest.raises(ProviderError) as caught:
            await adapter.chat(ask(chat_model(), timeout_s=2))
    finally:
        await adapter.aclose()
        sock.close()

    assert caught.value.kind == "unavailable"


# --- embeddings ---


async def test_titan_embeddings_one_text_per_call(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    model = f"amazon.titan-embed-text-v2-{uuid.uuid4().hex[:8]}:0"
    texts = ["the first document", "a second, longer document here", "third"]

    result = await provider.embed(model, texts)

    sent = bedrock.requests(model)
    assert sorted(json.dumps(r.body) for r in sent) == sorted(json.dumps({"inputText": t}) for t in texts)
    assert all(r.path == f"/model/{quote(model, safe='')}/invoke" for r in sent)
    assert result.vectors == tuple(
        tuple(embedding_for(t)) for t in texts
    )  # in the order asked, whatever the order answered
    assert result.usage == Usage(input_tokens=sum(token_count(t) for t in texts))


async def test_cohere_embeddings_in_one_call(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    model = f"cohere.embed-english-v3-{uuid.uuid4().hex[:8]}"
    texts = ["alpha beta", "gamma"]

    result = await provider.embed(model, texts)

    [sent] = bedrock.requests(model)
    assert sent.body == {"texts": texts, "input_type": "search_document"}
    assert sent.headers["content-type"] == "application/json"
    assert result.vectors == tuple(tuple(embedding_for(t)) for t in texts)
    assert result.usage.input_tokens == 3


async def test_embedding_errors_are_classified(provider: BedrockProvider, bedrock: BedrockServer) -> None:
    model = f"amazon.titan-embed-text-v2-{uuid.uuid4().hex[:8]}:0"
    bedrock.script(model, Failure(429, "ThrottlingException", "Too many tokens."))

    with pytest.raises(ProviderError) as caught:
        await provider.embed(model, ["a"])

    assert caught.value.kind == "rate_limited"


async def test_unknown_embedding_model_is_a_bad_request(provider: BedrockProvider) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.embed("meta.llama3-8b-instruct-v1:0", ["a"])

    assert caught.value.kind == "bad_request"
