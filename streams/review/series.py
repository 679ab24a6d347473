"""Figure data of one patient, extracted from the events and the records of a replay (pure, no I/O).

`SeriesBuilder` takes the patient's events one by one (in any order) and keeps what the timeline figure draws:
vital signs downsampled per time bucket, oxygen support, vasoactive infusions with their norepinephrine-
equivalent dose, drug doses, labs and documented findings. `grade_spans` and `effective` read the records.

Guarantees:
- Downsampling keeps, per bucket of `bucket_seconds`, the lowest and the highest reading of each measure at
  their own times: every drawn point is a real reading (value and time as charted), none is averaged, and the
  extremes that grading reacts to (a 38.0 degC peak, an SBP of 85) survive at any zoom. A bucket with one
  reading keeps it as it is.
- Events other than vital signs honour the log's identity rules: of several versions of one logical record
  only the highest stands, and a retracted record (models.events.Retract) is not drawn. Vital signs are
  bucketed as they arrive, so a retracted or corrected vital-sign reading still draws (stated in the docs).
- Day x positions follow alerts.fold.day_of: Day N is the UTC calendar day N days after the day of the CAR-T
  infusion, so x = 21.33 is Day +21 08:00 UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from alerts.crs import oxygen_axis
from alerts.vasopressors import RunningAgent, nee
from models.events import (
    Attribution,
    ClinicalEvent,
    DrugDose,
    Finding,
    Infusion,
    LabResult,
    OxygenSupport,
    PatientContext,
    Retract,
    VitalSigns,
)
from models.records import Alert, CrsGradeChange, IcansGradeChange, IecHsChange, Record, Retraction, record_key
from models.vocabulary import (
    VASOACTIVE_ROLE,
    DrugClass,
    OxygenDevice,
    VasoactiveAgent,
    VasoactiveRole,
    attributes_to_crs,
    drug_class,
)

VITAL_MEASURES: tuple[str, ...] = ("temperature", "heart_rate", "sbp", "dbp", "map", "spo2", "resp_rate")
DEFAULT_BUCKET_SECONDS = 900.0  # 15 min: a 30-day minute feed draws ~5,800 points per measure


def midnight(ts: float) -> float:
    return ts - (ts % 86400)


def day_x(ts: float, day0_ts: float | None, origin_ts: float) -> float:
    """Fractional Day since infusion (alerts.fold.day_of, continuous); before Day 0 is known, days from the
    midnight of `origin_ts`."""
    base = midnight(day0_ts if day0_ts is not None else origin_ts)
    return (ts - base) / 86400.0


def clock(ts: float, day0_ts: float | None, tz_offset_s: float = 0.0) -> str:
    """'Day +21 08:00 UTC' and the local clock time of the feed: 'Day +21 08:00 UTC (2024-01-22 09:00 +01:00)'."""
    utc = datetime.fromtimestamp(ts, UTC)
    local = utc + timedelta(seconds=tz_offset_s)
    sign = "+" if tz_offset_s >= 0 else "-"
    off = abs(int(tz_offset_s))
    stamp = f"{local:%Y-%m-%d %H:%M} {sign}{off // 3600:02d}:{off % 3600 // 60:02d}"
    if day0_ts is None:
        return f"{utc:%H:%M} UTC ({stamp})"
    day = int((ts - midnight(day0_ts)) // 86400)
    return f"Day {day:+d} {utc:%H:%M} UTC ({stamp})"


def record_ts(r: Record) -> float:
    return datetime.fromisoformat(r.time).timestamp()


def effective(records: Iterable[Record]) -> list[Record]:
    """The records that stand: retractions applied (a retracted record and the retraction both dropped)."""
    recs = list(records)
    retracted = {r.retracts for r in recs if isinstance(r, Retraction)}
    return [r for r in recs if not isinstance(r, Retraction) and record_key(r) not in retracted]


# ------------------------------------------------------------------ the drawn items


@dataclass(frozen=True, slots=True)
class VitalPoint:
    ts: float
    value: float
    n: int  # readings in its bucket
    role: str  # "only", "min", "max", "min=max"
    bucket_start: float
    bucket_end: float


@dataclass(frozen=True, slots=True)
class OxygenSpan:
    start: float
    end: float
    device: str
    flow_l_min: float | None
    fio2_pct: float | None
    axis: int  # ASTCT hypoxia-axis level of the device and flow (alerts.crs.oxygen_axis)
    reason: str | None
    attributed: bool = False  # a clinician attributed it to `reason`, away from CRS


@dataclass(frozen=True, slots=True)
class AgentSpan:
    agent: str
    start: float
    end: float
    rate: float | None
    unit: str | None
    nee: float | None  # this agent's norepinephrine-equivalent dose, ug/kg/min (None: not computable)
    why_not: str | None
    role: str  # vasopressor, vasopressin, inotrope
    attributed: str | None = None  # the non-CRS cause a clinician attributed it to


@dataclass(frozen=True, slots=True)
class NeePoint:
    ts: float
    nee: float | None
    detail: str  # the Goradia terms or why it cannot be computed


@dataclass(frozen=True, slots=True)
class DoseMark:
    ts: float
    drug: str
    drug_class: str
    dose: float | None
    unit: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class LabMark:
    ts: float
    value: float
    unit: str
    comparator: str | None


@dataclass(frozen=True, slots=True)
class FindingMark:
    ts: float
    finding: str
    present: bool
    reason: str | None


@dataclass(frozen=True, slots=True)
class AttributionMark:
    ts: float
    targets: tuple[str, ...]
    reason: str
    agent: str | None
    forward: bool


@dataclass(frozen=True, slots=True)
class PatientSeries:
    patient_id: str
    day0_ts: float | None
    tz_offset_s: float
    first_ts: float
    last_ts: float
    weight_kg: float | None
    vitals: dict[str, list[VitalPoint]]
    vital_counts: dict[str, int]  # readings received per measure (before downsampling)
    oxygen: list[OxygenSpan]
    agents: list[AgentSpan]
    nee_total: list[NeePoint]
    doses: list[DoseMark]
    labs: dict[str, list[LabMark]]
    findings: list[FindingMark]
    baselines: dict[str, float] = field(default_factory=dict)
    attributions: list[AttributionMark] = field(default_factory=list)

    def x(self, ts: float) -> float:
        return day_x(ts, self.day0_ts, self.first_ts)

    def when(self, ts: float) -> str:
        return clock(ts, self.day0_ts, self.tz_offset_s)

    def day_clock(self, ts: float) -> str:
        """'Day +21 08:00' (UTC clock, as alerts.fold.when writes it)."""
        return clock(ts, self.day0_ts).split(" UTC")[0]


# ------------------------------------------------------------------ the builder


class _Bucket:
    __slots__ = ("max_ts", "max_v", "min_ts", "min_v", "n")

    def __init__(self, ts: float, v: float) -> None:
        self.min_ts, self.min_v, self.max_ts, self.max_v, self.n = ts, v, ts, v, 1


class SeriesBuilder:
    """Collects one patient's figure data from its events, in any order; `build` gives the PatientSeries."""

    def __init__(self, patient_id: str, bucket_seconds: float = DEFAULT_BUCKET_SECONDS) -> None:
        if bucket_seconds <= 0:
            raise ValueError("bucket_seconds must be positive")
        self.patient_id = patient_id
        self.bucket_seconds = bucket_seconds
        self.buckets: dict[str, dict[int, _Bucket]] = {m: {} for m in VITAL_MEASURES}
        self.counts: dict[str, int] = dict.fromkeys(VITAL_MEASURES, 0)
        self.others: list[ClinicalEvent] = []
        self.retracted: dict[str, int | None] = {}
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.tz_offset_s = 0.0
        self.car_t_ts: float | None = None

    def add(self, ev: ClinicalEvent) -> None:
        ts = ev.ts
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts
            off = ev.time.utcoffset()
            self.tz_offset_s = off.total_seconds() if off is not None else 0.0
        if isinstance(ev, VitalSigns):
            key = int(ts // self.bucket_seconds)
            for m in VITAL_MEASURES:
                meas = getattr(ev, m)
                if meas is None:
                    continue
                self.counts[m] += 1
                v = meas.value
                b = self.buckets[m].get(key)
                if b is None:
                    self.buckets[m][key] = _Bucket(ts, v)
                    continue
                b.n += 1
                if v < b.min_v or (v == b.min_v and ts < b.min_ts):
                    b.min_ts, b.min_v = ts, v
                if v > b.max_v or (v == b.max_v and ts < b.max_ts):
                    b.max_ts, b.max_v = ts, v
        elif isinstance(ev, Retract):
            if ev.retracts in self.retracted:
                prev = self.retracted[ev.retracts]
                self.retracted[ev.retracts] = None if prev is None or ev.version is None else max(prev, ev.version)
            else:
                self.retracted[ev.retracts] = ev.version
        else:
            self.others.append(ev)

    def _standing(self) -> list[ClinicalEvent]:
        top: dict[str, int] = {}
        for ev in self.others:
            if ev.logical_id is not None and ev.version is not None:
                top[ev.logical_id] = max(top.get(ev.logical_id, ev.version), ev.version)
        out: list[ClinicalEvent] = []
        for ev in self.others:
            lid = ev.logical_id
            if lid is not None:
                best = top.get(lid)
                if best is not None and ev.version is not None and ev.version < best:
                    continue  # an older version of a corrected record
                if lid in self.retracted:
                    rv = self.retracted[lid]
                    if rv is None or ev.version is None or ev.version <= rv:
                        continue
            out.append(ev)
        out.sort(key=lambda e: (e.ts, e.event_id))
        return out

    def build(self, day0_ts: float | None = None) -> PatientSeries:
        first = self.first_ts if self.first_ts is not None else 0.0
        last = self.last_ts if self.last_ts is not None else first
        events = self._standing()
        if day0_ts is None:
            cart = [e.ts for e in events if isinstance(e, DrugDose)
                    and (e.drug_class or drug_class(e.drug)) is DrugClass.CAR_T]
            day0_ts = min(cart) if cart else None
        vitals = {m: _downsample(self.buckets[m], self.bucket_seconds) for m in VITAL_MEASURES}
        weight: float | None = None
        baselines: dict[str, float] = {}
        doses: list[DoseMark] = []
        labs: dict[str, list[LabMark]] = {}
        findings: list[FindingMark] = []
        attributions: list[AttributionMark] = []
        oxygen_events: list[OxygenSupport | Attribution] = []
        infusions: list[tuple[Infusion | Attribution, float | None]] = []
        for ev in events:
            if isinstance(ev, PatientContext):
                if ev.weight is not None:
                    weight = ev.weight.value
                for bl in ev.baselines:
                    baselines[bl.analyte.value] = bl.value
            elif isinstance(ev, DrugDose):
                cls = (ev.drug_class or drug_class(ev.drug)).value
                doses.append(DoseMark(ev.ts, ev.drug, cls, ev.dose, ev.unit, ev.reason))
            elif isinstance(ev, LabResult):
                labs.setdefault(ev.analyte.value, []).append(LabMark(ev.ts, ev.value, ev.unit, ev.comparator))
            elif isinstance(ev, Finding):
                findings.append(FindingMark(ev.ts, ev.finding.value, ev.present, ev.reason))
            elif isinstance(ev, OxygenSupport):
                oxygen_events.append(ev)
            elif isinstance(ev, Infusion):
                infusions.append((ev, weight))
            elif isinstance(ev, Attribution):
                targets = {t.value for t in ev.targets}
                if targets & {"oxygen", "all"}:
                    oxygen_events.append(ev)
                if targets & {"vasopressors", "all"}:
                    infusions.append((ev, weight))
                attributions.append(AttributionMark(ev.ts, tuple(t.value for t in ev.targets), ev.reason,
                                                    None if ev.agent is None else ev.agent.value, ev.forward))
        agents, totals = _agent_spans(infusions, last, weight)
        return PatientSeries(
            patient_id=self.patient_id, day0_ts=day0_ts, tz_offset_s=self.tz_offset_s, first_ts=first,
            last_ts=last, weight_kg=weight, vitals=vitals, vital_counts=dict(self.counts),
            oxygen=_oxygen_spans(oxygen_events, last), agents=agents, nee_total=totals, doses=doses, labs=labs,
            findings=findings, baselines=baselines, attributions=attributions,
        )


def _downsample(buckets: dict[int, _Bucket], width: float) -> list[VitalPoint]:
    out: list[VitalPoint] = []
    for key in sorted(buckets):
        b = buckets[key]
        start, end = key * width, (key + 1) * width
        if b.n == 1:
            out.append(VitalPoint(b.min_ts, b.min_v, 1, "only", start, end))
        elif b.min_v == b.max_v:
            out.append(VitalPoint(min(b.min_ts, b.max_ts), b.min_v, b.n, "min=max", start, end))
        else:
            pts = sorted([(b.min_ts, b.min_v, "min"), (b.max_ts, b.max_v, "max")])
            out.extend(VitalPoint(ts, v, b.n, role, start, end) for ts, v, role in pts)
    return out


def _oxygen_spans(events: list[OxygenSupport | Attribution], last_ts: float) -> list[OxygenSpan]:
    """Oxygen support as spans: a device event starts a span (room air ends support); a flow reading without a
    device changes the running span's flow (or, with none running, is oxygen by an undocumented device:
    alerts.evolve.on_oxygen_reading); a clinician's attribution to another cause marks the running support as
    attributed from then on (alerts.evolve.on_attribution), as the fold does."""
    spans: list[OxygenSpan] = []
    # start, device, flow, fio2, reason, attributed
    cur: tuple[float, str, float | None, float | None, str | None, bool] | None = None

    def close(at: float) -> None:
        if cur is not None and at > cur[0]:
            start, device, flow, fio2, why, attributed = cur
            axis, _ = oxygen_axis(OxygenDevice(device), flow)
            spans.append(OxygenSpan(start, at, device, flow, fio2, axis, why, attributed))

    for ev in events:
        if isinstance(ev, Attribution):
            if cur is not None:
                close(ev.ts)
                crs = attributes_to_crs(ev.reason)
                cur = (ev.ts, cur[1], cur[2], cur[3], None if crs else ev.reason, not crs)
        elif ev.device is not None:
            close(ev.ts)
            same = cur is not None and cur[1] == ev.device.value
            kept = cur if same and ev.reason is None else None
            cur = None if ev.device is OxygenDevice.ROOM_AIR else (
                ev.ts, ev.device.value, ev.flow_l_min, ev.fio2_pct, kept[4] if kept else ev.reason,
                kept[5] if kept else False)
        elif ev.flow_l_min is not None or ev.fio2_pct is not None:
            if cur is None:
                if ev.flow_l_min is None or ev.flow_l_min <= 0:
                    continue
                cur = (ev.ts, OxygenDevice.UNSPECIFIED.value, ev.flow_l_min, ev.fio2_pct, ev.reason, False)
                continue
            close(ev.ts)
            flow = ev.flow_l_min if ev.flow_l_min is not None else cur[2]
            fio2 = ev.fio2_pct if ev.fio2_pct is not None else cur[3]
            cur = (ev.ts, cur[1], flow, fio2, cur[4], cur[5])
    close(max(last_ts, cur[0] + 1.0) if cur is not None else last_ts)
    return spans


def _agent_spans(infusions: list[tuple[Infusion | Attribution, float | None]], last_ts: float,
                 weight_at_end: float | None) -> tuple[list[AgentSpan], list[NeePoint]]:
    """Each agent's segments (start or rate change to the next change or stop) with its own NEE
    (alerts.vasopressors.nee, Goradia 2021), and the total NEE after every change."""
    running: dict[str, tuple[float, Infusion, float | None]] = {}  # agent -> (since, event, weight)
    attributed: dict[str, str] = {}  # agent -> non-CRS cause from a clinician's attribution
    spans: list[AgentSpan] = []
    totals: list[NeePoint] = []

    def close(agent: str, at: float) -> None:
        since, ev, weight = running.pop(agent)
        role = VASOACTIVE_ROLE[ev.agent]
        value: float | None
        why: str | None
        if role is VasoactiveRole.INOTROPE:
            value, why = None, "inotrope: not part of the norepinephrine-equivalent dose"
        else:
            r = nee([RunningAgent(ev.agent, ev.rate, ev.unit)], weight)
            value, why = r.nee_ug_kg_min, r.why_not
        spans.append(AgentSpan(agent, since, max(at, since), ev.rate, ev.unit, value, why, role.value,
                               attributed.get(agent)))

    def total(at: float) -> None:
        if not running and (not totals or totals[-1].nee == 0.0):
            totals.append(NeePoint(at, 0.0, "no vasopressor running"))
            return
        r = nee([RunningAgent(VasoactiveAgent(a), e.rate, e.unit) for a, (_, e, _) in running.items()],
                next((w for _, _, w in running.values() if w is not None), weight_at_end))
        totals.append(NeePoint(at, r.nee_ug_kg_min, "; ".join(r.terms) if r.why_not is None else r.why_not))

    for ev, weight in infusions:
        if isinstance(ev, Attribution):
            crs = attributes_to_crs(ev.reason)
            for agent in list(running):
                if ev.agent is None or ev.agent.value == agent:
                    _, inf, w = running[agent]
                    close(agent, ev.ts)
                    running[agent] = (ev.ts, inf, w)
                    if crs:
                        attributed.pop(agent, None)
                    else:
                        attributed[agent] = ev.reason
            continue
        agent = ev.agent.value
        if ev.reason is not None or agent not in running:
            attributed.pop(agent, None)  # a new segment carries its own reason (alerts.evolve.on_infusion)
        if agent in running:
            prev = running[agent][1]
            if ev.action == "rate_change" and ev.rate is None and prev.rate is not None:
                continue  # a rate change without a rate keeps the charted rate
            close(agent, ev.ts)
        if ev.action != "stop":
            running[agent] = (ev.ts, ev, weight)
        total(ev.ts)
    for agent in list(running):
        close(agent, max(last_ts, running[agent][0]))
    spans.sort(key=lambda s: (s.agent, s.start))
    return spans, totals


# ------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True)
class GradeSpan:
    scale: str  # "CRS", "ICANS", "IEC-HS"
    start: float
    end: float
    level: int
    label: str


def grade_spans(records: Iterable[Record], end_ts: float) -> list[GradeSpan]:
    """Each scale's level over time from the grade-change records that stand (level 0 spans omitted)."""
    changes: dict[str, list[tuple[float, int, str]]] = {"CRS": [], "ICANS": [], "IEC-HS": []}
    for r in effective(records):
        if isinstance(r, CrsGradeChange):
            changes["CRS"].append((record_ts(r), r.grade, f"CRS grade {r.grade} (episode {r.episode})"))
        elif isinstance(r, IcansGradeChange):
            changes["ICANS"].append((record_ts(r), r.grade, f"ICANS grade {r.grade}"))
        elif isinstance(r, IecHsChange):
            changes["IEC-HS"].append((record_ts(r), r.level, f"IEC-HS level {r.level}: {r.label}"))
    out: list[GradeSpan] = []
    for scale, seq in changes.items():
        seq.sort(key=lambda c: c[0])
        for i, (ts, level, label) in enumerate(seq):
            end = seq[i + 1][0] if i + 1 < len(seq) else max(end_ts, ts)
            if level > 0 and end >= ts:
                out.append(GradeSpan(scale, ts, end, level, label))
    return out


def alerts_of(records: Iterable[Record]) -> list[Alert]:
    return sorted((r for r in effective(records) if isinstance(r, Alert)), key=lambda a: (record_ts(a), a.id))


def max_levels(records: Iterable[Record]) -> dict[str, int]:
    out = {"CRS": 0, "ICANS": 0, "IEC-HS": 0}
    for r in effective(records):
        if isinstance(r, CrsGradeChange):
            out["CRS"] = max(out["CRS"], r.grade)
        elif isinstance(r, IcansGradeChange):
            out["ICANS"] = max(out["ICANS"], r.grade)
        elif isinstance(r, IecHsChange):
            out["IEC-HS"] = max(out["IEC-HS"], r.level)
    return out
