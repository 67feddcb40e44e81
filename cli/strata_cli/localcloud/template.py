"""Read what the local cloud needs from template.yaml: functions, routes, the authorizer, rules, schedules."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PUBLIC = "NONE"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    public: bool

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Rule:
    function: str
    name: str
    pattern: dict[str, Any]
    max_retries: int
    max_event_age_s: int
    dead_letter: str | None

    @property
    def logical_id(self) -> str:
        """The logical id SAM gives the AWS::Events::Rule it makes of this event: the function's, then the event's."""
        return self.name.replace("-", "")


@dataclass(frozen=True)
class QueueSource:
    """An `SQS` event source: the function receives batches from the queue (partial failures reported)."""

    function: str
    name: str
    queue: str  # the queue's logical id
    batch_size: int


@dataclass(frozen=True)
class Schedule:
    function: str
    name: str
    expression: str
    input: str | None

    @property
    def period_s(self) -> float:
        match = re.fullmatch(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)", self.expression.strip())
        if not match:
            raise ValueError(f"{self.name}: the local cloud runs rate() schedules only, not {self.expression!r}")
        unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
        return int(match.group(1)) * unit


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    timeout_s: int
    memory_mb: int
    environment: dict[str, Any]
    layers: list[Path]
    reserved_concurrency: int | None


@dataclass
class Template:
    root: Path
    parameters: dict[str, Any]
    resources: dict[str, Any]
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    queue_sources: list[QueueSource] = field(default_factory=list)
    authorizer_function: str | None = None
    authorizer_headers: list[str] = field(default_factory=list)
    authorizer_ttl_s: int = 0

    def resources_of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == kind}


def _number(value: Any, parameters: dict[str, Any]) -> int | None:
    """An integer property, given literally or as a Ref to a parameter (its default)."""
    if isinstance(value, dict) and "Ref" in value:
        value = parameters[value["Ref"]].get("Default")
    return None if value is None else int(value)


def _ref_name(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
    return None


# The local cloud brings its own Postgres and Redis and passes their URLs as these parameters (cloud.py), so the
# template's conditions are decided as for a stack given existing endpoints: no database, cache or VPC to create.
LOCAL_PARAMETERS = {"DatabaseUrl": "postgresql://local", "RedisUrl": "redis://local"}
NO_VALUE = {"Ref": "AWS::NoValue"}


def _decide(raw: dict[str, Any]) -> dict[str, bool]:
    """Every condition of the template, for its parameters' defaults and LOCAL_PARAMETERS."""
    values = {name: spec.get("Default", "") for name, spec in (raw.get("Parameters") or {}).items()}
    values.update(LOCAL_PARAMETERS)
    definitions: dict[str, Any] = raw.get("Conditions") or {}
    decided: dict[str, bool] = {}

    def value(node: Any) -> Any:
        if isinstance(node, dict) and "Ref" in node:
            if node["Ref"] not in values:
                raise ValueError(f"the local cloud decides conditions on parameters only, not on {node['Ref']}")
            return str(values[node["Ref"]])
        if isinstance(node, dict) and "Fn::Join" in node:  # of a list, or of a CommaDelimitedList parameter
            separator, items = node["Fn::Join"]
            parts = [str(value(i)) for i in items] if isinstance(items, list) else str(value(items)).split(",")
            return separator.join(parts)
        if isinstance(node, dict):
            return truth(node)
        return str(node)

    def truth(node: Any) -> bool:
        if "Condition" in node:
            name = node["Condition"]
            if name not in decided:
                decided[name] = truth(definitions[name])
            return decided[name]
        (function, arguments), *_ = node.items()
        if function == "Fn::Equals":
            return bool(value(arguments[0]) == value(arguments[1]))
        if function == "Fn::Not":
            return not truth(arguments[0])
        if function == "Fn::And":
            return all(truth(a) for a in arguments)
        if function == "Fn::Or":
            return any(truth(a) for a in arguments)
        raise ValueError(f"the local cloud cannot decide the condition {node!r}")

    for name in definitions:
        truth({"Condition": name})
    return decided


