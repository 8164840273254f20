import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from autoloop import drift
from autoloop.drift import DriftPolicy, Violation, decide, parse_violations, summary
from autoloop.errors import AutoloopError, InvalidEvent, InvalidViolationsReport
from tests.conftest import EVENTS, load_event

WHERE = "s3://bucket/monitoring/x/constraint_violations.json"
NOW = datetime(2026, 11, 1, 3, 30, tzinfo=UTC)


def sample_report() -> str:
    return (EVENTS / "constraint_violations_sample.json").read_text()


def report(*entries: tuple[str, str, str]) -> str:
    return json.dumps(
        {"violations": [{"feature_name": f, "constraint_check_type": c, "description": d} for f, c, d in entries]}
    )


def drift_violation(feature: str, distance: float, threshold: float) -> Violation:
    description = f"Baseline drift distance: {distance} exceeds threshold: {threshold}"
    return Violation(feature, "baseline_drift_check", description, distance, threshold)


def decide_now(violations, policy=None, **kwargs):
    kwargs.setdefault("last_retrain_at", None)
    kwargs.setdefault("retrain_in_flight", False)
    return decide(violations, policy or DriftPolicy(), now=kwargs.pop("now", NOW), **kwargs)


# -- constraint_violations.json ---------------------------------------------------------------


def test_sample_report_parses_in_order_with_numbers():
    violations = parse_violations(sample_report().encode(), WHERE)
    assert [(v.feature, v.check) for v in violations] == [
        ("monthly_charges", "baseline_drift_check"),
        ("data_usage_gb", "baseline_drift_check"),
        ("support_calls", "completeness_check"),
    ]
    monthly, usage, calls = violations
    assert (monthly.distance, monthly.threshold) == (0.2104, 0.1)
    assert (usage.distance, usage.threshold) == (0.1986, 0.08)
    assert monthly.severity == pytest.approx(2.104)
    assert usage.severity == pytest.approx(2.4825)
    assert (calls.distance, calls.threshold, calls.value) == (None, None, 0.49)
    assert calls.severity == 1.0
    assert calls.description == "Value: 0.49 does not meet the constraint requirement!"


def test_every_documented_check_type_parses():
    raw = report(
        ("fare_amount", "baseline_drift_check", "Baseline drift distance: 0.1981 exceeds threshold: 0.1"),
        ("tip_amount", "data_type_check", "Value: 0.4974974974974975 does not meet the constraint requirement! "),
        ("congestion_surcharge", "completeness_check", "Value: 0.0 does not meet the constraint requirement! "),
        (
            "payment_type",
            "categorical_values_check",
            "Value: 0.009009009009009009 does not meet the constraint requirement! ",
        ),
        (
            "extra_col_7",
            "extra_column_check",
            "There are extra columns in current dataset. Number of columns in "
            "current dataset: 8, Number of columns in baseline constraints: 7",
        ),
        ("zip_code", "missing_column_check", "There are missing columns in current dataset."),
    )
    by_check = {v.check: v for v in parse_violations(raw, WHERE)}
    assert set(by_check) == drift.CHECK_TYPES - {drift.MODEL_QUALITY_CHECK}  # ours, not Model Monitor's
    assert (by_check["baseline_drift_check"].distance, by_check["baseline_drift_check"].threshold) == (0.1981, 0.1)
    assert by_check["data_type_check"].value == pytest.approx(0.4975, abs=1e-4)
    assert by_check["completeness_check"].value == 0.0
    assert by_check["categorical_values_check"].value == pytest.approx(0.009009, abs=1e-6)
    for check in ("extra_column_check", "missing_column_check"):
        v = by_check[check]
        assert (v.distance, v.threshold, v.value, v.severity) == (None, None, None, 1.0)
    assert "Number of columns in current dataset: 8" in by_check["extra_column_check"].description


