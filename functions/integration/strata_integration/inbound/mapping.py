"""How an inbound webhook's payload becomes a goal: a small, safe template language for the goal's text, and a
filter of conditions a payload must meet. Nothing here runs code: a placeholder names a field and at most a
fallback text.

Template: text with placeholders `{{ path }}` or `{{ path ?? "fallback" }}`. A path is the payload's field names
(letters, digits, `_`, `-`) joined by dots, a number indexing a list (`commits.0.message`), or one of `$event` (the
sender's event name: GitHub's X-GitHub-Event, Slack's event type), `$delivery` (the sender's delivery id),
`$endpoint` (the endpoint's name), `$scheme` and `$header.<name>` (a request header). A field that is missing or
null fails the delivery with the path named, unless the placeholder gives a fallback. Strings appear as they are,
other values as compact JSON; each value is capped at MAX_VALUE_CHARS and stripped of control characters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from strata.events.planning import GoalConstraints

MAX_TEMPLATE_CHARS = 4000
MAX_PLACEHOLDERS = 16
MAX_VALUE_CHARS = 1000  # 4000 + 16 x 1000 = 20000: a rendered text always fits a goal (L05 takes 20000)
MAX_FALLBACK_CHARS = 500
MAX_PATH_CHARS = 200
MAX_CONDITIONS = 20
SPECIAL_NAMES = ("event", "delivery", "endpoint", "scheme")
HIDDEN_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
_EXPRESSION = re.compile(r'\s*(?P<path>[^\s"?]+)\s*(?:\?\?\s*"(?P<fallback>(?:[^"\\]|\\.)*)"\s*)?', re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # all but tab and newline
_MISSING: Any = object()


class TemplateError(ValueError):
    """A template, path or condition that cannot be used (the message says where and why)."""


class RenderError(ValueError):
    """A payload the template cannot be filled from (a field it names is missing or null)."""


def clean_text(text: str, limit: int) -> str:
    """`text` safe to store and show: no control characters but tab and newline, no lone surrogates, at most
    `limit` characters (the last one an ellipsis when cut)."""
    text = _CONTROL.sub("", text).encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Path:
    """Where a value comes from: the payload (keys) or the delivery itself (`source` names which part)."""

    source: Literal["payload", "event", "delivery", "endpoint", "scheme", "header"]
    keys: tuple[str, ...]
    text: str


def parse_path(text: str) -> Path:
    """The path `text` names; TemplateError when it is not one."""
    text = text.strip()
    if not text:
        raise TemplateError("a placeholder or condition names no field")
    if len(text) > MAX_PATH_CHARS:
        raise TemplateError(f"a field path is at most {MAX_PATH_CHARS} characters")
    if text.startswith("$"):
        name, dot, rest = text[1:].partition(".")
        if name == "header":
            header = rest.lower()
            if not dot or not _HEADER_NAME.fullmatch(header):
                raise TemplateError(f"{text!r}: name the header, like $header.x-github-event")
            if header in HIDDEN_HEADERS:
                raise TemplateError(f"{text!r}: the {header} header is not available to mappings")
            return Path("header", (header,), text)
        if name in SPECIAL_NAMES and not dot:
            return Path(name, (), text)  # type: ignore[arg-type]  # one of SPECIAL_NAMES, checked above
        raise TemplateError(
            f"{text!r}: the names starting with $ are $event, $delivery, $endpoint, $scheme and $header.<name>"
        )
    keys = tuple(text.split("."))
    if not all(_SEGMENT.fullmatch(key) for key in keys):
        raise TemplateError(
            f"{text!r}: a field path is names (letters, digits, _ and -) joined by dots, like pull_request.title"
        )
    return Path("payload", keys, text)


@dataclass(frozen=True)
class Placeholder:
    path: Path
    fallback: str | None


@dataclass(frozen=True)
class Template:
    """A compiled goal-text template: literal text and placeholders, in order."""

    parts: tuple[str | Placeholder, ...]

    @property
    def placeholders(self) -> list[Placeholder]:
        return [p for p in self.parts if isinstance(p, Placeholder)]


def _expression_end(text: str, start: int) -> int:
    """Where the placeholder opened at `start` closes (the index of its `}}`), skipping quoted fallback text."""
    i, quoted = start + 2, False
    while i < len(text):
        if quoted:
            if text[i] == "\\":
                i += 2
                continue
            quoted = text[i] != '"'
        elif text[i] == '"':
            quoted = True
        elif text.startswith("}}", i):
            return i
        i += 1
    raise TemplateError(f"the placeholder at character {start} is not closed with }}}}")


def _unescape(literal: str, start: int) -> str:
    out, i = [], 0
    while i < len(literal):
        if literal[i] == "\\":
            if i + 1 >= len(literal) or literal[i + 1] not in '"\\':
                raise TemplateError(f'the fallback at character {start} may escape only \\" and \\\\')
            out.append(literal[i + 1])
            i += 2
        else:
            out.append(literal[i])
            i += 1
    fallback = "".join(out)
    if len(fallback) > MAX_FALLBACK_CHARS:
        raise TemplateError(f"the fallback at character {start} is longer than {MAX_FALLBACK_CHARS} characters")
    return clean_text(fallback, MAX_FALLBACK_CHARS)


def compile_template(text: str) -> Template:
    """Parse a goal-text template; TemplateError names the first problem and where it is."""
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"a template is at most {MAX_TEMPLATE_CHARS} characters")
    if _CONTROL.search(text.replace("\r", "")):
        raise TemplateError("a template holds no control characters (but tabs and line breaks)")
    parts: list[str | Placeholder] = []
    position = 0
    while (start := text.find("{{", position)) >= 0:
        if start > position:
            parts.append(text[position:start])
        end = _expression_end(text, start)
        found = _EXPRESSION.fullmatch(text, start + 2, end)
        if found is None:
            raise TemplateError(
                f'the placeholder at character {start} is not {{{{ path }}}} or {{{{ path ?? "fallback" }}}}'
            )
        try:
            path = parse_path(found["path"])
        except TemplateError as exc:
            raise TemplateError(f"the placeholder at character {start}: {exc}") from None
        fallback = _unescape(found["fallback"], start) if found["fallback"] is not None else None
        parts.append(Placeholder(path, fallback))
        position = end + 2
    if position < len(text):
        parts.append(text[position:])
    template = Template(tuple(parts))
    if len(template.placeholders) > MAX_PLACEHOLDERS:
        raise TemplateError(f"a template has at most {MAX_PLACEHOLDERS} placeholders")
    return template


@dataclass(frozen=True)
class Delivery:
    """What templates and filters see of one delivery."""

    payload: Any
    event: str
    delivery: str
    endpoint: str
    scheme: str
    headers: Mapping[str, str]


def resolve(path: Path, delivery: Delivery) -> Any:
    """The value `path` names in `delivery` (the module's _MISSING sentinel when there is none)."""
    if path.source == "header":
        return delivery.headers.get(path.keys[0], _MISSING)
    if path.source != "payload":
        return getattr(delivery, path.source)
    value = delivery.payload
    for key in path.keys:
        if isinstance(value, dict):
            value = value.get(key, _MISSING)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return _MISSING
    return value


def format_value(value: Any) -> str:
    """A value as it appears in a goal's text: strings as they are, anything else as compact JSON; capped."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return clean_text(text, MAX_VALUE_CHARS)


def render(template: Template, delivery: Delivery) -> str:
    """The goal text for `delivery`; RenderError names the first field that is missing or null."""
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = resolve(part.path, delivery)
        if value is _MISSING or value is None:
            if part.fallback is None:
                state = "is null" if value is None else "is missing"
                raise RenderError(f"{part.path.text} {state} in the delivery (give the placeholder a ?? fallback)")
            out.append(part.fallback)
        else:
            out.append(format_value(value))
    text = "".join(out)
    if not text.strip():
        raise RenderError("the goal text rendered empty")
    return text


# Filters: conditions every one of which a delivery must meet to become a goal.

LimitedStr = Annotated[StrictStr, Field(max_length=500)]
Scalar = StrictBool | StrictInt | StrictFloat | LimitedStr | None
OPERATORS = ("equals", "in_", "not_in", "exists", "contains")


def _same(left: Any, right: Any) -> bool:
    """JSON equality: true is not 1, 1 is 1.0."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    return type(left) is type(right) and bool(left == right)


def _shown(value: Any) -> str:
    if value is _MISSING:
        return "missing"
    return clean_text(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str), 120)


