"""A deterministic synthetic cohort of CAR-T patients, for tests and benchmarks.

`patient_events(seed, index, days)` gives one patient's clinical course as validated events in
arrival order: minute vitals, a daily lab panel resulted after collection, CAR-T on Day 0 and,
for some patients, CRS with fever, hypotension, hypoxia, pressors, tocilizumab and steroids, and
a later IEC-HS course. Deterministic in (seed, index). Used by `bench/fold.py`, `bench/stream.py`
and the worker tests; it lives under tests/ so that tests never import `bench`.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

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
EPOCH = datetime(2026, 1, 5, tzinfo=UTC)  # Day 0 00:00 UTC of patient 0
INFUSION_MINUTE = 600  # CAR-T at Day 0 10:00
LAB_MINUTE = 360  # daily labs collected at 06:00

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
