"""Fold benchmark: throughput, per-event cost against history length, and state size.

Measurements (see bench/README.md):
  A  events/s of `alerts.log.step` over a deterministic synthetic cohort, in arrival order;
  B  per-event cost of Day +1 against Day +30 for one patient with 30 days of history;
  C  `len(log_to_json(log))` per patient after the cohort run and after the 30-day patient.

Events are built as validated pydantic objects before the timed sections; parsing is not
timed. Patients are independent (one `PatientLog` each), so the cohort is generated and
stepped patient by patient, which keeps memory at one patient's events.

    .venv/bin/python bench/fold.py                    # 500 patients x 7 days (~5M events)
    .venv/bin/python bench/fold.py --patients 50      # quick run
    .venv/bin/python bench/fold.py --json out.json    # also write the figures as JSON
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alerts.config import Thresholds
from alerts.log import PatientLog, StepResult, log_to_json, new_log, step
from models.events import (
    BaselineValue,
    ClinicalEvent,
    DrugDose,
    Infusion,
    LabResult,
    Measurement,
    OxygenSupport,
    PatientContext,
    Provenance,
    VitalSigns,
)
from models.vocabulary import LabAnalyte, OxygenDevice, VasoactiveAgent

MINUTES_PER_DAY = 1440
STATE_BUDGET_BYTES = 65_536
TARGET_EVENTS_PER_S = 100_000
EPOCH = datetime(2026, 1, 5, tzinfo=UTC)  # Day 0 00:00 UTC of patient 0
INFUSION_MINUTE = 600  # CAR-T at Day 0 10:00
LAB_MINUTE = 360  # daily labs collected at 06:00
HISTORY_SEED_OFFSET = 1_000_003  # B draws its patient from another stream than the cohort

# Daily panel: analyte, unit, delivery batch. Batches are resulted at different times after
# the 06:00 draw (see LAB_DELAY_MINUTES), all inside the default 240 min lateness window.
LAB_PANEL: tuple[tuple[str, str, str], ...] = (
    ("platelets", "10*9/L", "cbc"),
    ("anc", "10*9/L", "cbc"),
    ("hemoglobin", "g/dL", "cbc"),
    ("crp", "mg/L", "chem"),
    ("ast", "U/L", "chem"),
    ("alt", "U/L", "chem"),
    ("ldh", "U/L", "chem"),
    ("triglycerides", "mg/dL", "chem"),
    ("ferritin", "ng/mL", "special"),
    ("fibrinogen", "mg/dL", "special"),
)
LAB_DELAY_MINUTES: dict[str, tuple[int, int]] = {"cbc": (50, 80), "chem": (100, 130), "special": (110, 150)}

_PROVENANCE = {
    "monitor": Provenance(source="bench:bedside-monitor"),
    "lab": Provenance(source="bench:lis"),
    "mar": Provenance(source="bench:mar"),
    "ehr": Provenance(source="bench:ehr"),
}


# ---------------------------------------------------------------- synthetic cohort


@dataclass(slots=True)
class Course:
    """The clinical course of one synthetic patient, in minutes after Day 0 00:00."""

    severity: int = 0  # planned peak ASTCT grade (0 = no CRS)
    fever: list[tuple[int, int]] = field(default_factory=list)
    hypotension: list[tuple[int, int]] = field(default_factory=list)
    hypoxia: list[tuple[int, int]] = field(default_factory=list)
    crs_onset: int | None = None
    iec_hs_from_day: int | None = None
    # (minute, kind, payload) for infusions, oxygen and doses
    actions: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)


def _inside(intervals: list[tuple[int, int]], minute: int) -> bool:
    return any(a <= minute < b for a, b in intervals)


def plan_course(rng: random.Random, minutes: int, steady: bool = False) -> Course:
    """Draw a CRS course: ~35% none, ~35% grade 1, ~18% grade 2, ~9% grade 3, ~3% grade 4; ~5% IEC-HS."""
    c = Course()
    if steady:
        return c
    u = rng.random()
    c.severity = 0 if u < 0.35 else 1 if u < 0.70 else 2 if u < 0.88 else 3 if u < 0.97 else 4
    if c.severity and rng.random() < 0.05 + 0.05 * c.severity:
        c.iec_hs_from_day = rng.randint(4, 6)
    elif not c.severity and rng.random() < 0.02:
        c.iec_hs_from_day = rng.randint(4, 6)
    if not c.severity:
        return c
    onset = INFUSION_MINUTE + int(rng.uniform(12, 72) * 60)
    c.crs_onset = onset
    fever_end = onset + int(rng.uniform(12, 48) * 60)
    if c.severity >= 2:
        hypo_start = onset + int(rng.uniform(2, 18) * 60)
        hypo_end = hypo_start + int(rng.uniform(2, 8) * 60)
        toci = hypo_start + rng.randint(30, 90)
        c.actions.append((toci, "dose", {"drug": "tocilizumab", "dose": 8.0, "unit": "mg/kg"}))
        if rng.random() < 0.3:
            c.actions.append((toci + 8 * 60, "dose", {"drug": "tocilizumab", "dose": 8.0, "unit": "mg/kg"}))
        fever_end = min(fever_end, toci + rng.randint(60, 240))
        if c.severity == 2 and rng.random() < 0.5:
            o2_start = hypo_start + rng.randint(0, 240)
            o2_end = o2_start + int(rng.uniform(6, 36) * 60)
            c.hypoxia.append((o2_start, o2_end))
            c.actions.append(
                (o2_start, "oxygen", {"device": OxygenDevice.NASAL_CANNULA, "flow_l_min": float(rng.randint(2, 4))})
            )
            c.actions.append((o2_end, "oxygen", {"device": OxygenDevice.ROOM_AIR}))
        if c.severity >= 3:
            hypo_end = _plan_pressors(rng, c, hypo_start)
        c.hypotension.append((hypo_start, hypo_end))
    c.fever.append((onset, fever_end))
    return c


def _plan_pressors(rng: random.Random, c: Course, hypo_start: int) -> int:
    """Norepinephrine with rate changes (+ vasopressin, + epinephrine for grade 4), dexamethasone, facemask."""
    ne_start = hypo_start + rng.randint(60, 120)
    rate, t, peak = 0.05, ne_start, rng.uniform(0.15, 0.3)
    ne = VasoactiveAgent.NOREPINEPHRINE
    c.actions.append((t, "infusion", {"action": "start", "agent": ne, "rate": rate, "unit": "ug/kg/min"}))
    while rate < peak:
        t += rng.randint(30, 120)
        rate = round(rate + rng.choice((0.03, 0.04, 0.05)), 3)
        c.actions.append((t, "infusion", {"action": "rate_change", "agent": ne, "rate": rate, "unit": "ug/kg/min"}))
    peak_t = t
    if rng.random() < 0.5 or c.severity == 4:
        c.actions.append(
            (peak_t + 15, "infusion", {"action": "start", "agent": VasoactiveAgent.VASOPRESSIN, "rate": 0.03,
                                       "unit": "U/min"})
        )
        c.actions.append((peak_t + rng.randint(6, 12) * 60, "infusion",
                          {"action": "stop", "agent": VasoactiveAgent.VASOPRESSIN}))
    if c.severity == 4:
        epi = VasoactiveAgent.EPINEPHRINE
        c.actions.append((peak_t + 45, "infusion", {"action": "start", "agent": epi, "rate": 0.05,
                                                    "unit": "ug/kg/min"}))
        c.actions.append((peak_t + rng.randint(4, 10) * 60, "infusion", {"action": "stop", "agent": epi}))
    t = peak_t + rng.randint(6, 12) * 60
    while rate > 0.05:
        t += rng.randint(60, 180)
        rate = round(max(0.02, rate - rng.choice((0.03, 0.05))), 3)
        c.actions.append((t, "infusion", {"action": "rate_change", "agent": ne, "rate": rate, "unit": "ug/kg/min"}))
    ne_stop = t + rng.randint(60, 240)
    c.actions.append((ne_stop, "infusion", {"action": "stop", "agent": ne}))
    for k in range(4):  # dexamethasone 10 mg q6h
        c.actions.append((ne_start + 60 + k * 360, "dose", {"drug": "dexamethasone", "dose": 10.0, "unit": "mg"}))
    o2_start = ne_start + rng.randint(0, 180)
    o2_end = ne_stop + rng.randint(0, 12 * 60)
    c.hypoxia.append((o2_start, o2_end))
    c.actions.append((o2_start, "oxygen", {"device": OxygenDevice.FACEMASK, "flow_l_min": 8.0}))
    c.actions.append((o2_end - 6 * 60, "oxygen", {"device": OxygenDevice.NASAL_CANNULA, "flow_l_min": 3.0}))
    c.actions.append((o2_end, "oxygen", {"device": OxygenDevice.ROOM_AIR}))
    return ne_stop - rng.randint(0, 60)


class _Ids:
    """Deterministic event ids: UUID-shaped (as FHIR resource ids typically are) or short."""

    def __init__(self, rng: random.Random, style: str, pid: str) -> None:
        self.rng, self.style, self.pid, self.n = rng, style, pid, 0

    def __call__(self) -> str:
        self.n += 1
        if self.style == "uuid":
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        return f"{self.pid}-{self.n}"


class _Measures:
    """Shares equal Measurement objects (they are frozen) so a patient's events stay small in memory."""

    def __init__(self) -> None:
        self.cache: dict[tuple[float, str], Measurement] = {}

    def __call__(self, value: float, unit: str) -> Measurement:
        key = (value, unit)
        m = self.cache.get(key)
        if m is None:
            m = self.cache[key] = Measurement(value=value, unit=unit)
        return m


