"""HScore (Fardet 2014 [V2]) and HLH-2004 (Henter 2007 [V2]) on partial, censored data."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from alerts.hlh_scores import (
    HLH2004_ITEMS,
    HSCORE_ITEMS,
    HSCORE_MAX,
    HlhInputs,
    HScoreResult,
    ScoreItem,
    hlh2004,
    hscore,
)
from models.labvalue import LabValue


def lv(text: str) -> LabValue:
    """'>4000' -> LabValue(4000, '>')."""
    for op in ("<=", ">=", "<", ">"):
        if text.startswith(op):
            return LabValue(float(text[len(op) :]), op)
    return LabValue(float(text))


def only(field: str, value: Any) -> HlhInputs:
    """HlhInputs with one field set."""
    kwargs: dict[str, Any] = {field: value}
    return HlhInputs(**kwargs)


def item(items: tuple[ScoreItem, ...], name: str) -> ScoreItem:
    return next(i for i in items if i.name == name)


def hs_item(x: HlhInputs, name: str) -> ScoreItem:
    return item(hscore(x).items, name)


def hlh_item(x: HlhInputs, name: str) -> ScoreItem:
    return item(hlh2004(x).items, name)


# Every HScore item known and maximal, and every item known and zero.
ALL_MAX = HlhInputs(
    max_temperature_c=40.0,
    immunosuppression=True,
    spleen_enlarged=True,
    liver_enlarged=True,
    hemoglobin_g_dl=lv("7"),
    wbc_10e9_l=lv("1"),
    platelets_10e9_l=lv("20"),
    ferritin_ng_ml=lv("9000"),
    triglycerides_mg_dl=lv("400"),
    fibrinogen_mg_dl=lv("100"),
    ast_u_l=lv("80"),
    hemophagocytosis=True,
)
ALL_ZERO = HlhInputs(
    max_temperature_c=37.0,
    immunosuppression=False,
    spleen_enlarged=False,
    liver_enlarged=False,
    hemoglobin_g_dl=lv("14"),
    wbc_10e9_l=lv("7"),
    platelets_10e9_l=lv("250"),
    ferritin_ng_ml=lv("300"),
    triglycerides_mg_dl=lv("100"),
    fibrinogen_mg_dl=lv("350"),
    ast_u_l=lv("20"),
    hemophagocytosis=False,
)

# Ruemmele 2025, Day +22 to +24 (case 000).
CASE_000 = HlhInputs(
    fever_documented_without_value=True,
    documented_cytopenia_lineages=3,  # "pancytopenic and transfusion dependent"
    ferritin_ng_ml=lv("9580"),
    triglycerides_mg_dl=lv("318"),
    fibrinogen_mg_dl=lv("<50"),
    sil2r=lv("93326"),
    sil2r_unit="pg/mL",
)
# McNerney 2022, Days +8 to +9 (case 004).
CASE_004 = HlhInputs(
    max_temperature_c=40.3,
    spleen_enlarged=True,
    documented_cytopenia_lineages=3,
    ferritin_ng_ml=lv(">202000"),
)


# ---------------------------------------------------------------------------------------------
# HScore: totals, structure


def test_hscore_all_items_maximal_is_337() -> None:
    result = hscore(ALL_MAX)
    assert result.known_points == HSCORE_MAX == 337
    assert result.max_possible == 337
    assert result.missing == ()
    assert result.verdict == "above_cutoff"
    assert tuple(i.name for i in result.items) == HSCORE_ITEMS
    assert sum(i.max_points for i in result.items) == 337
    assert all(i.status == "met" and i.points == i.max_points for i in result.items)


def test_hscore_all_items_zero() -> None:
    result = hscore(ALL_ZERO)
    assert result.known_points == 0
    assert result.max_possible == 0
    assert result.verdict == "below_cutoff"
    # "met" means known for HScore, even at 0 points.
    assert all(i.status == "met" and i.points == 0 for i in result.items)


def test_hscore_nothing_reported() -> None:
    result = hscore(HlhInputs())
    assert result.known_points == 0
    assert result.max_possible == 337
    assert result.min_possible == 0
    assert result.missing == HSCORE_ITEMS
    assert result.verdict == "indeterminate"
    assert all(i.points is None and i.detail == "not reported" for i in result.items)


# ---------------------------------------------------------------------------------------------
# HScore: band edges of every item


@pytest.mark.parametrize(
    ("temperature", "points"),
    [(37.0, 0), (38.3, 0), (38.39, 0), (38.4, 33), (39.0, 33), (39.4, 33), (39.41, 49), (40.3, 49)],
)
def test_hscore_temperature_bands(temperature: float, points: int) -> None:
    it = hs_item(HlhInputs(max_temperature_c=temperature), "temperature")
    assert (it.status, it.points, it.max_points) == ("met", points, 49)


def test_hscore_fever_without_value_is_unknown() -> None:
    it = hs_item(HlhInputs(fever_documented_without_value=True), "temperature")
    assert it.status == "unknown"
    assert it.points is None
    assert "without a value" in it.detail
    assert it.possible_points == (0, 33, 49)


def test_hscore_temperature_value_wins_over_documented_fever() -> None:
    it = hs_item(HlhInputs(max_temperature_c=39.0, fever_documented_without_value=True), "temperature")
    assert (it.status, it.points) == ("met", 33)


@pytest.mark.parametrize(
    ("value", "points"),
    [("1999", 0), ("1999.9", 0), ("2000", 35), ("4460", 35), ("6000", 35), ("6000.1", 50), ("9580", 50)],
)
def test_hscore_ferritin_bands(value: str, points: int) -> None:
    it = hs_item(HlhInputs(ferritin_ng_ml=lv(value)), "ferritin")
    assert (it.status, it.points, it.max_points) == ("met", points, 50)


@pytest.mark.parametrize(
    ("value", "points"),
    [("132.6", 0), ("132.7", 44), ("318", 44), ("354", 44), ("354.1", 64)],
)
def test_hscore_triglyceride_bands(value: str, points: int) -> None:
    it = hs_item(HlhInputs(triglycerides_mg_dl=lv(value)), "triglycerides")
    assert (it.status, it.points, it.max_points) == ("met", points, 64)


@pytest.mark.parametrize(
    ("value", "points"),
    [("251", 0), ("250.1", 0), ("250", 30), ("249.9", 30), ("40", 30)],
)
def test_hscore_fibrinogen_bands(value: str, points: int) -> None:
    it = hs_item(HlhInputs(fibrinogen_mg_dl=lv(value)), "fibrinogen")
    assert (it.status, it.points, it.max_points) == ("met", points, 30)


@pytest.mark.parametrize(("value", "points"), [("29.9", 0), ("30", 19), ("31", 19)])
def test_hscore_ast_bands(value: str, points: int) -> None:
    it = hs_item(HlhInputs(ast_u_l=lv(value)), "ast")
    assert (it.status, it.points, it.max_points) == ("met", points, 19)


@pytest.mark.parametrize(
    ("field", "name", "value", "points", "max_points"),
    [
        ("immunosuppression", "immunosuppression", True, 18, 18),
        ("immunosuppression", "immunosuppression", False, 0, 18),
        ("hemophagocytosis", "hemophagocytosis", True, 35, 35),
        ("hemophagocytosis", "hemophagocytosis", False, 0, 35),
    ],
)
def test_hscore_yes_no_items(field: str, name: str, value: bool, points: int, max_points: int) -> None:
    it = hs_item(only(field, value), name)
    assert (it.status, it.points, it.max_points) == ("met", points, max_points)


@pytest.mark.parametrize(
    ("liver", "spleen", "status", "points", "possible"),
    [
        (False, False, "met", 0, (0,)),
        (True, False, "met", 23, (23,)),
        (False, True, "met", 23, (23,)),
        (True, True, "met", 38, (38,)),
        (True, None, "unknown", None, (23, 38)),
        (None, True, "unknown", None, (23, 38)),
        (False, None, "unknown", None, (0, 23)),
        (None, False, "unknown", None, (0, 23)),
        (None, None, "unknown", None, (0, 23, 38)),
    ],
)
def test_hscore_organomegaly(
    liver: bool | None, spleen: bool | None, status: str, points: int | None, possible: tuple[int, ...]
) -> None:
    it = hs_item(HlhInputs(liver_enlarged=liver, spleen_enlarged=spleen), "organomegaly")
    assert (it.status, it.points, it.possible_points, it.max_points) == (status, points, possible, 38)
    if possible == (23, 38):
        assert ">=23" in it.detail


@pytest.mark.parametrize(
    ("hb", "wbc", "plt", "points"),
    [
        # Thresholds: Hb <=9.2 g/dL, WBC <=5, platelets <=110 (x10^9/L).
        ("9.3", "5.1", "111", 0),  # 0 lineages
        ("9.2", "5.1", "111", 0),  # 1 lineage = 0 points
        ("9.3", "5", "111", 0),
        ("9.3", "5.1", "110", 0),
        ("9.2", "5", "111", 24),  # 2 lineages
        ("9.2", "5.1", "110", 24),
        ("9.3", "5", "110", 24),
        ("9.2", "5", "110", 34),  # 3 lineages
        ("<7", "<0.1", "<20", 34),
    ],
)
def test_hscore_cytopenia_lineages_from_labs(hb: str, wbc: str, plt: str, points: int) -> None:
    x = HlhInputs(hemoglobin_g_dl=lv(hb), wbc_10e9_l=lv(wbc), platelets_10e9_l=lv(plt))
    it = hs_item(x, "cytopenias")
    assert (it.status, it.points, it.max_points) == ("met", points, 34)


@pytest.mark.parametrize(("lineages", "points"), [(0, 0), (1, 0), (2, 24), (3, 34)])
def test_hscore_documented_cytopenia_lineages(lineages: int, points: int) -> None:
    it = hs_item(HlhInputs(documented_cytopenia_lineages=lineages), "cytopenias")
    assert (it.status, it.points) == ("met", points)
    assert "documented" in it.detail


def test_hscore_cytopenias_partial_labs() -> None:
    # Two lineages low, WBC not reported: 24 or 34, unknown.
    partial = HlhInputs(hemoglobin_g_dl=lv("7"), platelets_10e9_l=lv("20"))
    it = hs_item(partial, "cytopenias")
    assert (it.status, it.points, it.possible_points) == ("unknown", None, (24, 34))
    # A documented lineage count settles it when the labs do not.
    it = hs_item(replace(partial, documented_cytopenia_lineages=3), "cytopenias")
    assert (it.status, it.points) == ("met", 34)
    # Two normal lineages: at most one lineage, whatever the third is -> 0 points, known.
    it = hs_item(HlhInputs(hemoglobin_g_dl=lv("13"), wbc_10e9_l=lv("8")), "cytopenias")
    assert (it.status, it.points) == ("met", 0)
    # Labs that settle the item win over a documented count.
    it = hs_item(replace(ALL_ZERO, documented_cytopenia_lineages=3), "cytopenias")
    assert (it.status, it.points) == ("met", 0)
    # Nothing at all.
    it = hs_item(HlhInputs(), "cytopenias")
    assert (it.status, it.possible_points, it.detail) == ("unknown", (0, 24, 34), "not reported")


def test_hscore_cytopenias_censored_lab_that_cannot_tell() -> None:
    # Hb ">8" may or may not be <=9.2.
    x = HlhInputs(hemoglobin_g_dl=lv(">8"), wbc_10e9_l=lv("1"), platelets_10e9_l=lv("20"))
    it = hs_item(x, "cytopenias")
    assert (it.status, it.possible_points) == ("unknown", (24, 34))
    assert "cannot tell" in it.detail


# ---------------------------------------------------------------------------------------------
# HScore: censored values


@pytest.mark.parametrize(
    ("field", "name", "value", "status", "points", "possible"),
    [
        ("ferritin_ng_ml", "ferritin", ">4000", "unknown", None, (35, 50)),
        ("ferritin_ng_ml", "ferritin", ">6000", "met", 50, (50,)),
        ("ferritin_ng_ml", "ferritin", ">=6000", "unknown", None, (35, 50)),
        ("ferritin_ng_ml", "ferritin", ">202000", "met", 50, (50,)),
        ("ferritin_ng_ml", "ferritin", "<2000", "met", 0, (0,)),
        ("ferritin_ng_ml", "ferritin", "<=2000", "unknown", None, (0, 35)),
        ("ferritin_ng_ml", "ferritin", "<10000", "unknown", None, (0, 35, 50)),
        ("ferritin_ng_ml", "ferritin", ">1000", "unknown", None, (0, 35, 50)),
        ("triglycerides_mg_dl", "triglycerides", "<100", "met", 0, (0,)),
        ("triglycerides_mg_dl", "triglycerides", ">354", "met", 64, (64,)),
        ("triglycerides_mg_dl", "triglycerides", ">300", "unknown", None, (44, 64)),
        ("fibrinogen_mg_dl", "fibrinogen", "<50", "met", 30, (30,)),
        ("fibrinogen_mg_dl", "fibrinogen", ">250", "met", 0, (0,)),
        ("fibrinogen_mg_dl", "fibrinogen", ">=250", "unknown", None, (0, 30)),
        ("fibrinogen_mg_dl", "fibrinogen", "<=250", "met", 30, (30,)),
        ("ast_u_l", "ast", ">29", "unknown", None, (0, 19)),
        ("ast_u_l", "ast", ">=30", "met", 19, (19,)),
        ("ast_u_l", "ast", "<30", "met", 0, (0,)),
    ],
)
def test_hscore_censored_values(
    field: str, name: str, value: str, status: str, points: int | None, possible: tuple[int, ...]
) -> None:
    it = hs_item(only(field, lv(value)), name)
    assert (it.status, it.points, it.possible_points) == (status, points, possible)
    if status == "unknown":
        assert value in it.detail
        assert " or " in it.detail


def test_hscore_censored_item_uses_its_highest_possible_band() -> None:
    only_ferritin = hscore(HlhInputs(ferritin_ng_ml=lv("<=2000")))
    # 337 - 50 (ferritin max) + 35 (highest still possible for "<=2000").
    assert only_ferritin.max_possible == 337 - 50 + 35
    assert only_ferritin.known_points == 0
    assert "ferritin" in only_ferritin.missing


def test_hscore_detail_of_known_ferritin() -> None:
    assert hs_item(HlhInputs(ferritin_ng_ml=lv("9580")), "ferritin").detail == "ferritin 9580 ng/mL > 6000 -> 50"


# ---------------------------------------------------------------------------------------------
# HScore: verdict against the cut-off of 169


def _result(known: int, max_possible: int, items: tuple[ScoreItem, ...] = ()) -> HScoreResult:
    return HScoreResult(known_points=known, max_possible=max_possible, items=items)


@pytest.mark.parametrize(
    ("known", "max_possible", "verdict"),
    [
        (169, 169, "above_cutoff"),
        (200, 250, "above_cutoff"),
        (168, 168, "below_cutoff"),
        (100, 168, "below_cutoff"),
        (100, 169, "indeterminate"),
        (168, 337, "indeterminate"),
    ],
)
def test_hscore_verdict_edges(known: int, max_possible: int, verdict: str) -> None:
    assert _result(known, max_possible).verdict == verdict


def test_hscore_verdict_uses_the_lowest_possible_points_of_censored_items() -> None:
    # Known 147 plus ferritin ">4000" (35 or 50): at least 182, so above 169 whatever ferritin is.
    x = HlhInputs(
        documented_cytopenia_lineages=3,  # 34
        triglycerides_mg_dl=lv("400"),  # 64
        fibrinogen_mg_dl=lv("100"),  # 30
        ast_u_l=lv("50"),  # 19
        ferritin_ng_ml=lv(">4000"),  # 35 or 50
    )
    result = hscore(x)
    assert result.known_points == 147
    assert result.min_possible == 182
    assert result.verdict == "above_cutoff"
    assert "ferritin" in result.missing


# ---------------------------------------------------------------------------------------------
# HScore: seed cases


def test_case_000_partial_hscore_is_158_and_indeterminate() -> None:
    # Case 000 (Ruemmele 2025): cytopenias 3 lineages 34 + ferritin 50 + triglycerides 44 + fibrinogen 30 = 158.
    result = hscore(CASE_000)
    assert result.known_points == 158
    assert {i.name: i.points for i in result.items if i.points is not None} == {
        "cytopenias": 34,
        "ferritin": 50,
        "triglycerides": 44,
        "fibrinogen": 30,
    }
    assert result.verdict == "indeterminate"
    assert "temperature" in result.missing
    assert result.missing == ("immunosuppression", "temperature", "organomegaly", "ast", "hemophagocytosis")
    assert result.max_possible == 158 + 18 + 49 + 38 + 19 + 35
    assert "without a value" in item(result.items, "temperature").detail
    # Exceeds 169 only if the fever was >=38.4 °C (Ruemmele 2025 reports fever without a value).
    assert hscore(replace(CASE_000, max_temperature_c=38.3)).known_points == 158
    assert hscore(replace(CASE_000, max_temperature_c=38.4)).verdict == "above_cutoff"


def test_case_004_hscore() -> None:
    result = hscore(CASE_004)
    # temperature 49 + cytopenias 34 + ferritin 50; organomegaly is 23 or 38 (liver not reported).
    assert result.known_points == 133
    assert item(result.items, "organomegaly").possible_points == (23, 38)
    assert result.min_possible == 156
    assert result.verdict == "indeterminate"


# ---------------------------------------------------------------------------------------------
# HLH-2004: item edges


@pytest.mark.parametrize(
    ("temperature", "status"), [(38.4, "not_met"), (38.49, "not_met"), (38.5, "met"), (40.3, "met")]
)
def test_hlh_fever_edge(temperature: float, status: str) -> None:
    it = hlh_item(HlhInputs(max_temperature_c=temperature), "fever")
    assert (it.status, it.points, it.max_points) == (status, None, 1)


def test_hlh_fever_unknown() -> None:
    it = hlh_item(HlhInputs(fever_documented_without_value=True), "fever")
    assert it.status == "unknown"
    assert "without a value" in it.detail
    assert hlh_item(HlhInputs(), "fever").detail == "not reported"


@pytest.mark.parametrize(
    ("hb", "plt", "anc", "status"),
    [
        # Thresholds (strict): Hb <9 g/dL, platelets <100, ANC <1.0 (x10^9/L).
        ("9", "100", "1", "not_met"),
        ("8.9", "100", "1", "not_met"),
        ("8.9", "99.9", "1", "met"),
        ("8.9", "100", "0.99", "met"),
        ("9", "99.9", "0.99", "met"),
        ("8", "50", "0.5", "met"),
        ("<9", ">100", "<1", "met"),
        (">8", "50", "1.5", "unknown"),
    ],
)
def test_hlh_cytopenia_edges(hb: str, plt: str, anc: str, status: str) -> None:
    x = HlhInputs(hemoglobin_g_dl=lv(hb), platelets_10e9_l=lv(plt), anc_10e9_l=lv(anc))
    assert hlh_item(x, "cytopenias").status == status


@pytest.mark.parametrize(
    ("x", "status"),
    [
        (HlhInputs(documented_cytopenia_lineages=3), "met"),  # documented pancytopenia counts
        (HlhInputs(documented_cytopenia_lineages=2), "met"),
        (HlhInputs(documented_cytopenia_lineages=1), "not_met"),
        (HlhInputs(hemoglobin_g_dl=lv("7"), platelets_10e9_l=lv("20")), "met"),  # 2 of 3 already
        (HlhInputs(hemoglobin_g_dl=lv("12"), platelets_10e9_l=lv("200")), "not_met"),  # at most 1 of 3
        (HlhInputs(hemoglobin_g_dl=lv("7")), "unknown"),
        (HlhInputs(hemoglobin_g_dl=lv("7"), documented_cytopenia_lineages=3), "met"),
        # Labs that settle it win over a documented count.
        (
            HlhInputs(
                hemoglobin_g_dl=lv("12"),
                platelets_10e9_l=lv("200"),
                anc_10e9_l=lv("3"),
                documented_cytopenia_lineages=3,
            ),
            "not_met",
        ),
        (HlhInputs(), "unknown"),
    ],
)
def test_hlh_cytopenia_partial_and_documented(x: HlhInputs, status: str) -> None:
    assert hlh_item(x, "cytopenias").status == status


@pytest.mark.parametrize(
    ("tg", "fib", "status"),
    [
        ("265", None, "met"),
        ("264.9", "150.1", "not_met"),
        (None, "150", "met"),
        ("264.9", None, "unknown"),
        (None, "150.1", "unknown"),
        ("100", "150", "met"),
        ("318", "<50", "met"),
        (">200", "300", "unknown"),
        (">265", None, "met"),
        ("<265", ">150", "not_met"),
        (None, None, "unknown"),
    ],
)
def test_hlh_triglycerides_or_fibrinogen(tg: str | None, fib: str | None, status: str) -> None:
    x = HlhInputs(
        triglycerides_mg_dl=None if tg is None else lv(tg),
        fibrinogen_mg_dl=None if fib is None else lv(fib),
    )
    assert hlh_item(x, "triglycerides_or_fibrinogen").status == status


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("499", "not_met"),
        ("499.9", "not_met"),
        ("500", "met"),
        ("487", "not_met"),
        (">202000", "met"),
        ("<500", "not_met"),
        ("<600", "unknown"),
        (">=500", "met"),
    ],
)
def test_hlh_ferritin_edge(value: str, status: str) -> None:
    assert hlh_item(HlhInputs(ferritin_ng_ml=lv(value)), "ferritin").status == status


@pytest.mark.parametrize(
    ("value", "unit", "status", "detail_part"),
    [
        ("2400", "U/mL", "met", ">= 2400"),
        ("2399", "U/mL", "not_met", ">= 2400"),
        (">2400", "U/mL", "met", ">= 2400"),
        (">2000", "U/mL", "unknown", "cannot tell"),
        ("93326", "pg/mL", "unknown", "units not comparable (pg/mL vs U/mL)"),
        ("93326", None, "unknown", "without a unit"),
    ],
)
def test_hlh_scd25(value: str, unit: str | None, status: str, detail_part: str) -> None:
    it = hlh_item(HlhInputs(sil2r=lv(value), sil2r_unit=unit), "scd25")
    assert it.status == status
    assert detail_part in it.detail


@pytest.mark.parametrize(
    ("field", "name"),
    [("spleen_enlarged", "splenomegaly"), ("hemophagocytosis", "hemophagocytosis"), ("nk_activity_low", "nk_activity")],
)
def test_hlh_yes_no_items(field: str, name: str) -> None:
    assert hlh_item(only(field, True), name).status == "met"
    assert hlh_item(only(field, False), name).status == "not_met"
    assert hlh_item(HlhInputs(), name).status == "unknown"


# ---------------------------------------------------------------------------------------------
# HLH-2004: count and verdict


def test_hlh_nothing_reported() -> None:
    result = hlh2004(HlhInputs())
    assert (result.met, result.unknown, result.verdict) == (0, 8, "indeterminate")
    assert result.missing == HLH2004_ITEMS
    assert tuple(i.name for i in result.items) == HLH2004_ITEMS


@pytest.mark.parametrize(
    ("x", "met", "unknown", "verdict"),
    [
        # 5 met, 3 unknown.
        (
            HlhInputs(
                max_temperature_c=39.0,
                spleen_enlarged=True,
                documented_cytopenia_lineages=3,
                fibrinogen_mg_dl=lv("100"),
                ferritin_ng_ml=lv("5000"),
            ),
            5,
            3,
            "meets_5_of_8",
        ),
        # 4 met, 1 unknown: still possible.
        (
            HlhInputs(
                max_temperature_c=39.0,
                spleen_enlarged=True,
                documented_cytopenia_lineages=3,
                fibrinogen_mg_dl=lv("100"),
                ferritin_ng_ml=lv("300"),
                hemophagocytosis=False,
                nk_activity_low=False,
            ),
            4,
            1,
            "indeterminate",
        ),
        # 4 met, 0 unknown.
        (
            HlhInputs(
                max_temperature_c=39.0,
                spleen_enlarged=True,
                documented_cytopenia_lineages=3,
                fibrinogen_mg_dl=lv("100"),
                ferritin_ng_ml=lv("300"),
                hemophagocytosis=False,
                nk_activity_low=False,
                sil2r=lv("1000"),
                sil2r_unit="U/mL",
            ),
            4,
            0,
            "does_not_meet",
        ),
        # 2 met, 2 unknown: at most 4.
        (
            HlhInputs(
                max_temperature_c=37.0,
                spleen_enlarged=False,
                documented_cytopenia_lineages=3,
                fibrinogen_mg_dl=lv("100"),
                ferritin_ng_ml=lv("300"),
                hemophagocytosis=False,
            ),
            2,
            2,
            "does_not_meet",
        ),
    ],
)
def test_hlh_verdict(x: HlhInputs, met: int, unknown: int, verdict: str) -> None:
    result = hlh2004(x)
    assert (result.met, result.unknown, result.verdict) == (met, unknown, verdict)


def test_case_000_hlh2004() -> None:
    result = hlh2004(CASE_000)
    statuses = {i.name: i.status for i in result.items}
    assert result.met == 3
    assert {n for n, s in statuses.items() if s == "met"} == {"cytopenias", "triglycerides_or_fibrinogen", "ferritin"}
    assert statuses["fever"] == "unknown"
    assert statuses["scd25"] == "unknown"
    assert item(result.items, "scd25").detail.endswith("units not comparable (pg/mL vs U/mL)")
    assert result.unknown == 5
    assert set(result.missing) == {"fever", "splenomegaly", "hemophagocytosis", "nk_activity", "scd25"}
    assert result.verdict == "indeterminate"


def test_case_004_hlh2004() -> None:
    result = hlh2004(CASE_004)
    met = {i.name for i in result.items if i.status == "met"}
    assert met == {"fever", "splenomegaly", "cytopenias", "ferritin"}
    assert (result.met, result.unknown, result.verdict) == (4, 4, "indeterminate")


def test_invalid_documented_lineage_count_is_rejected() -> None:
    with pytest.raises(ValueError):
        HlhInputs(documented_cytopenia_lineages=4)
