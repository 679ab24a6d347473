"""HScore and HLH-2004 criteria from what is known, without imputing what is not.

Sources: HScore (Fardet 2014) [V2] and HLH-2004 (Henter 2007) [V2]; docs/clinical-rules.md.
Pure functions, no I/O.

Missing items stay missing. Each item is "unknown" when it is not reported, or when a censored
value (">4000", "<50", see models.labvalue) cannot place it in a single band; the result then
says which points or which outcome are still possible, and lists the item in ``missing``.

Units are those of the HlhInputs field names (the canonical units of models.units): temperature
°C, hemoglobin g/dL, counts 10^9/L, ferritin ng/mL (= µg/L), triglycerides and fibrinogen mg/dL,
AST U/L. sIL-2R (sCD25) is compared with 2,400 only when given in U/mL (HLH-2004).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from models.labvalue import LabValue
from models.units import canonical_unit_name

ItemStatus = Literal["met", "not_met", "unknown"]

HSCORE_CUTOFF: Final = 169  # HScore (Fardet 2014): "The usual cut-off is 169" [V2]; a score >= 169 is above.
HSCORE_MAX: Final = 337  # HScore (Fardet 2014): "Scores range from 0 to 337" [V2]

# Item names, in the order the results list them.
HSCORE_ITEMS: Final = (
    "immunosuppression",
    "temperature",
    "organomegaly",
    "cytopenias",
    "ferritin",
    "triglycerides",
    "fibrinogen",
    "ast",
    "hemophagocytosis",
)
HLH2004_ITEMS: Final = (
    "fever",
    "splenomegaly",
    "cytopenias",
    "triglycerides_or_fibrinogen",
    "hemophagocytosis",
    "nk_activity",
    "ferritin",
    "scd25",
)
HLH2004_REQUIRED: Final = 5  # HLH-2004 (Henter 2007): "5 of the 8 findings" [V2]

NOT_REPORTED: Final = "not reported"


@dataclass(frozen=True, slots=True)
class HlhInputs:
    """Everything both scores use. None means "not reported"."""

    max_temperature_c: float | None = None
    fever_documented_without_value: bool = False
    immunosuppression: bool | None = None  # known underlying: HIV+ or long-term immunosuppressive therapy
    spleen_enlarged: bool | None = None
    liver_enlarged: bool | None = None
    hemoglobin_g_dl: LabValue | None = None
    wbc_10e9_l: LabValue | None = None
    platelets_10e9_l: LabValue | None = None
    anc_10e9_l: LabValue | None = None
    documented_cytopenia_lineages: int | None = None  # e.g. 3 for "pancytopenia" with no values
    ferritin_ng_ml: LabValue | None = None
    triglycerides_mg_dl: LabValue | None = None
    fibrinogen_mg_dl: LabValue | None = None
    ast_u_l: LabValue | None = None
    hemophagocytosis: bool | None = None
    nk_activity_low: bool | None = None
    sil2r: LabValue | None = None
    sil2r_unit: str | None = None  # "U/mL" or "pg/mL"; only U/mL is comparable to 2,400 U/mL

    def __post_init__(self) -> None:
        n = self.documented_cytopenia_lineages
        if n is not None and (isinstance(n, bool) or not 0 <= n <= 3):
            raise ValueError(f"documented_cytopenia_lineages must be 0-3, got {n!r}")


@dataclass(frozen=True, slots=True)
class ScoreItem:
    """One item of a score.

    HScore: status "met" means the item is known (its points may be 0); ``points`` is None when
    unknown; ``possible_points`` holds the points still possible (one value when known).
    HLH-2004: ``points`` is None, ``max_points`` is 1 and ``possible_points`` is empty.
    """

    name: str
    status: ItemStatus
    points: int | None
    max_points: int
    detail: str
    possible_points: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class HScoreResult:
    known_points: int  # sum over known items
    max_possible: int  # known_points + the highest still-possible points of each unknown item
    items: tuple[ScoreItem, ...]
    cutoff: int = HSCORE_CUTOFF

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.items if i.status == "unknown")

    @property
    def min_possible(self) -> int:
        """known_points + the lowest still-possible points of each unknown item (0 when not reported)."""
        return self.known_points + sum(min(i.possible_points, default=0) for i in self.items if i.status == "unknown")

    @property
    def verdict(self) -> Literal["above_cutoff", "below_cutoff", "indeterminate"]:
        """above_cutoff when the score is >= cutoff whatever the unknown items turn out to be,
        below_cutoff when it is < cutoff whatever they turn out to be, indeterminate otherwise."""
        if self.min_possible >= self.cutoff:
            return "above_cutoff"
        if self.max_possible < self.cutoff:
            return "below_cutoff"
        return "indeterminate"


@dataclass(frozen=True, slots=True)
class Hlh2004Result:
    met: int
    unknown: int
    items: tuple[ScoreItem, ...]

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.items if i.status == "unknown")

    @property
    def verdict(self) -> Literal["meets_5_of_8", "does_not_meet", "indeterminate"]:
        """On the 8 clinical findings only; a molecular diagnosis (HLH-2004) is not an input."""
        if self.met >= HLH2004_REQUIRED:
            return "meets_5_of_8"
        if self.met + self.unknown < HLH2004_REQUIRED:
            return "does_not_meet"
        return "indeterminate"


# ---------------------------------------------------------------------------------------------
# Bands of a (possibly censored) value


@dataclass(frozen=True, slots=True)
class _Band:
    points: int
    label: str  # e.g. "> 6000", "2000-6000"
    low: float | None = None  # None: unbounded
    low_inclusive: bool = True
    high: float | None = None
    high_inclusive: bool = True


def _possible_bands(value: LabValue, bands: Sequence[_Band]) -> tuple[_Band, ...]:
    """The bands the true value may lie in; one band when the (censored) value settles it."""
    out: list[_Band] = []
    for b in bands:
        # Band needs x >= low (x > low): ruled out when x < low (x <= low) for certain.
        if b.low is not None and value.below(b.low, inclusive=not b.low_inclusive) is True:
            continue
        # Band needs x <= high (x < high): ruled out when x > high (x >= high) for certain.
        if b.high is not None and value.above(b.high, inclusive=not b.high_inclusive) is True:
            continue
        out.append(b)
    return tuple(out)


def _g(x: float) -> str:
    return f"{x:g}"


def _or(points: Sequence[int]) -> str:
    p = [str(x) for x in points]
    return p[0] if len(p) == 1 else ", ".join(p[:-1]) + " or " + p[-1]


def _unknown_hscore(name: str, max_points: int, detail: str, possible: Sequence[int]) -> ScoreItem:
    return ScoreItem(name, "unknown", None, max_points, detail, tuple(sorted(set(possible))))


def _known_hscore(name: str, max_points: int, detail: str, points: int) -> ScoreItem:
    return ScoreItem(name, "met", points, max_points, detail, (points,))


def _banded_item(name: str, what: str, unit: str, value: LabValue | None, bands: Sequence[_Band]) -> ScoreItem:
    max_points = max(b.points for b in bands)
    all_points = [b.points for b in bands]
    if value is None:
        return _unknown_hscore(name, max_points, NOT_REPORTED, all_points)
    possible = _possible_bands(value, bands)
    shown = f"{what} {value} {unit}"
    if len(possible) == 1:
        b = possible[0]
        relation = f"in {b.label}" if "-" in b.label else b.label
        return _known_hscore(name, max_points, f"{shown} {relation} -> {b.points}", b.points)
    if not possible:  # defensive: the bands are contiguous, so every real value fits one
        return _unknown_hscore(name, max_points, f"{shown} fits no band", all_points)
    pts = sorted({b.points for b in possible})
    bands_text = ", ".join(b.label for b in possible)
    return _unknown_hscore(name, max_points, f"{shown} cannot be placed in one band ({bands_text}): {_or(pts)}", pts)


def _bool_item(name: str, value: bool | None, points: int, yes: str, no: str) -> ScoreItem:
    if value is None:
        return _unknown_hscore(name, points, NOT_REPORTED, (0, points))
    if value:
        return _known_hscore(name, points, f"{yes} -> {points}", points)
    return _known_hscore(name, points, f"{no} -> 0", 0)


# ---------------------------------------------------------------------------------------------
# Cytopenias (shared by both scores; lineage thresholds differ)


def _lineages(
    labs: Sequence[tuple[str, LabValue | None, str, float, bool]],
) -> tuple[int, int, str, bool]:
    """Lowest and highest possible number of cytopenic lineages from the lab values, the facts
    used, and whether any value was reported.

    Each lab is (label, value, unit, threshold, inclusive): cytopenic when value < threshold
    (<= threshold with inclusive). A missing or undecidable value may count either way.
    """
    low = high = 0
    reported = False
    facts: list[str] = []
    for label, value, unit, threshold, inclusive in labs:
        test = f"{'<=' if inclusive else '<'} {_g(threshold)}"
        if value is None:
            high += 1
            facts.append(f"{label} not reported")
            continue
        reported = True
        flag = value.below(threshold, inclusive=inclusive)
        if flag is None:
            high += 1
            facts.append(f"{label} {value} {unit} {test}: cannot tell")
        elif flag:
            low += 1
            high += 1
            facts.append(f"{label} {value} {unit} {test}: yes")
        else:
            facts.append(f"{label} {value} {unit} {test}: no")
    return low, high, "; ".join(facts), reported


def _count(low: int, high: int) -> str:
    n = str(low) if low == high else f"{low} to {high}"
    return f"{n} lineage{'' if (low, high) == (1, 1) else 's'}"


def _documented(n: int) -> str:
    return f"documented cytopenia in {n} lineage{'' if n == 1 else 's'} (no values)"


# HScore cytopenia points by number of lineages (HScore, Fardet 2014 [V2]: 1 / 2 / 3 lineages = 0 / 24 / 34).
_HSCORE_CYTOPENIA_POINTS: Final[dict[int, int]] = {0: 0, 1: 0, 2: 24, 3: 34}


def _hscore_cytopenias(x: HlhInputs) -> ScoreItem:
    # HScore (Fardet 2014) [V2]: Hb <=9.2 g/dL, WBC <=5x10^9/L, platelets <=110x10^9/L.
    # Lab values first when they settle the points; then a documented lineage count (e.g.
    # "pancytopenia" = 3, qualitative); otherwise unknown with the points still possible.
    low, high, facts, reported = _lineages(
        (
            ("Hb", x.hemoglobin_g_dl, "g/dL", 9.2, True),
            ("WBC", x.wbc_10e9_l, "x10^9/L", 5.0, True),
            ("platelets", x.platelets_10e9_l, "x10^9/L", 110.0, True),
        )
    )
    possible = sorted({_HSCORE_CYTOPENIA_POINTS[k] for k in range(low, high + 1)})
    if len(possible) == 1:
        return _known_hscore("cytopenias", 34, f"{facts} -> {_count(low, high)} -> {possible[0]}", possible[0])
    n = x.documented_cytopenia_lineages
    if n is not None:
        points = _HSCORE_CYTOPENIA_POINTS[n]
        return _known_hscore("cytopenias", 34, f"{_documented(n)} -> {points}", points)
    detail = f"{facts} -> {_count(low, high)}: {_or(possible)}" if reported else NOT_REPORTED
    return _unknown_hscore("cytopenias", 34, detail, possible)


# ---------------------------------------------------------------------------------------------
# HScore (Fardet 2014 [V2])

# Temperature <38.4 / 38.4-39.4 / >39.4 °C = 0 / 33 / 49.
_TEMPERATURE_BANDS: Final = (
    _Band(0, "< 38.4", high=38.4, high_inclusive=False),
    _Band(33, "38.4-39.4", low=38.4, high=39.4),
    _Band(49, "> 39.4", low=39.4, low_inclusive=False),
)
# Ferritin <2,000 / 2,000-6,000 / >6,000 ng/mL = 0 / 35 / 50.
_FERRITIN_BANDS: Final = (
    _Band(0, "< 2000", high=2000, high_inclusive=False),
    _Band(35, "2000-6000", low=2000, high=6000),
    _Band(50, "> 6000", low=6000, low_inclusive=False),
)
# Triglycerides <1.5 / 1.5-4 / >4 mmol/L, given in the HScore tables as <132.7 / 132.7-354 / >354 mg/dL = 0 / 44 / 64.
_TRIGLYCERIDE_BANDS: Final = (
    _Band(0, "< 132.7", high=132.7, high_inclusive=False),
    _Band(44, "132.7-354", low=132.7, high=354),
    _Band(64, "> 354", low=354, low_inclusive=False),
)
# Fibrinogen >2.5 / <=2.5 g/L (>250 / <=250 mg/dL) = 0 / 30.
_FIBRINOGEN_BANDS: Final = (
    _Band(0, "> 250", low=250, low_inclusive=False),
    _Band(30, "<= 250", high=250),
)
# AST >=30 U/L = 19, else 0.
_AST_BANDS: Final = (
    _Band(0, "< 30", high=30, high_inclusive=False),
    _Band(19, ">= 30", low=30),
)


def _hscore_temperature(x: HlhInputs) -> ScoreItem:
    if x.max_temperature_c is None and x.fever_documented_without_value:
        return _unknown_hscore("temperature", 49, "fever documented without a value: 0, 33 or 49", (0, 33, 49))
    value = None if x.max_temperature_c is None else LabValue(x.max_temperature_c)
    return _banded_item("temperature", "max temperature", "°C", value, _TEMPERATURE_BANDS)


def _hscore_organomegaly(x: HlhInputs) -> ScoreItem:
    # none / liver or spleen / liver and spleen = 0 / 23 / 38.
    liver, spleen = x.liver_enlarged, x.spleen_enlarged

    def word(v: bool | None) -> str:
        return "not reported" if v is None else ("enlarged" if v else "not enlarged")

    facts = f"liver {word(liver)}, spleen {word(spleen)}"
    if liver is not None and spleen is not None:
        points = {0: 0, 1: 23, 2: 38}[int(liver) + int(spleen)]
        return _known_hscore("organomegaly", 38, f"{facts} -> {points}", points)
    if liver is None and spleen is None:
        return _unknown_hscore("organomegaly", 38, NOT_REPORTED, (0, 23, 38))
    known = liver if liver is not None else spleen
    if known:
        return _unknown_hscore("organomegaly", 38, f"{facts} -> >=23 (23 or 38)", (23, 38))
    return _unknown_hscore("organomegaly", 38, f"{facts} -> 0 or 23", (0, 23))


def hscore(x: HlhInputs) -> HScoreResult:
    """HScore (Fardet 2014 [V2]) over the known items, with the range still possible."""
    items = (
        _bool_item(
            "immunosuppression",
            x.immunosuppression,
            18,
            "known underlying immunosuppression",
            "no known underlying immunosuppression",
        ),
        _hscore_temperature(x),
        _hscore_organomegaly(x),
        _hscore_cytopenias(x),
        _banded_item("ferritin", "ferritin", "ng/mL", x.ferritin_ng_ml, _FERRITIN_BANDS),
        _banded_item("triglycerides", "triglycerides", "mg/dL", x.triglycerides_mg_dl, _TRIGLYCERIDE_BANDS),
        _banded_item("fibrinogen", "fibrinogen", "mg/dL", x.fibrinogen_mg_dl, _FIBRINOGEN_BANDS),
        _banded_item("ast", "AST", "U/L", x.ast_u_l, _AST_BANDS),
        _bool_item(
            "hemophagocytosis",
            x.hemophagocytosis,
            35,
            "hemophagocytosis on bone marrow aspirate",
            "no hemophagocytosis on bone marrow aspirate",
        ),
    )
    known = sum(i.points for i in items if i.points is not None)
    unknown_max = sum(max(i.possible_points, default=i.max_points) for i in items if i.status == "unknown")
    return HScoreResult(known_points=known, max_possible=known + unknown_max, items=items)


# ---------------------------------------------------------------------------------------------
# HLH-2004 (Henter 2007 [V2]): 8 findings, diagnosis on 5.


def _criterion(name: str, status: ItemStatus, detail: str) -> ScoreItem:
    return ScoreItem(name, status, None, 1, detail)


def _flag_criterion(name: str, flag: bool | None, yes: str, no: str) -> ScoreItem:
    if flag is None:
        return _criterion(name, "unknown", NOT_REPORTED)
    return _criterion(name, "met", yes) if flag else _criterion(name, "not_met", no)


def _threshold_criterion(
    name: str, what: str, unit: str, value: LabValue | None, test: str, flag: bool | None
) -> ScoreItem:
    if value is None:
        return _criterion(name, "unknown", NOT_REPORTED)
    shown = f"{what} {value} {unit} {test}"
    if flag is None:
        return _criterion(name, "unknown", f"{shown}: cannot tell")
    return _criterion(name, "met" if flag else "not_met", f"{shown}: {'yes' if flag else 'no'}")


def _hlh_fever(x: HlhInputs) -> ScoreItem:
    # 1. Fever >=38.5 °C.
    t = x.max_temperature_c
    if t is None:
        if x.fever_documented_without_value:
            return _criterion("fever", "unknown", "fever documented without a value: >= 38.5 °C cannot be checked")
        return _criterion("fever", "unknown", NOT_REPORTED)
    met = t >= 38.5
    return _criterion(
        "fever", "met" if met else "not_met", f"max temperature {_g(t)} °C >= 38.5: {'yes' if met else 'no'}"
    )


def _hlh_cytopenias(x: HlhInputs) -> ScoreItem:
    # 3. Cytopenias in >=2 of 3 lineages: Hb <90 g/L (<9 g/dL); platelets <100x10^9/L; neutrophils <1.0x10^9/L.
    # Lab values first when they settle it; then a documented lineage count ("pancytopenia" = 3 counts
    # as met, although its numbers cannot be checked against these thresholds: McNerney 2022).
    low, high, facts, reported = _lineages(
        (
            ("Hb", x.hemoglobin_g_dl, "g/dL", 9.0, False),
            ("platelets", x.platelets_10e9_l, "x10^9/L", 100.0, False),
            ("ANC", x.anc_10e9_l, "x10^9/L", 1.0, False),
        )
    )
    if low >= 2:
        return _criterion("cytopenias", "met", f"{facts} -> {_count(low, high)}")
    if high < 2:
        return _criterion("cytopenias", "not_met", f"{facts} -> {_count(low, high)}")
    n = x.documented_cytopenia_lineages
    if n is not None:
        return _criterion("cytopenias", "met" if n >= 2 else "not_met", _documented(n))
    return _criterion("cytopenias", "unknown", f"{facts} -> {_count(low, high)}" if reported else NOT_REPORTED)


def _hlh_lipids_fibrinogen(x: HlhInputs) -> ScoreItem:
    # 4. Fasting triglycerides >=3.0 mmol/L (>=265 mg/dL) and/or fibrinogen <=1.5 g/L (<=150 mg/dL).
    # Whether a triglyceride value was fasting is not an input; it is taken as given.
    tg, fib = x.triglycerides_mg_dl, x.fibrinogen_mg_dl
    tg_flag = None if tg is None else tg.above(265, inclusive=True)
    fib_flag = None if fib is None else fib.below(150, inclusive=True)

    def fact(what: str, v: LabValue | None, test: str, flag: bool | None) -> str:
        if v is None:
            return f"{what} not reported"
        return f"{what} {v} mg/dL {test}: {'cannot tell' if flag is None else ('yes' if flag else 'no')}"

    detail = f"{fact('triglycerides', tg, '>= 265', tg_flag)}; {fact('fibrinogen', fib, '<= 150', fib_flag)}"
    if tg_flag or fib_flag:
        return _criterion("triglycerides_or_fibrinogen", "met", detail)
    if tg_flag is False and fib_flag is False:
        return _criterion("triglycerides_or_fibrinogen", "not_met", detail)
    if tg is None and fib is None:
        detail = NOT_REPORTED
    return _criterion("triglycerides_or_fibrinogen", "unknown", detail)


# sCD25 units comparable with the HLH-2004 threshold of 2,400 U/mL (Henter 2007).
_SCD25_UNIT: Final = "U/mL"


def _hlh_scd25(x: HlhInputs) -> ScoreItem:
    # 8. Soluble CD25 (sIL-2R) >=2,400 U/mL (HLH-2004). Case 000's 93,326 pg/mL is not compared with
    # 2,400 U/mL: mass units (pg/mL) cannot be converted to U/mL without assay-specific information.
    v = x.sil2r
    if v is None:
        return _criterion("scd25", "unknown", NOT_REPORTED)
    if x.sil2r_unit is None:
        return _criterion("scd25", "unknown", f"sIL-2R {v} without a unit: cannot compare with 2400 U/mL")
    unit = canonical_unit_name(x.sil2r_unit)
    if unit != _SCD25_UNIT:
        return _criterion("scd25", "unknown", f"sIL-2R {v} {unit}: units not comparable ({unit} vs {_SCD25_UNIT})")
    return _threshold_criterion("scd25", "sIL-2R", unit, v, ">= 2400", v.above(2400, inclusive=True))


def hlh2004(x: HlhInputs) -> Hlh2004Result:
    """HLH-2004 diagnostic findings (Henter 2007 [V2]), counting met and unknown."""
    ferritin = x.ferritin_ng_ml
    items = (
        _hlh_fever(x),
        # 2. Splenomegaly.
        _flag_criterion("splenomegaly", x.spleen_enlarged, "splenomegaly", "no splenomegaly"),
        _hlh_cytopenias(x),
        _hlh_lipids_fibrinogen(x),
        # 5. Hemophagocytosis in bone marrow, spleen or lymph nodes.
        _flag_criterion("hemophagocytosis", x.hemophagocytosis, "hemophagocytosis", "no hemophagocytosis"),
        # 6. Low or absent NK-cell activity.
        _flag_criterion("nk_activity", x.nk_activity_low, "low or absent NK-cell activity", "normal NK-cell activity"),
        # 7. Ferritin >=500 µg/L (= ng/mL).
        _threshold_criterion(
            "ferritin",
            "ferritin",
            "ng/mL",
            ferritin,
            ">= 500",
            None if ferritin is None else ferritin.above(500, inclusive=True),
        ),
        _hlh_scd25(x),
    )
    return Hlh2004Result(
        met=sum(i.status == "met" for i in items),
        unknown=sum(i.status == "unknown" for i in items),
        items=items,
    )