def _choose(node: Any, conditions: dict[str, bool]) -> Any:
    """`node` with each Fn::If replaced by its chosen branch and AWS::NoValue removed (None when `node` is it)."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return _choose(when_true if conditions[name] else when_false, conditions)
        if node == NO_VALUE:
            return None
        chosen = {key: _choose(item, conditions) for key, item in node.items()}
        return {key: item for key, item in chosen.items() if item is not None}
    if isinstance(node, list):
        return [item for item in (_choose(i, conditions) for i in node) if item is not None]
    return node


def load_template(path: Path) -> Template:
    """Parse `path` (intrinsic tags included) into the pieces the local cloud runs: the resources whose condition holds
    locally (LOCAL_PARAMETERS), with each Fn::If decided."""
    from samtranslator.yaml_helper import yaml_parse

    raw = yaml_parse(path.read_text(encoding="utf-8"))
    root = path.parent
    conditions = _decide(raw)
    resources = {
        name: _choose(res, conditions)
        for name, res in raw["Resources"].items()
        if "Condition" not in res or conditions[res["Condition"]]
    }
    globals_fn = _choose(raw.get("Globals", {}).get("Function", {}), conditions)
    template = Template(root=root, parameters=raw.get("Parameters", {}), resources=resources)
    layer_dirs = {
        name: root / res["Properties"]["ContentUri"]
        for name, res in template.resources_of_type("AWS::Serverless::LayerVersion").items()
    }
    for name, res in template.resources_of_type("AWS::Serverless::Function").items():
        props = {**globals_fn, **res.get("Properties", {})}
        env = dict(globals_fn.get("Environment", {}).get("Variables", {}))
        env.update(res.get("Properties", {}).get("Environment", {}).get("Variables", {}))
        layers = [layer_dirs[n] for n in (_ref_name(x) for x in props.get("Layers", [])) if n in layer_dirs]
        template.functions[name] = FunctionSpec(
            logical_id=name,
            code_uri=root / props["CodeUri"],
            handler=props["Handler"],
            timeout_s=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            environment=env,
            layers=layers,
            reserved_concurrency=_number(props.get("ReservedConcurrentExecutions"), template.parameters),
        )
        for event_name, event in (props.get("Events") or {}).items():
            ep = event.get("Properties", {})
            if event["Type"] == "HttpApi":
                auth = (ep.get("Auth") or {}).get("Authorizer")
                template.routes.append(Route(ep["Method"].upper(), ep["Path"], name, auth == PUBLIC))
            elif event["Type"] == "EventBridgeRule":
                retry = ep.get("RetryPolicy") or {}
                template.rules.append(
                    Rule(
                        function=name,
                        name=f"{name}-{event_name}",
                        pattern=ep["Pattern"],
                        max_retries=int(retry.get("MaximumRetryAttempts", 185)),
                        max_event_age_s=int(retry.get("MaximumEventAgeInSeconds", 86400)),
                        dead_letter=_ref_name((ep.get("DeadLetterConfig") or {}).get("Arn")),
                    )
                )
            elif event["Type"] == "SQS":
                queue = _ref_name(ep["Queue"])
                assert queue is not None, f"{name}.{event_name}: the local cloud needs Queue as a Ref or GetAtt"
                template.queue_sources.append(
                    QueueSource(name, f"{name}-{event_name}", queue, int(ep.get("BatchSize", 10)))
                )
            elif event["Type"] in ("Schedule", "ScheduleV2"):
                expression = ep.get("Schedule") or ep.get("ScheduleExpression")
                template.schedules.append(Schedule(name, f"{name}-{event_name}", expression, ep.get("Input")))
    for api in template.resources_of_type("AWS::Serverless::HttpApi").values():
        auth = api.get("Properties", {}).get("Auth") or {}
        default = auth.get("DefaultAuthorizer")
        if default:
            spec = auth["Authorizers"][default]
            template.authorizer_function = _ref_name(spec["FunctionArn"])
            identity = spec.get("Identity") or {}
            template.authorizer_headers = [h.lower() for h in identity.get("Headers", [])]
            template.authorizer_ttl_s = int(identity.get("ReauthorizeEvery", 300))
    return template
