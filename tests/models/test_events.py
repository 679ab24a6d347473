"""Event validation and unit normalisation at the boundary."""

from __future__ import annotations

from typing import Any

import pytest

from models.events import REJECT_CATEGORIES, InvalidEvent, LabResult, PatientContext, VitalSigns, parse_event
from models.labvalue import LabValue
from models.units import rate_in_ug_kg_min, rate_in_units_per_min

BASE = {"event_id": "e1", "patient_id": "p1", "time": "2024-01-01T10:00:00+00:00", "provenance": {"source": "t"}}


def make(**fields: Any) -> dict[str, Any]:
    return {**BASE, **fields}


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (make(kind="vitals", time="2024-01-01T10:00:00", sbp={"value": 80, "unit": "mm[Hg]"}), "time", "timezone"),
        (make(kind="vitals", temperature={"value": 24.0, "unit": "Cel"}), "temperature.value", "possible range"),
        (make(kind="vitals", temperature={"value": 120, "unit": "[degF]"}), "temperature.value", "possible range"),
        (make(kind="vitals", temperature={"value": float("nan"), "unit": "Cel"}), "temperature.value", "finite"),
        (make(kind="vitals"), "event", "at least one measure"),
        (make(kind="vitals", sbp={"value": 80, "unit": "kPa"}), "sbp.unit", "not accepted"),
        (make(kind="lab", analyte="ferritin", value=500, unit="mg/dL"), "unit", "not accepted for ferritin"),
        (make(kind="lab", analyte="ferritin", value=-1, unit="ng/mL"), "value", "greater than or equal"),
        (make(kind="lab", analyte="unobtainium", value=1, unit="ng/mL"), "analyte", "Input should be"),
        (make(kind="infusion", action="start", agent="norepinephrine", rate=5, unit="mg/h"), "unit", "not accepted"),
        (make(kind="infusion", action="start", agent="norepinephrine", rate=5), "unit", "needs a unit"),
        (make(kind="infusion", action="start", agent="norepinephrine", rate=-1, unit="ug/min"), "rate", "greater"),
        (make(kind="oxygen", device="nasal_cannula", flow_l_min=-2), "flow_l_min", "greater"),
        (make(kind="oxygen", device="tent"), "device", "Input should be"),
        (make(kind="neuro", ice_score=11), "ice_score", "less than or equal"),
        (make(kind="teleport"), "kind", "unknown event kind"),
        ({k: v for k, v in make(kind="dose", drug="tocilizumab").items() if k != "patient_id"}, "patient_id",
         "Field required"),
        (make(kind="dose", drug="tocilizumab", extra_field=1), "extra_field", "not permitted"),
        ("{not json", "event", "not valid JSON"),
        (b"\xff\xfe", "event", "not valid JSON"),
    ],
)
def test_invalid_input_names_the_field(raw: Any, field: str, words: str) -> None:
    with pytest.raises(InvalidEvent) as exc:
        parse_event(raw)
    assert exc.value.field == field, str(exc.value)
    assert words in exc.value.reason


@pytest.mark.parametrize(
    ("analyte", "value", "unit", "expected", "canonical"),
    [
        ("crp", 21.8, "mg/dL", 218.0, "mg/L"),
        ("crp", 96.77, "mg/L", 96.77, "mg/L"),
        ("fibrinogen", 1.2, "g/L", 120.0, "mg/dL"),
        ("triglycerides", 3.59, "mmol/L", 317.97, "mg/dL"),
        ("ferritin", 487, "ug/L", 487, "ng/mL"),
        ("platelets", 45, "10*3/uL", 45, "10*9/L"),
        ("hemoglobin", 85, "g/L", 8.5, "g/dL"),
        ("d_dimer", 2500, "ng/mL", 2.5, "ug/mL"),
        ("sil2r", 2400, "U/mL", 2400, "U/mL"),  # not convertible to pg/mL: kept apart
        ("sil2r", 93326, "pg/mL", 93326, "pg/mL"),
    ],
)
def test_lab_units_are_normalised(analyte: str, value: float, unit: str, expected: float, canonical: str) -> None:
    e = parse_event(make(kind="lab", analyte=analyte, value=value, unit=unit))
    assert isinstance(e, LabResult)
    assert e.value == pytest.approx(expected, rel=1e-3) and e.unit == canonical


