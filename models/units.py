"""Unit normalisation: the one place where units are converted.

Every measurement is stored in a canonical unit. Conversions are those that the
accepted UCUM units per code of the FHIR R4 input contract require (docs/feeds.md;
the contract's unit conversions).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Final


class UnitError(ValueError):
    """A unit that is not accepted for the measurement it came with."""


# Aliases that feeds commonly send for the same UCUM unit.
_ALIASES: Final[dict[str, str]] = {
    "mcg/min": "ug/min",
    "µg/min": "ug/min",
    "mcg/kg/min": "ug/kg/min",
    "µg/kg/min": "ug/kg/min",
    "units/min": "U/min",
    "[USP'U]/min": "U/min",
    "units/h": "U/h",
    "[USP'U]/h": "U/h",
    "°C": "Cel",
    "C": "Cel",
    "°F": "[degF]",
    "F": "[degF]",
    "mmHg": "mm[Hg]",
    "bpm": "/min",
    "L/min ": "L/min",
    "lb": "[lb_av]",
    "lbs": "[lb_av]",
    "µg/L": "ug/L",
    "x10*9/L": "10*9/L",
    "10^9/L": "10*9/L",
    "x10*3/uL": "10*3/uL",
    "10^3/uL": "10*3/uL",
}


# Spellings feeds really send for the same unit (lab interfaces, US EHRs, devices). Issue 15 item 15.
_ALIASES.update({
    "degF": "[degF]",
    "deg F": "[degF]",
    "Fahrenheit": "[degF]",
    "degC": "Cel",
    "deg C": "Cel",
    "Celsius": "Cel",
    "mm Hg": "mm[Hg]",
    "IU/L": "U/L",  # enzyme activity: the international unit of an enzyme is the U of UCUM
    "[IU]/L": "U/L",
    "gm/dL": "g/dL",
    "K/uL": "10*3/uL",
    "thou/uL": "10*3/uL",
    "x10*3/uL": "10*3/uL",
    "10^3/uL": "10*3/uL",
    "x10^3/uL": "10*3/uL",
    "10E3/uL": "10*3/uL",
    "x10E3/uL": "10*3/uL",
    "10(3)/uL": "10*3/uL",
    "x10(3)/uL": "10*3/uL",
    "x10^9/L": "10*9/L",
    "10E9/L": "10*9/L",
    "x10E9/L": "10*9/L",
    "10(9)/L": "10*9/L",
    "x10(9)/L": "10*9/L",
    "G/L": "10*9/L",  # giga per litre (European reports)
    "/nL": "10*9/L",
    "cells/uL": "/uL",  # a count per microlitre: 1/1000 of 10*3/uL (converted, not an alias of it)
    "/mm3": "/uL",
    "cells/mm3": "/uL",
})
_ALIAS_BY_FOLDED: Final[dict[str, str]] = {k.casefold(): v for k, v in _ALIASES.items()}


def _respell(unit: str) -> str:
    """Micro written as the micro sign (U+00B5), the Greek mu (U+03BC) or 'mc' becomes 'u'."""
    unit = unit.replace("\u00b5", "u").replace("\u03bc", "u")
    for mc in ("mcg", "mcL", "mcl", "mcmol", "mcU"):
        unit = unit.replace(mc, "u" + mc[2:])
    return unit


def canonical_unit_name(unit: str) -> str:
    unit = unit.strip()
    if unit in _ALIASES:
        return _ALIASES[unit]
    respelled = _respell(unit)
    return _ALIASES.get(respelled, respelled)


def resolve_unit(unit: str, accepted: Collection[str]) -> tuple[str, str | None]:
    """(unit, note): the accepted UCUM unit a spelling stands for, and a note naming the alias.

    The UCUM code itself gives no note. Another spelling of it (an alias, the micro sign or Greek mu,
    'mcg', or a case variant such as 'ng/ml' or 'mg/dl') is read as that code and the note says so,
    so that nothing is read silently. A case variant is matched only against `accepted` (the units of
    one measure), where no two units differ by case alone. Without a match the spelling is returned
    unchanged with no note (the caller rejects it).
    """
    raw = unit.strip()
    if raw in accepted:
        return raw, None
    candidates = [canonical_unit_name(raw)]
    candidates.append(_ALIAS_BY_FOLDED.get(candidates[0].casefold(), candidates[0]))
    for c in candidates:
        if c in accepted:
            return c, f"unit {unit!r} read as UCUM {c!r}"
        folded = [a for a in accepted if a.casefold() == c.casefold()]
        if len(folded) == 1:
            return folded[0], f"unit {unit!r} read as UCUM {folded[0]!r} (case variant)"
    return raw, None


# Lab analytes: canonical unit and accepted units with the factor to the canonical one.
# Sources: the FHIR R4 input contract (docs/feeds.md) and its unit conversions.
LAB_UNITS: Final[dict[str, tuple[str, dict[str, float]]]] = {
    "ferritin": ("ng/mL", {"ng/mL": 1.0, "ug/L": 1.0}),  # ng/mL = ug/L
    "crp": ("mg/L", {"mg/L": 1.0, "mg/dL": 10.0}),  # mg/dL x 10 = mg/L
    "ifn_gamma": ("pg/mL", {"pg/mL": 1.0}),
    "il6": ("pg/mL", {"pg/mL": 1.0}),
    "il8": ("pg/mL", {"pg/mL": 1.0}),
    "il10": ("pg/mL", {"pg/mL": 1.0}),
    "tnf_alpha": ("pg/mL", {"pg/mL": 1.0}),
    # sIL-2R: U/mL (HLH-2004, Henter 2007) and pg/mL (mass assays) cannot be converted.
    # Both are accepted and kept apart; see SEPARATE_UNITS.
    "sil2r": ("pg/mL", {"pg/mL": 1.0}),
    "cxcl9": ("pg/mL", {"pg/mL": 1.0}),
    "cxcl10": ("pg/mL", {"pg/mL": 1.0}),
    "fibrinogen": ("mg/dL", {"mg/dL": 1.0, "g/L": 100.0}),  # g/L x 100 = mg/dL
    "alt": ("U/L", {"U/L": 1.0}),
    "ast": ("U/L", {"U/L": 1.0}),
    "ldh": ("U/L", {"U/L": 1.0}),
    "triglycerides": ("mg/dL", {"mg/dL": 1.0, "mmol/L": 88.57}),  # mg/dL / 88.57 = mmol/L
    "bilirubin": ("mg/dL", {"mg/dL": 1.0}),
    # Counts: 10*3/uL = 10*9/L; a count per microlitre (/uL, cells/uL) is 1/1000 of either.
    "platelets": ("10*9/L", {"10*9/L": 1.0, "10*3/uL": 1.0, "/uL": 0.001}),
    "anc": ("10*9/L", {"10*9/L": 1.0, "10*3/uL": 1.0, "/uL": 0.001}),
    "wbc": ("10*9/L", {"10*9/L": 1.0, "10*3/uL": 1.0, "/uL": 0.001}),
    "hemoglobin": ("g/dL", {"g/dL": 1.0, "g/L": 0.1}),
    "creatinine": ("mg/dL", {"mg/dL": 1.0}),
    "lactate": ("mmol/L", {"mmol/L": 1.0}),
    "d_dimer": ("ug/mL", {"ug/mL": 1.0, "ng/mL": 0.001}),
    "bnp": ("pg/mL", {"pg/mL": 1.0}),
    "phosphorus": ("mg/dL", {"mg/dL": 1.0}),
    "psa": ("ng/mL", {"ng/mL": 1.0}),
}

# Analytes for which a second, non-convertible unit is accepted and kept as is.
SEPARATE_UNITS: Final[dict[str, frozenset[str]]] = {
    "sil2r": frozenset({"U/mL"}),
}


def lab_units_accepted(analyte: str) -> frozenset[str]:
    """Every UCUM unit accepted for the analyte (convertible or kept apart)."""
    if analyte not in LAB_UNITS:
        return frozenset()
    return frozenset(LAB_UNITS[analyte][1]) | SEPARATE_UNITS.get(analyte, frozenset())


def normalise_lab(analyte: str, value: float, unit: str) -> tuple[float, str]:
    """Return (value, unit) in the analyte's canonical unit, or raise UnitError."""
    value, unit, _ = normalise_lab_noted(analyte, value, unit)
    return value, unit


