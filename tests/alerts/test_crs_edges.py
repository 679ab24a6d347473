"""Clinical edges of the CRS grade (issue 15 items 2, 3, 6, 7, 11): the fever waiver whatever the
charting order, fever masking after the episode, support for other causes, documented infection,
and evidence that never contradicts the chart. Each case runs through the event log (alerts.log),
which orders same-instant events by event_id, so permuting ids tests order independence."""

from __future__ import annotations

import itertools
import random

import pytest

from alerts.config import Thresholds
from alerts.log import new_log, step
from models.events import ClinicalEvent
from models.records import Alert, CrsGradeChange, IecHsChange, Record
from models.vocabulary import counts_for_crs
from tests.factories import PID, attribution, bp, car_t, dose, finding, infusion, lab, oxygen, run, temp

CFG = Thresholds()



def grades(records: list[Record]) -> list[CrsGradeChange]:
    return [r for r in records if isinstance(r, CrsGradeChange)]


def crs_pages(records: list[Record]) -> list[Alert]:
    return [r for r in records if isinstance(r, Alert) and r.kind == "crs" and r.status == "firing"]


def evidence(records: list[Record]) -> str:
    return "\n".join(e for r in records for e in r.evidence)


def grade_at_each_instant(events: list[ClinicalEvent]) -> list[tuple[str, int]]:
    """The grade after all events of each distinct instant (what must not depend on same-instant order)."""
    log = new_log(PID)
    out: list[tuple[str, int]] = []
    for t, group in itertools.groupby(events, key=lambda e: e.ts):
        for e in group:
            step(log, e, CFG)
        out.append((str(t), log.head.crs_grade))
    return out


# ---------------------------------------------------------------- item 2: charting order


@pytest.mark.parametrize("toci_id, fever_id", [("a-toci", "b-fever"), ("b-toci", "a-fever")])
def test_tocilizumab_at_the_minute_of_the_first_fever_arms_the_waiver_in_either_order(toci_id: str,
                                                                                      fever_id: str) -> None:
    events = [car_t(), dose(24, "tocilizumab", dose=8, unit="mg/kg", event_id=toci_id),
              temp(24, 39.0, event_id=fever_id), temp(30, 37.0), bp(50, 80)]  # fever lapsed at 48 h
    s, out = run(events)
    assert s.crs_grade == 2 and s.episode == 1
    last = grades(out)[-1]
    assert last.grade == 2 and not last.uncertain  # a firm waiver: the dose was given for this episode
    assert "no tocilizumab" not in evidence(out)
    assert any("fever not required after tocilizumab" in e for e in last.evidence)


def test_tocilizumab_minutes_before_the_first_fever_arms_the_waiver() -> None:
    s, out = run([car_t(), dose(23.9, "tocilizumab"), temp(24, 39.0), bp(50, 80)])
    assert s.crs_grade == 2 and not grades(out)[-1].uncertain


def test_a_dose_given_for_crs_arms_its_episode_even_hours_before_the_first_charted_fever() -> None:
    s, out = run([car_t(), dose(12, "tocilizumab", reason="CRS grade 1, persistent fever"), temp(24, 39.0),
                  bp(50, 80)])
    assert s.crs_grade == 2 and not grades(out)[-1].uncertain
    # The same dose without a reason, 12 h before (beyond masking_onset_window_hours): still masks, flagged.
    s, out = run([car_t(), dose(12, "tocilizumab"), temp(24, 39.0), bp(50, 80)])
    assert s.crs_grade == 2 and grades(out)[-1].uncertain
    # The window is configurable.
    s, out = run([car_t(), dose(12, "tocilizumab"), temp(24, 39.0), bp(50, 80)],
                 Thresholds(masking_onset_window_hours=12.0))
    assert s.crs_grade == 2 and not grades(out)[-1].uncertain


