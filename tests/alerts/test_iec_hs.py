"""IEC-HS suspicion levels of `alerts.iec_hs.assess()`: every row of the level table, its boundaries and labels.

The levels are the in-house scale built on the Hines et al. 2023 IEC-HS criteria, which could not be verified [U]
(docs/clinical-rules.md). F = the ferritin criterion (> 2x baseline, else > 2x ULN, or the in-house rapid rise);
majors = hypofibrinogenemia, cytopenias in >= 2 lineages, transaminitis, hemophagocytosis; others = LDH > ULN,
triglycerides > 265 mg/dL, splenomegaly.

    level 3: F and (>= 2 majors or hemophagocytosis)
    level 2: F and >= 1 major; or F and >= 1 other while CRS is not active (in-house:
             iec_hs_other_features_during_crs, CRS itself raises ferritin and LDH)
    level 1: F alone (or with only other features during active CRS), or >= 2 majors without F
    level 0: anything else (the evidence then says what the watch level needs)
"""

from __future__ import annotations

import pytest

from alerts.config import DEFAULT_THRESHOLDS as CFG
from alerts.iec_hs import IecHsAssessment, IecHsInputs, TimedValue, assess, ferritin_rise
from models.labvalue import LabValue

H = 3600.0


def tv(value: float, comparator: str | None = None, ts: float = 100 * H, name: str = "lab") -> TimedValue:
    text = f"{name} {comparator or ''}{value:g}"
    return TimedValue(LabValue(value, comparator), ts, lambda: text)


def run(**kw: object) -> IecHsAssessment:
    return assess(IecHsInputs(**kw), CFG)  # type: ignore[arg-type]


# Inputs that meet exactly one criterion each (defaults: ferritin ULN 400, fibrinogen 150, ALT/AST ULN 40,
# transaminitis 5x, LDH ULN 250, triglycerides 265, Hb 9.0 g/dL, platelets 100, ANC 1.0).
F = {"ferritin": tv(5000, name="ferritin")}  # > 2x ULN 400, no baseline
FIB = {"fibrinogen": tv(100, name="fibrinogen")}
CYTO = {"platelets": tv(40, name="platelets"), "anc": tv(0.3, name="anc")}
ALT = {"alt": tv(450, name="ALT")}
HEMO = {"documented": (("hemophagocytosis", "hemophagocytosis on marrow [e1]"),)}
LDH = {"ldh": tv(900, name="LDH")}
TG = {"triglycerides": tv(318, name="triglycerides")}
SPLEEN = {"documented": (("splenomegaly", "splenomegaly on exam [e2]"),)}


def test_the_scale_and_the_defaults_it_is_tested_against() -> None:
    assert (CFG.ferritin_uln_ng_ml, CFG.ferritin_fold_over_reference) == (400.0, 2.0)
    assert (CFG.ferritin_rise_ratio, CFG.ferritin_rise_window_hours) == (1.5, 48.0)
    assert (CFG.fibrinogen_low_mg_dl, CFG.transaminase_fold_uln, CFG.alt_uln_u_l, CFG.ast_uln_u_l) == (
        150.0, 5.0, 40.0, 40.0)
    assert (CFG.ldh_uln_u_l, CFG.triglycerides_high_mg_dl) == (250.0, 265.0)
    assert (CFG.hemoglobin_low_g_dl, CFG.platelets_low_10e9_l, CFG.anc_low_10e9_l) == (9.0, 100.0, 1.0)


def test_nothing_known_is_level_0_labelled_none() -> None:
    a = run(crs_active=True)
    assert (a.level, a.label, a.evidence, a.criteria) == (0, "none", (), ())


# ---- level table -------------------------------------------------------------------------------

