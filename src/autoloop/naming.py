"""Names for runs, executions and jobs: deterministic, valid, traceable."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime

from autoloop.errors import InvalidEvent

INCOMING_PREFIX = "incoming/"
#: Where a drift retrain's dataset is written in the data bucket (``retrain/<model>/<report id>.csv``).
#: The S3 rule that starts runs matches ``incoming/`` only, so nothing here starts a run by itself.
RETRAIN_PREFIX = "retrain/"
#: Ground-truth labels of captured inferences (Model Monitor's merge format), in the data bucket:
#: ``groundtruth/<model>/yyyy/mm/dd/hh/<file>.jsonl``.
GROUND_TRUTH_PREFIX = "groundtruth/"
#: A monitoring run's labelled rows (captured inputs merged with their ground truth), relative to
#: the run's output: a CSV whose header is the model config's ``columns``, label first.
LABELLED_KEY = "labelled/labelled.csv"
MAX_JOB_NAME = 63  # SageMaker job names
MAX_SAGEMAKER_NAME = 63  # every SageMaker resource name: jobs, models, configs, endpoints, schedules, groups
MAX_EXECUTION_NAME = 80  # Step Functions execution names
MAX_MODEL_NAME = 24  # _MODEL_RE
#: The endpoint ``<stack>-<model>`` is the longest name that embeds the stack name whole; the
#: template refuses longer stack names (its ``StackName`` parameter and rule).
MAX_STACK_NAME = MAX_SAGEMAKER_NAME - 1 - MAX_MODEL_NAME
MAX_S3_URI = 1024  # a SageMaker job's S3Uri (an input object's s3://bucket/key)
MAX_TAG_VALUE = 256  # a SageMaker tag value or CustomerMetadataProperties value
JOB_STEPS = ("preprocess", "train", "evaluate", "baseline", "calibrate", "monitor")
BATCH_STEPS = ("prepare", "transform", "monitor")
#: The tag (on jobs, models, endpoints) and model package metadata key that names a run.
RUN_ID_KEY = "autoloop:run-id"
#: The tag that says which stack a resource the pipelines created belongs to (the teardown reads it).
STACK_TAG = "autoloop:stack"

_MODEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?$")
_JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_MONTH_RE = re.compile(r"^(?P<year>\d{4})-(?P<month>0[1-9]|1[0-2])$")
_REPORT_ID_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$")
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_RUN_ID_RE = re.compile(r"^(?P<model>[a-z0-9-]+)-(?P<digest>[0-9a-f]{10})(?:-r(?P<attempt>\d+))?$")


def fit_name(base: str, suffix: str, limit: int = MAX_SAGEMAKER_NAME) -> str:
    """``<base><suffix>`` when it fits ``limit``, else ``<base, cut>-<6 hex of base><suffix>``.

    Deterministic, and two bases that share the part kept still get different names. ``base``
    and ``suffix`` must be valid in a SageMaker name; no hyphen is left before the digest's.
    """
    name = f"{base}{suffix}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(base.encode()).hexdigest()[:6]
    keep = limit - len(suffix) - len(digest) - 1
    if keep < 1:
        raise ValueError(f"suffix {suffix!r} leaves no room for a name of {limit} characters")
    return f"{base[:keep].rstrip('-')}-{digest}{suffix}"


_TAG_PUNCTUATION = frozenset("_.:/=+-@")


def _utf16_units(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def _cut(parts: list[str], limit: int, ellipsis: str = "") -> str:
    """Join ``parts`` (none split) up to ``limit`` UTF-16 units; when cut, end with ``ellipsis``."""
    sizes = [sum(_utf16_units(c) for c in part) for part in parts]
    if sum(sizes) <= limit:
        return "".join(parts)
    room, kept = limit - len(ellipsis), []
    for part, size in zip(parts, sizes, strict=True):
        if size > room:
            break
        kept.append(part)
        room -= size
    return "".join(kept) + ellipsis


def tag_value(text: str, limit: int = MAX_TAG_VALUE) -> str:
    r"""``text`` as a SageMaker tag or metadata value, which must match
    ``[\p{L}\p{Z}\p{N}_.:/=+\-@]*``: any other character becomes ``_`` (an S3 key such as
    ``data (1).csv``, ``jan,feb.csv`` or ``x&y.csv`` would be refused), and the value is cut
    to ``limit`` UTF-16 units, as AWS counts."""
    safe = [c if unicodedata.category(c)[0] in "LNZ" or c in _TAG_PUNCTUATION else "_" for c in text]
    return _cut(safe, limit)


def image_repository(image_uri: str) -> str:
    """``<registry>/<repository>[:tag|@digest]`` -> repository (what an ECR pull permission names)."""
    path = image_uri.split("/", 1)[1] if "/" in image_uri else image_uri
    return path.split("@", 1)[0].split(":", 1)[0]


def description_text(text: str, limit: int = 1024) -> str:
    r"""``text`` as a SageMaker description, which must match ``[\p{L}\p{M}\p{Z}\p{S}\p{N}\p{P}]*``:
    a control or other unprintable character is written as ``\uXXXX``, and the text is cut to
    ``limit`` UTF-16 units, ending in "…" when cut."""
    parts = [c if unicodedata.category(c)[0] in "LMZSNP" else f"\\u{ord(c):04x}" for c in text]
    return _cut(parts, limit, "\u2026")


def _model_under(prefix: str, key: str) -> str | None:
    if not key.startswith(prefix):
        return None
    parts = key[len(prefix) :].split("/")
    if len(parts) < 2 or not parts[-1]:
        return None
    model = parts[0]
    return model if _MODEL_RE.match(model) else None


def model_from_key(key: str) -> str | None:
    """``incoming/<model>/<file>`` -> ``<model>``; None if the key is not in that form."""
    return _model_under(INCOMING_PREFIX, key)


def training_source_model(key: str, *, drift: bool) -> str | None:
    """The model whose training data ``key`` is, or None if a run may not train on it.

    ``incoming/<model>/<file>`` always. ``retrain/<model>/<file>`` only for a run that the
    drift handler started itself (``drift``): that folder holds the datasets it builds, and an
    object that someone else puts there is not a reason to train.
    """
    return model_from_key(key) or (_model_under(RETRAIN_PREFIX, key) if drift else None)


def retrain_key(model: str, report_id: str) -> str:
    """``retrain/<model>/<report_id>.csv``: one retrain dataset per drift report, so a duplicate
    event for the same report names the same object (which is written once)."""
    if not _MODEL_RE.match(model):
        raise ValueError(f"not a model name: {model!r}")
    if not _REPORT_ID_RE.match(report_id):
        raise ValueError(
            f"report id {report_id!r} must be 1-128 letters, digits, '.', '_' or '-', starting and ending "
            "with a letter or digit (report_digest(uri) makes one from a report's URI)"
        )
    return f"{RETRAIN_PREFIX}{model}/{report_id}.csv"


def report_digest(report_uri: str) -> str:
    """A report id for :func:`retrain_key`: 16 hex digits of the report's URI."""
    return hashlib.sha256(report_uri.encode()).hexdigest()[:16]


