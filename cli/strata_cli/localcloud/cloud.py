"""The local cloud: backing services, the template's resources in the emulator, workers, the HTTP front."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from strata_cli.localcloud.eventbus import EventRouter, QueueTarget, RuleTarget
from strata_cli.localcloud.front import HttpFront, LambdaApi
from strata_cli.localcloud.infra import Services
from strata_cli.localcloud.lambdas import FunctionPool, InvocationError
from strata_cli.localcloud.scheduler import SchedulerEmulator, function_names, load_expressions
from strata_cli.localcloud.servers import QuietServer, bind_loopback, port_of, serve
from strata_cli.localcloud.template import Template, load_template

log = logging.getLogger("strata.localcloud")
REGION = "us-east-1"
ACCOUNT = "000000000000"


@dataclass
class LocalCloudConfig:
    root: Path
    state_dir: Path | None = None
    port: int = 8080
    lambda_port: int = 0
    max_concurrency: int = 4
    warm: bool = True
    retry_base_delay_s: float = 1.0
    schedule_period_s: float | None = None
    migrate_function: str = "DataFunction"
    bootstrap_function: str = "ApiGatewayFunction"
    extra_env: dict[str, str] = field(default_factory=dict)
    # the AWS endpoint (LocalStack, say); else AWS_ENDPOINT_URL, else an embedded moto server
    aws_endpoint_url: str | None = None
    # a CloudFormation stack on that endpoint holding the template's non-Lambda resources (localstack/init derives
    # and deploys one): its resources are used as they are, and only what it lacks is created
    aws_stack: str | None = field(default_factory=lambda: os.environ.get("STRATA_AWS_STACK") or None)

    @property
    def state(self) -> Path:
        return self.state_dir or self.root / ".strata"


class Resolver:
    """Resolves the intrinsic functions the template's environment and names use, against local resources."""

    def __init__(self, template: Template, parameters: dict[str, str], front_url: str) -> None:
        self.template = template
        self.parameters = parameters
        self.front_url = front_url
        self.physical: dict[str, str] = {}  # logical id -> what Ref returns locally
        self.arns: dict[str, str] = {}

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "strata-local",
            "AWS::Partition": "aws",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]
        if name == "HttpApi" or self.template.resources.get(name, {}).get("Type") == "AWS::Serverless::HttpApi":
            return "local"
        raise KeyError(f"the local cloud cannot resolve Ref {name}")

    def __call__(self, value: Any) -> str:
        if isinstance(value, str | int | float):
            return str(value)
        if "Ref" in value:
            return self.ref(value["Ref"])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            if "${HttpApi}.execute-api" in text:
                return self.front_url
            return re.sub(r"\$\{([^}]+)\}", lambda m: self.ref(m.group(1)), text)
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            logical = target[0] if isinstance(target, list) else target.split(".")[0]
            return self.arns[logical]
        raise ValueError(f"the local cloud cannot resolve {value!r}")


