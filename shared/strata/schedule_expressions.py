"""EventBridge Scheduler's schedule expressions (cron, rate, at) parsed, checked and evaluated into the times a
schedule invokes its target, in its time zone, the way Scheduler computes them.

L11 validates scheduled goals and shows their next times with this module, and the local cloud's Scheduler emulation
fires by it: one implementation, so what the API promises is what the local cloud does. The local cloud loads this
file by path from the template's shared layer (the CLI does not ship the `strata` package), so it imports only the
standard library.

The dialect is EventBridge's (https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html):

- `cron(minutes hours day-of-month month day-of-week year)`: `, - * /` in every field; names JAN-DEC and SUN-SAT
  (day-of-week 1-7 is SUN-SAT); years 1970-2199; exactly one of day-of-month and day-of-week is `?`; `L` (last day
  of the month), `LW` (its last weekday) and `nW` (the weekday nearest day n, within the month) in day-of-month; `L`
  (Saturday, the week's last day), `nL` (the month's last weekday n) and `n#k` (its k-th weekday n) in day-of-week.
  `L`, `W` and `#` stand alone in their field. A cron schedule fires at the start of each matching minute.
- `rate(value unit)`: a positive whole number of minutes, hours or days (`1 minute`, `5 minutes`: the unit is
  singular for 1 and plural otherwise), at start + n * period, in absolute time (a day is 24 hours, whatever the
  clocks do).
- `at(yyyy-mm-ddThh:mm:ss)`: once, at that wall-clock time in the schedule's time zone; start and end do not apply.

Daylight saving time, as Scheduler documents it: a cron time that the clocks skip in spring is skipped, and a cron time
that they repeat in autumn fires once, at its first occurrence.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SCHEDULED_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # <aws.scheduler.scheduled-time>, e.g. 2022-03-22T18:59:43Z
MIN_YEAR, MAX_YEAR = 1970, 2199
MAX_RATE_VALUE = 1_000_000
MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1
    )
}
DAYS = {name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}
RATE_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


class ScheduleExpressionError(ValueError):
    """An expression, time zone or time window that EventBridge Scheduler would refuse; the message says why."""


@dataclass(frozen=True)
class DayOfMonth:
    """The day-of-month field: listed days, or one of L, LW, nW."""

    days: frozenset[int] = frozenset()
    last: bool = False
    last_weekday: bool = False
    nearest_weekday: int | None = None

    def days_in(self, year: int, month: int) -> list[int]:
        length = calendar.monthrange(year, month)[1]
        if self.last:
            return [length]
        if self.last_weekday:
            return [_nearest_weekday(year, month, length, length)]
        if self.nearest_weekday is not None:
            wanted = self.nearest_weekday
            return [_nearest_weekday(year, month, wanted, length)] if wanted <= length else []
        return sorted(d for d in self.days if d <= length)


@dataclass(frozen=True)
class DayOfWeek:
    """The day-of-week field (1-7 = SUN-SAT): listed days, or one of nL, n#k."""

    days: frozenset[int] = frozenset()
    last_of_month: int | None = None
    nth: tuple[int, int] | None = None  # (weekday, k): the k-th such weekday of the month

    def days_in(self, year: int, month: int) -> list[int]:
        length = calendar.monthrange(year, month)[1]
        first = _weekday(year, month, 1)
        if self.last_of_month is not None:
            last = _weekday(year, month, length)
            return [length - (last - self.last_of_month) % 7]
        if self.nth is not None:
            weekday, k = self.nth
            day = 1 + (weekday - first) % 7 + 7 * (k - 1)
            return [day] if day <= length else []
        return [d for d in range(1, length + 1) if (first + d - 2) % 7 + 1 in self.days]


