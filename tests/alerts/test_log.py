"""Event time and idempotency: duplicates, late events, corrections, and the same result whatever the order."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.config import Thresholds
from alerts.log import PatientLog, log_from_json, log_to_json, new_log, step
from models.events import ClinicalEvent
from models.records import Alert, CrsGradeChange, Record, Retraction, record_key
from models.state import state_value
from tests.factories import PID, attribution, bp, car_t, dose, ev, finding, infusion, lab, oxygen, temp

CFG = Thresholds()
WINDOW_H = CFG.lateness_minutes / 60


def run(events: list[ClinicalEvent]) -> tuple[PatientLog, list[Record]]:
    log = new_log(PID)
    records: list[Record] = []
    for e in events:
        records.extend(step(log, e, CFG).records)
    return log, records


def effective_alert_ids(records: list[Record]) -> set[str]:
    live: dict[str, Record] = {}
    for r in records:
        if isinstance(r, Retraction):
            live.pop(r.retracts, None)
        else:
            live[record_key(r)] = r
    return {k for k, r in live.items() if isinstance(r, Alert)}


def test_duplicate_event_changes_nothing() -> None:
    log = new_log(PID)
    e = temp(24, 39.0, event_id="t1")
    step(log, car_t(), CFG)
    first = step(log, e, CFG)
    before = state_value(log.head)
    again = step(log, e, CFG)
    assert first.outcome == "applied" and [r.type for r in first.records] == ["crs_grade", "alert"]
    assert again.outcome == "duplicate" and again.records == []
    assert state_value(log.head) == before


def test_late_lab_inside_window_is_applied_in_event_time_order() -> None:
    # Ferritin collected at 06:00 arrives after vitals of 07:00: applied as of 06:00.
    stream = [car_t(), temp(20, 38.5), lab(30, "ferritin", 500, "ng/mL"), temp(31, 38.4),
              lab(30.5, "ferritin", 2500, "ng/mL")]
    log, _records = run(stream)
    assert [p.value for p in log.head.labs["ferritin"]] == [500, 2500]
    in_order, _ = run(sorted(stream, key=lambda e: (e.ts, e.event_id)))
    assert state_value(log.head) == state_value(in_order.head)


def test_reordering_emits_explicit_corrections_and_retractions() -> None:
    # A fever reading that was collected before an 'afebrile' note arrives after it.
    base = [car_t(), temp(10, 38.6, event_id="f1")]
    late_afebrile = finding(11, "fever", present=False, event_id="a1")
    fever2 = temp(12, 38.7, event_id="f2")
    log, records = run([*base, fever2, late_afebrile])
    # In event time: fever 10:00 -> afebrile 11:00 (resolved) -> fever 12:00 (new episode).
    corrections = [r for r in records if r.correction]
    assert any(isinstance(r, CrsGradeChange) and r.grade == 0 for r in corrections)
    assert any(isinstance(r, Alert) and r.id == f"{PID}:crs:2:1" for r in corrections)
    assert log.head.episode == 2


def test_event_older_than_window_is_applied_late_and_counted() -> None:
    log, _ = run([car_t(), temp(20, 37.0), temp(30, 37.1)])
    old = bp(30 - WINDOW_H - 1, 70)
    result = step(log, old, CFG)
    assert result.outcome == "late" and result.reason and "older" in result.reason
    again = step(log, old, CFG)
    assert again.outcome == "duplicate" and again.records == []
    old_dose = dose(30 - WINDOW_H - 2, "tocilizumab")
    assert step(log, old_dose, CFG).outcome == "late"
    assert step(log, old_dose, CFG).outcome == "duplicate"


def test_state_round_trips_through_json() -> None:
    stream = [car_t(), temp(24, 38.5), infusion(25, "norepinephrine", rate=8, unit="ug/min"),
              lab(26, "ferritin", 12000, "ng/mL"), oxygen(26.5, "facemask"), temp(40, 38.1)]
    log, _ = run(stream)
    restored = log_from_json(log_to_json(log), CFG)
    assert state_value(restored.head) == state_value(log.head)
    assert state_value(restored.settled) == state_value(log.settled)
    more = temp(41, 39.0, event_id="next")
    assert step(restored, more, CFG).records == step(log, more, CFG).records


def test_patient_mismatch_is_an_error() -> None:
    log = new_log(PID)
    try:
        step(log, temp(1, 37.0, pid="other"), CFG)
    except ValueError as exc:
        assert "other" in str(exc)
    else:
        raise AssertionError("expected ValueError")


# ---------------------------------------------------------------- property: order does not matter

_AGENTS = ["norepinephrine", "epinephrine", "vasopressin", "phenylephrine", "milrinone"]
_DEVICES = ["room_air", "nasal_cannula", "facemask", "cpap", "high_flow_nasal_cannula", "unspecified"]


@st.composite
def event_streams(draw: st.DrawFn) -> list[ClinicalEvent]:
    n = draw(st.integers(min_value=5, max_value=45))
    events: list[ClinicalEvent] = [car_t(0.0, event_id="cart")]
    for i in range(n):
        h = draw(st.integers(min_value=1, max_value=72 * 6)) / 6  # 10-minute grid over 3 days
        eid = f"x{i}"
        kind = draw(st.sampled_from(["temp", "bp", "inf", "o2", "dose", "lab", "finding", "attr", "neuro"]))
        if kind == "temp":
            events.append(temp(h, draw(st.sampled_from([36.8, 37.9, 38.0, 38.6, 39.5, 40.4])), event_id=eid))
        elif kind == "bp":
            extra_bp = draw(st.sampled_from([{}, {}, {"dbp": {"value": 38, "unit": "mm[Hg]"}},
                                             {"map": {"value": 62, "unit": "mm[Hg]"}}]))
            events.append(bp(h, draw(st.sampled_from([70, 85, 89, 90, 110])), event_id=eid, **extra_bp))
        elif kind == "inf":
            action = draw(st.sampled_from(["start", "stop", "rate_change", "hold"]))
            agent = draw(st.sampled_from(_AGENTS))
            unit = {"vasopressin": "U/min", "milrinone": "ug/kg/min"}.get(agent, "ug/min")
            extra = ({"rate": draw(st.sampled_from([0, 0.03, 2, 10, 40])), "unit": unit}
                     if action not in ("stop", "hold") else {})
            reason = draw(st.sampled_from([None, None, "diuresis"]))
            if reason:
                extra["reason"] = reason
            events.append(infusion(h, agent, action, event_id=eid, **extra))
        elif kind == "o2":
            dev = draw(st.sampled_from(_DEVICES))
            flow = draw(st.sampled_from([None, 2.0, 6.0, 8.0])) if dev == "nasal_cannula" else None
            events.append(oxygen(h, dev, flow, event_id=eid))
        elif kind == "dose":
            events.append(dose(h, draw(st.sampled_from(["tocilizumab", "dexamethasone", "siltuximab",
                                                        "normal saline"])),
                               event_id=eid))
        elif kind == "lab":
            analyte, unit, values = draw(st.sampled_from([
                ("ferritin", "ng/mL", [300, 900, 4000, 12000, 150000]),
                ("crp", "mg/L", [5, 80, 200]),
                ("fibrinogen", "mg/dL", [40, 140, 300]),
                ("triglycerides", "mg/dL", [150, 320]),
            ]))
            comparator = draw(st.sampled_from([None, None, ">"])) if analyte == "ferritin" else None
            kw = {"comparator": comparator} if comparator else {}
            events.append(lab(h, analyte, draw(st.sampled_from(values)), unit, event_id=eid, **kw))
        elif kind == "neuro":
            domains = draw(st.sampled_from([
                {"seizure": "prolonged_or_repetitive"}, {"seizure": "none"}, {"ice_score": 4},
                {"ice_score": 10, "consciousness": "alert"}, {"cerebral_edema": "diffuse"},
                {"cerebral_edema": "none", "motor_weakness": False}, {"seizure": "rapidly_resolving", "ice_score": 8},
            ]))
            events.append(ev("neuro", h, event_id=eid, **domains))
        elif kind == "finding":
            what = draw(st.sampled_from(["fever", "hypotension", "pancytopenia", "hemophagocytosis"]))
            events.append(finding(h, what, draw(st.booleans()), event_id=eid))
        else:
            targets, reason, forward = draw(st.sampled_from([
                (["all"], "CRS resolved (clinician judgement)", False),
                (["fever", "hypotension"], "sepsis", True),
                (["fever", "hypotension"], "crs", False),
                (["vasopressors"], "diuresis", False),
                (["oxygen"], "sedation", False),
                (["icans"], "sedation", False),
            ]))
            events.append(attribution(h, targets, reason, forward=forward, event_id=eid))
    return events


def in_order(events: list[ClinicalEvent]) -> list[ClinicalEvent]:
    return sorted(events, key=lambda e: (e.ts, e.event_id))


def shuffled_within_window(events: list[ClinicalEvent], seed: int) -> list[ClinicalEvent]:
    """Delivery order = event time + a random delay below half the window, so nothing falls outside it."""
    rng = random.Random(seed)
    delayed = [(e.ts + rng.uniform(0, WINDOW_H * 3600 / 2), e.event_id, e) for e in events]
    return [e for _, _, e in sorted(delayed, key=lambda d: (d[0], d[1]))]


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(event_streams(), st.integers(0, 2**16))
def test_same_final_state_and_alert_ids_whatever_the_delivery(events: list[ClinicalEvent], seed: int) -> None:
    ref_log, ref_records = run(in_order(events))
    ref_state = state_value(ref_log.head)
    ref_ids = effective_alert_ids(ref_records)

    twice_log, twice_records = run(in_order(events) + in_order(events))
    assert state_value(twice_log.head) == ref_state
    assert effective_alert_ids(twice_records) == ref_ids

    rng = random.Random(seed)
    with_dups = list(in_order(events))
    for _ in range(len(events) // 3 + 1):
        i = rng.randrange(len(with_dups))
        with_dups.insert(min(len(with_dups), i + rng.randrange(1, 4)), with_dups[i])
    dup_log, dup_records = run(with_dups)
    assert state_value(dup_log.head) == ref_state
    assert effective_alert_ids(dup_records) == ref_ids

    shuf_log, shuf_records = run(shuffled_within_window(events, seed))
    assert state_value(shuf_log.head) == ref_state
    assert effective_alert_ids(shuf_records) == ref_ids

    # Stored and restored half-way (a worker restart): the rest gives the same result.
    delivery = shuffled_within_window(events, seed)
    half = len(delivery) // 2
    log, records = run(delivery[:half])
    log = log_from_json(log_to_json(log), CFG)
    for e in delivery[half:]:
        records.extend(step(log, e, CFG).records)
    assert state_value(log.head) == ref_state
    assert effective_alert_ids(records) == ref_ids


def test_an_alert_raised_on_the_late_path_is_not_emitted_again_by_a_refold() -> None:
    log, records = run([car_t(), temp(10, 38.6), lab(12, "ferritin", 1000, "ng/mL"), temp(20, 38.7)])
    late = step(log, lab(13, "ferritin", 2000, "ng/mL"), CFG)  # > 4 h late: applied at arrival
    assert late.outcome == "late"
    records += late.records
    for e in [finding(19, "fever", present=False), temp(21, 38.1)]:  # in-window, out of order: re-folds
        records += step(log, e, CFG).records
    firing = [r.id for r in records if isinstance(r, Alert) and r.status == "firing"]
    assert len(firing) == len(set(firing))
    assert f"{PID}:ferritin_rapid_rise:1:1" in firing


@PROPERTY
@given(event_streams(), st.integers(0, 2**16))
def test_no_alert_id_is_emitted_twice_even_with_events_beyond_the_window(
    events: list[ClinicalEvent], seed: int
) -> None:
    rng = random.Random(seed)
    delayed = [(e.ts + rng.uniform(0, 3 * WINDOW_H * 3600), e.event_id, e) for e in events]
    delivery = [e for _, _, e in sorted(delayed, key=lambda d: (d[0], d[1]))]
    whole, records = run(delivery)
    half = len(delivery) // 2  # the same delivery, stored and restored half-way
    log, split = run(delivery[:half])
    log = log_from_json(log_to_json(log), CFG)
    for e in delivery[half:]:
        split.extend(step(log, e, CFG).records)
    assert state_value(log.head) == state_value(whole.head)
    assert [record_key(r) for r in split] == [record_key(r) for r in records]
    live: set[str] = set()
    for r in records:
        if isinstance(r, Retraction):
            live.discard(r.retracts)
        elif isinstance(r, Alert):
            assert r.id not in live, f"{r.id} emitted twice"
            live.add(r.id)
