"""Unit spellings feeds really send for an accepted UCUM unit (issue 15 item 15).

Native JSON, FHIR and HL7 v2 all reach models.units: the alias is read as its UCUM code, converted,
and recorded in the event's provenance, never silently. A unit that is not an alias is still rejected.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from alerts.config import Thresholds
from alerts.fold import apply
from models.events import InvalidEvent, LabResult, PatientContext, VitalSigns, parse_event
from models.records import CrsGradeChange
from models.state import PatientState
from models.units import resolve_unit
from streams.feeds.fhir import normalise_fhir
from streams.feeds.hl7v2 import normalise_hl7
from tests.streams.feeds.test_hl7v2 import oru

T = "2024-01-01T10:00:00+00:00"
UCUM = "http://unitsofmeasure.org"
MICRO_SIGN, GREEK_MU = "\u00b5", "\u03bc"


def native_lab(analyte: str, value: float, unit: str) -> LabResult:
    ev = parse_event({"kind": "lab", "event_id": "l1", "patient_id": "p1", "time": T, "analyte": analyte,
                      "value": value, "unit": unit, "provenance": {"source": "feed"}})
    assert isinstance(ev, LabResult)
    return ev


@pytest.mark.parametrize(("analyte", "value", "unit", "canonical_value", "canonical_unit", "ucum"), [
    ("ferritin", 950, "ng/ml", 950, "ng/mL", "ng/mL"),
    ("ferritin", 950, "NG/ML", 950, "ng/mL", "ng/mL"),
    ("ferritin", 950, f"{GREEK_MU}g/L", 950, "ng/mL", "ug/L"),
    ("ferritin", 950, f"{MICRO_SIGN}g/L", 950, "ng/mL", "ug/L"),
    ("ferritin", 950, "mcg/L", 950, "ng/mL", "ug/L"),
    ("fibrinogen", 120, "mg/dl", 120, "mg/dL", "mg/dL"),
    ("fibrinogen", 1.2, "g/l", 120, "mg/dL", "g/L"),
    ("crp", 9.7, "mg/dl", 97, "mg/L", "mg/dL"),
    ("platelets", 35, "K/uL", 35, "10*9/L", "10*3/uL"),
    ("platelets", 35, f"K/{GREEK_MU}L", 35, "10*9/L", "10*3/uL"),
    ("platelets", 35, "10^3/uL", 35, "10*9/L", "10*3/uL"),
    ("platelets", 35, "x10E3/uL", 35, "10*9/L", "10*3/uL"),
    ("anc", 0.4, "10^9/L", 0.4, "10*9/L", "10*9/L"),
    ("anc", 400, "cells/uL", 0.4, "10*9/L", "/uL"),
    ("alt", 250, "IU/L", 250, "U/L", "U/L"),
    ("hemoglobin", 8.1, "g/dl", 8.1, "g/dL", "g/dL"),
])
def test_native_lab_aliases_are_read_converted_and_recorded(
    analyte: str, value: float, unit: str, canonical_value: float, canonical_unit: str, ucum: str,
) -> None:
    ev = native_lab(analyte, value, unit)
    assert (round(ev.value, 6), ev.unit) == (canonical_value, canonical_unit)
    assert ev.provenance.assumption is not None
    assert repr(unit) in ev.provenance.assumption and repr(ucum) in ev.provenance.assumption


def test_a_count_per_microlitre_is_converted_not_taken_for_thousands() -> None:
    ev = native_lab("platelets", 40000, "/uL")  # 40,000 cells/uL = 40 x10^9/L
    assert ev.value == pytest.approx(40.0) and ev.unit == "10*9/L"
    assert ev.provenance.assumption is None  # /uL is itself UCUM: a conversion, not an alias


def test_the_ucum_code_itself_adds_no_note_and_a_round_trip_adds_none() -> None:
    assert native_lab("ferritin", 950, "ng/mL").provenance.assumption is None
    ev = native_lab("ferritin", 950, "ng/ml")
    again = parse_event(ev.model_dump(mode="json"))
    assert again == ev


@pytest.mark.parametrize("unit", ["mg", "ng", "mmol/L", "kg/L", "M/uL", "/L"])
def test_a_unit_that_is_no_alias_is_still_rejected(unit: str) -> None:
    with pytest.raises(InvalidEvent, match="not accepted for ferritin"):
        native_lab("ferritin", 950, unit)


def test_case_variants_never_cross_milli_and_mega_or_micro_and_milli() -> None:
    assert resolve_unit("MG/DL", ("mg/dL", "g/L")) == ("mg/dL", "unit 'MG/DL' read as UCUM 'mg/dL' (case variant)")
    assert resolve_unit("mU/L", ("U/L",))[0] == "mU/L"  # not U/L
    assert resolve_unit("ug/mL", ("ng/mL",))[0] == "ug/mL"  # not ng/mL


@pytest.mark.parametrize(("unit", "celsius"), [("degF", 38.5), ("deg F", 38.5), ("[degF]", 38.5), ("°F", 38.5)])
def test_fahrenheit_spellings(unit: str, celsius: float) -> None:
    ev = parse_event({"kind": "vitals", "event_id": "v1", "patient_id": "p1", "time": T,
                      "temperature": {"value": 101.3, "unit": unit}, "provenance": {"source": "feed"}})
    assert isinstance(ev, VitalSigns) and ev.temperature is not None
    assert ev.temperature.value == pytest.approx(celsius) and ev.temperature.unit == "Cel"
    assert (ev.provenance.assumption is None) == (unit == "[degF]")


def test_baseline_and_weight_aliases_are_recorded_on_the_context() -> None:
    ev = parse_event({"kind": "context", "event_id": "c1", "patient_id": "p1", "time": T,
                      "baselines": [{"analyte": "platelets", "value": 180, "unit": "K/uL"}],
                      "weight": {"value": 154, "unit": "lbs"}, "provenance": {"source": "feed", "assumption": "x"}})
    assert isinstance(ev, PatientContext)
    assert ev.baselines[0].unit == "10*9/L" and ev.weight is not None and ev.weight.unit == "kg"
    assert ev.provenance.assumption is not None
    assert ev.provenance.assumption.startswith("x; ") and "'K/uL'" in ev.provenance.assumption
    assert "'lbs'" in ev.provenance.assumption


def fhir_obs(code: str, value: float, unit: str, rid: str = "o1") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": T,
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}


@pytest.mark.parametrize(("code", "value", "unit", "analyte", "expected"), [
    ("2276-4", 950, "ng/ml", "ferritin", 950),
    ("2276-4", 950, f"{GREEK_MU}g/L", "ferritin", 950),
    ("2276-4", 950, "mcg/L", "ferritin", 950),
    ("3255-7", 120, "mg/dl", "fibrinogen", 120),
    ("777-3", 35, "K/uL", "platelets", 35),
    ("751-8", 300, "/uL", "anc", 0.3),
])
def test_fhir_aliases_reach_the_fold(code: str, value: float, unit: str, analyte: str, expected: float) -> None:
    n = normalise_fhir(json.dumps(fhir_obs(code, value, unit)), strict=True)
    assert not n.rejected, n.rejected[0].reason
    (ev,) = n.events
    assert isinstance(ev, LabResult) and ev.analyte.value == analyte and ev.value == pytest.approx(expected)


def test_fhir_degf_temperature_is_read() -> None:
    n = normalise_fhir(json.dumps(fhir_obs("8310-5", 101.3, "degF")), strict=True)
    assert not n.rejected, n.rejected[0].reason
    (ev,) = n.events
    assert isinstance(ev, VitalSigns) and ev.temperature is not None
    assert ev.temperature.value == pytest.approx(38.5)
    assert ev.provenance.assumption is not None and "'degF'" in ev.provenance.assumption


def test_fhir_rejects_a_unit_that_is_no_alias() -> None:
    n = normalise_fhir(json.dumps(fhir_obs("2276-4", 950, "mg")), strict=True)
    assert not n.events and "not accepted" in n.rejected[0].reason


@pytest.mark.parametrize(("obx", "analyte", "value"), [
    ("OBX|1|NM|2276-4^Ferritin^LN||950|ng/ml|||||F", "ferritin", 950),
    (f"OBX|1|NM|2276-4^Ferritin^LN||950|{GREEK_MU}g/L|||||F", "ferritin", 950),
    ("OBX|1|NM|3255-7^Fibrinogen^LN||120|mg/dl|||||F", "fibrinogen", 120),
    ("OBX|1|NM|777-3^Platelets^LN||35|K/uL|||||F", "platelets", 35),
    ("OBX|1|NM|777-3^Platelets^LN||35|10\\S\\3/uL|||||F", "platelets", 35),  # 10^3/uL, ^ escaped
])
def test_hl7_aliases(obx: str, analyte: str, value: float) -> None:
    n = normalise_hl7(oru(obx), strict=True)
    assert not n.rejected, n.rejected[0].reason
    (ev,) = n.events
    assert isinstance(ev, LabResult) and ev.analyte.value == analyte and ev.value == pytest.approx(value)
    assert ev.provenance.assumption is not None and "read as UCUM" in ev.provenance.assumption


def test_an_aliased_ferritin_and_fibrinogen_reach_the_iec_hs_logic() -> None:
    cfg = Thresholds()
    s = PatientState("p1")
    for ev in (native_lab("ferritin", 3000, "ng/ml"), native_lab("fibrinogen", 90, "mg/dl")):
        apply(s, ev, cfg)
    assert s.iec_hs_level == 2 and {"ferritin", "hypofibrinogenemia"} <= set(s.iec_hs_criteria)


def test_fhir_keeps_the_local_offset_for_day_numbers_and_reads_degf() -> None:
    """Issue 15 item 13 through the FHIR adapter: CAR-T at 20:00 -05:00, fever next local morning is Day +1."""
    med = {"resourceType": "MedicationAdministration", "id": "m1", "status": "completed",
           "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                     "code": "1986438"}]},
           "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-03-01T20:00:00-05:00"}
    obs = {**fhir_obs("8310-5", 102.0, "degF"), "effectiveDateTime": "2024-03-02T10:00:00-05:00"}
    n = normalise_fhir(json.dumps(med) + "\n" + json.dumps(obs), strict=True)
    assert not n.rejected, n.rejected[0].reason
    s = PatientState("p1")
    records = [r for e in n.events for r in apply(s, e, Thresholds())]
    assert s.day0_offset_min == -300
    onset = next(r for r in records if isinstance(r, CrsGradeChange))
    assert onset.day == 1 and any("Day +1 10:00 (UTC-05:00)" in e for e in onset.evidence)


@pytest.mark.parametrize(("analyte", "value"), [("platelets", 35), ("anc", 0.5), ("wbc", 1.2)])
def test_thousands_mislabelled_as_per_microlitre_are_refused_not_read_1000_times_low(analyte: str,
                                                                                       value: float) -> None:
    with pytest.raises(InvalidEvent, match="10\\*3/uL"):
        native_lab(analyte, value, "/uL")
    assert native_lab("anc", 0, "/uL").value == 0  # an ANC of 0 cells/uL is real (aplasia)