def test_fahrenheit_is_converted() -> None:
    e = parse_event(make(kind="vitals", temperature={"value": 100.4, "unit": "[degF]"}))
    assert isinstance(e, VitalSigns) and e.temperature is not None
    assert e.temperature.value == pytest.approx(38.0) and e.temperature.unit == "Cel"


def test_weight_in_pounds_is_converted() -> None:
    e = parse_event(make(kind="context", weight={"value": 154, "unit": "[lb_av]"}))
    assert isinstance(e, PatientContext) and e.weight is not None
    assert e.weight.value == pytest.approx(69.85, abs=0.01)


def test_comparator_is_kept() -> None:
    e = parse_event(make(kind="lab", analyte="ferritin", value=202000, unit="ng/mL", comparator=">"))
    assert isinstance(e, LabResult) and e.comparator == ">" and e.value == 202000


def test_rate_conversions() -> None:
    assert rate_in_ug_kg_min(40, "ug/min", 80) == 0.5
    assert rate_in_ug_kg_min(40, "ug/min", None) is None
    assert rate_in_ug_kg_min(10, "ng/kg/min", None) == 0.01
    assert rate_in_units_per_min(2.4, "U/h") == pytest.approx(0.04)
    e = parse_event(make(kind="infusion", action="start", agent="norepinephrine", rate=8, unit="mcg/min"))
    assert e.unit == "ug/min"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "threshold", "above", "below"),
    [
        (LabValue(500), 400, True, False),
        (LabValue(202000, ">"), 10000, True, False),
        (LabValue(4000, ">"), 6000, None, None),
        (LabValue(50, "<"), 150, False, True),
        (LabValue(200, "<"), 150, None, None),
        (LabValue(150), 150, False, False),
    ],
)
def test_censored_comparisons(value: LabValue, threshold: float, above: bool | None, below: bool | None) -> None:
    assert value.above(threshold) is above
    assert value.below(threshold) is below


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (make(kind="neuro", ice_score=5, global_aphasia=True), "ice_score"),
        (make(kind="neuro", ice_score=3, unable_to_perform_ice=True), "ice_score"),
        (make(kind="infusion", action="start", agent="vasopressin", rate=2, unit="ug/kg/min"), "unit"),
        (make(kind="infusion", action="start", agent="angiotensin_ii", rate=20, unit="ug/min"), "unit"),
        (make(kind="infusion", action="start", agent="norepinephrine", rate=1e9, unit="ug/min"), "rate"),
    ],
)
def test_contradictory_or_implausible_input_is_rejected(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidEvent) as exc:
        parse_event(raw)
    assert exc.value.field == field


@pytest.mark.parametrize(
    ("raw", "category"),
    [
        (b"\xff\xfe", "not_json"),
        (b"not json", "not_json"),
        (b"[1, 2]", "not_json"),
        (b'{"kind": "zzz"}', "unknown_kind"),
        (b"{}", "missing_field"),
        (b'{"kind": "vitals"}', "missing_field"),
    ],
)
def test_rejections_carry_a_bounded_category(raw: bytes, category: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw)
    assert info.value.category == category
    assert info.value.category in REJECT_CATEGORIES


def test_a_measurement_is_checked_finite_by_pydantic_core_with_the_same_reason() -> None:
    """The finite check of every vital sign runs in pydantic-core (no Python validator on the hot
    path); the reason text and category stay those of the Python check."""
    from models.events import Measurement

    assert not Measurement.__pydantic_decorators__.field_validators
    for raw in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
        doc = (b'{"kind":"vitals","event_id":"e","patient_id":"p","time":"2024-01-01T00:00:00Z",'
               b'"provenance":{"source":"s"},"temperature":{"value":' + raw + b',"unit":"Cel"}}')
        with pytest.raises(InvalidEvent) as info:
            parse_event(doc)
        assert str(info.value) == "temperature.value: value must be a finite number"
        assert info.value.category == "invalid_value"
