"""The policy engine: Cedar policies checked on upload, compiled into one policy set per tenant (the platform's
policies first), and requests evaluated against it. Deny wins (Cedar's rule: any matching `forbid` decides); an
allowed request whose deciding `permit`s carry `@approval` needs a human first. Every verdict names the statements
that decided it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import cedarpy

from strata.errors import InvalidInputError
from strata_supervision.schema import PLATFORM_POLICIES, cedar_schema

DEFAULT_TIMEOUT_S = 3600
MAX_STATEMENTS = 100  # per policy
_DURATION = re.compile(r"^(\d{1,7})([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
KNOWN_ANNOTATIONS = frozenset({"id", "reason", "approval", "approvers", "quorum", "timeout", "escalate"})


@dataclass(frozen=True)
class Level:
    """One level of an approval: who may decide, how many of them must approve, and how long they have."""

    approvers: tuple[str, ...]  # ("*",): anyone holding approvals:decide
    quorum: int
    timeout_s: int

    def view(self) -> dict[str, Any]:
        return {"approvers": list(self.approvers), "quorum": self.quorum, "timeout_s": self.timeout_s}


@dataclass(frozen=True)
class Statement:
    """One Cedar statement of the set, with the policy (and version) it came from."""

    source: str  # "platform" or "tenant"
    policy_id: str | None
    name: str
    version: int
    index: int  # its place within its policy
    effect: str
    annotations: dict[str, str]

    def view(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "policy_id": self.policy_id,
            "name": self.name,
            "version": self.version,
            "statement": self.index,
            "effect": self.effect,
            "id": self.annotations.get("id"),
        }

    def reason(self) -> str:
        if "reason" in self.annotations:
            return self.annotations["reason"]
        what = "forbidden" if self.effect == "forbid" else "permitted"
        return f"{what} by policy {self.name!r} v{self.version} (statement {self.index})"

    def approval_levels(self) -> list[Level]:
        """The approval this statement asks for: its first level, then its escalation levels."""
        timeout = _duration(self.annotations.get("timeout", ""))
        first = Level(
            _approvers(self.annotations.get("approvers", "*")), int(self.annotations.get("quorum", "1")), timeout
        )
        levels = [first]
        for part in filter(None, (p.strip() for p in self.annotations.get("escalate", "").split(";"))):
            levels.append(Level(_approvers(part), 1, timeout))
        return levels


@dataclass(frozen=True)
class Verdict:
    outcome: str  # allow | deny | approval_required
    statements: list[Statement]
    reasons: list[str]
    approval: Statement | None = None  # the statement whose approval is asked for
    suspended: bool = False  # denied by the kill switch


@dataclass
class CompiledSet:
    """A tenant's policy set at one revision."""

    revision: int
    policy_set: Any
    statements: list[Statement]
    suspended_tenant: str | None = None  # the reason, when the whole tenant is suspended
    suspended_agents: dict[str, str] = field(default_factory=dict)  # agent id -> reason
    reads_context: list[str] | None = None  # what any statement reads of the context (None: possibly all of it)


def parse_statements(cedar: str) -> list[dict[str, Any]]:
    """The statements of a policy text (effect and annotations each), or InvalidInputError saying what is wrong:
    unparsable, a template, an unknown or malformed annotation, or a statement that does not fit the schema."""
    try:
        parsed = json.loads(cedarpy.policies_to_json_str(cedar))
    except ValueError as exc:
        raise InvalidInputError(f"the policy does not parse: {exc}", errors=[str(exc)]) from exc
    if parsed.get("templates") or parsed.get("templateLinks"):
        raise InvalidInputError("templates (`?principal`, `?resource`) are not supported; write static policies")
    items = sorted(parsed.get("staticPolicies", {}).items(), key=lambda kv: int(kv[0].removeprefix("policy")))
    if not items:
        raise InvalidInputError("the policy has no statements")
    if len(items) > MAX_STATEMENTS:
        raise InvalidInputError(f"a policy holds at most {MAX_STATEMENTS} statements")
    statements = []
    errors: list[str] = []
    for n, (_, body) in enumerate(items):
        annotations = {k: ("" if v is None else str(v)) for k, v in (body.get("annotations") or {}).items()}
        errors += [f"statement {n}: {e}" for e in _annotation_errors(body["effect"], annotations)]
        reads = _context_reads(body.get("conditions", []))
        statements.append(
            {
                "effect": body["effect"],
                "annotations": annotations,
                "reads_context": None if reads is None else sorted(reads),
            }
        )
    result = cedarpy.validate_policies(cedar, cedar_schema())
    errors += [e.error for e in result.errors]
    if errors:
        raise InvalidInputError("the policy is not valid: " + "; ".join(errors)[:1500], errors=errors[:50])
    return statements


def _context_reads(node: Any) -> set[str] | None:
    """The context attributes a statement's conditions read (`context.x`, `context has x`); None when it uses the
    context otherwise (as a whole), so every attribute may matter."""
    if isinstance(node, list):
        found: set[str] | None = set()
        for item in node:
            reads = _context_reads(item)
            found = None if reads is None or found is None else found | reads
        return found
    if not isinstance(node, dict):
        return set()
    if node == {"Var": "context"}:
        return None
    for op in (".", "has"):
        inner = node.get(op)
        if isinstance(inner, dict) and inner.get("left") == {"Var": "context"}:
            return {str(inner["attr"])}
    return _context_reads(list(node.values()))


