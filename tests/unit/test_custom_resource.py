"""CloudFormation custom resources: the handler runs the named command at deploy and answers CloudFormation's
pre-signed URL (here a loopback HTTP server standing in for S3) with SUCCESS or FAILED, as cfnresponse does."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.error import HTTPError
from uuid import uuid4

import pytest
from fastapi import FastAPI

from strata.handler import Command, LambdaHandler, event_kind, make_handler


@dataclass
class LambdaContext:
    """The attributes of the Lambda context the handler reads (the time left is settable)."""

    remaining_ms: int = 30_000
    function_name: str = "strata-unit-data"
    aws_request_id: str = field(default_factory=lambda: str(uuid4()))
    log_stream_name: str = "2026/11/27/[$LATEST]0123456789abcdef"
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:strata-unit-data"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class ResponseBucket:
    """A loopback HTTP server standing in for the pre-signed S3 URL: records each PUT, answers `status`."""

    url: str
    answers: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def bucket() -> Iterator[ResponseBucket]:
    state = ResponseBucket(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.answers.append(json.loads(body))
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
            state.paths.append(self.path)
            self.send_response(state.status)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def custom_resource_event(
    bucket: ResponseBucket, request_type: str, *, command: str = "migrate", **extra: Any
) -> dict[str, Any]:
    """The event CloudFormation sends a Lambda-backed custom resource (the template's DatabaseMigration)."""
    request_id = str(uuid4())
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:strata-unit-data",
        "ResponseURL": f"{bucket.url}/cloudformation-custom-resource-response-useast1/{request_id}?X-Amz-Signature=x",
        "StackId": f"arn:aws:cloudformation:us-east-1:123456789012:stack/strata-dev/{uuid4()}",
        "RequestId": request_id,
        "LogicalResourceId": "DatabaseMigration",
        "ResourceType": "AWS::CloudFormation::CustomResource",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:strata-unit-data",
            "Command": command,
            "Layer": "arn:aws:lambda:us-east-1:123456789012:layer:strata-shared-dev:7",
        },
    }
    if request_type != "Create":
        event["PhysicalResourceId"] = "DatabaseMigration-migrate"
    event.update(extra)
    return event


class Recorder:
    """A command that records its calls (the `migrate` command's stand-in)."""

    def __init__(self, result: Any = None, error: Exception | None = None, delay_s: float = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.result, self.error, self.delay_s = result, error, delay_s

    async def __call__(self, args: dict[str, Any]) -> Any:
        self.calls.append(args)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return self.result


def handler_with(**commands: Command) -> LambdaHandler:
    return make_handler(FastAPI(), commands=commands)


def test_a_custom_resource_event_is_classified_apart_from_a_command(bucket: ResponseBucket) -> None:
    assert event_kind(custom_resource_event(bucket, "Create")) == "custom_resource"
    assert event_kind({"command": "migrate"}) == "command"


def test_create_runs_the_command_and_answers_success(bucket: ResponseBucket) -> None:
    # GIVEN the data function's migrate command
    migrate = Recorder(result={"applied": ["0001_foundation", "0002_row_level_security"]})
    event = custom_resource_event(bucket, "Create")
    event["ResourceProperties"]["Args"] = {"dry_run": "false"}

    # WHEN CloudFormation creates the custom resource
    returned = handler_with(migrate=migrate)(event, LambdaContext())

    # THEN the command ran once with the resource's Args, and CloudFormation heard SUCCESS at its URL
    assert migrate.calls == [{"dry_run": "false"}]
    [answer] = bucket.answers
    assert answer == returned
    assert answer["Status"] == "SUCCESS"
    assert answer["Reason"] == 'migrate: {"applied": ["0001_foundation", "0002_row_level_security"]}'
    assert answer["PhysicalResourceId"] == "DatabaseMigration-migrate"
    for key in ("StackId", "RequestId", "LogicalResourceId"):
        assert answer[key] == event[key]
    assert answer["NoEcho"] is False
    # at the pre-signed path and query, with the empty content type the URL's signature was made for
    assert bucket.paths == [event["ResponseURL"].removeprefix(bucket.url)]
    assert bucket.headers[0]["content-type"] == ""


def test_update_runs_the_command_again_under_the_same_physical_id(bucket: ResponseBucket) -> None:
    migrate = Recorder(result={"applied": []})

    handler_with(migrate=migrate)(custom_resource_event(bucket, "Update"), LambdaContext())

    assert migrate.calls == [{}]
    [answer] = bucket.answers
    assert (answer["Status"], answer["PhysicalResourceId"]) == ("SUCCESS", "DatabaseMigration-migrate")


def test_delete_runs_nothing_and_answers_success(bucket: ResponseBucket) -> None:
    migrate = Recorder()

    handler_with(migrate=migrate)(custom_resource_event(bucket, "Delete"), LambdaContext())

    assert migrate.calls == []
    [answer] = bucket.answers
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == "DatabaseMigration-migrate"


def test_a_failing_command_answers_failed_with_its_reason_and_does_not_raise(bucket: ResponseBucket) -> None:
    # GIVEN a migration that fails (a raise would have Lambda retry the invocation instead of answering)
    migrate = Recorder(error=RuntimeError("0029_new_table was edited after it was applied"))
    context = LambdaContext()

    answer = handler_with(migrate=migrate)(custom_resource_event(bucket, "Update"), context)

    # THEN the deployment fails with the reason and where the logs are
    assert bucket.answers == [answer]
    assert answer["Status"] == "FAILED"
    assert "RuntimeError: 0029_new_table was edited after it was applied" in answer["Reason"]
    assert context.log_stream_name in answer["Reason"]


def test_an_unknown_command_answers_failed(bucket: ResponseBucket) -> None:
    answer = handler_with(migrate=Recorder())(custom_resource_event(bucket, "Create", command="seed"), LambdaContext())

    assert answer["Status"] == "FAILED"
    assert "no command 'seed'" in answer["Reason"]
    assert bucket.answers == [answer]


def test_a_command_running_out_of_time_answers_failed_before_the_deadline(bucket: ResponseBucket) -> None:
    # GIVEN 5.5 s left in the invocation and a command that would take 30 s: 5 s are kept for the answer
    migrate = Recorder(delay_s=30)

    answer = handler_with(migrate=migrate)(custom_resource_event(bucket, "Create"), LambdaContext(remaining_ms=5_500))

    assert answer["Status"] == "FAILED"
    assert "did not finish within the function's timeout" in answer["Reason"]
    assert bucket.answers == [answer]


def test_an_answer_cloudformation_did_not_take_raises_so_lambda_retries(bucket: ResponseBucket) -> None:
    # GIVEN an expired pre-signed URL (S3 answers 403)
    bucket.status = 403

    with pytest.raises(HTTPError):
        handler_with(migrate=Recorder(result={"applied": []}))(custom_resource_event(bucket, "Create"), LambdaContext())
