"""ICANS across assessments: each domain keeps its own latest finding (ASTCT 2019, REFERENCE A.2: the grade is
set by the most severe domain); a partial assessment erases nothing; IN-HOUSE holds per domain."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from alerts.config import Thresholds
from alerts.fold import apply
from alerts.icans import IcansInput, grade_icans
from models.events import ClinicalEvent, InvalidEvent, NeuroAssessment
from models.records import Alert, IcansGradeChange, Record
from models.state import state_from_json, state_to_json, state_value
from models.vocabulary import Consciousness
from tests.factories import attribution, car_t, ev, fold

CFG = Thresholds()



def changes(out: list[Record]) -> list[tuple[int, int]]:
    return [(r.previous, r.grade) for r in out if isinstance(r, IcansGradeChange)]


def resolved(out: list[Record]) -> list[Alert]:
    return [r for r in out if isinstance(r, Alert) and r.kind == "icans" and r.status == "resolved"]


def neuro(hours: float, **domains: object) -> ClinicalEvent:
    return ev("neuro", hours, **domains)


FULL_NORMAL = {"ice_score": 10, "consciousness": "alert", "seizure": "none", "motor_weakness": False,
               "cerebral_edema": "none"}


# ---- the three cases


def test_eeg_no_seizure_20_minutes_after_status_epilepticus_does_not_resolve_icans() -> None:
    s, out = fold([car_t(), neuro(30, seizure="prolonged_or_repetitive"), neuro(30 + 20 / 60, seizure="none")])
    assert s.icans_grade == 4
    assert changes(out) == [(0, 4)] and not resolved(out)


def test_nursing_ice_after_diffuse_cerebral_edema_keeps_grade_4() -> None:
    s, out = fold([car_t(), neuro(30, cerebral_edema="diffuse"), neuro(32, ice_score=5)])
    assert s.icans_grade == 4 and changes(out) == [(0, 4)]


def test_post_ictal_ice_keeps_the_seizures_grade_3() -> None:
    s, out = fold([car_t(), neuro(30, seizure="rapidly_resolving"), neuro(30.5, ice_score=8)])
    assert s.icans_grade == 3 and changes(out) == [(0, 3)]


# ---- adversarial cases around the rule


def test_edema_persists_through_ice_only_assessments_for_days() -> None:
    events = [car_t(), neuro(30, cerebral_edema="focal")] + [neuro(30 + 8 * k, ice_score=9) for k in range(1, 10)]
    s, out = fold(events)
    assert s.icans_grade == 3 and changes(out) == [(0, 3)]  # no reassessment of edema: it stays


def test_edema_reported_gone_within_the_hold_is_held_then_a_later_report_clears_it() -> None:
    s, out = fold([car_t(), neuro(30, cerebral_edema="diffuse", ice_score=6), neuro(33, cerebral_edema="none")])
    assert s.icans_grade == 4
    s, out = fold([car_t(), neuro(30, cerebral_edema="diffuse", ice_score=6), neuro(33, cerebral_edema="none"),
                   neuro(55, cerebral_edema="none")])
    assert s.icans_grade == 2  # edema cleared by imaging 25 h later; ICE 6 still grade 2
    assert changes(out) == [(0, 4), (4, 2)]


def test_diffuse_then_focal_edema_holds_grade_4_until_the_hold_runs_out() -> None:
    s, _ = fold([car_t(), neuro(30, cerebral_edema="diffuse"), neuro(40, cerebral_edema="focal")])
    assert s.icans_grade == 4
    s, _ = fold([car_t(), neuro(30, cerebral_edema="diffuse"), neuro(40, cerebral_edema="focal"),
                 neuro(56, ice_score=10)])
    assert s.icans_grade == 3  # 26 h after the diffuse edema: the newer focal edema sets the domain


def test_seizure_then_a_later_full_normal_assessment_clears() -> None:
    s, out = fold([car_t(), neuro(30, seizure="rapidly_resolving", ice_score=7), neuro(55, **FULL_NORMAL)])
    assert s.icans_grade == 0
    assert changes(out) == [(0, 3), (3, 0)] and len(resolved(out)) == 1


def test_a_full_normal_assessment_within_the_hold_of_status_epilepticus_does_not_clear() -> None:
    s, out = fold([car_t(), neuro(30, seizure="prolonged_or_repetitive"), neuro(36, **FULL_NORMAL)])
    assert s.icans_grade == 4 and not resolved(out)


def test_a_seizure_not_reassessed_stops_counting_after_its_hold() -> None:
    s, out = fold([car_t(), neuro(30, seizure="rapidly_resolving"), neuro(56, ice_score=8)])
    assert s.icans_grade == 1
    last = [r for r in out if isinstance(r, IcansGradeChange)][-1]
    assert any("no longer counted" in line and "icans_seizure_hold_hours" in line for line in last.evidence)


def test_a_new_seizure_within_the_hold_restarts_it() -> None:
    s, _ = fold([car_t(), neuro(30, seizure="rapidly_resolving"), neuro(50, seizure="rapidly_resolving"),
                 neuro(60, **FULL_NORMAL)])
    assert s.icans_grade == 3  # 10 h after the second seizure


def test_ice_replaces_ice_at_once_and_other_domains_are_untouched() -> None:
    s, out = fold([car_t(), neuro(30, ice_score=2), neuro(31, ice_score=9)])
    assert changes(out) == [(0, 3), (3, 1)]
    s, out = fold([car_t(), neuro(30, ice_score=9, consciousness="awakens_to_voice"), neuro(31, ice_score=10)])
    assert s.icans_grade == 2  # consciousness was not reassessed


def test_motor_weakness_holds_against_an_examination_an_hour_later() -> None:
    s, _ = fold([car_t(), neuro(30, motor_weakness=True), neuro(31, motor_weakness=False, ice_score=10)])
    assert s.icans_grade == 4
    s, _ = fold([car_t(), neuro(30, motor_weakness=True), neuro(31, motor_weakness=False, ice_score=10),
                 neuro(60, ice_score=10)])
    assert s.icans_grade == 0


def test_holds_are_configurable() -> None:
    cfg = Thresholds(icans_edema_hold_hours=1.0, icans_seizure_hold_hours=0.25,
                     icans_status_epilepticus_hold_hours=0.25)
    s, _ = fold([car_t(), neuro(30, cerebral_edema="diffuse"), neuro(32, cerebral_edema="none")], cfg)
    assert s.icans_grade == 0
    s, _ = fold([car_t(), neuro(30, seizure="prolonged_or_repetitive"), neuro(30.5, seizure="none")], cfg)
    assert s.icans_grade == 0


def test_evidence_names_the_domain_that_set_the_grade_and_when_each_was_assessed() -> None:
    edema = neuro(30, cerebral_edema="diffuse", event_id="ct-1")
    s, out = fold([car_t(), neuro(29, ice_score=9, event_id="ice-1"), edema, neuro(32, ice_score=4, event_id="ice-2")])
    grade4 = [r for r in out if isinstance(r, IcansGradeChange)][-1]
    assert grade4.grade == 4
    text = "\n".join(grade4.evidence)
    assert "set by cerebral edema (Day +1 16:00)" in text
    assert "cerebral edema: diffuse -> grade 4 at Day +1 16:00 [ct-1]" in text
    assert "not assessed: level of consciousness, seizure, motor findings" in text
    # the nursing ICE score changes no grade, so no record repeats it; the state has both domains
    assert [f.event_id for f in s.icans_domains["ice_score"]] == ["ice-2"]
    assert [f.event_id for f in s.icans_domains["cerebral_edema"]] == ["ct-1"]


def test_held_finding_evidence_names_the_later_milder_assessment() -> None:
    s, out = fold([car_t(), neuro(30, seizure="rapidly_resolving", event_id="sz"),
                   neuro(30.3, seizure="none", event_id="eeg"), neuro(31, ice_score=5, event_id="ice")])
    assert changes(out) == [(0, 3)]
    out = apply(s, neuro(40, motor_weakness=True, event_id="mw"), CFG)
    text = "\n".join(next(r for r in out if isinstance(r, IcansGradeChange)).evidence)
    assert "set by motor findings (Day +2 02:00)" in text
    assert ("seizure: rapidly resolving -> grade 3 at Day +1 16:00 [sz], held over the later no seizure -> grade 0 "
            "at Day +1 16:18 [eeg] (IN-HOUSE icans_seizure_hold_hours 24 h)") in text
    assert "ICE score 5/10 -> grade 2 at Day +1 17:00 [ice]" in text


def test_a_late_charted_seizure_counts_though_newer_assessments_were_applied() -> None:
    s, _out = fold([car_t(), neuro(31, ice_score=8), neuro(30, seizure="rapidly_resolving")])
    assert s.icans_grade == 3


def test_a_redelivered_assessment_changes_nothing() -> None:
    e = neuro(30, seizure="rapidly_resolving", ice_score=7)
    s, _ = fold([car_t(), e, neuro(31, seizure="none")])
    before = state_value(s)
    assert apply(s, e, CFG) == []
    assert state_value(s) == before


def test_findings_kept_per_domain_are_bounded() -> None:
    events: list[ClinicalEvent] = [car_t()]
    for k in range(40):  # a seizure and edema, then normal findings, every 6 minutes
        abnormal = k % 2 == 0
        events.append(neuro(30 + k / 10, seizure="rapidly_resolving" if abnormal else "none",
                            cerebral_edema="focal" if abnormal else "none"))
    s, _ = fold(events)
    assert all(len(v) <= 2 for v in s.icans_domains.values())  # the latest and the newest grade-3 finding
    assert s.icans_grade == 3


def test_attribution_removes_earlier_findings_but_a_later_assessment_counts() -> None:
    _s, out = fold([car_t(), neuro(30, ice_score=2, cerebral_edema="focal"),
                    attribution(31, ["icans"], "sedation", event_id="att"), neuro(32, ice_score=6)])
    assert changes(out) == [(0, 3), (3, 0), (0, 2)]
    to_zero, to_two = [r for r in out if isinstance(r, IcansGradeChange)][1:]
    assert to_zero.evidence == ("neurological findings up to Day +1 17:00 attributed to sedation [att]",)
    assert "ICE score 6/10 -> grade 2 at Day +1 18:00" in to_two.evidence[1]
    assert not any("cerebral edema" in line for line in to_two.evidence)  # the attributed edema no longer counts
    assert to_two.evidence[-1] == to_zero.evidence[0]


def test_state_with_domains_round_trips() -> None:
    s, _ = fold([car_t(), neuro(30, seizure="prolonged_or_repetitive", ice_score=0, unable_to_perform_ice=True),
                 neuro(30.3, seizure="none", consciousness="unarousable")])
    assert state_value(state_from_json(state_to_json(s))) == state_value(s)
    c = s.clone()
    apply(c, neuro(31, cerebral_edema="diffuse"), CFG)
    assert "cerebral_edema" not in s.icans_domains


# ---- item 9: an explicit normal level of consciousness


def test_alert_patient_with_ice_10_is_icans_0() -> None:
    s, out = fold([car_t(), neuro(30, ice_score=10, consciousness="alert")])
    assert s.icans_grade == 0 and changes(out) == []
    assert grade_icans(IcansInput(consciousness=Consciousness.ALERT)).evidence == ("consciousness: alert -> grade 0",)


def test_awakens_spontaneously_stays_grade_1_as_astct_says() -> None:
    s, _ = fold([car_t(), neuro(30, ice_score=10, consciousness="awakens_spontaneously")])
    assert s.icans_grade == 1


def test_alert_replaces_a_depressed_level_of_consciousness() -> None:
    _s, out = fold([car_t(), neuro(30, consciousness="awakens_to_voice", ice_score=9),
                   neuro(40, consciousness="alert", ice_score=10)])
    assert changes(out) == [(0, 2), (2, 0)]


def test_alert_but_unable_to_perform_ice_is_grade_3() -> None:
    s, _ = fold([car_t(), neuro(30, consciousness="alert", unable_to_perform_ice=True)])
    assert s.icans_grade == 3


def test_a_status_epilepticus_hold_shorter_than_the_seizure_hold_is_refused() -> None:
    with pytest.raises(ValidationError, match="icans_status_epilepticus_hold_hours"):
        Thresholds(icans_status_epilepticus_hold_hours=1.0)


def test_feed_spellings_of_alert_map_to_it_and_unknown_levels_are_rejected() -> None:
    for spelling in ("alert", "Alert", "awake and alert", "normal"):
        e = neuro(30, consciousness=spelling)
        assert isinstance(e, NeuroAssessment) and e.consciousness is Consciousness.ALERT
    voice = neuro(30, consciousness="Awakens to voice")
    assert isinstance(voice, NeuroAssessment) and voice.consciousness is Consciousness.AWAKENS_TO_VOICE
    with pytest.raises(InvalidEvent) as exc:
        neuro(30, consciousness="drowsy")
    assert exc.value.field == "consciousness"
