"""LocalStack's ready hook: the template's non-Lambda resources as one CloudFormation stack derived from template.yaml.

One script wherever LocalStack runs: LocalStack runs it from its ready.d folder, in Docker (docker-compose.yml mounts
this folder there) and on the host (`localstack/host.py` points LocalStack's init folder here); it also runs by hand,
`AWS_ENDPOINT_URL=... python localstack/init/strata_resources.py`, with a Python that has boto3, PyYAML and
aws-sam-translator (LocalStack ships all three; so does the project's .venv).

The stack is SAM's own translation of the template, with the conditions decided for the local cloud's parameters
(it brings its own Postgres and Redis, so no database, cache or VPC) and what LocalStack community cannot run left
out: the Lambda functions with their layer, roles, permissions, schedules and SQS event sources, and the HTTP API
(Pro only). Each function's EventBridge rule stays, its target rewritten to a queue of its own, which the local cloud
drains into the function with the rule's retry policy and dead-letter queue (LocalCloudConfig.aws_stack); the API
URL parameter gets the local cloud's front URL. CloudFormation on LocalStack community creates every resource that
remains (2026.3 and 4.14 were tried), so nothing is made through the service APIs here.

Environment: STRATA_TEMPLATE (default: /etc/localstack/strata/template.yaml in Docker, else ../../template.yaml),
STRATA_STAGE (dev), STRATA_STACK_NAME (strata-<stage>), STRATA_API_URL (http://127.0.0.1:8080), AWS_ENDPOINT_URL
(default: LocalStack's own gateway, when LocalStack runs the hook).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DOCKER_TEMPLATE = Path("/etc/localstack/strata/template.yaml")
REGION = "us-east-1"
TEMPLATE_TAG = "strata:template-sha256"
# The parameters the local cloud runs the template with: it brings its own Postgres and Redis (embedded, or
# DATABASE_URL / REDIS_URL), so the conditions that would create a database, a cache and their VPC are false.
LOCAL_PARAMETERS = {"DatabaseUrl": "postgresql://local-cloud", "RedisUrl": "redis://local-cloud"}

# The types CloudFormation on LocalStack community creates (it has a resource provider for each).
CLOUDFORMATION_TYPES = frozenset(
    {
        "AWS::CloudWatch::Alarm",
        "AWS::Events::EventBus",
        "AWS::Events::Rule",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::Role",
        "AWS::Logs::LogGroup",
        "AWS::S3::Bucket",
        "AWS::Scheduler::ScheduleGroup",
        "AWS::SecretsManager::Secret",
        "AWS::SNS::Subscription",
        "AWS::SNS::Topic",
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
        "AWS::SSM::Parameter",
    }
)
# What LocalStack community cannot run here, and what runs it instead.
NOT_EMULATED = {
    "AWS::Lambda::Function": "Lambda needs Docker: the local cloud runs each function in its own worker process",
    "AWS::Lambda::LayerVersion": "the local cloud puts the layer on each function's import path",
    "AWS::Lambda::Permission": "no Lambda to permit: the local cloud's front and event router invoke the functions",
    "AWS::Lambda::EventSourceMapping": "the local cloud polls the queue into the function (partial batch failures)",
    "AWS::ApiGatewayV2::": "the HTTP API (apigatewayv2) is LocalStack Pro: the local cloud's HTTP front and authorizer",
}
FUNCTION_ROLE = "a function's execution role: no function runs in LocalStack"
FUNCTION_SCHEDULE = "a schedule of a function: the local cloud's timer invokes the function"
CUSTOM_RESOURCE = "a custom resource served by a function: no Lambda here (the local cloud migrates at start)"
NO_PROVIDER = "no LocalStack community CloudFormation resource for this type"
PSEUDO = re.compile(r"^AWS::")
SUB_NAME = re.compile(r"\$\{([^}!][^}]*)\}")
NO_VALUE = {"Ref": "AWS::NoValue"}


def references(value: Any) -> Iterator[str]:
    """The logical ids and parameters `value` refers to (Ref, Fn::GetAtt, Fn::Sub), pseudo parameters left out."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                yield item
            elif key == "Fn::GetAtt":
                yield item[0] if isinstance(item, list) else str(item).split(".")[0]
            elif key == "Fn::Sub":
                text, local = (item, {}) if isinstance(item, str) else (item[0], item[1])
                for name in SUB_NAME.findall(text):
                    if name.split(".")[0] not in local:
                        yield name.split(".")[0]
                yield from references(local)
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def _refs(value: Any) -> set[str]:
    return {name for name in references(value) if not PSEUDO.match(name)}