def _lab_values(rng: random.Random, c: Course, day: int, base: dict[str, float]) -> dict[str, float]:
    """One morning panel: lymphodepletion cytopenias, CRS inflammation, IEC-HS on a few patients."""
    onset_day = None if c.crs_onset is None else c.crs_onset // MINUTES_PER_DAY
    crs = 0.0
    if onset_day is not None and day >= onset_day:
        since = day - onset_day
        crs = max(0.0, (1.0 + 0.5 * c.severity) * (1.0 - 0.25 * max(0, since - 1)))
    hs = 0 if c.iec_hs_from_day is None or day < c.iec_hs_from_day else day - c.iec_hs_from_day + 1
    hs = max(0, min(hs, 4, 12 - hs))  # rises over 4 days, plateaus, resolves after ~11 days
    j = rng.uniform
    nadir = 1.0 - 0.85 * min(1.0, max(0.0, (day - 1) / 3.0)) + 0.1 * max(0, day - 10)
    v = {
        "platelets": base["platelets"] * (0.6 + 0.4 * min(1.0, nadir + 0.3)) * j(0.9, 1.1),
        "anc": max(0.05, base["anc"] * min(1.0, nadir)) * j(0.85, 1.15),
        "hemoglobin": base["hemoglobin"] * j(0.95, 1.05) - 0.3 * min(crs, 2.0),
        "crp": base["crp"] * (1.0 + 8.0 * crs) * j(0.8, 1.2),
        "ast": base["ast"] * (1.0 + 0.4 * crs) * j(0.85, 1.15),
        "alt": base["alt"] * (1.0 + 0.4 * crs) * j(0.85, 1.15),
        "ldh": base["ldh"] * (1.0 + 0.3 * crs) * j(0.9, 1.1),
        "triglycerides": base["triglycerides"] * j(0.9, 1.1),
        "ferritin": base["ferritin"] * (1.0 + 1.5 * crs) * j(0.85, 1.15),
        "fibrinogen": base["fibrinogen"] * (1.0 + 0.3 * crs) * j(0.9, 1.1),
    }
    if hs:
        v["ferritin"] *= 2.5**hs
        v["fibrinogen"] = max(60.0, v["fibrinogen"] / (1.0 + 0.7 * hs))
        v["platelets"] = max(8.0, v["platelets"] / (1.0 + hs))
        v["ast"] *= 1.0 + 3.0 * hs
        v["alt"] *= 1.0 + 3.0 * hs
        v["ldh"] *= 1.0 + 1.5 * hs
        v["triglycerides"] *= 1.0 + 0.4 * hs
    digits = {"anc": 2, "hemoglobin": 1, "crp": 1}
    return {k: round(x, digits.get(k, 0)) for k, x in v.items()}


