"""Fine-tuning exports and jobs. A dataset version is written to S3 (through the AWS endpoint: S3, LocalStack or
moto) as one JSONL object per split in a fine-tuning format:

- `openai_chat`: OpenAI's chat fine-tuning format, the whole exchange (system, user, the assistant's tool calls,
  the tools' results, the answer) per line;
- `bedrock_conversation`: Bedrock model customisation's `bedrock-conversation-2024` records (system, the task as the
  user's turn, the answer as the assistant's; single-turn, which every customisable Bedrock model accepts).

A Bedrock export can be submitted as a model customisation job (boto3 `create_model_customization_job`), whose
status is read back from Bedrock."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from typing import Any
from uuid import UUID, uuid4

from strata import aws, db
from strata.errors import BadGatewayError, DependencyUnavailableError, InvalidInputError, NotFoundError
from strata.pagination import PageRequest, Where, fetch_page
from strata_learning import datasets
from strata_learning.settings import learning_settings

EXPORT_COLUMNS = "export_id, dataset_id, version, format, files, created_by, created_at"
JOB_COLUMNS = (
    "job_id, dataset_id, version, export_id, provider, job_name, job_arn, base_model, custom_model, status, detail,"
    " created_by, created_at, updated_at"
)
BEDROCK_SCHEMA = "bedrock-conversation-2024"
JOB_NAME = re.compile(r"[^a-zA-Z0-9-]+")


def openai_record(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """One line of OpenAI chat fine-tuning data."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m["role"] == "assistant" and m.get("tool_calls"):
            out.append({
                "role": "assistant",
                "content": m.get("content") or None,
                "tool_calls": [
                    {"id": c["id"], "type": "function",
                     "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}}
                    for c in m["tool_calls"]
                ],
            })  # fmt: skip
        elif m["role"] == "tool":
            out.append({"role": "tool", "tool_call_id": m["tool_call_id"], "content": m["content"]})
        else:
            out.append({"role": m["role"], "content": m.get("content") or ""})
    return {"messages": out}


def bedrock_record(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """One line of Bedrock customisation data: the system prompt, the task, the final answer."""
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    user = next((m["content"] for m in messages if m["role"] == "user"), "")
    answer = next(
        (m["content"] for m in reversed(messages) if m["role"] == "assistant" and not m.get("tool_calls")), ""
    )
    record: dict[str, Any] = {
        "schemaVersion": BEDROCK_SCHEMA,
        "messages": [
            {"role": "user", "content": [{"text": user}]},
            {"role": "assistant", "content": [{"text": answer}]},
        ],
    }
    if system:
        record["system"] = [{"text": system}]
    return record


FORMATS = {"openai_chat": openai_record, "bedrock_conversation": bedrock_record}


def _bucket() -> str:
    bucket = learning_settings().training_bucket
    if not bucket:
        raise DependencyUnavailableError("no training bucket is configured (STRATA_TRAINING_BUCKET)")
    return bucket


async def export(tenant_id: UUID, dataset_id: UUID, version: int, fmt: str, by: str) -> dict[str, Any]:
    """Write the version's splits in `fmt` to S3 and record the export."""
    await datasets.get(tenant_id, dataset_id)
    await datasets.version_of(tenant_id, dataset_id, version)
    rows = await datasets.version_examples(tenant_id, dataset_id, version)
    if not rows:
        raise InvalidInputError(f"version {version} of the dataset has no examples to export")
    to_record = FORMATS[fmt]
    bucket = _bucket()
    export_id = uuid4()
    files: dict[str, Any] = {}
    for split in datasets.SPLITS:
        lines = [json.dumps(to_record(r["messages"]), ensure_ascii=False) for r in rows if r["split"] == split]
        if not lines:
            continue
        body = ("\n".join(lines) + "\n").encode()
        key = f"{tenant_id}/datasets/{dataset_id}/v{version}/{fmt}/{export_id}/{split}.jsonl"
        await asyncio.to_thread(
            aws.client("s3").put_object, Bucket=bucket, Key=key, Body=body, ContentType="application/jsonl"
        )
        files[split] = {
            "uri": f"s3://{bucket}/{key}",
            "records": len(lines),
            "bytes": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
    async with db.transaction(tenant_id) as conn:
        row = await conn.fetchrow(
            f"""INSERT INTO dataset_exports (tenant_id, export_id, dataset_id, version, format, files, created_by)
                VALUES (strata_tenant(), $1, $2, $3, $4, $5, $6) RETURNING {EXPORT_COLUMNS}""",  # noqa: S608
            export_id,
            dataset_id,
            version,
            fmt,
            files,
            by,
        )
    assert row is not None
    return dict(row)


async def exports_of(tenant_id: UUID, dataset_id: UUID, page: PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    await datasets.get(tenant_id, dataset_id)
    where = Where(tenant_id).add("dataset_id = {}", dataset_id)
    return await fetch_page("dataset_exports", EXPORT_COLUMNS, "export_id", where, page)


async def start_fine_tune(
    tenant_id: UUID,
    dataset_id: UUID,
    version: int,
    by: str,
    base_model: str,
    custom_model: str,
    hyperparameters: dict[str, str],
    role_arn: str | None,
) -> dict[str, Any]:
    """Export the version for Bedrock and submit a model customisation job for it."""
    role = role_arn or learning_settings().bedrock_customization_role_arn
    if not role:
        raise InvalidInputError("name the IAM role Bedrock reads the data with (role_arn); none is configured")
    made = await export(tenant_id, dataset_id, version, "bedrock_conversation", by)
    files = made["files"]
    if "train" not in files:
        raise InvalidInputError("the version's train split is empty; a customisation job needs training data")
    job_id = uuid4()
    job_name = JOB_NAME.sub("-", f"strata-{custom_model}-{job_id.hex[:8]}")[:63].strip("-")
    request: dict[str, Any] = {
        "jobName": job_name,
        "customModelName": custom_model,
        "roleArn": role,
        "baseModelIdentifier": base_model,
        "customizationType": "FINE_TUNING",
        "trainingDataConfig": {"s3Uri": files["train"]["uri"]},
        "outputDataConfig": {"s3Uri": f"s3://{_bucket()}/{tenant_id}/fine-tunes/{job_id}/"},
        "hyperParameters": hyperparameters,
        "clientRequestToken": str(job_id),
    }
    if "validation" in files:
        request["validationDataConfig"] = {"validators": [{"s3Uri": files["validation"]["uri"]}]}
    from botocore.exceptions import ClientError

    try:
        answer = await asyncio.to_thread(aws.client("bedrock").create_model_customization_job, **request)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") in ("ValidationException", "ResourceInUseException"):
            raise InvalidInputError(f"Bedrock refused the job: {error.get('Message', '')}") from exc
        raise BadGatewayError(f"Bedrock failed: {error.get('Code')}: {error.get('Message', '')}") from exc
    async with db.transaction(tenant_id) as conn:
        row = await conn.fetchrow(
            f"""INSERT INTO fine_tune_jobs (tenant_id, job_id, dataset_id, version, export_id, provider, job_name,
                                            job_arn, base_model, custom_model, status, detail, created_by)
                VALUES (strata_tenant(), $1, $2, $3, $4, 'bedrock', $5, $6, $7, $8, 'InProgress', $9, $10)
                RETURNING {JOB_COLUMNS}""",  # noqa: S608
            job_id,
            dataset_id,
            version,
            made["export_id"],
            job_name,
            answer["jobArn"],
            base_model,
            custom_model,
            {"hyperparameters": hyperparameters, "role_arn": role},
            by,
        )
    assert row is not None
    return dict(row)


async def fine_tune(tenant_id: UUID, job_id: UUID) -> dict[str, Any]:
    """A customisation job with its status as Bedrock reports it now."""
    rows = await db.fetch(
        f"SELECT {JOB_COLUMNS} FROM fine_tune_jobs WHERE job_id = $1",  # noqa: S608 - constant columns
        job_id,
        tenant_id=tenant_id,
    )
    if not rows:
        raise NotFoundError(f"no fine-tuning job {job_id}")
    job = dict(rows[0])
    if job["status"] in ("Completed", "Failed", "Stopped"):
        return job
    from botocore.exceptions import ClientError

    try:
        found = await asyncio.to_thread(
            aws.client("bedrock").get_model_customization_job, jobIdentifier=job["job_name"]
        )
    except ClientError as exc:
        raise BadGatewayError(f"Bedrock failed: {exc.response.get('Error', {}).get('Message', '')}") from exc
    status = str(found.get("status", job["status"]))
    detail = {
        **job["detail"],
        "failure_message": found.get("failureMessage"),
        "output_model": found.get("outputModelArn"),
    }
    async with db.transaction(tenant_id) as conn:
        row = await conn.fetchrow(
            f"UPDATE fine_tune_jobs SET status = $2, detail = $3, updated_at = now() WHERE job_id = $1 "  # noqa: S608
            f"RETURNING {JOB_COLUMNS}",
            job_id,
            status,
            detail,
        )
    assert row is not None
    return dict(row)


async def fine_tunes(tenant_id: UUID, page: PageRequest) -> tuple[list[dict[str, Any]], str | None]:
    return await fetch_page("fine_tune_jobs", JOB_COLUMNS, "job_id", tenant_id, page)


async def erase_tenant_exports(tenant_id: UUID) -> dict[str, int]:
    """The tenant's dataset exports in S3, erased with the tenant (strata.tenant_data's hook for L07)."""
    bucket = learning_settings().training_bucket
    if not bucket:
        return {}
    return {"s3:training-exports": await asyncio.to_thread(aws.delete_prefix, bucket, f"{tenant_id}/")}
