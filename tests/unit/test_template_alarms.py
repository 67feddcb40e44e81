"""Operations in template.yaml: every function has its error and throttle alarms, every dead-letter queue an alarm,
every alarm notifies the topic, and the dashboard shows every function and queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    template: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text(encoding="utf-8"))
    return dict(template["Resources"])


def referenced(node: Any) -> Iterator[str]:
    """The logical ids `node` refers to (Ref, Fn::GetAtt, and ${...} in Fn::Sub)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield value
            elif key == "Fn::GetAtt":
                yield value[0] if isinstance(value, list) else str(value).split(".")[0]
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                for part in text.split("${")[1:]:
                    yield part.split("}")[0].split(".")[0]
            else:
                yield from referenced(value)
    elif isinstance(node, list):
        for item in node:
            yield from referenced(item)


def of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def dead_letter_queues(resources: dict[str, Any]) -> set[str]:
    """Queues something dead-letters into: an SQS redrive policy, or an EventBridge rule or target's DLQ."""
    found: set[str] = set()
    for queue in of_type(resources, "AWS::SQS::Queue").values():
        found |= set(referenced((queue["Properties"].get("RedrivePolicy") or {}).get("deadLetterTargetArn")))
    for resource in resources.values():
        properties = resource.get("Properties", {})
        for event in (properties.get("Events") or {}).values():
            found |= set(referenced((event.get("Properties") or {}).get("DeadLetterConfig")))
        for target in properties.get("Targets", []) if resource["Type"] == "AWS::Events::Rule" else []:
            found |= set(referenced(target.get("DeadLetterConfig")))
    return found


def test_every_function_has_an_errors_and_a_throttles_alarm(resources: dict[str, Any]) -> None:
    functions = set(of_type(resources, "AWS::Serverless::Function"))
    watched: dict[str, set[str]] = {}
    for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        if properties.get("Namespace") == "AWS/Lambda":
            for name in referenced(properties["Dimensions"]):
                watched.setdefault(name, set()).add(properties["MetricName"])

    assert len(functions) == 11
    assert {name: watched.get(name) for name in functions} == {name: {"Errors", "Throttles"} for name in functions}


def test_every_dead_letter_queue_has_an_alarm(resources: dict[str, Any]) -> None:
    queues = dead_letter_queues(resources)
    alarmed = {name for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values() for name in referenced(alarm)}

    assert queues == {"EventsDeadLetterQueue", "WebhookDeliveryDeadLetterQueue"}
    assert queues <= alarmed


def test_every_alarm_notifies_the_topic_going_off_and_back(resources: dict[str, Any]) -> None:
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")

    assert len(alarms) >= 11 * 2 + 2 + 1
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["Properties"]["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", name


def test_the_dashboard_shows_every_function_queue_and_the_api(resources: dict[str, Any]) -> None:
    [dashboard] = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    shown = set(referenced(body))

    functions = set(of_type(resources, "AWS::Serverless::Function"))
    queues = set(of_type(resources, "AWS::SQS::Queue"))
    assert functions | queues | {"HttpApi", "DatabaseCluster"} <= shown
    # and the body is JSON once CloudFormation has substituted the names, with the database's widgets or without
    parts = body["Fn::Join"][1]
    main, database, end = parts[0]["Fn::Sub"], parts[1]["Fn::If"][1]["Fn::Sub"], parts[2]
    for text in (main + database + end, main + end):
        widgets = json.loads(_substituted(text))["widgets"]
        assert all(w["type"] in ("metric", "text") for w in widgets)


def _substituted(text: str) -> str:
    """`text` with every ${...} of Fn::Sub replaced by a plain name, as CloudFormation would substitute it."""
    out, rest = [], text
    while "${" in rest:
        before, _, after = rest.partition("${")
        name, _, rest = after.partition("}")
        out.append(before + name.replace(".", "-").replace(":", "-"))
    return "".join(out) + rest