def test_grades_do_not_depend_on_event_id_spelling_or_same_instant_order() -> None:
    """Identical events, ids permuted among the same-instant ones: the same grade at every instant."""
    def scenario(ids: tuple[str, ...]) -> list[ClinicalEvent]:
        a, b, c, d = ids
        return [
            car_t(),
            dose(24, "tocilizumab", event_id=a), temp(24, 39.2, event_id=b), bp(24, 84, event_id=c),
            oxygen(24, "nasal_cannula", 3, event_id=d),
            temp(30, 37.1), oxygen(40, "room_air"),
            dose(52, "dexamethasone", dose=10, unit="mg", event_id=a + "2"), bp(52, 78, event_id=b + "2"),
            infusion(52, "norepinephrine", rate=0.05, unit="ug/kg/min", event_id=c + "2"),
            bp(60, 85),
        ]
    results = {tuple(grade_at_each_instant(scenario(p))) for p in itertools.permutations(("w", "x", "y", "z"))}
    assert len(results) == 1
    assert [g for _, g in next(iter(results))] == [0, 2, 2, 2, 3, 3]


@pytest.mark.parametrize("ids", [("a", "b", "c", "d"), ("d", "c", "b", "a")])
def test_refractory_clock_starts_with_doses_charted_at_the_onset_in_either_order(ids: tuple[str, ...]) -> None:
    a, b, c, d = ids
    events = [car_t(), dose(24, "tocilizumab", event_id=a), dose(24, "dexamethasone", dose=10, unit="mg",
                                                                   event_id=b),
              temp(24, 39.0, event_id=c), infusion(24, "norepinephrine", event_id=d), bp(49, 85)]
    s, out = run(events)
    assert s.crs_grade == 3
    assert [a.level for a in out if isinstance(a, Alert) and a.kind == "refractory_crs"] == ["1"]


# ---------------------------------------------------------------- item 3: masking outlives the episode


def test_bipap_days_after_tocilizumab_in_a_new_episode_grades_uncertain_with_the_dose() -> None:
    events = [car_t(), temp(24, 39.0), bp(25, 82), dose(26, "tocilizumab", event_id="toci-1"),
              bp(30, 118), finding(31, "fever", present=False),  # episode 1 resolves
              oxygen(24 * 4, "bipap")]  # Day +4, afebrile
    s, out = run(events)
    assert s.crs_grade == 4 and s.episode == 2
    g = grades(out)[-1]
    assert g.episode == 2 and g.grade == 4
    assert g.uncertain and "toci-1" in g.uncertain[0] and "mask fever" in g.uncertain[0]
    assert any("fever not required after tocilizumab" in e for e in g.evidence)


def test_steroid_masking_also_outlives_the_episode_and_ends_with_its_window() -> None:
    base = [car_t(), temp(24, 39.0), bp(25, 82), dose(26, "dexamethasone", dose=10, unit="mg"), bp(30, 118),
            finding(31, "fever", present=False)]
    s, out = run([*base, bp(26 + 100, 84)])
    assert s.crs_grade == 2 and grades(out)[-1].uncertain
    s, out = run([*base, bp(26 + 169, 84)])  # beyond fever_masking_hours (168 h)
    assert s.crs_grade == 0
    s, out = run([*base, bp(26 + 100, 84)], Thresholds(fever_masking_hours=72.0))
    assert s.crs_grade == 0


def test_a_dose_before_any_crs_waives_nothing_until_the_patient_has_had_crs() -> None:
    s, out = run([car_t(), dose(2, "tocilizumab"), bp(60, 82)])
    assert s.crs_grade == 0 and not grades(out)  # ASTCT's waiver is for a patient who has CRS
    # Once CRS has begun (fever), the earlier dose masks its later course: graded, flagged uncertain.
    s, _ = run([car_t(), dose(2, "tocilizumab"), temp(30, 39.0), bp(31, 82), bp(60, 82)])
    assert s.crs_grade == 2
    s, _ = run([car_t(), temp(30, 39.0), bp(31, 82), bp(60, 82)])
    assert s.crs_grade == 0  # without the dose the lapsed fever ends it


# ---------------------------------------------------------------- item 6: support for other causes