def patient_events(
    seed: int, index: int, days: int, id_style: str = "uuid", steady: bool = False
) -> tuple[str, list[ClinicalEvent]]:
    """All events of one patient in arrival order (deterministic in seed and index).

    Arrival order = event time, except daily labs: collected at 06:00 (`time`) and resulted
    ~1-2.5 h later (`recorded_time`); they arrive after the vitals of that minute and so
    take the out-of-order-inside-the-window path of `alerts.log.step`.
    """
    rng = random.Random(f"crswatch-bench:{seed}:{index}")
    pid = f"pt-{index:06d}"
    ids = _Ids(rng, id_style, pid)
    meas = _Measures()
    minutes = days * MINUTES_PER_DAY
    day0 = EPOCH + timedelta(days=index % 7)
    course = plan_course(rng, minutes, steady)
    weight = round(rng.uniform(50, 110), 1)

    def at(minute: float) -> datetime:
        return day0 + timedelta(minutes=minute)

    out: list[tuple[float, int, ClinicalEvent]] = []  # (arrival minute, tie-break, event)

    def emit(arrival: float, ev: ClinicalEvent, order: int = 1) -> None:
        out.append((arrival, order, ev))

    base = {
        "platelets": rng.uniform(90, 220), "anc": rng.uniform(1.5, 4.0), "hemoglobin": rng.uniform(8.8, 12.0),
        "crp": rng.uniform(2, 15), "ast": rng.uniform(15, 40), "alt": rng.uniform(12, 40),
        "ldh": rng.uniform(180, 320), "triglycerides": rng.uniform(90, 190), "ferritin": rng.uniform(150, 900),
        "fibrinogen": rng.uniform(220, 420),
    }
    emit(-5, PatientContext(
        event_id=ids(), patient_id=pid, time=at(-5), provenance=_PROVENANCE["ehr"],
        weight=Measurement(value=weight, unit="kg"),
        baselines=(BaselineValue(analyte=LabAnalyte.FERRITIN, value=round(base["ferritin"]), unit="ng/mL"),),
    ), order=0)
    emit(INFUSION_MINUTE + 0.5, DrugDose(
        event_id=ids(), patient_id=pid, time=at(INFUSION_MINUTE + 0.5), provenance=_PROVENANCE["mar"],
        drug=rng.choice(("tisagenlecleucel", "axicabtagene ciloleucel", "lisocabtagene maraleucel")),
    ))
    for minute, kind, payload in course.actions:
        if minute >= minutes:
            continue
        when = minute + rng.randint(1, 59) / 60  # charted at some second of the minute, after that minute's vitals
        common: dict[str, Any] = {"event_id": ids(), "patient_id": pid, "time": at(when)}
        ev: ClinicalEvent
        if kind == "infusion":
            ev = Infusion(**common, provenance=_PROVENANCE["mar"], **payload)
        elif kind == "oxygen":
            ev = OxygenSupport(**common, provenance=_PROVENANCE["ehr"], **payload)
        else:
            ev = DrugDose(**common, provenance=_PROVENANCE["mar"], **payload)
        emit(when, ev)

    for day in range(days):
        collected = day * MINUTES_PER_DAY + LAB_MINUTE
        values = _lab_values(rng, course, day, base)
        delays = {b: rng.randint(*span) for b, span in LAB_DELAY_MINUTES.items()}
        for analyte, unit, batch in LAB_PANEL:
            delivered = collected + delays[batch]
            if delivered >= minutes:
                continue
            emit(delivered + 0.5, LabResult(
                event_id=ids(), patient_id=pid, time=at(collected), recorded_time=at(delivered),
                provenance=_PROVENANCE["lab"], analyte=LabAnalyte(analyte), value=values[analyte], unit=unit,
            ))

    # Vitals once a minute. Fever and hypotension follow the planned course; noise is clipped so that
    # a planned episode does not flap across the threshold every few minutes.
    t_base, hr_base, sbp_base = rng.uniform(36.5, 37.1), rng.uniform(65, 90), rng.uniform(105, 135)
    for minute in range(minutes):
        febrile = _inside(course.fever, minute)
        hypotensive = _inside(course.hypotension, minute)
        hypoxic = _inside(course.hypoxia, minute)
        g = rng.gauss
        temp = max(38.05, min(40.5, g(38.7, 0.35))) if febrile else min(37.7, g(t_base, 0.15))
        sbp = min(88.0, g(80.0, 3.0)) if hypotensive else max(92.0, g(sbp_base, 6.0))
        hr = g(hr_base, 4.0) + (18.0 if febrile else 0.0) + (15.0 if hypotensive else 0.0)
        spo2 = min(100.0, g(93.5, 1.2) if hypoxic else g(97.5, 1.0))
        rr = g(16.0, 1.5) + (5.0 if febrile or hypoxic else 0.0)
        emit(minute, VitalSigns(
            event_id=ids(), patient_id=pid, time=at(minute), provenance=_PROVENANCE["monitor"],
            temperature=meas(round(temp, 1), "Cel"), heart_rate=meas(float(round(hr)), "/min"),
            sbp=meas(float(round(sbp)), "mm[Hg]"), dbp=meas(float(round(sbp * 0.6)), "mm[Hg]"),
            spo2=meas(float(round(spo2)), "%"), resp_rate=meas(float(round(rr)), "/min"),
        ))
    out.sort(key=lambda x: (x[0], x[1]))
    return pid, [e for _, _, e in out]


