"""The fold's behaviour around the grade: attribution, episodes, alert policy, trends."""

from __future__ import annotations

import pytest

from alerts.config import Thresholds
from alerts.fold import apply
from alerts.vasopressors import RunningAgent, nee
from models.events import ClinicalEvent
from models.records import Alert, CrsGradeChange, IcansGradeChange, IecHsChange, Record
from models.state import LABS_KEPT_PER_ANALYTE, PatientState
from models.vocabulary import VasoactiveAgent
from tests.factories import PID, attribution, bp, car_t, dose, ev, finding, fold, infusion, lab, oxygen, temp


def alerts_of(records: list[Record], kind: str) -> list[Alert]:
    return [r for r in records if isinstance(r, Alert) and r.kind == kind]


# ---- attribution


def test_forward_attribution_keeps_later_sepsis_physiology_out_of_the_grade() -> None:
    s, _ = fold([car_t(), attribution(100, ["fever", "hypotension"], "sepsis", forward=True),
                 temp(101, 39.4), bp(101.5, 72)])
    assert s.crs_grade == 0
    s2, _ = fold([car_t(), attribution(100, ["fever", "hypotension"], "sepsis", forward=True),
                  attribution(110, ["fever", "hypotension"], "crs"), temp(111, 39.4), bp(111.5, 72)])
    assert s2.crs_grade == 2  # re-attributed to CRS from 110 h on


def test_an_attribution_away_from_crs_holds_until_a_row_gives_a_new_reason() -> None:
    start = [car_t(), temp(24, 39.0), infusion(25, "norepinephrine"), infusion(25.5, "epinephrine")]
    s, _ = fold([*start, attribution(30, ["vasopressors"], "CRS resolved (clinician judgement)")])
    assert s.crs_grade == 1 and s.infusions["epinephrine"].attributed
    s, _ = fold([*start, attribution(30, ["vasopressors"], "CRS resolved (clinician judgement)"),
                 infusion(31, "epinephrine", action="rate_change", rate=0.1, unit="ug/kg/min", reason="hypotension")])
    assert s.crs_grade == 3  # epinephrine counts again (its new reason names no other cause); norepinephrine does not
    s, _ = fold([*start, attribution(30, ["vasopressors"], "crs")])
    assert s.crs_grade == 4 and not s.infusions["epinephrine"].attributed


def test_a_fever_documented_for_another_cause_is_not_a_crs_sign_and_the_causes_are_configurable() -> None:
    events = [car_t(), finding(24, "fever", reason="pancreatitis"), infusion(25, "norepinephrine")]
    assert fold(events)[0].crs_grade == 3
    assert fold(events, Thresholds(non_crs_causes=("pancreatitis",)))[0].crs_grade == 0


def test_a_steroid_given_for_something_else_still_masks_fever_but_starts_no_refractory_clock() -> None:
    start = [car_t(), temp(24, 39.0), infusion(25, "norepinephrine")]
    later = temp(60, 37.0)  # the fever of 24 h has lapsed (24 h window): only the waiver keeps grade 3
    assert fold([*start, later])[0].crs_grade == 0
    s, _ = fold([*start, dose(26, "dexamethasone", dose=10, unit="mg", reason="ICANS grade 2"), later])
    assert s.crs_grade == 3 and s.masking_dose_ts is not None and s.episode_steroid_ts is None
    s, _ = fold([*start, dose(26, "dexamethasone", dose=10, unit="mg"), later])
    assert s.crs_grade == 3 and s.episode_steroid_ts is not None


def test_no_active_crs_judgement_ends_the_episode_without_deleting_support() -> None:
    s, out = fold([car_t(), temp(24, 39.0), oxygen(25, "unspecified"), attribution(48, ["all"], "CRS resolved")])
    assert s.crs_grade == 0 and s.oxygen is not None and s.oxygen.reason == "CRS resolved"
    s, out = fold([car_t(), temp(24, 39.0), oxygen(25, "unspecified"), attribution(48, ["all"], "CRS resolved"),
                   temp(200, 38.4)])
    assert s.crs_grade == 1 and s.episode == 2
    assert [a.id for a in alerts_of(out, "crs") if a.status == "firing"] == [
        f"{PID}:crs:1:1", f"{PID}:crs:1:2", f"{PID}:crs:2:1"]