def normalise_lab_noted(analyte: str, value: float, unit: str) -> tuple[float, str, str | None]:
    """Like normalise_lab, with the note of resolve_unit when the unit was an alias."""
    if analyte not in LAB_UNITS:
        raise UnitError(f"unknown analyte {analyte!r}")
    unit, note = resolve_unit(unit, lab_units_accepted(analyte))
    canonical, accepted = LAB_UNITS[analyte]
    if unit in SEPARATE_UNITS.get(analyte, frozenset()):
        return value, unit, note
    factor = accepted.get(unit)
    if factor is None:
        allowed = sorted(lab_units_accepted(analyte))
        raise UnitError(f"unit {unit!r} is not accepted for {analyte}; accepted: {', '.join(allowed)}")
    if unit == "/uL":
        _check_per_microlitre(analyte, value)
    return value * factor, canonical, note


# A count per microlitre is 1/1000 of 10*3/uL. A value that can only be thousands per microlitre
# mislabelled as /uL would be read 1000 times too low (a false severe cytopenia): refuse it with a reason.
_PER_UL_AT_LEAST: Final[dict[str, float]] = {"platelets": 1000.0}


def _check_per_microlitre(analyte: str, value: float) -> None:
    if value != int(value):
        raise UnitError(f"{analyte} {value:g} /uL is not a whole number of cells per microlitre; "
                        "is the unit 10*3/uL (thousands per microlitre)?")
    low = _PER_UL_AT_LEAST.get(analyte)
    if low is not None and value < low:
        raise UnitError(f"{analyte} {value:g} /uL ({value / 1000:g} x10^9/L) is implausibly low for cells per "
                        "microlitre; is the unit 10*3/uL (thousands per microlitre)?")


