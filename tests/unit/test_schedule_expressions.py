"""EventBridge Scheduler's expressions: cron (its six fields, `?`, SUN=1 day numbers, L, W, #, years), rate and at,
refused with reasons where Scheduler refuses them, and their times in a time zone across daylight saving changes."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta

import pytest

from strata.schedule_expressions import (
    AtExpression,
    CronExpression,
    RateExpression,
    ScheduleExpressionError,
    fire_times,
    format_scheduled_time,
    next_fire_times,
    parse,
    parse_scheduled_time,
    zone,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def times(expression: str, after: datetime, count: int = 4, tz: str = "UTC", **window: datetime) -> list[datetime]:
    return next_fire_times(parse(expression), zone(tz), after=after, count=count, **window)


def days(found: list[datetime]) -> list[int]:
    return [t.day for t in found]


# Parsing


def test_each_kind_is_parsed_into_its_canonical_text() -> None:
    cron = parse("  cron(0  8 ? * mon-fri *) ")
    rate = parse("rate(5 minutes)")
    at = parse("at(2030-01-31T08:00:00)")

    assert isinstance(cron, CronExpression)
    assert cron.text == "cron(0 8 ? * MON-FRI *)"
    assert (cron.minutes, cron.hours, cron.months) == ((0,), (8,), tuple(range(1, 13)))
    assert cron.day_of_month is None
    assert cron.day_of_week is not None
    assert cron.day_of_week.days == {2, 3, 4, 5, 6}  # MON-FRI, with SUN = 1
    assert isinstance(rate, RateExpression)
    assert (rate.text, rate.period) == ("rate(5 minutes)", timedelta(minutes=5))
    assert isinstance(at, AtExpression)
    assert (at.text, at.wall_time) == ("at(2030-01-31T08:00:00)", datetime(2030, 1, 31, 8))


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("cron(0 8 * * ?)", "six fields"),
        ("cron(0 8 * * ? * *)", "six fields"),
        ("cron(0 8 * * * *)", "exactly one of day-of-month and day-of-week is ?"),
        ("cron(0 8 ? * ? *)", "exactly one of day-of-month and day-of-week is ?"),
        ("cron(60 8 * * ? *)", "minutes: 60 is outside 0-59"),
        ("cron(0 24 * * ? *)", "hours: 24 is outside 0-23"),
        ("cron(0 8 32 * ? *)", "day-of-month: 32 is outside 1-31"),
        ("cron(0 8 0 * ? *)", "day-of-month: 0 is outside 1-31"),
        ("cron(0 8 * 13 ? *)", "month: 13 is outside 1-12"),
        ("cron(0 8 ? * 8 *)", "day-of-week: 8 is outside 1-7"),
        ("cron(0 8 ? * 0 *)", "day-of-week: 0 is outside 1-7"),
        ("cron(0 8 * * ? 1969)", "year: 1969 is outside 1970-2199"),
        ("cron(0 8 * * ? 2200)", "year: 2200 is outside 1970-2199"),
        ("cron(0 8 * FOO ? *)", "month: 'FOO' is not a number 1-12 or JAN-DEC"),
        ("cron(0 8 ? * MUN *)", "day-of-week: 'MUN' is not a number 1-7 or SUN-SAT"),
        ("cron(0 22-2 * * ? *)", "a range runs upwards"),
        ("cron(0/0 8 * * ? *)", "minutes step: 0 is outside"),
        ("cron(0 8 L,15 * ? *)", "stand alone"),
        ("cron(0 8 ? * 2#1,3 *)", "stand alone"),
        ("cron(0 8 ? * 2#6 *)", "k): 6 is outside 1-5"),
        ("cron(0 8 32W * ? *)", "32 is outside 1-31"),
        ("cron(0 8 ? * 3W *)", "W is for day-of-month"),
        ("cron(0 8 3#2 * ? *)", "# is for day-of-week"),
        ("cron(0 8 1,? * ? *)", "? stands alone"),
        ("rate(0 minutes)", "the shortest rate is 1 minute"),
        ("rate(30 seconds)", "the shortest rate is 1 minute"),
        ("rate(1 minutes)", "write rate(1 minute)"),
        ("rate(5 hour)", "write rate(5 hours)"),
        ("rate(1.5 hours)", "a positive whole number"),
        ("rate(-1 days)", "a positive whole number"),
        ("rate(5)", "rate() takes a value and a unit"),
        ("at(2026-02-30T08:00:00)", "day is out of range"),
        ("at(2026-01-31 08:00:00)", "at() a local time"),
        ("at(2026-01-31T25:00:00)", "hour must be in 0..23"),
        ("every day", "a schedule expression is cron("),
        ("CRON(0 8 * * ? *)", "a schedule expression is cron("),
    ],
)
def test_what_scheduler_refuses_is_refused_with_a_reason(expression: str, reason: str) -> None:
    with pytest.raises(ScheduleExpressionError, match=re.escape(reason)):
        parse(expression)


def test_time_zones_are_iana_names() -> None:
    assert zone("Europe/Paris").key == "Europe/Paris"
    for bad in ("Mars/Olympus", "../etc/passwd", "", "UTC+2"):
        with pytest.raises(ScheduleExpressionError, match="unknown time zone"):
            zone(bad)


# cron: fields


def test_every_minute_fires_at_each_minute_start_strictly_after() -> None:
    assert times("cron(* * * * ? *)", utc(2026, 5, 1, 10, 0, 0), 3) == [
        utc(2026, 5, 1, 10, 1),
        utc(2026, 5, 1, 10, 2),
        utc(2026, 5, 1, 10, 3),
    ]
    assert times("cron(* * * * ? *)", utc(2026, 5, 1, 10, 0, 59, 999), 1) == [utc(2026, 5, 1, 10, 1)]


def test_lists_ranges_and_steps() -> None:
    assert [t.minute for t in times("cron(0/15 * * * ? *)", utc(2026, 5, 1, 10, 0), 4)] == [15, 30, 45, 0]
    assert [t.minute for t in times("cron(*/20 * * * ? *)", utc(2026, 5, 1, 10, 1), 3)] == [20, 40, 0]
    assert [t.minute for t in times("cron(5-20/5,50 * * * ? *)", utc(2026, 5, 1, 10, 0), 5)] == [5, 10, 15, 20, 50]
    assert [t.hour for t in times("cron(0 9-17/4 * * ? *)", utc(2026, 5, 1, 0, 0), 3)] == [9, 13, 17]
    assert [t.month for t in times("cron(0 0 1 JAN,JUL ? *)", utc(2026, 5, 1), 3)] == [7, 1, 7]


def test_day_of_week_counts_sunday_as_1() -> None:
    sundays = times("cron(0 12 ? * 1 *)", utc(2026, 5, 1), 2)
    saturdays = times("cron(0 12 ? * SAT *)", utc(2026, 5, 1), 2)
    assert [t.strftime("%A") for t in sundays + saturdays] == ["Sunday"] * 2 + ["Saturday"] * 2
    assert days(times("cron(0 12 ? * MON-FRI *)", utc(2026, 5, 1, 13), 5)) == [4, 5, 6, 7, 8]  # 2026-05-01 is Friday


def test_last_day_and_weekday_wildcards_of_the_month() -> None:
    assert days(times("cron(0 0 L * ? *)", utc(2026, 1, 1), 3)) == [31, 28, 31]
    assert days(times("cron(0 0 L 2 ? *)", utc(2027, 3, 1), 2)) == [29, 28]  # 2028 is a leap year
    # the last weekday: February 2026 ends on a Saturday, May 2026 on a Sunday
    assert [(t.month, t.day) for t in times("cron(0 0 LW * ? 2026)", utc(2026, 1, 31, 1), 4)] == [
        (2, 27),
        (3, 31),
        (4, 30),
        (5, 29),
    ]


def test_the_nearest_weekday_stays_in_its_month() -> None:
    # 2026-08-01 is a Saturday: not Friday July 31, but Monday the 3rd
    assert times("cron(0 0 1W 8 ? 2026)", utc(2026, 1, 1), 1) == [utc(2026, 8, 3)]
    # 2026-02-01 is a Sunday: Monday the 2nd
    assert times("cron(0 0 1W 2 ? 2026)", utc(2026, 1, 1), 1) == [utc(2026, 2, 2)]
    # 2026-05-31 is a Sunday: not Monday June 1, but Friday the 29th
    assert times("cron(0 0 31W 5 ? 2026)", utc(2026, 1, 1), 1) == [utc(2026, 5, 29)]
    # 2026-05-16 is a Saturday: Friday the 15th; a weekday is itself
    assert days(times("cron(0 0 16W 5,6 ? 2026)", utc(2026, 1, 1), 2)) == [15, 16]
    # a day the month lacks is no time in that month
    assert [t.month for t in times("cron(0 0 31W 9-12 ? 2026)", utc(2026, 1, 1), 4)] == [10, 12]


def test_nth_and_last_weekdays_of_the_month() -> None:
    assert days(times("cron(0 12 ? * 3#2 *)", utc(2026, 1, 1), 3)) == [13, 10, 10]  # second Tuesdays
    assert days(times("cron(0 12 ? * 6L *)", utc(2026, 1, 1), 3)) == [30, 27, 27]  # last Fridays
    # fifth Mondays exist in some months only: March 2026 (the 30th), then June (the 29th)
    assert [(t.month, t.day) for t in times("cron(0 12 ? * MON#5 *)", utc(2026, 1, 1), 2)] == [(3, 30), (6, 29)]
    # L alone in day-of-week is the week's last day, Saturday
    assert {t.strftime("%A") for t in times("cron(0 12 ? * L *)", utc(2026, 1, 1), 3)} == {"Saturday"}


def test_years_limit_the_times_and_a_cron_that_cannot_fire_has_none() -> None:
    assert [t.year for t in times("cron(0 0 1 1 ? 2027,2029)", utc(2026, 6, 1), 3)] == [2027, 2029]
    assert [t.year for t in times("cron(0 0 29 2 ? *)", utc(2026, 1, 1), 2)] == [2028, 2032]
    assert times("cron(0 0 31 2 ? *)", utc(2026, 1, 1), 1) == []
    assert times("cron(0 0 1 1 ? 2020)", utc(2026, 1, 1), 1) == []
    assert times("cron(59 23 31 12 ? 2199)", utc(2199, 12, 31, 23, 59), 1) == []


# cron: time zones and daylight saving


def test_a_cron_follows_its_zone_across_daylight_saving() -> None:
    # 08:00 in Paris is 07:00 UTC in winter and 06:00 UTC from 2026-03-29 (clocks go forward)
    found = times("cron(0 8 ? * MON-FRI *)", utc(2026, 3, 26, 12), 3, tz="Europe/Paris")
    assert found == [utc(2026, 3, 27, 7), utc(2026, 3, 30, 6), utc(2026, 3, 31, 6)]


def test_a_time_the_clocks_skip_is_skipped() -> None:
    # New York: 2026-03-08 02:00 -> 03:00, so 02:30 does not exist that day
    found = times("cron(30 2 * * ? *)", utc(2026, 3, 7, 12), 2, tz="America/New_York")
    assert found == [utc(2026, 3, 9, 6, 30), utc(2026, 3, 10, 6, 30)]


def test_a_time_the_clocks_repeat_fires_once() -> None:
    # New York: 2026-11-01 02:00 EDT -> 01:00 EST, so 01:00-01:59 happens twice; each time fires at its first
    found = times("cron(30 1 * * ? *)", utc(2026, 10, 31, 12), 2, tz="America/New_York")
    assert found == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]
    quarter = times("cron(0/20 1 * * ? *)", utc(2026, 11, 1, 5, 30), 4, tz="America/New_York")
    assert quarter == [
        utc(2026, 11, 1, 5, 40),
        utc(2026, 11, 2, 6, 0),
        utc(2026, 11, 2, 6, 20),
        utc(2026, 11, 2, 6, 40),
    ]
    # asked from within the repeated hour's second pass, nothing of the first pass comes back
    assert times("cron(0/20 1 * * ? *)", utc(2026, 11, 1, 6, 10), 1, tz="America/New_York") == [utc(2026, 11, 2, 6, 0)]


def test_a_zone_with_a_half_hour_offset() -> None:
    assert times("cron(0 9 * * ? *)", utc(2026, 1, 1), 1, tz="Asia/Kolkata") == [utc(2026, 1, 1, 3, 30)]


# windows, rate and at


def test_start_and_end_bound_a_cron_inclusively() -> None:
    start, end = utc(2026, 5, 1, 10, 5), utc(2026, 5, 1, 10, 7)
    assert times("cron(* * * * ? *)", utc(2026, 5, 1, 10, 0), 5, start=start, end=end) == [
        utc(2026, 5, 1, 10, 5),
        utc(2026, 5, 1, 10, 6),
        utc(2026, 5, 1, 10, 7),
    ]


def test_a_rate_runs_from_its_start_in_absolute_time() -> None:
    start = utc(2026, 5, 1, 10, 0, 30)
    assert times("rate(1 minute)", utc(2026, 5, 1, 9), 2, start=start) == [start, start + timedelta(minutes=1)]
    assert times("rate(5 minutes)", utc(2026, 5, 1, 10, 7), 2, start=start) == [
        utc(2026, 5, 1, 10, 10, 30),
        utc(2026, 5, 1, 10, 15, 30),
    ]
    # strictly after: a time equal to `after` is not next
    assert times("rate(1 hour)", start, 1, start=start) == [start + timedelta(hours=1)]
    # a day is 24 hours, whatever the clocks of the zone do (Paris goes forward on 2026-03-29)
    daily = times("rate(1 day)", utc(2026, 3, 27), 3, tz="Europe/Paris", start=utc(2026, 3, 27, 6))
    assert [b - a for a, b in itertools.pairwise(daily)] == [timedelta(days=1)] * 2
    # without a start, from the anchor (the schedule's creation); an end stops it
    anchored = next_fire_times(
        parse("rate(2 hours)"), zone("UTC"), after=start, count=5, anchor=start, end=start + timedelta(hours=4)
    )
    assert anchored == [start + timedelta(hours=2), start + timedelta(hours=4)]
    with pytest.raises(ValueError, match="start or its anchor"):
        times("rate(1 hour)", start)


def test_at_fires_once_at_its_wall_time_in_its_zone() -> None:
    assert times("at(2026-07-01T09:00:00)", utc(2026, 1, 1), 3, tz="Europe/Paris") == [utc(2026, 7, 1, 7)]
    assert times("at(2026-07-01T09:00:00)", utc(2026, 7, 1, 7), 1, tz="Europe/Paris") == []
    # start and end do not apply to one-time schedules
    assert times("at(2026-07-01T09:00:00)", utc(2026, 1, 1), 1, end=utc(2026, 2, 1)) == [utc(2026, 7, 1, 9)]


def test_times_need_an_aware_moment() -> None:
    with pytest.raises(ValueError, match="aware"):
        next(fire_times(parse("cron(* * * * ? *)"), zone("UTC"), after=datetime(2026, 1, 1)))


def test_scheduled_times_are_written_as_scheduler_writes_them() -> None:
    instant = datetime(2026, 3, 22, 19, 59, 43, tzinfo=zone("Europe/Paris"))
    assert format_scheduled_time(instant) == "2026-03-22T18:59:43Z"
    assert parse_scheduled_time("2026-03-22T18:59:43Z") == utc(2026, 3, 22, 18, 59, 43)
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_scheduled_time("2026-03-22T18:59:43")