# ---------------------------------------------------------------- measurements


@dataclass(slots=True)
class CohortResult:
    patients: int = 0
    events: int = 0
    seconds: float = 0.0
    gen_seconds: float = 0.0
    kinds: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)
    corrections: int = 0
    sizes: list[int] = field(default_factory=list)
    pending_lens: list[int] = field(default_factory=list)
    parts: list[dict[str, int]] = field(default_factory=list)  # bytes per top-level key of log_to_json


def _record_type(r: Any) -> str:
    return str(r.type)


def _tally(res: CohortResult, results: list[StepResult]) -> None:
    for r in results:
        res.outcomes[r.outcome] += 1
        for rec in r.records:
            res.records[_record_type(rec)] += 1
            if rec.correction:
                res.corrections += 1


def state_parts(log: PatientLog) -> dict[str, int]:
    """Compact JSON bytes of each top-level part of `log_to_json(log)` (settled, pending, ...)."""
    obj = json.loads(log_to_json(log))
    return {k: len(json.dumps(v, separators=(",", ":"), ensure_ascii=False)) for k, v in obj.items()}


def run_cohort(patients: int, days: int, seed: int, id_style: str, cfg: Thresholds, progress: bool) -> CohortResult:
    """Measurement A (and C): time only `step` over each patient's events in arrival order."""
    res = CohortResult()
    clock = time.perf_counter
    for i in range(patients):
        g0 = clock()
        _, events = patient_events(seed, i, days, id_style)
        res.gen_seconds += clock() - g0
        log = new_log(events[0].patient_id)
        gc.collect()
        t0 = clock()
        results = [step(log, ev, cfg) for ev in events]
        res.seconds += clock() - t0
        res.patients += 1
        res.events += len(events)
        res.kinds.update(ev.kind for ev in events)
        _tally(res, results)
        res.sizes.append(len(log_to_json(log)))
        res.parts.append(state_parts(log))
        res.pending_lens.append(len(log.pending))
        if progress and (i + 1) % max(1, patients // 20) == 0:
            print(f"  ... {i + 1}/{patients} patients, {res.events:,} events, "
                  f"{res.events / res.seconds:,.0f} events/s so far", file=sys.stderr, flush=True)
    return res


def _day_of_arrival(events: list[ClinicalEvent]) -> list[int]:
    """Day of each event after Day 0 00:00 (the first vitals); a lab's event day is also its arrival day."""
    t0 = next(ev.ts for ev in events if ev.kind == "vitals")
    return [int((ev.ts - t0) // 86400) for ev in events]


def run_history(days: int, seed: int, id_style: str, cfg: Thresholds, repeats: int, steady: bool,
                index: int = 0) -> dict[str, Any]:
    """Measurement B: per-event cost on Day +1 against Day +`days - 1` for one patient; and its state size."""
    _, events = patient_events(seed + HISTORY_SEED_OFFSET, index, days, id_style, steady=steady)
    day_idx = _day_of_arrival(events)
    first, last = 1, days - 1
    clock = time.perf_counter
    per_rep: list[dict[str, float]] = []
    for _ in range(repeats):
        log = new_log(events[0].patient_id)
        sums: dict[str, float] = defaultdict(float)
        counts: Counter[str] = Counter()
        gc.collect()
        for ev, d in zip(events, day_idx, strict=True):
            t0 = clock()
            step(log, ev, cfg)
            dt = clock() - t0
            sums[f"day:{d}"] += dt
            counts[f"day:{d}"] += 1
            if d == first or d == last:
                tag = "first" if d == first else "last"
                sums[tag] += dt
                counts[tag] += 1
                sums[f"{tag}:{ev.kind}"] += dt
                counts[f"{tag}:{ev.kind}"] += 1
        per_rep.append({k: sums[k] / counts[k] * 1e6 for k in sums})
    med = {k: statistics.median(r[k] for r in per_rep) for k in per_rep[0]}

    # Untimed replay to sample the state size over time (peak while the morning labs are pending).
    log = new_log(events[0].patient_id)
    peak, peak_at, peak_pending = 0, "", 0
    for n, ev in enumerate(events):
        step(log, ev, cfg)
        if n % 15 == 0 or ev.kind == "lab":
            size = len(log_to_json(log))
            if size > peak:
                peak, peak_at, peak_pending = size, ev.time.isoformat(), len(log.pending)
    last_day_events = sum(1 for d in day_idx if d == last)
    return {
        "profile": "steady, no CRS" if steady else "grade >= 3 CRS: pressors, oxygen, tocilizumab, dexamethasone",
        "days": days,
        "events": len(events),
        "repeats": repeats,
        "day_first": first,
        "day_last": last,
        "events_day_first": sum(1 for d in day_idx if d == first),
        "events_day_last": last_day_events,
        "us_per_event_day_first": med["first"],
        "us_per_event_day_last": med["last"],
        "ratio_last_over_first": med["last"] / med["first"],
        # Day +1 still fills bounded structures (3 values kept per lab analyte); Day +7 is past that warm-up.
        "ratio_last_over_day7": med["last"] / med["day:7"] if "day:7" in med and last > 7 else None,
        "us_per_event_by_day": {int(k[4:]): v for k, v in med.items() if k.startswith("day:")},
        "us_per_event_by_kind": {
            k.split(":", 1)[1]: {"day_first": med[k], "day_last": med.get("last:" + k.split(":", 1)[1])}
            for k in med if k.startswith("first:")
        },
        "state_bytes_end": len(log_to_json(log)),
        "state_bytes_peak": peak,
        "state_peak_at": peak_at,
        "state_peak_pending_events": peak_pending,
        "pending_events_end": len(log.pending),
        "bytes_by_part_end": state_parts(log),
    }


# ---------------------------------------------------------------- report


def _pct(values: list[int], q: float) -> int:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def _revision() -> str:
    """Commit of the code measured, with '+dirty' when alerts/ or models/ have uncommitted changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "alerts", "models"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def figures(args: argparse.Namespace, a: CohortResult | None, b: list[dict[str, Any]], revision: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "date": datetime.now(UTC).date().isoformat(),
        "revision": revision,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "config": {"lateness_minutes": Thresholds().lateness_minutes if args.lateness is None else args.lateness},
        "seed": args.seed,
        "id_style": args.ids,
    }
    if a is not None:
        eps = a.events / a.seconds
        out["throughput"] = {
            "patients": a.patients,
            "days": args.days,
            "events": a.events,
            "events_by_kind": dict(a.kinds),
            "step_seconds": a.seconds,
            "events_per_s": eps,
            "us_per_event": 1e6 / eps,
            "target_events_per_s": TARGET_EVENTS_PER_S,
            "meets_target": eps >= TARGET_EVENTS_PER_S,
            "generation_seconds": a.gen_seconds,
            "generation": "per patient (patients are independent); one patient's events in memory at a time",
            "outcomes": dict(a.outcomes),
            "records": dict(a.records),
            "records_total": sum(a.records.values()),
            "corrections": a.corrections,
        }
        out["state_size"] = {
            "budget_bytes": STATE_BUDGET_BYTES,
            "max_bytes": max(a.sizes),
            "median_bytes": int(statistics.median(a.sizes)),
            "p95_bytes": _pct(a.sizes, 0.95),
            "min_bytes": min(a.sizes),
            "patients_over_budget": sum(1 for s in a.sizes if s > STATE_BUDGET_BYTES),
            "median_bytes_by_part": {k: int(statistics.median(p.get(k, 0) for p in a.parts)) for k in a.parts[0]},
            "pending_events_median": int(statistics.median(a.pending_lens)),
            "when": f"after each patient's last event (Day +{args.days - 1} 23:59)",
        }
    if b:
        out["history"] = b
    return out


def print_report(f: dict[str, Any]) -> None:
    p = print
    p(f"crswatch fold benchmark  {f['date']}  revision {f['revision']}  python {f['python']}  {f['machine']}")
    p(f"  lateness window {f['config']['lateness_minutes']:g} min, seed {f['seed']}, event ids: {f['id_style']}")
    a = f.get("throughput")
    if a:
        ok = "MEETS" if a["meets_target"] else "BELOW"
        p(f"\nA. throughput: {a['patients']} patients x {a['days']} days, {a['events']:,} events "
          f"({', '.join(f'{k} {v:,}' for k, v in sorted(a['events_by_kind'].items()))})")
        p(f"   step() total {a['step_seconds']:.2f} s -> {a['events_per_s']:,.0f} events/s "
          f"({a['us_per_event']:.1f} us/event); target {a['target_events_per_s']:,} events/s: {ok}")
        p(f"   outcomes: {a['outcomes']}")
        p(f"   records: {a['records_total']:,} {a['records']}, of which corrections {a['corrections']:,}")
        p(f"   (event generation, untimed: {a['generation_seconds']:.1f} s, {a['generation']})")
        c = f["state_size"]
        p(f"\nC. state size (len(log_to_json(log))) {c['when']}: median {c['median_bytes']:,} B, "
          f"p95 {c['p95_bytes']:,} B, max {c['max_bytes']:,} B; budget {c['budget_bytes']:,} B; "
          f"{c['patients_over_budget']} patient(s) over budget")
        parts = ", ".join(f"{k} {v:,} B" for k, v in c["median_bytes_by_part"].items())
        p(f"   median by part: {parts}; {c['pending_events_median']} pending events")
    for h in f.get("history", []):
        p(f"\nB. per-event cost vs history, one patient ({h['profile']}), {h['days']} days, {h['events']:,} events, "
          f"median of {h['repeats']} runs")
        p(f"   Day +{h['day_first']} ({h['events_day_first']} events): {h['us_per_event_day_first']:.1f} us/event;  "
          f"Day +{h['day_last']} ({h['events_day_last']} events): {h['us_per_event_day_last']:.1f} us/event;  "
          f"ratio {h['ratio_last_over_first']:.2f}"
          + (f" (Day +{h['day_last']} / Day +7: {h['ratio_last_over_day7']:.2f})" if h["ratio_last_over_day7"] else ""))
        curve = h["us_per_event_by_day"]
        shown = sorted({d for d in (0, 1, 2, 3, 7, 14, 21, h["day_last"]) if d in curve})
        p("   by day: " + ", ".join(f"+{d} {curve[d]:.1f}" for d in shown) + " us/event")
        for kind, v in sorted(h["us_per_event_by_kind"].items()):
            last = "-" if v["day_last"] is None else f"{v['day_last']:.1f}"
            p(f"     {kind:>10}: Day +{h['day_first']} {v['day_first']:.1f} us, Day +{h['day_last']} {last} us")
        parts = ", ".join(f"{k} {v:,} B" for k, v in h["bytes_by_part_end"].items())
        p(f"   state after {h['days']} days: {h['state_bytes_end']:,} B ({parts}; {h['pending_events_end']} pending "
          f"events); peak {h['state_bytes_peak']:,} B at {h['state_peak_at']} "
          f"({h['state_peak_pending_events']} pending events)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--patients", type=int, default=500, help="cohort size for A and C (default 500)")
    ap.add_argument("--days", type=int, default=7, help="days per cohort patient (default 7)")
    ap.add_argument("--history-days", type=int, default=31,
                    help="days of the single patient of B; compares Day +1 with Day +(N-1) (default 31)")
    ap.add_argument("--repeats", type=int, default=5, help="repeats of B, median taken (default 5)")
    ap.add_argument("--seed", type=int, default=20261121)
    ap.add_argument("--ids", choices=("uuid", "short"), default="uuid",
                    help="event id style: 36-char UUIDs (default, like FHIR ids) or short '<patient>-<n>'")
    ap.add_argument("--lateness", type=float, default=None, help="override Thresholds.lateness_minutes")
    ap.add_argument("--skip-cohort", action="store_true", help="run B only")
    ap.add_argument("--skip-history", action="store_true", help="run A and C only")
    ap.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the figures as JSON")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="instead of the benchmark, profile step() over N cohort patients (cProfile, top 25)")
    args = ap.parse_args(argv)

    revision = _revision()  # taken before the run: the modules measured are the ones imported now
    cfg = Thresholds() if args.lateness is None else Thresholds(lateness_minutes=args.lateness)
    if args.profile:
        return profile(args.profile, args.days, args.seed, args.ids, cfg)
    a = None
    if not args.skip_cohort:
        a = run_cohort(args.patients, args.days, args.seed, args.ids, cfg, not args.quiet)
    b: list[dict[str, Any]] = []
    if not args.skip_history:
        for steady in (True, False):
            b.append(run_history(args.history_days, args.seed, args.ids, cfg, args.repeats, steady,
                                 index=_crs_patient_index(args.seed, args.history_days) if not steady else 0))
    f = figures(args, a, b, revision)
    print_report(f)
    if args.json is not None:
        args.json.write_text(json.dumps(f, indent=2) + "\n")
        print(f"\nfigures written to {args.json}")
    return 0


def profile(patients: int, days: int, seed: int, id_style: str, cfg: Thresholds) -> int:
    """cProfile of `step` over the first `patients` cohort patients (events generated before profiling)."""
    import cProfile
    import pstats

    cohort = [patient_events(seed, i, days, id_style)[1] for i in range(patients)]
    prof = cProfile.Profile()
    prof.enable()
    for events in cohort:
        log = new_log(events[0].patient_id)
        for ev in events:
            step(log, ev, cfg)
    prof.disable()
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)
    return 0


def _crs_patient_index(seed: int, days: int) -> int:
    """The first patient whose drawn course has a grade >= 3 CRS episode (pressors, oxygen, doses), for B.

    `patient_events` draws the course first from its seeded generator, so re-drawing it here is exact.
    """
    for i in range(1000):
        c = plan_course(random.Random(f"crswatch-bench:{seed + HISTORY_SEED_OFFSET}:{i}"), days * MINUTES_PER_DAY)
        if c.severity >= 3:
            return i
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
