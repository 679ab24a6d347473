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
