"""Least privilege in the deployed template: every IAM statement of SAM's translation of template.yaml (the roles SAM
makes for the functions, the template's own roles and managed policies, and the resource policies), each Fn::If
branch included, names its actions and resources."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Where a statement may name every resource: actions that have no resource-level permissions. None today.
ACTIONS_WITHOUT_RESOURCES: frozenset[str] = frozenset()
# The AWS managed policies a role may carry: what SAM attaches for logs, X-Ray, the VPC and SQS event sources.
MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
}
POLICY_HOLDERS = {
    "AWS::IAM::Role": lambda p: [doc["PolicyDocument"] for doc in p.get("Policies", [])],
    "AWS::IAM::Policy": lambda p: [p["PolicyDocument"]],
    "AWS::IAM::ManagedPolicy": lambda p: [p["PolicyDocument"]],
    "AWS::SQS::QueuePolicy": lambda p: [p["PolicyDocument"]],
    "AWS::SNS::TopicPolicy": lambda p: [p["PolicyDocument"]],
    "AWS::S3::BucketPolicy": lambda p: [p["PolicyDocument"]],
    "AWS::Events::EventBusPolicy": lambda p: [p["Statement"]] if "Statement" in p else [],
}


def translate(path: Path) -> dict[str, Any]:
    """SAM's CloudFormation translation of the template (tooling-measured.md §1), without network calls."""
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(path.read_text(encoding="utf-8"))
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):  # the translator wants S3 locations
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://strata-artifacts/{key.lower()}.zip"

    class NoManagedPolicyLookups:  # the translator would list IAM's managed policies over the network
        def load(self) -> dict[str, str]:
            return {}

    translated: dict[str, Any] = transform(template, {}, NoManagedPolicyLookups())
    return translated


def branches(node: Any) -> Iterator[Any]:
    """Every value `node` can take: each Fn::If branch (AWS::NoValue dropped from lists), recursively."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            _, when_true, when_false = node["Fn::If"]
            yield from branches(when_true)
            yield from branches(when_false)
            return
        keys = list(node)
        combos: list[dict[str, Any]] = [{}]
        for key in keys:
            combos = [{**c, key: v} for c in combos for v in branches(node[key])]
        yield from combos
    elif isinstance(node, list):
        combos_l: list[list[Any]] = [[]]
        for item in node:
            combos_l = [c + ([] if v == {"Ref": "AWS::NoValue"} else [v]) for c in combos_l for v in branches(item)]
        yield from combos_l
    else:
        yield node


def statements(cfn: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, statement) for every statement of every policy in the translated template, per Fn::If branch."""
    for name, resource in cfn["Resources"].items():
        holder = POLICY_HOLDERS.get(resource["Type"])
        if holder is None:
            continue
        for document in holder(resource.get("Properties", {})):
            for concrete in branches(document):
                found = concrete.get("Statement", concrete) if isinstance(concrete, dict) else concrete
                for index, statement in enumerate(found if isinstance(found, list) else [found]):
                    yield f"{name} statement {index}", statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def problems(cfn: dict[str, Any]) -> list[str]:
    """Statements that allow too much: a wildcard action anywhere, any action on every resource (but those without
    resource-level permissions), NotAction or NotResource; and managed policies beyond MANAGED_POLICIES."""
    found: list[str] = []
    for where, statement in statements(cfn):
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement or "NotResource" in statement:
            found.append(f"{where}: NotAction/NotResource allows everything else")
            continue
        actions = [a for a in as_list(statement.get("Action", [])) if isinstance(a, str)]
        resources = as_list(statement.get("Resource", []))
        for action in actions:
            if action == "*" or action.endswith(":*"):
                found.append(f"{where}: action {action!r}")
        if "*" in resources:
            broad = [a for a in actions if a not in ACTIONS_WITHOUT_RESOURCES]
            if broad:
                found.append(f"{where}: {broad} on every resource")
    for name, resource in cfn["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for arn in branches(resource["Properties"].get("ManagedPolicyArns", [])):
            for item in arn:
                if isinstance(item, str) and item not in MANAGED_POLICIES:
                    found.append(f"{name}: managed policy {item}")
    return found


@pytest.fixture(scope="module")
def translated(monkeypatch_module: pytest.MonkeyPatch) -> dict[str, Any]:
    return translate(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the translator builds ARNs for a region
        yield patch


def test_every_policy_of_the_template_names_its_actions_and_resources(translated: dict[str, Any]) -> None:
    # GIVEN every statement SAM's translation holds (the function roles SAM generates included)
    walked = list(statements(translated))
    roles = [n for n, r in translated["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    assert len(roles) >= 11 + 2  # the eleven function roles, the scheduler's and the proxy's
    assert len(walked) > 60

    # THEN none allows a wildcard action, or an action on every resource
    assert problems(translated) == []


def test_the_check_catches_what_it_is_for() -> None:
    # GIVEN a role with the mistakes the check exists to catch, one behind a condition
    cfn = {
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "ManagedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"],
                    "Policies": [
                        {
                            "PolicyName": "p",
                            "PolicyDocument": {
                                "Statement": [
                                    {"Effect": "Allow", "Action": "*", "Resource": "*"},
                                    {"Effect": "Allow", "Action": ["s3:*"], "Resource": "arn:aws:s3:::b/*"},
                                    {
                                        "Effect": "Allow",
                                        "Action": "secretsmanager:GetSecretValue",
                                        "Resource": {"Fn::If": ["C", "arn:aws:secretsmanager:::secret:x", "*"]},
                                    },
                                    {"Effect": "Deny", "Action": "*", "Resource": "*"},
                                ]
                            },
                        }
                    ],
                },
            },
            "Queue": {
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {"PolicyDocument": {"Statement": {"Effect": "Allow", "NotAction": "sqs:Delete*"}}},
            },
        }
    }

    found = problems(cfn)

    assert "Role statement 0: action '*'" in found
    assert "Role statement 0: ['*'] on every resource" in found
    assert "Role statement 1: action 's3:*'" in found
    assert "Role statement 2: ['secretsmanager:GetSecretValue'] on every resource" in found
    assert "Queue statement 0: NotAction/NotResource allows everything else" in found
    assert "Role: managed policy arn:aws:iam::aws:policy/AdministratorAccess" in found
    assert not any("statement 3" in p for p in found)  # a Deny may be as broad as it likes


def test_functions_read_only_their_secrets_and_the_api_url(translated: dict[str, Any]) -> None:
    # the functions' secret and parameter reads name ARNs, never a wildcard across the account
    reads = [
        (where, statement)
        for where, statement in statements(translated)
        if any(str(a).startswith(("secretsmanager:", "ssm:")) for a in as_list(statement.get("Action", [])))
    ]
    assert reads
    for where, statement in reads:
        text = json.dumps(statement["Resource"])
        assert "secret:*" not in text, where
        assert "parameter/*" not in text, where