@dataclass(frozen=True)
class CronExpression:
    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    day_of_month: DayOfMonth | None  # None: `?`
    months: tuple[int, ...]
    day_of_week: DayOfWeek | None  # None: `?`
    years: tuple[int, ...]

    def days_in(self, year: int, month: int) -> list[int]:
        if self.day_of_month is not None:
            return self.day_of_month.days_in(year, month)
        assert self.day_of_week is not None
        return self.day_of_week.days_in(year, month)

    def after(self, moment: datetime, zone: ZoneInfo) -> Iterator[datetime]:
        """The expression's times strictly after `moment`, ascending, in UTC: each matching wall-clock minute of
        `zone` that exists (none in a spring-forward gap), at its first occurrence (once in an autumn overlap)."""
        # Wall-clock minutes map to instants in order (an overlap's minutes take their first instant), so no match
        # earlier on the wall clock than `moment` can be later than it; the later matches are filtered by instant.
        floor = moment.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
        start_date, start_time = (floor.year, floor.month, floor.day), (floor.hour, floor.minute)
        for year in self.years:
            if year < floor.year:
                continue
            for month in self.months:
                if (year, month) < start_date[:2]:
                    continue
                for day in self.days_in(year, month):
                    if (year, month, day) < start_date:
                        continue
                    same_day = (year, month, day) == start_date
                    for hour in self.hours:
                        if same_day and hour < start_time[0]:
                            continue
                        for minute in self.minutes:
                            if same_day and (hour, minute) < start_time:
                                continue
                            instant = to_utc(datetime(year, month, day, hour, minute), zone)
                            if instant is not None and instant > moment:
                                yield instant


@dataclass(frozen=True)
class RateExpression:
    text: str
    value: int
    unit: str  # minute, hour or day
    period: timedelta

    def after(self, moment: datetime, anchor: datetime) -> Iterator[datetime]:
        """anchor + n * period strictly after `moment`, ascending."""
        skipped = 0 if moment < anchor else (moment - anchor) // self.period + 1
        instant = anchor + skipped * self.period
        while True:
            yield instant
            instant += self.period


@dataclass(frozen=True)
class AtExpression:
    text: str
    wall_time: datetime  # naive: the wall-clock time in the schedule's zone

    def instant(self, zone: ZoneInfo) -> datetime:
        """When it fires, in UTC (a wall-clock time a spring-forward gap skips is read with the offset before it)."""
        return self.wall_time.replace(tzinfo=zone).astimezone(UTC)


Expression = CronExpression | RateExpression | AtExpression

_CRON = re.compile(r"^cron\((.*)\)$", re.DOTALL)
_RATE = re.compile(r"^rate\(\s*(\S+)\s+(\S+)\s*\)$")
_AT = re.compile(r"^at\(\s*(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\s*\)$")
_HINT = (
    "a schedule expression is cron(minutes hours day-of-month month day-of-week year), rate(value unit) or "
    "at(yyyy-mm-ddThh:mm:ss)"
)


def parse(expression: str) -> Expression:
    """The expression, checked as EventBridge Scheduler checks it; ScheduleExpressionError says what is wrong.
    Its `text` is the canonical form (single spaces, upper-case names)."""
    text = expression.strip()
    if (match := _CRON.match(text)) is not None:
        return _parse_cron(match.group(1))
    if (match := _RATE.match(text)) is not None:
        return _parse_rate(match.group(1), match.group(2))
    if (match := _AT.match(text)) is not None:
        try:
            year, month, day, hour, minute, second = (int(g) for g in match.groups())
            wall_time = datetime(year, month, day, hour, minute, second)  # a wall-clock time: naive
        except ValueError as exc:
            raise ScheduleExpressionError(f"at(): {exc}") from exc
        return AtExpression(f"at({wall_time.strftime('%Y-%m-%dT%H:%M:%S')})", wall_time)
    if text.startswith(("rate(", "at(")):
        raise ScheduleExpressionError(
            "rate() takes a value and a unit, e.g. rate(5 minutes); at() a local time, e.g. at(2030-01-31T08:00:00)"
        )
    raise ScheduleExpressionError(_HINT)