def test_numbers_in_other_forms_and_unreadable_numbers():
    raw = report(
        ("a", "baseline_drift_check", "distance: 1.5e-1 exceeds threshold: 5E-2"),
        ("b", "baseline_drift_check", "Baseline drift distance: NaN exceeds threshold: 0.1"),
        ("c", "baseline_drift_check", "Baseline drift distance: 0.3 exceeds threshold: 0"),
        ("d", "new_future_check", "Value: 0.5 is odd"),
    )
    a, b, c, d = parse_violations(raw, WHERE)
    assert (a.distance, a.threshold, a.severity) == (0.15, 0.05, pytest.approx(3.0))
    assert (b.distance, b.severity) == (None, 1.0)  # still a violation, just without numbers
    assert c.severity == math.inf
    assert (d.check, d.value) == ("new_future_check", 0.5)


def test_an_empty_violation_list_means_nothing_was_found():
    assert parse_violations('{"violations": []}', WHERE) == []


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"", "is empty"),
        ("  \n", "is empty"),
        (sample_report()[:120], "not valid JSON"),
        ("<Error><Code>NoSuchKey</Code></Error>", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        ('[{"feature_name": "a"}]', "JSON list, expected an object"),
        ('{"violation": []}', "no 'violations' key"),
        ('{"violations": {"feature_name": "a"}}', "'violations' is a JSON dict, not a list"),
        ('{"violations": null}', "not a list"),
        ('{"violations": ["a"]}', r"violations\[0\] is str"),
        ('{"violations": [{"constraint_check_type": "completeness_check"}]}', r"violations\[0\]\.feature_name"),
        ('{"violations": [{"feature_name": "a", "constraint_check_type": ""}]}', "constraint_check_type is ''"),
        ('{"violations": [{"feature_name": "a", "constraint_check_type": "x", "description": 3}]}', "description"),
    ],
)
def test_bad_reports_raise_with_what_is_wrong(raw, match):
    with pytest.raises(InvalidViolationsReport, match=match) as info:
        parse_violations(raw, WHERE)
    assert WHERE in str(info.value)
    assert isinstance(info.value, AutoloopError)
    assert info.value.hint and info.value.hint in str(info.value)


# -- policy -------------------------------------------------------------------------------------


def test_default_policy_retrains_on_the_sample_and_explains_why():
    violations = parse_violations(sample_report(), WHERE)
    decision = decide_now(violations)
    assert decision.retrain is True
    # most severe first: data_usage_gb (2.48) before monthly_charges (2.10) before completeness (1.0)
    assert [v.feature for v in decision.counted] == ["data_usage_gb", "monthly_charges", "support_calls"]
    assert decision.severity == pytest.approx(2.4825)
    assert decision.reason == (
        "3 violations: data_usage_gb distance 0.20 > 0.08, monthly_charges distance 0.21 > 0.10, "
        "support_calls completeness_check (value 0.49)"
    )


def test_reason_says_drift_violations_when_all_are_drift():
    decision = decide_now([drift_violation("monthly_charges", 0.21, 0.1), drift_violation("data_usage_gb", 0.2, 0.08)])
    assert (
        decision.reason
        == "2 drift violations: data_usage_gb distance 0.20 > 0.08, monthly_charges distance 0.21 > 0.10"
    )


def test_reason_keeps_enough_digits_to_show_the_excess():
    decision = decide_now([drift_violation("age", 0.1004, 0.1)])
    assert decision.reason == "1 drift violation: age distance 0.1004 > 0.1000"


def test_only_the_policy_checks_count():
    violations = parse_violations(sample_report(), WHERE)
    decision = decide_now(violations, DriftPolicy(checks=frozenset({"completeness_check"})))
    assert decision.retrain is True
    assert [v.check for v in decision.counted] == ["completeness_check"]
    assert decision.severity == 1.0

    none = decide_now(violations, DriftPolicy(checks=frozenset({"data_type_check"})))
    assert none.retrain is False
    assert none.counted == []
    assert none.severity == 0.0
    assert none.reason.startswith("no violation counts under the policy")
    assert "3 violations ignored" in none.reason


