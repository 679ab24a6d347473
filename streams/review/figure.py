"""The case-review timeline figure: plotly (interactive, for the HTML page) and matplotlib (static PNG), both
drawn from the same `series.PatientSeries` and records, on one shared x axis in Day since infusion.

Panels, top to bottom: alerts (one marker per alert; hover: summary, time, evidence lines), CRS/ICANS/IEC-HS
levels as a coloured band, temperature with the fever line (Thresholds.fever_c, ASTCT 2019), SBP and MAP with
the hypotension line (Thresholds.hypotension_sbp_below), SpO2, the oxygen device and flow as a band coloured by
the ASTCT hypoxia level, each vasoactive agent as a band, the norepinephrine-equivalent dose (Goradia 2021) per
agent and in total, drug doses one lane per drug, documented findings, ferritin (log axis) with the CARTOX
carHLH line and the IEC-HS reference (2x baseline, else 2x ULN), CRP, fibrinogen with the hypofibrinogenaemia
line. Vital signs are drawn downsampled (series.py); the hover gives each drawn reading's real value and time.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerts.config import Thresholds
from models.records import Alert, Record
from streams.review.series import GradeSpan, OxygenSpan, PatientSeries, alerts_of, grade_spans, record_ts

SEVERITY_COLOUR = {"info": "#4c78a8", "warning": "#f2a900", "high": "#e4572e", "critical": "#8b0000"}
LEVEL_COLOUR = {0: "#e8f5e9", 1: "#fde68a", 2: "#fb923c", 3: "#dc2626", 4: "#7f1d1d"}
OXYGEN_COLOUR = {0: "#d1fae5", 1: "#bae6fd", 2: "#7dd3fc", 3: "#0284c7", 4: "#1e3a8a"}
AGENT_COLOUR = {"norepinephrine": "#b91c1c", "epinephrine": "#7c3aed", "vasopressin": "#0f766e",
                "phenylephrine": "#d97706", "angiotensin_ii": "#be185d", "dopamine": "#4d7c0f",
                "metaraminol": "#57534e", "dobutamine": "#64748b", "milrinone": "#94a3b8"}
ATTRIBUTED_COLOUR = "#d1d5db"  # support a clinician attributed to another cause (not counted toward CRS)
CLASS_COLOUR = {"il6r_blockade": "#1d4ed8", "il6_blockade": "#1d4ed8", "corticosteroid": "#15803d",
                "il1_blockade": "#9333ea", "jak_inhibitor": "#c2410c", "ifng_blockade": "#db2777",
                "cytotoxic": "#78350f", "car_t": "#111827", "dimerizer": "#0891b2", "antipyretic": "#6b7280",
                "other": "#6b7280"}
CLASS_ORDER = ("car_t", "dimerizer", "il6r_blockade", "il6_blockade", "corticosteroid", "il1_blockade",
               "jak_inhibitor", "ifng_blockade", "cytotoxic", "antipyretic", "other")

PANELS: tuple[tuple[str, str, float], ...] = (
    # key, axis title, relative height
    ("alerts", "Alerts", 1.3),
    ("grades", "Grades", 0.55),
    ("temp", "Temp °C", 1.0),
    ("bp", "BP mmHg", 1.0),
    ("spo2", "SpO₂ %", 0.7),
    ("o2", "O₂", 0.3),
    ("agents", "Vasoactive", 0.6),
    ("nee", "NEE µg/kg/min", 0.8),
    ("drugs", "Drugs", 1.2),
    ("findings", "Findings", 0.8),
    ("ferritin", "Ferritin ng/mL", 0.9),
    ("crp", "CRP mg/L", 0.7),
    ("fibrinogen", "Fibrinogen mg/dL", 0.7),
)
ROW = {key: i + 1 for i, (key, _, _) in enumerate(PANELS)}
DAY_S = 86400.0


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def wrap(text: str, width: int = 110) -> str:
    return "<br>".join(esc(x) for x in textwrap.wrap(text, width)) or esc(text)


def oxygen_label(o: OxygenSpan) -> str:
    text = o.device.replace("_", " ") + ("" if o.flow_l_min is None else f" {o.flow_l_min:g} L/min")
    if o.attributed:
        return f"{text} (attributed: {o.reason})"
    return f"{text} ({o.reason})" if o.reason else text


def alert_hover(a: Alert, when: str) -> str:
    lines = [f"<b>ALERT [{esc(a.severity)}] {esc(a.summary)}</b>", esc(when), f"{esc(a.id)} ({esc(a.status)})"]
    if a.late or a.correction:
        lines.append("late event" if a.late else "correction (event re-ordered into the window)")
    lines += ["evidence:"] + ["• " + wrap(e) for e in a.evidence]
    return "<br>".join(lines)


@dataclass(frozen=True, slots=True)
class FigureInput:
    series: PatientSeries
    records: Sequence[Record]
    cfg: Thresholds
    title: str
    xlim: tuple[float, float] | None = None  # Day range shown first (the page can zoom out)


def _ferritin_reference(s: PatientSeries, cfg: Thresholds) -> tuple[float, str]:
    base = s.baselines.get("ferritin")
    if base is not None:
        return cfg.ferritin_fold_over_reference * base, (
            f"IEC-HS reference {cfg.ferritin_fold_over_reference:g}x baseline ({base:g}) [U]")
    return cfg.ferritin_fold_over_reference * cfg.ferritin_uln_ng_ml, (
        f"IEC-HS reference {cfg.ferritin_fold_over_reference:g}x ULN ({cfg.ferritin_uln_ng_ml:g}, in-house) [U]")


def x_range(s: PatientSeries, records: Sequence[Record]) -> tuple[float, float]:
    xs = [s.x(s.first_ts), s.x(s.last_ts)] + [s.x(record_ts(r)) for r in records]
    lo, hi = min(xs), max(xs)
    if s.day0_ts is not None:
        lo = max(lo, -1.0)  # baseline labs weeks before the infusion would squeeze the course; zoom out to see
    return lo - 0.3, hi + 0.3


def x_title(s: PatientSeries) -> str:
    if s.day0_ts is None:
        return "Days since the first event's day (no CAR-T infusion in the input: Day 0 unknown)"
    return "Day since CAR-T infusion (Day 0 = infusion day, UTC)"


def day_ticks(lo: float, hi: float) -> tuple[list[int], list[str]]:
    first, last = int(lo // 1), int(hi // 1) + 1
    step = 1 if last - first <= 32 else 2 if last - first <= 64 else 7
    vals = [d for d in range(first, last + 1) if d % step == 0]
    return vals, [f"{d:+d}" for d in vals]


# ------------------------------------------------------------------ plotly


def plotly_figure(fi: FigureInput) -> Any:
    import plotly.graph_objects as go  # type: ignore[import-untyped]
    from plotly.subplots import make_subplots  # type: ignore[import-untyped]

    s, cfg = fi.series, fi.cfg
    heights = [h for _, _, h in PANELS]
    fig = make_subplots(rows=len(PANELS), cols=1, shared_xaxes=True, vertical_spacing=0.008,
                        row_heights=[h / sum(heights) for h in heights])
    alerts = alerts_of(fi.records)

    # alerts: one trace per severity, y = alert kind
    kinds = sorted({a.kind for a in alerts})
    for sev, colour in SEVERITY_COLOUR.items():
        sel: list[Any] = [a for a in alerts if a.severity == sev]
        if not sel:
            continue
        fig.add_trace(go.Scatter(
            x=[s.x(record_ts(a)) for a in sel], y=[a.kind for a in sel], mode="markers",
            name=f"Alert: {sev}", legendgroup="alerts", meta="alert",
            marker={"size": 11, "color": colour, "symbol": ["circle" if a.status == "firing" else "circle-open"
                                                              for a in sel], "line": {"width": 1, "color": "#000"}},
            hovertext=[alert_hover(a, s.when(record_ts(a))) for a in sel], hoverinfo="text",
            customdata=[a.id for a in sel],
        ), row=ROW["alerts"], col=1)

    # grades band
    spans = grade_spans(fi.records, s.last_ts)
    for level in (1, 2, 3, 4):
        sel = [g for g in spans if g.level == level]
        if not sel:
            continue
        fig.add_trace(go.Bar(
            orientation="h", base=[s.x(g.start) for g in sel], x=[(g.end - g.start) / DAY_S for g in sel],
            y=[g.scale for g in sel], marker={"color": LEVEL_COLOUR[level], "line": {"width": 0}},
            name=f"grade/level {level}", legendgroup="grades", width=0.8,
            hovertext=[f"{esc(g.label)}<br>from {esc(s.when(g.start))}<br>to {esc(s.when(g.end))}" for g in sel],
            hoverinfo="text", showlegend=True,
        ), row=ROW["grades"], col=1)

    lo, hi = fi.xlim if fi.xlim is not None else x_range(s, fi.records)

    def vital(measure: str, key: str, name: str, colour: str, unit: str) -> None:
        pts = s.vitals.get(measure, [])
        if not pts:
            return
        hover = []
        for p in pts:
            extra = "" if p.n == 1 else (f"<br>{p.role} of {p.n} readings, "
                                        f"{esc(s.when(p.bucket_start))} to {esc(s.when(p.bucket_end))[:20]}")
            hover.append(f"{name} {p.value:g} {unit}<br>{esc(s.when(p.ts))}{extra}")
        kind = go.Scattergl if len(pts) > 5000 else go.Scatter  # WebGL only where SVG would be slow
        fig.add_trace(kind(
            x=[s.x(p.ts) for p in pts], y=[p.value for p in pts], mode="lines+markers" if len(pts) < 200 else "lines",
            name=name, line={"color": colour, "width": 1.2}, marker={"size": 6}, hovertext=hover, hoverinfo="text",
        ), row=ROW[key], col=1)

    vital("temperature", "temp", "Temperature", "#dc2626", "°C")
    vital("sbp", "bp", "SBP", "#1d4ed8", "mmHg")
    vital("map", "bp", "MAP", "#0891b2", "mmHg")
    vital("spo2", "spo2", "SpO₂", "#0f766e", "%")

    def hline(key: str, y: float, label: str, colour: str = "#555") -> None:
        fig.add_trace(go.Scatter(x=[lo, hi], y=[y, y], mode="lines", name=label, showlegend=False,
                                 line={"color": colour, "dash": "dash", "width": 1}, hoverinfo="name"),
                      row=ROW[key], col=1)

    hline("temp", cfg.fever_c, f"fever ≥ {cfg.fever_c:g} °C (ASTCT 2019)", "#dc2626")
    hline("bp", cfg.hypotension_sbp_below, f"SBP < {cfg.hypotension_sbp_below:g} mmHg (hypotension, in-house)",
          "#1d4ed8")

    # documented fever / hypotension (case reports chart the sign, not the number)
    for key, finding, y_on, y_off in (("temp", "fever", cfg.fever_c + 0.5, cfg.fever_c - 1.0),
                                      ("bp", "hypotension", cfg.hypotension_sbp_below - 10,
                                       cfg.hypotension_sbp_below + 20)):
        sel = [f for f in s.findings if f.finding == finding]
        if sel:
            fig.add_trace(go.Scatter(
                x=[s.x(f.ts) for f in sel], y=[y_on if f.present else y_off for f in sel], mode="markers",
                name=f"documented {finding}", marker={"symbol": ["star" if f.present else "star-open" for f in sel],
                                                      "size": 11, "color": "#7f1d1d" if key == "temp" else "#1e3a8a"},
                hovertext=[f"documented {'' if f.present else 'no '}{finding}<br>{esc(s.when(f.ts))}"
                           + (f"<br>reason: {esc(f.reason)}" if f.reason else "") for f in sel],
                hoverinfo="text"), row=ROW[key], col=1)

    # oxygen band (support a clinician attributed to another cause is grey)
    for axis, attributed in sorted({(o.axis, o.attributed) for o in s.oxygen}):
        sel = [o for o in s.oxygen if o.axis == axis and o.attributed == attributed]
        fig.add_trace(go.Bar(
            orientation="h", base=[s.x(o.start) for o in sel], x=[(o.end - o.start) / DAY_S for o in sel],
            y=["O₂"] * len(sel), marker={"color": ATTRIBUTED_COLOUR if attributed else OXYGEN_COLOUR[axis]},
            width=0.9, name=f"O₂ level {axis}" + (" (attributed)" if attributed else ""),
            text=[oxygen_label(o) for o in sel], textposition="inside", insidetextanchor="start",
            hovertext=[esc(oxygen_label(o)) + ("" if o.fio2_pct is None else f", FiO₂ {o.fio2_pct:g}%")
                       + f"<br>ASTCT hypoxia level of the device {o.axis}"
                       + ("<br>not counted toward CRS: attributed by a clinician" if o.attributed else "")
                       + f"<br>{esc(s.when(o.start))} to {esc(s.when(o.end))}" for o in sel],
            hoverinfo="text", showlegend=False), row=ROW["o2"], col=1)

    # vasoactive agents: lanes and NEE
    agents = sorted({a.agent for a in s.agents})
    for agent in agents:
        sel = [a for a in s.agents if a.agent == agent]
        colour = AGENT_COLOUR.get(agent, "#444")
        fig.add_trace(go.Bar(
            orientation="h", base=[s.x(a.start) for a in sel], x=[(a.end - a.start) / DAY_S for a in sel],
            y=[agent.replace("_", " ")] * len(sel), width=0.8, name=agent,
            marker={"color": [ATTRIBUTED_COLOUR if a.attributed else colour for a in sel]},
            legendgroup=agent, showlegend=False,
            text=[("" if a.rate is None else f"{a.rate:g} {a.unit}")
                  + (f" (attributed: {a.attributed})" if a.attributed else "") for a in sel], textposition="inside",
            hovertext=[f"{esc(agent)} " + ("rate not charted" if a.rate is None else f"{a.rate:g} {esc(a.unit or '')}")
                       + ("" if a.nee is None else f"<br>NEE {a.nee:.3g} µg/kg/min")
                       + ("" if a.why_not is None else f"<br>NEE: {esc(a.why_not)}")
                       + ("" if a.attributed is None else f"<br>attributed by a clinician to {esc(a.attributed)}")
                       + f"<br>{esc(s.when(a.start))} to {esc(s.when(a.end))}" for a in sel],
            hoverinfo="text"), row=ROW["agents"], col=1)
        xs: list[float] = []
        ys: list[float | None] = []
        for a in sel:
            if a.nee is None:
                continue
            xs += [s.x(a.start), s.x(a.end), s.x(a.end)]
            ys += [a.nee, a.nee, None]
        if xs:
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"NEE {agent}", legendgroup=agent,
                                     line={"color": colour, "width": 1.5, "shape": "hv"},
                                     hovertemplate=f"{agent} %{{y:.3g}} µg/kg/min NE-eq<extra></extra>"),
                          row=ROW["nee"], col=1)
    tot = [p for p in s.nee_total]
    if any(p.nee for p in tot):
        fig.add_trace(go.Scatter(
            x=[s.x(p.ts) for p in tot] + [s.x(s.last_ts)], y=[p.nee for p in tot] + [tot[-1].nee],
            mode="lines", name="NEE total (Goradia 2021)", line={"color": "#111", "width": 2.2, "shape": "hv"},
            hovertext=[f"total NEE {'not computable' if p.nee is None else f'{p.nee:.3g} µg/kg/min'}"
                       f"<br>{esc(p.detail)}<br>{esc(s.when(p.ts))}" for p in tot] + [""],
            hoverinfo="text", connectgaps=False), row=ROW["nee"], col=1)

    # drugs: one lane per drug, ordered by class
    drugs = sorted({(d.drug_class, d.drug) for d in s.doses},
                   key=lambda c: (CLASS_ORDER.index(c[0]) if c[0] in CLASS_ORDER else 99, c[1]))
    for cls, drug in drugs:
        sel = [d for d in s.doses if d.drug == drug]
        fig.add_trace(go.Scatter(
            x=[s.x(d.ts) for d in sel], y=[drug] * len(sel), mode="markers", name=drug, showlegend=False,
            marker={"symbol": "diamond" if cls != "car_t" else "star", "size": 11,
                    "color": CLASS_COLOUR.get(cls, "#6b7280"), "line": {"width": 1, "color": "#000"}},
            hovertext=[f"<b>{esc(drug)}</b> ({esc(cls)})"
                       + ("" if d.dose is None else f" {d.dose:g} {esc(d.unit or '')}")
                       + f"<br>{esc(s.when(d.ts))}" + (f"<br>reason: {esc(d.reason)}" if d.reason else "")
                       for d in sel], hoverinfo="text"), row=ROW["drugs"], col=1)

    other = [f for f in s.findings if f.finding not in ("fever", "hypotension")]
    for name in sorted({f.finding for f in other}):
        sel = [f for f in other if f.finding == name]
        fig.add_trace(go.Scatter(
            x=[s.x(f.ts) for f in sel], y=[name.replace("_", " ")] * len(sel), mode="markers", showlegend=False,
            name=name, marker={"symbol": ["square" if f.present else "square-open" for f in sel], "size": 9,
                               "color": "#374151"},
            hovertext=[f"{esc(name)} {'documented' if f.present else 'absent'}<br>{esc(s.when(f.ts))}" for f in sel],
            hoverinfo="text"), row=ROW["findings"], col=1)

    if s.attributions:
        fig.add_trace(go.Scatter(
            x=[s.x(a.ts) for a in s.attributions], y=["clinician attribution"] * len(s.attributions),
            mode="markers", showlegend=False, name="attribution",
            marker={"symbol": "x", "size": 9, "color": "#6d28d9"},
            hovertext=[f"clinician attribution: {esc(', '.join(a.targets))}"
                       + (f" ({esc(a.agent)})" if a.agent else "") + f"<br>reason: {esc(a.reason)}"
                       + ("<br>also for later findings" if a.forward else "") + f"<br>{esc(s.when(a.ts))}"
                       for a in s.attributions], hoverinfo="text"), row=ROW["findings"], col=1)

    def lab(analyte: str, key: str, colour: str) -> None:
        pts = s.labs.get(analyte, [])
        if not pts:
            return
        fig.add_trace(go.Scatter(
            x=[s.x(p.ts) for p in pts], y=[p.value for p in pts], mode="lines+markers", name=analyte,
            line={"color": colour}, marker={"symbol": ["triangle-up" if p.comparator in (">", ">=") else "circle"
                                                       for p in pts], "size": 8},
            hovertext=[f"{esc(analyte)} {esc(p.comparator or '')}{p.value:g} {esc(p.unit)}<br>collected "
                       f"{esc(s.when(p.ts))}" for p in pts], hoverinfo="text"), row=ROW[key], col=1)

    lab("ferritin", "ferritin", "#b45309")
    lab("crp", "crp", "#4338ca")
    lab("fibrinogen", "fibrinogen", "#047857")
    if s.labs.get("ferritin"):
        hline("ferritin", cfg.ferritin_high_ng_ml, f"ferritin > {cfg.ferritin_high_ng_ml:g} (CARTOX carHLH)",
              "#b45309")
        ref, label = _ferritin_reference(s, cfg)
        hline("ferritin", ref, label, "#d97706")
        fig.update_yaxes(type="log", dtick=1, tickformat=",.0f", row=ROW["ferritin"], col=1)
    if s.labs.get("fibrinogen"):
        hline("fibrinogen", cfg.fibrinogen_low_mg_dl,
              f"fibrinogen < {cfg.fibrinogen_low_mg_dl:g} mg/dL (HLH-2004)", "#047857")

    def note(key: str, text: str) -> None:
        n = ROW[key]
        fig.add_annotation(text=esc(text), xref=f"x{'' if n == 1 else n} domain", yref=f"y{'' if n == 1 else n} domain",
                           x=0.005, y=0.5, showarrow=False, xanchor="left", font={"size": 10, "color": "#666"})

    for key, _, _ in PANELS:  # an empty panel keeps its axes (and its note)
        fig.add_trace(go.Scatter(x=[lo, hi], y=[None, None], mode="lines", showlegend=False, hoverinfo="skip",
                                 name=f"_{key}"), row=ROW[key], col=1)
    fig.update_yaxes(range=[80, 101], row=ROW["spo2"], col=1)
    if not any(p.nee for p in s.nee_total):
        fig.update_yaxes(range=[0, 0.5], row=ROW["nee"], col=1)
    if not s.vitals.get("spo2"):
        note("spo2", "no SpO₂ charted")
    if not s.vitals.get("temperature"):
        note("temp", "no temperature charted: stars = documented fever / afebrile")
    if not any(p.nee for p in s.nee_total):
        why = [a.why_not for a in s.agents if a.why_not and a.role != "inotrope"]
        note("nee", "NEE not computable: " + ("; ".join(dict.fromkeys(why)) or "no vasopressor given")[:160])
    for analyte in ("ferritin", "crp", "fibrinogen"):
        if not s.labs.get(analyte):
            note(analyte, f"no {analyte} value charted")
    ticks, labels = day_ticks(lo, hi)
    for key, title, _ in PANELS:
        fig.update_yaxes(title_text=title, title_font={"size": 10}, tickfont={"size": 9}, row=ROW[key], col=1)
    for key in ("alerts", "grades", "o2", "agents", "drugs", "findings"):
        fig.update_yaxes(type="category", row=ROW[key], col=1)
    if kinds:
        fig.update_yaxes(categoryorder="array", categoryarray=kinds, row=ROW["alerts"], col=1)
    fig.update_yaxes(categoryorder="array", categoryarray=["IEC-HS", "ICANS", "CRS"], row=ROW["grades"], col=1)
    fig.update_yaxes(categoryorder="array", categoryarray=[d for _, d in drugs][::-1], row=ROW["drugs"], col=1)
    fig.update_xaxes(range=[lo, hi], tickvals=ticks, ticktext=labels, showgrid=True, gridcolor="#eee",
                     showticklabels=False)
    fig.update_xaxes(showticklabels=True, title_text=x_title(s),
                     row=len(PANELS), col=1)
    fig.update_layout(
        title={"text": esc(fi.title), "x": 0.01, "y": 0.995}, height=1550, barmode="overlay", hovermode="closest",
        template="plotly_white", margin={"l": 120, "r": 30, "t": 110, "b": 50},
        legend={"orientation": "h", "y": 1.005, "yanchor": "bottom", "x": 0.0, "font": {"size": 10}},
        hoverlabel={"align": "left", "font": {"size": 11}},
    )
    return fig


# ------------------------------------------------------------------ matplotlib


def png_figure(fi: FigureInput, path: Path, xlim: tuple[float, float] | None = None, dpi: int = 110) -> None:
    """The same panels as a static PNG (fits a slide at 16x12 in). `xlim` zooms to a Day range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s, cfg = fi.series, fi.cfg
    alerts = alerts_of(fi.records)
    heights = [h for _, _, h in PANELS]
    fig, axes = plt.subplots(len(PANELS), 1, sharex=True, figsize=(16, 15),
                             gridspec_kw={"height_ratios": heights, "hspace": 0.08})
    ax = {key: axes[i] for i, (key, _, _) in enumerate(PANELS)}
    lo, hi = xlim or fi.xlim or x_range(s, fi.records)

    def lanes(a: Any, names: list[str]) -> dict[str, int]:
        pos = {n: i for i, n in enumerate(names)}
        a.set_yticks(range(len(names)))
        a.set_yticklabels(names, fontsize=7)
        a.set_ylim(-0.7, max(len(names) - 0.3, 0.7))
        return pos

    kinds = sorted({al.kind for al in alerts})
    pos = lanes(ax["alerts"], kinds)
    for al in alerts:
        x = s.x(record_ts(al))
        ax["alerts"].scatter([x], [pos[al.kind]], s=40, zorder=3, edgecolors="black", linewidths=0.5,
                             c=SEVERITY_COLOUR[al.severity] if al.status == "firing" else "white")

    pos = lanes(ax["grades"], ["IEC-HS", "ICANS", "CRS"])
    for g in grade_spans(fi.records, s.last_ts):
        _band(ax["grades"], s, g, pos[g.scale], LEVEL_COLOUR[g.level], str(g.level))

    def vital(measure: str, key: str, colour: str, label: str) -> None:
        pts = s.vitals.get(measure, [])
        if pts:
            ax[key].plot([s.x(p.ts) for p in pts], [p.value for p in pts], color=colour, lw=0.9,
                         marker="o" if len(pts) < 200 else None, ms=3, label=label)

    vital("temperature", "temp", "#dc2626", "temperature")
    vital("sbp", "bp", "#1d4ed8", "SBP")
    vital("map", "bp", "#0891b2", "MAP")
    vital("spo2", "spo2", "#0f766e", "SpO2")
    ax["temp"].axhline(cfg.fever_c, color="#dc2626", ls="--", lw=0.8)
    ax["bp"].axhline(cfg.hypotension_sbp_below, color="#1d4ed8", ls="--", lw=0.8)
    for key, finding, y_on, y_off in (("temp", "fever", cfg.fever_c + 0.5, cfg.fever_c - 1.0),
                                      ("bp", "hypotension", cfg.hypotension_sbp_below - 10,
                                       cfg.hypotension_sbp_below + 20)):
        for f in s.findings:
            if f.finding == finding:
                ax[key].scatter([s.x(f.ts)], [y_on if f.present else y_off], marker="*", s=70,
                                c="#7f1d1d" if f.present else "white", edgecolors="#7f1d1d", zorder=3)
    ax["temp"].set_ylim(35.5, 41.5)
    ax["spo2"].set_ylim(80, 101)
    if not s.vitals.get("spo2"):
        ax["spo2"].text(0.01, 0.5, "no SpO2 charted", transform=ax["spo2"].transAxes, fontsize=7, color="#666")
    bp_vals = [p.value for m in ("sbp", "map") for p in s.vitals.get(m, [])]
    ax["bp"].set_ylim(min([*bp_vals, cfg.hypotension_sbp_below - 25]) - 5, max([*bp_vals, 140]) + 5)

    for o in s.oxygen:
        ax["o2"].broken_barh([(s.x(o.start), (o.end - o.start) / DAY_S)], (-0.4, 0.8),
                             facecolors=ATTRIBUTED_COLOUR if o.attributed else OXYGEN_COLOUR[o.axis])
        if s.x(o.end) > lo and s.x(o.start) < hi:
            ax["o2"].text(max(s.x(o.start), lo) + 0.02, 0, oxygen_label(o), fontsize=6, va="center",
                          color="white" if o.axis >= 3 and not o.attributed else "black", clip_on=True)
    lanes(ax["o2"], ["O2"])

    agents = sorted({a.agent for a in s.agents})
    pos = lanes(ax["agents"], [a.replace("_", " ") for a in agents])
    for a in s.agents:
        y = pos[a.agent.replace("_", " ")]
        ax["agents"].broken_barh([(s.x(a.start), (a.end - a.start) / DAY_S)], (y - 0.35, 0.7),
                                 facecolors=ATTRIBUTED_COLOUR if a.attributed else AGENT_COLOUR.get(a.agent, "#444"))
        text = ("" if a.rate is None else f"{a.rate:g} {a.unit}") + (
            f" attributed: {a.attributed}" if a.attributed else "")
        if text and s.x(a.end) > lo and s.x(a.start) < hi:
            ax["agents"].text(max(s.x(a.start), lo) + 0.02, y, text, fontsize=6, va="center",
                              color="black" if a.attributed else "white", clip_on=True)
        if a.nee is not None:
            ax["nee"].hlines(a.nee, s.x(a.start), s.x(a.end), colors=AGENT_COLOUR.get(a.agent, "#444"), lw=1.2)
    tot = [p for p in s.nee_total if p.nee is not None]
    if any(p.nee for p in tot):
        ax["nee"].step([s.x(p.ts) for p in tot] + [s.x(s.last_ts)], [p.nee for p in tot] + [tot[-1].nee],
                       where="post", color="#111", lw=1.8)
    else:
        why = [a.why_not for a in s.agents if a.why_not and a.role != "inotrope"]
        text = "NEE not computable: " + ("; ".join(dict.fromkeys(why)) or "no vasopressor given")[:160]
        ax["nee"].text(0.01, 0.5, text, transform=ax["nee"].transAxes, fontsize=7, color="#666")

    drugs = sorted({(d.drug_class, d.drug) for d in s.doses},
                   key=lambda c: (CLASS_ORDER.index(c[0]) if c[0] in CLASS_ORDER else 99, c[1]))
    pos = lanes(ax["drugs"], [d for _, d in drugs][::-1])
    for d in s.doses:
        ax["drugs"].scatter([s.x(d.ts)], [pos[d.drug]], marker="*" if d.drug_class == "car_t" else "D", s=36,
                            c=CLASS_COLOUR.get(d.drug_class, "#6b7280"), edgecolors="black", linewidths=0.4,
                            zorder=3)
    other = sorted({f.finding for f in s.findings if f.finding not in ("fever", "hypotension")})
    pos = lanes(ax["findings"], [o.replace("_", " ") for o in other]
                + (["clinician attribution"] if s.attributions else []))
    for at in s.attributions:
        ax["findings"].scatter([s.x(at.ts)], [pos["clinician attribution"]], marker="x", s=25, c="#6d28d9")
    for f in s.findings:
        if f.finding in other:
            ax["findings"].scatter([s.x(f.ts)], [pos[f.finding.replace("_", " ")]], marker="s", s=20,
                                   c="#374151" if f.present else "white", edgecolors="#374151")

    for analyte, key, colour in (("ferritin", "ferritin", "#b45309"), ("crp", "crp", "#4338ca"),
                                 ("fibrinogen", "fibrinogen", "#047857")):
        pts = s.labs.get(analyte, [])
        if pts:
            ax[key].plot([s.x(p.ts) for p in pts], [p.value for p in pts], color=colour, marker="o", ms=3.5, lw=1)
            for p in pts:
                if p.comparator in (">", ">="):
                    ax[key].annotate(f">{p.value:g}", (s.x(p.ts), p.value), fontsize=6, xytext=(3, 3),
                                     textcoords="offset points")
    for analyte in ("ferritin", "crp", "fibrinogen"):
        if not s.labs.get(analyte):
            ax[analyte].text(0.01, 0.5, f"no {analyte} value charted", transform=ax[analyte].transAxes, fontsize=7,
                             color="#666")
    if s.labs.get("ferritin"):
        ax["ferritin"].set_yscale("log")
        ax["ferritin"].axhline(cfg.ferritin_high_ng_ml, color="#b45309", ls="--", lw=0.8)
        ax["ferritin"].axhline(_ferritin_reference(s, cfg)[0], color="#d97706", ls=":", lw=0.8)
    if s.labs.get("fibrinogen"):
        ax["fibrinogen"].axhline(cfg.fibrinogen_low_mg_dl, color="#047857", ls="--", lw=0.8)

    ticks, labels = day_ticks(lo, hi)
    for key, title, _ in PANELS:
        a = ax[key]
        a.set_ylabel(title, fontsize=7, rotation=0, ha="right", va="center")
        a.tick_params(axis="y", labelsize=7)
        a.grid(axis="x", color="#eee", lw=0.6)
    axes[-1].set_xticks(ticks)
    axes[-1].set_xticklabels(labels, fontsize=8)
    axes[-1].set_xlim(lo, hi)
    axes[-1].set_xlabel(x_title(s), fontsize=9)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [Line2D([], [], marker="o", ls="", color=c, markeredgecolor="black", label=f"alert {sev}")
               for sev, c in SEVERITY_COLOUR.items()]
    handles += [Patch(color=LEVEL_COLOUR[lv], label=f"grade/level {lv}") for lv in (1, 2, 3, 4)]
    handles += [Patch(color=OXYGEN_COLOUR[lv], label=f"O2 ASTCT level {lv}") for lv in (2, 3, 4)]
    handles += [Patch(color=ATTRIBUTED_COLOUR, label="support attributed to another cause"),
                Line2D([], [], marker="*", ls="", color="#7f1d1d", label="documented sign"),
                Line2D([], [], marker="D", ls="", color=CLASS_COLOUR["il6r_blockade"], label="IL-6 blockade"),
                Line2D([], [], marker="D", ls="", color=CLASS_COLOUR["corticosteroid"], label="corticosteroid")]
    fig.legend(handles=handles, loc="upper right", ncol=7, fontsize=7, frameon=False, bbox_to_anchor=(0.99, 0.999))
    fig.suptitle(fi.title, fontsize=11, x=0.01, ha="left", y=0.995)
    fig.subplots_adjust(left=0.12, right=0.99, top=0.955, bottom=0.04)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def _band(a: Any, s: PatientSeries, g: GradeSpan, y: int, colour: str, text: str) -> None:
    a.broken_barh([(s.x(g.start), (g.end - g.start) / DAY_S)], (y - 0.4, 0.8), facecolors=colour)
