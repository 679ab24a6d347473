"""Versioned corrections and retractions (FHIR meta.versionId, entered-in-error) in the event-time log."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from alerts.log import log_from_json, log_to_json, new_log, step
from models.events import ClinicalEvent, Retract, parse_event
from models.records import Alert, CrsGradeChange, Notice, Record, Retraction
from models.state import state_value
from tests.alerts.test_log import (
    CFG,
    PROPERTY,
    WINDOW_H,
    effective_alert_ids,
    event_streams,
    in_order,
    run,
    shuffled_within_window,
)
from tests.factories import DAY0, PID, at, bp, car_t, oxygen, temp


def versioned(e: ClinicalEvent, logical_id: str, version: int | None, **changes: Any) -> ClinicalEvent:
    raw = e.model_dump(mode="json", exclude_none=True)
    raw.update(logical_id=logical_id, **changes)
    if version is not None:
        raw["version"] = version
        raw["event_id"] = f"{logical_id}/_history/{version}"
    return parse_event(raw)


def retract(logical_id: str, hours: float, version: int | None = None, event_id: str | None = None) -> ClinicalEvent:
    raw: dict[str, Any] = {"kind": "retract", "event_id": event_id or f"{logical_id}/eie/{version}",
                           "patient_id": PID, "time": at(hours), "provenance": {"source": "test"},
                           "retracts": logical_id}
    if version is not None:
        raw["version"] = version
    return parse_event(raw)


def test_a_correction_inside_the_window_replaces_the_earlier_version() -> None:
    v1 = versioned(temp(10, 39.2), "Observation/t", 1)
    v2 = versioned(temp(10, 37.2), "Observation/t", 2)  # the fever was a transcription error
    log, _ = run([car_t(), v1])
    assert log.head.crs_grade == 1
    result = step(log, v2, CFG)
    assert result.outcome == "corrected"
    assert log.head.crs_grade == 0
    assert any(isinstance(r, Retraction) and r.retracts == f"{PID}:crs:1:1" for r in result.records)
    assert any(isinstance(r, Retraction) and r.retracts.startswith("crs_grade@") for r in result.records)
    assert not any(isinstance(r, CrsGradeChange) for r in result.records)  # grade 1 never held
    reference, _ = run([car_t(), v2])
    assert state_value(log.head) == state_value(reference.head)
    assert step(log, v2, CFG).outcome == "duplicate"  # the same correction twice changes nothing
    assert step(log, v1, CFG).outcome == "superseded"  # the old version redelivered is ignored
    assert state_value(log.head) == state_value(reference.head)


def test_an_older_version_arriving_after_the_newer_one_is_ignored() -> None:
    v1 = versioned(bp(10, 70), "Observation/bp", 1)
    v2 = versioned(bp(10, 120), "Observation/bp", 2)
    log, _ = run([car_t(), v2])
    assert step(log, v1, CFG).outcome == "superseded"
    reference, _ = run([car_t(), v2])
    assert state_value(log.head) == state_value(reference.head)


def test_entered_in_error_inside_the_window_voids_and_refolds() -> None:
    fever = versioned(temp(10, 39.0), "Observation/f", None)
    log, records = run([car_t(), fever, temp(11, 37.0)])
    assert f"{PID}:crs:1:1" in effective_alert_ids(records)
    result = step(log, retract("Observation/f", 10), CFG)
    assert result.outcome == "retracted"
    records += result.records
    assert f"{PID}:crs:1:1" not in effective_alert_ids(records)
    reference, _ = run([car_t(), temp(11, 37.0)])
    assert state_value(log.head) == state_value(reference.head)
    assert step(log, retract("Observation/f", 10), CFG).outcome == "duplicate"
    assert step(log, fever, CFG).outcome == "superseded"  # a voided record delivered again stays void
    assert state_value(log.head) == state_value(reference.head)


def test_a_retraction_arriving_first_voids_the_record_when_it_comes() -> None:
    log, _ = run([car_t()])
    result = step(log, retract("Observation/x", 5), CFG)
    assert result.outcome == "retracted" and isinstance(result.records[0], Notice)
    assert step(log, versioned(temp(5, 39.5), "Observation/x", None), CFG).outcome == "superseded"
    assert log.head.fever is None


def test_a_newer_version_after_a_retraction_stands_again() -> None:
    log, _ = run([car_t(), versioned(temp(5, 39.5), "Observation/x", 1)])
    assert step(log, retract("Observation/x", 5, version=2), CFG).outcome == "retracted"
    assert log.head.fever is None
    assert step(log, versioned(temp(5, 39.1), "Observation/x", 3), CFG).outcome == "applied"
    assert log.head.fever is not None and log.head.fever.value == 39.1


def test_beyond_the_window_a_correction_is_applied_on_top_and_says_so() -> None:
    v1 = versioned(oxygen(2, "facemask"), "Observation/o2", 1)
    log, _ = run([car_t(), temp(1, 38.5), v1, *[temp(h, 38.4) for h in range(3, 80)]])
    assert v1.logical_id in log.retired  # settled
    v2 = versioned(oxygen(2, "nasal_cannula", 2.0), "Observation/o2", 2)
    result = step(log, v2, CFG)
    assert result.outcome == "corrected"
    notices = [r for r in result.records if isinstance(r, Notice)]
    assert notices and "settled state" in notices[0].evidence[0] and notices[0].refers_to == "Observation/o2"
    assert result.reason and "review" in result.reason
    assert step(log, v2, CFG).outcome == "duplicate"  # redelivered: no second notice
    again = step(log, retract("Observation/o2", 2, version=3), CFG)
    assert again.outcome == "retracted" and "cannot be undone" in (again.reason or "")
    assert step(log, retract("Observation/o2", 2, version=3), CFG).outcome == "duplicate"


def test_several_events_of_one_version_are_siblings_and_are_replaced_together() -> None:
    spo2 = versioned(parse_event({"kind": "vitals", "event_id": "a", "patient_id": PID, "time": at(3),
                                  "provenance": {"source": "t"}, "spo2": {"value": 91, "unit": "%"}}),
                     "Observation/px", None, event_id="Observation/px")
    flow = versioned(oxygen(3, "nasal_cannula", 8.0), "Observation/px", None, event_id="Observation/px#flow",
                     device=None)
    log, _ = run([car_t(), spo2, flow])
    assert log.pending_logical["Observation/px"] == (None, 2)
    assert log.head.oxygen is not None and log.head.oxygen.flow_l_min == 8.0
    assert step(log, retract("Observation/px", 3), CFG).outcome == "retracted"
    assert log.head.oxygen is None and "Observation/px" not in log.pending_logical


def test_versions_survive_store_and_restore() -> None:
    log, _ = run([car_t(), versioned(temp(5, 39.5), "Observation/x", 1)])
    step(log, retract("Observation/y", 5), CFG)
    restored = log_from_json(log_to_json(log), CFG)
    assert restored.pending_logical == log.pending_logical and restored.retired == log.retired
    assert step(restored, versioned(temp(5, 37.0), "Observation/x", 2), CFG).outcome == "corrected"
    assert step(restored, versioned(temp(6, 39.0), "Observation/y", None), CFG).outcome == "superseded"


# ---------------------------------------------------------------- property: corrections and retractions


@PROPERTY
@given(event_streams(), st.integers(0, 2**16), st.data())
def test_corrections_and_retractions_give_the_state_of_the_final_versions(
    events: list[ClinicalEvent], seed: int, data: st.DataObject
) -> None:
    first: list[ClinicalEvent] = []  # what the feed sends first (version 1 of every record)
    final: list[ClinicalEvent] = []  # what stands in the end
    later: list[ClinicalEvent] = []  # corrections and retractions, delivered afterwards
    for n, e in enumerate(events):
        lid = f"R/{n}"
        v1 = versioned(e, lid, 1)
        first.append(v1)
        fate = data.draw(st.sampled_from(["keep", "keep", "correct", "retract"]))
        if fate == "keep":
            final.append(v1)
        elif fate == "correct":
            shift = data.draw(st.sampled_from([-1.0, 0.0, 0.5, 1.0]))  # hours, inside the window
            v2 = versioned(e, lid, 2, time=at((e.ts - DAY0.timestamp()) / 3600 + shift))
            final.append(v2)
            later.append(v2)
        else:
            later.append(retract(lid, (e.ts - DAY0.timestamp()) / 3600, version=2))
    ref_log, ref_records = run(in_order(final))

    # Each correction or retraction arrives right after its record (all inside the window).
    follow = {(c.retracts if isinstance(c, Retract) else c.logical_id): c for c in later}
    delivery = [x for e in shuffled_within_window(first, seed) for x in (e, follow.get(e.logical_id)) if x is not None]
    log = new_log(PID)
    records: list[Record] = []
    outcomes: list[str] = []
    for e in delivery:
        result = step(log, e, CFG)
        records += result.records
        outcomes.append(result.outcome)
    assert outcomes.count("corrected") + outcomes.count("retracted") == len(later)
    assert state_value(log.head) == state_value(ref_log.head)
    assert effective_alert_ids(records) == effective_alert_ids(ref_records)

    # Redelivered: every correction, retraction and stale version again changes nothing.
    before = state_value(log.head)
    for c in [*later, *first]:
        outcome = step(log, c, CFG).outcome
        assert outcome in ("duplicate", "superseded", "late", "applied"), outcome
    assert state_value(log.head) == before


def test_window_constant_is_what_the_property_assumes() -> None:
    assert WINDOW_H >= 2  # corrections shifted by up to 1 h and delayed by half the window stay inside it


def test_alerts_taken_back_by_a_retraction_can_fire_again() -> None:
    log, records = run([car_t(), versioned(temp(10, 39.0), "O/1", None)])
    records += step(log, retract("O/1", 10), CFG).records
    records += step(log, temp(11, 39.2), CFG).records
    firing = [r.id for r in records if isinstance(r, Alert) and r.status == "firing"]
    assert firing.count(f"{PID}:crs:1:1") == 2 and f"{PID}:crs:1:1" in effective_alert_ids(records)
