"""The full local loop (``autoloop_cli.demo.lifecycle``): wall time against the ML scripts' own compute.

Full mode runs the whole demo on 2,000 rows: upload -> TrainingPipeline -> registered ->
DeployPipeline (endpoint, capture, baseline, calibration, schedule) -> normal and drifted
traffic -> a monitoring run finds drift -> the drift handler retrains -> gate -> blue/green
update under traffic (the demo then scores a month with the batch transform; that stage is
outside the measured window and reported in the detail).

Figure: the loop's wall time from the start of the upload to the end of the blue/green
update (booting the local AWS and deploying template.yaml are excluded: a deployed stack is
where the loop starts; the detail has the demo's wall time with them).

Baseline, same run: the ML scripts' own compute, timed alone. While the loop runs, every
command a job runs (preprocess, train, evaluate, the Model Monitor baseline, calibration and
monitoring analyzers) is recorded with its environment and working folder (a wrapper around
``sagemaker_jobs.Job.run``); after the loop, each of the window's commands is run again,
one at a time, in its own sandbox, with nothing else running, and timed. Inside the loop the
same scripts share 2 cores with the orchestration (Lambda handlers, the server, endpoint
workers), so their in-loop time (the job runner's ``compute_seconds``, a context line) is
longer than alone. Orchestration overhead = (wall - ML alone) / wall: everything that is not
a job script, which includes Step Functions, Lambda handlers, S3/SageMaker API calls,
endpoint start-up, the demo's traffic (800 single-row invocations, 8 callers at a time through
boto3) and the demo's blue/green bake (``BlueGreenBakeSeconds`` 3 s +
``TerminationWaitSeconds`` 1 s: policy waits, not overhead; the detail has every stage).

Quick mode (CI): the TrainingPipeline part of the loop only (upload -> registered), 1,000
rows, and no replay (the baseline is the in-loop compute); figures labelled as such.
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import Row, progress

GOAL_OVERHEAD = 0.25
GOAL_WALL = 30.0
BATCH_SUFFIXES = ("-prepare", "-transform", "-monitor")


class TimedConsole:
    """A ``autoloop_cli.console.Console`` that also records each stage's start and end."""

    def __init__(self, stages: int) -> None:
        from autoloop_cli.console import Console

        self.buffer = io.StringIO()
        self.console = Console(stages=stages, out=self.buffer)
        self.marks: list[tuple[str, float, float | None]] = []

    def say(self, text: str = "") -> None:
        self.console.say(text)

    def stage(self, title: str) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def timed() -> Any:
            index = len(self.marks)
            self.marks.append((title, time.perf_counter(), None))
            progress(f"[loop] {title}")
            with self.console.stage(title):
                yield
            self.marks[index] = (title, self.marks[index][1], time.perf_counter())

        return timed()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)

    def span(self, first: str, last: str) -> tuple[float, float]:
        start = next(s for t, s, _ in self.marks if t.startswith(first))
        end = [e for t, _, e in self.marks if t.startswith(last)][-1]
        if end is None:
            raise RuntimeError(f"stage {last!r} did not finish")
        return start, end


@dataclass
class Session:
    """A demo run whose local AWS is kept up for further runs (see bench.transitions)."""

    rows: int
    loop: bool
    result: Any
    console: TimedConsole
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    home: str = ""

    def close(self) -> None:
        import shutil

        from localaws import server

        local = server.current()
        if local is not None:
            local.stop()
        if self.home:
            shutil.rmtree(self.home, ignore_errors=True)


_SESSION: Session | None = None
_COMMANDS: dict[str, list[tuple[list[str], dict[str, str], str]]] = {}


def _record_job_commands() -> Any:
    """Wrap ``Job.run`` to record each job's commands; returns the original, to restore."""
    from localaws.sagemaker.jobs.runner import Job

    original = Job.run

    def run(self: Any, cmd: Any, *, env: dict[str, str], cwd: Path) -> Any:
        _COMMANDS.setdefault(self.name, []).append((list(map(str, cmd)), dict(env), str(cwd)))
        return original(self, cmd, env=env, cwd=cwd)

    Job.run = run  # type: ignore[method-assign]
    return original


def replay_alone(names: list[str]) -> dict[str, float]:
    """Run the recorded commands of ``names`` again, one at a time; seconds per job."""
    seconds = {}
    for name in names:
        total = 0.0
        for cmd, env, cwd in _COMMANDS.get(name, []):
            began = time.perf_counter()
            done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=False,  # noqa: S603
                                  stdin=subprocess.DEVNULL, timeout=600)
            total += time.perf_counter() - began
            if done.returncode != 0:
                raise RuntimeError(f"replaying {name} failed: {done.stderr[-1000:]!r}")
        seconds[name] = total
    return seconds