@pytest.mark.parametrize(("inputs", "level", "criteria"), [
    # level 1: F alone
    (F, 1, ("ferritin",)),
    # level 1: >= 2 majors without F
    ({**FIB, **ALT}, 1, ("hypofibrinogenemia", "transaminitis")),
    ({**FIB, **HEMO}, 1, ("hemophagocytosis", "hypofibrinogenemia")),
    # level 0: one major, or only other features, without F
    (FIB, 0, ("hypofibrinogenemia",)),
    (HEMO, 0, ("hemophagocytosis",)),
    ({**LDH, **TG, **SPLEEN}, 0, ("LDH", "splenomegaly", "triglycerides")),
    # level 2: F with one major; F with only other features stays at watch during active CRS
    ({**F, **FIB}, 2, ("ferritin", "hypofibrinogenemia")),
    ({**F, **ALT}, 2, ("ferritin", "transaminitis")),
    ({**F, **LDH}, 1, ("LDH", "ferritin")),
    ({**F, **TG}, 1, ("ferritin", "triglycerides")),
    ({**F, **SPLEEN}, 1, ("ferritin", "splenomegaly")),
    ({**F, **LDH, **TG, **SPLEEN}, 1, ("LDH", "ferritin", "splenomegaly", "triglycerides")),
    # level 3: F with >= 2 majors, or F with hemophagocytosis alone
    ({**F, **FIB, **ALT}, 3, ("ferritin", "hypofibrinogenemia", "transaminitis")),
    ({**F, **HEMO}, 3, ("ferritin", "hemophagocytosis")),
    # Lab cytopenias are listed as "new", the first word of "new or worsening cytopenias ...": a naming
    # quirk of assess() (documented pancytopenia is "pancytopenia"), asserted as it is, not endorsed.
    ({**F, **FIB, **CYTO, **ALT, **HEMO, **LDH}, 3,
     ("LDH", "ferritin", "hemophagocytosis", "hypofibrinogenemia", "new", "transaminitis")),
])
def test_level_table(inputs: dict[str, object], level: int, criteria: tuple[str, ...]) -> None:
    a = run(crs_active=True, **inputs)
    assert a.level == level
    # The criteria are what is met, whatever the level (a criterion's name is the first word of its evidence).
    assert a.criteria == criteria
    # one line per criterion, and one that says why the level is not higher when criteria are listed below it
    others_only = level == 1 and "ferritin" in criteria and len(criteria) > 1 and not set(criteria) & MAJORS
    explained = (level == 0 and bool(criteria)) or others_only
    assert len(a.evidence) == len(criteria) + explained
    assert a.label == ("HLH-like features during active CRS" if level else "none")


MAJORS = {"hypofibrinogenemia", "transaminitis", "hemophagocytosis", "new", "pancytopenia"}


@pytest.mark.parametrize("inputs", [LDH, TG, SPLEEN, {**LDH, **TG, **SPLEEN}])
def test_other_features_lift_the_ferritin_criterion_to_suspected_only_without_active_crs(
        inputs: dict[str, object]) -> None:
    assert run(crs_active=True, **F, **inputs).level == 1
    a = run(crs_active=False, **F, **inputs)
    assert a.level == 2 and a.label != "HLH-like features during active CRS"


def test_evidence_lists_ferritin_first_then_majors_then_others_and_marks_the_unverified_criteria() -> None:
    a = run(crs_active=True, **F, **FIB, **LDH)
    assert a.evidence == (
        "ferritin > 2x ULN 400 (in-house default): ferritin 5000 [U]",
        "hypofibrinogenemia < 150 mg/dL: fibrinogen 100 [U]",
        "LDH > ULN 250 (in-house default): LDH 900 [U]",
    )


# ---- ferritin criterion F ------------------------------------------------------------------------

@pytest.mark.parametrize(("ferritin", "met"), [(800.0, False), (800.5, True)])
def test_ferritin_over_2x_uln_without_a_baseline_is_strict(ferritin: float, met: bool) -> None:
    a = run(ferritin=tv(ferritin, name="ferritin"))
    assert (a.level, a.criteria) == ((1, ("ferritin",)) if met else (0, ()))


@pytest.mark.parametrize(("ferritin", "met"), [(974.0, False), (975.0, True)])
def test_ferritin_over_2x_baseline(ferritin: float, met: bool) -> None:
    a = run(ferritin=tv(ferritin, name="ferritin"), ferritin_baseline=LabValue(487.0))
    assert a.level == (1 if met else 0)
    if met:
        assert a.evidence == (f"ferritin > 2x baseline 487: ferritin {ferritin:g} [U]",)