@pytest.mark.parametrize("device, reason", [
    ("cpap", "home CPAP for obstructive sleep apnoea"),
    ("cpap", "OSA"),
    ("bipap", "home BiPAP (sleep apnea)"),
    ("invasive_ventilation", "post-operative ventilation"),
    ("invasive_ventilation", "postoperative"),
    ("invasive_ventilation", "ventilated for neuromuscular paralysis"),
    ("invasive_ventilation", "procedure under general anaesthesia"),
])
def test_positive_pressure_for_another_cause_does_not_page_grade_4(device: str, reason: str) -> None:
    s, out = run([car_t(), temp(24, 39.0), oxygen(25, device, reason=reason)])
    assert s.crs_grade == 1
    assert not [a for a in crs_pages(out) if a.level == "4"]
    o2 = [a for a in out if isinstance(a, Alert) and a.kind == "oxygen_escalation"]
    assert [a.severity for a in o2] == ["info"] and "not counted toward CRS" in o2[0].summary  # recorded, no page
    s, out = run([car_t(), oxygen(23, device, reason=reason), temp(24, 39.0)])  # running before the fever
    assert s.crs_grade == 1 and f"{device} for {reason}: not counted toward CRS" in evidence(grades(out))


@pytest.mark.parametrize("reason", ["low cardiac output", "LV dysfunction", "left ventricular dysfunction",
                                    "cardiogenic shock", "heart failure"])
def test_a_pressor_for_pump_failure_is_not_counted(reason: str) -> None:
    s, _ = run([car_t(), temp(24, 39.0), infusion(25, "epinephrine", reason=reason)])
    assert s.crs_grade == 1


@pytest.mark.parametrize("reason", ["non-cardiogenic", "no OSA", "rule out sepsis", "not post-operative",
                                    "CRS, post-operative day 3", "hypotension", "CRS-related LV dysfunction?"])
def test_doubt_negation_or_crs_still_counts(reason: str) -> None:
    assert counts_for_crs(reason, CFG.non_crs_causes)


# ---------------------------------------------------------------- item 7: documented infection


def test_documented_bacteremia_then_septic_shock_does_not_page_crs() -> None:
    day35 = 24 * 35
    events = [car_t(), finding(day35, "infection", reason="E. coli bacteremia", event_id="bact"),
              infusion(day35 + 1, "norepinephrine", rate=0.1, unit="ug/kg/min", reason="septic shock"),
              bp(day35 + 1, 82), temp(day35 + 1.5, 39.1)]
    s, out = run(events)
    assert not crs_pages(out)  # no page
    text = evidence(grades(out))
    assert "hypotension without vasopressors" not in text  # norepinephrine runs
    assert "norepinephrine (for septic shock) runs" in text
    assert s.crs_grade <= 1
    assert all(g.uncertain and any("documented infection (E. coli bacteremia)" in u and "[bact]" in u
                                   for u in g.uncertain) for g in grades(out) if g.grade)


def test_infection_flag_ends_with_an_attribution_to_crs_or_an_absent_finding() -> None:
    d = 24 * 10
    base = [car_t(), finding(d, "infection", reason="line infection")]
    s, out = run([*base, temp(d + 2, 39.0)])
    assert s.crs_grade == 1 and not crs_pages(out) and grades(out)[-1].uncertain
    s, out = run([*base, attribution(d + 1, ["fever"], "CRS"), temp(d + 2, 39.0)])
    assert s.crs_grade == 1 and crs_pages(out) and not grades(out)[-1].uncertain
    s, out = run([*base, finding(d + 1, "infection", present=False), temp(d + 2, 39.0)])
    assert crs_pages(out)
    s, out = run([*base, temp(d + 2 + CFG.infection_window_hours, 39.0)])
    assert crs_pages(out)  # the documented infection is older than infection_window_hours


def test_infection_documented_during_established_crs_is_flagged_but_escalation_still_pages() -> None:
    s, out = run([car_t(), temp(24, 39.0), finding(25, "infection", reason="bacteremia"),
                  infusion(26, "norepinephrine")])
    assert s.crs_grade == 3
    assert [a.level for a in crs_pages(out)] == ["1", "3"]
    assert grades(out)[-1].uncertain


# ---------------------------------------------------------------- item 11: explanations match the chart


