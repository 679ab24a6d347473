"""IEC-HS, HScore and Day-number edge cases a clinical reviewer would try (issue 15 items 4, 8, 12, 13, 14).

Each test states the clinical fact it guards. Times are hours after Day 0 (tests.factories), except
where a local UTC offset is the point of the test.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from alerts.config import Thresholds
from alerts.fold import apply, day_of, when
from alerts.hlh_scores import HlhInputs, hscore
from models.events import ClinicalEvent, parse_event
from models.labvalue import LabValue
from models.records import Alert, CrsGradeChange, IecHsChange, Record
from models.state import PatientState, state_from_json, state_to_json
from tests.factories import PID, car_t, ev, finding, fold, lab, temp

CFG = Thresholds()
DAY = 24.0



def alerts_of(records: list[Record], kind: str, status: str | None = None) -> list[Alert]:
    return [r for r in records if isinstance(r, Alert) and r.kind == kind and (status is None or r.status == status)]


def iec_changes(records: list[Record]) -> list[IecHsChange]:
    return [r for r in records if isinstance(r, IecHsChange)]


def baseline(hours: float, **values: float) -> ClinicalEvent:
    units = {"ferritin": "ng/mL", "platelets": "10*9/L", "anc": "10*9/L", "hemoglobin": "g/dL"}
    return ev("context", hours, baselines=[{"analyte": a, "value": v, "unit": units[a]} for a, v in values.items()])


def resolved_crs_episode() -> list[ClinicalEvent]:
    """CRS episode 1 on Days +1 to +3, ended by a documented 'afebrile'."""
    return [car_t(), temp(DAY + 2, 39.0), temp(DAY + 20, 38.6), finding(3 * DAY, "fever", present=False)]


# ------------------------------------------------------------ item 4: the suspicion holds while its criteria hold


def _rising_without_fold_criterion() -> list[ClinicalEvent]:
    # Baseline 500: 2x baseline = 1000 is not reached, so the ferritin criterion rests on the rise alone
    # (600 -> 950 in 24 h = 1.58x, above the ULN floor); hypofibrinogenemia is a major feature.
    return [*resolved_crs_episode(), baseline(0.5, ferritin=500),
            lab(10 * DAY, "ferritin", 600, "ng/mL"), lab(11 * DAY, "ferritin", 950, "ng/mL", event_id="fer-950"),
            lab(11 * DAY + 1, "fibrinogen", 120, "mg/dL")]


def _assert_rise_and_suspicion_agree(s: PatientState) -> None:
    rise = s.tracks.get("ferritin_rapid_rise")
    if rise is not None and rise.active:
        assert "ferritin" in s.iec_hs_criteria and s.iec_hs_level >= 1


def test_the_same_ferritin_re_sent_under_a_new_id_is_one_fact_and_clears_nothing() -> None:
    events = _rising_without_fold_criterion()
    s, out = fold(events)
    assert s.iec_hs_level == 2 and alerts_of(out, "ferritin_rapid_rise", "firing")
    resent = lab(11 * DAY, "ferritin", 950, "ng/mL", event_id="fer-950-resent")  # same time, value, analyte
    after = apply(s, resent, CFG)
    assert after == []  # nothing changes: no "suspicion cleared", no new record
    assert s.iec_hs_level == 2 and len(s.labs["ferritin"]) == 2
    _assert_rise_and_suspicion_agree(s)


def test_a_higher_ferritin_12h_later_keeps_the_rapid_rise_and_the_suspicion() -> None:
    s, out = fold([*_rising_without_fold_criterion(), lab(11 * DAY + 12, "ferritin", 990, "ng/mL")])
    assert s.iec_hs_level == 2
    assert not alerts_of(out, "iec_hs", "resolved")
    assert not alerts_of(out, "ferritin_rapid_rise", "resolved")  # 990 is 1.65x the window's lowest (600)
    _assert_rise_and_suspicion_agree(s)


def test_a_different_value_at_the_same_collection_time_is_not_a_duplicate() -> None:
    s, _ = fold([*_rising_without_fold_criterion(), lab(11 * DAY, "ferritin", 960, "ng/mL")])
    assert len(s.labs["ferritin"]) == 3  # a corrected or second aliquot value is kept as its own result


def test_ferritin_rise_alert_and_iec_hs_criterion_end_together() -> None:
    # 950 then a plateau 60 h later (no value of the previous 48 h is low enough): the rise is over.
    events = [*_rising_without_fold_criterion(), lab(11 * DAY + 60, "ferritin", 980, "ng/mL")]
    s = PatientState(PID)
    out: list[Record] = []
    for e in events:
        out.extend(apply(s, e, CFG))
        _assert_rise_and_suspicion_agree(s)
    assert [a.status for a in alerts_of(out, "ferritin_rapid_rise")] == ["firing", "resolved"]
    cleared = alerts_of(out, "iec_hs", "resolved")
    assert cleared and any("hypofibrinogenemia" in e for e in cleared[-1].evidence)  # says what still holds
    assert "hypofibrinogenemia still present" in cleared[-1].summary
    assert all("no IEC-HS criterion met" not in e for e in cleared[-1].evidence)


def test_rise_is_judged_against_the_lowest_value_of_the_window_not_the_previous_one() -> None:
    # 400 -> 560 -> 640 every 12 h: each step < 1.5x, but 640 is 1.6x the lowest of the last 48 h.
    _, out = fold([car_t(), lab(10 * DAY, "ferritin", 400, "ng/mL"), lab(10 * DAY + 12, "ferritin", 560, "ng/mL"),
                   lab(10 * DAY + 24, "ferritin", 640, "ng/mL")])
    fired = alerts_of(out, "ferritin_rapid_rise", "firing")
    assert fired and "400" in fired[0].evidence[0] and "640" in fired[0].evidence[0]


# ------------------------------------------------------------ item 8: no over-calls


def test_a_rise_inside_the_normal_range_is_not_rapidly_rising_ferritin() -> None:
    _, out = fold([car_t(), lab(5 * DAY, "ferritin", 110, "ng/mL"), lab(6 * DAY, "ferritin", 180, "ng/mL")])
    assert not alerts_of(out, "ferritin_rapid_rise") and not alerts_of(out, "iec_hs")


def test_the_rise_floor_is_configurable_and_named_in_the_evidence() -> None:
    events = [car_t(), lab(5 * DAY, "ferritin", 110, "ng/mL"), lab(6 * DAY, "ferritin", 180, "ng/mL")]
    _, out = fold(events, Thresholds(ferritin_rise_floor_fold_uln=0.0))
    assert alerts_of(out, "ferritin_rapid_rise", "firing")
    _, out = fold([car_t(), lab(5 * DAY, "ferritin", 300, "ng/mL"), lab(6 * DAY, "ferritin", 900, "ng/mL")])
    fired = alerts_of(out, "ferritin_rapid_rise", "firing")  # 300 -> 900 in 24 h, above the ULN: a real rise
    assert fired and "400 ng/mL" in fired[0].evidence[0] and "in-house" in fired[0].evidence[0]


def test_ferritin_and_ldh_during_ordinary_crs_is_watch_not_suspected() -> None:
    crs = [car_t(), temp(DAY + 2, 39.0), temp(2 * DAY, 38.8)]
    labs = [lab(2 * DAY + 1, "ferritin", 1100, "ng/mL"), lab(2 * DAY + 1, "ldh", 420, "U/L")]
    s, out = fold([*crs, *labs])
    assert s.crs_grade == 1 and s.iec_hs_level == 1
    assert not [a for a in alerts_of(out, "iec_hs", "firing") if a.level != "1"]
    assert any("LDH" in e for e in iec_changes(out)[-1].evidence)  # listed, not hidden
    # The same labs with a major feature during CRS: suspected.
    s, _ = fold([*crs, *labs, lab(2 * DAY + 2, "fibrinogen", 110, "mg/dL")])
    assert s.iec_hs_level == 2
    # The same labs after CRS resolved: LDH counts again (IEC-HS 'other manifestation' [U]).
    s, _ = fold([*resolved_crs_episode(), lab(20 * DAY, "ferritin", 1100, "ng/mL"), lab(20 * DAY, "ldh", 420, "U/L")])
    assert s.crs_grade == 0 and s.iec_hs_level == 2
    # A site that wants them counted during CRS says so.
    s, _ = fold([*crs, *labs], Thresholds(iec_hs_other_features_during_crs=True))
    assert s.iec_hs_level == 2


def test_ferritin_and_ldh_of_the_crs_episode_do_not_become_suspected_when_crs_resolves() -> None:
    during = [car_t(), temp(DAY + 2, 39.0), temp(2 * DAY, 38.8), lab(2 * DAY + 1, "ferritin", 1100, "ng/mL"),
              lab(2 * DAY + 1, "ldh", 420, "U/L"), finding(3 * DAY, "fever", present=False), temp(3 * DAY + 2, 37.0)]
    s, out = fold(during)
    assert s.crs_grade == 0 and s.iec_hs_level == 1  # no new data since the CRS labs: still watch
    assert not [a for a in alerts_of(out, "iec_hs", "firing") if a.level != "1"]
    s, _ = fold([*during, lab(4 * DAY, "ldh", 450, "U/L")])  # LDH still high after CRS resolved: counts
    assert s.iec_hs_level == 2


def _counts(hours: float) -> list[ClinicalEvent]:
    return [lab(hours, "platelets", 40, "10*9/L"), lab(hours, "anc", 0.2, "10*9/L"),
            lab(hours, "ferritin", 3000, "ng/mL")]


def test_the_post_lymphodepletion_nadir_is_not_new_cytopenias() -> None:
    s, out = fold([car_t(), *_counts(3 * DAY)])  # Day +3
    assert s.iec_hs_level == 1 and not any("cytopenia" in c for c in s.iec_hs_criteria)
    assert any("post-lymphodepletion nadir" in e for e in iec_changes(out)[-1].evidence)
    s, _ = fold([car_t(), *_counts(20 * DAY)])  # Day +20: new, worsening or refractory
    assert s.iec_hs_level == 2 and "new" in s.iec_hs_criteria


def test_nadir_window_ends_at_the_local_end_of_day_14() -> None:
    s, _ = fold([car_t(), *_counts(14 * DAY + 13)])  # Day +14 23:00 (Day 0 began 10:00 before)
    assert s.iec_hs_level == 1
    s, _ = fold([car_t(), *_counts(14 * DAY + 14.5)])  # Day +15 00:30
    assert s.iec_hs_level == 2


def test_cytopenias_without_day_0_are_judged_as_before_and_documented_pancytopenia_counts() -> None:
    s, _ = fold(_counts(3 * DAY))  # no CAR-T dose charted: the nadir rule cannot be placed
    assert s.iec_hs_level == 2
    s, _ = fold([car_t(), *_counts(3 * DAY), finding(3 * DAY + 1, "pancytopenia")])
    assert s.iec_hs_level == 2  # a clinician documented it (e.g. transfusion-dependent): counted
    s, _ = fold([car_t(), *_counts(3 * DAY)], Thresholds(cytopenia_nadir_days=0))
    assert s.iec_hs_level == 2


def test_cytopenias_after_day_14_above_baseline_are_not_new() -> None:
    s, _ = fold([car_t(), baseline(0.5, platelets=30, anc=0.1), *_counts(20 * DAY)])
    assert s.iec_hs_level == 1


# ------------------------------------------------------------ item 12: HScore temperature and censored ferritin


def test_a_measured_afebrile_temperature_is_a_known_zero_and_ferritin_over_4000_counts() -> None:
    _, out = fold([car_t(), temp(20 * DAY, 37.2), lab(20 * DAY + 1, "ferritin", 4000, "ng/mL", comparator=">")])
    text = iec_changes(out)[-1].hscore
    missing = text.split("missing:", 1)[1]
    assert "temperature" not in missing
    assert "at least 35" in text  # Fardet 2014: ferritin 2,000-6,000 = 35, > 6,000 = 50: > 4,000 is >= 35


def test_a_documented_fever_without_value_stays_unknown_despite_a_normal_reading() -> None:
    _, out = fold([car_t(), finding(20 * DAY, "fever"), temp(20 * DAY + 1, 37.0),
                   lab(20 * DAY + 2, "ferritin", 3000, "ng/mL")])
    assert "temperature" in iec_changes(out)[-1].hscore.split("missing:", 1)[1]


def test_hscore_minimum_counts_the_censored_ferritin_band() -> None:
    r = hscore(HlhInputs(max_temperature_c=37.0, ferritin_ng_ml=LabValue(4000, ">")))
    assert r.min_possible == 35 and "temperature" not in r.missing and "ferritin" in r.missing


# ------------------------------------------------------------ item 14: IEC-HS timing and its own fever


def test_fever_from_iec_hs_after_crs_resolved_does_not_relabel_it_during_active_crs() -> None:
    events = [*resolved_crs_episode(), baseline(0.5, ferritin=300),
              lab(12 * DAY, "ferritin", 3000, "ng/mL"), lab(12 * DAY + 1, "fibrinogen", 90, "mg/dL")]
    s, out = fold(events)
    assert s.iec_hs_level == 2 and iec_changes(out)[-1].label == "IEC-HS after CRS resolution"
    fever = apply(s, temp(12 * DAY + 6, 39.2), CFG)
    onset = [r for r in fever if isinstance(r, CrsGradeChange)]
    assert onset and onset[0].grade == 1 and s.episode == 2
    # the CRS record reads no lab state (labs and vitals must commute inside the lateness window): the
    # IEC-HS record says that the episode opened after the suspicion began
    assert not any("IEC-HS" in u for u in onset[0].uncertain)
    more = apply(s, finding(12 * DAY + 8, "pancytopenia"), CFG)
    change = iec_changes(more)[-1]
    assert change.level == 3 and change.label == "IEC-HS after CRS resolution"
    assert any("after this suspicion began" in e for e in change.evidence)
    assert all("during active CRS" not in a.summary for a in alerts_of(more, "iec_hs", "firing"))


def test_iec_hs_that_began_during_active_crs_keeps_that_label() -> None:
    _, out = fold([car_t(), temp(DAY, 39.0), lab(DAY + 2, "ferritin", 3000, "ng/mL"),
                   lab(DAY + 3, "fibrinogen", 90, "mg/dL")])
    assert {c.label for c in iec_changes(out)} == {"HLH-like features during active CRS"}


def test_fever_alone_without_iec_hs_is_not_flagged() -> None:
    _, out = fold([*resolved_crs_episode(), temp(12 * DAY, 39.2)])
    onset = [r for r in out if isinstance(r, CrsGradeChange) and r.episode == 2]
    assert onset and not onset[0].uncertain


# ------------------------------------------------------------ item 13: Day 0 is the infusion's local calendar day


def _at(time: str, kind: str, **fields: Any) -> ClinicalEvent:
    return parse_event({"kind": kind, "event_id": f"{kind}-{time}", "patient_id": PID, "time": time,
                        "provenance": {"source": "test"}, **fields})


def test_day_numbers_follow_the_infusions_local_calendar_day() -> None:
    infusion = _at("2024-03-01T20:00:00-05:00", "dose", drug="axicabtagene ciloleucel")
    fever = _at("2024-03-02T10:00:00-05:00", "vitals", temperature={"value": 38.9, "unit": "Cel"})
    s, out = fold([infusion, fever])
    onset = next(r for r in out if isinstance(r, CrsGradeChange))
    assert onset.day == 1
    assert any("Day +1 10:00 (UTC-05:00)" in e for e in onset.evidence)
    # Written in UTC, the same instants carry no local day: the infusion's own offset (+00:00) decides.
    _, out2 = fold([_at("2024-03-02T01:00:00+00:00", "dose", drug="axicabtagene ciloleucel"),
                    _at("2024-03-02T15:00:00Z", "vitals", temperature={"value": 38.9, "unit": "Cel"})])
    assert next(r for r in out2 if isinstance(r, CrsGradeChange)).day == 0
    late_evening = _at("2024-03-02T23:30:00-05:00", "vitals", temperature={"value": 39.5, "unit": "Cel"})
    apply(s, late_evening, CFG)
    assert day_of(s, late_evening.ts) == 1 and when(s, late_evening.ts) == "Day +1 23:30 (UTC-05:00)"


@pytest.mark.parametrize(("time", "day"), [("2024-03-01T23:59:00+09:00", 0), ("2024-03-02T00:01:00+09:00", 1),
                                           ("2024-02-29T23:00:00+09:00", -1)])
def test_day_boundaries_east_of_utc(time: str, day: int) -> None:
    s, _ = fold([_at("2024-03-01T08:00:00+09:00", "dose", drug="tisagenlecleucel")])
    assert day_of(s, parse_event({"kind": "finding", "finding": "fever", "event_id": "x", "patient_id": PID,
                                  "time": time, "provenance": {"source": "t"}}).ts) == day


def test_state_keeps_the_infusion_offset_and_reads_states_stored_before_it() -> None:
    s, _ = fold([_at("2024-03-01T20:00:00-05:00", "dose", drug="tisagenlecleucel")])
    assert s.day0_offset_min == -300
    assert state_from_json(state_to_json(s)).day0_offset_min == -300
    old = json.loads(state_to_json(s))
    for key in ("day0_offset_min", "max_temp_c", "iec_hs_onset_ts"):
        del old[key]
    back = state_from_json(json.dumps(old))
    assert back.day0_offset_min is None and back.day0_ts == s.day0_ts  # read as UTC, as before


def test_a_result_re_sent_in_another_unit_is_the_same_fact() -> None:
    s, _ = fold([car_t(), lab(5 * DAY, "fibrinogen", 1.2, "g/L"),
                 lab(5 * DAY, "fibrinogen", 120, "mg/dL", event_id="fib-resent")])
    assert len(s.labs["fibrinogen"]) == 1  # 1.2 g/L x 100 is 120 mg/dL up to floating point
