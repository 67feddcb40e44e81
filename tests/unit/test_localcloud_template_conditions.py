"""The local cloud reads the template's conditions as a stack given existing Postgres and Redis would: the data stores,
VPC and alarms it cannot run are left out, each Fn::If is decided, and parameter references resolve to defaults."""

from __future__ import annotations

from pathlib import Path

from strata_cli.localcloud.template import load_template

ROOT = Path(__file__).resolve().parents[2]

MINI_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  DatabaseUrl: {Type: String, Default: '', NoEcho: true}
  RedisUrl: {Type: String, Default: '', NoEcho: true}
  SubnetIds: {Type: CommaDelimitedList, Default: ''}
  Concurrency: {Type: Number, Default: 7}
Conditions:
  HasDatabaseUrl: !Not [!Equals [!Ref DatabaseUrl, '']]
  CreateDatabase: !Not [!Condition HasDatabaseUrl]
  InVpc: !Or [!Condition CreateDatabase, !Not [!Equals [!Join ['', !Ref SubnetIds], '']]]
  Limit: !Not [!Equals [!Ref Concurrency, '0']]
Globals:
  Function:
    Runtime: python3.11
    ReservedConcurrentExecutions: !If [Limit, !Ref Concurrency, !Ref AWS::NoValue]
    VpcConfig: !If [InVpc, {SubnetIds: !Ref SubnetIds}, !Ref AWS::NoValue]
    Environment:
      Variables:
        DATABASE_URL: !If [HasDatabaseUrl, !Ref DatabaseUrl, !Ref AWS::NoValue]
        STRATA_DATABASE_SECRET_ID: !If [CreateDatabase, !Ref DatabaseSecret, !Ref AWS::NoValue]
Resources:
  DatabaseSecret:
    Type: AWS::SecretsManager::Secret
    Condition: CreateDatabase
    Properties: {Name: db}
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: q
      Tags: [{Key: a, Value: b}, !If [CreateDatabase, {Key: db, Value: created}, !Ref AWS::NoValue]]
  DataFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: functions/data/, Handler: strata_data.handler.handler}
"""


def test_conditions_are_decided_for_the_local_clouds_own_database(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(MINI_TEMPLATE, encoding="utf-8")

    template = load_template(path)

    # the database the stack would create is left out, with what refers to it
    assert set(template.resources) == {"Queue", "DataFunction"}
    assert template.resources["Queue"]["Properties"]["Tags"] == [{"Key": "a", "Value": "b"}]
    function = template.functions["DataFunction"]
    assert function.environment == {"DATABASE_URL": {"Ref": "DatabaseUrl"}}
    assert function.reserved_concurrency == 7


def test_the_projects_template_runs_locally_as_it_did_before_its_aws_resources() -> None:
    template = load_template(ROOT / "template.yaml")

    for kind in ("AWS::RDS::DBCluster", "AWS::ElastiCache::ReplicationGroup", "AWS::EC2::SecurityGroup"):
        assert template.resources_of_type(kind) == {}, kind
    for spec in template.functions.values():
        assert spec.environment["DATABASE_URL"] == {"Ref": "DatabaseUrl"}
        assert spec.environment["REDIS_URL"] == {"Ref": "RedisUrl"}
        assert not any(name.endswith("_SECRET_ID") and "DATABASE" in name for name in spec.environment)
        assert spec.reserved_concurrency is not None
        assert spec.reserved_concurrency > 0
