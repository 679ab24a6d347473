"""Hypotension axis edges (ASTCT 2019, REFERENCE A.1): a vasopressor at rate 0 or on hold is not running;
MAP as an IN-HOUSE hypotension criterion; a fluid bolus for hypotension holds grade 2 (IN-HOUSE)."""

from __future__ import annotations

import re
from datetime import datetime

from alerts.config import Thresholds
from alerts.fold import apply
from models.events import ClinicalEvent
from models.records import Alert, CrsGradeChange, Record
from models.state import PatientState
from tests.factories import PID, at, car_t, dose, ev, infusion, temp

CFG = Thresholds()
ZERO_RATE = re.compile(r"norepinephrine 0(?![.\d])")  # a rate of 0 cited as if running
NE = "norepinephrine"


def fold(events: list[ClinicalEvent], cfg: Thresholds = CFG) -> tuple[PatientState, list[Record]]:
    s = PatientState(PID)
    out: list[Record] = []
    for e in sorted(events, key=lambda e: e.ts):
        out.extend(apply(s, e, cfg))
    return s, out


def alerts_of(records: list[Record], kind: str) -> list[Alert]:
    return [r for r in records if isinstance(r, Alert) and r.kind == kind]


def all_evidence(records: list[Record]) -> str:
    return "\n".join(line for r in records for line in getattr(r, "evidence", ()))


def rate(hours: float, value: float, agent: str = NE, action: str = "rate_change", **kw: object) -> ClinicalEvent:
    return infusion(hours, agent, action, rate=value, unit="ug/kg/min", **kw)


def bp(hours: float, sbp: float | None = None, dbp: float | None = None, map_: float | None = None,
       **kw: object) -> ClinicalEvent:
    fields: dict[str, object] = {}
    for name, v in (("sbp", sbp), ("dbp", dbp), ("map", map_)):
        if v is not None:
            fields[name] = {"value": v, "unit": "mm[Hg]"}
    return ev("vitals", hours, **fields, **kw)


# ---- item 5: rate 0 or a documented hold is not running

SHOCK = [car_t(), temp(24, 39.2), bp(25, 80), rate(26, 0.1, action="start"), dose(27, "tocilizumab"),
         dose(28, "dexamethasone")]


def test_norepinephrine_at_rate_0_is_not_running_no_grade_3_and_no_refractory_page() -> None:
    later = [rate(30, 0.0), bp(31, 118), ev("finding", 32, finding="fever", present=False)]
    later += [bp(32 + 6 * k, 120) for k in range(1, 12)]
    s, out = fold(SHOCK + later)
    assert NE not in s.infusions and s.crs_grade < 3
    assert not alerts_of(out, "refractory_crs")
    grades = [r.grade for r in out if isinstance(r, CrsGradeChange)]
    assert grades[:2] == [1, 2] and grades[2] == 3 and grades[-1] < 3
    assert not ZERO_RATE.search(all_evidence(out))
    stopped = [a for a in alerts_of(out, "vasopressor_escalation") if a.status == "resolved"]
    assert len(stopped) == 1 and "paused" in stopped[0].evidence[0] and "not running" in stopped[0].evidence[0]


def test_a_documented_hold_is_not_running_either() -> None:
    s, out = fold([*SHOCK, infusion(30, NE, "hold"), bp(31, 118)])
    assert NE not in s.infusions and NE in s.infusions_paused
    assert s.crs_grade == 1  # fever of 24 h ago still current, normotensive, no vasopressor running
    assert not ZERO_RATE.search(all_evidence(out))


def test_a_later_non_zero_rate_restarts_the_agent() -> None:
    s, out = fold([*SHOCK, rate(30, 0.0), bp(31, 118), rate(33, 0.05), bp(33.5, 84)])
    assert s.crs_grade == 3 and s.infusions[NE].rate == 0.05 and s.infusions[NE].since == hours_ts(33)
    escalations = [r for r in out if isinstance(r, Alert) and r.kind == "crs" and r.level == "3"]
    assert len(escalations) == 1  # grade 3 again in the same episode: level 3 was already paged
    assert s.vaso_course == 2  # a new course of vasopressors after the pause


def hours_ts(hours: float) -> float:
    return datetime.fromisoformat(at(hours)).timestamp()


def test_a_rate_change_without_a_rate_does_not_restart_a_paused_agent() -> None:
    s, _ = fold([*SHOCK, rate(30, 0.0), infusion(31, NE, "rate_change", reason="CRS"), bp(32, 118)])
    assert NE not in s.infusions and s.crs_grade < 3


def test_a_start_at_rate_0_never_counts() -> None:
    s, out = fold([car_t(), temp(24, 39.2), bp(25, 80), rate(26, 0.0, action="start")])
    assert s.crs_grade == 2 and not s.infusions and not alerts_of(out, "vasopressor_escalation")


def test_pausing_one_of_two_vasopressors_leaves_grade_3_and_nee_of_the_other() -> None:
    s, out = fold([*SHOCK, rate(29, 0.05, "epinephrine", action="start"), rate(31, 0.0, "epinephrine")])
    grades = [r.grade for r in out if isinstance(r, CrsGradeChange)]
    assert 4 in grades and s.crs_grade == 3
    assert list(s.infusions) == [NE]


def test_the_reason_of_a_paused_infusion_stays_when_it_restarts() -> None:
    s, _ = fold([car_t(), temp(24, 39.2), bp(25, 80),
                 rate(26, 0.1, action="start", reason="septic shock"), rate(30, 0.0), rate(31, 0.08), bp(31.5, 84)])
    assert s.infusions[NE].reason == "septic shock" and s.crs_grade == 2  # not counted toward CRS


def test_stop_of_a_paused_agent_and_redelivery_change_nothing_more() -> None:
    pause = rate(30, 0.0)
    s, _ = fold([*SHOCK, pause, infusion(31, NE, "stop")])
    assert not s.infusions and not s.infusions_paused
    before = s.crs_grade
    assert apply(s, pause, CFG) == [] and s.crs_grade == before