def test_severity_threshold_filters_small_drift_and_non_drift_checks():
    violations = parse_violations(sample_report(), WHERE)
    decision = decide_now(violations, DriftPolicy(min_severity=2.2))
    assert [v.feature for v in decision.counted] == ["data_usage_gb"]  # 2.48; monthly 2.10 and completeness 1.0 out
    assert decision.retrain is True

    too_high = decide_now(violations, DriftPolicy(min_severity=3.0))
    assert too_high.retrain is False
    assert too_high.counted == []
    assert "severity < 3" in too_high.reason


def test_min_violations():
    violations = [drift_violation("monthly_charges", 0.21, 0.1)]
    decision = decide_now(violations, DriftPolicy(min_violations=2))
    assert decision.retrain is False
    assert decision.reason == "1 violation counts, the policy needs 2: monthly_charges distance 0.21 > 0.10"
    assert len(decision.counted) == 1  # still reported for the notification

    two = decide_now([*violations, drift_violation("age", 0.3, 0.1)], DriftPolicy(min_violations=2))
    assert two.retrain is True


def test_no_violations_means_no_retrain():
    decision = decide_now([])
    assert (decision.retrain, decision.reason, decision.counted, decision.severity) == (
        False,
        "no violation counts under the policy",
        [],
        0.0,
    )


def test_cooldown_inside_blocks_and_outside_allows():
    violations = parse_violations(sample_report(), WHERE)
    inside = decide_now(violations, last_retrain_at=NOW - timedelta(hours=3))
    assert inside.retrain is False
    assert inside.reason == "cooldown: last retrain 3 h ago (cooldown 24 h)"
    assert len(inside.counted) == 3

    just_inside = decide_now(violations, last_retrain_at=NOW - timedelta(hours=23, minutes=59, seconds=59))
    assert just_inside.retrain is False
    assert just_inside.reason == "cooldown: last retrain 23 h 59 min ago (cooldown 24 h)"

    at_edge = decide_now(violations, last_retrain_at=NOW - timedelta(hours=24))
    assert at_edge.retrain is True

    short = decide_now(violations, DriftPolicy(cooldown_seconds=1800), last_retrain_at=NOW - timedelta(minutes=10))
    assert short.reason == "cooldown: last retrain 10 min ago (cooldown 30 min)"
    assert decide_now(violations, DriftPolicy(cooldown_seconds=0), last_retrain_at=NOW).retrain is True


def test_cooldown_rejects_mixed_naive_and_aware_times():
    with pytest.raises(ValueError, match="timezone"):
        decide_now([drift_violation("age", 0.3, 0.1)], last_retrain_at=datetime(2026, 11, 1))


def test_a_retrain_in_flight_blocks_a_new_one():
    decision = decide_now(parse_violations(sample_report(), WHERE), retrain_in_flight=True)
    assert decision.retrain is False
    assert decision.reason == "a retrain is already running"
    # but nothing blocks when nothing counts: the reason stays "no violation"
    assert decide_now([], retrain_in_flight=True).reason == "no violation counts under the policy"


def test_flapping_alarm_gives_one_retrain_per_cooldown():
    violations = [drift_violation("monthly_charges", 0.21, 0.1)]
    policy = DriftPolicy()
    last_retrain_at = None
    decisions = []
    for i in range(5):
        now = NOW + timedelta(minutes=10 * i)
        decision = decide(violations, policy, now=now, last_retrain_at=last_retrain_at, retrain_in_flight=False)
        decisions.append(decision)
        if decision.retrain:
            last_retrain_at = now
    assert [d.retrain for d in decisions] == [True, False, False, False, False]
    assert [d.reason for d in decisions[1:]] == [
        f"cooldown: last retrain {m} min ago (cooldown 24 h)" for m in (10, 20, 30, 40)
    ]
    # once the cooldown has passed, the same drift retrains again
    later = decide(
        violations,
        policy,
        now=NOW + timedelta(days=1, minutes=1),
        last_retrain_at=last_retrain_at,
        retrain_in_flight=False,
    )
    assert later.retrain is True