def test_agent_specific_attribution() -> None:
    s, _ = fold([car_t(), temp(24, 39.0), infusion(25, "norepinephrine"), infusion(26, "epinephrine"),
                 attribution(30, ["vasopressors"], "diuresis", agent="epinephrine")])
    assert s.crs_grade == 3
    assert s.infusions["epinephrine"].reason == "diuresis" and s.infusions["norepinephrine"].reason is None


def test_a_no_active_crs_judgement_ends_the_episode_but_not_the_masking_of_the_drug() -> None:
    events = [car_t(), temp(24, 39.0), bp(26, 82), dose(25, "tocilizumab"), attribution(30, ["all"], "CRS resolved")]
    s, _ = fold(events)
    assert s.crs_grade == 0 and s.episode == 1  # the judgement ends the episode
    s, out = fold([*events, bp(40, 80)])
    # New hypotension within fever_masking_hours of the dose: tocilizumab still masks fever (issue 15
    # item 3), so a new episode grades without fever, flagged uncertain.
    assert s.crs_grade == 2 and s.episode == 2
    assert [r for r in out if isinstance(r, CrsGradeChange)][-1].uncertain


# ---- alert policy


def test_flapping_blood_pressure_raises_each_alert_once_per_episode() -> None:
    events: list[ClinicalEvent] = [car_t(), temp(24, 39.0)]
    for i in range(20):
        events.append(bp(24 + i * 0.25, 85 if i % 2 == 0 else 110))
    _s, out = fold(events)
    grade_changes = [r for r in out if isinstance(r, CrsGradeChange)]
    assert len(grade_changes) == 21  # the state follows every reading ...
    crs_alerts = [a.level for a in alerts_of(out, "crs")]
    assert crs_alerts == ["1", "2", "down1"]  # ... but no alert is raised twice


def test_alert_ids_are_deterministic_and_name_patient_kind_activation_level() -> None:
    _, a = fold([car_t(), temp(24, 39.0), infusion(25, "norepinephrine")])
    _, b = fold([car_t(), temp(24, 39.0), infusion(25, "norepinephrine")])
    assert [x.id for x in alerts_of(a, "crs")] == [x.id for x in alerts_of(b, "crs")] == [
        f"{PID}:crs:1:1", f"{PID}:crs:1:3"]


def test_every_alert_carries_evidence() -> None:
    _, out = fold([car_t(), temp(24, 39.0, event_id="fever-1"), infusion(25, "norepinephrine", event_id="ne-1"),
                   infusion(26, "phenylephrine", event_id="pe-1")])
    for a in [r for r in out if isinstance(r, Alert)]:
        assert a.evidence, a.id
    g4 = next(a for a in alerts_of(out, "crs") if a.level == "4")
    text = "\n".join(g4.evidence)
    assert "fever-1" in text and "ne-1" in text and "pe-1" in text


# ---- vasopressors and oxygen


def test_vasopressor_escalation_levels() -> None:
    _, out = fold([car_t(), temp(24, 39.0), infusion(25, "norepinephrine"), infusion(26, "vasopressin"),
                   infusion(27, "epinephrine"), infusion(28, "dobutamine", rate=5, unit="ug/kg/min")])
    assert [a.level for a in alerts_of(out, "vasopressor_escalation")] == [
        "agent:norepinephrine", "agent:vasopressin", "agent:epinephrine", "multiple"]
    assert [a.level for a in alerts_of(out, "inotrope")] == ["dobutamine"]