def sam_translate(template_text: str, stage: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The template (intrinsic tags parsed) and SAM's CloudFormation translation of it."""
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)  # the translator builds ARNs for a region
    template = yaml_parse(template_text)
    source = json.loads(json.dumps(template))
    for resource in source["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):  # the translator wants S3 locations; no code is deployed here
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://strata-local/{key.lower()}.zip"
        if resource.get("Type") == "AWS::Serverless::Function" and properties.get("Events"):
            # the HTTP API's routes become routes and Lambda permissions, all left out here (and translating the
            # template's ~230 of them takes SAM ~8 s against 0.1 s without)
            events = properties["Events"].items()
            properties["Events"] = {name: spec for name, spec in events if spec.get("Type") != "HttpApi"}

    class NoManagedPolicies:  # the translator would otherwise list IAM's managed policies over the network
        def load(self) -> dict[str, str]:
            return {}

    translated: dict[str, Any] = transform(source, {"Stage": stage, **LOCAL_PARAMETERS}, NoManagedPolicies())
    return template, translated


class Conditions:
    """The template's conditions, evaluated with the local cloud's parameter values."""

    def __init__(self, cfn: dict[str, Any], values: dict[str, str]) -> None:
        self.definitions: dict[str, Any] = cfn.get("Conditions", {})
        self.values: dict[str, Any] = {}
        for name, spec in cfn.get("Parameters", {}).items():
            value = str(values.get(name, spec.get("Default", "")))
            self.values[name] = value.split(",") if spec.get("Type") == "CommaDelimitedList" else value
        self.values.update({"AWS::Region": REGION, "AWS::AccountId": "000000000000", "AWS::Partition": "aws"})
        self.cache: dict[str, bool] = {}

    def __getitem__(self, name: str) -> bool:
        if name not in self.cache:
            self.cache[name] = bool(self._value(self.definitions[name]))
        return self.cache[name]

    def _value(self, expr: Any) -> Any:
        if not isinstance(expr, dict) or len(expr) != 1:
            return expr
        [(fn, arg)] = expr.items()
        if fn == "Fn::Equals":
            return self._value(arg[0]) == self._value(arg[1])
        if fn == "Fn::Not":
            return not self._value(arg[0])
        if fn == "Fn::And":
            return all(self._value(a) for a in arg)
        if fn == "Fn::Or":
            return any(self._value(a) for a in arg)
        if fn == "Condition":
            return self[arg]
        if fn == "Ref":
            return self.values[arg]
        if fn == "Fn::Join":
            return arg[0].join(str(v) for v in self._value(arg[1]))
        raise ValueError(f"cannot evaluate {fn} in a condition")

    def resolve_ifs(self, value: Any) -> Any:
        """`value` with every Fn::If decided (and AWS::NoValue removed), as CloudFormation would."""
        if isinstance(value, dict):
            if len(value) == 1 and "Fn::If" in value:
                name, yes, no = value["Fn::If"]
                return self.resolve_ifs(yes if self[name] else no)
            resolved = {key: self.resolve_ifs(item) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item != NO_VALUE}
        if isinstance(value, list):
            return [self.resolve_ifs(item) for item in value if self.resolve_ifs(item) != NO_VALUE]
        return value


def derive_stack(template_text: str, stage: str) -> dict[str, Any]:
    """The CloudFormation template to deploy on LocalStack, and what was left out of it and why.

    Returns {"template": ..., "excluded": {logical id: (type, reason)}, "stand_in_queues": {rule: queue}}."""
    template, cfn = sam_translate(template_text, stage)
    conditions = Conditions(cfn, {"Stage": stage, **LOCAL_PARAMETERS})
    resources: dict[str, Any] = cfn["Resources"]
    functions = {name for name, res in resources.items() if res["Type"] == "AWS::Lambda::Function"}
    apis = {name for name, res in resources.items() if res["Type"] == "AWS::ApiGatewayV2::Api"}
    rule_names = {  # the local cloud names a function's rule <function>-<event>; SAM's logical id is the two joined
        f"{function}{event}": f"{function}-{event}"
        for function, res in template["Resources"].items()
        if res.get("Type") == "AWS::Serverless::Function"
        for event, spec in (res.get("Properties", {}).get("Events") or {}).items()
        if spec.get("Type") == "EventBridgeRule"
    }
    generated_roles = {f"{fn}Role" for fn in functions if f"{fn}Role" not in template["Resources"]}

    excluded: dict[str, tuple[str, str]] = {}
    kept: dict[str, Any] = {}
    stand_ins: dict[str, str] = {}
    for name, res in resources.items():
        kind = res["Type"]
        reason = next((why for prefix, why in NOT_EMULATED.items() if kind.startswith(prefix)), None)
        if reason:
            excluded[name] = (kind, reason)
        elif kind == "AWS::CloudFormation::CustomResource" or kind.startswith("Custom::"):
            excluded[name] = (kind, CUSTOM_RESOURCE)
        elif "Condition" in res and not conditions[res["Condition"]]:
            excluded[name] = (kind, f"condition {res['Condition']} is false with the local cloud's parameters")
        elif name in generated_roles:
            excluded[name] = (kind, FUNCTION_ROLE)
        elif kind == "AWS::Events::Rule" and _targets_functions(res, functions):
            if "ScheduleExpression" in res["Properties"]:
                excluded[name] = (kind, FUNCTION_SCHEDULE)
            else:
                queue = f"{name}Queue"
                kept[name] = _rule_to_queue(res, queue, rule_names.get(name))
                kept[queue] = {
                    "Type": "AWS::SQS::Queue",
                    "Properties": {
                        "QueueName": {"Fn::Sub": f"strata-${{Stage}}-rule-{name}"[:80]},
                        # the local cloud's stand-in for EventBridge's own retrying: it deletes a message when done
                        "VisibilityTimeout": 900,
                    },
                }
                stand_ins[name] = queue
        elif kind in CLOUDFORMATION_TYPES:
            kept[name] = {k: v for k, v in res.items() if k != "Condition"}
        else:
            excluded[name] = (kind, f"{NO_PROVIDER} ({kind})")
    if stand_ins:
        kept["RuleQueuesPolicy"] = _stand_ins_policy(list(stand_ins.values()))

    for res in kept.values():  # the conditions are decided; the public API's URL is the local cloud's front
        res["Properties"] = _with_api_url(conditions.resolve_ifs(res.get("Properties", {})), apis)
    parameters = set(cfn.get("Parameters", {})) | {"LocalApiUrl"}
    changed = True
    while changed:  # a resource that needs something left out cannot be deployed either
        changed = False
        for name in list(kept):
            missing = sorted(_refs(kept[name]["Properties"]) - set(kept) - parameters)
            if missing:
                excluded[name] = (kept.pop(name)["Type"], f"needs {', '.join(missing)}, not in LocalStack")
                changed = True
    for res in kept.values():
        depends = res.pop("DependsOn", [])
        depends = [d for d in ([depends] if isinstance(depends, str) else depends) if d in kept]
        if depends:
            res["DependsOn"] = depends

    outputs = {}
    for key, output in cfn.get("Outputs", {}).items():
        if "Condition" in output and not conditions[output["Condition"]]:
            continue
        value = _with_api_url(conditions.resolve_ifs({k: v for k, v in output.items() if k != "Condition"}), apis)
        if _refs(value) <= set(kept) | parameters:
            outputs[key] = value
    used = set().union(set(), *(_refs(res) for res in [*kept.values(), *outputs.values()]))
    stack_parameters = {k: v for k, v in cfn.get("Parameters", {}).items() if k in used}
    stack_parameters["LocalApiUrl"] = {
        "Type": "String",
        "Default": "http://127.0.0.1:8080",
        "Description": "The local cloud's HTTP front, standing in for the HTTP API's URL.",
    }
    derived: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Strata ({stage}): the template's non-Lambda resources, for LocalStack",
        "Parameters": stack_parameters,
        "Resources": kept,
        "Outputs": outputs,
    }
    if cfn.get("Mappings") and "Fn::FindInMap" in json.dumps(kept):
        derived["Mappings"] = cfn["Mappings"]
    return {"template": derived, "excluded": excluded, "stand_in_queues": stand_ins}