@pytest.mark.parametrize(
    "kwargs",
    [{"min_violations": 0}, {"cooldown_seconds": -1}, {"min_severity": float("nan")}],
)
def test_policy_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        DriftPolicy(**kwargs)


def test_policy_defaults():
    policy = DriftPolicy()
    assert policy.checks == drift.CHECK_TYPES
    assert (policy.min_severity, policy.min_violations, policy.cooldown_seconds) == (1.0, 1, 86400)


# -- summary ------------------------------------------------------------------------------------


def test_summary_names_each_feature_with_its_numbers():
    text = summary(parse_violations(sample_report(), WHERE))
    lines = text.splitlines()
    assert lines == [
        "data_usage_gb: baseline_drift_check distance 0.1986 > threshold 0.08 (severity 2.48)",
        "monthly_charges: baseline_drift_check distance 0.2104 > threshold 0.1 (severity 2.10)",
        "support_calls: completeness_check value 0.49",
    ]


def test_summary_groups_a_features_violations_on_one_line():
    raw = report(
        ("age", "completeness_check", "Value: 0.7 does not meet the constraint requirement! "),
        ("age", "baseline_drift_check", "Baseline drift distance: 0.3 exceeds threshold: 0.1"),
        ("extra_col_7", "extra_column_check", "There are extra columns in current dataset."),
    )
    lines = summary(parse_violations(raw, WHERE)).splitlines()
    assert lines == [
        "age: baseline_drift_check distance 0.3 > threshold 0.1 (severity 3.00); completeness_check value 0.7",
        "extra_col_7: extra_column_check: There are extra columns in current dataset.",
    ]
    assert summary([]) == "no violations"


# -- CloudWatch alarm ---------------------------------------------------------------------------


def test_alarm_sample_parses():
    alarm = drift.parse_alarm_event(load_event("cloudwatch_alarm_drift"))
    assert alarm == drift.AlarmDrift(
        alarm_name="autoloop-dev-drift-churn-monthly-charges",
        state="ALARM",
        previous_state="OK",
        metric_name="feature_baseline_drift_monthly_charges",
        feature="monthly_charges",
        endpoint="autoloop-dev-churn",
        schedule="autoloop-dev-churn-dq",
        value=0.2104,
        threshold=0.1,
    )
    assert alarm.is_alarm


def test_alarm_back_to_ok_is_not_an_alarm():
    event = load_event("cloudwatch_alarm_drift")
    detail = event["detail"]
    detail["state"], detail["previousState"] = detail["previousState"], detail["state"]
    alarm = drift.parse_alarm_event(event)
    assert (alarm.state, alarm.previous_state, alarm.value) == ("OK", "ALARM", 0.031)
    assert not alarm.is_alarm


def test_alarm_without_datapoints_or_with_other_dimension_names():
    event = load_event("cloudwatch_alarm_drift")
    event["detail"]["state"] = {"value": "INSUFFICIENT_DATA", "reasonData": "not json"}
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = {
        "EndpointName": "ep",
        "ScheduleName": "sched",
    }
    alarm = drift.parse_alarm_event(event)
    assert (alarm.value, alarm.threshold, alarm.endpoint, alarm.schedule) == (None, None, "ep", "sched")
    assert not alarm.is_alarm


def test_batch_monitor_alarm_has_no_endpoint():
    event = load_event("cloudwatch_alarm_drift")
    metric = event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]
    metric["dimensions"] = {"MonitoringSchedule": "autoloop-dev-churn-batch-dq"}
    alarm = drift.parse_alarm_event(event)
    assert (alarm.endpoint, alarm.schedule) == (None, "autoloop-dev-churn-batch-dq")


