"""The database and Redis URLs read from Secrets Manager (as the template wires them in AWS), else the environment."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from uuid import uuid4

import asyncpg
import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from moto import mock_aws

from strata.config import database_url, postgres_url_from_secret, redis_url

SetEnv = Callable[..., None]  # the `settings_env` fixture (tests/unit/conftest.py)


@pytest.fixture
def secrets_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """An in-process Secrets Manager (moto), with Powertools' providers and cached values forgotten around it."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    DEFAULT_PROVIDERS.clear()  # what parameters.clear_caches() does: the providers and the values they cached
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")
    DEFAULT_PROVIDERS.clear()


def rds_secret(**overrides: object) -> dict[str, object]:
    """A secret as RDS keeps it once attached to an Aurora cluster (the template's DatabaseSecret)."""
    return {
        "username": "strata",
        "password": "p@ss:w/rd",
        "engine": "postgres",
        "host": "strata-dev.cluster-abc.us-east-1.rds.amazonaws.com",
        "port": 5432,
        "dbname": "strata",
        "dbClusterIdentifier": "strata-dev",
        **overrides,
    }


def test_the_url_comes_from_the_environment_without_a_secret(settings_env: SetEnv) -> None:
    settings_env(
        DATABASE_URL="postgresql://postgres@db.local:5432/strata",
        REDIS_URL="redis://cache.local:6379/0",
        STRATA_DATABASE_SECRET_ID=None,
        STRATA_REDIS_URL_SECRET_ID=None,
    )

    assert database_url() == "postgresql://postgres@db.local:5432/strata"
    assert redis_url() == "redis://cache.local:6379/0"


def test_the_database_url_is_built_from_the_rds_secret_through_the_proxy(
    settings_env: SetEnv, secrets_manager: object
) -> None:
    # GIVEN the cluster's secret in Secrets Manager, and the proxy endpoint in place of the cluster's host
    name = f"strata/test/database-{uuid4()}"
    secrets_manager.create_secret(Name=name, SecretString=json.dumps(rds_secret()))  # type: ignore[attr-defined]
    settings_env(
        DATABASE_URL="postgresql://ignored@127.0.0.1/ignored",
        STRATA_DATABASE_SECRET_ID=name,
        STRATA_DATABASE_HOST="strata-dev.proxy-xyz.us-east-1.rds.amazonaws.com",
    )

    # WHEN the URL is asked for THEN it is the secret's credentials, quoted, at the proxy, over TLS
    url = database_url()
    assert url == (
        "postgresql://strata:p%40ss%3Aw%2Frd@strata-dev.proxy-xyz.us-east-1.rds.amazonaws.com:5432/strata"
        "?sslmode=require"
    )
    # and asyncpg reads back exactly the secret's user, password, host, port and database from it
    params = asyncpg.connect_utils._parse_connect_dsn_and_args(  # the parser asyncpg.connect uses
        dsn=url,
        host=None,
        port=None,
        user=None,
        password=None,
        passfile=None,
        database=None,
        ssl=None,
        direct_tls=None,
        server_settings=None,
        target_session_attrs=None,
        krbsrvname=None,
        gsslib=None,
        service=None,
        servicefile=None,
    )
    addresses, connection = params[0], params[1]
    assert addresses == [("strata-dev.proxy-xyz.us-east-1.rds.amazonaws.com", 5432)]
    assert (connection.user, connection.password, connection.database) == ("strata", "p@ss:w/rd", "strata")


def test_the_clusters_own_host_is_used_without_a_proxy(settings_env: SetEnv, secrets_manager: object) -> None:
    name = f"strata/test/database-{uuid4()}"
    secrets_manager.create_secret(Name=name, SecretString=json.dumps(rds_secret()))  # type: ignore[attr-defined]
    settings_env(STRATA_DATABASE_SECRET_ID=name, STRATA_DATABASE_HOST=None)

    assert database_url().startswith("postgresql://strata:p%40ss%3Aw%2Frd@strata-dev.cluster-abc.us-east-1.")


def test_a_secret_holding_a_url_is_used_as_it_is(settings_env: SetEnv, secrets_manager: object) -> None:
    # GIVEN an existing database's and Redis's URLs, each kept in a secret of its own
    database_name, redis_name = f"strata/test/db-url-{uuid4()}", f"strata/test/redis-url-{uuid4()}"
    secrets_manager.create_secret(  # type: ignore[attr-defined]
        Name=database_name, SecretString="postgresql://app:secret@db.example.com:5432/strata?sslmode=require\n"
    )
    secrets_manager.create_secret(  # type: ignore[attr-defined]
        Name=redis_name, SecretString="rediss://:token@cache.example.com:6379/0"
    )
    settings_env(STRATA_DATABASE_SECRET_ID=database_name, STRATA_REDIS_URL_SECRET_ID=redis_name)

    assert database_url() == "postgresql://app:secret@db.example.com:5432/strata?sslmode=require"
    assert redis_url() == "rediss://:token@cache.example.com:6379/0"


def test_rds_json_defaults_its_port_database_and_tls() -> None:
    url = postgres_url_from_secret(json.dumps({"username": "u", "password": "p", "host": "h"}))

    assert url == "postgresql://u:p@h:5432/postgres?sslmode=require"


def test_a_missing_secret_is_an_error_not_a_fallback(settings_env: SetEnv, secrets_manager: object) -> None:
    settings_env(STRATA_DATABASE_SECRET_ID=f"strata/test/absent-{uuid4()}")

    with pytest.raises(parameters.exceptions.GetParameterError):
        database_url()