def _parse_rate(value_text: str, unit: str) -> RateExpression:
    if not value_text.isdigit():
        raise ScheduleExpressionError(f"rate(): the value is a positive whole number, not {value_text!r}")
    value = int(value_text)
    singular = unit.removesuffix("s")
    if singular not in RATE_UNITS:
        raise ScheduleExpressionError(
            f"rate(): the unit is minute(s), hour(s) or day(s), not {unit!r} (the shortest rate is 1 minute)"
        )
    if value < 1:
        raise ScheduleExpressionError("rate(): the shortest rate is 1 minute")
    if value > MAX_RATE_VALUE:
        raise ScheduleExpressionError(f"rate(): the value is at most {MAX_RATE_VALUE}")
    if (value == 1) != (unit == singular):
        expected = singular if value == 1 else f"{singular}s"
        raise ScheduleExpressionError(f"rate(): write rate({value} {expected}) (singular for 1, plural otherwise)")
    return RateExpression(f"rate({value} {unit})", value, singular, RATE_UNITS[singular] * value)


def _parse_cron(body: str) -> CronExpression:
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleExpressionError(
            f"cron() has six fields (minutes hours day-of-month month day-of-week year), not {len(fields)}: "
            "e.g. cron(0 8 * * ? *) or cron(0 8 ? * MON-FRI *)"
        )
    minutes, hours, dom, month, dow, year = (f.upper() for f in fields)
    if (dom == "?") == (dow == "?"):
        raise ScheduleExpressionError(
            "cron(): exactly one of day-of-month and day-of-week is ?, the other a value or *: "
            "e.g. cron(0 8 * * ? *) or cron(0 8 ? * MON-FRI *)"
        )
    return CronExpression(
        text=f"cron({' '.join((minutes, hours, dom, month, dow, year))})",
        minutes=tuple(sorted(_values(minutes, "minutes", 0, 59))),
        hours=tuple(sorted(_values(hours, "hours", 0, 23))),
        day_of_month=None if dom == "?" else _day_of_month(dom),
        months=tuple(sorted(_values(month, "month", 1, 12, MONTHS))),
        day_of_week=None if dow == "?" else _day_of_week(dow),
        years=tuple(sorted(_values(year, "year", MIN_YEAR, MAX_YEAR))),
    )


def _standalone(text: str, name: str, specials: str) -> None:
    """L, W and # stand alone in their field: not in a list, range or step."""
    if any(c in text for c in "LW#") and any(c in text for c in ",-/*"):
        raise ScheduleExpressionError(f"cron() {name} {text!r}: {specials} stand alone in the field")


def _day_of_month(text: str) -> DayOfMonth:
    _standalone(text, "day-of-month", "L, LW and nW")
    if text == "L":
        return DayOfMonth(last=True)
    if text == "LW":
        return DayOfMonth(last_weekday=True)
    if text.endswith("W"):
        return DayOfMonth(nearest_weekday=_value(text[:-1], "day-of-month (nW)", 1, 31))
    if "L" in text or "W" in text or "#" in text:
        raise ScheduleExpressionError(
            f"cron() day-of-month {text!r}: L, LW and nW stand alone in the field (# is for day-of-week)"
        )
    return DayOfMonth(days=_values(text, "day-of-month", 1, 31))


def _day_of_week(text: str) -> DayOfWeek:
    _standalone(text, "day-of-week", "L, nL and n#k")
    if text == "L":
        return DayOfWeek(days=frozenset({7}))  # the week's last day: Saturday
    if "#" in text:
        weekday, _, k = text.partition("#")
        return DayOfWeek(
            nth=(_value(weekday, "day-of-week (n#k)", 1, 7, DAYS), _value(k, "day-of-week (n#k: k)", 1, 5))
        )
    if text.endswith("L"):
        return DayOfWeek(last_of_month=_value(text[:-1], "day-of-week (nL)", 1, 7, DAYS))
    if "L" in text or "W" in text:
        raise ScheduleExpressionError(
            f"cron() day-of-week {text!r}: L, nL and n#k stand alone in the field (W is for day-of-month)"
        )
    return DayOfWeek(days=_values(text, "day-of-week", 1, 7, DAYS))


