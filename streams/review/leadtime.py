"""Lead time of alerts against the clinicians' own escalation (pure, no I/O).

An escalation is what the input records a clinician did (taken from `series.PatientSeries`, so corrected and
retracted records are honoured):
- `il6_blockade`: tocilizumab or siltuximab given;
- `corticosteroid`: a corticosteroid given (dexamethasone, methylprednisolone, hydrocortisone, ...);
- `other_anticytokine`: anakinra, ruxolitinib, emapalumab, etoposide (IL-1, JAK, IFN-gamma blockade, cytotoxic);
- `vasopressor_start`: a vasopressor started while none was running (inotropes are not vasopressors);
- `oxygen_high_flow`: oxygen escalated to the ASTCT high-flow class (high-flow nasal cannula, facemask,
  non-rebreather, Venturi; nasal cannula above 6 L/min) from less;
- `positive_pressure`: CPAP, BiPAP or invasive ventilation started from less.
The input has no ICU-transfer event (neither seed case records one); see docs/case-review.md.

A repeat within `repeat_hours` of the previous one continues that escalation: the same drug (dexamethasone every
6 h is one escalation; anakinra then ruxolitinib are two), or another vasopressor start or oxygen escalation.
For each escalation the related firing alerts (RELATED) within `lookback_hours` around it are split into: before
it (strictly earlier; the earliest gives the lead time, the latest is the warning closest to the decision), at the
same time (a tie: no warning in advance, often the alert the escalation itself caused), and only after it (kinds with no
alert before or at it). Resolved alerts and de-escalations ("CRS de-escalated to grade 1") warn of nothing and are
left out. An escalation with nothing before it is "not preceded".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from models.records import Alert
from streams.review.series import PatientSeries, record_ts

# Review parameters (not clinical thresholds: they only group and window the comparison).
DEFAULT_LOOKBACK_HOURS = 72.0
DEFAULT_REPEAT_HOURS = 24.0

_CRS_SIGNS = frozenset({"crs", "refractory_crs", "vasopressor_escalation", "inotrope", "oxygen_escalation"})
_HLH_SIGNS = frozenset({"iec_hs", "ferritin_high", "ferritin_rapid_rise", "hypofibrinogenemia",
                        "crp_ferritin_divergence"})
RELATED: dict[str, frozenset[str]] = {
    "il6_blockade": _CRS_SIGNS,
    "corticosteroid": _CRS_SIGNS | _HLH_SIGNS | {"icans"},
    "other_anticytokine": _CRS_SIGNS | _HLH_SIGNS | {"icans"},
    "vasopressor_start": frozenset({"crs", "refractory_crs", "inotrope"}),
    "oxygen_high_flow": frozenset({"crs", "refractory_crs", "oxygen_escalation"}),
    "positive_pressure": frozenset({"crs", "refractory_crs", "oxygen_escalation", "icans"}),
}
ESCALATION_KINDS: tuple[str, ...] = tuple(RELATED)

_DRUG_KIND = {
    "il6r_blockade": "il6_blockade",
    "il6_blockade": "il6_blockade",
    "corticosteroid": "corticosteroid",
    "il1_blockade": "other_anticytokine",
    "jak_inhibitor": "other_anticytokine",
    "ifng_blockade": "other_anticytokine",
    "cytotoxic": "other_anticytokine",
}


@dataclass(frozen=True, slots=True)
class Escalation:
    patient_id: str
    ts: float
    kind: str
    detail: str
    what: str = ""  # the drug, for drug escalations: repeats are grouped per drug

    @property
    def key(self) -> tuple[str, float, str]:
        return (self.patient_id, self.ts, self.kind)


@dataclass(frozen=True, slots=True)
class AlertRef:
    id: str
    kind: str
    level: str
    severity: str
    status: str
    ts: float
    summary: str
    evidence: tuple[str, ...] = ()

    @staticmethod
    def of(a: Alert) -> AlertRef:
        return AlertRef(a.id, a.kind, a.level, a.severity, a.status, record_ts(a), a.summary, a.evidence)


@dataclass(frozen=True, slots=True)
class LeadRow:
    escalation: Escalation
    before: tuple[AlertRef, ...]  # related alerts strictly before, earliest first
    concurrent: tuple[AlertRef, ...]  # at the same time
    only_after: tuple[AlertRef, ...]  # after it, of kinds with nothing before or at it

    @property
    def first_before(self) -> AlertRef | None:
        return self.before[0] if self.before else None

    @property
    def lead_s(self) -> float | None:
        first = self.first_before
        return None if first is None else self.escalation.ts - first.ts

    @property
    def last_before(self) -> AlertRef | None:
        """The most recent related alert before it (the warning closest to the decision)."""
        return self.before[-1] if self.before else None

    @property
    def preceded(self) -> bool:
        return bool(self.before)


def escalations(series: PatientSeries, repeat_hours: float = DEFAULT_REPEAT_HOURS) -> list[Escalation]:
    """The clinicians' escalations in the patient's data, in time order."""
    raw: list[Escalation] = []
    pid = series.patient_id
    for d in series.doses:
        kind = _DRUG_KIND.get(d.drug_class)
        if kind is not None:
            dose = "" if d.dose is None else f" {d.dose:g} {d.unit or ''}".rstrip()
            raw.append(Escalation(pid, d.ts, kind, f"{d.drug}{dose}", d.drug))
    pressors = sorted((s for s in series.agents if s.role != "inotrope"), key=lambda s: s.start)
    covered_until = float("-inf")
    for s in pressors:
        if s.start > covered_until:
            raw.append(Escalation(pid, s.start, "vasopressor_start", f"{s.agent} started"))
        covered_until = max(covered_until, s.end)
    prev_axis, prev_end = 0, float("-inf")
    for o in series.oxygen:
        before = prev_axis if o.start <= prev_end else 0
        flow = "" if o.flow_l_min is None else f" {o.flow_l_min:g} L/min"
        if o.axis >= 4 > before:
            raw.append(Escalation(pid, o.start, "positive_pressure", f"{o.device}{flow}"))
        elif o.axis == 3 and before < 3:
            raw.append(Escalation(pid, o.start, "oxygen_high_flow", f"{o.device}{flow}"))
        prev_axis, prev_end = o.axis, o.end
    raw.sort(key=lambda e: (e.ts, e.kind))
    out: list[Escalation] = []
    last: dict[tuple[str, str], float] = {}
    for e in raw:
        prev = last.get((e.kind, e.what))
        last[(e.kind, e.what)] = e.ts
        if prev is not None and e.ts - prev < repeat_hours * 3600:
            continue
        out.append(e)
    return out


def lead_times(escs: Iterable[Escalation], alerts: Iterable[AlertRef],
               lookback_hours: float = DEFAULT_LOOKBACK_HOURS) -> list[LeadRow]:
    """For each escalation, the related firing alerts before, at and only after it (see the module doc)."""
    firing = sorted((a for a in alerts if a.status == "firing" and not a.level.startswith("down")),
                    key=lambda a: (a.ts, a.id))
    window = lookback_hours * 3600
    rows: list[LeadRow] = []
    for e in escs:
        related = RELATED[e.kind]
        near = [a for a in firing if a.kind in related and e.ts - window <= a.ts <= e.ts + window]
        before = tuple(a for a in near if a.ts < e.ts)
        concurrent = tuple(a for a in near if a.ts == e.ts)
        seen = {a.kind for a in before + concurrent}
        after = tuple(a for a in near if a.ts > e.ts and a.kind not in seen)
        rows.append(LeadRow(e, before, concurrent, after))
    return rows


def fmt_hours(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    h = seconds / 3600
    return f"{h:.1f} h" if abs(h) < 48 else f"{h / 24:.1f} d"


@dataclass(frozen=True, slots=True)
class LeadSummary:
    escalations: int
    preceded: int
    concurrent_only: int
    not_preceded: int
    median_lead_s: float | None


def summarise(rows: Iterable[LeadRow]) -> LeadSummary:
    rows = list(rows)
    leads = sorted(r.lead_s for r in rows if r.lead_s is not None)
    median = None
    if leads:
        mid = len(leads) // 2
        median = leads[mid] if len(leads) % 2 else (leads[mid - 1] + leads[mid]) / 2
    preceded = sum(r.preceded for r in rows)
    concurrent_only = sum(1 for r in rows if not r.preceded and r.concurrent)
    return LeadSummary(len(rows), preceded, concurrent_only, len(rows) - preceded, median)