def _targets_functions(rule: dict[str, Any], functions: set[str]) -> bool:
    return any(_refs(target.get("Arn")) & functions for target in rule["Properties"].get("Targets", []))


def _rule_to_queue(rule: dict[str, Any], queue: str, name: str | None) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(rule))
    properties = copy["Properties"]
    if name:
        properties["Name"] = name  # the name the local cloud gives the rule (its function and event)
    for target in properties.get("Targets", []):
        target["Arn"] = {"Fn::GetAtt": [queue, "Arn"]}
    return copy


def _stand_ins_policy(queues: list[str]) -> dict[str, Any]:
    """EventBridge may send to the stand-in queues (as the template's own queue policies allow it for its queues)."""
    return {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {
            "Queues": [{"Ref": queue} for queue in queues],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": [{"Fn::GetAtt": [queue, "Arn"]} for queue in queues],
                    }
                ],
            },
        },
    }


def _with_api_url(value: Any, apis: set[str]) -> Any:
    """`https://${HttpApi}.execute-api...` (the HTTP API's URL) becomes the LocalApiUrl parameter."""
    if isinstance(value, dict):
        sub = value.get("Fn::Sub")
        if len(value) == 1 and isinstance(sub, str) and any(f"${{{api}}}.execute-api" in sub for api in apis):
            return {"Ref": "LocalApiUrl"}
        return {key: _with_api_url(item, apis) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_api_url(item, apis) for item in value]
    return value