def session(rows: int, loop: bool, *, reuse_any: bool = False) -> Session:
    """Run the demo once per (rows, loop) and keep the server up; cached for this process.

    ``reuse_any``: any session this process already has will do. One process cannot boot the
    stack twice and still run its Lambdas: the domain package, imported once, keeps the boto3
    clients it made against the first server's port.
    """
    global _SESSION
    if _SESSION is not None and (reuse_any or (_SESSION.rows, _SESSION.loop) == (rows, loop)):
        return _SESSION
    close()
    from autoloop_cli.demo import lifecycle as demo
    from localaws.sagemaker.jobs import runner as sagemaker_jobs

    home = tempfile.mkdtemp(prefix="autoloop-bench-")
    os.environ["AUTOLOOP_LOCAL_HOME"] = home  # logs, sandboxes, endpoints: not the repo's .autoloop
    sagemaker_jobs.configure(work_root=home)
    sagemaker_jobs.reset_timings()
    console = TimedConsole(stages=10 if loop else 5)
    _COMMANDS.clear()
    original = _record_job_commands()
    try:
        # Without the MLflow server: the loop's own figures, comparable with earlier runs.
        result = demo.run(rows=rows, seed=7, timeout=300, console=console,  # type: ignore[arg-type]
                          keep_server=True, loop=loop, tracking=False)
    finally:
        from localaws.sagemaker.jobs.runner import Job

        Job.run = original  # type: ignore[method-assign]
    if result.status != "SUCCEEDED":
        close()
        raise RuntimeError(f"demo {result.status}: {console.buffer.getvalue()[-2000:]}")
    _SESSION = Session(rows, loop, result, console, sagemaker_jobs.job_timings(), home)
    return _SESSION


def close() -> None:
    global _SESSION
    if _SESSION is not None:
        _SESSION.close()
        _SESSION = None


def run(quick: bool = False) -> list[Row]:
    rows, loop = (1000, False) if quick else (2000, True)
    s = session(rows, loop)
    last = "DeployPipeline: blue/green" if loop else "TrainingPipeline"
    start, end = s.console.span("Uploading", last)
    wall = end - start
    in_window = {n: t for n, t in s.jobs.items() if loop is False or not n.endswith(BATCH_SUFFIXES)}
    inside = sum(t.get("compute_seconds", 0.0) for t in in_window.values())
    if quick:
        alone, alone_by_job = inside, {}
    else:
        progress(f"[loop] replaying the loop's {len(in_window)} ML jobs alone")
        alone_by_job = replay_alone(sorted(in_window))
        alone = sum(alone_by_job.values())
    overhead = (wall - alone) / wall
    stages = {title: round((e or 0) - b, 3) for title, b, e in s.console.marks}
    detail = {"rows": rows, "stages_seconds": stages,
              "jobs_in_loop_seconds": {n: t.get("compute_seconds") for n, t in s.jobs.items()},
              "jobs_alone_seconds": {n: round(v, 3) for n, v in alone_by_job.items()},
              "runs": [{"name": r.name, "seconds": round(r.seconds, 3), "transitions": r.transitions}
                       for r in s.result.runs],
              "demo_wall_seconds_incl_boot": round(s.result.wall_seconds, 3),
              "lambda_invocations": s.result.lambda_invocations,
              "failed_invocations_during_update": s.result.failed_invocations}
    what = "Full local loop: upload -> ... -> blue/green update" if loop else \
        "Local loop, quick: upload -> TrainingPipeline -> registered only"
    label = f"{what}, {rows:,} rows"
    baseline = "in-loop ML compute (quick: no replay)" if quick else "ML scripts' own compute, alone"
    note = "quick: partial loop" if quick else ""
    result = [
        Row("loop.wall", f"{label}: wall", wall, "s", baseline, alone, wall / alone, "<= 30 s on 2 cores",
            wall <= GOAL_WALL if loop else None, note, detail),
        Row("loop.overhead", f"{label}: orchestration overhead", overhead * 100, "%", baseline, alone, None,
            "<= 25% of wall", overhead <= GOAL_OVERHEAD if loop else None, note,
            {"baseline_unit": "s", "orchestration_seconds": wall - alone}),
    ]
    if not quick:
        result.append(Row("loop.ml_in_loop", "ML jobs' compute inside the loop (context)", inside, "s",
                          "the same commands alone", alone, inside / alone if alone else None,
                          "-", None, "2 cores shared with the orchestration"))
    return result