def test_vasopressin_is_not_listed_among_non_vasopressin_vasopressors() -> None:
    _, out = run([car_t(), temp(24, 39.0), infusion(25, "norepinephrine"), infusion(26, "vasopressin"),
                  infusion(27, "phenylephrine")])
    line = next(e for e in grades(out)[-1].evidence if e.startswith("hypotension axis 4"))
    head = line.split(";")[0]
    assert "vasopressin" not in head.replace("non-vasopressin", "")
    assert "also vasopressin, not counted toward 'multiple'" in line


def test_why_no_waiver_never_says_no_tocilizumab_when_one_is_charted() -> None:
    d = 24 * 10  # episode 2, more than fever_masking_hours after episode 1's tocilizumab
    _, out = run([car_t(), temp(24, 39.0), dose(25, "tocilizumab", event_id="toci-x"), temp(49, 37.0),
                  temp(d, 39.0), bp(d + 6, 80), temp(d + 25, 37.0)])
    drop = grades(out)[-1]
    assert drop.grade == 0 and drop.previous == 2  # afebrile, hypotensive, no waiver: ASTCT requires fever
    assert "no tocilizumab" not in evidence(out)
    assert any("tocilizumab at Day +1 11:00 [toci-x] more than 168 h ago" in e for e in drop.evidence)
    _, out = run([car_t(), temp(24, 39.0), bp(30, 80), temp(49, 37.0)])
    assert any("no tocilizumab/steroid charted" in e for e in grades(out)[-1].evidence)


def test_a_reason_set_on_a_running_infusion_is_shown_when_the_grade_does_not_change() -> None:
    _, out = run([car_t(), temp(24, 39.0), oxygen(25, "bipap"), infusion(26, "norepinephrine"),
                  infusion(27, "norepinephrine", action="rate_change", rate=0.1, unit="ug/kg/min",
                           reason="septic shock")])
    shown = [a for a in out if isinstance(a, Alert) and a.level.startswith("reason:norepinephrine")]
    assert len(shown) == 1 and "septic shock" in shown[0].summary and "not counted" in shown[0].summary
    _, out = run([car_t(), temp(24, 39.0), oxygen(25, "bipap"), infusion(26, "norepinephrine"),
                  attribution(27, ["vasopressors"], "sepsis")])
    assert [a for a in out if isinstance(a, Alert) and a.level.startswith("reason:norepinephrine")]


def test_an_excluded_oxygen_record_is_not_repeated_in_later_episodes() -> None:
    _, out = run([car_t(), temp(24, 39.0), oxygen(25, "unspecified"), attribution(48, ["all"], "CRS resolved"),
                  temp(24 * 13, 39.0), bp(24 * 13 + 1, 80)])
    later = [g for g in grades(out) if g.episode == 2]
    assert later and not any("unspecified" in e for g in later for e in g.evidence)
    resolution = next(g for g in grades(out) if g.episode == 1 and g.grade == 0)
    assert any("unspecified for CRS resolved" in e for e in resolution.evidence)


def test_no_iec_hs_record_that_changes_nothing() -> None:
    _, out = run([car_t(), lab(24, "ldh", 400, "U/L"), lab(30, "ldh", 420, "U/L")])
    assert not [r for r in out if isinstance(r, IecHsChange) and r.level == r.previous == 0]


@pytest.mark.parametrize("ne_id, judgement_id", [("a", "b"), ("b", "a")])
@pytest.mark.parametrize("arrival", ["infusion first", "attribution first"])
def test_an_attribution_covers_support_started_at_its_own_instant(ne_id: str, judgement_id: str,
                                                                  arrival: str) -> None:
    ne = infusion(25, "norepinephrine", event_id=ne_id)
    judgement = attribution(25, ["vasopressors"], "septic shock", event_id=judgement_id)
    pair = [ne, judgement] if arrival == "infusion first" else [judgement, ne]
    s, _ = run([car_t(), temp(24, 39.0), *pair, bp(26, 80)])
    assert s.infusions["norepinephrine"].attributed and s.crs_grade == 1


