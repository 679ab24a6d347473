"""The what-if diff on small hand-made cohorts: an alert that moves, one that disappears, one added, a tie,
renumbered activations, grade-days per level."""

from __future__ import annotations

from datetime import UTC, datetime

from models.records import CrsGradeChange
from streams.review.leadtime import AlertRef, Escalation, lead_times
from streams.review.whatif import diff_alerts, diff_grade_days, diff_leads, grade_days, patient_diff, totals

H = 3600.0
T0 = datetime(2026, 1, 5, tzinfo=UTC).timestamp()  # Day 0 midnight


def alert(kind: str, level: str, hours: float, activation: int = 1, status: str = "firing") -> AlertRef:
    return AlertRef(f"p:{kind}:{activation}:{level}", kind, level, "high", status, T0 + hours * H, f"{kind} {level}")


def test_an_alert_that_moves_is_moved_by_its_time_difference() -> None:
    d = diff_alerts([alert("crs", "2", 30)], [alert("crs", "2", 26.5)])
    assert (d.added, d.removed, d.unchanged) == ((), (), 0)
    assert len(d.moved) == 1 and d.moved[0].delta_s == -3.5 * H


def test_an_alert_that_disappears_is_removed_and_others_stay_unchanged() -> None:
    cur = [alert("crs", "1", 10), alert("ferritin_high", "1", 50)]
    d = diff_alerts(cur, [alert("crs", "1", 10)])
    assert [a.kind for a in d.removed] == ["ferritin_high"]
    assert (d.added, d.moved, d.unchanged) == ((), (), 1)


def test_a_tie_is_unchanged_not_moved() -> None:
    d = diff_alerts([alert("crs", "3", 12)], [alert("crs", "3", 12)])
    assert (d.added, d.removed, d.moved, d.unchanged) == ((), (), (), 1)


def test_beyond_max_move_it_is_one_removed_and_one_added() -> None:
    d = diff_alerts([alert("crs", "2", 0)], [alert("crs", "2", 60)], max_move_hours=48)
    assert len(d.removed) == 1 and len(d.added) == 1 and not d.moved


def test_levels_are_never_paired_with_each_other() -> None:
    d = diff_alerts([alert("crs", "2", 5)], [alert("crs", "3", 5)])
    assert [a.level for a in d.removed] == ["2"] and [a.level for a in d.added] == ["3"]


def test_an_extra_earlier_activation_is_one_added_alert_not_a_renumbered_cascade() -> None:
    # the changed thresholds open an extra CRS episode on Day 1: every later id is renumbered (activation + 1)
    cur = [alert("crs", "1", 50, 1), alert("crs", "1", 120, 2)]
    chg = [alert("crs", "1", 20, 1), alert("crs", "1", 50, 2), alert("crs", "1", 121, 3)]
    d = diff_alerts(cur, chg)
    assert [a.ts for a in d.added] == [T0 + 20 * H]
    assert d.removed == ()
    assert d.unchanged == 1 and [m.delta_s for m in d.moved] == [1 * H]


def _crs(hours: float, prev: int, grade: int) -> CrsGradeChange:
    ts = datetime.fromtimestamp(T0 + hours * H, UTC).isoformat()
    return CrsGradeChange(patient_id="p", time=ts, day=int(hours // 24), evidence=("x",), grade=grade,
                          previous=prev, episode=1)


def test_grade_days_are_the_highest_level_of_each_day_and_diffed_per_level() -> None:
    start, end = T0 + 10 * H, T0 + 4 * 24 * H  # Day 0 10:00 to Day +4 00:00
    a = grade_days([_crs(30, 0, 1), _crs(40, 1, 2), _crs(80, 2, 0)], T0 + 10 * H, start, end)
    assert a["CRS"] == {0: 0, 1: 2, 2: 2, 3: 2, 4: 0}  # Day +3 held grade 2 until 08:00
    b = grade_days([_crs(30, 0, 1), _crs(60, 1, 0)], T0 + 10 * H, start, end)
    assert b["CRS"] == {0: 0, 1: 1, 2: 1, 3: 0, 4: 0}
    levels, days = diff_grade_days(a, b)
    assert [(g.level, g.days_current, g.days_changed) for g in levels] == [(0, 2, 3), (1, 0, 2), (2, 3, 0)]
    assert days == [("CRS", 1, 2, 1), ("CRS", 2, 2, 1), ("CRS", 3, 2, 0)]


def test_lead_change_and_totals() -> None:
    esc = [Escalation("p", T0 + 30 * H, "il6_blockade", "tocilizumab 8 mg/kg")]
    cur = [alert("crs", "2", 26)]
    chg = [alert("crs", "2", 22)]
    la, lb = lead_times(esc, cur), lead_times(esc, chg)
    changes = diff_leads(la, lb)
    assert len(changes) == 1 and changes[0].delta_s == 4 * H  # the changed thresholds warn 4 h earlier
    days = grade_days([], None, T0, T0 + 23 * H)
    pd = patient_diff("p", cur, chg, days, days, la, lb)
    t = totals([pd], [days], [days], la, lb)
    assert (t.patients_changed, t.moved, t.moved_earlier, t.lead_changed, t.preceded_current) == (1, 1, 1, 1, 1)
    # an alert added after the escalation changes its related alerts, not its lead
    later = [*cur, alert("vasopressor_escalation", "agent:norepinephrine", 31)]
    lc = lead_times(esc, later)
    t2 = totals([patient_diff("p", cur, later, days, days, la, lc)], [days], [days], la, lc)
    assert (t2.lead_changed, t2.related_changed) == (0, 1)
    same = patient_diff("q", cur, cur, days, days, la, la)
    assert not same.changed
