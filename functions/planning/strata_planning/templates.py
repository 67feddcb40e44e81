"""Plan templates: parameterised plans matched to a goal's text. A template names phrases such as
"summarise {url} in {words} words"; a goal that matches one (case and spacing aside) fills the placeholders, the
values are typed and checked by the template's parameter schema, and `{{name}}` in the template's plan becomes
the value (a whole-string `{{name}}` keeps the value's JSON type). Where several templates match, the most
specific phrase (the most literal text) wins."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from strata import jsonschemas
from strata.errors import InvalidInputError
from strata.plans import PlanBody, problems

PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]{0,63})\}")
SLOT = re.compile(r"\{\{([a-z][a-z0-9_]{0,63})\}\}")
SAMPLES: dict[str, Any] = {"string": "sample", "integer": 1, "number": 1.5, "boolean": True}


@dataclass(frozen=True)
class Match:
    template: dict[str, Any]
    parameters: dict[str, Any]
    specificity: int


def _regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    at = 0
    for found in PLACEHOLDER.finditer(pattern):
        parts.append(_literal(pattern[at : found.start()]))
        parts.append(f"(?P<{found.group(1)}>.+?)")
        at = found.end()
    parts.append(_literal(pattern[at:]))
    return re.compile(r"\s*" + "".join(parts) + r"\s*[.!?]?\s*", re.IGNORECASE | re.DOTALL)


def _literal(text: str) -> str:
    return r"\s+".join(re.escape(word) for word in text.split(" ") if word) if text.strip() else r"\s*"


def _typed(value: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type", "string")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean":
            return {"true": True, "yes": True, "false": False, "no": False}[value.lower()]
    except (ValueError, KeyError):
        return value  # the schema check refuses it
    return value.strip().strip("\"'")


def check(template: dict[str, Any]) -> None:
    """422 unless every pattern's placeholders are declared parameters and the plan, filled with sample values of
    the parameters' types, is a valid plan."""
    schema = template["parameters"]
    jsonschemas.check_schema(schema, "parameters")
    if schema.get("type") != "object":
        raise InvalidInputError("parameters must be a JSON Schema of type object")
    declared: dict[str, Any] = schema.get("properties", {})
    for pattern in template["patterns"]:
        names = PLACEHOLDER.findall(pattern)
        if len(set(names)) != len(names):
            raise InvalidInputError(f"the pattern {pattern!r} names a placeholder twice")
        for name in names:
            if name not in declared:
                raise InvalidInputError(f"the pattern {pattern!r} uses {{{name}}}, which parameters do not declare")
    for name in SLOT.findall(repr(template["body"])):
        if name not in declared:
            raise InvalidInputError(f"the plan uses {{{{{name}}}}}, which parameters do not declare")
    samples = {name: SAMPLES.get(spec.get("type", "string"), "sample") for name, spec in declared.items()}
    try:
        body = PlanBody.model_validate(fill(template["body"], samples))
    except ValueError as exc:
        raise InvalidInputError(f"the template's plan is not a valid plan: {exc}") from exc
    found = problems(body)
    if found:
        raise InvalidInputError(f"the template's plan cannot run: {'; '.join(found)}", problems=found)


def fill(value: Any, parameters: dict[str, Any]) -> Any:
    """The template's plan with every `{{name}}` replaced."""
    if isinstance(value, str):
        whole = SLOT.fullmatch(value)
        if whole and whole.group(1) in parameters:
            return parameters[whole.group(1)]
        return SLOT.sub(lambda m: str(parameters.get(m.group(1), m.group(0))), value)
    if isinstance(value, dict):
        return {k: fill(v, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, parameters) for v in value]
    return value


def best_match(text: str, templates: list[dict[str, Any]]) -> Match | None:
    """The most specific template a goal's text matches, with its parameters (typed and checked)."""
    found: list[Match] = []
    for template in templates:
        properties = template["parameters"].get("properties", {})
        for pattern in template["patterns"]:
            matched = _regex(pattern).fullmatch(text)
            if matched is None:
                continue
            values = {k: _typed(v, properties.get(k, {})) for k, v in matched.groupdict().items()}
            if jsonschemas.first_error(template["parameters"], values) is not None:
                continue
            found.append(Match(template, values, len(PLACEHOLDER.sub("", pattern).strip())))
    return max(found, key=lambda m: (m.specificity, m.template["name"]), default=None)
