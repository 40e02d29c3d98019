"""Plain SVG for the report: the laid-out dependency graph and the wave timeline (a Gantt).

Generated as text, with every number rounded, so the same report data gives the same bytes. Readable
without JavaScript (the page's script only adds pan and zoom, and a click that filters the VM table).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape

from migrate.report.model import GraphView, Report, ReportVm, ReportWave

__all__ = ["CROSS_WAVE", "PHASE_COLOURS", "graph_svg", "timeline_svg", "wave_colour"]

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#76b7b2", "#edc948", "#b07aa1", "#9c755f", "#ff9da7", "#8cd17d",
           "#bab0ac")
UNPLACED = "#c8c8c8"
CROSS_WAVE = "#c2185b"
KEEP_APART = "#6a1b9a"
PHASE_COLOURS = ("#4e79a7", "#a0cbe8", "#f28e2b", "#ffbe7d", "#59a14f", "#8cd17d", "#b6992d", "#499894",
                 "#86bcb6", "#79706e", "#d37295", "#b07aa1")
FAILED = "#d62728"
VM_ROWS = 400        # timeline rows of VM phases at most (failures first, then by start)
LABELS_UP_TO = 160   # VM-level graphs label every node up to this many VMs


def _n(value: float) -> str:
    """A number as SVG text: one decimal at most, no trailing zeros."""
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def wave_colour(wave: int | None, waves: int) -> str:
    """The colour of a wave: a fixed palette for up to 10 waves, golden-angle hues beyond."""
    if wave is None:
        return UNPLACED
    if waves <= len(PALETTE):
        return PALETTE[(wave - 1) % len(PALETTE)]
    hue = ((wave - 1) * 137.508) % 360
    return f"hsl({hue:.0f},55%,{48 + (wave % 3) * 6}%)"


def _edge_width(weight: float, heaviest: float) -> float:
    if heaviest <= 0:
        return 1.0
    return 0.6 + 3.4 * math.log1p(max(weight, 0.0)) / math.log1p(heaviest)


def graph_svg(view: GraphView, waves: int) -> str:
    """The dependency graph: wave regions, must-move outlines, edges (cross-wave highlighted), nodes."""
    out = [f'<svg id="graph-svg" class="graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(view.width)} '
           f'{_n(view.height)}" data-w="{_n(view.width)}" data-h="{_n(view.height)}" role="img" '
           f'aria-label="Dependency graph: {len(view.nodes)} nodes coloured by wave">', '<g id="graph-viewport">']
    pos = {n.id: n for n in view.nodes}
    out.append('<g class="waves">')
    for box in view.waves:
        colour = wave_colour(box.wave, waves)
        title = "not in a wave" if box.wave is None else f"Wave {box.wave}"
        out.append(f'<rect x="{_n(box.x)}" y="{_n(box.y)}" width="{_n(box.w)}" height="{_n(box.h)}" rx="10" '
                   f'fill="{colour}" fill-opacity="0.08" stroke="{colour}" stroke-width="2"/>'
                   f'<text class="wave-title" x="{_n(box.x + 10)}" y="{_n(box.y + 20)}">{escape(title)}</text>')
    out.append('</g><g class="outlines">')
    for outline in view.outlines:
        if outline.node is not None:
            node = pos[outline.node]
            out.append(f'<circle cx="{_n(node.x)}" cy="{_n(node.y)}" r="{_n(node.r + 5)}" fill="none" '
                       f'stroke="#333" stroke-width="2" stroke-dasharray="5 3"><title>must-move group '
                       f'{outline.group}</title></circle>')
            continue
        points = " ".join(f"{_n(x)},{_n(y)}" for x, y in outline.points)
        out.append(f'<polygon points="{points}" fill="#333" stroke="#333" stroke-width="30" '
                   f'stroke-linejoin="round"><title>must-move group {outline.group}</title></polygon>'
                   f'<polygon points="{points}" fill="#fcfcfc" stroke="#fcfcfc" stroke-width="26" '
                   'stroke-linejoin="round"/>')
    heaviest = max((e.weight for e in view.edges), default=0.0)
    for cross in (False, True):
        out.append(f'</g><g class="{"edges-cross" if cross else "edges"}">')
        for edge in view.edges:
            if edge.cross_wave != cross:
                continue
            a, b = pos[edge.a], pos[edge.b]
            colour = CROSS_WAVE if cross else "#8a8a8a"
            dash = ' stroke-dasharray="6 3"' if edge.hard else ""
            share = math.log1p(max(edge.weight, 0.0)) / math.log1p(heaviest) if heaviest > 0 else 1.0
            opacity = ((0.3 if view.level == "vm" else 0.12) + 0.55 * share) if cross else 0.45
            out.append(f'<line x1="{_n(a.x)}" y1="{_n(a.y)}" x2="{_n(b.x)}" y2="{_n(b.y)}" stroke="{colour}" '
                       f'stroke-opacity="{opacity:.2f}" stroke-width="{_n(_edge_width(edge.weight, heaviest))}"'
                       f'{dash}><title>'
                       f'{escape(a.label)} - {escape(b.label)}: {edge.weight:g} MiB'
                       f'{" (crosses waves)" if cross else ""}</title></line>')
    out.append('</g><g class="keep-apart">')
    for pair in view.keep_apart:
        a, b = pos[pair.a], pos[pair.b]
        out.append(f'<line x1="{_n(a.x)}" y1="{_n(a.y)}" x2="{_n(b.x)}" y2="{_n(b.y)}" stroke="{KEEP_APART}" '
                   f'stroke-width="2" stroke-dasharray="2 4"><title>keep apart: {escape(a.label)} / '
                   f'{escape(b.label)} {escape(pair.reason)}</title></line>')
    out.append('</g><g class="nodes">')
    label_all = view.level == "vm" and len(view.nodes) <= LABELS_UP_TO
    for node in view.nodes:
        colour = wave_colour(node.wave, waves)
        where = "not in a wave" if node.wave is None else f"wave {node.wave}"
        what = f"{node.vms} VMs" if view.level == "unit" else (node.app or "no app")
        filt = node.app or node.label if view.level == "unit" else node.label
        out.append(f'<circle class="node" cx="{_n(node.x)}" cy="{_n(node.y)}" r="{_n(node.r)}" fill="{colour}" '
                   f'stroke="#222" stroke-width="0.8" data-filter="{escape(filt)}" '
                   f'data-wave="{"" if node.wave is None else node.wave}"><title>{escape(node.label)} '
                   f'({where}, {escape(what)})</title></circle>')
        if label_all or (view.level == "unit" and node.r >= 16):
            out.append(f'<text class="label" x="{_n(node.x)}" y="{_n(node.y + node.r + 10)}">'
                       f'{escape(node.label[:24])}</text>')
    out.append("</g></g></svg>")
    return "".join(out)


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


_STEPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
          21600, 43200, 86400, 172800, 604800, 1209600, 2592000)


def _ticks(lo: float, hi: float) -> tuple[list[float], str]:
    span = max(hi - lo, 0.01)
    step = next((s for s in _STEPS if span / s <= 8), _STEPS[-1])
    first = math.ceil(round(lo / step, 6))
    fmt = "%H:%M:%S.%f" if step < 1 else "%H:%M:%S" if step < 60 else ("%H:%M" if step < 86400 else "%Y-%m-%d")
    if span > 86400 and step < 86400:
        fmt = "%m-%d %H:%M"
    ticks, k = [], first
    while k * step <= hi + 1e-9:
        ticks.append(round(k * step, 3))
        k += 1
    return ticks, fmt


def _vm_order(vms: Iterable[ReportVm]) -> list[ReportVm]:
    def key(vm: ReportVm) -> tuple[int, float, str]:
        start = min((_ts(p.start) for p in vm.phases), default=math.inf)
        return (0 if vm.state == "failed" else 1, start, vm.name)

    return sorted((vm for vm in vms if vm.phases), key=key)


def timeline_svg(report: Report) -> str:
    """Planned windows against what happened, per wave and per VM phase; wave sizes when there are no times."""
    waves = report.waves
    count = len(waves)
    times: list[float] = []
    for w in waves:
        for span in (w.window, w.actual):
            if span is not None:
                times.append(_ts(span.start))
                if span.end:
                    times.append(_ts(span.end))
    vms = _vm_order(report.vms)
    for vm in vms:
        for p in vm.phases:
            times.append(_ts(p.start))
            if p.end:
                times.append(_ts(p.end))
    if not times:
        return _ordinal_svg(waves)
    lo, hi = min(times), max(times)
    hi = max(hi, lo + 0.01)
    left, width, row = 190.0, 860.0, 20.0
    shown = vms[:VM_ROWS]
    phases = list(dict.fromkeys(p.phase for vm in shown for p in vm.phases))
    legend: list[tuple[str, float, int]] = []   # phase, x, line
    legend_x, line = left, 0
    for name in phases:
        step = 13 + 7 * len(name) + 14
        if legend_x + step > left + width:
            legend_x, line = left, line + 1
        legend.append((name, legend_x, line))
        legend_x += step
    lines = line + 1 if legend else 0
    height = 40 + row * (len(waves) + 1) + (row * (len(shown) + 1.5 + lines) if shown else 0) + 20

    def x(t: float) -> float:
        return left + (t - lo) / (hi - lo) * width

    out = [f'<svg id="timeline-svg" class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 '
           f'{_n(left + width + 20)} {_n(height)}" role="img" aria-label="Wave timeline">']
    ticks, fmt = _ticks(lo, hi)
    for t in ticks:
        label = datetime.fromtimestamp(t, UTC).strftime(fmt)
        label = label[:-4] if fmt.endswith("%f") else label
        out.append(f'<line x1="{_n(x(t))}" y1="24" x2="{_n(x(t))}" y2="{_n(height - 10)}" stroke="#ddd"/>'
                   f'<text class="tick" x="{_n(x(t))}" y="16">{label}</text>')
    y = 30.0
    out.append(f'<text class="section" x="4" y="{_n(y + 13)}">Waves (UTC): planned window (outline) / '
               'actual (solid)</text>')
    y += row
    for w in waves:
        colour = wave_colour(w.id, count)
        out.append(f'<text class="row-label" x="4" y="{_n(y + 14)}">Wave {w.id} {escape(w.name[:18])}</text>')
        if w.window is not None:
            a, b = x(_ts(w.window.start)), x(_ts(w.window.end or w.window.start))
            out.append(f'<rect x="{_n(a)}" y="{_n(y + 2)}" width="{_n(max(b - a, 1))}" height="16" fill="{colour}" '
                       f'fill-opacity="0.15" stroke="{colour}" stroke-width="1.5"><title>wave {w.id} window '
                       f'{w.window.start} - {w.window.end}</title></rect>')
        if w.actual is not None:
            end = _ts(w.actual.end) if w.actual.end else hi
            a, b = x(_ts(w.actual.start)), x(end)
            fill = FAILED if w.state == "failed" else colour
            out.append(f'<rect x="{_n(a)}" y="{_n(y + 6)}" width="{_n(max(b - a, 1.5))}" height="8" fill="{fill}">'
                       f'<title>wave {w.id} ran {w.actual.start} - {w.actual.end or "(running)"}, '
                       f'{escape(w.state or "")}{_hosts(w)}</title></rect>')
            if w.hosts_added:
                out.append(f'<text class="note" x="{_n(b + 4)}" y="{_n(y + 14)}">+{w.hosts_added} host(s)</text>')
        y += row
    if shown:
        colours = {p: PHASE_COLOURS[i % len(PHASE_COLOURS)] for i, p in enumerate(phases)}
        more = f" (first {len(shown)} of {len(vms)})" if len(vms) > len(shown) else ""
        out.append(f'<text class="section" x="4" y="{_n(y + 14)}">VM phases{more}; red: failed, black bar: '
                   'downtime</text>')
        y += row * 1.5
        for vm in shown:
            out.append(f'<text class="row-label{" failed" if vm.state == "failed" else ""}" x="4" y="{_n(y + 13)}">'
                       f'{escape(vm.name[:26])}</text>')
            for p in vm.phases:
                a = x(_ts(p.start))
                b = x(_ts(p.end)) if p.end else x(hi)
                fill = FAILED if p.status == "failed" else colours[p.phase]
                out.append(f'<rect class="phase" x="{_n(a)}" y="{_n(y + 2)}" width="{_n(max(b - a, 1.2))}" '
                           f'height="12" fill="{fill}"><title>{escape(vm.name)}: {escape(p.phase)} {p.status} '
                           f'(attempt {p.attempt}) {p.start} - {p.end or "(running)"}</title></rect>')
            if vm.downtime_s is not None:
                down = next((p for p in vm.phases if p.phase == "power_off_source"), None)
                if down is not None:
                    a = x(_ts(down.start))
                    b = x(_ts(down.start) + vm.downtime_s)
                    out.append(f'<rect x="{_n(a)}" y="{_n(y + 15)}" width="{_n(max(b - a, 1))}" height="3" '
                               f'fill="#111"><title>{escape(vm.name)}: down {vm.downtime_s:g} s</title></rect>')
            y += row
        for name, lx, line in legend:
            ly = y + line * row
            out.append(f'<rect x="{_n(lx)}" y="{_n(ly + 6)}" width="10" height="10" fill="{colours[name]}"/>'
                       f'<text class="legend" x="{_n(lx + 13)}" y="{_n(ly + 15)}">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def _hosts(w: ReportWave) -> str:
    return f", {w.hosts_added} host(s) added" if w.hosts_added else ""


def _ordinal_svg(waves: list[ReportWave]) -> str:
    """No window and no run: the waves in order with their sizes."""
    left, width, row = 190.0, 700.0, 22.0
    most = max((w.vms for w in waves), default=1) or 1
    height = 40 + row * max(len(waves), 1)
    out = [f'<svg id="timeline-svg" class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 '
           f'{_n(left + width + 200)} {_n(height)}" role="img" aria-label="Waves in order">',
           '<text class="section" x="4" y="18">Waves in execution order (no windows in the plan, no run yet): '
           'VMs per wave</text>']
    y = 30.0
    for w in waves:
        colour = wave_colour(w.id, len(waves))
        bar = max(width * w.vms / most, 2.0)
        out.append(f'<text class="row-label" x="4" y="{_n(y + 15)}">Wave {w.id} {escape(w.name[:18])}</text>'
                   f'<rect x="{_n(left)}" y="{_n(y + 3)}" width="{_n(bar)}" height="15" fill="{colour}">'
                   f'<title>wave {w.id}: {w.vms} VMs, {w.gb:g} GB</title></rect>'
                   f'<text class="note" x="{_n(left + bar + 6)}" y="{_n(y + 15)}">{w.vms} VMs, {w.gb:g} GB</text>')
        y += row
    out.append("</svg>")
    return "".join(out)