def test_a_known_baseline_replaces_the_uln() -> None:
    # 1,500 is > 2x ULN 400 but not > 2x a baseline of 1,000: the baseline decides.
    a = run(ferritin=tv(1500, name="ferritin"), ferritin_baseline=LabValue(1000.0))
    assert a.level == 0


@pytest.mark.parametrize(("comparator", "value", "met"), [
    (">", 4000.0, True),  # certainly above 800
    (">", 700.0, False),  # could be 701 or 70,000: unknown is not met
    ("<", 5000.0, False),  # could be anything below 5,000
])
def test_censored_ferritin_counts_only_when_it_settles_the_comparison(comparator: str, value: float,
                                                                     met: bool) -> None:
    a = run(ferritin=tv(value, comparator, name="ferritin"))
    assert a.level == (1 if met else 0)


def test_rapid_rise_alone_meets_f_below_the_fold_limits() -> None:
    prev, cur = tv(300, ts=0, name="ferritin"), tv(450, ts=24 * H, name="ferritin")  # 450 < 2x ULN
    a = run(ferritin=cur, ferritin_previous=prev, crs_active=True)
    assert (a.level, a.criteria) == (1, ("ferritin",))
    assert a.evidence == ("ferritin rose 1.50x in 24 h (ferritin 300 -> ferritin 450); IN-HOUSE rule: >= 1.5x "
                          "the lowest value of the previous 48 h, newest above 400 ng/mL (1x ULN 400, in-house) [U]",)


@pytest.mark.parametrize(("prev", "cur", "rises"), [
    (tv(300, ts=0), tv(450, ts=48 * H), True),  # ratio and window both on the boundary
    (tv(300, ts=0), tv(449, ts=24 * H), False),  # ratio 1.497
    (tv(300, ts=0), tv(900, ts=48 * H + 1), False),  # outside the window
    (tv(300, ts=24 * H), tv(900, ts=24 * H), False),  # same time: no rate
    (tv(900, ts=24 * H), tv(300, ts=0), False),  # the "previous" is newer
    (tv(300, ">", ts=0), tv(900, ts=24 * H), False),  # previous only a lower bound: ratio unknown
    (tv(300, ts=0), tv(900, "<", ts=24 * H), False),  # current only an upper bound
    (tv(300, ts=0), tv(900, ">", ts=24 * H), True),  # current a lower bound: the rise is at least 3x
    (tv(0, ts=0), tv(900, ts=24 * H), False),  # no ratio from zero
])
def test_rapid_rise_rule(prev: TimedValue, cur: TimedValue, rises: bool) -> None:
    assert (ferritin_rise(prev, cur, CFG) is not None) == rises


def test_a_censored_rise_says_at_least() -> None:
    text = ferritin_rise(tv(300, ts=0), tv(900, ">", ts=24 * H), CFG)
    assert text is not None and "rose >=3.00x" in text


def test_rapid_rise_and_fold_limit_give_two_evidence_lines_and_one_criterion() -> None:
    a = run(ferritin=tv(2000, ts=24 * H, name="ferritin"), ferritin_previous=tv(1000, ts=0, name="ferritin"))
    assert a.level == 1 and a.criteria == ("ferritin",)
    assert len(a.evidence) == 2 and a.evidence[1].startswith("ferritin rose 2.00x in 24 h")


# ---- major features --------------------------------------------------------------------------------

@pytest.mark.parametrize(("fibrinogen", "met"), [(150.0, False), (149.9, True)])
def test_hypofibrinogenemia_is_below_150_strictly(fibrinogen: float, met: bool) -> None:
    a = run(**F, fibrinogen=tv(fibrinogen, name="fibrinogen"))
    assert a.level == (2 if met else 1)


def test_censored_fibrinogen_below_50_is_met() -> None:
    assert run(**F, fibrinogen=tv(50, "<", name="fibrinogen")).level == 2


