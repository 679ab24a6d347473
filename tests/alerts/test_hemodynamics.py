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
    # the restarted norepinephrine keeps its reason, so neither it nor the hypotension it treats (SBP 84
    # while only a pressor for septic shock runs) counts toward CRS: fever alone, grade 1
    assert s.infusions[NE].reason == "septic shock" and s.crs_grade == 1


def test_stop_of_a_paused_agent_and_redelivery_change_nothing_more() -> None:
    pause = rate(30, 0.0)
    s, _ = fold([*SHOCK, pause, infusion(31, NE, "stop")])
    assert not s.infusions and not s.infusions_paused
    before = s.crs_grade
    assert apply(s, pause, CFG) == [] and s.crs_grade == before


# ---- item 10: hypotension by MAP (IN-HOUSE) and a fluid bolus for hypotension (IN-HOUSE hold)

FEVER = [car_t(), temp(24, 39.0)]


def grade_after(*events: ClinicalEvent, cfg: Thresholds = CFG) -> int:
    return fold([*FEVER, *events], cfg)[0].crs_grade


def test_bp_94_over_38_is_hypotension_by_computed_map() -> None:
    s, out = fold([*FEVER, bp(25, 94, 38)])
    assert s.crs_grade == 2
    change = [r for r in out if isinstance(r, CrsGradeChange)][-1]
    assert any("BP 94/38, computed MAP 56.7 mmHg" in line for line in change.evidence)


def test_map_boundary_64_vs_65_and_sbp_boundary_89_vs_90() -> None:
    assert grade_after(bp(25, 100, map_=64)) == 2
    assert grade_after(bp(25, 100, map_=65)) == 1
    assert grade_after(bp(25, 100, map_=64.9)) == 2
    assert grade_after(bp(25, 95, 50)) == 1  # computed MAP 65.0: not below 65
    assert grade_after(bp(25, 95, 49)) == 2  # computed MAP 64.3
    assert grade_after(bp(25, 89, 70)) == 2  # SBP < 90 whatever the MAP
    assert grade_after(bp(25, 90, 70)) == 1


def test_missing_dbp_gives_no_map_and_sbp_decides() -> None:
    assert grade_after(bp(25, 94)) == 1
    assert grade_after(ev("vitals", 25, dbp={"value": 30, "unit": "mm[Hg]"})) == 1  # DBP alone says nothing


def test_measured_map_is_used_over_the_computed_one() -> None:
    assert grade_after(bp(25, 100, 40, map_=70)) == 1  # computed would be 60; the monitor measured 70


def test_the_map_criterion_is_configurable_and_can_be_turned_off() -> None:
    assert grade_after(bp(25, 94, 38), cfg=Thresholds(hypotension_map_below=None)) == 1
    assert grade_after(bp(25, 100, map_=68), cfg=Thresholds(hypotension_map_below=70)) == 2


def test_a_normal_map_alone_does_not_clear_hypotension_judged_by_sbp() -> None:
    assert grade_after(bp(25, 85), bp(26, map_=70)) == 2
    assert grade_after(bp(25, 100, map_=60), bp(26, map_=70)) == 1  # a MAP-judged hypotension: MAP clears it


def test_a_fluid_bolus_for_hypotension_keeps_grade_2_through_the_first_normal_reading() -> None:
    events = [*FEVER, bp(25, 94, 38), dose(25.1, "normal saline", dose=1000, unit="mL", event_id="ns"),
              bp(26, 118, 70)]
    s, out = fold(events)
    assert s.crs_grade == 2
    assert [r.grade for r in out if isinstance(r, CrsGradeChange)] == [1, 2]
    s, out = fold([*events, bp(31.2, 120, 72)])  # 6.1 h after the bolus: the hold has run out
    assert s.crs_grade == 1
    s, out = fold([*events, temp(27, 39.1)])  # a grade change during the hold explains it
    assert s.crs_grade == 2


def test_the_held_hypotension_is_explained_with_the_bolus() -> None:
    s, out = fold([*FEVER, bp(25, 94, 38), bp(26, 118, 70), dose(25.1, "lactated ringer's", event_id="lr"),
                   ev("oxygen", 27, device="facemask")])
    assert s.crs_grade == 3
    text = all_evidence(out)
    assert "treated with a fluid bolus (lactated ringer's at Day +1 11:06 [lr])" in text
    assert "since then SBP 118 mmHg" in text and "fluid_bolus_hold_hours" in text


def test_the_bolus_may_be_charted_before_the_low_reading_or_at_the_same_minute() -> None:
    assert grade_after(dose(24.6, "normal saline"), bp(25, 84), bp(25.5, 120)) == 2
    for ids in (("a", "b"), ("b", "a")):
        assert grade_after(dose(25, "albumin", event_id=ids[0]), bp(25, 84, event_id=ids[1]), bp(26, 120)) == 2


def test_a_bolus_far_from_any_low_reading_or_for_another_cause_holds_nothing() -> None:
    assert grade_after(bp(25, 84), bp(26, 120), dose(27, "normal saline")) == 1  # 2 h after the low reading
    assert grade_after(bp(25, 84), dose(25.1, "normal saline", reason="sepsis"), bp(26, 120)) == 1
    assert grade_after(bp(25, 84), dose(25.1, "normal saline"), bp(26, 120),
                       cfg=Thresholds(fluid_bolus_hold_hours=0.5)) == 1


def test_without_a_bolus_the_first_normal_reading_ends_hypotension() -> None:
    assert grade_after(bp(25, 84), bp(26, 120)) == 1


def test_an_sbp_alone_does_not_clear_hypotension_shown_by_map() -> None:
    assert grade_after(bp(25, 94, 38), bp(26, 96)) == 2  # MAP unknown at 26 h
    assert grade_after(bp(25, 94, 38), bp(26, 110, 70)) == 1  # computed MAP 83.3
    assert grade_after(bp(25, 94, 38), bp(26, 110, map_=80)) == 1