def ground_truth_key(model: str, when: datetime, name: str) -> str:
    """``groundtruth/<model>/yyyy/mm/dd/hh/<name>``, the hour of ``when`` in UTC (the layout
    Model Monitor reads ground truth from, the same as captured data's)."""
    if not _MODEL_RE.match(model):
        raise ValueError(f"not a model name: {model!r}")
    if when.tzinfo is None:
        raise ValueError(f"{when!r} has no time zone; give an aware datetime (UTC) so the hour folder is exact")
    if not _FILE_NAME_RE.match(name):
        raise ValueError(f"file name {name!r} must be letters, digits, '.', '_' or '-' (at most 200)")
    return f"{GROUND_TRUTH_PREFIX}{model}/{when.astimezone(UTC):%Y/%m/%d/%H}/{name}"


def is_valid_model_name(model: str) -> bool:
    return bool(_MODEL_RE.match(model))


def run_id(model: str, bucket: str, key: str, version: str, attempt: int = 1) -> str:
    """The run's identity: the same object (bucket, key, version or etag) gives the same id.

    ``attempt`` > 1 is used when an earlier run of the same object ended in failure, so that
    a retry of the same input can start a fresh execution.
    """
    digest = hashlib.sha256(f"{bucket}\n{key}\n{version}".encode()).hexdigest()[:10]
    base = f"{model}-{digest}"
    return base if attempt <= 1 else f"{base}-r{attempt}"


def parse_run_id(value: str) -> tuple[str, int]:
    """Return (model, attempt) of a run id, or raise ValueError."""
    match = _RUN_ID_RE.match(value)
    if not match:
        raise ValueError(f"not a run id: {value!r}")
    return match.group("model"), int(match.group("attempt") or 1)


def _job_name(run: str, step: str, steps: tuple[str, ...], what: str) -> str:
    if step not in steps:
        raise ValueError(f"unknown {what} {step!r}; expected one of {steps}")
    name = f"{run}-{step}"
    if len(name) > MAX_JOB_NAME or not _JOB_NAME_RE.match(name):
        raise ValueError(f"job name {name!r} is not a valid SageMaker name")
    return name


def job_name(run: str, step: str) -> str:
    """``<run_id>-<step>``: unique per run and step, at most 63 characters."""
    return _job_name(run, step, JOB_STEPS, "job step")


# ----------------------------------------------------------------------------- monthly batch runs
def parse_time(text: str, what: str = "scheduled_time") -> datetime:
    """An ISO 8601 time (``Z`` accepted, as Scheduler and EventBridge write it), in UTC when it
    names no zone; InvalidEvent otherwise."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidEvent(f"{what} {text!r} is not an ISO 8601 time.") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_month(text: str) -> str:
    if not isinstance(text, str) or not _MONTH_RE.match(text):
        raise InvalidEvent(f"month {text!r} is not in the form YYYY-MM (for example 2026-10).")
    return text


def bucket_digest(bucket: str) -> str:
    """Six hex digits of the data bucket's name: one stack's month never takes another's job names."""
    return hashlib.sha256(bucket.encode()).hexdigest()[:6]


def batch_run_id(model: str, month: str, bucket: str, attempt: int = 1) -> str:
    """``<model>-<YYYYMM>-<6 hex of the data bucket>``, ``-r<N>`` for attempt N > 1."""
    base = f"{model}-{parse_month(month).replace('-', '')}-{bucket_digest(bucket)}"
    return base if attempt <= 1 else f"{base}-r{attempt}"


def batch_job_name(run: str, step: str) -> str:
    """``<batch run id>-<prepare|transform|monitor>``, at most 63 characters."""
    return _job_name(run, step, BATCH_STEPS, "batch step")


def run_prefix(model: str, run: str) -> str:
    """Where a run's artifacts live in the artifacts bucket."""
    return f"runs/{model}/{run}"


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of the execution ``name`` of a state machine (Step Functions' own scheme)."""
    if ":stateMachine:" not in state_machine_arn:
        raise ValueError(f"not a state machine ARN: {state_machine_arn!r}")
    prefix, machine = state_machine_arn.rsplit(":stateMachine:", 1)
    return f"{prefix}:execution:{machine}:{name}"
