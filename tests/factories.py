"""Event builders for tests: times are hours after a fixed Day 0 (the CAR-T infusion); and the two ways
tests fold them: `fold` (alerts.fold.apply, in the order given) and `run` (through the event log,
alerts.log.step, which re-orders inside the lateness window as the replay and the worker do)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.config import Thresholds
from alerts.fold import apply
from alerts.log import new_log, step
from models.events import ClinicalEvent, parse_event
from models.records import Record
from models.state import PatientState

DAY0 = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
PID = "p1"
_ids = itertools.count(1)


def at(hours: float) -> str:
    return (DAY0 + timedelta(hours=hours)).isoformat()


def ev(kind: str, hours: float, pid: str = PID, event_id: str | None = None, **fields: Any) -> ClinicalEvent:
    raw = {
        "kind": kind,
        "event_id": event_id or f"e{next(_ids)}",
        "patient_id": pid,
        "time": at(hours),
        "provenance": {"source": "test"},
        **fields,
    }
    return parse_event(raw)


def car_t(hours: float = 0.0, **kw: Any) -> ClinicalEvent:
    return ev("dose", hours, drug="tisagenlecleucel", **kw)


def temp(hours: float, celsius: float, **kw: Any) -> ClinicalEvent:
    return ev("vitals", hours, temperature={"value": celsius, "unit": "Cel"}, **kw)


def bp(hours: float, sbp: float, **kw: Any) -> ClinicalEvent:
    return ev("vitals", hours, sbp={"value": sbp, "unit": "mm[Hg]"}, **kw)


def infusion(hours: float, agent: str, action: str = "start", **kw: Any) -> ClinicalEvent:
    return ev("infusion", hours, agent=agent, action=action, **kw)


def oxygen(hours: float, device: str, flow: float | None = None, **kw: Any) -> ClinicalEvent:
    if flow is not None:
        kw["flow_l_min"] = flow
    return ev("oxygen", hours, device=device, **kw)


def dose(hours: float, drug: str, **kw: Any) -> ClinicalEvent:
    return ev("dose", hours, drug=drug, **kw)


def lab(hours: float, analyte: str, value: float, unit: str, **kw: Any) -> ClinicalEvent:
    return ev("lab", hours, analyte=analyte, value=value, unit=unit, **kw)


def finding(hours: float, what: str, present: bool = True, **kw: Any) -> ClinicalEvent:
    return ev("finding", hours, finding=what, present=present, **kw)


def attribution(hours: float, targets: list[str], reason: str, **kw: Any) -> ClinicalEvent:
    return ev("attribution", hours, targets=targets, reason=reason, **kw)


def fold(events: list[ClinicalEvent], cfg: Thresholds | None = None) -> tuple[PatientState, list[Record]]:
    """Apply the events to a new state in the order given; the final state and every record."""
    s = PatientState(PID)
    out: list[Record] = []
    for e in events:
        out.extend(apply(s, e, cfg or Thresholds()))
    return s, out


def run(events: list[ClinicalEvent], cfg: Thresholds | None = None) -> tuple[PatientState, list[Record]]:
    """Step the events through a new patient log (alerts.log); its head state and every record."""
    log = new_log(PID)
    out: list[Record] = []
    for e in events:
        out.extend(step(log, e, cfg or Thresholds()).records)
    return log.head, out