def test_nee_needs_weight_for_ug_per_min() -> None:
    r = nee([RunningAgent(VasoactiveAgent.NOREPINEPHRINE, 10, "ug/min")], None)
    assert r.nee_ug_kg_min is None and r.why_not and "no weight" in r.why_not
    r = nee([RunningAgent(VasoactiveAgent.NOREPINEPHRINE, 10, "ug/min"),
             RunningAgent(VasoactiveAgent.VASOPRESSIN, 2.4, "U/h"),
             RunningAgent(VasoactiveAgent.PHENYLEPHRINE, 1.0, "ug/kg/min"),
             RunningAgent(VasoactiveAgent.ANGIOTENSIN_II, 20, "ng/kg/min"),
             RunningAgent(VasoactiveAgent.MILRINONE, 0.5, "ug/kg/min")], 100.0)
    # 10/100 + 0.04*2.5 + 1/10 + 0.02*10 = 0.1 + 0.1 + 0.1 + 0.2 (milrinone excluded)
    assert r.nee_ug_kg_min == pytest.approx(0.5)
    assert nee([RunningAgent(VasoactiveAgent.EPINEPHRINE, None, None)], 70).why_not == "epinephrine dose not charted"


def test_nee_rise_alert_when_computable() -> None:
    events = [car_t(), ev("context", 1, weight={"value": 80, "unit": "kg"}), temp(24, 39.0),
              infusion(25, "norepinephrine", rate=4, unit="ug/min"),
              infusion(26, "norepinephrine", "rate_change", rate=16, unit="ug/min")]
    _, out = fold(events)
    nee_alerts = [a for a in alerts_of(out, "vasopressor_escalation") if a.level.startswith("nee:")]
    assert len(nee_alerts) == 1 and "0.200" in nee_alerts[0].summary
    first = alerts_of(out, "vasopressor_escalation")[0]
    assert any("norepinephrine equivalent 0.050 ug/kg/min" in e for e in first.evidence)


def test_nee_that_cannot_be_computed_says_why() -> None:
    _, out = fold([car_t(), temp(24, 39.0), infusion(25, "norepinephrine", rate=40, unit="ug/min")])
    assert any("cannot be computed: norepinephrine 40 ug/min cannot be converted (no weight)" in e
               for e in alerts_of(out, "vasopressor_escalation")[0].evidence)


def test_oxygen_escalation_per_course() -> None:
    _, out = fold([car_t(), temp(24, 39.0), oxygen(25, "nasal_cannula", 2), oxygen(26, "nasal_cannula", 4),
                   oxygen(27, "facemask"), oxygen(28, "nasal_cannula", 2), oxygen(29, "bipap"),
                   oxygen(30, "room_air"), oxygen(40, "nasal_cannula", 3)])
    assert [(a.level, a.status) for a in alerts_of(out, "oxygen_escalation")] == [
        ("2", "firing"), ("3", "firing"), ("4", "firing"), ("resolved", "resolved"), ("2", "firing")]


# ---- labs, ferritin and IEC-HS


@pytest.mark.parametrize(
    ("first", "second", "hours", "fires"),
    [(1000, 1600, 24, True), (1000, 1400, 24, False), (1000, 2000, 72, False), (1000, 1500, 48, True)],
)
def test_ferritin_rapid_rise_in_house_rule(first: float, second: float, hours: float, fires: bool) -> None:
    _, out = fold([car_t(), lab(24, "ferritin", first, "ng/mL"), lab(24 + hours, "ferritin", second, "ug/L")])
    found = alerts_of(out, "ferritin_rapid_rise")
    assert bool(found) is fires
    if fires:
        assert "IN-HOUSE" in found[0].evidence[0]


def test_censored_ferritin_rise_uses_only_certain_bounds() -> None:
    _, out = fold([car_t(), lab(24, "ferritin", 100000, "ng/mL", comparator=">"),
                   lab(48, "ferritin", 200000, "ng/mL")])
    assert not alerts_of(out, "ferritin_rapid_rise")  # the first value is only a lower bound


def test_hypofibrinogenemia_alert_and_resolution() -> None:
    _, out = fold([car_t(), lab(24, "fibrinogen", 1.2, "g/L"), lab(48, "fibrinogen", 250, "mg/dL")])
    assert [(a.level, a.status) for a in alerts_of(out, "hypofibrinogenemia")] == [
        ("1", "firing"), ("resolved", "resolved")]
    assert "120 mg/dL" in alerts_of(out, "hypofibrinogenemia")[0].evidence[0]


