"""autoloop_cli.serve_console: the lines `autoloop local serve` prints for runs and notifications."""

from __future__ import annotations

import datetime as dt
import json

from autoloop_cli import serve_console

ARN = "arn:aws:states:us-east-1:123456789012:execution:autoloop-local-training-pipeline:churn-3061d6af09"
STAMP = str(int(dt.datetime(2026, 12, 4, 16, 52, 18, tzinfo=dt.UTC).timestamp() * 1000))


def event(kind: str, **details: object) -> dict[str, object]:
    return {"id": "2", "type": kind, "details": details, "previous_event_id": "1",
            "event_timestamp": STAMP, "execution_arn": ARN}


def test_start_states_and_success_each_get_a_line():
    machine = "autoloop-local-training-pipeline"
    assert serve_console.execution_line(event("ExecutionStarted"), machine) == (
        f"16:52:18 {machine} churn-3061d6af09 started")
    assert serve_console.execution_line(event("TaskStateEntered", name="Train"), machine) == (
        f"16:52:18 {machine} churn-3061d6af09 -> Train")
    assert serve_console.execution_line(event("ExecutionSucceeded"), machine).endswith("churn-3061d6af09 succeeded")


def test_other_events_get_no_line():
    for kind in ("TaskScheduled", "TaskStateExited", "LambdaFunctionSucceeded", "PassStateExited"):
        assert serve_console.execution_line(event(kind, name="X"), "sm") is None


def test_a_failure_names_the_error_and_the_first_line_of_its_cause():
    cause = json.dumps({"errorType": "InvalidTrainingData", "errorMessage": "column 3 is not numeric\nrow 7"})
    line = serve_console.execution_line(event("ExecutionFailed", error="InvalidTrainingData", cause=cause), "sm")
    assert line is not None
    assert line.endswith("churn-3061d6af09 FAILED: InvalidTrainingData: column 3 is not numeric")
    timed_out = serve_console.execution_line(event("ExecutionTimedOut"), "sm")
    assert timed_out is not None and timed_out.endswith("TIMED OUT: no reason given")


def test_a_long_reason_is_cut_to_one_short_line():
    line = serve_console.reason("E", "x" * 500)
    assert len(line) <= serve_console.MAX_REASON + 3 and line.endswith("…") and "\n" not in line


def test_notification_line_names_the_topic_and_the_subject_or_first_line():
    note = {"topic_arn": "arn:aws:sns:us-east-1:123456789012:alerts", "subject": "Autoloop: model deployed",
            "message": "{}"}
    assert serve_console.notification_line(note).endswith("notification alerts: Autoloop: model deployed")
    plain = {"topic_arn": "arn:aws:sns:us-east-1:123456789012:alerts", "subject": None,
             "message": "\n  drift on tenure\nmore"}
    assert serve_console.notification_line(plain).endswith("notification alerts: drift on tenure")


def test_schedule_line_says_when_it_was_due_and_what_it_started_or_why_not():
    due = dt.datetime(2026, 12, 4, 18, 0, tzinfo=dt.UTC)
    ok = serve_console.schedule_line("monitoring", "ep-dq", due, "model-monitoring-1", None)
    assert ok.endswith("schedule ep-dq (monitoring) fired for 2026-12-04T18:00:00Z -> model-monitoring-1")
    failed = serve_console.schedule_line("scheduler", "batch", due, None, "MonitoringError: no capture\nmore")
    assert failed.endswith("fired for 2026-12-04T18:00:00Z: FAILED: MonitoringError: no capture")
