"""Per-patient state: clones are independent, serialisation is lossless."""

from __future__ import annotations

from pathlib import Path

from alerts.config import Thresholds
from alerts.fold import apply
from models.events import parse_event
from models.state import PatientState, state_from_json, state_to_json, state_value

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
