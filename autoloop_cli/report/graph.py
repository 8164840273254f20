"""A state machine's ASL drawn as inline SVG, boxes and arrows like the Step Functions console.

Layout (a small layered layout, no graph library):
- the *spine* is the longest path from ``StartAt`` to a Succeed (or ``End``) state along
  ``Next``/``Choices``/``Default`` (not ``Catch``): the happy path, drawn straight down the
  left column;
- every state's layer (row) is its longest distance from the start, ignoring back edges;
- the other states of a row take the free columns to the right, nearest the mean column of
  the states that lead to them;
- arrows are orthogonal: between adjacent rows they bend once in the gap between the rows;
  longer ones run down the gap beside the target's column, so the many ``Catch`` arrows into
  one failure handler merge into one line, as in the console.

Parallel and Map states are drawn as one box (their branches are not expanded).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

START, END = "Start", "End"
NODE_W, NODE_H = 164, 40
GAP_X, GAP_Y = 34, 28
MARGIN = 24

# Colours: the console's palette (succeeded green, failed red, not run grey).
VISITED = ("#e6f4e0", "#1d8102", "#16191f")
FAILED = ("#fde8e6", "#d13212", "#16191f")
IDLE = ("#ffffff", "#aab7b8", "#687078")
EDGE_IDLE, EDGE_VISITED = "#aab7b8", "#1d8102"


@dataclass
class Node:
    name: str
    type: str
    layer: int = 0
    col: int = 0

    @property
    def x(self) -> float:
        return MARGIN + GAP_X + self.col * (NODE_W + GAP_X)

    @property
    def y(self) -> float:
        return MARGIN + self.layer * (NODE_H + GAP_Y)

    @property
    def cx(self) -> float:
        return self.x + NODE_W / 2


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    kind: str  # next | choice | default | catch | end


@dataclass
class Layout:
    nodes: dict[str, Node]
    edges: list[Edge]
    spine: list[str]
    width: float = 0.0
    height: float = 0.0
    routes: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)


def edges_of(states: dict[str, Any], start: str) -> list[Edge]:
    found: list[Edge] = [Edge(START, start, "next")]
    seen = {(START, start)}

    def add(src: str, dst: str | None, kind: str) -> None:
        if dst and dst in states and (src, dst) not in seen:
            seen.add((src, dst))
            found.append(Edge(src, dst, kind))

    for name, state in states.items():
        add(name, state.get("Next"), "next")
        for choice in state.get("Choices") or []:
            add(name, choice.get("Next"), "choice")
        add(name, state.get("Default"), "default")
        for catch in state.get("Catch") or []:
            add(name, catch.get("Next"), "catch")
        if state.get("Type") in ("Succeed", "Fail") or state.get("End"):
            found.append(Edge(name, END, "end"))
    return found


def _spine(states: dict[str, Any], edges: list[Edge], start: str) -> list[str]:
    """The longest non-Catch path from the start to a successful end."""
    out: dict[str, list[str]] = {}
    for e in edges:
        if e.kind != "catch" and e.dst != END and e.src != START:
            out.setdefault(e.src, []).append(e.dst)
    best: dict[str, list[str] | None] = {}

    def walk(name: str, stack: frozenset[str]) -> list[str] | None:
        if name in best:
            return best[name]
        state = states[name]
        result: list[str] | None = None
        if state.get("Type") == "Succeed" or (state.get("End") and state.get("Type") != "Fail"):
            result = [name]
        for nxt in out.get(name, []):
            if nxt in stack:
                continue
            tail = walk(nxt, stack | {nxt})
            if tail is not None and (result is None or len(tail) + 1 > len(result)):
                result = [name, *tail]
        best[name] = result
        return result

    return walk(start, frozenset({start})) or [start]


def layout(definition: dict[str, Any]) -> Layout:
    states: dict[str, Any] = dict(definition.get("States") or {})
    start = str(definition.get("StartAt") or next(iter(states), ""))
    if start not in states:
        raise ValueError(f"StartAt {start!r} is not a state of the definition")
    edges = edges_of(states, start)
    spine = [START, *_spine(states, edges, start), END]
    nodes = {START: Node(START, "Start")}
    nodes.update({name: Node(name, str(s.get("Type", "Task"))) for name, s in states.items()})
    nodes[END] = Node(END, "End")
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        succ[e.src].append(e.dst)

    # Back edges: found by a depth-first walk that tries the spine's successor first.
    back: set[tuple[str, str]] = set()
    colour: dict[str, int] = {}
    on_spine = {a: b for a, b in zip(spine, spine[1:], strict=False)}

    def dfs(name: str) -> None:
        colour[name] = 1
        children = sorted(succ[name], key=lambda d: d != on_spine.get(name))
        for child in children:
            if colour.get(child) == 1:
                back.add((name, child))
            elif child not in colour:
                dfs(child)
        colour[name] = 2

    dfs(START)
    for name in nodes:  # states nothing leads to
        if name not in colour:
            dfs(name)
    forward = [e for e in edges if (e.src, e.dst) not in back]
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for e in forward:
        preds[e.dst].append(e.src)

    layer: dict[str, int] = {}

    def depth(name: str) -> int:
        if name not in layer:
            layer[name] = 0  # guards against a cycle the walk missed
            layer[name] = max((depth(p) + 1 for p in preds[name]), default=0)
        return layer[name]

    for name in nodes:
        depth(name)
    if layer[END] <= max(v for k, v in layer.items() if k != END):
        layer[END] = max(v for k, v in layer.items() if k != END) + 1
    spine_set = set(spine)
    rows: dict[int, list[str]] = {}
    for name, node in nodes.items():  # definition order
        node.layer = layer[name]
        rows.setdefault(layer[name], []).append(name)
    for row in sorted(rows):
        taken = {0} if any(n in spine_set for n in rows[row]) else set()
        others = [n for n in rows[row] if n not in spine_set]
        want = {n: max(1.0, _mean(nodes[p].col for p in preds[n] if nodes[p].layer < row)) for n in others}
        for name in sorted(others, key=lambda n: want[n]):
            col = min((c for c in range(1, len(nodes) + 1) if c not in taken),
                      key=lambda c: (abs(c - want[name]), c))
            nodes[name].col = col
            taken.add(col)
    result = Layout(nodes, edges, spine)
    cols = max(n.col for n in nodes.values()) + 1
    result.width = 2 * MARGIN + GAP_X + cols * (NODE_W + GAP_X)
    result.height = 2 * MARGIN + (layer[END] + 1) * (NODE_H + GAP_Y) - GAP_Y
    occupied = {(n.layer, n.col) for n in nodes.values()}
    for e in edges:
        result.routes[(e.src, e.dst)] = _route(nodes[e.src], nodes[e.dst], occupied)
    return result


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


def _route(a: Node, b: Node, occupied: set[tuple[int, int]]) -> list[tuple[float, float]]:
    top, bottom = a.y + NODE_H, b.y
    below_a, above_b = top + GAP_Y / 2, bottom - GAP_Y / 2
    if b.layer > a.layer:
        clear = all((row, a.col) not in occupied for row in range(a.layer + 1, b.layer))
        if a.col == b.col and clear:
            return [(a.cx, top), (b.cx, bottom)]
        if b.layer == a.layer + 1:
            return [(a.cx, top), (a.cx, below_a), (b.cx, below_a), (b.cx, bottom)]
        lane = b.x - GAP_X / 2 if b.col > a.col else b.x + NODE_W + GAP_X / 2
        return [(a.cx, top), (a.cx, below_a), (lane, below_a), (lane, above_b), (b.cx, above_b), (b.cx, bottom)]
    # A loop back up: out to the left margin, up, and in from above.
    lane = MARGIN + GAP_X / 2 - 8
    return [(a.cx, top), (a.cx, below_a), (lane, below_a), (lane, above_b), (b.cx, above_b), (b.cx, bottom)]


def _path_d(points: list[tuple[float, float]], radius: float = 6.0) -> str:
    """An orthogonal polyline with rounded corners."""
    d = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for i in range(1, len(points) - 1):
        (x0, y0), (x1, y1), (x2, y2) = points[i - 1], points[i], points[i + 1]
        r = min(radius, abs(x1 - x0) / 2 + abs(y1 - y0) / 2, abs(x2 - x1) / 2 + abs(y2 - y1) / 2)
        ax = x1 - r * _sign(x1 - x0)
        ay = y1 - r * _sign(y1 - y0)
        bx = x1 + r * _sign(x2 - x1)
        by = y1 + r * _sign(y2 - y1)
        d.append(f"L{ax:.1f},{ay:.1f} Q{x1:.1f},{y1:.1f} {bx:.1f},{by:.1f}")
    d.append(f"L{points[-1][0]:.1f},{points[-1][1]:.1f}")
    return " ".join(d)


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def svg(definition: dict[str, Any], visited: list[str], failed: Iterable[str] = (),
        durations: dict[str, float] | None = None, title: str = "") -> str:
    """The graph with the execution's path: ``visited`` states in order, ``failed`` in red."""
    lay = layout(definition)
    failed_set = set(failed)
    seen = set(visited)
    walked = set(zip([START, *visited], visited, strict=False))
    if visited:
        seen.add(START)
        if (visited[-1], END) in {(e.src, e.dst) for e in lay.edges}:
            seen.add(END)
            walked.add((visited[-1], END))
    durations = durations or {}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="asl" role="img" width="{lay.width:.0f}" '
           f'height="{lay.height:.0f}" viewBox="0 0 {lay.width:.0f} {lay.height:.0f}">',
           f"<title>{html.escape(title or 'state machine')}</title>",
           '<defs><marker id="arr" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{EDGE_IDLE}"/></marker>'
           '<marker id="arr-on" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{EDGE_VISITED}"/></marker></defs>']
    ordered = sorted(lay.edges, key=lambda e: (e.src, e.dst) in walked)  # walked ones on top
    for e in ordered:
        on = (e.src, e.dst) in walked
        dash = ' stroke-dasharray="5 4"' if e.kind == "catch" else ""
        colour, width, marker = (EDGE_VISITED, 2.4, "arr-on") if on else (EDGE_IDLE, 1.3, "arr")
        cls = "edge walked" if on else "edge"
        out.append(f'<path class="{cls}" data-from="{html.escape(e.src)}" data-to="{html.escape(e.dst)}" '
                   f'd="{_path_d(lay.routes[(e.src, e.dst)])}" fill="none" stroke="{colour}" '
                   f'stroke-width="{width}"{dash} marker-end="url(#{marker})"/>')
    for node in lay.nodes.values():
        out.append(_node_svg(node, node.name in seen, node.name in failed_set, durations.get(node.name)))
    out.append("</svg>")
    return "\n".join(out)


