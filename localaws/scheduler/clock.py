"""The clock moto does not have: fires schedules when they come due, optionally sped up.

Gap in moto (5.2.5): nothing fires a schedule. EventBridge Scheduler schedules
(``moto.scheduler``), EventBridge rules with a ``ScheduleExpression`` (``moto.events``) and
SageMaker monitoring schedules (:mod:`localaws.sagemaker.monitor`) are records only;
:func:`localaws.scheduler.schedules.fire`, :func:`localaws.events.delivery.fire_schedule` and
:func:`localaws.sagemaker.monitor.models.run_monitoring_now` fire one on demand.

:class:`ScheduleClock` is a background thread (``autoloop local serve`` runs one) that, every
``tick`` seconds, lists the three kinds through the API and fires each ENABLED/Scheduled one
whose next occurrence has passed, as the services do:

- a schedule is first due at its next occurrence after the clock first sees it (nothing is
  back-filled; occurrences missed while the clock was busy fire once, not once each);
- Scheduler targets get ``<aws.scheduler.scheduled-time>`` = the occurrence, rules a
  "Scheduled Event" whose ``time`` is the occurrence, monitoring schedules an execution for
  the hour before now (their default window; the captured data carries real times).

Time scale: the clock's time runs ``1 / scale`` times as fast as real time, from the moment
the clock starts (``scale`` 0.01: an hour of schedule time every 36 s; a monthly schedule
every 7.2 h). At 1.0 schedules fire at their real times. Occurrences, and the scheduled times
the targets see, are on the clock's time.

Expressions: ``rate(N minute|minutes|hour|hours|day|days)``; ``cron(min hour dom month dow
year)`` with ``*``, ``?``, lists, ranges, ``/`` steps and month/day names, in UTC or the
schedule's ``ScheduleExpressionTimezone``; ``at(yyyy-mm-ddThh:mm:ss)`` (once). ``L``, ``W``
and ``#`` are not supported: such a schedule is reported (:attr:`ScheduleClock.errors`) and
skipped. Monitoring's one-time ``NOW`` schedules are not fired by the clock.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from localaws.clients import client

LOG = logging.getLogger(__name__)

_MONTHS = {name: i for i, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


class ExpressionError(ValueError):
    pass


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int] | None:
    """The values a cron field allows (None: any)."""
    if text in ("*", "?"):
        return None
    if any(c in text for c in "LW#"):
        raise ExpressionError(f"cron field {text!r}: L, W and # are not supported locally")
    values: set[int] = set()

    def number(token: str) -> int:
        token = token.upper()
        if names and token in names:
            return names[token]
        if not token.isdigit():
            raise ExpressionError(f"cron field {text!r}: {token!r} is not a number")
        return int(token)

    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = number(step_text) if step_text else 1
        if step <= 0:
            raise ExpressionError(f"cron field {text!r}: step must be positive")
        if span in ("*", "?"):
            start, end = low, high
        elif "-" in span:
            first, last = span.split("-", 1)
            start, end = number(first), number(last)
        else:
            start = number(span)
            end = high if step_text else start  # "5/15": from 5, every 15
        if not (low <= start <= high and low <= end <= high):
            raise ExpressionError(f"cron field {text!r}: values must be within {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int] | None
    hours: frozenset[int] | None
    days: frozenset[int] | None
    months: frozenset[int] | None
    weekdays: frozenset[int] | None  # 1 = Sunday, as AWS
    years: frozenset[int] | None
    zone: dt.tzinfo = dt.UTC

    @classmethod
    def parse(cls, body: str, zone: dt.tzinfo = dt.UTC) -> Cron:
        parts = body.split()
        if len(parts) != 6:
            raise ExpressionError(f"cron({body}): AWS cron has 6 fields (minutes hours day-of-month month "
                                  "day-of-week year)")
        return cls(
            _field(parts[0], 0, 59), _field(parts[1], 0, 23), _field(parts[2], 1, 31),
            _field(parts[3], 1, 12, _MONTHS), _field(parts[4], 1, 7, _DAYS), _field(parts[5], 1970, 2199), zone,
        )  # fmt: skip

    def _day_matches(self, day: dt.date) -> bool:
        weekday = (day.isoweekday() % 7) + 1  # Monday=1..Sunday=7 -> Sunday=1..Saturday=7
        return (
            (self.years is None or day.year in self.years)
            and (self.months is None or day.month in self.months)
            and (self.days is None or day.day in self.days)
            and (self.weekdays is None or weekday in self.weekdays)
        )

    def next_after(self, after: dt.datetime) -> dt.datetime | None:
        """The first occurrence strictly after ``after`` (aware), in UTC; None within 10 years."""
        local = after.astimezone(self.zone)
        hours = sorted(self.hours) if self.hours is not None else list(range(24))
        minutes = sorted(self.minutes) if self.minutes is not None else list(range(60))
        day = local.date()
        for _ in range(366 * 10):
            if self._day_matches(day):
                for hour in hours:
                    for minute in minutes:
                        candidate = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.zone)
                        if candidate > local:
                            return candidate.astimezone(dt.UTC)
            day += dt.timedelta(days=1)
        return None


@dataclass(frozen=True)
class Expression:
    text: str
    cron: Cron | None = None
    period: float | None = None  # rate(...), seconds
    once: dt.datetime | None = None  # at(...)

    def next_after(self, after: dt.datetime) -> dt.datetime | None:
        if self.cron is not None:
            return self.cron.next_after(after)
        if self.period is not None:
            return after + dt.timedelta(seconds=self.period)
        if self.once is not None:
            return self.once if self.once > after else None
        return None


def parse(expression: str, timezone: str | None = None) -> Expression:
    """Parse a Scheduler, EventBridge or SageMaker schedule expression."""
    text = str(expression or "").strip()
    try:
        zone: dt.tzinfo = ZoneInfo(timezone) if timezone and timezone.upper() != "UTC" else dt.UTC
    except Exception:
        raise ExpressionError(f"unknown ScheduleExpressionTimezone {timezone!r}") from None
    rate = _RATE.match(text)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2).rstrip("s")
        if value <= 0:
            raise ExpressionError(f"{text}: the rate must be positive")
        return Expression(text, period=float(value * _UNITS[unit]))
    if text.startswith("cron(") and text.endswith(")"):
        return Expression(text, cron=Cron.parse(text[5:-1], zone))
    if text.startswith("at(") and text.endswith(")"):
        try:
            when = dt.datetime.fromisoformat(text[3:-1]).replace(tzinfo=zone)
        except ValueError:
            raise ExpressionError(f"{text}: use at(yyyy-mm-ddThh:mm:ss)") from None
        return Expression(text, once=when.astimezone(dt.UTC))
    raise ExpressionError(f"{text!r} is not a schedule expression: use rate(...), cron(...) or at(...)")


# --------------------------------------------------------------------------- the clock


@dataclass
class Fired:
    kind: str  # "scheduler" | "rule" | "monitoring"
    name: str
    scheduled_time: dt.datetime
    result: str | None = None
    error: str | None = None


@dataclass
class _Entry:
    kind: str
    name: str
    key: str
    version: str  # changes when the schedule changes: re-parse
    expression: Expression
    due: dt.datetime | None
    fire: Callable[[dt.datetime], str | None] = field(repr=False)


class ScheduleClock:
    """Fires due schedules from a background thread; see the module docstring."""

    def __init__(
        self,
        scale: float = 1.0,
        *,
        tick: float = 1.0,
        on_fire: Callable[[Fired], None] | None = None,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if not scale > 0:
            raise ValueError(f"the schedule clock's time scale must be > 0, got {scale}")
        self.scale = float(scale)
        self.tick = max(0.01, float(tick))
        self.on_fire = on_fire
        self._real_now = now or (lambda: dt.datetime.now(dt.UTC))
        self._origin = self._real_now()
        self._entries: dict[str, _Entry] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fired: list[Fired] = []
        self.errors: dict[str, str] = {}

    def now(self) -> dt.datetime:
        """The clock's time: real time sped up by ``1 / scale`` since the clock started."""
        real = self._real_now()
        return self._origin + (real - self._origin) / self.scale

    def start(self) -> ScheduleClock:
        self._thread = threading.Thread(target=self._run, name="schedule-clock", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception as exc:  # the API may be down for a moment (reset, shutdown)
                LOG.debug("schedule clock: %s", exc)
            self._stop.wait(self.tick)

    def check(self) -> list[Fired]:
        """One tick: refresh the schedules and fire those due. Returns what it fired."""
        now = self.now()
        seen: set[str] = set()
        fired: list[Fired] = []
        for kind, name, key, version, expression, zone, fire in self._schedules():
            seen.add(key)
            entry = self._entries.get(key)
            if entry is None or entry.version != version:
                try:
                    parsed = parse(expression, zone)
                except ExpressionError as exc:
                    if self.errors.get(key) != str(exc):
                        LOG.warning("schedule %s not fired: %s", name, exc)
                    self.errors[key] = str(exc)
                    self._entries.pop(key, None)
                    continue
                self.errors.pop(key, None)
                entry = _Entry(kind, name, key, version, parsed, parsed.next_after(now), fire)
                self._entries[key] = entry
            if entry.due is None or entry.due > now:
                continue
            scheduled = entry.due
            # occurrences missed meanwhile fire once, not once each; a rate keeps its phase
            entry.due = entry.expression.next_after(scheduled if entry.expression.period else now)
            while entry.due is not None and entry.due <= now:
                entry.due = entry.expression.next_after(entry.due)
            record = Fired(kind, name, scheduled)
            try:
                record.result = entry.fire(scheduled)
            except Exception as exc:
                record.error = f"{type(exc).__name__}: {exc}"
                LOG.warning("schedule %s (%s) failed to fire: %s", name, kind, record.error)
            fired.append(record)
            self.fired.append(record)
            if self.on_fire is not None:
                try:
                    self.on_fire(record)
                except Exception as exc:
                    LOG.debug("on_fire failed: %s", exc)
        for key in set(self._entries) - seen:  # deleted schedules
            del self._entries[key]
        return fired

    # the three kinds of schedules, through the API

    def _schedules(self) -> Iterator[tuple[str, str, str, str, str, str | None, Callable[[dt.datetime], str | None]]]:
        yield from self._scheduler_schedules()
        yield from self._rules()
        yield from self._monitoring_schedules()

    def _scheduler_schedules(self) -> Iterator[Any]:
        from localaws.scheduler import schedules

        scheduler = client("scheduler")
        for page in scheduler.get_paginator("list_schedules").paginate():
            for item in page.get("Schedules", []):
                if item.get("State") != "ENABLED":
                    continue
                name, group = str(item["Name"]), str(item.get("GroupName") or "default")
                version = str(item.get("LastModificationDate") or item.get("CreationDate"))
                key = f"scheduler:{item['Arn']}"
                cached = self._entries.get(key)
                if cached is not None and cached.version == version:
                    expression, zone = cached.expression.text, None
                else:
                    described = scheduler.get_schedule(Name=name, GroupName=group)
                    expression, zone = described["ScheduleExpression"], described.get("ScheduleExpressionTimezone")

                def fire(when: dt.datetime, name: str = name, group: str = group) -> str | None:
                    done = schedules.fire(name, when, group=group)
                    return None if done is None else (done.execution_arn or done.target)

                yield "scheduler", name, key, version, expression, zone, fire

    def _rules(self) -> Iterator[Any]:
        from localaws.events import delivery

        events = client("events")
        for bus in events.list_event_buses().get("EventBuses", []):
            for page in events.get_paginator("list_rules").paginate(EventBusName=bus["Name"]):
                for rule in page.get("Rules", []):
                    expression = rule.get("ScheduleExpression")
                    if not expression or rule.get("State") != "ENABLED":
                        continue
                    arn = str(rule["Arn"])

                    def fire(when: dt.datetime, arn: str = arn) -> str | None:
                        return f"{delivery.fire_schedule(arn, when)} target(s)"

                    yield "rule", str(rule["Name"]), f"rule:{arn}", expression, expression, None, fire

    def _monitoring_schedules(self) -> Iterator[Any]:
        from localaws.sagemaker.monitor import models as monitor

        sagemaker = client("sagemaker")
        for page in sagemaker.get_paginator("list_monitoring_schedules").paginate():
            for item in page.get("MonitoringScheduleSummaries", []):
                if item.get("MonitoringScheduleStatus") != "Scheduled":
                    continue
                name = str(item["MonitoringScheduleName"])
                version = str(item.get("LastModifiedTime"))
                key = f"monitoring:{item['MonitoringScheduleArn']}"
                cached = self._entries.get(key)
                if cached is not None and cached.version == version:
                    expression = cached.expression.text
                else:
                    described = sagemaker.describe_monitoring_schedule(MonitoringScheduleName=name)
                    expression = described["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"]
                if str(expression).strip().upper() == "NOW":
                    continue

                def fire(when: dt.datetime, name: str = name) -> str | None:
                    return monitor.run_monitoring_now(name, wait=False)

                yield "monitoring", name, key, version, expression, None, fire
