"""Per-patient state: clones are independent, serialisation is lossless."""

from __future__ import annotations

import json
from pathlib import Path

from alerts.config import Thresholds
from alerts.fold import apply
from models.events import parse_event
from models.state import PatientState, Support, state_from_json, state_to_json, state_value

CASE = Path(__file__).resolve().parents[2] / "cases" / "mcnerney-2022.jsonl"


def test_clone_is_independent_of_the_original() -> None:
    lines = [line for line in CASE.open() if line.strip()]
    events = [parse_event(line) for line in lines]
    state = PatientState("mcnerney-2022")
    cfg = Thresholds()
    for e in events[: len(events) // 2]:
        apply(state, e, cfg)
    before = state_value(state)
    copy = state.clone()
    assert state_value(copy) == before
    for e in events[len(events) // 2 :]:
        apply(copy, e, cfg)  # touches infusions, oxygen, labs, findings, tracks, ...
    assert state_value(state) == before
    assert state_value(copy) != before


def test_state_json_round_trip() -> None:
    state = PatientState("mcnerney-2022")
    for line in CASE.open():
        if line.strip():
            apply(state, parse_event(line), Thresholds())
    assert state_value(state_from_json(state_to_json(state))) == state_value(state)


def test_a_state_stored_before_support_attribution_keeps_its_exclusions() -> None:
    state = PatientState("p1")
    state.infusions["norepinephrine"] = Support("norepinephrine", 0.0, 0.0, "e1", reason="hypotension")
    state.infusions["epinephrine"] = Support("epinephrine", 0.0, 0.0, "e2", reason="crs")
    state.infusions["vasopressin"] = Support("vasopressin", 0.0, 0.0, "e3")
    state.oxygen = Support("facemask", 0.0, 0.0, "e4", reason="CRS resolved (clinician judgement)")
    stored = json.loads(state_to_json(state))
    for sup in [*stored["infusions"].values(), stored["oxygen"]]:
        del sup["attributed"]  # the format before the field existed
    old = state_from_json(json.dumps(stored))
    # then, any reason but a name of CRS excluded the support: kept as it was
    assert [old.infusions[a].attributed for a in ("norepinephrine", "epinephrine", "vasopressin")] == [
        True, False, False]
    assert old.oxygen is not None and old.oxygen.attributed
    assert not state_from_json(state_to_json(state)).infusions["norepinephrine"].attributed  # new format as stored


def test_a_state_stored_with_the_whole_icans_assessment_keeps_its_grade() -> None:
    """Before per-domain findings the state kept one assessment (`icans_inputs`, all at `icans_ts`)."""
    cfg = Thresholds()
    state = PatientState("p1")
    apply(state, parse_event({"kind": "neuro", "event_id": "n1", "patient_id": "p1", "time": "2024-01-02T10:00:00Z",
                              "provenance": {"source": "t"}, "ice_score": 0, "unable_to_perform_ice": True,
                              "consciousness": "unarousable", "seizure": "none"}), cfg)
    assert state.icans_grade == 4
    stored = json.loads(state_to_json(state))
    del stored["icans_domains"]
    stored["icans_inputs"] = {"event_id": "n1", "ice_score": "0", "consciousness": "unarousable", "seizure": "none",
                              "unable_to_perform_ice": "True", "global_aphasia": "False"}
    old = state_from_json(json.dumps(stored))
    assert old.icans_grade == 4 and state_value(old) == state_value(state)
    # the next assessment of one domain leaves the others as they were stored
    later = parse_event({"kind": "neuro", "event_id": "n2", "patient_id": "p1", "time": "2024-01-02T11:00:00Z",
                         "provenance": {"source": "t"}, "seizure": "none"})
    assert apply(old, later, cfg) == [] and old.icans_grade == 4
    stored["icans_inputs"] = {}
    assert state_from_json(json.dumps(stored)).icans_domains == {}
