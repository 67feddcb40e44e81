"""The local cloud's Lambda: real Runtime API workers, template timeouts, crashes and the import path."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from strata_cli.localcloud.lambdas import FunctionPool, InvocationError
from strata_cli.localcloud.template import FunctionSpec

HANDLER = textwrap.dedent(
    """
    import os, sys, time

    def handler(event, context):
        if event.get("crash"):
            os._exit(3)
        if event.get("fail"):
            raise ValueError("asked to fail")
        if event.get("import"):
            __import__(event["import"])
        time.sleep(event.get("sleep", 0))
        return {"remaining_ms": context.get_remaining_time_in_millis(), "pid": os.getpid(),
                "path": sys.path[:2], "request_id": context.aws_request_id}
    """
)


@pytest.fixture
async def pool(tmp_path: Path, project_root: Path) -> AsyncIterator[FunctionPool]:
    code = tmp_path / "probe"
    (code / "probe_fn").mkdir(parents=True)
    (code / "probe_fn" / "__init__.py").write_text("")
    (code / "probe_fn" / "handler.py").write_text(HANDLER)
    spec = FunctionSpec(
        logical_id="ProbeFunction",
        code_uri=code,
        handler="probe_fn.handler.handler",
        timeout_s=2,
        memory_mb=128,
        environment={},
        layers=[project_root / "shared"],
        reserved_concurrency=None,
    )
    env = {
        "LAMBDA_TASK_ROOT": str(code),
        "_HANDLER": spec.handler,
        "STRATA_LOCAL_LAYER_PATHS": str(project_root / "shared"),
        "AWS_LAMBDA_FUNCTION_NAME": "ProbeFunction",
        "AWS_REGION": "us-east-1",
    }
    functions = FunctionPool(spec, env, tmp_path / "logs", max_concurrency=2)
    yield functions
    await functions.stop()


async def _invoke(pool: FunctionPool, payload: dict[str, object]) -> dict[str, object]:
    result: dict[str, object] = json.loads(await pool.invoke(payload))
    return result


async def test_a_worker_sees_the_lambda_context_and_only_its_code_and_the_layer(pool: FunctionPool) -> None:
    result = await _invoke(pool, {})

    assert result["path"] == [str(pool.spec.code_uri), str(Path(pool.env["STRATA_LOCAL_LAYER_PATHS"]))]
    assert 0 < int(str(result["remaining_ms"])) <= 2000
    # another function's package is not importable, exactly as in Lambda
    with pytest.raises(InvocationError) as error:
        await _invoke(pool, {"import": "strata_data"})
    assert error.value.error_type == "Runtime.ImportModuleError" or "ModuleNotFoundError" in str(error.value)


async def test_the_template_timeout_ends_the_invocation_and_the_next_one_runs(pool: FunctionPool) -> None:
    # WHEN an invocation runs past the function's 2 s timeout
    with pytest.raises(InvocationError) as error:
        await _invoke(pool, {"sleep": 5})

    # THEN it fails as Lambda reports it, and a new environment serves the next invocation
    assert error.value.error_type == "Sandbox.Timedout"
    assert "Task timed out after 2.00 seconds" in error.value.message
    assert "remaining_ms" in await _invoke(pool, {})


async def test_a_crashed_worker_fails_its_invocation_and_is_replaced(pool: FunctionPool) -> None:
    first = await _invoke(pool, {})

    with pytest.raises(InvocationError) as error:
        await _invoke(pool, {"crash": True})

    assert error.value.error_type == "Runtime.ExitError"
    after = await _invoke(pool, {})
    assert after["pid"] != first["pid"]


async def test_a_handler_error_is_reported_with_its_type_and_the_worker_lives_on(pool: FunctionPool) -> None:
    first = await _invoke(pool, {})

    with pytest.raises(InvocationError) as error:
        await _invoke(pool, {"fail": True})

    assert error.value.error_type == "ValueError"
    assert error.value.message == "asked to fail"
    assert (await _invoke(pool, {}))["pid"] == first["pid"]


async def test_a_worker_that_dies_in_its_init_fails_the_invocation_without_respawning(
    tmp_path: Path, project_root: Path
) -> None:
    # GIVEN a function whose module exits while it is being imported (no init error is ever reported)
    code = tmp_path / "dying"
    (code / "dying_fn").mkdir(parents=True)
    (code / "dying_fn" / "__init__.py").write_text("")
    (code / "dying_fn" / "handler.py").write_text("import sys\nsys.exit(3)\n")
    spec = FunctionSpec(
        logical_id="DyingFunction",
        code_uri=code,
        handler="dying_fn.handler.handler",
        timeout_s=2,
        memory_mb=128,
        environment={},
        layers=[project_root / "shared"],
        reserved_concurrency=None,
    )
    env = {"LAMBDA_TASK_ROOT": str(code), "_HANDLER": spec.handler, "AWS_LAMBDA_FUNCTION_NAME": "DyingFunction"}
    dying = FunctionPool(spec, env, tmp_path / "logs", max_concurrency=2)
    try:
        # WHEN it is invoked
        with pytest.raises(InvocationError) as error:
            await asyncio.wait_for(dying.invoke({}), timeout=30)

        # THEN the invocation fails with the exit, and no environment is started in a loop
        assert error.value.error_type == "Runtime.ExitError"
        await asyncio.sleep(0.5)
        assert dying.cold_starts == 1
    finally:
        await dying.stop()