def test_censored_fibrinogen_that_cannot_be_placed_does_not_alert() -> None:
    _, out = fold([car_t(), lab(24, "fibrinogen", 200, "mg/dL", comparator="<")])
    assert not alerts_of(out, "hypofibrinogenemia")


def test_iec_hs_after_crs_resolution_is_labelled_as_such() -> None:
    events = [car_t(), ev("context", 0.5, baselines=[{"analyte": "ferritin", "value": 300, "unit": "ng/mL"}]),
              temp(24, 39.0), temp(30, 38.5), finding(60, "fever", present=False),
              lab(100, "ferritin", 3000, "ng/mL"), lab(100.5, "fibrinogen", 90, "mg/dL"),
              finding(101, "pancytopenia")]
    _s, out = fold(events)
    changes = [r for r in out if isinstance(r, IecHsChange)]
    assert [c.level for c in changes] == [1, 2, 3]
    assert all(c.label == "IEC-HS after CRS resolution" for c in changes)
    assert "baseline 300" in changes[0].evidence[0]
    assert "HScore" in changes[-1].hscore and "HLH-2004" in changes[-1].hlh2004


def test_iec_hs_during_active_crs_and_without_baseline_uses_uln() -> None:
    _s, out = fold([car_t(), temp(24, 39.0), lab(25, "ferritin", 900, "ng/mL")])
    change = next(r for r in out if isinstance(r, IecHsChange))
    assert change.label == "HLH-like features during active CRS"
    assert "ULN 400 (in-house default)" in change.evidence[0]


def test_crp_ferritin_divergence_needs_il6_blockade() -> None:
    base = [car_t(), temp(24, 39.0), lab(30, "crp", 200, "mg/L"), lab(30, "ferritin", 20000, "ng/mL")]
    later = [lab(54, "crp", 8.0, "mg/dL"), lab(54, "ferritin", 60000, "ng/mL")]
    _, without = fold(base + later)
    assert not alerts_of(without, "crp_ferritin_divergence")
    _, with_toci = fold([*base, dose(31, "tocilizumab"), *later])
    assert len(alerts_of(with_toci, "crp_ferritin_divergence")) == 1


def test_lab_history_is_bounded() -> None:
    s, _ = fold([car_t(), *[lab(24 + i, "crp", 10 + i, "mg/L") for i in range(50)]])
    assert len(s.labs["crp"]) == LABS_KEPT_PER_ANALYTE
    assert [p.value for p in s.labs["crp"]] == [57, 58, 59]


# ---- refractory CRS


def test_refractory_after_24h_of_grade_3_following_toci_and_steroid() -> None:
    common = [car_t(), temp(24, 39.0), infusion(25, "norepinephrine"), dose(26, "tocilizumab"),
              dose(27, "dexamethasone")]
    _, early = fold([*common, temp(50, 39.1)])
    assert not alerts_of(early, "refractory_crs")
    _, out = fold([*common, temp(50, 39.1), temp(51.5, 39.2)])
    refractory = alerts_of(out, "refractory_crs")
    assert len(refractory) == 1 and refractory[0].severity == "critical"
    _, recovered = fold([*common, infusion(40, "norepinephrine", "stop"), temp(52, 39.2)])
    assert not alerts_of(recovered, "refractory_crs")


def test_refractory_threshold_is_configurable() -> None:
    cfg = Thresholds(refractory_hours=6)
    _, out = fold([car_t(), temp(24, 39.0), infusion(25, "norepinephrine"), dose(26, "tocilizumab"),
                   dose(27, "dexamethasone"), temp(33.5, 39.1)], cfg)
    assert alerts_of(out, "refractory_crs")


# ---- ICANS and days


def test_icans_grade_and_clinician_attribution() -> None:
    s, out = fold([car_t(), ev("neuro", 30, ice_score=5), ev("neuro", 31, ice_score=2),
                   attribution(32, ["icans"], "sedation")])
    grades = [(r.previous, r.grade) for r in out if isinstance(r, IcansGradeChange)]
    assert grades == [(0, 2), (2, 3), (3, 0)]
    assert s.icans_grade == 0