def _client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,  # type: ignore[call-overload]
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - LocalStack's account 000000000000
    )


def deploy(endpoint: str, stack_name: str, derived: dict[str, Any], parameters: dict[str, str]) -> str:
    """Create the stack (once per template: an identical stack is left as it is); returns what was done."""
    cloudformation = _client("cloudformation", endpoint)
    body = json.dumps(derived, sort_keys=True)
    digest = hashlib.sha256((body + json.dumps(parameters, sort_keys=True)).encode()).hexdigest()
    try:
        [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except cloudformation.exceptions.ClientError:
        stack = None
    if stack is not None:
        tags = {tag["Key"]: tag["Value"] for tag in stack.get("Tags", [])}
        if stack["StackStatus"] == "CREATE_COMPLETE" and tags.get(TEMPLATE_TAG) == digest:
            return "already deployed"
        cloudformation.delete_stack(StackName=stack_name)
        _wait(cloudformation, stack_name, {"DELETE_COMPLETE"}, set())
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=body,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        Tags=[{"Key": TEMPLATE_TAG, "Value": digest}],
    )
    _wait(cloudformation, stack_name, {"CREATE_COMPLETE"}, {"CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED"})
    return "created"


def _wait(cloudformation: Any, stack_name: str, done: set[str], failed: set[str], timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    status = ""
    while time.monotonic() < deadline:
        try:
            [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        except cloudformation.exceptions.ClientError:
            if "DELETE_COMPLETE" in done:
                return
            raise
        status = stack["StackStatus"]
        if status in done:
            return
        if status in failed:
            events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
            reasons = [
                f"{e['LogicalResourceId']} ({e['ResourceType']}): {e.get('ResourceStatusReason', '')}"
                for e in events
                if e["ResourceStatus"].endswith("FAILED")
            ]
            raise RuntimeError(f"stack {stack_name} ended {status}: " + "; ".join(reasons[:10]))
        time.sleep(0.25)
    raise TimeoutError(f"stack {stack_name} still {status} after {timeout_s:.0f} s")


def provision(endpoint: str, template_path: Path, stage: str, stack_name: str, api_url: str) -> dict[str, Any]:
    """Derive the stack from the template and deploy it; returns what is in it, and what was left out and why."""
    plan = derive_stack(template_path.read_text(encoding="utf-8"), stage)
    parameters = {"LocalApiUrl": api_url}
    if "Stage" in plan["template"]["Parameters"]:
        parameters["Stage"] = stage
    outcome = deploy(endpoint, stack_name, plan["template"], parameters)
    return {
        "stack": stack_name,
        "outcome": outcome,
        "cloudformation": sorted(plan["template"]["Resources"]),
        "excluded": {name: list(why) for name, why in sorted(plan["excluded"].items())},
    }


def _endpoint() -> str:
    if os.environ.get("AWS_ENDPOINT_URL"):
        return os.environ["AWS_ENDPOINT_URL"]
    # run by LocalStack itself (this project's localstack/ folder would shadow the name for a type checker)
    config = importlib.import_module("localstack.config")
    return str(config.internal_service_url(host="127.0.0.1"))


def _template_path() -> Path:
    if os.environ.get("STRATA_TEMPLATE"):
        return Path(os.environ["STRATA_TEMPLATE"])
    if DOCKER_TEMPLATE.is_file():
        return DOCKER_TEMPLATE
    here = globals().get("__file__")
    if here:
        return Path(here).resolve().parents[2] / "template.yaml"
    raise FileNotFoundError("set STRATA_TEMPLATE to the project's template.yaml")


def main() -> None:
    stage = os.environ.get("STRATA_STAGE") or "dev"
    report = provision(
        _endpoint(),
        _template_path(),
        stage,
        os.environ.get("STRATA_STACK_NAME") or f"strata-{stage}",
        os.environ.get("STRATA_API_URL") or "http://127.0.0.1:8080",
    )
    reasons: dict[str, int] = {}
    for _, why in report["excluded"].values():
        if why.startswith("condition "):
            why = "a condition of the template is false with the local cloud's parameters (no database, cache, VPC)"
        elif why.startswith("needs "):
            why = "needs something left out (alarms on the functions and the HTTP API)"
        reasons[why] = reasons.get(why, 0) + 1
    lines = [f"strata: stack {report['stack']} {report['outcome']}: {len(report['cloudformation'])} resources"]
    lines += [f"strata:   left out ({count}): {why}" for why, count in sorted(reasons.items(), key=lambda r: -r[1])]
    print("\n".join(lines), flush=True)


# LocalStack runs a ready.d script with exec() and empty globals (no __name__); by hand it is __main__
if globals().get("__name__") in (None, "__main__", "builtins"):
    main()  # raises on failure: LocalStack marks the hook failed, a shell gets a traceback and exit status 1