def _metric(e):
    return e["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda e: e.__setitem__("source", "aws.sagemaker"), "source: .*got 'aws.sagemaker'"),
        (lambda e: e.__setitem__("detail-type", "CloudWatch Alarm Configuration Change"), "detail-type"),
        (lambda e: e.pop("detail"), "detail: Field required"),
        (lambda e: e["detail"].pop("alarmName"), "detail.alarmName"),
        (lambda e: e["detail"].pop("state"), "detail.state"),
        (lambda e: e["detail"]["previousState"].pop("value"), "detail.previousState.value"),
        (lambda e: e["detail"].pop("configuration"), "detail.configuration: Field required"),
        (lambda e: e["detail"]["configuration"].__setitem__("metrics", {}), "detail.configuration.metrics: .*list"),
        (lambda e: _metric(e).__setitem__("name", "feature_data_monthly_charges"), "watches no feature_baseline_drift"),
        (lambda e: _metric(e).__setitem__("name", "feature_baseline_drift_"), "watches no feature_baseline_drift"),
        (lambda e: e["detail"]["configuration"]["metrics"][0].pop("metricStat"), "watches no"),
        (lambda e: _metric(e).pop("dimensions"), "has no dimensions"),
        (lambda e: _metric(e)["dimensions"].pop("MonitoringSchedule"), "no MonitoringSchedule dimension"),
    ],
)
def test_malformed_alarm_events_raise_invalid_event(mutate, match):
    event = load_event("cloudwatch_alarm_drift")
    mutate(event)
    with pytest.raises(InvalidEvent, match=match):
        drift.parse_alarm_event(event)


def test_alarm_parser_rejects_non_objects():
    with pytest.raises(InvalidEvent, match="not a JSON object"):
        drift.parse_alarm_event(["not", "a", "dict"])


# -- monitoring job -----------------------------------------------------------------------------


def test_monitoring_job_sample_parses():
    event = load_event("sagemaker_monitoring_job_completed")
    assert drift.is_monitoring_job(event)
    run = drift.parse_monitoring_job_event(event)
    assert run == drift.MonitoringRun(
        job_name="model-monitoring-202611010300-4f2a9c1d7e3b",
        status="Completed",
        endpoint="autoloop-dev-churn",
        schedule="autoloop-dev-churn-dq",
        report_uri="s3://autoloop-dev-artifactsbucket-0a1b2c/monitoring/autoloop-dev-churn/autoloop-dev-churn-dq"
        "/2026/11/01/03/constraint_violations.json",
        exit_message="CompletedWithViolations: Job completed successfully with 2 violations.",
        has_violations=True,
    )


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("CompletedWithViolations: Job completed successfully with 3 violations.", True),
        ("Completed: Job completed successfully with no violations.", False),
        ("Completed", None),
        ("Error: something odd", None),
        ("", None),
        (None, None),
    ],
)
def test_exit_message_is_only_a_hint(message, expected):
    event = load_event("sagemaker_monitoring_job_completed")
    if message is None:
        event["detail"].pop("ExitMessage")
    else:
        event["detail"]["ExitMessage"] = message
    run = drift.parse_monitoring_job_event(event)
    assert run.has_violations is expected
    assert run.exit_message == (message or None)
    assert run.report_uri.endswith("/2026/11/01/03/constraint_violations.json")


def test_monitoring_job_is_recognised_by_image_or_environment():
    event = load_event("sagemaker_monitoring_job_completed")
    image = "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"

    no_env = load_event("sagemaker_monitoring_job_completed")
    no_env["detail"].pop("Environment")
    assert drift.is_monitoring_job(no_env)
    run = drift.parse_monitoring_job_event(no_env)
    assert (run.endpoint, run.schedule) == (None, None)

    for uri in (
        f"{image}:latest",
        f"{image}@sha256:{'0' * 64}",
        "159807026194.dkr.ecr.us-west-2.amazonaws.com/sagemaker-model-monitor-analyzer",
    ):
        event["detail"]["Environment"] = {}
        event["detail"]["AppSpecification"]["ImageUri"] = uri
        assert drift.is_monitoring_job(event), uri

    byoc = load_event("sagemaker_monitoring_job_completed")
    byoc["detail"]["AppSpecification"]["ImageUri"] = "111122223333.dkr.ecr.us-east-1.amazonaws.com/my-monitor:1"
    assert drift.is_monitoring_job(byoc)
    byoc["detail"]["Environment"].pop("sagemaker_monitoring_schedule_name")
    assert not drift.is_monitoring_job(byoc)