class FilterCondition(BaseModel):
    """One test of a delivery: a field (a path, as in templates) and exactly one operator."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    field: str = Field(
        min_length=1,
        max_length=MAX_PATH_CHARS,
        description="A payload path (action, pull_request.draft) or $event, $delivery, $endpoint, $header.<name>",
    )
    equals: Scalar = Field(default=None, description="The field is this value")
    in_: list[Scalar] | None = Field(
        default=None, alias="in", min_length=1, max_length=100, description="The field is one of these values"
    )
    not_in: list[Scalar] | None = Field(
        default=None, min_length=1, max_length=100, description="The field is missing or none of these values"
    )
    exists: StrictBool | None = Field(default=None, description="The field is present and not null (or not)")
    contains: Scalar = Field(
        default=None, description="The field is a text containing this text, or a list holding this value"
    )

    @field_validator("field")
    @classmethod
    def _a_path(cls, value: str) -> str:
        parse_path(value)
        return value

    @model_validator(mode="after")
    def _one_operator(self) -> Self:
        given = [name for name in OPERATORS if name in self.model_fields_set]
        if len(given) != 1:
            raise ValueError("a condition has exactly one of equals, in, not_in, exists, contains")
        if "exists" in given and self.exists is None:
            raise ValueError("exists is true or false")
        return self

    @property
    def path(self) -> Path:
        return parse_path(self.field)

    def why_not(self, delivery: Delivery) -> str | None:
        """None when `delivery` meets the condition, else why it does not."""
        value = resolve(self.path, delivery)
        shown = f"{self.field} is {_shown(value)}"
        if "exists" in self.model_fields_set:
            present = value is not _MISSING and value is not None
            wanted = "present" if self.exists else "absent"
            return None if present == self.exists else f"{shown}, and the filter wants it {wanted}"
        if "equals" in self.model_fields_set:
            return None if _same(value, self.equals) else f"{shown}, not {_shown(self.equals)}"
        if "in_" in self.model_fields_set:
            options = self.in_ or []
            return None if any(_same(value, o) for o in options) else f"{shown}, not one of {_shown(options)}"
        if "not_in" in self.model_fields_set:
            options = self.not_in or []
            return f"{shown}, which the filter excludes" if any(_same(value, o) for o in options) else None
        needle = self.contains
        if isinstance(value, str) and isinstance(needle, str):
            held = needle in value
        elif isinstance(value, list):
            held = any(_same(item, needle) for item in value)
        else:
            held = False
        return None if held else f"{shown}, which does not contain {_shown(needle)}"


def why_ignored(conditions: Iterable[FilterCondition], delivery: Delivery) -> str | None:
    """None when `delivery` meets every condition, else the first one it fails and why."""
    for condition in conditions:
        reason = condition.why_not(delivery)
        if reason is not None:
            return f"filtered out: {reason}"
    return None


class GoalMapping(BaseModel):
    """What goal a delivery becomes: its text (a template over the payload), constraints and planning strategy."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1,
        max_length=MAX_TEMPLATE_CHARS,
        description='The goal\'s text: placeholders {{ path }} or {{ path ?? "fallback" }} take values from the '
        "payload (pull_request.title), or $event, $delivery, $endpoint, $scheme, $header.<name>",
        examples=["Review pull request {{ pull_request.title }} ({{ pull_request.html_url }})"],
    )
    constraints: GoalConstraints = Field(
        default_factory=GoalConstraints, description="Passed to every goal as they are (as in POST /v1/goals)"
    )
    strategy: Literal["template", "llm", "hybrid"] = "hybrid"

    @field_validator("text")
    @classmethod
    def _compiles(cls, value: str) -> str:
        compile_template(value)
        return value

    def goal_body(self, text: str, on_behalf_of: str) -> dict[str, Any]:
        """The body of L05's POST /v1/goals for a goal with this mapping and `text`."""
        return {
            "text": text,
            "constraints": self.constraints.model_dump(mode="json", exclude_defaults=True),
            "strategy": self.strategy,
            "on_behalf_of": on_behalf_of,
        }