# Vital signs: canonical unit and the accepted ones.
VITAL_UNITS: Final[dict[str, tuple[str, frozenset[str]]]] = {
    "temperature": ("Cel", frozenset({"Cel", "[degF]"})),
    "heart_rate": ("/min", frozenset({"/min"})),
    "sbp": ("mm[Hg]", frozenset({"mm[Hg]"})),
    "dbp": ("mm[Hg]", frozenset({"mm[Hg]"})),
    "map": ("mm[Hg]", frozenset({"mm[Hg]"})),
    "spo2": ("%", frozenset({"%"})),
    "resp_rate": ("/min", frozenset({"/min"})),
}


def fahrenheit_to_celsius(value: float) -> float:
    return (value - 32.0) * 5.0 / 9.0


def normalise_vital(measure: str, value: float, unit: str) -> tuple[float, str]:
    value, unit, _ = normalise_vital_noted(measure, value, unit)
    return value, unit


def normalise_vital_noted(measure: str, value: float, unit: str) -> tuple[float, str, str | None]:
    """Like normalise_vital, with the note of resolve_unit when the unit was an alias."""
    canonical, accepted = VITAL_UNITS[measure]
    unit, note = resolve_unit(unit, accepted)
    if unit not in accepted:
        raise UnitError(f"unit {unit!r} is not accepted for {measure}; accepted: {', '.join(sorted(accepted))}")
    if unit == "[degF]":
        return fahrenheit_to_celsius(value), canonical, note
    return value, canonical, note


WEIGHT_UNITS: Final[dict[str, float]] = {"kg": 1.0, "[lb_av]": 0.45359237, "g": 0.001}


def normalise_weight_kg(value: float, unit: str) -> float:
    unit, _ = resolve_unit(unit, WEIGHT_UNITS)
    factor = WEIGHT_UNITS.get(unit)
    if factor is None:
        raise UnitError(f"unit {unit!r} is not accepted for body weight; accepted: {', '.join(sorted(WEIGHT_UNITS))}")
    return value * factor


# Vasoactive infusion rates. Catecholamine-type agents are compared in ug/kg/min;
# vasopressin in U/min (Goradia 2021: "dose in U/min, not per kg").
RATE_UNITS: Final[frozenset[str]] = frozenset({"ug/min", "ug/kg/min", "U/min", "U/h", "ng/kg/min"})


def normalise_rate_unit(unit: str) -> str:
    unit, _ = resolve_unit(unit, RATE_UNITS)
    if unit not in RATE_UNITS:
        raise UnitError(f"rate unit {unit!r} is not accepted; accepted: {', '.join(sorted(RATE_UNITS))}")
    return unit


def rate_in_ug_kg_min(value: float, unit: str, weight_kg: float | None) -> float | None:
    """Rate of a weight-based agent in ug/kg/min, or None when it cannot be computed."""
    if unit == "ug/kg/min":
        return value
    if unit == "ng/kg/min":
        return value / 1000.0
    if unit == "ug/min":
        if weight_kg is None or weight_kg <= 0:
            return None  # Goradia 2021 NEE is per kg: mcg/min needs the patient's weight
        return value / weight_kg
    return None


def rate_in_units_per_min(value: float, unit: str) -> float | None:
    """Vasopressin rate in U/min, or None when the unit is not a vasopressin unit."""
    if unit == "U/min":
        return value
    if unit == "U/h":
        return value / 60.0  # MIMIC charts U/h and divides by 60 (MIT-LCP mimic-code, Goradia 2021 NEE)
    return None


def is_finite_number(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))
