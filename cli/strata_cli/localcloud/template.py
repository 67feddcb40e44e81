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


def _ref_name(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
    return None


def load_template(path: Path) -> Template:
    """Parse `path` (intrinsic tags included) into the pieces the local cloud runs."""
    from samtranslator.yaml_helper import yaml_parse

    raw = yaml_parse(path.read_text(encoding="utf-8"))
    root = path.parent
    globals_fn = raw.get("Globals", {}).get("Function", {})
    template = Template(root=root, parameters=raw.get("Parameters", {}), resources=raw["Resources"])
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
            reserved_concurrency=props.get("ReservedConcurrentExecutions"),
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
