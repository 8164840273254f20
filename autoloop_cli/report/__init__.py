"""The lifecycle report: one self-contained HTML file for one pipeline execution.

    autoloop report --execution-arn ARN [--out PATH]
    autoloop report --latest --stack-name STACK

It shows the state machine with the execution's path, a timeline of states and SageMaker
jobs, the evaluation (champion against challenger), drift per feature (baseline and current
distributions with the thresholds) and the endpoint's deployment history. Everything is read
through boto3 (:mod:`autoloop_cli.report.collect`), so the same command works against a running
local AWS (``AWS_ENDPOINT_URL``) and against a stack deployed on AWS; :mod:`.page` renders it.
"""

from __future__ import annotations

from pathlib import Path

from autoloop import adapters
from autoloop_cli.report.collect import Report, ReportError, gather, latest_execution
from autoloop_cli.report.page import SECTIONS, render

__all__ = ["SECTIONS", "Report", "ReportError", "gather", "latest_execution", "render", "write"]


def write(execution_arn: str, out: Path | str, stack_name: str | None = None) -> Path:
    """Gather the execution's lifecycle and write the HTML report to ``out``."""
    report = gather(adapters.client, execution_arn, stack_name=stack_name)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report), encoding="utf-8")
    return path