def test_pipeline_jobs_and_other_events_are_not_monitoring_jobs():
    assert not drift.is_monitoring_job(load_event("sagemaker_processing_job_completed"))
    assert not drift.is_monitoring_job(load_event("sagemaker_training_job_completed"))
    assert not drift.is_monitoring_job(load_event("cloudwatch_alarm_drift"))
    assert not drift.is_monitoring_job(None)
    lookalike = load_event("sagemaker_processing_job_completed")
    lookalike["detail"]["AppSpecification"]["ImageUri"] = (
        "111122223333.dkr.ecr.us-east-1.amazonaws.com/not-sagemaker-model-monitor-analyzer:1"
    )
    assert not drift.is_monitoring_job(lookalike)
    with pytest.raises(InvalidEvent, match="not a Model Monitor execution"):
        drift.parse_monitoring_job_event(load_event("sagemaker_processing_job_completed"))


def test_failed_monitoring_job_still_parses_without_a_hint():
    event = load_event("sagemaker_monitoring_job_completed")
    event["detail"]["ProcessingJobStatus"] = "Failed"
    event["detail"]["ExitMessage"] = "Error: Encountered an error while analyzing the dataset."
    event["detail"]["FailureReason"] = "AlgorithmError: see job logs"
    run = drift.parse_monitoring_job_event(event)
    assert (run.status, run.has_violations) == ("Failed", None)


def _outputs(e):
    return e["detail"]["ProcessingOutputConfig"]["Outputs"]


def _two_outputs_neither_at_output_path(e):
    _outputs(e)[0]["S3Output"]["LocalPath"] = "/opt/ml/x"
    _outputs(e).append({"OutputName": "other", "S3Output": {"S3Uri": "s3://b/o", "LocalPath": "/opt/ml/other"}})


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda e: e.__setitem__("source", "aws.s3"), "source: .*got 'aws.s3'"),
        (lambda e: e.__setitem__("detail-type", "SageMaker Training Job State Change"), "detail-type"),
        (lambda e: e.__setitem__("detail", []), "detail: not a JSON object"),
        (lambda e: e["detail"].pop("ProcessingJobName"), "detail lacks ProcessingJobName"),
        (lambda e: e["detail"].__setitem__("ProcessingJobStatus", None), "detail lacks .*/ProcessingJobStatus"),
        (lambda e: e["detail"].pop("ProcessingOutputConfig"), "Outputs is missing or empty"),
        (lambda e: _outputs(e).clear(), "Outputs is missing or empty"),
        (lambda e: _outputs(e)[0]["S3Output"].__setitem__("S3Uri", "https://example.com/x"), "not an s3:// URI"),
        (lambda e: _outputs(e)[0]["S3Output"].__setitem__("S3Uri", "s3://"), "not an s3:// URI"),
        (lambda e: _outputs(e).append(dict(_outputs(e)[0])), "found 2"),
        (_two_outputs_neither_at_output_path, "at /opt/ml/processing/output, found 0"),
    ],
)
def test_malformed_monitoring_job_events_raise_invalid_event(mutate, match):
    event = load_event("sagemaker_monitoring_job_completed")
    mutate(event)
    with pytest.raises(InvalidEvent, match=match):
        drift.parse_monitoring_job_event(event)