def test_unable_to_perform_ice_after_an_earlier_score() -> None:
    s, _ = fold([car_t(), ev("neuro", 30, ice_score=8),
                 ev("neuro", 31, unable_to_perform_ice=True, consciousness="unarousable")])
    assert s.icans_grade == 4


def test_day_is_relative_to_the_car_t_infusion() -> None:
    _, out = fold([car_t(0), temp(24 * 13 + 2, 39.0)])
    assert [r.day for r in out if isinstance(r, CrsGradeChange)] == [13]


# ---- regressions found in review


def test_fever_masking_carries_into_a_new_episode_as_uncertain() -> None:
    # Tocilizumab in episode 1, resolution, then hypotension without fever two days later: the drug
    # still masks fever (within fever_masking_hours), so it grades, flagged uncertain with the dose.
    s, out = fold([car_t(), temp(24, 39.0), bp(25, 82), dose(26, "tocilizumab", event_id="toci-1"), bp(30, 115),
                   finding(31, "fever", present=False), bp(80, 84)])
    assert s.crs_grade == 2 and s.episode == 2
    last = [r for r in out if isinstance(r, CrsGradeChange)][-1]
    assert last.episode == 2 and last.uncertain and "toci-1" in last.uncertain[0]
    s, _ = fold([car_t(), temp(24, 39.0), bp(25, 82), dose(26, "tocilizumab"), bp(30, 115),
                 finding(31, "fever", present=False), bp(26 + 169, 84)])
    assert s.crs_grade == 0 and s.episode == 1  # beyond the 168 h masking window fever is required again


def test_fever_waiver_holds_within_the_treated_episode() -> None:
    s, _ = fold([car_t(), temp(24, 39.0), bp(25, 82), dose(26, "tocilizumab"), finding(27, "fever", present=False),
                 bp(40, 84)])
    assert s.crs_grade == 2


def test_findings_with_a_non_crs_reason_do_not_count() -> None:
    s, _ = fold([car_t(), finding(24, "fever", reason="sepsis"), finding(25, "hypotension", reason="sepsis")])
    assert s.crs_grade == 0 and s.findings["fever"].label == "documented fever (sepsis)"
    s, _ = fold([car_t(), temp(24, 39.0), infusion(25, "norepinephrine", reason="CRS shock")])
    assert s.crs_grade == 3


def test_inotrope_courses_have_their_own_ids() -> None:
    _, out = fold([car_t(), infusion(24, "milrinone", rate=0.5, unit="ug/kg/min"), infusion(30, "milrinone", "stop"),
                   infusion(40, "milrinone", rate=0.5, unit="ug/kg/min")])
    ids = [a.id for a in alerts_of(out, "inotrope")]
    assert ids == [f"{PID}:inotrope:1:milrinone", f"{PID}:inotrope:1:resolved", f"{PID}:inotrope:2:milrinone"]


def test_oxygen_attribution_sticks_to_the_same_device() -> None:
    s, _ = fold([car_t(), temp(24, 39.0), oxygen(25, "invasive_ventilation"),
                 attribution(30, ["oxygen"], "sedation"), oxygen(31, "invasive_ventilation", fio2_pct=40)])
    assert s.crs_grade == 1 and s.oxygen is not None and s.oxygen.reason == "sedation"
    s, _ = fold([car_t(), temp(24, 39.0), oxygen(25, "invasive_ventilation"),
                 attribution(30, ["oxygen"], "sedation"), oxygen(29, "cpap")])  # an older row, backfilled
    assert s.crs_grade == 1
    s, _ = fold([car_t(), temp(24, 39.0), oxygen(25, "invasive_ventilation"),
                 attribution(30, ["oxygen"], "sedation"), oxygen(31, "facemask")])  # a new device: counted
    assert s.crs_grade == 3


