"""Event builders for tests: times are hours after a fixed Day 0 (the CAR-T infusion)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from models.events import ClinicalEvent, parse_event

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