def test_result_output_is_found_by_its_local_path_among_several():
    event = load_event("sagemaker_monitoring_job_completed")
    _outputs(event).insert(0, {"OutputName": "other", "S3Output": {"S3Uri": "s3://b/other/", "LocalPath": "/opt/x"}})
    _outputs(event)[1]["S3Output"]["S3Uri"] += "/"
    run = drift.parse_monitoring_job_event(event)
    assert run.report_uri == (
        "s3://autoloop-dev-artifactsbucket-0a1b2c/monitoring/autoloop-dev-churn/autoloop-dev-churn-dq"
        "/2026/11/01/03/constraint_violations.json"
    )


SAMPLE_REPORT_URI = (
    "s3://autoloop-dev-artifactsbucket-0a1b2c/monitoring/autoloop-dev-churn/autoloop-dev-churn-dq"
    "/2026/11/01/03/constraint_violations.json"
)


@pytest.mark.parametrize(
    ("output_path", "local_path"),
    [
        ("/opt/ml/processing/custom/", "/opt/ml/processing/custom"),  # the container's output_path wins
        (None, "/opt/ml/processing/output"),  # SDK default
        (None, "/opt/ml/processing/resultdata/"),  # BYOC contract sample
    ],
)
def test_result_output_follows_the_containers_output_path(output_path, local_path):
    event = load_event("sagemaker_monitoring_job_completed")
    env = event["detail"]["Environment"]
    if output_path is None:
        env.pop("output_path")
    else:
        env["output_path"] = output_path
    _outputs(event)[0]["S3Output"]["LocalPath"] = local_path
    decoy = "/opt/ml/processing/output" if local_path.startswith("/opt/ml/processing/r") else "/opt/ml/processing/x"
    _outputs(event).insert(0, {"OutputName": "decoy", "S3Output": {"S3Uri": "s3://b/decoy", "LocalPath": decoy}})
    if output_path is None and decoy == "/opt/ml/processing/output":
        # both known defaults present and no output_path: ambiguous, so refuse rather than guess
        with pytest.raises(InvalidEvent, match="found 2"):
            drift.parse_monitoring_job_event(event)
        _outputs(event).pop(0)
    assert drift.parse_monitoring_job_event(event).report_uri == SAMPLE_REPORT_URI


def test_a_single_output_is_the_result_wherever_it_is_mounted():
    event = load_event("sagemaker_monitoring_job_completed")
    event["detail"]["Environment"].pop("output_path")
    _outputs(event)[0]["S3Output"]["LocalPath"] = "/somewhere/else"
    assert drift.parse_monitoring_job_event(event).report_uri == SAMPLE_REPORT_URI


def test_the_report_not_the_exit_message_decides():
    # The sample job says "2 violations"; its report has 3, and the report is what decides.
    run = drift.parse_monitoring_job_event(load_event("sagemaker_monitoring_job_completed"))
    assert "2 violations" in (run.exit_message or "")
    decision = decide_now(parse_violations(sample_report(), run.report_uri))
    assert len(decision.counted) == 3
    assert decision.retrain


def test_alarm_value_is_the_latest_datapoint():
    event = load_event("cloudwatch_alarm_drift")
    data = json.loads(event["detail"]["state"]["reasonData"])
    data["recentDatapoints"] = [0.12, 0.15, 0.31]
    data["threshold"] = 0.11
    event["detail"]["state"]["reasonData"] = json.dumps(data)
    alarm = drift.parse_alarm_event(event)
    assert (alarm.value, alarm.threshold) == (0.31, 0.11)


def test_a_report_with_a_utf8_bom_is_read_and_a_utf16_one_is_refused():
    parse = parse_violations
    report = b'{"violations": [{"feature_name": "age", "constraint_check_type": "data_type_check"}]}'
    assert [v.feature for v in parse(b"\xef\xbb\xbf" + report, "s3://b/r.json")] == ["age"]
    assert [v.feature for v in parse("\ufeff" + report.decode(), "s3://b/r.json")] == ["age"]
    with pytest.raises(InvalidViolationsReport, match="not UTF-8"):
        parse(report.decode().encode("utf-16"), "s3://b/r.json")
