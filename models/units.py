"""Unit normalisation: the one place where units are converted.

Every measurement is stored in a canonical unit. Conversions are those that the
accepted UCUM units per code of the FHIR R4 input contract require (docs/feeds.md;
the contract's unit conversions).
"""

from __future__ import annotations

import math
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
    "µg/L": "ug/L",
    "x10*9/L": "10*9/L",
    "10^9/L": "10*9/L",
    "x10*3/uL": "10*3/uL",
    "10^3/uL": "10*3/uL",
}


def canonical_unit_name(unit: str) -> str:
    unit = unit.strip()
    return _ALIASES.get(unit, unit)


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
    "platelets": ("10*9/L", {"10*9/L": 1.0, "10*3/uL": 1.0}),
    "anc": ("10*9/L", {"10*9/L": 1.0, "10*3/uL": 1.0}),
    "wbc": ("10*9/L", {"10*9/L": 1.0, "10*3/uL": 1.0}),
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


def normalise_lab(analyte: str, value: float, unit: str) -> tuple[float, str]:
    """Return (value, unit) in the analyte's canonical unit, or raise UnitError."""
    if analyte not in LAB_UNITS:
        raise UnitError(f"unknown analyte {analyte!r}")
    unit = canonical_unit_name(unit)
    canonical, accepted = LAB_UNITS[analyte]
    if unit in SEPARATE_UNITS.get(analyte, frozenset()):
        return value, unit
    factor = accepted.get(unit)
    if factor is None:
        allowed = sorted(set(accepted) | SEPARATE_UNITS.get(analyte, frozenset()))
        raise UnitError(f"unit {unit!r} is not accepted for {analyte}; accepted: {', '.join(allowed)}")
    return value * factor, canonical


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
    canonical, accepted = VITAL_UNITS[measure]
    unit = canonical_unit_name(unit)
    if unit not in accepted:
        raise UnitError(f"unit {unit!r} is not accepted for {measure}; accepted: {', '.join(sorted(accepted))}")
    if unit == "[degF]":
        return fahrenheit_to_celsius(value), canonical
    return value, canonical


WEIGHT_UNITS: Final[dict[str, float]] = {"kg": 1.0, "[lb_av]": 0.45359237, "g": 0.001}


def normalise_weight_kg(value: float, unit: str) -> float:
    unit = canonical_unit_name(unit)
    factor = WEIGHT_UNITS.get(unit)
    if factor is None:
        raise UnitError(f"unit {unit!r} is not accepted for body weight; accepted: {', '.join(sorted(WEIGHT_UNITS))}")
    return value * factor


# Vasoactive infusion rates. Catecholamine-type agents are compared in ug/kg/min;
# vasopressin in U/min (Goradia 2021: "dose in U/min, not per kg").
RATE_UNITS: Final[frozenset[str]] = frozenset({"ug/min", "ug/kg/min", "U/min", "U/h", "ng/kg/min"})


def normalise_rate_unit(unit: str) -> str:
    unit = canonical_unit_name(unit)
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