def _annotation_errors(effect: str, annotations: dict[str, str]) -> list[str]:
    errors = [
        f"unknown annotation @{k} (known: {', '.join(sorted(KNOWN_ANNOTATIONS))})"
        for k in annotations
        if k not in KNOWN_ANNOTATIONS
    ]
    approval_keys = {"approval", "approvers", "quorum", "timeout", "escalate"} & annotations.keys()
    if approval_keys and effect != "permit":
        errors.append("approval annotations belong on a permit (a forbid is never approved)")
    if approval_keys - {"approval"} and "approval" not in annotations:
        errors.append('@approvers, @quorum, @timeout and @escalate need @approval("why")')
    if "approval" in annotations and not annotations["approval"].strip():
        errors.append('@approval needs the reason a human is asked, e.g. @approval("writes to production")')
    try:
        approvers = _approvers(annotations.get("approvers", "*"))
        quorum = int(annotations.get("quorum", "1"))
        if not 1 <= quorum <= 20:
            errors.append("@quorum is between 1 and 20")
        elif approvers != ("*",) and quorum > len(approvers):
            errors.append(f"@quorum {quorum} is more than the {len(approvers)} approvers named")
        _duration(annotations.get("timeout", ""))
        for part in annotations.get("escalate", "").split(";"):
            if part.strip():
                _approvers(part)
    except ValueError as exc:
        errors.append(str(exc))
    return errors


def _approvers(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    if not names:
        raise ValueError("an approvers list names at least one principal (or `*`)")
    if "*" in names and len(names) > 1:
        raise ValueError("`*` (anyone holding approvals:decide) stands alone in an approvers list")
    if len(names) > 100:
        raise ValueError("an approvers list names at most 100 principals")
    return names


def _duration(text: str) -> int:
    """Seconds from `90`, `90s`, `15m`, `1h` or `2d` (1 s to 30 days); empty: the default."""
    if not text.strip():
        return DEFAULT_TIMEOUT_S
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"@timeout {text!r} is not a duration like 90s, 15m, 1h or 2d")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if not 1 <= seconds <= 30 * 86400:
        raise ValueError("@timeout is between 1 s and 30 days")
    return seconds


@cache
def platform_statements() -> list[dict[str, Any]]:
    return parse_statements(PLATFORM_POLICIES)


def compile_set(revision: int, policies: list[dict[str, Any]]) -> CompiledSet:
    """The platform's statements, then each enabled tenant policy's, as one Cedar policy set whose parser ids
    (`policy<n>`, in text order) index `statements`."""
    texts = [PLATFORM_POLICIES]
    statements = [
        Statement("platform", None, s["annotations"].get("id", "platform"), 1, n, s["effect"], s["annotations"])
        for n, s in enumerate(platform_statements())
    ]
    for policy in policies:
        texts.append(policy["cedar"])
        statements += [
            Statement(
                "tenant", str(policy["policy_id"]), policy["name"], policy["version"], n, s["effect"], s["annotations"]
            )
            for n, s in enumerate(policy["statements"])
        ]
    policy_set = cedarpy.PolicySet.from_str("\n".join(texts))
    reads: set[str] | None = set()
    for stored in [*platform_statements(), *(s for p in policies for s in p["statements"])]:
        more = stored.get("reads_context")
        reads = None if more is None or reads is None else reads | set(more)
    return CompiledSet(revision, policy_set, statements, reads_context=None if reads is None else sorted(reads))


def evaluate(compiled: CompiledSet, requests: list[dict[str, Any]], entities: Any) -> list[Verdict]:
    """Each request's verdict. An evaluation error in a statement counts as that statement not applying (Cedar's
    rule), and the error is reported among the reasons."""
    results = cedarpy.is_authorized_batch(requests, compiled.policy_set, entities, schema=cedar_schema())
    verdicts = []
    for result in results:
        if result.decision == cedarpy.Decision.NoDecision:  # the request or entities do not fit the schema
            raise ValueError("; ".join(result.diagnostics.errors) or "the request could not be evaluated")
        deciding = [compiled.statements[int(p.removeprefix("policy"))] for p in result.diagnostics.reasons]
        errors = [f"policy error: {e}" for e in result.diagnostics.errors]
        if not result.allowed:
            forbids = [s for s in deciding if s.effect == "forbid"]
            reasons = [s.reason() for s in forbids] or ["no policy permits it"]
            verdicts.append(Verdict("deny", forbids, reasons + errors))
            continue
        approvals = [s for s in deciding if "approval" in s.annotations]
        if approvals:
            verdicts.append(
                Verdict("approval_required", approvals, [s.annotations["approval"] for s in approvals], approvals[0])
            )
        else:
            verdicts.append(Verdict("allow", deciding, [s.reason() for s in deciding] + errors))
    return verdicts