def test_two_censored_ferritins_are_not_a_rise() -> None:
    _, out = fold([car_t(), temp(24, 39.0), dose(25, "tocilizumab"), lab(30, "crp", 200, "mg/L"),
                   lab(30, "ferritin", 202000, "ng/mL", comparator=">"), lab(50, "crp", 80, "mg/L"),
                   lab(50, "ferritin", 202000, "ng/mL", comparator=">")])
    assert not alerts_of(out, "crp_ferritin_divergence")


def test_cytopenia_better_than_baseline_is_not_new_or_worsening() -> None:
    base = ev("context", 0.5, baselines=[{"analyte": "anc", "value": 0.4, "unit": "10*9/L"},
                                         {"analyte": "platelets", "value": 60, "unit": "10*9/L"}])
    # Day +20: after the expected post-lymphodepletion nadir (in-house cytopenia_nadir_days = 14).
    labs = [lab(486, "anc", 0.5, "10*9/L"), lab(486, "platelets", 70, "10*9/L"), lab(486, "ferritin", 900, "ng/mL")]
    s, _ = fold([car_t(), base, temp(480, 38.5), *labs])
    assert s.iec_hs_level == 1 and "cytopenias" not in " ".join(s.iec_hs_criteria)
    s, _ = fold([car_t(), temp(480, 38.5), *labs])  # no baseline: absolute HLH-2004 thresholds
    assert s.iec_hs_level == 2


def test_icans_follows_the_latest_assessment() -> None:
    s, _ = fold([car_t(), ev("neuro", 24, seizure="rapidly_resolving", ice_score=8), ev("neuro", 96, ice_score=10)])
    assert s.icans_grade == 0


def test_nee_terms_show_converted_doses() -> None:
    r = nee([RunningAgent(VasoactiveAgent.VASOPRESSIN, 2.4, "U/h"),
             RunningAgent(VasoactiveAgent.ANGIOTENSIN_II, 20, "ng/kg/min")], 70)
    assert r.terms == ("vasopressin 0.04 U/min x 2.5", "angiotensin_ii 0.02 ug/kg/min x 10")


# ---------------------------------------------------------------- oxygen readings without a device


def test_a_flow_reading_sets_the_flow_of_the_running_nasal_cannula() -> None:
    s = PatientState(PID)
    cfg = Thresholds()
    for e in [car_t(), temp(1, 38.5), oxygen(2, "nasal_cannula"), ev("oxygen", 3, flow_l_min=8.0)]:
        apply(s, e, cfg)
    assert s.oxygen is not None and s.oxygen.name == "nasal_cannula" and s.oxygen.flow_l_min == 8.0
    assert s.crs_grade == 3  # nasal cannula above 6 L/min is high-flow (contract, ASTCT)


def test_flow_and_device_of_the_same_time_combine_in_either_order() -> None:
    cfg = Thresholds()
    grades = []
    for order in ([oxygen(2, "nasal_cannula", event_id="m"), ev("oxygen", 2, flow_l_min=4.0, event_id="f")],
                  [ev("oxygen", 2, flow_l_min=4.0, event_id="f"), oxygen(2, "nasal_cannula", event_id="m")]):
        s = PatientState(PID)
        for e in [car_t(), temp(1, 38.5), *order]:
            apply(s, e, cfg)
        assert s.oxygen is not None and (s.oxygen.name, s.oxygen.flow_l_min) == ("nasal_cannula", 4.0)
        grades.append(s.crs_grade)
    assert grades == [2, 2]


def test_a_flow_without_any_device_is_unspecified_oxygen_and_fio2_alone_changes_nothing() -> None:
    cfg = Thresholds()
    s = PatientState(PID)
    for e in [car_t(), temp(1, 38.5), ev("oxygen", 2, fio2_pct=40.0)]:
        apply(s, e, cfg)
    assert s.oxygen is None and s.crs_grade == 1
    apply(s, ev("oxygen", 3, flow_l_min=0.0), cfg)
    assert s.oxygen is None
    apply(s, ev("oxygen", 4, flow_l_min=3.0), cfg)
    assert s.oxygen is not None and s.oxygen.name == "unspecified" and s.crs_grade == 2