def test_documented_hypofibrinogenemia_without_a_value_is_a_major() -> None:
    a = run(**F, documented=(("hypofibrinogenemia", "profound hypofibrinogenemia [m22-030]"),))
    assert (a.level, a.criteria) == (2, ("ferritin", "hypofibrinogenemia"))
    assert a.evidence[1] == "hypofibrinogenemia documented without a value: profound hypofibrinogenemia [m22-030]"


@pytest.mark.parametrize(("counts", "met"), [
    ({"hemoglobin": tv(8.9), "platelets": tv(99)}, True),
    ({"platelets": tv(99), "anc": tv(0.99)}, True),
    ({"hemoglobin": tv(8.9), "anc": tv(0.5)}, True),
    ({"hemoglobin": tv(9.0), "platelets": tv(99)}, False),  # Hb 9.0 is not < 9.0: one lineage
    ({"platelets": tv(100), "anc": tv(0.5)}, False),  # platelets 100 is not < 100
    ({"anc": tv(1.0), "hemoglobin": tv(8.0)}, False),  # ANC 1.0 is not < 1.0
    ({"platelets": tv(20)}, False),  # one lineage only
])
def test_cytopenias_need_two_lineages_below_the_hlh_2004_thresholds(counts: dict[str, TimedValue],
                                                                    met: bool) -> None:
    a = run(**F, **counts)
    assert a.level == (2 if met else 1)
    assert any("cytopenias" in e for e in a.evidence) == met


def test_a_count_not_below_its_baseline_is_not_new_or_worsening() -> None:
    counts = {"platelets": tv(70), "anc": tv(0.5)}
    worse = run(**F, **counts, count_baselines=(("platelets", LabValue(80.0)), ("anc", LabValue(0.6))))
    assert worse.level == 2
    assert "(baseline 80)" in worse.evidence[1] and "(baseline 0.6)" in worse.evidence[1]
    better = run(**F, **counts, count_baselines=(("anc", LabValue(0.4)),))  # ANC 0.5 is above baseline 0.4
    assert better.level == 1


def test_documented_pancytopenia_stands_in_for_the_counts_only_when_they_do_not_meet_it() -> None:
    doc = (("pancytopenia", "pancytopenic, transfusion dependent [r25-056]"),)
    a = run(**F, documented=doc)
    assert (a.level, a.criteria) == (2, ("ferritin", "pancytopenia"))
    both = run(**F, **CYTO, documented=doc)
    assert len(both.evidence) == 2 and "cytopenias in 2 lineages" in both.evidence[1]


@pytest.mark.parametrize(("field", "value", "met"), [
    ("alt", 200.0, False), ("alt", 201.0, True), ("ast", 200.0, False), ("ast", 201.0, True),
])
def test_transaminitis_is_over_5x_uln(field: str, value: float, met: bool) -> None:
    a = run(**F, **{field: tv(value, name=field.upper())})
    assert a.level == (2 if met else 1)
    if met:
        assert a.evidence[1] == f"transaminitis: {field.upper()} > 5x ULN 40: {field.upper()} {value:g} [U]"


def test_alt_and_ast_together_are_one_major() -> None:
    a = run(**F, alt=tv(450, name="ALT"), ast=tv(600, name="AST"))
    assert (a.level, a.criteria) == (2, ("ferritin", "transaminitis"))


# ---- other features ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "limit"), [("ldh", 250.0), ("triglycerides", 265.0)])
def test_other_features_are_strictly_above_their_limit(field: str, limit: float) -> None:
    assert run(**F, **{field: tv(limit)}).level == 1
    assert run(**F, **{field: tv(limit + 1)}).level == 2


def test_other_features_never_raise_above_level_2() -> None:
    assert run(**F, **LDH, **TG, **SPLEEN).level == 2


# ---- timing labels ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("active", "seen", "label"), [
    (True, True, "HLH-like features during active CRS"),
    (True, False, "HLH-like features during active CRS"),
    (False, True, "IEC-HS after CRS resolution"),
    (False, False, "HLH-like features without CRS"),
])
def test_timing_label(active: bool, seen: bool, label: str) -> None:
    a = run(**F, **FIB, crs_active=active, crs_seen=seen)
    assert (a.level, a.label) == (2, label)
    assert run(crs_active=active, crs_seen=seen).label == "none"