def _values(text: str, name: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    """A field's values: a comma-separated list of *, n, a-b, each optionally /step (a/step runs to the maximum)."""
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            step = _value(step_text, f"{name} step", 1, high - low + 1 if high > low else 1)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = _value(a, name, low, high, names), _value(b, name, low, high, names)
            if first > last:
                raise ScheduleExpressionError(
                    f"cron() {name} {item!r}: a range runs upwards (write {b}-{high},{low}-{a} to wrap around)"
                )
        elif base in ("?", ""):
            raise ScheduleExpressionError(f"cron() {name} {text!r}: ? stands alone, and only in day fields")
        else:
            first = _value(base, name, low, high, names)
            last = high if slash else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _value(text: str, name: str, low: int, high: int, names: dict[str, int] | None = None) -> int:
    if names is not None and text in names:
        return names[text]
    if not text.isdigit():
        allowed = f" or {next(iter(names))}-{list(names)[-1]}" if names else ""
        raise ScheduleExpressionError(f"cron() {name}: {text!r} is not a number {low}-{high}{allowed}")
    value = int(text)
    if not low <= value <= high:
        raise ScheduleExpressionError(f"cron() {name}: {value} is outside {low}-{high}")
    return value


def _weekday(year: int, month: int, day: int) -> int:
    """1-7 = SUN-SAT, as cron counts."""
    return (calendar.weekday(year, month, day) + 1) % 7 + 1  # calendar's Monday is 0, cron's Sunday 1


def _nearest_weekday(year: int, month: int, day: int, length: int) -> int:
    """The weekday (MON-FRI) nearest `day`, never leaving the month (Quartz's and EventBridge's W)."""
    weekday = _weekday(year, month, day)
    if weekday == 7:  # Saturday: the Friday before, unless that is last month
        return day - 1 if day > 1 else day + 2
    if weekday == 1:  # Sunday: the Monday after, unless that is next month
        return day + 1 if day < length else day - 2
    return day


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (ScheduleExpressionError when there is none)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleExpressionError(
            f"unknown time zone {name!r}: use an IANA name such as UTC, Europe/Paris or America/New_York"
        ) from exc


def to_utc(wall_time: datetime, tz: ZoneInfo) -> datetime | None:
    """The instant of a wall-clock time in `tz` (the first, where clocks repeat it); None where clocks skip it."""
    instant = wall_time.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != wall_time:
        return None
    return instant


def fire_times(
    expression: Expression,
    tz: ZoneInfo,
    *,
    after: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    anchor: datetime | None = None,
) -> Iterator[datetime]:
    """When a schedule invokes its target strictly after `after`, ascending, as aware UTC datetimes: never before
    `start` nor after `end` (both inclusive; ignored by at()). A rate's times are `start` + n * period, or `anchor` +
    n * period without a start (Scheduler's: from when the schedule was created)."""
    if after.tzinfo is None:
        raise ValueError("after must be an aware datetime")
    if isinstance(expression, AtExpression):
        instant = expression.instant(tz)
        if instant > after:
            yield instant
        return
    if isinstance(expression, RateExpression):
        origin = start or anchor
        if origin is None:
            raise ValueError("a rate's times need its start or its anchor")
        times = expression.after(after, origin)
    else:
        floor = after if start is None or start <= after else start - timedelta(microseconds=1)
        times = expression.after(floor, tz)
    for instant in times:
        if end is not None and instant > end:
            return
        yield instant


def next_fire_times(
    expression: Expression,
    tz: ZoneInfo,
    *,
    after: datetime,
    count: int,
    start: datetime | None = None,
    end: datetime | None = None,
    anchor: datetime | None = None,
) -> list[datetime]:
    """The first `count` of `fire_times`."""
    found: list[datetime] = []
    if count <= 0:
        return found
    for instant in fire_times(expression, tz, after=after, start=start, end=end, anchor=anchor):
        found.append(instant)
        if len(found) == count:
            break
    return found


def format_scheduled_time(instant: datetime) -> str:
    """An instant as Scheduler writes `<aws.scheduler.scheduled-time>` (UTC, whole seconds)."""
    return instant.astimezone(UTC).strftime(SCHEDULED_TIME_FORMAT)


def parse_scheduled_time(text: str) -> datetime:
    """`<aws.scheduler.scheduled-time>` back to an aware datetime (ValueError when it is not one)."""
    instant = datetime.fromisoformat(text)
    if instant.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return instant.astimezone(UTC)
