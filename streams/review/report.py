"""HTML pages of the case review: one page per patient (figure, lead-time table, alerts with evidence), the
index, and the what-if page. The plotly JavaScript is inlined in each page (`inline`, self-contained) or written
once beside the pages (`beside`, plotly.min.js); either way the pages open offline, with no CDN.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerts.config import Thresholds
from models.records import Record
from streams.review.figure import FigureInput, esc, plotly_figure, png_figure
from streams.review.leadtime import LeadRow, fmt_hours, summarise
from streams.review.series import PatientSeries, alerts_of, max_levels, record_ts
from streams.review.whatif import CohortTotals, PatientDiff

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:16px;color:#111}
table{border-collapse:collapse;font-size:13px;margin:8px 0 20px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f4f6} .num{text-align:right} .muted{color:#666} .sev-critical{color:#8b0000;font-weight:600}
.sev-high{color:#c2410c} details{margin:2px 0} summary{cursor:pointer}
"""

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def page_name(patient_id: str) -> str:
    return _SAFE.sub("_", patient_id)[:120] + ".html"


def _doc(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>\n")


def lead_table_html(rows: Sequence[LeadRow], s: PatientSeries) -> str:
    if not rows:
        return "<p class='muted'>No clinician escalation in the input.</p>"
    out = ["<table id='leadtime'><tr><th>Escalation</th><th>When</th><th>Earliest related alert before it</th>"
           "<th class='num'>Lead</th><th>Latest related alert before it</th><th class='num'>by</th>"
           "<th>At the same time</th><th>Only after it</th></tr>"]
    for r in rows:
        e, first, last = r.escalation, r.first_before, r.last_before
        before = ("<b>none: not preceded</b>" if first is None
                  else f"{esc(first.summary)} <span class=muted>{esc(s.day_clock(first.ts))}</span>")
        latest = "-" if last is None else f"{esc(last.summary)} <span class=muted>{esc(s.day_clock(last.ts))}</span>"
        by = "-" if last is None else fmt_hours(e.ts - last.ts)
        same = "<br>".join(esc(a.summary) for a in r.concurrent) or "-"
        after = "<br>".join(f"{esc(a.summary)} <span class=muted>+{fmt_hours(a.ts - e.ts)}</span>"
                            for a in r.only_after) or "-"
        out.append(f"<tr><td>{esc(e.kind)}: {esc(e.detail)}</td><td>{esc(s.when(e.ts))}</td><td>{before}</td>"
                   f"<td class='num'>{fmt_hours(r.lead_s)}</td><td>{latest}</td><td class='num'>{by}</td>"
                   f"<td>{same}</td><td>{after}</td></tr>")
    summ = summarise(rows)
    out.append("</table>")
    out.append(f"<p>{summ.escalations} escalations: {summ.preceded} preceded by a related alert "
               f"(median lead {fmt_hours(summ.median_lead_s)}), {summ.concurrent_only} only with an alert at the "
               f"same time, {summ.not_preceded - summ.concurrent_only} with none before or at it.</p>")
    return "".join(out)


def lead_table_text(rows: Sequence[LeadRow], s: PatientSeries) -> str:
    """A markdown table (for docs and the terminal)."""
    lines = ["| Escalation | When | Earliest related alert before it | Lead | Latest related alert before it | By "
             "| Same time | Only after (kinds) |",
             "|---|---|---|---:|---|---:|---|---|"]
    for r in rows:
        e, first, last = r.escalation, r.first_before, r.last_before
        before = "**none**" if first is None else f"{first.summary} ({s.day_clock(first.ts)})"
        latest = "-" if last is None else f"{last.summary} ({s.day_clock(last.ts)})"
        by = "-" if last is None else fmt_hours(e.ts - last.ts)
        same = "; ".join(a.summary for a in r.concurrent) or "-"
        after = "; ".join(dict.fromkeys(f"{a.kind} (+{fmt_hours(a.ts - e.ts)})" for a in r.only_after)) or "-"
        lines.append(f"| {e.kind}: {e.detail} | {s.day_clock(e.ts)} | {before} | {fmt_hours(r.lead_s)} | {latest} "
                     f"| {by} | {same} | {after} |")
    return "\n".join(lines)


def alerts_html(records: Sequence[Record], s: PatientSeries) -> str:
    alerts = alerts_of(records)
    out = ["<table id='alerts'><tr><th>When</th><th>Severity</th><th>Alert</th><th>Evidence</th></tr>"]
    for a in alerts:
        ev = "".join(f"<li>{esc(e)}</li>" for e in a.evidence)
        flag = " (correction)" if a.correction else " (late)" if a.late else ""
        out.append(f"<tr><td>{esc(s.when(record_ts(a)))}</td><td class='sev-{a.severity}'>{a.severity}</td>"
                   f"<td>{esc(a.summary)}{flag}<br><span class=muted>{esc(a.id)}</span></td>"
                   f"<td><details><summary>{len(a.evidence)} lines</summary><ul>{ev}</ul></details></td></tr>")
    out.append("</table>")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class PageLinks:
    index: str | None = None
    other: tuple[str, str] | None = None  # (label, href)


def write_patient_page(path: Path, s: PatientSeries, records: Sequence[Record], cfg: Thresholds,
                       rows: Sequence[LeadRow], title: str, js: str = "inline", links: PageLinks = PageLinks(),
                       png: str | None = None, xlim: tuple[float, float] | None = None) -> None:
    fi = FigureInput(s, records, cfg, title, xlim)
    fig = plotly_figure(fi)
    include: Any = True if js == "inline" else "directory"
    if js != "inline" and not (path.parent / "plotly.min.js").exists():
        from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

        (path.parent / "plotly.min.js").write_text(get_plotlyjs(), encoding="utf-8")
    div = fig.to_html(full_html=False, include_plotlyjs=include, div_id="timeline",
                      config={"displaylogo": False, "responsive": True})
    lv = max_levels(records)
    nav = []
    if links.index:
        nav.append(f"<a href='{esc(links.index)}'>index</a>")
    if links.other:
        nav.append(f"<a href='{esc(links.other[1])}'>{esc(links.other[0])}</a>")
    if png:
        nav.append(f"<a href='{esc(png)}'>static PNG</a>")
    counts = ", ".join(f"{k} {v}" for k, v in s.vital_counts.items() if v)
    body = (
        f"<p>{' · '.join(nav)}</p><h2>{esc(title)}</h2>"
        f"<p>Max CRS grade {lv['CRS']}, ICANS grade {lv['ICANS']}, IEC-HS level {lv['IEC-HS']} · "
        f"{len(alerts_of(records))} alert records · vital-sign readings: {esc(counts) or 'none'} "
        f"(drawn as the lowest and highest reading per bucket; hover shows each reading's own value and time)</p>"
        f"{div}<h3>Lead time against the clinicians' escalation</h3>{lead_table_html(rows, s)}"
        f"<h3>Alerts and their evidence</h3>{alerts_html(records, s)}"
    )
    path.write_text(_doc(title, body), encoding="utf-8")
    if png:
        png_figure(fi, path.parent / png)


def write_index(path: Path, entries: Sequence[tuple[str, str, dict[str, int], int, int, str | None]],
                note: str) -> None:
    """entries: (patient, href, max levels, alerts, escalations not preceded, png href)."""
    rows = ["<table id='patients'><tr><th>Patient</th><th class=num>max CRS</th><th class=num>max ICANS</th>"
            "<th class=num>max IEC-HS</th><th class=num>alerts</th><th class=num>escalations not preceded</th>"
            "<th>PNG</th></tr>"]
    for pid, href, lv, n_alerts, not_preceded, png in entries:
        rows.append(f"<tr><td><a href='{esc(href)}'>{esc(pid)}</a></td><td class=num>{lv['CRS']}</td>"
                    f"<td class=num>{lv['ICANS']}</td><td class=num>{lv['IEC-HS']}</td><td class=num>{n_alerts}</td>"
                    f"<td class=num>{not_preceded}</td><td>{'' if png is None else f'<a href={esc(png)}>png</a>'}"
                    f"</td></tr>")
    rows.append("</table>")
    path.write_text(_doc("crswatch case review", f"<h2>crswatch case review</h2><p>{esc(note)}</p>"
                         + "".join(rows)), encoding="utf-8")


# ------------------------------------------------------------------ what-if outputs


def _hours(seconds: float) -> str:
    if abs(seconds) < 3600:
        return f"{seconds / 60:+.0f} min"
    return f"{seconds / 3600:+.1f} h"


def _h(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 3)


def _span(values: Sequence[float]) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    return _hours(lo) if lo == hi else f"{_hours(lo)}..{_hours(hi)}"


def whatif_json(diffs: Sequence[PatientDiff], t: CohortTotals, meta: dict[str, Any]) -> str:
    def ref(a: Any) -> dict[str, Any]:
        return {"id": a.id, "kind": a.kind, "level": a.level, "status": a.status, "time": a.ts}

    patients = []
    for d in diffs:
        if not d.changed:
            continue
        patients.append({
            "patient_id": d.patient_id,
            "alerts_current": d.alerts_current, "alerts_changed": d.alerts_changed,
            "added": [ref(a) for a in d.alerts.added], "removed": [ref(a) for a in d.alerts.removed],
            "moved": [{"current": ref(m.before), "changed": ref(m.after), "delta_hours": m.delta_s / 3600}
                      for m in d.alerts.moved],
            "grade_days": [{"scale": g.scale, "level": g.level, "current": g.days_current, "changed": g.days_changed}
                           for g in d.grade_levels],
            "grade_days_changed": [{"scale": sc, "day": day, "current": a, "changed": b}
                                   for sc, day, a, b in d.grade_days_changed],
            "lead_time": [{"escalation": lc.row_current.escalation.kind, "time": lc.row_current.escalation.ts,
                           "lead_hours_current": _h(lc.row_current.lead_s),
                           "lead_hours_changed": _h(lc.row_changed.lead_s)}
                          for lc in d.leads],
        })
    total = {
        "patients": t.patients, "patients_changed": t.patients_changed, "alerts_current": t.alerts_current,
        "alerts_changed": t.alerts_changed, "added": t.added, "removed": t.removed, "moved": t.moved,
        "moved_earlier": t.moved_earlier, "moved_later": t.moved_later,
        "grade_days": {sc: {str(lvl): {"current": a, "changed": b} for lvl, (a, b) in sorted(per.items())}
                       for sc, per in t.grade_days.items()},
        "escalations": t.escalations, "preceded_current": t.preceded_current, "preceded_changed": t.preceded_changed,
        "escalations_with_changed_lead": t.lead_changed,
        "escalations_with_changed_related_alerts": t.related_changed,
    }
    return json.dumps({"meta": meta, "total": total, "patients": patients}, indent=2)


def whatif_text(diffs: Sequence[PatientDiff], t: CohortTotals, meta: dict[str, Any]) -> str:
    out = [f"what-if: {meta['changed_config']} against {meta['current_config']}; {t.patients} patients, "
           f"{meta['events']} events, replayed in {meta['seconds']:.1f} s", ""]
    head = f"{'patient':<24} {'alerts':>9} {'added':>5} {'removed':>7} {'moved':>5}  {'moved by':<22} " \
           f"{'grade-days changed':<28} lead"
    out.append(head)
    out.append("-" * len(head))
    for d in diffs:
        if not d.changed:
            continue
        by = _span([m.delta_s for m in d.alerts.moved])
        gd: dict[str, int] = {}
        for sc, _, _, _ in d.grade_days_changed:
            gd[sc] = gd.get(sc, 0) + 1
        deltas = [lc.delta_s for lc in d.leads if lc.delta_s]
        lead = "" if not d.leads else f"{len(d.leads)} escalation(s): " + (
            f"lead {_span(deltas)}" if deltas else "related alerts changed, not the lead")
        gained = sum(1 for lc in d.leads if lc.row_changed.preceded and not lc.row_current.preceded)
        lost = sum(1 for lc in d.leads if lc.row_current.preceded and not lc.row_changed.preceded)
        if gained or lost:
            lead += f", now preceded {gained}, no longer preceded {lost}"
        out.append(f"{d.patient_id[:24]:<24} {d.alerts_current:>4}->{d.alerts_changed:<4} {len(d.alerts.added):>5} "
                   f"{len(d.alerts.removed):>7} {len(d.alerts.moved):>5}  {by:<22} "
                   f"{', '.join(f'{k} {v}' for k, v in gd.items()):<28} {lead}")
    out += ["", f"total: {t.patients_changed} of {t.patients} patients changed; alerts {t.alerts_current} -> "
            f"{t.alerts_changed}: {t.added} added, {t.removed} removed, {t.moved} moved ({t.moved_earlier} earlier, "
            f"{t.moved_later} later)", "grade-days per level (current -> changed):"]
    for sc in ("CRS", "ICANS", "IEC-HS"):
        per = t.grade_days.get(sc, {})
        out.append(f"  {sc:<7}" + "  ".join(f"{lvl}: {a}->{b}" for lvl, (a, b) in sorted(per.items())))
    out.append(f"escalations: {t.escalations}; preceded by a related alert: {t.preceded_current} -> "
               f"{t.preceded_changed}; escalations whose lead changed: {t.lead_changed} (whose related alerts changed: "
               f"{t.related_changed})")
    return "\n".join(out) + "\n"


def write_whatif_html(path: Path, diffs: Sequence[PatientDiff], t: CohortTotals, meta: dict[str, Any],
                      links: dict[str, tuple[str, str]]) -> None:
    rows = ["<table id='whatif'><tr><th>Patient</th><th>figures</th><th class=num>alerts</th><th>added</th>"
            "<th>removed</th><th>moved (by)</th><th>grade-days changed</th><th>lead time</th></tr>"]
    for d in diffs:
        if not d.changed:
            continue
        cur, chg = links.get(d.patient_id, ("", ""))
        fig = f"<a href='{esc(cur)}'>current</a> · <a href='{esc(chg)}'>changed</a>" if cur else ""
        added = "<br>".join(esc(a.summary) for a in d.alerts.added) or "-"
        removed = "<br>".join(esc(a.summary) for a in d.alerts.removed) or "-"
        moved = "<br>".join(esc(m.before.summary) + ("" if m.after.summary == m.before.summary
                                                     else f" → {esc(m.after.summary)}") + f" ({_hours(m.delta_s)})"
                            for m in d.alerts.moved) or "-"
        gd = "<br>".join(f"{sc} Day {day:+d}: {a} → {b}" for sc, day, a, b in d.grade_days_changed) or "-"
        leads = "<br>".join(f"{esc(lc.row_current.escalation.kind)}: {fmt_hours(lc.row_current.lead_s)} → "
                            f"{fmt_hours(lc.row_changed.lead_s)}"
                            + ("" if lc.delta_s is None else f" ({_hours(lc.delta_s)})") for lc in d.leads) or "-"
        rows.append(f"<tr><td>{esc(d.patient_id)}</td><td>{fig}</td><td class=num>{d.alerts_current} → "
                    f"{d.alerts_changed}</td><td>{added}</td><td>{removed}</td><td>{moved}</td><td>{gd}</td>"
                    f"<td>{leads}</td></tr>")
    rows.append("</table>")
    text = whatif_text(diffs, t, meta)
    body = (f"<h2>crswatch what-if</h2><pre>{esc(text.split(chr(10) + chr(10))[-1])}</pre>"
            f"<p>{esc(text.splitlines()[0])}</p>" + "".join(rows))
    path.write_text(_doc("crswatch what-if", body), encoding="utf-8")
