"""The report as one self-contained HTML file: inline CSS and SVG, no script, no external URL.

Every text that comes from the run goes through :func:`esc`. Every section renders from the
:class:`~autoloop_cli.report.collect.Report` alone and says plainly when it has no data.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from datetime import datetime

from autoloop.gate import PROBABILITY_METRICS
from autoloop_cli.report import graph
from autoloop_cli.report.collect import Deployment, Evaluation, FeatureDrift, JobRun, Report

Row = tuple[str, str, datetime, datetime | None, str, int]  # label, kind, start, end, status, indent

GREEN, RED, BLUE, ORANGE, SLATE, GREY, INK = "#1d8102", "#d13212", "#0073bb", "#ec7211", "#5b7083", "#aab7b8", "#16191f"
SECTIONS = ("graph", "timeline", "evaluation", "drift", "deployments")

CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f2f3f3;color:#16191f;font:14px/1.45 "Helvetica Neue",Arial,"Liberation Sans",sans-serif}
header{background:#232f3e;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px;font-weight:600}
header .sub{color:#d5dbdb;font-size:13px;margin-top:4px}
main{padding:8px 32px 32px;max-width:1440px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 2px rgba(0,28,36,.25);margin:18px 0;padding:16px 22px}
section h2{margin:0 0 4px;font-size:18px;font-weight:600}
section p.lead{margin:0 0 12px;color:#545b64;font-size:13px}
.cards{display:flex;gap:14px;flex-wrap:wrap;margin:16px 0 0}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 2px rgba(0,28,36,.25);padding:10px 16px;min-width:170px}
.card .k{color:#545b64;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:20px;font-weight:600;margin-top:2px}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600;color:#fff;
vertical-align:1px}
.ok{background:#1d8102}.bad{background:#d13212}.warn{background:#ec7211}.info{background:#5b7083}
.empty{color:#545b64;background:#f8f8f8;border:1px dashed #aab7b8;border-radius:6px;padding:14px 16px}
.graphs{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
.graphs figure{margin:0}.graphs figcaption{font-weight:600;margin-bottom:6px}
.legend{display:flex;gap:16px;flex-wrap:wrap;font-size:12px;color:#545b64;margin:2px 0 10px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:5px;vertical-align:-1px}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #eaeded;vertical-align:top}
th{color:#545b64;font-weight:600;background:#fafafa}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.rollback td{background:#fdf1ef}
table.lineage{margin-top:12px}table.lineage code{word-break:break-all}tr.differs td{background:#fff4e5}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:14px}
.feature{border:1px solid #eaeded;border-radius:6px;padding:8px 10px}
.feature h3{margin:0 0 2px;font-size:14px}
.feature .fig{font-size:12px;color:#545b64}
.note{font-size:12px;color:#545b64;margin-top:8px}
code{font:12px Menlo,Consolas,"DejaVu Sans Mono",monospace;background:#f2f3f3;padding:1px 4px;border-radius:3px;
word-break:break-all}
svg text{font-family:"Helvetica Neue",Arial,"Liberation Sans",sans-serif}
.cols{display:flex;gap:28px;flex-wrap:wrap;align-items:flex-start}
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _secs(value: float | None) -> str:
    if value is None:
        return "running"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s" if value < 120 else f"{value / 60:.1f} min"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if value else "-"


def _status(status: str) -> str:
    cls = {"SUCCEEDED": "ok", "Completed": "ok", "InService": "ok", "FAILED": "bad", "TIMED_OUT": "bad",
           "ABORTED": "bad", "Failed": "bad", "RUNNING": "info"}.get(status, "info")
    return f'<span class="badge {cls}">{esc(status)}</span>'


def _empty(text: str) -> str:
    return f'<div class="empty">{esc(text)}</div>'


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# ----------------------------------------------------------------------------- the page
def render(report: Report) -> str:
    run = report.execution
    trigger = (run.input.get("trigger") or {}).get("type", "")
    title = f"Autoloop lifecycle report: {run.name}"
    facts = [f"started {esc(_when(run.start))}"]
    facts += [f"trigger {esc(trigger)}"] if trigger else []
    facts += [f"stack {esc(report.stack)}"] if report.stack else []
    facts.append(f"report generated {esc(_when(report.generated))}")
    head = (f'<header><h1>{esc(title)}</h1><div class="sub">{esc(run.state_machine)} execution '
            f'<code style="background:#37475a;color:#fff">{esc(run.arn)}</code><br>{" · ".join(facts)}</div></header>')
    body = [_cards(report), _graph_section(report), _timeline_section(report), _evaluation_section(report),
            _drift_section(report), _deployments_section(report)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body>{head}<main>{''.join(body)}</main></body></html>\n")


def _cards(report: Report) -> str:
    run, ev = report.execution, report.evaluation
    cards = [("Execution", _status(run.status)), ("Duration", esc(_secs(run.seconds))),
             ("States / jobs", esc(f"{len(run.states)} / {len(run.jobs)}"))]
    if ev and ev.metrics.get(ev.metric_name) is not None:
        cards.append((f"{ev.metric_name} (challenger)", esc(f"{ev.metrics[ev.metric_name]:.4f}")))
    if report.drift:
        flagged = sum(1 for f in report.drift.features if f.drifted)
        cards.append(("Features drifted", esc(f"{flagged} of {len(report.drift.features)}")))
    serving = report.endpoint.get("EndpointConfigName")
    if serving:
        cards.append(("Serving now", esc(serving)))
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{v}</div></div>' for k, v in cards) + "</div>"


def _section(key: str, title: str, lead: str, content: str) -> str:
    return (f'<section id="{key}" data-section="{key}"><h2>{esc(title)}</h2>'
            f'<p class="lead">{esc(lead)}</p>{content}</section>')


# ----------------------------------------------------------------------------- graph
def _graph_section(report: Report) -> str:
    figures = []
    for run, label in [(report.execution, "this execution"), *[(r, "deployed this run's model")
                                                              for r in report.related]]:
        if not run.definition.get("States"):
            figures.append(_empty(f"{run.state_machine}: the state machine's definition is not available."))
            continue
        durations = {s.name: s.seconds for s in run.states if s.seconds is not None}
        svg = graph.svg(run.definition, [s.name for s in run.states], run.failed_states, durations,
                        title=f"{run.state_machine} {run.name}")
        caption = f"{run.state_machine} · {run.name} ({label}) {_status(run.status)}"
        if run.error:
            caption += f'<div class="note">error <b>{esc(run.error)}</b>: {esc(run.cause[:400])}</div>'
        width = graph.layout(run.definition).width
        figures.append(f'<figure style="max-width:{width:.0f}px"><figcaption>{caption}</figcaption>{svg}</figure>')
    legend = ('<div class="legend"><span><i style="background:#e6f4e0;border:2px solid #1d8102"></i>on the '
              'execution\'s path</span><span><i style="background:#fde8e6;border:2px solid #d13212"></i>failed'
              '</span><span><i style="background:#fff;border:1px solid #aab7b8"></i>not run</span>'
              '<span>dashed arrow: Catch</span></div>')
    return _section("graph", "State machine", "The definition as deployed (describe_state_machine), with the path this "
                    "execution took (get_execution_history) and each state's duration.",
                    legend + '<div class="graphs">' + "".join(figures) + "</div>")


# ----------------------------------------------------------------------------- timeline
def _nice_step(span: float, target: int = 8) -> float:
    raw = max(span, 1e-3) / target
    power = 10 ** math.floor(math.log10(raw))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def _timeline_section(report: Report) -> str:
    runs = [report.execution, *report.related]
    rows: list[Row] = []
    for run in runs:
        rows.append((f"{run.state_machine} · {run.name}", "run", run.start, run.stop, run.status, 0))
        by_state: dict[str, list[JobRun]] = {}
        for job in run.jobs:
            by_state.setdefault(job.state, []).append(job)
        for state in run.states:
            rows.append((state.name, "state-failed" if state.failed else "state", state.entered, state.exited,
                         state.type, 1))
            for job in by_state.pop(state.name, []):
                rows += _job_rows(job)
        for jobs in by_state.values():
            for job in jobs:
                rows += _job_rows(job)
    if not rows:
        return _section("timeline", "Timeline", "", _empty("No states were entered."))
    t0 = min(r[2] for r in rows)
    t1 = max((r[3] or r[2]) for r in rows)
    span = max((t1 - t0).total_seconds(), 0.001)
    label_w, chart_w, row_h, top = 300, 900, 22, 28
    width, height = label_w + chart_w + 90, top + row_h * len(rows) + 10
    scale = chart_w / span
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img"><title>timeline</title>']
    step = _nice_step(span)
    tick = 0.0
    while tick <= span + 1e-9:
        x = label_w + tick * scale
        out.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 6}" stroke="#eaeded"/>'
                   f'<text x="{x:.1f}" y="{top - 10}" font-size="11" fill="#545b64" text-anchor="middle">'
                   f'{tick:g} s</text>')
        tick += step
    for i, (label, kind, start, end, status, indent) in enumerate(rows):
        y = top + i * row_h
        x0 = label_w + (start - t0).total_seconds() * scale
        seconds = (end - start).total_seconds() if end else None
        w = max(2.0, (seconds or 0.0) * scale)
        weight = ' font-weight="600"' if kind == "run" else ""
        fill = {"run": "#232f3e", "state": GREEN, "state-failed": RED, "job": BLUE, "job-failed": RED,
                "queue": "#b6d7ea"}[kind]
        name = label if len(label) <= 46 else label[:45] + "…"
        out.append(f'<g class="bar {kind}"><title>{esc(label)}: {esc(_secs(seconds))} ({esc(status)})</title>'
                   f'<text x="{8 + indent * 16}" y="{y + 15}" font-size="12"{weight} fill="{INK}">{esc(name)}</text>'
                   f'<rect x="{x0:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" rx="3" fill="{fill}" '
                   f'opacity="{0.9 if kind != "run" else 0.75}"/>'
                   f'<text x="{x0 + w + 6:.1f}" y="{y + 15}" font-size="11" fill="#545b64">{esc(_secs(seconds))}'
                   f'</text></g>')
    out.append("</svg>")
    legend = (f'<div class="legend"><span><i style="background:{GREEN}"></i>state</span><span><i '
              f'style="background:{BLUE}"></i>SageMaker job running</span><span><i style="background:#b6d7ea"></i>'
              f'job created, waiting to start</span><span><i style="background:{RED}"></i>failed</span></div>')
    return _section("timeline", "Timeline", "Every state entered (execution history) and every SageMaker job the run "
                    "launched (describe_*_job), on one time axis from the execution's start.", legend + "".join(out))


def _job_rows(job: JobRun) -> list[Row]:
    if job.started is None:
        return []
    failed = job.status in ("Failed", "Stopped")
    rows: list[Row] = []
    if job.created and job.started and (job.started - job.created).total_seconds() > 0.05:
        rows.append((f"{job.name} (waiting)", "queue", job.created, job.started, job.status, 2))
    rows.append((f"{job.kind} job {job.name}", "job-failed" if failed else "job", job.started, job.ended,
                 job.status, 2))
    return rows


# ----------------------------------------------------------------------------- evaluation
def _evaluation_section(report: Report) -> str:
    ev = report.evaluation
    lead = ("The challenger (this run's model) and the champion (the Approved package the quality gate "
            "compared it with), both scored by this run's evaluate job on the same held-out rows: "
            "evaluation.json and champion_evaluation.json.")
    if ev is None:
        return _section("evaluation", "Evaluation: champion vs challenger", lead,
                        _empty(report.notes.get("evaluation", "No evaluation in this execution.")))
    names = list(ev.metrics) + [n for n in ev.champion_metrics if n not in ev.metrics]
    challenger_value = ev.metrics.get(ev.metric_name)
    champion_value = ev.champion_metrics.get(ev.metric_name)
    verdict = ("passed: registered" if ev.passed else "rejected" if ev.passed is False else "not decided")
    if ev.verdict and ev.passed is False:
        verdict = f"rejected: {ev.verdict}"
    way = f" ({ev.direction} is better)" if ev.direction else ""
    gate = [f"Gate on <b>{esc(ev.metric_name)}</b>{esc(way)}: challenger {esc(_num(challenger_value))}"]
    if ev.champion:
        where = (f" on the same {ev.holdout_rows} holdout rows" if ev.same_holdout and ev.holdout_rows
                 else " on the same holdout rows" if ev.same_holdout else " (as registered, on other rows)")
        gate[0] += f" vs champion {esc(_num(champion_value))}{esc(where)}"
    else:
        gate[0] += f" on {ev.holdout_rows} holdout rows" if ev.holdout_rows else ""
    if ev.threshold is not None:
        gate.append(f"threshold {esc(_num(ev.threshold, 3))}")
    if not ev.champion:
        gate.append("no champion yet (first model)")
    badge = "ok" if ev.passed else "bad" if ev.passed is False else "info"
    head = f'<p>{" · ".join(gate)} → <span class="badge {badge}">{esc(verdict)}</span></p>'
    if ev.reason:
        head += f'<p class="gate-reason">{esc(ev.reason)}</p>'
    rows = []
    for name in names:
        a, b = ev.champion_metrics.get(name), ev.metrics.get(name)
        diff = "" if a is None or b is None else f"{b - a:+.4f}"
        mark = " ◆" if name == ev.metric_name else ""
        rows.append(f"<tr><td>{esc(name)}{mark}</td><td class=\"num\">{esc(_num(a))}</td>"
                    f"<td class=\"num\">{esc(_num(b))}</td><td class=\"num\">{esc(diff)}</td></tr>")
    table = ('<table class="metrics"><tr><th>metric</th><th class="num">champion</th><th class="num">challenger</th>'
             '<th class="num">difference</th></tr>' + "".join(rows) + "</table>")
    who = (f'<div class="note">challenger <code>{esc(ev.challenger)}</code>'
           + (f'<br>champion <code>{esc(ev.champion)}</code>' if ev.champion else "")
           + (f'<br>evaluation <code>{esc(ev.evaluation_uri)}</code>' if ev.evaluation_uri else "") + "</div>")
    extra = " ".join(report.notes.get(k) or "" for k in ("champion", "lineage-challenger", "lineage-champion"))
    return _section("evaluation", "Evaluation: champion vs challenger", lead,
                    head + '<div class="cols"><div style="flex:1 1 420px">' + table + who + _lineage_table(ev)
                    + (f'<div class="note">{esc(extra.strip())}</div>' if extra.strip() else "") + "</div><div>"
                    + _metric_bars(ev, names) + _confusion(ev) + "</div></div>")


#: The lineage a package records (autoloop.registry.Lineage), in the order the table shows it.
LINEAGE_ROWS = (("task", "task"), ("framework", "framework"), ("training_image", "training image"),
                ("inference_image", "inference image"), ("entry_point", "entry point"),
                ("bundle_sha256", "script bundle sha256"), ("hyperparameters", "hyperparameters"),
                ("source", "dataset"), ("source_version", "dataset version"), ("training_job", "training job"))


def _lineage_table(ev: Evaluation) -> str:
    """What produced the champion and the challenger, side by side; a differing row is marked, so
    a comparison of two different scripts, images or frameworks says so."""
    if not ev.lineage and not ev.champion_lineage:
        return ""
    rows = []
    for key, label in LINEAGE_ROWS:
        a, b = ev.champion_lineage.get(key), ev.lineage.get(key)
        if a is None and b is None:
            continue
        differs = ev.champion is not None and a != b and key not in {"source", "source_version", "training_job"}
        mark = ' class="differs" title="differs from the champion\'s"' if differs else ""
        rows.append(f"<tr{mark}><td>{esc(label)}{' ≠' if differs else ''}</td><td><code>{esc(a or '-')}</code></td>"
                    f"<td><code>{esc(b or '-')}</code></td></tr>")
    return ('<table class="lineage"><tr><th>lineage</th><th>champion</th><th>challenger</th></tr>'
            + "".join(rows) + "</table>")


def _metric_bars(ev: Evaluation, names: list[str]) -> str:
    # Bars on a 0..1 scale: only for fractions (not rmse, nor r2, which can be negative).
    shown = [n for n in names if n in PROBABILITY_METRICS]
    if not shown:
        return ""
    label_w, bar_w, pair_h = 90, 360, 34
    width, height = label_w + bar_w + 70, 24 + pair_h * len(shown)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="metric-bars" width="{width}" height="{height}" '
           f'role="img"><title>metrics</title>']
    out.append(f'<text x="{label_w}" y="12" font-size="11" fill="{SLATE}">■ champion</text>'
               f'<text x="{label_w + 90}" y="12" font-size="11" fill="{ORANGE}">■ challenger</text>')
    for i, name in enumerate(shown):
        y = 22 + i * pair_h
        out.append(f'<text x="0" y="{y + 16}" font-size="12" fill="{INK}">{esc(name)}</text>')
        for j, (value, colour) in enumerate(((ev.champion_metrics.get(name), SLATE), (ev.metrics.get(name), ORANGE))):
            if value is None:
                continue
            w = max(1.0, value * bar_w)
            out.append(f'<rect class="metric-bar" x="{label_w}" y="{y + 3 + j * 13}" width="{w:.1f}" height="11" '
                       f'fill="{colour}"/><text x="{label_w + w + 4:.1f}" y="{y + 12 + j * 13}" font-size="10" '
                       f'fill="#545b64">{value:.3f}</text>')
        if name == ev.metric_name and ev.threshold is not None:
            x = label_w + ev.threshold * bar_w
            out.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 30}" stroke="{RED}" stroke-width="1.5" '
                       f'stroke-dasharray="3 2"/><text x="{x + 3:.1f}" y="{y - 1}" font-size="10" fill="{RED}">'
                       f'threshold {ev.threshold:g}</text>')
    out.append("</svg>")
    return "".join(out)


def _confusion(ev: Evaluation) -> str:
    if not ev.confusion:
        return ""
    labels = sorted(ev.confusion)
    cells = "".join(f"<tr><th>actual {esc(a)}</th>" + "".join(
        f'<td class="num">{ev.confusion[a].get(p, 0):g}</td>' for p in labels) + "</tr>" for a in labels)
    return ('<div class="note">Challenger confusion matrix (test split)</div><table style="width:auto">'
            "<tr><th></th>" + "".join(f'<th class="num">predicted {esc(p)}</th>' for p in labels) + "</tr>"
            + cells + "</table>")


# ----------------------------------------------------------------------------- drift
def _drift_section(report: Report) -> str:
    lead = ("Model Monitor data quality: the baseline's statistics.json (the training data) and the monitoring "
            "execution's statistics.json (the captured traffic), on common bins; the measured drift distance "
            "against the feature's threshold.")
    d = report.drift
    if d is None:
        return _section("drift", "Drift per feature", lead,
                        _empty(report.notes.get("drift", "No Model Monitor report for this run.")))
    if not d.features:
        return _section("drift", "Drift per feature", lead,
                        _empty(f"Monitoring execution {d.job_name} has no feature statistics to compare."))
    flagged = [f.name for f in d.features if f.drifted]
    intro = (f"<p>Monitoring job <code>{esc(d.job_name)}</code> on endpoint <b>{esc(d.endpoint)}</b> "
             f"(schedule {esc(d.schedule)}), {esc(_when(d.when))}: {_status(d.status)} · drifted: "
             f"<b>{esc(', '.join(flagged) or 'none')}</b></p>")
    legend = (f'<div class="legend"><span><i style="background:{SLATE}"></i>baseline (training data)</span>'
              f'<span><i style="background:{ORANGE}"></i>current (captured traffic)</span>'
              f'<span><i style="background:{RED}"></i>distance above its threshold</span>'
              f'<span>│ threshold (calibrated) ┆ Model Monitor default</span></div>')
    cards = "".join(_feature(f) for f in d.features)
    source = (f'<div class="note">Distances: {esc(d.distance_source or "not published")} (Model Monitor\'s '
              f'comparison method; with Robust, the L-infinity distance less its sampling-noise allowance, so 0 '
              f'means within noise). Report '
              f'<code>{esc(d.report_uri)}</code><br>baseline <code>{esc(d.baseline_uri)}</code>'
              f'<br>constraints <code>{esc(d.constraints_uri)}</code></div>')
    return _section("drift", "Drift per feature", lead, intro + legend + f'<div class="grid">{cards}</div>' + source)


def _feature(f: FeatureDrift) -> str:
    over = f.distance is not None and f.threshold is not None and f.distance > f.threshold
    badge = ('<span class="badge bad">drift</span>' if f.drifted else
             '<span class="badge warn">above threshold</span>' if over else '<span class="badge ok">ok</span>')
    other = [c for c in f.checks if c != "baseline_drift_check"]
    checks = f'<div class="fig">also violated: {esc(", ".join(other))}</div>' if other else ""
    return (f'<div class="feature drift-plot" data-feature="{esc(f.name)}"><h3>{esc(f.name)} {badge}</h3>'
            f'<div class="fig">{esc(f.kind)} · baseline n={f.baseline_n:,.0f} · current n={f.current_n:,.0f}</div>'
            + _histogram(f) + _meter(f) + checks + "</div>")


def _histogram(f: FeatureDrift) -> str:
    width, height, left, bottom = 400, 150, 34, 26
    plot_w, plot_h = width - left - 18, height - bottom - 8
    n = len(f.baseline)
    top_value = max([*f.baseline, *f.current, 0.01])
    slot = plot_w / max(n, 1)
    bar = slot * 0.4
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="hist" width="{width}" height="{height}" role="img">'
           f'<title>{esc(f.name)}: baseline vs current</title>']
    for frac in (0.0, 0.5, 1.0):
        y = 8 + plot_h * (1 - frac)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 6}" y2="{y:.1f}" stroke="#eaeded"/>'
                   f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" fill="#545b64" text-anchor="end">'
                   f'{top_value * frac * 100:.0f}%</text>')
    for i in range(n):
        x = left + i * slot + slot * 0.1
        for j, (value, colour, cls) in enumerate(((f.baseline[i], SLATE, "base"), (f.current[i], ORANGE, "cur"))):
            h = plot_h * value / top_value
            out.append(f'<rect class="{cls}" x="{x + j * bar:.1f}" y="{8 + plot_h - h:.1f}" width="{bar:.1f}" '
                       f'height="{h:.1f}" fill="{colour}"><title>{esc(f.labels[i])}: {value * 100:.1f}%</title></rect>')
    y_axis = 8 + plot_h
    out.append(f'<line x1="{left}" y1="{y_axis}" x2="{width - 6}" y2="{y_axis}" stroke="#879596"/>')
    if f.kind == "numeric":  # bin edges: labels has n + 1 entries
        for i in range(0, n + 1, max(1, n // 4)):
            x = left + i * slot
            out.append(f'<text x="{x:.1f}" y="{y_axis + 14}" font-size="10" fill="#545b64" text-anchor="middle">'
                       f'{esc(f.labels[i])}</text>')
    else:
        for i, label in enumerate(f.labels):
            x = left + (i + 0.5) * slot
            short = label if len(label) <= max(4, int(slot / 6)) else label[: max(3, int(slot / 6) - 1)] + "…"
            out.append(f'<text x="{x:.1f}" y="{y_axis + 14}" font-size="10" fill="#545b64" text-anchor="middle">'
                       f'{esc(short)}</text>')
    out.append("</svg>")
    return "".join(out)


def _meter(f: FeatureDrift) -> str:
    if f.distance is None:
        return '<div class="fig">distance: not published for this feature</div>'
    width, left = 400, 70
    top = max(f.distance, f.threshold or 0.0, f.default_threshold or 0.0) * 1.15 or 1.0
    scale = (width - left - 10) / top
    over = f.threshold is not None and f.distance > f.threshold
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="meter" width="{width}" height="40" role="img">'
           f'<title>{esc(f.name)} distance {f.distance:.4f}</title>'
           f'<text x="0" y="17" font-size="11" fill="{INK}">distance</text>'
           f'<rect x="{left}" y="7" width="{width - left - 10}" height="14" fill="#f2f3f3" rx="2"/>'
           f'<rect class="distance" x="{left}" y="7" width="{max(1.0, f.distance * scale):.1f}" height="14" '
           f'fill="{RED if over else GREEN}" rx="2"/>']
    if f.threshold is not None:
        x = left + f.threshold * scale
        out.append(f'<line class="threshold" x1="{x:.1f}" y1="3" x2="{x:.1f}" y2="25" stroke="{INK}" '
                   f'stroke-width="2"/>')
    if f.default_threshold is not None and f.default_threshold != f.threshold:
        x = left + f.default_threshold * scale
        out.append(f'<line x1="{x:.1f}" y1="3" x2="{x:.1f}" y2="25" stroke="{INK}" stroke-width="1.2" '
                   f'stroke-dasharray="2 2"/>')
    out.append("</svg>")
    text = f"distance {f.distance:.4f}"
    if f.threshold is not None:
        text += f" {'>' if over else '≤'} threshold {f.threshold:.3f}"
    if f.default_threshold is not None and f.default_threshold != f.threshold:
        text += f" (Model Monitor default {f.default_threshold:.3f})"
    return "".join(out) + f'<div class="fig">{esc(text)}</div>'


# ----------------------------------------------------------------------------- deployments
def _deployments_section(report: Report) -> str:
    lead = ("Every DeployPipeline execution of this endpoint: what it did, and which model package served "
            "from when (blue/green updates, rollbacks).")
    deps = report.deployments
    if not deps:
        return _section("deployments", "Deployment history", lead,
                        _empty(report.notes.get("deployments", "No deployments.")))
    return _section("deployments", "Deployment history", lead, _serving_chart(report, deps) + _deploy_table(deps))


def _serving_chart(report: Report, deps: list[Deployment]) -> str:
    served = [d for d in deps if d.serving_from is not None and d.action in ("create", "update")]
    if not served:
        return _empty("No deployment has put a model in service yet.")
    t0 = min(d.start for d in deps)
    t_end = max([report.generated, *[d.stop or d.start for d in deps]])
    span = max((t_end - t0).total_seconds(), 0.001)
    versions = sorted({d.package_version for d in served if d.package_version is not None})
    label_w, chart_w, row_h, top = 150, 1000, 26, 26
    width, height = label_w + chart_w + 20, top + row_h * (len(versions) + 1) + 16
    scale = chart_w / span
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="serving" width="{width}" height="{height}" role="img">'
           '<title>which model served when</title>']
    step = _nice_step(span)
    tick = 0.0
    while tick <= span + 1e-9:
        x = label_w + tick * scale
        out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 14}" stroke="#eaeded"/>'
                   f'<text x="{x:.1f}" y="{top - 8}" font-size="11" fill="#545b64" text-anchor="middle">+{tick:g} s'
                   f'</text>')
        tick += step
    row = {v: i for i, v in enumerate(versions)}
    for i, d in enumerate(served):
        start = d.serving_from or d.start
        end = served[i + 1].serving_from if i + 1 < len(served) else t_end
        y = top + row.get(d.package_version or 0, 0) * row_h
        x0 = label_w + (start - t0).total_seconds() * scale
        w = max(2.0, ((end or t_end) - start).total_seconds() * scale)
        out.append(f'<g class="serving-bar"><title>v{d.package_version} served from {esc(_when(start))}</title>'
                   f'<rect x="{x0:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" rx="3" fill="{GREEN}"/>'
                   f'</g>')
    for v, i in row.items():
        out.append(f'<text x="6" y="{top + i * row_h + 17}" font-size="12" fill="{INK}">package v{v}</text>')
    y_events = top + len(versions) * row_h
    out.append(f'<text x="6" y="{y_events + 17}" font-size="12" fill="{INK}">deploy runs</text>')
    for d in deps:
        x = label_w + (d.start - t0).total_seconds() * scale
        colour = RED if d.status != "SUCCEEDED" or d.rolled_back else BLUE
        shape = "▼" if d.rolled_back or d.status != "SUCCEEDED" else "●"
        out.append(f'<text class="deploy-mark" x="{x:.1f}" y="{y_events + 18}" font-size="13" fill="{colour}" '
                   f'text-anchor="middle"><title>{esc(d.execution)}: {esc(d.action)} {esc(d.status)}</title>'
                   f'{shape}</text>')
    out.append("</svg>")
    legend = (f'<div class="legend"><span><i style="background:{GREEN}"></i>serving</span>'
              f'<span style="color:{BLUE}">● deploy run</span><span style="color:{RED}">▼ failed or '
              f'rolled back</span><span>time from the first deployment</span></div>')
    return legend + "".join(out)


def _deploy_table(deps: Iterable[Deployment]) -> str:
    rows = []
    for d in deps:
        outcome = d.reason
        if d.status != "SUCCEEDED":
            outcome = f"{d.error}: {d.cause}"[:300]
        if d.rolled_back and d.status != "SUCCEEDED":
            outcome = f"rolled back, {d.previous_config or 'the previous model'} kept serving. " + outcome
        cls = ' class="rollback"' if d.rolled_back or d.status != "SUCCEEDED" else ""
        package = f"v{d.package_version}" if d.package_version is not None else "-"
        rows.append(f"<tr{cls} data-deploy=\"{esc(d.execution)}\"><td>{esc(_when(d.start))}</td>"
                    f"<td>{_status(d.status)}</td><td>{esc(d.action)}</td><td>{esc(package)}</td>"
                    f"<td><code>{esc(d.config_name or '-')}</code></td><td><code>{esc(d.previous_config or '-')}</code>"
                    f"</td><td>{esc(d.run_id or '-')}</td><td>{esc(outcome)}</td></tr>")
    return ('<table class="deploys"><tr><th>started</th><th>status</th><th>action</th><th>package</th>'
            "<th>endpoint config</th><th>replaced</th><th>training run</th><th>what happened</th></tr>"
            + "".join(rows) + "</table>")