def test_a_severe_grade_pages_even_with_a_documented_infection() -> None:
    d = 24 * 8
    s, out = run([car_t(), finding(d, "infection", reason="pneumonia"), temp(d + 1, 39.0),
                  infusion(d + 2, "norepinephrine"), infusion(d + 3, "epinephrine")])
    assert s.crs_grade == 4
    assert [a.level for a in crs_pages(out)] == ["3", "4"]  # grade 1 recorded, not paged; 3 and 4 page
    assert all(g.uncertain for g in grades(out))
    s, out = run([car_t(), finding(d, "infection", reason="pneumonia"), temp(d + 1, 39.0),
                  infusion(d + 2, "norepinephrine")], Thresholds(infection_unpaged_max_grade=3))
    assert s.crs_grade == 3 and not crs_pages(out)


def test_every_grade_record_says_why_even_the_resolution() -> None:
    _, out = run([car_t(), temp(24, 39.0), infusion(25, "norepinephrine"), infusion(40, "norepinephrine", "stop"),
                  finding(40, "fever", present=False)])
    assert grades(out)[-1].grade == 0 and all(g.evidence for g in grades(out))


def test_a_tocilizumab_dose_charted_hours_late_still_arms_its_episode() -> None:
    # The dose at 24 h arrives after events up to 31 h: beyond the 240 min lateness window, so it is
    # folded at its arrival position (late), yet its event time decides the waiver.
    s, out = run([car_t(), temp(24, 39.0), bp(30, 118), temp(31, 37.2), dose(24, "tocilizumab"), bp(50, 80)])
    assert s.crs_grade == 2 and not grades(out)[-1].uncertain


def test_a_febrile_new_episode_after_tocilizumab_is_not_flagged() -> None:
    s, out = run([car_t(), temp(24, 39.0), dose(25, "tocilizumab"), finding(31, "fever", present=False),
                  temp(24 * 4, 39.0), bp(24 * 4 + 1, 82)])
    assert s.crs_grade == 2 and s.episode == 2
    assert not any(g.uncertain for g in grades(out) if g.episode == 2)  # fever present: no waiver needed


def test_epinephrine_continued_for_low_cardiac_output_drops_the_grade() -> None:
    s, out = run([car_t(), temp(24, 39.0), infusion(25, "epinephrine", rate=0.05, unit="ug/kg/min"),
                  dose(26, "tocilizumab"), temp(30, 37.0),
                  infusion(60, "epinephrine", action="rate_change", rate=0.03, unit="ug/kg/min",
                           reason="low cardiac output / LV dysfunction")])
    assert s.crs_grade == 0
    assert "epinephrine running for low cardiac output / LV dysfunction: not counted" in evidence(grades(out))


@pytest.mark.parametrize("ids", [("a", "b"), ("b", "a")])
def test_an_infection_documented_at_the_instant_of_the_fever_flags_it_whatever_the_ids(ids: tuple[str, str]) -> None:
    d = 24 * 9
    s, out = run([car_t(), finding(d, "infection", reason="bacteremia", event_id=ids[0]),
                  temp(d, 39.0, event_id=ids[1])])
    assert s.crs_grade == 1 and not crs_pages(out) and grades(out)[-1].uncertain


@pytest.mark.parametrize("ids", [("a", "b"), ("b", "a")])
def test_two_blood_pressures_of_the_same_instant_grade_the_same_whatever_the_ids(ids: tuple[str, str]) -> None:
    s, _ = run([car_t(), temp(24, 39.0), bp(25, 84, event_id=ids[0]), bp(25, 118, event_id=ids[1])])
    assert s.crs_grade == 2  # the hypotensive reading of the instant counts (the worse one)
    s, _ = run([car_t(), temp(24, 39.0), bp(25, 84), bp(26, 118)])
    assert s.crs_grade == 1  # a later normal reading still ends it


@pytest.mark.parametrize("ids", [("a", "b"), ("b", "a")])
@pytest.mark.parametrize("other", ["room_air", "nasal_cannula"])
def test_two_oxygen_devices_of_the_same_instant_grade_the_same_whatever_the_ids(ids: tuple[str, str],
                                                                                 other: str) -> None:
    second = oxygen(25, other, 2 if other == "nasal_cannula" else None, event_id=ids[1])
    s, _ = run([car_t(), temp(24, 39.0), oxygen(25, "bipap", event_id=ids[0]), second])
    assert s.crs_grade == 4
    s, _ = run([car_t(), temp(24, 39.0), oxygen(25, "bipap"), oxygen(26, other)])
    assert s.crs_grade < 4  # a later row still steps down