class LocalCloud:
    """Everything `strata dev` runs; `start()` returns when the API answers and the schema is migrated."""

    def __init__(self, config: LocalCloudConfig) -> None:
        self.config = config
        self.services = Services(config.state, aws_endpoint_url=config.aws_endpoint_url or "")
        self.template = load_template(config.root / "template.yaml")
        self.pools: dict[str, FunctionPool] = {}
        self.router: EventRouter | None = None
        self.scheduler: SchedulerEmulator | None = None
        self.servers: list[QuietServer] = []
        self._server_tasks: list[asyncio.Task[None]] = []
        self.front_url = ""
        self.lambda_url = ""
        self.resolver: Resolver | None = None
        self.targets: list[RuleTarget] = []
        self.queue_targets: list[QueueTarget] = []

    def clients(self, service: str) -> Any:
        return _client(service, self.services.aws_endpoint_url)

    async def start(self) -> None:
        await asyncio.to_thread(self.services.start)
        front_sock = bind_loopback(self.config.port)
        lambda_sock = bind_loopback(self.config.lambda_port)
        self.front_url = f"http://127.0.0.1:{port_of(front_sock)}"
        self.lambda_url = f"http://127.0.0.1:{port_of(lambda_sock)}"
        parameters = {k: str(v.get("Default", "")) for k, v in self.template.parameters.items()}
        parameters.update(DatabaseUrl=self.services.database_url, RedisUrl=self.services.redis_url)
        self.resolver = Resolver(self.template, parameters, self.front_url)
        await asyncio.to_thread(self._provision)
        log_dir = self.config.state / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        for name, spec in self.template.functions.items():
            self.pools[name] = FunctionPool(spec, self._function_env(name), log_dir, self.config.max_concurrency)
        front = HttpFront(
            self.template.routes,
            self.pools,
            self.template.authorizer_function,
            self.template.authorizer_headers,
            self.template.authorizer_ttl_s,
        )
        for app, sock in ((front, front_sock), (LambdaApi(self.pools, self.stats), lambda_sock)):
            server, serving = serve(app, sock, keep_alive_s=75, graceful_s=5)
            self.servers.append(server)
            self._server_tasks.append(serving)
        while not all(s.started for s in self.servers):  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        self.router = EventRouter(
            self.clients,
            self.pools,
            self.targets,
            self.template.schedules,
            self.queue_targets,
            self.config.retry_base_delay_s,
            self.config.schedule_period_s,
        )
        self.router.start()
        # EventBridge Scheduler's schedules (made by functions at run time) fire as Scheduler would fire them
        layers = [layer for spec in self.template.functions.values() for layer in spec.layers]
        self.scheduler = SchedulerEmulator(
            self.clients,
            self.pools,
            function_names(self.template, self.resolver),
            load_expressions(layers),
            self.config.retry_base_delay_s,
        )
        self.scheduler.start()
        if self.config.warm:
            await asyncio.gather(*(pool.warm() for pool in self.pools.values()))
        await self.invoke(self.config.migrate_function, {"command": "migrate"})

    def _provision(self) -> None:
        """Create what the template's non-Lambda resources are, in the emulator (idempotent)."""
        assert self.resolver is not None
        resolve = self.resolver
        deployed = self._stack_resources()
        for logical, res in self.template.resources.items():
            props, kind = res.get("Properties", {}), res["Type"]
            if logical in deployed:
                resolve.physical[logical] = deployed[logical]
                resolve.arns[logical] = self._arn_of(kind, deployed[logical])
            elif kind == "AWS::Events::EventBus":
                name = resolve(props["Name"])
                events = self.clients("events")
                with contextlib.suppress(events.exceptions.ResourceAlreadyExistsException):
                    events.create_event_bus(Name=name)
                resolve.physical[logical] = name
                resolve.arns[logical] = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}"
            elif kind == "AWS::SQS::Queue":
                redrive = props.get("RedrivePolicy")
                if redrive:  # SQS moves a message that keeps failing to the dead-letter queue, as in AWS
                    redrive = {
                        "deadLetterTargetArn": resolve(redrive["deadLetterTargetArn"]),
                        "maxReceiveCount": int(redrive["maxReceiveCount"]),
                    }
                self._queue(
                    logical, resolve(props["QueueName"]), int(props.get("VisibilityTimeout", 30)), redrive or None
                )
            elif kind == "AWS::Events::Rule":  # a rule of the template's own (targets: queues), as EventBridge has it
                events = self.clients("events")
                bus = resolve(props["EventBusName"])
                arn = events.put_rule(
                    Name=logical, EventBusName=bus, EventPattern=json.dumps(props["EventPattern"]), State="ENABLED"
                )["RuleArn"]
                targets = [{"Id": t["Id"], "Arn": resolve(t["Arn"])} for t in props.get("Targets", [])]
                events.put_targets(Rule=logical, EventBusName=bus, Targets=targets)
                resolve.physical[logical] = logical
                resolve.arns[logical] = arn
            elif kind == "AWS::S3::Bucket":
                name = resolve(props["BucketName"]) if "BucketName" in props else f"strata-local-{logical.lower()}"
                s3 = self.clients("s3")
                with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
                    s3.create_bucket(Bucket=name)
                resolve.physical[logical] = name
                resolve.arns[logical] = f"arn:aws:s3:::{name}"
            elif kind == "AWS::Scheduler::ScheduleGroup":
                name = resolve(props["Name"])
                scheduler = self.clients("scheduler")
                with contextlib.suppress(scheduler.exceptions.ConflictException):
                    scheduler.create_schedule_group(Name=name)
                resolve.physical[logical] = name
                resolve.arns[logical] = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/{name}"
            elif kind == "AWS::IAM::Role":  # named only (the emulator checks no role): what Scheduler targets carry
                resolve.physical[logical] = logical
                resolve.arns[logical] = f"arn:aws:iam::{ACCOUNT}:role/{logical}"
            elif kind == "AWS::SecretsManager::Secret":
                name = resolve(props["Name"])
                manager = self.clients("secretsmanager")
                try:
                    manager.describe_secret(SecretId=name)
                except manager.exceptions.ResourceNotFoundException:
                    manager.create_secret(Name=name, SecretString=secrets.token_urlsafe(48))
                resolve.physical[logical] = name
        for logical, res in self.template.resources_of_type("AWS::SSM::Parameter").items():
            props = res["Properties"]
            name = resolve(props["Name"])
            self.clients("ssm").put_parameter(
                Name=name, Value=resolve(props["Value"]), Type=props.get("Type", "String"), Overwrite=True
            )
            resolve.physical[logical] = name
        events = self.clients("events")
        for rule in self.template.rules:
            bus = resolve(
                self.template.resources[rule.function]["Properties"]["Events"][rule.name.split("-", 1)[1]][
                    "Properties"
                ]["EventBusName"]
            )
            if rule.logical_id in deployed:  # the stack's rule, with a queue target standing in for the function
                queue_url, rule_arn = self._stand_in_queue(deployed[rule.logical_id])
            else:
                # a rule's queue is the local stand-in for EventBridge's own retrying: long visibility, deleted when
                # done
                queue_url, queue_arn = self._queue(None, f"{resolve.ref('Stage')}-rule-{rule.name}"[:80], 900)
                rule_arn = events.put_rule(
                    Name=rule.name, EventBusName=bus, EventPattern=json.dumps(rule.pattern), State="ENABLED"
                )["RuleArn"]
                events.put_targets(Rule=rule.name, EventBusName=bus, Targets=[{"Id": "local-drain", "Arn": queue_arn}])
            dead_letter = resolve.physical.get(rule.dead_letter) if rule.dead_letter else None
            self.targets.append(RuleTarget(rule, queue_url, rule_arn, dead_letter))

        for source in self.template.queue_sources:
            self.queue_targets.append(QueueTarget(source, resolve.physical[source.queue], resolve.arns[source.queue]))

    def _stack_resources(self) -> dict[str, str]:
        """Logical id -> physical id (what `Ref` returns) of the configured stack's resources; {} without one."""
        if not self.config.aws_stack:
            return {}
        pages = self.clients("cloudformation").get_paginator("list_stack_resources")
        deployed = {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for page in pages.paginate(StackName=self.config.aws_stack)
            for r in page["StackResourceSummaries"]
            if r["ResourceStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
        }
        log.info("using %d resources of stack %s", len(deployed), self.config.aws_stack)
        return deployed

    def _arn_of(self, kind: str, physical: str) -> str:
        """What `Fn::GetAtt X.Arn` is for a deployed resource of type `kind` whose `Ref` is `physical`."""
        if kind == "AWS::Events::EventBus":
            return str(self.clients("events").describe_event_bus(Name=physical)["Arn"])
        if kind == "AWS::Events::Rule":  # Ref: "bus|name" on a custom bus
            bus, _, name = physical.rpartition("|")
            return str(self.clients("events").describe_rule(Name=name, EventBusName=bus or "default")["Arn"])
        if kind == "AWS::SQS::Queue":
            attributes = self.clients("sqs").get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])
            return str(attributes["Attributes"]["QueueArn"])
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{physical}"
        if kind == "AWS::Scheduler::ScheduleGroup":
            return str(self.clients("scheduler").get_schedule_group(Name=physical)["Arn"])
        if kind == "AWS::IAM::Role":
            return str(self.clients("iam").get_role(RoleName=physical)["Role"]["Arn"])
        return physical  # a secret's Ref is its ARN already

    def _stand_in_queue(self, rule_ref: str) -> tuple[str, str]:
        """(queue URL, rule ARN) of a deployed function rule whose one target is the queue the cloud drains."""
        bus, _, name = rule_ref.rpartition("|")
        events = self.clients("events")
        targets = events.list_targets_by_rule(Rule=name, EventBusName=bus or "default")["Targets"]
        queues = [t["Arn"] for t in targets if t["Arn"].split(":")[2] == "sqs"]
        if len(queues) != 1:
            raise RuntimeError(f"rule {rule_ref} of stack {self.config.aws_stack} needs one queue target: {targets}")
        url = self.clients("sqs").get_queue_url(QueueName=queues[0].rsplit(":", 1)[1])["QueueUrl"]
        return str(url), self._arn_of("AWS::Events::Rule", rule_ref)

    def _queue(
        self, logical: str | None, name: str, visibility_timeout_s: int, redrive: dict[str, Any] | None = None
    ) -> tuple[str, str]:
        assert self.resolver is not None
        sqs = self.clients("sqs")
        attributes = {"VisibilityTimeout": str(visibility_timeout_s)}
        if redrive:
            attributes["RedrivePolicy"] = json.dumps(redrive)
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        if logical:
            self.resolver.physical[logical] = url
            self.resolver.arns[logical] = arn
        return url, arn

    def _function_env(self, name: str) -> dict[str, str]:
        assert self.resolver is not None
        spec = self.template.functions[name]
        env = {key: self.resolver(value) for key, value in spec.environment.items()}
        env.update(
            {
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_ENDPOINT_URL": self.services.aws_endpoint_url,
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
                "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
                "LAMBDA_TASK_ROOT": str(spec.code_uri.resolve()),
                "LAMBDA_RUNTIME_DIR": str(Path(__file__).parent),
                "_HANDLER": spec.handler,
                "STRATA_LOCAL_LAYER_PATHS": ":".join(str(p.resolve()) for p in spec.layers),
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_DEV": "false",
            }
        )
        env.update(self.config.extra_env)
        return env

    def resource(self, logical_id: str) -> str:
        """What the template's `Ref` of `logical_id` is in this cloud (a bus name, a queue URL, a bucket name)."""
        assert self.resolver is not None, "the local cloud has not started"
        return self.resolver.physical[logical_id]

    async def invoke(self, function: str, payload: dict[str, Any]) -> Any:
        """Invoke a function directly (like `aws lambda invoke`), returning its decoded result."""
        raw = await self.pools[function].invoke(payload)
        return json.loads(raw) if raw else None

    async def bootstrap_key(self, tenant: str = "dev", scopes: list[str] | None = None) -> dict[str, Any]:
        args: dict[str, Any] = {"tenant_name": tenant, "key_name": "strata dev"}
        if scopes:
            args["scopes"] = scopes
        result: dict[str, Any] = await self.invoke(
            self.config.bootstrap_function, {"command": "bootstrap", "args": args}
        )
        return result

    def stats(self) -> dict[str, Any]:
        return {
            "api_url": self.front_url,
            "lambda_url": self.lambda_url,
            "services": {
                "database_url": self.services.database_url,
                "redis_url": self.services.redis_url,
                "aws_endpoint_url": self.services.aws_endpoint_url,
                "aws_stack": self.config.aws_stack,
                "embedded": self.services.embedded,
            },
            "functions": [pool.stats() for pool in self.pools.values()],
            "events": {
                "rules": [t.rule.name for t in self.targets],
                "delivered": self.router.delivered if self.router else 0,
                "dead_lettered": self.router.dead_lettered if self.router else 0,
            },
            "scheduler": {
                "schedules": len(self.scheduler.tracked) if self.scheduler else 0,
                "fired": self.scheduler.fired if self.scheduler else 0,
                "failed": self.scheduler.failed if self.scheduler else 0,
            },
        }

    async def stop(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.router is not None:
            await self.router.stop()
        for pool in self.pools.values():
            await pool.stop()
        for server in self.servers:
            server.should_exit = True
        await asyncio.gather(*self._server_tasks, return_exceptions=True)
        await asyncio.to_thread(self.services.stop)


@lru_cache(maxsize=16)
def _client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,  # type: ignore[call-overload]
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the emulator's dummy credentials
    )


__all__ = ["InvocationError", "LocalCloud", "LocalCloudConfig"]