def _node_svg(node: Node, visited: bool, failed: bool, seconds: float | None) -> str:
    fill, stroke, text = FAILED if failed else VISITED if visited else IDLE
    state = "failed" if failed else "visited" if visited else "idle"
    name = html.escape(node.name)
    if node.type in ("Start", "End"):
        w, h = 64.0, 26.0
        x, y = node.cx - w / 2, node.y + (NODE_H - h) / 2
        return (f'<g class="node {state}" data-state="{name}"><rect x="{x:.1f}" y="{y:.1f}" width="{w}" height="{h}" '
                f'rx="13" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/><text x="{node.cx:.1f}" '
                f'y="{y + h / 2 + 4:.1f}" text-anchor="middle" font-size="12" fill="{text}">{name}</text></g>')
    label = node.name if len(node.name) <= 23 else node.name[:22] + "…"
    sub = node.type if seconds is None else f"{node.type} · {_seconds(seconds)}"
    width = 2.4 if visited or failed else 1.2
    return (f'<g class="node {state}" data-state="{name}"><title>{name} ({html.escape(node.type)})</title>'
            f'<rect x="{node.x:.1f}" y="{node.y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{width}"/>'
            f'<text x="{node.cx:.1f}" y="{node.y + 17:.1f}" text-anchor="middle" font-size="12" font-weight="600" '
            f'fill="{text}">{html.escape(label)}</text>'
            f'<text x="{node.cx:.1f}" y="{node.y + 32:.1f}" text-anchor="middle" font-size="10.5" '
            f'fill="{text}" opacity="0.85">{html.escape(sub)}</text></g>')


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s" if value < 60 else f"{value / 60:.1f} min"
