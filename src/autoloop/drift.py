"""Drift: read Model Monitor's verdicts and decide whether to retrain.

Pure: no AWS calls, no I/O, no clock. The handlers fetch the report and the retrain history,
pass them in, and act on the :class:`Decision`.

Two kinds of signal reach Autoloop:

* a **CloudWatch Alarm State Change** on one ``feature_baseline_drift_<feature>`` metric
  (:func:`parse_alarm_event`). It names one feature and one number, the Sum of the drift
  distance the built-in container published for the hour.
* a **SageMaker Processing Job State Change** for the monitoring execution itself
  (:func:`parse_monitoring_job_event`). It points at the execution's
  ``constraint_violations.json`` (:func:`parse_violations`), which lists every violated
  constraint of every feature, drift or not.

The report is the source of truth; the rest are hints. A processing job has no
``CompletedWithViolations`` status (that value exists only in the *monitoring execution*
status); the job carries it in ``ExitMessage``, which is the first 1 KB of a free-form file
the container writes, whose wording is not documented for the built-in analyzer, and which the
EventBridge detail is not documented to include. An alarm sees one metric and only if metrics
are published. So :func:`decide` works on the report's violations, and the event fields only
tell the handler where the report is and whether reading it is worth the S3 call.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from autoloop.errors import InvalidEvent, InvalidViolationsReport
from autoloop.events import (
    AlarmMetric,
    AlarmStateChange,
    ProcessingJobDetail,
    ProcessingJobStateChange,
    malformed,
    parse_event,
)
from autoloop.monitoring import MONITOR_OUTPUT
from autoloop.naming import image_repository

# -- constraint_violations.json ----------------------------------------------------------

BASELINE_DRIFT_CHECK = "baseline_drift_check"
#: Autoloop's own monitoring job: the model's metric over the window's labelled requests is worse
#: than its threshold, or than the champion's registered value by more than the margin, in the
#: metric's direction (an rmse that rises past them is a violation).
MODEL_QUALITY_CHECK = "model_quality_check"
#: Every check type the built-in data-quality container reports (Model Monitor docs), and ours.
CHECK_TYPES = frozenset(
    {
        MODEL_QUALITY_CHECK,
        "baseline_drift_check",
        "data_type_check",
        "completeness_check",
        "missing_column_check",
        "extra_column_check",
        "categorical_values_check",
    }
)
REPORT_FILE = "constraint_violations.json"

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
# "Baseline drift distance: 0.1981 exceeds threshold: 0.1". AWS's own drift sample parses
# ``distance: (.+) exceeds threshold: (.+)``; the prefix before "distance" is not documented,
# so only the part the sample relies on is matched, and only numbers are captured.
_DRIFT_RE = re.compile(rf"distance:\s*({_NUMBER})\s+exceeds\s+threshold:\s*({_NUMBER})", re.IGNORECASE)
# "Value: 0.4974974974974975 does not meet the constraint requirement! " (completeness,
# data type and categorical values checks: the observed fraction that failed the constraint).
_VALUE_RE = re.compile(rf"\bValue:\s*({_NUMBER})", re.IGNORECASE)


@dataclass(frozen=True)
class Violation:
    """One entry of constraint_violations.json.

    ``distance``/``threshold`` are set for a ``baseline_drift_check`` whose description has the
    documented "distance: <d> exceeds threshold: <t>" form. ``value`` is the number in
    "Value: <v> does not meet the constraint requirement!" (completeness, data type and
    categorical values checks). Numbers that cannot be read are None; the violation still
    stands, because the container already judged it violated.
    """

    feature: str
    check: str
    description: str
    distance: float | None
    threshold: float | None
    value: float | None = None

    @property
    def is_drift(self) -> bool:
        return self.check == BASELINE_DRIFT_CHECK

    @property
    def severity(self) -> float:
        """How far past its limit the violation is, 1.0 meaning "just violated".

        A drift violation with both numbers scores ``distance / threshold`` (0.2 against 0.1
        is 2.0), which is comparable across features with different thresholds. Every other
        check, and a drift violation whose numbers are unreadable, scores 1.0: the report
        gives no comparable limit for them (the "Value" of a completeness check is not
        measured against a threshold printed next to it), and the container has already
        decided that they fail. A drift threshold of 0 (any drift at all) scores +inf.
        """
        if self.is_drift and self.distance is not None and self.threshold is not None:
            if self.threshold > 0:
                return self.distance / self.threshold
            return math.inf if self.distance > 0 else 1.0
        return 1.0


def _finite(text: str) -> float | None:
    number = float(text)
    return number if math.isfinite(number) else None


def drift_numbers(description: str) -> tuple[float | None, float | None] | None:
    """(distance, threshold) from a ``baseline_drift_check`` violation's description, as Model
    Monitor words it ("... distance: 0.12 exceeds threshold: 0.1"); None if it does not say."""
    if drift := _DRIFT_RE.search(description):
        return _finite(drift.group(1)), _finite(drift.group(2))
    return None


def _field(entry: Mapping[str, Any], key: str, index: int, where: str) -> str:
    got = entry.get(key)
    if not isinstance(got, str) or not got:
        raise InvalidViolationsReport(f"{where}: violations[{index}].{key} is {got!r}, not a non-empty string.")
    return got


def _violation(entry: Any, index: int, where: str) -> Violation:
    if not isinstance(entry, dict):
        raise InvalidViolationsReport(f"{where}: violations[{index}] is {type(entry).__name__}, not an object.")
    feature = _field(entry, "feature_name", index, where)
    check = _field(entry, "constraint_check_type", index, where)
    description = entry.get("description", "")
    if not isinstance(description, str):
        raise InvalidViolationsReport(f"{where}: violations[{index}].description is {description!r}, not a string.")
    distance = threshold = value = None
    if check == BASELINE_DRIFT_CHECK:
        if numbers := drift_numbers(description):
            distance, threshold = numbers
    elif found := _VALUE_RE.search(description):
        value = _finite(found.group(1))
    return Violation(feature, check, description.strip(), distance, threshold, value)


def parse_violations(raw: bytes | str, where: str) -> list[Violation]:
    """Parse a Model Monitor ``constraint_violations.json`` into violations, in report order.

    ``where`` names the report (its S3 URI) in error messages. An empty object list means the
    execution found nothing. Anything that is not the documented shape raises
    :class:`InvalidViolationsReport` rather than being read as "no violations": a truncated
    upload or a container change must not look like a healthy model. Check types this module
    does not know are kept (the policy decides whether they count).
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")  # a BOM (from a bring-your-own container) is not an error
        except UnicodeDecodeError as exc:
            raise InvalidViolationsReport(f"{where} is not UTF-8 text: {exc}.") from exc
    raw = raw.removeprefix("\ufeff")
    if not raw.strip():
        raise InvalidViolationsReport(f"{where} is empty; the monitoring job wrote no report content.")
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidViolationsReport(
            f"{where} is not valid JSON (truncated?): {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from exc
    if not isinstance(doc, dict):
        raise InvalidViolationsReport(
            f"{where} is a JSON {type(doc).__name__}, expected an object with a 'violations' list."
        )
    if "violations" not in doc:
        raise InvalidViolationsReport(f"{where} has no 'violations' key (keys: {sorted(doc)}).")
    entries = doc["violations"]
    if not isinstance(entries, list):
        raise InvalidViolationsReport(f"{where}: 'violations' is a JSON {type(entries).__name__}, not a list.")
    return [_violation(entry, i, where) for i, entry in enumerate(entries)]


# -- the retrain policy --------------------------------------------------------------------


@dataclass(frozen=True)
class DriftPolicy:
    """When violations justify a retrain.

    A violation *counts* when its check is in ``checks`` and its :attr:`Violation.severity` is
    at least ``min_severity``. With the default 1.0 every reported violation of a counted check
    counts (the container only reports drift beyond the threshold). Raising ``min_severity``
    above 1.0 asks for drift well past the baseline threshold, e.g. 1.5 = 50 % past it; since
    non-drift checks score exactly 1.0, it also stops them from counting on their own, which
    is the intent: a missing column is a pipeline bug, not something retraining can absorb
    when the threshold was raised for drift.

    A retrain needs ``min_violations`` counted violations, no retrain running, and at least
    ``cooldown_seconds`` since the last retrain started, so an hourly schedule that keeps
    reporting the same drift (the new model is not deployed yet, or the data keeps moving)
    does not start a retrain every hour.
    """

    checks: frozenset[str] = CHECK_TYPES
    min_severity: float = 1.0
    min_violations: int = 1
    cooldown_seconds: int = 86400

    def __post_init__(self) -> None:
        if self.min_violations < 1:
            raise ValueError(f"min_violations must be at least 1, got {self.min_violations}.")
        if self.cooldown_seconds < 0:
            raise ValueError(f"cooldown_seconds must not be negative, got {self.cooldown_seconds}.")
        if math.isnan(self.min_severity):
            raise ValueError("min_severity is NaN.")

    def counts(self, violation: Violation) -> bool:
        return violation.check in self.checks and violation.severity >= self.min_severity


@dataclass(frozen=True)
class Decision:
    """The verdict. ``counted`` lists the violations that count, most severe first (also when
    the verdict is no, e.g. in the cooldown, so the notification can still show them).
    ``severity`` is the largest counted severity, 0.0 when none counts."""

    retrain: bool
    reason: str
    counted: list[Violation]
    severity: float


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h" if rest == 0 else f"{hours} h {rest} min"


def _pair(a: float, b: float) -> tuple[str, str]:
    """Two decimals, or more when two decimals would print a violation as "0.10 > 0.10"."""
    for digits in range(2, 7):
        left, right = f"{a:.{digits}f}", f"{b:.{digits}f}"
        if left != right:
            break
    return left, right


def _short(v: Violation) -> str:
    if v.check == MODEL_QUALITY_CHECK:
        return f"{v.feature} {v.value:.4f} (quality)" if v.value is not None else f"{v.feature} (quality)"
    if v.distance is not None and v.threshold is not None:
        distance, threshold = _pair(v.distance, v.threshold)
        return f"{v.feature} distance {distance} > {threshold}"
    if v.value is not None:
        return f"{v.feature} {v.check} (value {v.value:.2f})"
    return f"{v.feature} {v.check}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _ordered(violations: Iterable[Violation]) -> list[Violation]:
    return sorted(violations, key=lambda v: (-v.severity, v.feature, v.check))


@dataclass(frozen=True)
class FreshLabels:
    """What a retrain on fresh labels would have: the window's labelled captured rows, when the
    newest label file arrived, and when the champion was registered (None: no champion)."""

    labelled_rows: int
    latest_label_at: datetime | None
    champion_created_at: datetime | None
    min_rows: int
    prefix: str  # where labels go, for the notification

    def missing(self, features: str) -> str | None:
        """Why a retrain cannot heal anything now, or None if it can."""
        since = f" since {self.champion_created_at:%Y-%m-%d %H:%M} UTC" if self.champion_created_at else ""
        if self.latest_label_at is None or (
                self.champion_created_at is not None and self.latest_label_at <= self.champion_created_at):
            return f"{features}, no new labelled data{since}; upload labels to {self.prefix}"
        if self.labelled_rows < self.min_rows:
            return (f"{features}, only {self.labelled_rows} labelled captured rows (at least {self.min_rows} needed); "
                    f"upload labels to {self.prefix}")
        return None


def quality_violation(quality: Mapping[str, Any] | None) -> Violation | None:
    """The ``quality`` part of ``monitoring_report.json`` as a violation, if it is one."""
    if not quality or quality.get("violated") is not True:
        return None
    metric = str(quality.get("metric") or "metric")
    value = _number(quality.get("value"))
    way = quality.get("direction")
    worse = {"higher": "below", "lower": "above"}.get(str(way), "worse than")
    reason = quality.get("reason") or f"{metric} {value} is {worse} what the model must reach"
    return Violation(metric, MODEL_QUALITY_CHECK, str(reason), None, None, value)


def decide(
    violations: Sequence[Violation],
    policy: DriftPolicy,
    *,
    now: datetime,
    last_retrain_at: datetime | None,
    retrain_in_flight: bool,
    labels: FreshLabels | None = None,
) -> Decision:
    """Whether to start a retrain, and why, in that order of reasons:

    1. too few violations count under ``policy`` -> no;
    2. with ``labels`` (the autoloop backend retrains on fresh labels): nothing labelled since
       the champion, or too few labelled rows -> no, and the reason says where labels go;
    3. a retrain is already running -> no (its model answers the drift; a second run on the
       same data would only race it);
    4. the last retrain started less than ``cooldown_seconds`` before ``now`` -> no;
    5. otherwise -> yes.

    The caller owns the history: it passes when the last retrain started (None: never) and
    must record ``now`` as the new ``last_retrain_at`` when the answer is yes, which is what
    makes a flapping alarm start one retrain per cooldown. ``now`` and ``last_retrain_at``
    must both be timezone-aware or both naive.
    """
    counted = _ordered(v for v in violations if policy.counts(v))
    severity = counted[0].severity if counted else 0.0

    def no(reason: str) -> Decision:
        return Decision(retrain=False, reason=reason, counted=counted, severity=severity)

    if len(counted) < policy.min_violations:
        ignored = len(violations) - len(counted)
        why = f" ({_plural(ignored, 'violation')} ignored: check not counted or severity < {policy.min_severity:g})"
        if not counted:
            return no("no violation counts under the policy" + (why if ignored else ""))
        return no(
            f"{_plural(len(counted), 'violation')} counts, the policy needs {policy.min_violations}: "
            + ", ".join(_short(v) for v in counted)
        )
    if labels is not None:
        kind = "quality drop on" if any(v.check == MODEL_QUALITY_CHECK for v in counted) else "drift on"
        missing = labels.missing(f"{kind} {', '.join(dict.fromkeys(v.feature for v in counted))}")
        if missing:
            return no(missing)
    if retrain_in_flight:
        return no("a retrain is already running")
    if last_retrain_at is not None:
        if (now.tzinfo is None) != (last_retrain_at.tzinfo is None):
            raise ValueError("now and last_retrain_at must both be timezone-aware or both naive.")
        elapsed = (now - last_retrain_at).total_seconds()
        if elapsed < policy.cooldown_seconds:
            return no(
                f"cooldown: last retrain {_duration(elapsed)} ago (cooldown {_duration(policy.cooldown_seconds)})"
            )
    kind = "drift violation" if all(v.is_drift for v in counted) else "violation"
    reason = f"{_plural(len(counted), kind)}: " + ", ".join(_short(v) for v in counted)
    return Decision(retrain=True, reason=reason, counted=counted, severity=severity)


def _detail(v: Violation) -> str:
    if v.check == MODEL_QUALITY_CHECK:
        return f"model quality: {v.description}"
    if v.distance is not None and v.threshold is not None:
        return f"{v.check} distance {v.distance:.4g} > threshold {v.threshold:.4g} (severity {v.severity:.2f})"
    if v.value is not None:
        return f"{v.check} value {v.value:.4g}"
    return f"{v.check}: {v.description}" if v.description else v.check


def summary(violations: Sequence[Violation]) -> str:
    """One line per violated feature, most severe feature first, for notifications, e.g.
    ``monthly_charges: baseline_drift_check distance 0.2104 > threshold 0.1 (severity 2.10)``.
    A feature with several violations gets them on its line, separated by "; "."""
    if not violations:
        return "no violations"
    by_feature: dict[str, list[Violation]] = {}
    for v in _ordered(violations):
        by_feature.setdefault(v.feature, []).append(v)
    return "\n".join(f"{feature}: " + "; ".join(_detail(v) for v in vs) for feature, vs in by_feature.items())


# -- events ----------------------------------------------------------------------------------

DRIFT_METRIC_PREFIX = "feature_baseline_drift_"
MONITOR_IMAGE_REPOSITORY = "sagemaker-model-monitor-analyzer"
MONITOR_SCHEDULE_ENV = "sagemaker_monitoring_schedule_name"
MONITOR_ENDPOINT_ENV = "sagemaker_endpoint_name"
MONITOR_OUTPUT_ENV = "output_path"
# Where a monitoring execution's report is written inside the container, when its Environment
# does not say (output_path): the SDK's default for schedules, and the BYOC contract's sample.
MONITOR_RESULT_PATHS = (MONITOR_OUTPUT, "/opt/ml/processing/resultdata")
# Dimension names: the AWS-authored alarm sample and the BYOC page use Endpoint and
# MonitoringSchedule; one docs page says EndpointName and ScheduleName. Accept both.
_ENDPOINT_DIMENSIONS = ("Endpoint", "EndpointName")
_SCHEDULE_DIMENSIONS = ("MonitoringSchedule", "ScheduleName")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class AlarmDrift:
    """A CloudWatch alarm on one feature's ``feature_baseline_drift_<feature>`` metric changed state.

    ``value`` is the latest datapoint the alarm evaluated and ``threshold`` the alarm's
    threshold, both from ``state.reasonData`` (None when CloudWatch gave none, e.g. for
    INSUFFICIENT_DATA). ``endpoint`` is None for a batch-transform monitor, whose metrics
    have no endpoint dimension.
    """

    alarm_name: str
    state: str
    previous_state: str
    metric_name: str
    feature: str
    endpoint: str | None
    schedule: str
    value: float | None
    threshold: float | None

    @property
    def is_alarm(self) -> bool:
        """Only the transition into ALARM means drift; OK and INSUFFICIENT_DATA are ignored."""
        return self.state == "ALARM"


def alarm_drift(change: AlarmStateChange) -> AlarmDrift:
    """What a "CloudWatch Alarm State Change" says about drift.

    The alarm's metric must be a ``feature_baseline_drift_<feature>`` metric with a
    MonitoringSchedule dimension: that is how the alarm is mapped back to a schedule and a
    model. Metric-math alarms (entries with ``expression`` only) are rejected.
    """
    what = change.description()
    detail = change.detail
    metric: AlarmMetric | None = None
    metric_name = ""
    for entry in detail.configuration.metrics:
        candidate = entry.metric_stat.metric if entry and entry.metric_stat else None
        name = candidate.name if candidate else None
        if name and name.startswith(DRIFT_METRIC_PREFIX) and len(name) > len(DRIFT_METRIC_PREFIX):
            metric, metric_name = candidate, name
            break
    if metric is None:
        raise malformed(what, f"alarm {detail.alarm_name!r} watches no {DRIFT_METRIC_PREFIX}<feature> metric")
    dimensions = metric.dimensions
    if dimensions is None:
        raise malformed(what, f"metric {metric_name} has no dimensions")
    endpoint = next((d for k in _ENDPOINT_DIMENSIONS if isinstance(d := dimensions.get(k), str) and d), None)
    schedule = next((d for k in _SCHEDULE_DIMENSIONS if isinstance(d := dimensions.get(k), str) and d), None)
    if schedule is None:
        raise malformed(what, f"metric {metric_name} has no MonitoringSchedule dimension")
    value = threshold = None
    if detail.state.reason_data is not None:
        try:
            data = json.loads(detail.state.reason_data)
        except json.JSONDecodeError:
            data = None  # reasonData is informative only; the alarm state is what matters
        if isinstance(data, dict):
            points = data.get("recentDatapoints")
            if isinstance(points, list) and points:
                value = _number(points[-1])
            threshold = _number(data.get("threshold"))
    return AlarmDrift(
        alarm_name=detail.alarm_name,
        state=detail.state.value,
        previous_state=detail.previous_state.value,
        metric_name=metric_name,
        feature=metric_name[len(DRIFT_METRIC_PREFIX) :],
        endpoint=endpoint,
        schedule=schedule,
        value=value,
        threshold=threshold,
    )


def parse_alarm_event(event: Any) -> AlarmDrift:
    """Parse a "CloudWatch Alarm State Change" for a Model Monitor drift alarm (see :func:`alarm_drift`)."""
    return alarm_drift(parse_event(AlarmStateChange, event))


@dataclass(frozen=True)
class MonitoringRun:
    """A Model Monitor execution's processing job reached a state.

    ``report_uri`` is where the execution writes ``constraint_violations.json``; read it to
    decide (see the module docstring). ``has_violations`` is only a hint from ``ExitMessage``:
    True for "CompletedWithViolations...", False for "Completed: ... no violations", None when
    the message is absent or says neither. ``endpoint`` and ``schedule`` come from the job's
    Environment, the variables the monitor container receives; ``endpoint`` is None for a
    batch-transform monitor, ``schedule`` None when the event carries no Environment (then
    DescribeProcessingJob has it).
    """

    job_name: str
    status: str
    endpoint: str | None
    schedule: str | None
    report_uri: str
    exit_message: str | None
    has_violations: bool | None


def is_monitoring(detail: ProcessingJobDetail) -> bool:
    """True for a Model Monitor execution's processing job: it runs the
    ``sagemaker-model-monitor-analyzer`` image (any region's registry, any tag), or its
    Environment has ``sagemaker_monitoring_schedule_name`` (bring-your-own monitor containers
    get it too)."""
    image = detail.app_specification.image_uri
    if image and image_repository(image) == MONITOR_IMAGE_REPOSITORY:
        return True
    schedule = detail.environment.get(MONITOR_SCHEDULE_ENV)
    return isinstance(schedule, str) and bool(schedule)


def is_monitoring_job(event: Any) -> bool:
    """:func:`is_monitoring` of a processing job state change. Never raises; anything else is False."""
    try:
        change = parse_event(ProcessingJobStateChange, event)
    except InvalidEvent:
        return False
    return is_monitoring(change.detail)


def _has_violations(exit_message: str | None) -> bool | None:
    if exit_message is None:
        return None
    text = exit_message.strip()
    if text.startswith("CompletedWithViolations"):
        return True
    if text.startswith("Completed:") and "no violations" in text.lower():
        return False
    return None


def _result_uri(detail: ProcessingJobDetail, what: str) -> str:
    """The S3 prefix of the output the container writes its report to.

    That output's LocalPath is the ``output_path`` the container is given in its Environment;
    without it, the usual paths are tried; a job with a single S3 output uses that one."""
    outputs = detail.output_config.outputs if detail.output_config else None
    if not outputs:
        raise malformed(what, "detail.ProcessingOutputConfig.Outputs is missing or empty")
    s3_outputs = [o.s3_output for o in outputs if o.s3_output is not None]
    output_path = detail.environment.get(MONITOR_OUTPUT_ENV)
    paths = (output_path.rstrip("/"),) if isinstance(output_path, str) and output_path else MONITOR_RESULT_PATHS
    chosen = [o for o in s3_outputs if str(o.local_path or "").rstrip("/") in paths]
    if not chosen and len(s3_outputs) == 1:
        chosen = s3_outputs
    if len(chosen) != 1:
        raise malformed(what, f"expected one S3 output at {' or '.join(paths)}, found {len(chosen)}")
    uri = chosen[0].s3_uri
    if not isinstance(uri, str) or not uri.startswith("s3://") or len(uri.rstrip("/")) <= len("s3://"):
        raise malformed(what, f"result output S3Uri is {uri!r}, not an s3:// URI")
    return f"{uri.rstrip('/')}/{REPORT_FILE}"


def monitoring_run(change: ProcessingJobStateChange) -> MonitoringRun:
    """What a Model Monitor execution's processing job state change says.

    Raises InvalidEvent for a processing job that is not a monitoring execution (see
    :func:`is_monitoring`), or one without a result output. The status is the *processing
    job's* (Completed/Failed/Stopped...), never CompletedWithViolations.
    """
    what, detail = change.description(), change.detail
    if not is_monitoring(detail):
        raise malformed(what, f"processing job {detail.job_name} is not a Model Monitor execution")
    endpoint, schedule = detail.environment.get(MONITOR_ENDPOINT_ENV), detail.environment.get(MONITOR_SCHEDULE_ENV)
    return MonitoringRun(
        job_name=detail.job_name,
        status=detail.status,
        endpoint=endpoint if isinstance(endpoint, str) and endpoint else None,
        schedule=schedule if isinstance(schedule, str) and schedule else None,
        report_uri=_result_uri(detail, what),
        exit_message=detail.exit_message,
        has_violations=_has_violations(detail.exit_message),
    )


def parse_monitoring_job_event(event: Any) -> MonitoringRun:
    """Parse a "SageMaker Processing Job State Change" of a Model Monitor execution (see :func:`monitoring_run`)."""
    return monitoring_run(parse_event(ProcessingJobStateChange, event))