@pytest.mark.parametrize("ids", [("a", "b"), ("b", "a")])
def test_a_stop_and_a_start_of_one_agent_at_one_instant_leave_it_running(ids: tuple[str, str]) -> None:
    s, _ = run([car_t(), temp(24, 39.0), infusion(25, "norepinephrine"),
                infusion(30, "norepinephrine", "stop", event_id=ids[0]),
                infusion(30, "norepinephrine", event_id=ids[1], rate=0.1, unit="ug/kg/min")])
    assert "norepinephrine" in s.infusions and s.crs_grade == 3


# ---- order independence, generated: random same-instant bundles, event ids permuted

_KINDS = ("temp", "bp", "toci", "dex", "ne", "ne_stop", "epi", "o2", "afebrile", "infection", "attribution")


def _event(kind: str, hours: float, event_id: str, rng: random.Random) -> ClinicalEvent:
    if kind == "temp":
        return temp(hours, rng.choice([37.0, 38.5, 39.5]), event_id=event_id)
    if kind == "bp":
        return bp(hours, rng.choice([80, 120]), event_id=event_id)
    if kind == "toci":
        return dose(hours, "tocilizumab", event_id=event_id)
    if kind == "dex":
        return dose(hours, "dexamethasone", dose=10, unit="mg", event_id=event_id)
    if kind == "ne":
        return infusion(hours, "norepinephrine", event_id=event_id)
    if kind == "ne_stop":
        return infusion(hours, "norepinephrine", "stop", event_id=event_id)
    if kind == "epi":
        return infusion(hours, "epinephrine", event_id=event_id, reason=rng.choice([None, "septic shock"]))
    if kind == "o2":
        return oxygen(hours, rng.choice(["nasal_cannula", "bipap", "room_air", "facemask"]), event_id=event_id)
    if kind == "afebrile":
        return finding(hours, "fever", present=False, event_id=event_id)
    if kind == "infection":
        return finding(hours, "infection", reason="bacteremia", event_id=event_id)
    return attribution(hours, rng.choice([["vasopressors"], ["oxygen"], ["all"], ["fever"]]),
                       rng.choice(["sepsis", "CRS"]), event_id=event_id)


@pytest.mark.parametrize("seed", range(40))
def test_generated_courses_grade_the_same_whatever_the_ids(seed: int) -> None:
    rng = random.Random(seed)
    spec = [(t, k, rng.random()) for t in sorted(rng.sample(range(20, 200, 3), 6))
            for k in rng.sample(_KINDS, rng.randint(1, 3))]
    ids = [f"i{j:02d}" for j in range(len(spec))]
    trajectories = set()
    for trial in range(4):
        perm = ids[:]
        random.Random(seed * 100 + trial).shuffle(perm)
        events = [car_t(event_id="cart"), *(_event(k, t, i, random.Random(sub)) for (t, k, sub), i in zip(spec, perm,
                                                                                                      strict=True))]
        trajectories.add(tuple(grade_at_each_instant(events)))
    assert len(trajectories) == 1, spec


def test_bipap_after_a_clinicians_crs_resolved_judgement_still_grades_within_the_masking_window() -> None:
    s, out = run([car_t(), temp(24, 39.0), oxygen(25, "nasal_cannula", 3), dose(26, "tocilizumab", event_id="t1"),
                  oxygen(40, "room_air"), attribution(48, ["all"], "CRS resolved"), oxygen(24 * 4, "bipap")])
    g = grades(out)[-1]
    assert s.crs_grade == 4 and g.episode == 2 and g.uncertain and "[t1]" in g.uncertain[0]


def test_a_bare_mention_of_cardiac_output_is_not_a_cause() -> None:
    # "to support cardiac output" may be CRS shock treatment itself; only low output / pump failure excludes
    assert counts_for_crs("to support cardiac output", CFG.non_crs_causes)
    assert not counts_for_crs("low cardiac output", CFG.non_crs_causes)
