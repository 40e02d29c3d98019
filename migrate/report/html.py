"""The report as ONE self-contained HTML file: inline style and script, no network, tables readable without JS.

A Content-Security-Policy meta tag forbids every fetch (`default-src 'none'`), so nothing the page
holds can reach the network when opened from disk. The script (a few dozen lines, inline) adds
sorting and filtering to the VM table, pan and zoom to the graph, and a click on a graph node that
filters the table to it (the drill-down of an aggregated graph).
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from migrate.core.fileio import atomic_write
from migrate.report.model import Report, ReportError, ReportReadiness, ReportVm, ReportWave
from migrate.report.svg import CROSS_WAVE, KEEP_APART, graph_svg, timeline_svg, wave_colour

__all__ = ["render_html", "report_json", "write_report"]

_CSS = """
:root{--fg:#1d232a;--muted:#5b6670;--line:#d9dee3;--bg:#fff;--soft:#f5f7f9;--bad:#c62828;--ok:#2e7d32}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}header{padding:18px 28px;background:#17324d;color:#fff}
header h1{margin:0 0 4px;font-size:22px}header p{margin:0;color:#c9d6e2;font-size:12px}
nav{padding:8px 28px;background:var(--soft);border-bottom:1px solid var(--line)}nav a{margin-right:16px}
main{padding:8px 28px 40px}section{margin:18px 0 28px}h2{font-size:18px;margin:0 0 10px;
border-bottom:2px solid var(--line);padding-bottom:4px}.cards{display:flex;flex-wrap:wrap;gap:14px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:220px;background:var(--soft)}
.card h3{margin:0 0 6px;font-size:14px;color:var(--muted)}.card dl{display:grid;grid-template-columns:auto auto;
gap:2px 14px;margin:0}.card dt{color:var(--muted)}.card dd{margin:0;text-align:right;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid var(--line);padding:4px 8px;
text-align:left;vertical-align:top}th{background:var(--soft);position:sticky;top:0}td.num,th.num{text-align:right;
font-variant-numeric:tabular-nums}.failed,.st-failed{color:var(--bad);font-weight:600}.st-completed{color:var(--ok)}
.failures{border:2px solid var(--bad);border-radius:8px;padding:8px 12px;margin-bottom:14px}
.failures h3{color:var(--bad);margin:0 0 6px}.swatch{display:inline-block;width:12px;height:12px;border-radius:3px;
vertical-align:middle;margin-right:4px}.legend{display:flex;flex-wrap:wrap;gap:6px 16px;margin:6px 0;font-size:12px}
.figure{border:1px solid var(--line);border-radius:8px;overflow:hidden;background:#fcfcfc}
svg.graph{display:block;width:100%;height:70vh;cursor:grab;touch-action:none}
svg.timeline{display:block;width:100%;height:auto}svg text{font:11px system-ui,sans-serif;fill:#333}
svg .wave-title{font-size:15px;font-weight:600}svg .label{text-anchor:middle;font-size:9px}
svg .section{font-weight:600}svg .tick{text-anchor:middle;fill:#666}svg .row-label.failed{fill:#c62828}
svg circle.node:hover{stroke-width:2.5}.controls{display:none;gap:8px;align-items:center;margin:6px 0}
.js .controls{display:flex}.controls input[type=search]{width:280px;padding:4px 6px}.muted{color:var(--muted)}
th[data-key]{cursor:pointer}th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{
content:" \\25BC"}.err{max-width:520px}.small{font-size:12px}code{font-size:12px}
.v-not_ready{color:var(--bad);font-weight:600}.v-ready_with_warnings{color:#a15c00;font-weight:600}
.v-not_assessed{color:var(--muted)}ul.findings{margin:0;padding-left:16px}
"""

_JS = """
(function(){'use strict';
document.documentElement.className+=' js';
var table=document.getElementById('vm-table');
if(table){var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
var text=rows.map(function(r){return r.textContent.toLowerCase();});
var q=document.getElementById('vm-filter'),st=document.getElementById('vm-state'),wv=document.getElementById('vm-wave');
var count=document.getElementById('vm-count');
var apply=function(){var terms=q.value.toLowerCase().split(/\\s+/).filter(Boolean),s=st.value,w=wv.value,shown=0;
rows.forEach(function(r,i){var ok=(!s||r.getAttribute('data-state')===s)&&(!w||r.getAttribute('data-wave')===w)&&
terms.every(function(t){return text[i].indexOf(t)>=0;});r.hidden=!ok;if(ok){shown++;}});
count.textContent=shown+' of '+rows.length+' VMs shown';};
q.addEventListener('input',apply);st.addEventListener('change',apply);wv.addEventListener('change',apply);apply();
var heads=table.tHead.rows[0].cells;
Array.prototype.forEach.call(heads,function(th,col){if(!th.hasAttribute('data-key')){return;}
th.addEventListener('click',function(){var asc=th.getAttribute('aria-sort')!=='ascending',
num=th.classList.contains('num');
Array.prototype.forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
th.setAttribute('aria-sort',asc?'ascending':'descending');
var key=function(r){var c=r.cells[col],v=c.getAttribute('data-v');v=v===null?c.textContent:v;
return num?(v===''?-Infinity:parseFloat(v)):v.toLowerCase();};
var order=rows.map(function(r,i){return [key(r),i,r];});
order.sort(function(a,b){var d=a[0]<b[0]?-1:(a[0]>b[0]?1:0);return (asc?d:-d)||a[1]-b[1];});
var frag=document.createDocumentFragment();order.forEach(function(o){frag.appendChild(o[2]);});
body.appendChild(frag);});});
var svgNodes=document.querySelectorAll('#graph-svg circle.node');
Array.prototype.forEach.call(svgNodes,function(c){c.addEventListener('click',function(){
q.value=c.getAttribute('data-filter');wv.value=c.getAttribute('data-wave');st.value='';apply();
document.getElementById('vms').scrollIntoView();});});}
var svg=document.getElementById('graph-svg');
if(svg){var W=parseFloat(svg.getAttribute('data-w')),H=parseFloat(svg.getAttribute('data-h'));
var vb=[0,0,W,H],set=function(){svg.setAttribute('viewBox',vb.map(function(v){return v.toFixed(1);}).join(' '));};
var zoom=function(f,cx,cy){var nw=vb[2]*f,nh=vb[3]*f;vb=[cx-(cx-vb[0])*f,cy-(cy-vb[1])*f,nw,nh];set();};
var at=function(e){var r=svg.getBoundingClientRect(),s=Math.max(vb[2]/r.width,vb[3]/r.height);
return [vb[0]+(e.clientX-r.left-(r.width-vb[2]/s)/2)*s,vb[1]+(e.clientY-r.top-(r.height-vb[3]/s)/2)*s];};
svg.addEventListener('wheel',function(e){e.preventDefault();var p=at(e);zoom(e.deltaY<0?0.8:1.25,p[0],p[1]);},
{passive:false});
var drag=null;svg.addEventListener('pointerdown',function(e){drag=[e.clientX,e.clientY,vb[0],vb[1]];});
svg.addEventListener('pointermove',function(e){if(!drag){return;}var r=svg.getBoundingClientRect(),
s=Math.max(vb[2]/r.width,vb[3]/r.height);vb[0]=drag[2]-(e.clientX-drag[0])*s;vb[1]=drag[3]-(e.clientY-drag[1])*s;set();});
var stop=function(){drag=null;};svg.addEventListener('pointerup',stop);svg.addEventListener('pointerleave',stop);
var btn=function(id,f){var b=document.getElementById(id);if(b){b.addEventListener('click',f);}};
btn('zoom-in',function(){zoom(0.8,vb[0]+vb[2]/2,vb[1]+vb[3]/2);});
btn('zoom-out',function(){zoom(1.25,vb[0]+vb[2]/2,vb[1]+vb[3]/2);});
btn('zoom-reset',function(){vb=[0,0,W,H];set();});}
})();
"""

READINESS_ROWS = 2000   # VMs listed in the readiness section at most (the JSON has them all)
_VERDICTS = {"not_ready": "not ready", "ready_with_warnings": "ready with warnings", "not_assessed": "not assessed",
             "ready": "ready"}
_STATUS_CLASS = {"block": "v-not_ready", "warn": "v-ready_with_warnings", "unknown": "v-not_assessed"}
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


def _num(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _card(title: str, items: list[tuple[str, str]]) -> str:
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items)
    return f'<div class="card"><h3>{_e(title)}</h3><dl>{rows}</dl></div>'


def _error_text(error: ReportError | None) -> str:
    if error is None:
        return ""
    where = " ".join(x for x in (error.provider, error.op) if x)
    head = f"[{where}] " if where else ""
    return f"{head}{error.type + ': ' if error.type else ''}{error.message}"


def _summary(report: Report) -> str:
    s = report.summary
    est, plan = s.estate, s.plan
    parts = ['<section id="summary"><h2>Summary</h2>']
    if s.failures:
        rows = "".join(f"<tr><td>{_e(f.name)}</td><td class=num>{f.wave}</td><td>{_e(f.phase)}</td>"
                       f"<td class=err>{_e(_error_text(f.error))}</td></tr>" for f in s.failures)
        parts.append(f'<div class="failures"><h3>{len(s.failures)} VM(s) failed</h3><table><thead><tr><th>VM</th>'
                     f'<th class=num>Wave</th><th>Phase</th><th>Error (provider, operation)</th></tr></thead>'
                     f'<tbody>{rows}</tbody></table></div>')
    cards = [_card("Estate" + ("" if est.from_inventory else " (from the plan)"), [
        ("VMs", _num(est.vms)), ("powered on", _num(est.powered_on)), ("vCPU", _num(est.vcpu)),
        ("memory", f"{est.memory_mb / 1024:,.1f} GiB"), ("storage", f"{est.storage_gb:,.1f} GiB"),
        ("source", ", ".join(est.sources) or "-")])]
    plan_items = [("waves", _num(plan.waves)), ("lower bound", _num(plan.lower_bound)), ("VMs planned", _num(plan.vms)),
                  ("excluded", _num(plan.excluded)),
                  ("cut", "-" if plan.cut_fraction is None else f"{100 * plan.cut_fraction:.1f}% of traffic weight"),
                  ("exposure", "-" if plan.exposure is None else f"{plan.exposure:.3f}"),
                  ("violations", _num(plan.violations)), ("metrics", plan.metrics_from)]
    cards.append(_card("Plan", plan_items))
    if s.run is not None:
        run_items = [("run", s.run.run_id), ("status", s.run.status), ("started", s.run.started_at),
                     ("updated", s.run.updated_at)]
        run_items += [(state, _num(n)) for state, n in s.run.states.items()]
        run_items.append(("hosts added", _num(s.run.hosts_added)))
        cards.append(_card("Run", run_items))
    parts.append(f'<div class="cards">{"".join(cards)}</div>')
    if plan.violation_list:
        items = "".join(f"<li><code>{_e(v.field)}</code>: {_e(v.message)}</li>" for v in plan.violation_list[:50])
        parts.append(f'<h3 class="failed">Plan violations</h3><ul>{items}</ul>')
    parts.append("</section>")
    return "".join(parts)


def _readiness(section: ReportReadiness | None) -> str:
    head = '<section id="readiness"><h2>Readiness</h2>'
    if section is None:
        return (f'{head}<p class="muted">Not assessed: the plan has no readiness notes and no inventory was given '
                "(`migrate plan --inventory` writes them; `migrate assess` checks an inventory).</p></section>")
    where = {"plan": "the plan's readiness notes", "inventory": "computed from the inventory",
             "plan and inventory": "the plan's notes, and the inventory for VMs they do not cover"}[section.source]
    skipped = (f" Rules not assessed: {', '.join(section.not_assessed)} (they need the target's facts: "
               "`migrate assess`)." if section.not_assessed else "")
    card = _card("VMs by verdict", [(_VERDICTS[v], _num(section.counts.get(v, 0)))
                                    for v in ("not_ready", "ready_with_warnings", "not_assessed", "ready")])
    rows = []
    for vm in section.vms[:READINESS_ROWS]:
        items = "".join(f"<li><code>{_e(f.rule)}</code> <span class={_STATUS_CLASS[f.status]}>{_e(f.status)}</span>: "
                        f"{_e(f.message)}</li>" for f in vm.findings)
        rows.append(f'<tr data-verdict="{_e(vm.verdict)}"><td>{_e(vm.name)}</td><td class=num>{vm.wave}</td>'
                    f"<td>{_e(vm.method)}</td><td class=v-{_e(vm.verdict)}>{_e(_VERDICTS[vm.verdict])}</td>"
                    f'<td><ul class="findings">{items}</ul></td></tr>')
    more = len(section.vms) - READINESS_ROWS
    table = ('<table id="readiness-table"><thead><tr><th>VM</th><th class=num>Wave</th><th>Method</th><th>Verdict</th>'
             f'<th>Findings (rule id: reason)</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
             if rows else "<p>Every planned VM is ready for its wave's method.</p>")
    if more > 0:
        table += f'<p class="muted">... and {more} more VMs (the report\'s JSON lists them all).</p>'
    return (f'{head}<p class="muted">Each planned VM against the readiness rules for its wave\'s method, from '
            f'{_e(where)}.{_e(skipped)}</p><div class="cards">{card}</div>{table}</section>')


def _span_text(start: str | None, end: str | None) -> str:
    if start is None:
        return ""
    return f"{start} - {end or '(running)'}"


def _waves(waves: list[ReportWave]) -> str:
    rows = []
    for w in waves:
        states = ", ".join(f"{k} {v}" for k, v in w.states.items())
        colour = wave_colour(w.id, len(waves))
        rows.append(f'<tr><td><span class="swatch" style="background:{colour}"></span>{w.id}</td>'
                    f"<td>{_e(w.name)}</td><td>{_e(w.method)}</td><td class=num>{w.vms}</td>"
                    f"<td class=num>{_num(w.gb)}</td><td class=num>{w.vcpu}</td>"
                    f"<td class=small>{_e(_span_text(w.window.start, w.window.end) if w.window else '')}</td>"
                    f"<td class=st-{_e(w.state)}>{_e(w.state or 'planned')}</td><td class=small>{_e(states)}</td>"
                    f"<td class=small>{_e(_span_text(w.actual.start, w.actual.end) if w.actual else '')}</td>"
                    f"<td class=num>{_num(w.hosts_added)}</td></tr>")
    return ('<table id="wave-table"><thead><tr><th>Wave</th><th>Name</th><th>Method</th><th class=num>VMs</th>'
            '<th class=num>GiB</th><th class=num>vCPU</th><th>Planned window (UTC)</th><th>State</th><th>VM states</th>'
            f'<th>Actual (UTC)</th><th class=num>Hosts added</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _graph(report: Report) -> str:
    view = report.graph
    count = len(report.waves)
    legend = "".join(f'<span><span class="swatch" style="background:{wave_colour(w.id, count)}"></span>Wave {w.id}'
                     "</span>" for w in report.waves[:40])
    if count > 40:
        legend += f"<span>... {count - 40} more waves</span>"
    what = ("one node per VM" if view.level == "vm" else
            "one node per application or must-move group in each wave (size: VMs; click a node to list its VMs)")
    shown = (f"{len(view.edges)} of {view.edges_total} edges drawn (hard ties, then the heaviest)"
             if view.edges_total > len(view.edges) else f"{view.edges_total} edges")
    return (f'<section id="graph"><h2>Dependency graph</h2><p class="muted">{_e(what)}; {_e(shown)}. '
            f'<span style="color:{CROSS_WAVE}">Red edges cross waves</span> (the traffic the plan cuts); dashed edges '
            f'are hard ties; outlined: must-move-together groups ({len(view.groups)}); '
            f'<span style="color:{KEEP_APART}">dotted purple</span>: keep-apart pairs. Wheel to zoom, drag to pan.</p>'
            f'<div class="legend">{legend}<span><span class="swatch" style="background:#c8c8c8"></span>'
            'not in a wave</span></div><div class="controls"><button id="zoom-in" type="button">+</button>'
            '<button id="zoom-out" type="button">-</button><button id="zoom-reset" type="button">reset</button></div>'
            f'<div class="figure">{graph_svg(view, count)}</div></section>')


def _vm_row(vm: ReportVm) -> str:
    pre = "; ".join([*(f"BLOCK {b}" for b in vm.prechecks.blocking), *(f"warn {w}" for w in vm.prechecks.warnings)])
    down = "" if vm.downtime_s is None else f"{vm.downtime_s:.1f}"
    wave = "" if vm.wave is None else str(vm.wave)
    note = f" ({vm.note})" if vm.note else ""
    return (f'<tr data-state="{_e(vm.state)}" data-wave="{wave}"><td>{_e(vm.name)}</td><td class=small>{_e(vm.id)}'
            f'</td><td>{_e(vm.app)}</td><td class=num data-v="{wave}">{wave}</td><td>{_e(vm.method)}</td>'
            f"<td class=st-{_e(vm.state)}>{_e(vm.state)}</td><td>{_e(vm.phase)}</td><td class=small>{_e(vm.target_id)}"
            f'</td><td class=num data-v="{vm.gb}">{_num(vm.gb)}</td><td class=num data-v="{down}">{down}</td>'
            f"<td class=small>{_e(pre)}</td><td class=err>{_e(_error_text(vm.error))}{_e(note)}</td></tr>")


def _vms(report: Report) -> str:
    states = sorted({vm.state for vm in report.vms})
    state_opts = "".join(f'<option value="{_e(s)}">{_e(s)}</option>' for s in states)
    wave_opts = "".join(f'<option value="{w.id}">wave {w.id}</option>' for w in report.waves)
    heads = [("VM", ""), ("Id", ""), ("App", ""), ("Wave", "num"), ("Method", ""), ("State", ""), ("Phase", ""),
             ("Target", ""), ("GiB", "num"), ("Down (s)", "num"), ("Prechecks", ""),
             ("Error [provider op]", "")]
    head = "".join(f'<th data-key="{i}"{" class=num" if cls else ""}>{_e(h)}</th>'
                   for i, (h, cls) in enumerate(heads))
    rows = "".join(_vm_row(vm) for vm in report.vms)
    return (f'<section id="vms"><h2>Virtual machines ({len(report.vms)})</h2><div class="controls">'
            '<input id="vm-filter" type="search" placeholder="filter: name, app, id, error..." '
            'aria-label="filter the VM table"><select id="vm-state" aria-label="state"><option value="">any state'
            f'</option>{state_opts}</select><select id="vm-wave" aria-label="wave"><option value="">any wave</option>'
            f'{wave_opts}</select><span id="vm-count" class="muted"></span></div>'
            f'<table id="vm-table"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></section>')


def render_html(report: Report) -> str:
    """The whole page."""
    src = report.sources
    sources = " · ".join(f"{k}: {v}" for k, v in (("plan", src.plan), ("inventory", src.inventory),
                                                  ("flows", src.flows), ("journal", src.journal), ("run", src.run_id))
                         if v)
    when = f" · generated {report.generated_at}" if report.generated_at else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(report.title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{_e(report.title)}</h1><p>{_e(sources)}{_e(when)}</p></header>"
            '<nav><a href="#summary">Summary</a><a href="#readiness">Readiness</a><a href="#waves">Waves</a>'
            '<a href="#graph">Dependency graph</a>'
            '<a href="#timeline">Timeline</a><a href="#vms">VMs</a></nav><main>'
            f"{_summary(report)}{_readiness(report.readiness)}"
            f'<section id="waves"><h2>Waves</h2>{_waves(report.waves)}</section>'
            f"{_graph(report)}"
            f'<section id="timeline"><h2>Wave timeline</h2><div class="figure">{timeline_svg(report)}</div></section>'
            f"{_vms(report)}</main><script>{_JS}</script></body></html>\n")


def report_json(report: Report) -> str:
    """The report as JSON text (stable: sorted keys)."""
    return json.dumps(report.model_dump(mode="json"), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_report(report: Report, path: str | Path) -> int:
    """Write the HTML report atomically; its size in bytes."""
    text = render_html(report)
    atomic_write(Path(path), text)
    return len(text.encode())
