"""The lifecycle report: graph layout, reading a history, distributions, rendering, the CLI.

Fast and offline: a small synthetic ASL and history, and a hand-built report. The report of
a real run, loaded in Chromium, is tested at the end of tests/e2e/test_loop.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from autoloop_cli.report import browser, collect, graph, page
from autoloop_cli.report.collect import (
    Deployment,
    Drift,
    Evaluation,
    ExecutionRun,
    FeatureDrift,
    JobRun,
    Report,
    StateRun,
)

T0 = datetime(2026, 11, 25, 20, 0, 0, tzinfo=UTC)
RETRY = [{"ErrorEquals": ["Lambda.Unknown"], "MaxAttempts": 2}]
ASL = {
    "StartAt": "Validate",
    "States": {
        "Validate": {"Type": "Task", "Resource": "arn:fn", "Retry": RETRY,
                     "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "ValidateFailed"}], "Next": "Train"},
        "ValidateFailed": {"Type": "Pass", "Next": "NotifyFailure"},
        "Train": {"Type": "Task", "Resource": "arn:fn", "Next": "Gate",
                  "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Reconcile"},
                            {"ErrorEquals": ["States.ALL"], "Next": "TrainFailed"}]},
        "Reconcile": {"Type": "Task", "Resource": "arn:fn", "Next": "Gate",
                      "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "TrainFailed"}]},
        "TrainFailed": {"Type": "Pass", "Next": "NotifyFailure"},
        "Gate": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": False, "Next": "Below"}],
                 "Default": "Register"},
        "Below": {"Type": "Pass", "Next": "NotifyFailure"},
        "Register": {"Type": "Task", "Resource": "arn:fn", "Next": "Done"},
        "Done": {"Type": "Succeed"},
        "NotifyFailure": {"Type": "Task", "Resource": "arn:fn", "Next": "RunFailed"},
        "RunFailed": {"Type": "Fail", "Error": "TrainFailed"},
    },
}


def _event(i: int, kind: str, **details: object) -> dict[str, object]:
    event: dict[str, object] = {"id": i, "type": kind, "timestamp": T0 + timedelta(seconds=i)}
    if details:
        key = {"StateEntered": "stateEnteredEventDetails", "StateExited": "stateExitedEventDetails"}
        name = next((v for k, v in key.items() if kind.endswith(k)), "taskSucceededEventDetails")
        event[name] = details
    return event


def failed_history() -> list[dict[str, object]]:
    """Validate succeeds after a retry; Train fails and is caught; the run ends in RunFailed."""
    return [
        _event(1, "ExecutionStarted"),
        _event(2, "TaskStateEntered", name="Validate", input="{}"),
        _event(3, "LambdaFunctionFailed"),
        _event(4, "LambdaFunctionSucceeded", output="{}"),
        _event(5, "TaskStateExited", name="Validate", output="{}"),
        _event(6, "TaskStateEntered", name="Train", input="{}"),
        _event(7, "TaskSucceeded", output='{"job_name": "r-train", "kind": "training", "status": "Failed"}'),
        _event(8, "TaskFailed"),
        _event(9, "TaskStateExited", name="Train", output='{"error": {"Error": "JobFailed"}}'),
        _event(10, "PassStateEntered", name="TrainFailed", input="{}"),
        _event(11, "PassStateExited", name="TrainFailed", output="{}"),
        _event(12, "TaskStateEntered", name="NotifyFailure", input="{}"),
        _event(13, "TaskStateExited", name="NotifyFailure", output="{}"),
        _event(14, "FailStateEntered", name="RunFailed", input="{}"),
        _event(15, "ExecutionFailed"),
    ]


# ----------------------------------------------------------------------------- layout
def test_layout_puts_the_happy_path_down_the_first_column_and_no_two_states_in_one_place():
    lay = graph.layout(ASL)
    assert lay.spine == ["Start", "Validate", "Train", "Gate", "Register", "Done", "End"]
    assert set(lay.nodes) == set(ASL["States"]) | {"Start", "End"}
    assert all(lay.nodes[name].col == 0 for name in lay.spine)
    places = [(n.layer, n.col) for n in lay.nodes.values()]
    assert len(places) == len(set(places))
    for edge in lay.edges:  # every arrow goes from its source's box down into its target's box
        a, b = lay.nodes[edge.src], lay.nodes[edge.dst]
        route = lay.routes[(edge.src, edge.dst)]
        assert route[0] == (a.cx, a.y + graph.NODE_H) and route[-1] == (b.cx, b.y)
    layers = {n: lay.nodes[n].layer for n in lay.nodes}
    assert layers["Train"] > layers["Validate"] and layers["Gate"] > layers["Reconcile"] > layers["Train"]
    assert layers["End"] == max(layers.values())


def test_layout_survives_a_loop_and_a_state_nothing_leads_to():
    asl = {"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "x", "Next": "B"},
        "B": {"Type": "Choice", "Choices": [{"Variable": "$.again", "BooleanEquals": True, "Next": "A"}],
              "Default": "C"},
        "C": {"Type": "Succeed"},
        "Orphan": {"Type": "Pass", "End": True},
    }}
    lay = graph.layout(asl)
    assert lay.spine == ["Start", "A", "B", "C", "End"]
    assert "Orphan" in lay.nodes
    assert lay.routes[("B", "A")][0][1] > lay.routes[("B", "A")][-1][1]  # drawn back up
    with pytest.raises(ValueError, match="StartAt"):
        graph.layout({"StartAt": "Nope", "States": {}})


def test_svg_highlights_the_path_and_the_failed_state_and_escapes_names():
    states = collect._states(failed_history())
    assert [s.name for s in states] == ["Validate", "Train", "TrainFailed", "NotifyFailure", "RunFailed"]
    assert [s.name for s in states if s.failed] == ["Train", "RunFailed"]  # a retried failure is not one
    svg = graph.svg(ASL, [s.name for s in states], [s.name for s in states if s.failed],
                    {s.name: s.seconds for s in states if s.seconds is not None})
    assert svg.count('class="node visited"') == 5  # Start, Validate, TrainFailed, NotifyFailure, End
    assert re.findall(r'class="node failed" data-state="(\w+)"', svg) == ["Train", "RunFailed"]
    walked = set(re.findall(r'class="edge walked" data-from="(\w+)" data-to="(\w+)"', svg))
    assert walked == {("Start", "Validate"), ("Validate", "Train"), ("Train", "TrainFailed"),
                      ("TrainFailed", "NotifyFailure"), ("NotifyFailure", "RunFailed"), ("RunFailed", "End")}
    evil = {"StartAt": "<b>&", "States": {"<b>&": {"Type": "Succeed"}}}
    assert "<b>&" not in graph.svg(evil, ["<b>&"]) and "&lt;b&gt;&amp;" in graph.svg(evil, ["<b>&"])


def test_jobs_are_found_in_task_results_and_kept_when_they_cannot_be_described():
    class NoSageMaker:
        def describe_training_job(self, **_: object) -> None:
            raise RuntimeError("gone")

    jobs = collect._jobs(NoSageMaker(), failed_history())
    assert [(j.name, j.kind, j.state, j.status) for j in jobs] == [("r-train", "training", "Train", "Failed")]
    assert "gone" in jobs[0].detail


# ----------------------------------------------------------------------------- distributions
def _numeric(values: list[float], levels: int = 1) -> dict[str, object]:
    data = [values] if levels == 1 else [values[: len(values) // 2], values[len(values) // 2:]]
    return {"name": "x", "inferred_type": "Fractional", "numerical_statistics": {
        "common": {"num_present": len(values)}, "min": min(values), "max": max(values),
        "distribution": {"kll": {"buckets": [], "sketch": {"data": data}}}}}


def test_numeric_distributions_are_put_on_common_bins_from_the_sketches():
    kind, labels, base, cur, n_base, n_cur = collect.histograms(_numeric([0.0, 1, 2, 3]), _numeric([2.0, 3, 4, 6]),
                                                               bins=3)
    assert kind == "numeric" and labels == ["0", "2", "4", "6"] and (n_base, n_cur) == (4, 4)
    assert base == [0.5, 0.5, 0.0] and cur == [0.0, 0.5, 0.5]
    # A real KLL sketch: level h items weigh 2^h.
    _, _, weighted, _, _, _ = collect.histograms(_numeric([0.0, 5.0], levels=2), _numeric([0.0, 5.0]), bins=2)
    assert weighted == pytest.approx([1 / 3, 2 / 3])


def test_buckets_are_used_when_there_is_no_sketch_and_categories_are_compared_by_share():
    stat = _numeric([0.0, 10.0])
    stat["numerical_statistics"]["distribution"]["kll"] = {"buckets": [  # type: ignore[index]
        {"lower_bound": 0.0, "upper_bound": 5.0, "count": 30.0}, {"lower_bound": 5.0, "upper_bound": 10.0,
                                                                   "count": 10.0}]}
    _, _, base, _, _, _ = collect.histograms(stat, _numeric([0.0, 10.0]), bins=4)
    assert base == pytest.approx([0.375, 0.375, 0.125, 0.125])

    def cat(counts: dict[str, int]) -> dict[str, object]:
        return {"name": "c", "string_statistics": {"distribution": {"categorical": {
            "buckets": [{"value": k, "count": v} for k, v in counts.items()]}}}}

    kind, labels, base, cur, _, _ = collect.histograms(cat({"a": 3, "b": 1}), cat({"b": 1, "c": 1}))
    assert kind == "categorical" and labels == ["a", "b", "c"]
    assert base == [0.75, 0.25, 0.0] and cur == [0.0, 0.5, 0.5]


def test_thresholds_come_from_the_overrides_else_the_default():
    default, per = collect._thresholds({
        "monitoring_config": {"distribution_constraints": {"comparison_threshold": 0.1}},
        "features": [{"name": "a", "monitoringConfigOverrides": {"comparison_threshold": 0.02}},
                     {"name": "b", "num_constraints": {"monitoring_config_overrides": {"comparison_threshold": 0.05}}},
                     {"name": "c"}]})
    assert default == 0.1 and per == {"a": 0.02, "b": 0.05, "c": 0.1}


# ----------------------------------------------------------------------------- rendering
def sample_report() -> Report:
    states = [StateRun("Validate", "Task", T0, T0 + timedelta(seconds=1)),
              StateRun("Train", "Task", T0 + timedelta(seconds=1), T0 + timedelta(seconds=5)),
              StateRun("Gate", "Choice", T0 + timedelta(seconds=5), T0 + timedelta(seconds=5.01)),
              StateRun("Register", "Task", T0 + timedelta(seconds=5.01), T0 + timedelta(seconds=5.2)),
              StateRun("Done", "Succeed", T0 + timedelta(seconds=5.2), T0 + timedelta(seconds=5.2))]
    job = JobRun("r-train", "training", "Completed", "Train", T0 + timedelta(seconds=1.1),
                 T0 + timedelta(seconds=1.5), T0 + timedelta(seconds=4.9))
    run = ExecutionRun("arn:aws:states:us-east-1:1:execution:tp:r", "r", "tp", "SUCCEEDED", T0,
                       T0 + timedelta(seconds=5.2), ASL, states, [job],
                       input={"run_id": "r", "model": "churn", "trigger": {"type": "drift"}})
    evaluation = Evaluation("auc", 0.75, "arn:pkg/2", {"auc": 0.83, "f1": 0.6}, {"metric": 0.83}, True,
                            champion="arn:pkg/1", champion_metrics={"auc": 0.81, "f1": 0.62},
                            confusion={"0": {"0": 10, "1": 2}, "1": {"0": 3, "1": 5}})
    features = [FeatureDrift("charges", "numeric", ["0", "50", "100"], [0.7, 0.3], [0.4, 0.6], 800, 500, 0.06,
                             0.02, 0.1, ["baseline_drift_check"]),
                FeatureDrift("<script>alert(1)</script>", "categorical", ["a", "b"], [0.5, 0.5], [0.5, 0.5], 800,
                             500, 0.0, 0.02, 0.1)]
    drift = Drift("ep", "ep-dq", "mon-1", T0, "CompletedWithViolations", "s3://b/v.json", "s3://b/s.json",
                  "s3://b/c.json", features, "CloudWatch")
    deployments = [
        Deployment("d1", "arn:d1", "SUCCEEDED", T0 - timedelta(seconds=60), T0 - timedelta(seconds=50), "create",
                   "approved: package v1", 1, "arn:pkg/1", "ep-v1", "", "r0", T0 - timedelta(seconds=55)),
        Deployment("d2", "arn:d2", "FAILED", T0 + timedelta(seconds=6), T0 + timedelta(seconds=9), "update",
                   "approved: package v2", 2, "arn:pkg/2", "ep-v2", "ep-v1", "r", None, "DeployEndpointFailed",
                   "DeploymentRolledBack: alarm ep-5xx"),
    ]
    return Report(run, evaluation=evaluation, drift=drift, deployments=deployments,
                  endpoint={"EndpointConfigName": "ep-v1"}, stack="s", generated=T0 + timedelta(seconds=10))


def test_every_section_renders_with_data_and_nothing_is_fetched_from_the_network():
    text = page.render(sample_report())
    counts = browser.section_counts(text)
    assert list(counts) == list(page.SECTIONS)
    assert all(c["empty"] == 0 for c in counts.values())
    assert counts["graph"]["visited_nodes"] == 7
    assert counts["timeline"]["state_bars"] == 5 and counts["timeline"]["job_bars"] == 1
    assert counts["evaluation"]["metric_bars"] == 4
    assert counts["drift"]["drift_plots"] == 2 and counts["drift"]["thresholds"] == 2
    assert counts["deployments"]["deploy_rows"] == 2 and counts["deployments"]["serving_bars"] == 1
    assert "rolled back, ep-v1 kept serving" in text
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert not re.search(r'(src|href)=|url\((?!#)|@import|<link|<script', text)


def test_a_run_without_evaluation_drift_or_deployments_says_so_in_each_section():
    report = sample_report()
    report.evaluation, report.drift, report.deployments, report.related, report.endpoint = None, None, [], [], {}
    report.notes = {"evaluation": "stopped before the QualityGate step", "drift": "a training-only run has no drift"}
    counts = browser.section_counts(page.render(report))
    assert [k for k, c in counts.items() if c["empty"]] == ["evaluation", "drift", "deployments"]
    text = page.render(report)
    assert "stopped before the QualityGate step" in text and "a training-only run has no drift" in text


def test_the_report_renders_in_chromium(tmp_path: Path):
    if browser.find() is None:
        pytest.skip(f"chromium is not installed: {browser.INSTALL_HINT}")
    path = tmp_path / "report.html"
    path.write_text(page.render(sample_report()))
    counts = browser.section_counts(browser.dump_dom(path))
    assert counts["graph"]["visited_nodes"] == 7 and counts["drift"]["drift_plots"] == 2


# ----------------------------------------------------------------------------- the command
def test_the_command_says_what_to_do_about_an_unknown_execution(capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from moto import mock_aws

    from autoloop_cli import cli

    monkeypatch.setattr(cli, "STATE_FILE", tmp_path / "server.json")  # not a `local serve` someone runs

    with mock_aws():
        code = cli.main(["report", "--execution-arn", "arn:aws:states:us-east-1:123456789012:execution:m:nope"])
        assert code == 2
        assert "no execution" in capsys.readouterr().err
    assert cli.main(["report"]) == 2
    assert "--execution-arn" in capsys.readouterr().err


def test_latest_names_the_stack_it_could_not_find():
    class NoStacks:
        def describe_stacks(self, **_: object) -> None:
            raise RuntimeError("Stack with id missing does not exist")

    with pytest.raises(collect.ReportError, match="stack missing could not be described.*--stack-name"):
        collect.latest_execution(lambda _service: NoStacks(), "missing")
