"""boto3 clients, created lazily and honouring `AWS_ENDPOINT_URL` (LocalStack, moto or AWS)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from strata.config import get_settings


@lru_cache(maxsize=16)
def client(service: str) -> Any:
    """A cached boto3 client; boto3 is imported here, not at module import, to keep cold starts short."""
    import boto3
    from botocore.config import Config

    settings = get_settings()
    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=5),
    )


def reset_clients() -> None:
    """Forget cached clients (tests that change the endpoint)."""
    client.cache_clear()


def delete_prefix(bucket: str, prefix: str) -> int:
    """Delete every object under `prefix` in `bucket` (a page of up to 1000 per request); returns how many went."""
    if not prefix or not bucket:
        raise ValueError("delete_prefix needs a bucket and a non-empty prefix")
    s3, deleted = client("s3"), 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise RuntimeError(
                    f"S3 refused to delete {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )
            deleted += len(keys)
    return deleted
