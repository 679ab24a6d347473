"""FHIR R4 adapter: one test per row of the FHIR R4 input contract (docs/feeds.md), and the published examples.

Expected mappings and conversion factors are written out here from the contract (and
the contract's unit conversions), not taken from the adapter's own tables.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from alerts.crs import oxygen_axis
from models.events import ClinicalEvent, DrugDose, Infusion, LabResult, OxygenSupport, PatientContext, VitalSigns
from models.records import CrsGradeChange, Retraction
from models.state import state_to_json
from models.vocabulary import VASOACTIVE_ROLE, DrugClass, OxygenDevice, VasoactiveRole, drug_class
from streams.feeds.fhir import normalise_fhir
from streams.feeds.normalised import Normalised
from streams.feeds.terminology import LOINC_CODES, RXNORM_DRUGS, SNOMED_DEVICE
from streams.replay import Replayer
from tests.streams.feeds import fhir_examples as ex

T = "2024-01-01T10:00:00+00:00"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def obs(code: str, value: float | None = None, unit: str | None = None, rid: str = "o1", **kw: Any) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Observation", "id": rid, "status": "final",
                           "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                           "subject": {"reference": "Patient/p1"}, "effectiveDateTime": T}
    if value is not None:
        res["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    res.update(kw)
    return {k: v for k, v in res.items() if v is not None}


def med(rx: str | None = None, text: str | None = None, status: str = "completed", rid: str = "m1",
        **kw: Any) -> dict[str, Any]:
    concept: dict[str, Any] = {}
    if rx is not None:
        concept["coding"] = [{"system": RXNORM, "code": rx}]
    if text is not None:
        concept["text"] = text
    res: dict[str, Any] = {"resourceType": "MedicationAdministration", "id": rid, "status": status,
                           "medicationCodeableConcept": concept, "subject": {"reference": "Patient/p1"}}
    res.update(kw)
    if "effectivePeriod" not in res and "effectiveDateTime" not in res:
        res["effectiveDateTime"] = T
    return res


def run(res: Any, strict: bool = True) -> Normalised:
    n = normalise_fhir(json.dumps(res), "test", strict=strict)
    assert n.units == n.accepted + len(n.rejected) + len(n.ignored)
    return n


def one(res: Any) -> ClinicalEvent:
    n = run(res)
    assert not n.rejected, n.rejected[0].reason
    assert len(n.events) == 1, n.events
    return n.events[0]


def rejected(res: Any, strict: bool = True) -> tuple[str, str]:
    n = run(res, strict)
    assert not n.events and len(n.rejected) == 1, (n.events, n.rejected)
    return n.rejected[0].reason, n.rejected[0].category


# ---------------------------------------------------------------- Observation table

# code -> (native kind, measure or analyte, {accepted unit: factor to the canonical unit}, a plausible value)
OBSERVATIONS: dict[str, tuple[str, str, dict[str, float], float]] = {
    "8310-5": ("vitals", "temperature", {"Cel": 1.0}, 37.0),
    "8867-4": ("vitals", "heart_rate", {"/min": 1.0}, 80.0),
    "8480-6": ("vitals", "sbp", {"mm[Hg]": 1.0}, 100.0),
    "8462-4": ("vitals", "dbp", {"mm[Hg]": 1.0}, 60.0),
    "8478-0": ("vitals", "map", {"mm[Hg]": 1.0}, 75.0),
    "59408-5": ("vitals", "spo2", {"%": 1.0}, 95.0),
    "2708-6": ("vitals", "spo2", {"%": 1.0}, 95.0),
    "9279-1": ("vitals", "resp_rate", {"/min": 1.0}, 20.0),
    "3151-8": ("oxygen", "flow_l_min", {"L/min": 1.0}, 4.0),
    "19941-4": ("oxygen", "flow_l_min", {"L/min": 1.0}, 4.0),
    "3150-0": ("oxygen", "fio2_pct", {"%": 1.0}, 40.0),
    "29463-7": ("context", "weight", {"kg": 1.0, "[lb_av]": 0.45359237, "g": 0.001}, 70.0),
    "2276-4": ("lab", "ferritin", {"ng/mL": 1.0, "ug/L": 1.0}, 500.0),
    "1988-5": ("lab", "crp", {"mg/L": 1.0, "mg/dL": 10.0}, 5.0),
    "27415-9": ("lab", "ifn_gamma", {"pg/mL": 1.0}, 5.0),
    "26881-3": ("lab", "il6", {"pg/mL": 1.0}, 5.0),
    "76039-7": ("lab", "sil2r", {"pg/mL": 1.0}, 5.0),
    "98115-9": ("lab", "cxcl9", {"pg/mL": 1.0}, 5.0),
    "3255-7": ("lab", "fibrinogen", {"mg/dL": 1.0, "g/L": 100.0}, 2.0),
    "1742-6": ("lab", "alt", {"U/L": 1.0}, 30.0),
    "1920-8": ("lab", "ast", {"U/L": 1.0}, 30.0),
    "2532-0": ("lab", "ldh", {"U/L": 1.0}, 200.0),
    "14804-9": ("lab", "ldh", {"U/L": 1.0}, 200.0),
    "2571-8": ("lab", "triglycerides", {"mg/dL": 1.0, "mmol/L": 88.57}, 2.0),
    "1975-2": ("lab", "bilirubin", {"mg/dL": 1.0}, 1.0),
    "777-3": ("lab", "platelets", {"10*3/uL": 1.0, "10*9/L": 1.0, "/uL": 0.001}, 150.0),
    "751-8": ("lab", "anc", {"10*3/uL": 1.0, "10*9/L": 1.0, "/uL": 0.001}, 2.0),
    "6690-2": ("lab", "wbc", {"10*3/uL": 1.0, "10*9/L": 1.0, "/uL": 0.001}, 5.0),
    "718-7": ("lab", "hemoglobin", {"g/dL": 1.0, "g/L": 0.1}, 12.0),
    "2160-0": ("lab", "creatinine", {"mg/dL": 1.0}, 1.0),
    "2524-7": ("lab", "lactate", {"mmol/L": 1.0}, 1.5),
    "32693-4": ("lab", "lactate", {"mmol/L": 1.0}, 1.5),
    "2518-9": ("lab", "lactate", {"mmol/L": 1.0}, 1.5),
    "48065-7": ("lab", "d_dimer", {"ug/mL": 1.0, "ng/mL": 0.001}, 500.0),
    "48066-5": ("lab", "d_dimer", {"ug/mL": 1.0, "ng/mL": 0.001}, 500.0),
    # Contract extensions (issue 14): the CBC counts without method and triglyceride 35217-9.
    "26464-8": ("lab", "wbc", {"10*3/uL": 1.0, "10*9/L": 1.0}, 5.0),
    "26515-7": ("lab", "platelets", {"10*3/uL": 1.0, "10*9/L": 1.0}, 150.0),
    "26499-4": ("lab", "anc", {"10*3/uL": 1.0, "10*9/L": 1.0}, 2.0),
    "35217-9": ("lab", "triglycerides", {"mg/dL": 1.0, "mmol/L": 88.57}, 2.0),
}
ROWS = [(code, unit, factor) for code, (_, _, units, _) in OBSERVATIONS.items() for unit, factor in units.items()]


def test_the_adapter_knows_exactly_the_contract_codes() -> None:
    assert set(LOINC_CODES) == set(OBSERVATIONS) | {"85354-9", "55284-4", "107117-4"}


def _native_value(ev: ClinicalEvent, kind: str, name: str) -> tuple[float, str | None]:
    if isinstance(ev, VitalSigns):
        m = getattr(ev, name)
        return m.value, m.unit
    if isinstance(ev, LabResult):
        assert ev.analyte.value == name
        return ev.value, ev.unit
    if isinstance(ev, PatientContext):
        assert ev.weight is not None
        return ev.weight.value, ev.weight.unit
    assert isinstance(ev, OxygenSupport) and ev.device is None
    value = getattr(ev, name)
    assert value is not None
    return value, None


@pytest.mark.parametrize(("code", "unit", "factor"), ROWS)
def test_each_loinc_code_and_accepted_unit(code: str, unit: str, factor: float) -> None:
    kind, name, _, value = OBSERVATIONS[code]
    sent = round(value / factor, 6)  # the same quantity in this unit
    ev = one(obs(code, sent, unit))
    assert ev.kind == kind and ev.patient_id == "p1" and ev.event_id == "Observation/o1"
    got, _ = _native_value(ev, kind, name)
    assert got == pytest.approx(sent * factor)


@pytest.mark.parametrize("code", sorted(OBSERVATIONS))
def test_a_unit_outside_the_table_is_rejected_with_the_accepted_ones(code: str) -> None:
    reason, category = rejected(obs(code, 1.0, "mg"))
    accepted = ", ".join(OBSERVATIONS[code][2]) + (", [degF]" if code == "8310-5" else "")  # [degF]: own test
    assert reason == f"unit 'mg' not accepted for LOINC {code} ({LOINC_CODES[code][1]}): accepted {accepted}"
    assert category == "invalid_value"


def test_the_contract_example_reason_for_ferritin() -> None:
    assert rejected(obs("2276-4", 900, "mg"))[0] == (
        "unit 'mg' not accepted for LOINC 2276-4 (ferritin): accepted ng/mL, ug/L")


@pytest.mark.parametrize(("code", "unit", "measure"), [("8867-4", "{beat}/min", "heart_rate"),
                                                      ("8867-4", "{beats}/min", "heart_rate"),
                                                      ("9279-1", "{breath}/min", "resp_rate")])
def test_annotated_per_minute_units_are_read_as_per_minute(code: str, unit: str, measure: str) -> None:
    # Contract extension (issue 14): UCUM annotations carry no meaning; US Core sends {beats}/min.
    ev = one(obs(code, 80, unit))
    assert isinstance(ev, VitalSigns) and getattr(ev, measure).value == 80 and getattr(ev, measure).unit == "/min"


def test_an_annotated_per_minute_unit_is_not_a_percentage() -> None:
    reason, _ = rejected(obs("59408-5", 95, "{beats}/min"))
    assert reason == ("unit '{beats}/min' not accepted for LOINC 59408-5 (oxygen saturation by pulse oximetry): "
                      "accepted %")
    reason, _ = rejected(obs("8867-4", 80, "{cells}/min"))
    assert "'{cells}/min' not accepted" in reason


def test_fahrenheit_is_converted() -> None:
    ev = one(obs("8310-5", 102.2, "[degF]"))
    assert isinstance(ev, VitalSigns) and ev.temperature is not None
    assert ev.temperature.unit == "Cel" and ev.temperature.value == pytest.approx(39.0)


def test_blood_pressure_panel_gives_one_vitals_event() -> None:
    res = obs("85354-9", component=[
        {"code": {"coding": [{"system": "http://loinc.org", "code": c}]},
         "valueQuantity": {"value": v, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}}
        for c, v in (("8480-6", 85), ("8462-4", 50), ("8478-0", 62))])
    ev = one(res)
    assert isinstance(ev, VitalSigns) and ev.sbp and ev.dbp and ev.map
    assert (ev.sbp.value, ev.dbp.value, ev.map.value) == (85, 50, 62)


@pytest.mark.parametrize("flow_code", ["3151-8", "19941-4"])
def test_oxygen_flow_as_a_component_of_pulse_oximetry(flow_code: str) -> None:
    res = obs("59408-5", 91, "%", component=[
        {"code": {"coding": [{"system": "http://loinc.org", "code": flow_code}]},
         "valueQuantity": {"value": 8, "unit": "L/min", "system": UCUM, "code": "L/min"}}])
    n = run(res)
    assert [e.kind for e in n.events] == ["vitals", "oxygen"] and n.accepted == 1
    spo2, flow = n.events
    assert isinstance(flow, OxygenSupport) and flow.flow_l_min == 8 and flow.device is None
    assert spo2.logical_id == flow.logical_id == "Observation/o1"  # replaced or retracted together


def test_fio2_is_a_component_of_pulse_oximetry_as_in_us_core() -> None:
    # US Core pulse oximetry: components 3151-8 (flow) and 3150-0 (concentration); contract extension.
    res = obs("59408-5", 91, "%", component=[
        {"code": {"coding": [{"system": "http://loinc.org", "code": "3150-0"}]},
         "valueQuantity": {"value": 40, "unit": "%", "system": UCUM, "code": "%"}}])
    n = run(res)
    assert not n.rejected and len(n.events) == 2
    spo2, fio2 = n.events
    assert isinstance(spo2, VitalSigns) and spo2.spo2 is not None and spo2.spo2.value == 91
    assert isinstance(fio2, OxygenSupport) and fio2.fio2_pct == 40 and fio2.flow_l_min is None
    ev = one(obs("3150-0", 40, "%"))  # FiO2 alone is a contract row
    assert isinstance(ev, OxygenSupport) and ev.fio2_pct == 40


def test_heart_rate_is_not_a_component_of_pulse_oximetry() -> None:
    res = obs("59408-5", 91, "%", component=[
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
         "valueQuantity": {"value": 80, "unit": "/min", "system": UCUM, "code": "/min"}}])
    reason, category = rejected(res)
    assert reason == ("component[0] LOINC 8867-4 is not a component of 59408-5 (contract: only the inhaled oxygen "
                      "flow rate 3151-8 (also 19941-4) and concentration 3150-0 are components of pulse oximetry)")
    assert category == "unsupported"


def test_a_blood_pressure_panel_component_outside_the_panel_is_rejected_with_the_rule() -> None:
    res = obs("85354-9", component=[
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
         "valueQuantity": {"value": 80, "unit": "/min", "system": UCUM, "code": "/min"}}])
    reason, _ = rejected(res)
    assert reason == ("component[0] LOINC 8867-4 is not a component of 85354-9 (contract: the blood pressure panel "
                      "85354-9 has the components 8480-6 / 8462-4 / 8478-0)")


def test_comparator_is_kept() -> None:
    q = {"value": 202000, "comparator": ">", "unit": "ng/mL", "system": UCUM, "code": "ng/mL"}
    ev = one(obs("2276-4", valueQuantity=q))
    assert isinstance(ev, LabResult) and ev.comparator == ">" and ev.value == 202000


def test_comparator_on_a_vital_sign_is_rejected_not_dropped() -> None:
    q = {"value": 45, "comparator": "<", "unit": "/min", "system": UCUM, "code": "/min"}
    reason, _ = rejected(obs("8867-4", valueQuantity=q))
    assert "comparator" in reason


@pytest.mark.parametrize("comparator", ["<", "<=", ">=", ">"])
def test_each_comparator_is_kept(comparator: str) -> None:
    q = {"value": 3, "comparator": comparator, "unit": "pg/mL", "system": UCUM, "code": "pg/mL"}
    ev = one(obs("26881-3", valueQuantity=q))
    assert isinstance(ev, LabResult) and (ev.comparator, ev.value) == (comparator, 3)


@pytest.mark.parametrize("comparator", ["=", "ad", "=>", "", 1])
def test_a_comparator_outside_the_contract_is_rejected(comparator: Any) -> None:
    q = {"value": 3, "comparator": comparator, "unit": "pg/mL", "system": UCUM, "code": "pg/mL"}
    reason, category = rejected(obs("26881-3", valueQuantity=q), strict=False)
    assert reason == f"valueQuantity.comparator {comparator!r} is not one of <, <=, >=, > (contract)"
    assert category == "invalid_value"


@pytest.mark.parametrize("system", ["http://snomed.info/sct", "urn:local:units", None])
def test_a_value_quantity_whose_system_is_not_ucum_is_rejected(system: str | None) -> None:
    res = obs("2276-4", 500, "ng/mL")
    res["valueQuantity"]["system"] = system
    reason, category = rejected(res, strict=False)
    assert reason == f"valueQuantity.system {system!r} is not UCUM (http://unitsofmeasure.org) (contract)"
    assert category == "invalid_value"


def test_soluble_il2_receptor_in_units_per_ml_is_rejected() -> None:
    # contract: sCD25 (mass) 76039-7 in pg/mL, "not convertible to U/mL"
    reason, category = rejected(obs("76039-7", 1200, "U/mL"))
    assert reason == "unit 'U/mL' not accepted for LOINC 76039-7 (soluble IL-2 receptor (mass)): accepted pg/mL"
    assert category == "invalid_value"


def test_event_time_is_effective_and_result_time_is_issued() -> None:
    ev = one(obs("2276-4", 500, "ng/mL", effectiveDateTime=None, effectivePeriod={"start": T},
                 issued="2024-01-01T13:30:00+01:00"))
    assert ev.time.isoformat() == T and ev.recorded_time is not None
    assert ev.recorded_time.isoformat() == "2024-01-01T13:30:00+01:00"


def _without(res: dict[str, Any], key: str) -> dict[str, Any]:
    res = copy.deepcopy(res)
    res.pop(key)
    return res


def test_a_time_without_offset_is_rejected() -> None:
    reason, category = rejected(obs("8867-4", 80, "/min", effectiveDateTime="2024-01-01T10:00:00"))
    assert "no UTC offset" in reason and category == "invalid_value"
    reason, _ = rejected(obs("8867-4", 80, "/min", issued="2024-01-01T12:00:00.123"))
    assert reason.startswith("issued") and "no UTC offset" in reason



@pytest.mark.parametrize(("when", "expected"), [
    ("2024-01-01T10:00:00+05:30", "2024-01-01T10:00:00+05:30"),
    ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00+00:00"),
    ("2024-01-01T10:00:00.123456789-04:00", "2024-01-01T10:00:00.123456-04:00"),
])
def test_times_with_an_offset_keep_the_instant(when: str, expected: str) -> None:
    ev = one(obs("8867-4", 80, "/min", effectiveDateTime=when))
    assert ev.time.isoformat() == expected


@pytest.mark.parametrize(("when", "why"), [("2024-02-30T10:00:00+00:00", "day is out of range"),
                                           ("2024-01-01T10:00:00+24:00", "offset"),
                                           ("2024-01-01T25:00:00+00:00", "hour")])
def test_an_impossible_date_time_is_rejected(when: str, why: str) -> None:
    reason, category = rejected(obs("8867-4", 80, "/min", effectiveDateTime=when))
    assert reason.startswith("effectiveDateTime") and why in reason and category == "invalid_value"

@pytest.mark.parametrize(("key", "field"), [("subject", "subject"), ("code", "code"),
                                            ("valueQuantity", "valueQuantity"), ("effectiveDateTime", "effective")])
def test_missing_subject_code_value_or_time_is_rejected(key: str, field: str) -> None:
    reason, category = rejected(_without(obs("8867-4", 80, "/min"), key), strict=False)
    assert field in reason and category == "missing_field"


@pytest.mark.parametrize("reference", ["Group/g1", "Device/d1", "p1", "Patient/", "https://ehr.example/Patient"])
def test_a_subject_that_is_not_a_patient_is_rejected(reference: str) -> None:
    reason, category = rejected(obs("8867-4", 80, "/min", subject={"reference": reference}), strict=False)
    assert reason == f"subject.reference {reference!r} is not Patient/<id> (contract)" and category == "invalid_value"


@pytest.mark.parametrize(("value", "why"), [(float("nan"), "malformed JSON"), (float("inf"), "malformed JSON"),
                                            (1e308 * 10, "malformed JSON"), ("80", "number"), (True, "number")])
def test_a_value_that_is_not_a_finite_number_is_rejected(value: Any, why: str) -> None:
    res = obs("8867-4", 80, "/min")
    res["valueQuantity"]["value"] = value
    reason, _ = rejected(res, strict=False)
    assert why in reason


@pytest.mark.parametrize(("code", "value", "unit"), [("8310-5", 24.9, "Cel"), ("8310-5", 45.1, "Cel"),
                                                     ("8310-5", 115.0, "[degF]"), ("2276-4", -1, "ng/mL"),
                                                     ("3151-8", -2, "L/min"), ("59408-5", 101, "%")])
def test_physiologically_impossible_values_are_rejected(code: str, value: float, unit: str) -> None:
    reason, category = rejected(obs(code, value, unit))
    assert category == "invalid_value" and reason


def test_unknown_loinc_and_unknown_resource_type_are_rejected() -> None:
    reason, category = rejected(obs("1554-5", 182, "mg/dL"))
    assert reason == "LOINC 1554-5 is not in the contract's Observation table" and category == "unsupported"
    reason, category = rejected({"resourceType": "Patinet", "id": "p1"})  # not a FHIR R4 resource type
    assert "Patinet" in reason and category == "unknown_kind"


# ---------------------------------------------------------------- method of oxygen delivery

# SNOMED CT code -> (device, ASTCT hypoxia grade with no flow known), from the contract's table
METHODS: dict[str, tuple[OxygenDevice, int]] = {
    "722742002": (OxygenDevice.ROOM_AIR, 0),
    "425478008": (OxygenDevice.BLOW_BY, 2),
    "336623009": (OxygenDevice.NASAL_CANNULA, 2),
    "371907003": (OxygenDevice.NASAL_CANNULA, 2),
    "426854004": (OxygenDevice.HIGH_FLOW_NASAL_CANNULA, 3),
    "870533002": (OxygenDevice.HIGH_FLOW_NASAL_CANNULA, 3),
    "1259025002": (OxygenDevice.HIGH_FLOW_NASAL_CANNULA, 3),
    "336602003": (OxygenDevice.FACEMASK, 3),
    "371908008": (OxygenDevice.FACEMASK, 3),
    "428285009": (OxygenDevice.VENTURI, 3),
    "465433006": (OxygenDevice.VENTURI, 3),
    "429253002": (OxygenDevice.VENTURI, 3),
    "427591007": (OxygenDevice.NON_REBREATHER, 3),
    "47545007": (OxygenDevice.CPAP, 4),
    "243142003": (OxygenDevice.BIPAP, 4),
    "1186618000": (OxygenDevice.BIPAP, 4),
    "428311008": (OxygenDevice.BIPAP, 4),
    "447837008": (OxygenDevice.BIPAP, 4),
    "1258985005": (OxygenDevice.INVASIVE_VENTILATION, 4),
    "40617009": (OxygenDevice.INVASIVE_VENTILATION, 4),
    "112798008": (OxygenDevice.INVASIVE_VENTILATION, 4),
}


def method(sct: str) -> dict[str, Any]:
    return obs("107117-4", valueCodeableConcept={"coding": [{"system": "http://snomed.info/sct", "code": sct}]})


def test_the_adapter_knows_exactly_the_contract_methods() -> None:
    assert set(SNOMED_DEVICE) == set(METHODS)


@pytest.mark.parametrize("sct", sorted(METHODS))
def test_each_oxygen_method_and_its_astct_class(sct: str) -> None:
    device, grade = METHODS[sct]
    ev = one(method(sct))
    assert isinstance(ev, OxygenSupport) and ev.device is device
    got, uncertain = oxygen_axis(device, None)
    assert got == grade
    assert (uncertain is not None) == (device is OxygenDevice.NASAL_CANNULA)  # no flow known: flagged


@pytest.mark.parametrize(("flow", "grade"), [(6.0, 2), (6.5, 3)])
def test_nasal_cannula_is_low_flow_up_to_6_and_high_flow_above(flow: float, grade: int) -> None:
    r = Replayer()
    r.feed_normalised(run(med("1986438", effectiveDateTime="2024-01-01T00:00:00+00:00", rid="cart")))
    r.feed_normalised(run(obs("8310-5", 38.6, "Cel", rid="t")))
    r.feed_normalised(run(method("336623009") | {"id": "m", "effectiveDateTime": "2024-01-01T11:00:00+00:00"}))
    r.feed_normalised(run(obs("3151-8", flow, "L/min", rid="f", effectiveDateTime="2024-01-01T11:00:00+00:00")))
    assert r.logs["p1"].state.crs_grade == grade


def test_a_new_method_replaces_the_previous_one_extubation_to_nasal_cannula() -> None:
    r = Replayer()
    r.feed_normalised(run(med("1986438", effectiveDateTime="2024-01-01T00:00:00+00:00", rid="cart")))
    r.feed_normalised(run(obs("8310-5", 38.6, "Cel", rid="t")))
    r.feed_normalised(run(method("1258985005") | {"id": "vent", "effectiveDateTime": "2024-01-01T10:30:00+00:00"}))
    state = r.logs["p1"].state
    assert state.oxygen is not None and state.oxygen.name == "invasive_ventilation" and state.crs_grade == 4
    # extubation: a new observation with the new method (contract)
    r.feed_normalised(run(method("336623009") | {"id": "nc", "effectiveDateTime": "2024-01-01T12:00:00+00:00"}))
    state = r.logs["p1"].state
    assert state.oxygen is not None and state.oxygen.name == "nasal_cannula"
    assert state.crs_grade == 2  # nasal cannula with no flow known: at least 2


def test_unknown_method_is_rejected() -> None:
    reason, category = rejected(method("123456"))
    assert "123456" in reason and category == "unsupported"


# ---------------------------------------------------------------- MedicationAdministration table

# RxNorm -> (generic name, role): vasoactive role or dose class, from the contract's table
DRUGS: dict[str, tuple[str, VasoactiveRole | DrugClass]] = {
    "7512": ("norepinephrine", VasoactiveRole.VASOPRESSOR),
    "3992": ("epinephrine", VasoactiveRole.VASOPRESSOR),
    "8163": ("phenylephrine", VasoactiveRole.VASOPRESSOR),
    "3628": ("dopamine", VasoactiveRole.VASOPRESSOR),
    "11149": ("vasopressin", VasoactiveRole.VASOPRESSIN),
    "3616": ("dobutamine", VasoactiveRole.INOTROPE),
    "52769": ("milrinone", VasoactiveRole.INOTROPE),
    "612865": ("tocilizumab", DrugClass.IL6R_BLOCKADE),
    "1535218": ("siltuximab", DrugClass.IL6_BLOCKADE),
    "3264": ("dexamethasone", DrugClass.CORTICOSTEROID),
    "6902": ("methylprednisolone", DrugClass.CORTICOSTEROID),
    "5492": ("hydrocortisone", DrugClass.CORTICOSTEROID),
    "72435": ("anakinra", DrugClass.IL1_BLOCKADE),
    "1193326": ("ruxolitinib", DrugClass.JAK_INHIBITOR),
    "2104604": ("emapalumab", DrugClass.IFNG_BLOCKADE),
    "4179": ("etoposide", DrugClass.CYTOTOXIC),
    "161": ("acetaminophen", DrugClass.ANTIPYRETIC),
    "1986438": ("tisagenlecleucel", DrugClass.CAR_T),
    "2479136": ("lisocabtagene maraleucel", DrugClass.CAR_T),
    "2536430": ("idecabtagene vicleucel", DrugClass.CAR_T),
    "2594775": ("ciltacabtagene autoleucel", DrugClass.CAR_T),
    "2387277": ("brexucabtagene autoleucel", DrugClass.CAR_T),
    "2698195": ("obecabtagene autoleucel", DrugClass.CAR_T),
}
RATE_UNITS: dict[str, tuple[str, ...]] = {
    "norepinephrine": ("ug/min", "ug/kg/min"), "epinephrine": ("ug/min", "ug/kg/min"),
    "phenylephrine": ("ug/min", "ug/kg/min"), "dopamine": ("ug/kg/min",),
    "vasopressin": ("U/min", "[USP'U]/min", "U/h"), "angiotensin ii": ("ng/kg/min",),
    "metaraminol": ("ug/min", "ug/kg/min"), "dobutamine": ("ug/kg/min",), "milrinone": ("ug/kg/min",),
}


def test_the_adapter_knows_exactly_the_contract_rxnorm_codes() -> None:
    assert {c: n for c, n in RXNORM_DRUGS.items()} == {c: n for c, (n, _) in DRUGS.items()}


def segment(drug: dict[str, Any], rate: float, unit: str, rid: str = "s1", start: str = T, **kw: Any) -> dict[str, Any]:
    drug = {k: v for k, v in drug.items() if k != "effectiveDateTime"}
    return drug | {"id": rid, "status": "in-progress", "effectivePeriod": {"start": start},
                   "dosage": {"rateQuantity": {"value": rate, "unit": unit, "system": UCUM, "code": unit}}} | kw


@pytest.mark.parametrize("rx", sorted(DRUGS))
def test_each_drug_and_its_role(rx: str) -> None:
    name, role = DRUGS[rx]
    if isinstance(role, VasoactiveRole):
        ev = one(segment(med(rx), 0.1, RATE_UNITS[name][0]))
        assert isinstance(ev, Infusion) and ev.action == "start" and VASOACTIVE_ROLE[ev.agent] is role
    else:
        ev = one(med(rx, dosage={"dose": {"value": 8, "unit": "mg/kg", "system": UCUM, "code": "mg/kg"}}))
        assert isinstance(ev, DrugDose) and ev.drug == name and drug_class(ev.drug) is role
        assert (ev.dose, ev.unit) == (8, "mg/kg")


@pytest.mark.parametrize(("rx", "value", "unit"), [("3264", 10, "mg"), ("6902", 1, "g"), ("612865", 8, "mg/kg")])
def test_dose_units_of_the_contract(rx: str, value: float, unit: str) -> None:
    ev = one(med(rx, dosage={"dose": {"value": value, "unit": unit, "system": UCUM, "code": unit}}))
    assert isinstance(ev, DrugDose) and (ev.dose, ev.unit) == (value, unit)


@pytest.mark.parametrize(("text", "expected"), [
    ("Angiotensin II", "angiotensin_ii"), ("METARAMINOL", "metaraminol"), ("Norepinephrine", "norepinephrine")])
def test_infusions_recognised_by_generic_name(text: str, expected: str) -> None:
    drug = med(text=text)
    drug["medicationCodeableConcept"]["coding"] = [{"system": "urn:local:pharmacy", "code": "X1"}]
    unit = RATE_UNITS[text.lower()][0]
    ev = one(segment(drug, 2, unit))
    assert isinstance(ev, Infusion) and ev.agent.value == expected


# Every row of the contract's MedicationAdministration table by its generic name as the table writes it
# -> (native agent and a rate unit of the row for an infusion; None and the generic name for a dose)
TABLE_NAMES: list[tuple[str, str | None, str]] = [
    ("norepinephrine", "norepinephrine", "ug/min"), ("epinephrine", "epinephrine", "ug/min"),
    ("phenylephrine", "phenylephrine", "ug/min"), ("dopamine", "dopamine", "ug/kg/min"),
    ("vasopressin (USP)", "vasopressin", "U/min"), ("angiotensin II", "angiotensin_ii", "ng/kg/min"),
    ("metaraminol", "metaraminol", "ug/min"), ("dobutamine", "dobutamine", "ug/kg/min"),
    ("milrinone", "milrinone", "ug/kg/min"),
    ("tocilizumab", None, "tocilizumab"), ("siltuximab", None, "siltuximab"),
    ("dexamethasone", None, "dexamethasone"), ("methylprednisolone", None, "methylprednisolone"),
    ("hydrocortisone", None, "hydrocortisone"), ("anakinra", None, "anakinra"), ("ruxolitinib", None, "ruxolitinib"),
    ("emapalumab", None, "emapalumab"), ("etoposide", None, "etoposide"), ("acetaminophen", None, "acetaminophen"),
    ("tisagenlecleucel", None, "tisagenlecleucel"), ("lisocabtagene maraleucel", None, "lisocabtagene maraleucel"),
    ("idecabtagene vicleucel", None, "idecabtagene vicleucel"),
    ("ciltacabtagene autoleucel", None, "ciltacabtagene autoleucel"),
    ("brexucabtagene autoleucel", None, "brexucabtagene autoleucel"),
    ("obecabtagene autoleucel", None, "obecabtagene autoleucel"),
    ("axicabtagene ciloleucel", None, "axicabtagene ciloleucel"),
]


@pytest.mark.parametrize(("written", "agent", "unit_or_name"), TABLE_NAMES)
def test_each_table_row_recognised_by_its_name_as_written(written: str, agent: str | None,
                                                          unit_or_name: str) -> None:
    spellings = [written, written.upper(), f"  {written.replace(' ', '  ')} ", written.replace(" ", "")]
    for spelling in spellings:
        for where in ("text", "display"):
            drug = med()
            local = {"system": "urn:local:pharmacy", "code": "X1"}
            drug["medicationCodeableConcept"] = ({"coding": [local], "text": spelling} if where == "text"
                                                 else {"coding": [local | {"display": spelling}]})
            if agent is not None:
                ev = one(segment(drug, 2, unit_or_name))
                assert isinstance(ev, Infusion) and ev.agent.value == agent, (spelling, where)
            else:
                ev = one(drug)
                assert isinstance(ev, DrugDose) and ev.drug == unit_or_name, (spelling, where)


@pytest.mark.parametrize(("written", "role"), [("angiotensin II", VasoactiveRole.VASOPRESSOR),
                                               ("metaraminol", VasoactiveRole.VASOPRESSOR),
                                               ("vasopressin (USP)", VasoactiveRole.VASOPRESSIN)])
def test_the_role_of_the_drugs_recognised_by_name(written: str, role: VasoactiveRole) -> None:
    unit = {"angiotensin II": "ng/kg/min", "metaraminol": "ug/kg/min", "vasopressin (USP)": "[USP'U]/min"}[written]
    ev = one(segment(med(text=written), 0.5, unit))
    assert isinstance(ev, Infusion) and VASOACTIVE_ROLE[ev.agent] is role


@pytest.mark.parametrize(("display", "cls"), [("Axicabtagene ciloleucel", DrugClass.CAR_T),
                                              ("BPX-601 CAR-T cell product", DrugClass.CAR_T),
                                              ("tocilizumab", DrugClass.IL6R_BLOCKADE)])
def test_doses_recognised_by_name_in_display(display: str, cls: DrugClass) -> None:
    drug = med()
    drug["medicationCodeableConcept"] = {"coding": [{"system": "urn:local", "code": "L7", "display": display}]}
    ev = one(drug)
    assert isinstance(ev, DrugDose) and (ev.drug_class or drug_class(ev.drug)) is cls


def test_an_unknown_drug_is_rejected() -> None:
    reason, category = rejected(med(text="furosemide"))
    assert "furosemide" in reason and category == "unsupported"


@pytest.mark.parametrize(("name", "unit"), [(n, u) for n, units in RATE_UNITS.items() for u in units])
def test_each_accepted_rate_unit(name: str, unit: str) -> None:
    ev = one(segment(med(text=name), 2, unit))
    assert isinstance(ev, Infusion) and ev.rate == 2
    assert ev.unit == ("U/min" if unit == "[USP'U]/min" else unit)


@pytest.mark.parametrize("name", sorted(RATE_UNITS))
def test_a_rate_unit_outside_the_table_is_rejected(name: str) -> None:
    reason, _ = rejected(segment(med(text=name), 2, "mg/h"))
    assert reason == f"rate unit 'mg/h' not accepted for {name}: accepted " + ", ".join(
        sorted({"[USP'U]/min" if u == "[USP'U]/min" else u for u in RATE_UNITS[name]}))


def test_negative_rate_and_missing_rate_are_rejected() -> None:
    assert "negative" in rejected(segment(med("7512"), -1, "ug/min"))[0]
    no_rate = segment(med("7512"), 1, "ug/min")
    del no_rate["dosage"]
    assert "rateQuantity" in rejected(no_rate)[0]


def test_a_new_segment_replaces_the_running_one_and_completed_ends_it() -> None:
    r = Replayer()
    ne = {k: v for k, v in med("7512").items() if k != "effectiveDateTime"}
    r.feed_normalised(run(segment(ne, 5, "ug/min", "seg1")))
    r.feed_normalised(run(segment(ne, 12, "ug/min", "seg2", start="2024-01-01T11:00:00+00:00")))
    seg1_done = ne | {"id": "seg1", "meta": {"versionId": "2"}, "status": "completed",
                      "effectivePeriod": {"start": T, "end": "2024-01-01T11:00:00+00:00"},
                      "dosage": {"rateQuantity": {"value": 5, "unit": "ug/min", "system": UCUM, "code": "ug/min"}}}
    r.feed_normalised(run(seg1_done))
    running = r.logs["p1"].state.infusions["norepinephrine"]
    assert (running.rate, running.segment) == (12, "MedicationAdministration/seg2")  # seg1 ending does not stop it
    seg2_done = ne | {"id": "seg2", "meta": {"versionId": "2"}, "status": "stopped",
                      "effectivePeriod": {"start": "2024-01-01T11:00:00+00:00", "end": "2024-01-01T12:00:00+00:00"}}
    n = run(seg2_done)
    assert [(e.kind, getattr(e, "action", None)) for e in n.events] == [("infusion", "start"), ("infusion", "stop")]
    r.feed_normalised(n)
    assert "norepinephrine" not in r.logs["p1"].state.infusions
    assert r.outcomes["corrected"] == 2 and r.logs["p1"].state.vaso_course == 1  # one course throughout


def test_reason_code_that_is_not_crs_keeps_support_out_of_the_grade() -> None:
    def grade(reason: str | None) -> int:
        r = Replayer()
        r.feed_normalised(run(med("1986438", effectiveDateTime="2024-01-01T00:00:00+00:00", rid="cart")))
        r.feed_normalised(run(obs("8310-5", 38.6, "Cel", rid="t")))
        ne = med("7512") | ({"reasonCode": [{"text": reason}]} if reason else {})
        r.feed_normalised(run(segment(ne, 5, "ug/min", start="2024-01-01T10:30:00+00:00")))
        return r.logs["p1"].state.crs_grade

    assert grade(None) == 3  # support with no reason is counted
    # The contract's examples of "explicitly not CRS" exclude it ...
    for reason in ("cardiogenic shock", "sepsis", "diuresis", "sedation"):
        assert grade(reason) == 1, reason
    # ... and only they: a reason that names no other cause is counted.
    for reason in ("hypotension", "Hypotension due to CRS", "CRS grade 2", "Cytokine release syndrome (disorder)"):
        assert grade(reason) == 3, reason
    ev = one(segment(med("7512") | {"reasonCode": [{"coding": [{"display": "cardiogenic shock"}]}]}, 5, "ug/min"))
    assert isinstance(ev, Infusion) and ev.reason == "cardiogenic shock"
    coded = one(segment(med("7512") | {"reasonCode": [{"coding": [{"system": "http://snomed.info/sct",
                                                                   "code": "427573005"}]}]}, 5, "ug/min"))
    assert isinstance(coded, Infusion) and coded.reason == "427573005"  # a bare code names no other cause: counted


# ---------------------------------------------------------------- identity, corrections, statuses


def test_versioned_correction_replaces_the_earlier_version() -> None:
    r = Replayer()
    r.feed_normalised(run(med("1986438", effectiveDateTime="2024-01-01T00:00:00+00:00", rid="cart")))
    v1 = obs("8310-5", 39.4, "Cel", rid="temp", meta={"versionId": "1"})
    records = r.feed_normalised(run(v1))
    assert any(isinstance(x, CrsGradeChange) and x.grade == 1 for x in records)
    v2 = obs("8310-5", 37.1, "Cel", rid="temp", meta={"versionId": "2"}, status="corrected")
    records = r.feed_normalised(run(v2))
    assert r.logs["p1"].state.crs_grade == 0 and any(isinstance(x, Retraction) for x in records)
    assert r.outcomes["corrected"] == 1
    assert r.feed_normalised(run(v2)) == [] and r.outcomes["duplicate"] == 1  # the same correction twice
    assert r.feed_normalised(run(v1)) == [] and r.outcomes["superseded"] == 1  # the old version, late
    assert r.logs["p1"].state.crs_grade == 0


def test_entered_in_error_retracts_the_resource() -> None:
    r = Replayer()
    r.feed_normalised(run(med("1986438", effectiveDateTime="2024-01-01T00:00:00+00:00", rid="cart")))
    r.feed_normalised(run(obs("8310-5", 39.4, "Cel", rid="temp")))
    assert r.logs["p1"].state.crs_grade == 1
    eie = obs("8310-5", 39.4, "Cel", rid="temp", status="entered-in-error", meta={"versionId": "2"})
    n = run(eie)
    assert n.events[0].kind == "retract"
    r.feed_normalised(n)
    assert r.logs["p1"].state.crs_grade == 0 and r.outcomes["retracted"] == 1
    eie_med = med("7512", status="entered-in-error", rid="x")
    assert run(eie_med).events[0].kind == "retract"


def test_an_opaque_version_without_last_updated_is_rejected() -> None:
    reason, category = rejected(obs("8867-4", 80, "/min", meta={"versionId": "abc"}))
    assert reason == ("meta.versionId 'abc' is not an integer and meta.lastUpdated is missing: the versions of this "
                      "resource cannot be ordered (contract: a new versionId replaces the earlier version)")
    assert category == "missing_field"


@pytest.mark.parametrize("vid", [7, "a b", "", "x" * 65])
def test_a_version_id_that_is_not_a_fhir_id_is_rejected(vid: Any) -> None:
    reason, category = rejected(obs("8867-4", 80, "/min", meta={"versionId": vid,
                                                                "lastUpdated": "2024-01-01T10:05:00Z"}), strict=False)
    assert reason == f"meta.versionId {vid!r} is not a FHIR id ([A-Za-z0-9-.]{{1,64}})" and category == "invalid_value"


def test_an_integer_version_orders_as_that_integer() -> None:
    ev = one(obs("8867-4", 80, "/min", meta={"versionId": "12", "lastUpdated": "2024-01-01T10:05:00Z"}))
    assert (ev.version, ev.event_id) == (12, "Observation/o1/_history/12")


def test_opaque_versions_are_ordered_by_last_updated() -> None:
    cart = med("1986438", effectiveDateTime="2024-01-01T00:00:00+00:00", rid="cart")
    v1 = obs("8310-5", 39.4, "Cel", rid="temp",
             meta={"versionId": "MTU1NjY2ODk4MDQ4NDc0MjAwMA", "lastUpdated": "2024-01-01T10:05:00Z"})
    v2 = obs("8310-5", 37.1, "Cel", rid="temp", status="corrected",
             meta={"versionId": "9f1c-2b", "lastUpdated": "2024-01-01T11:20:00.5+01:00"})  # 10:20:00.5 UTC
    (ev2,) = run(v2).events
    assert ev2.event_id == "Observation/temp/_history/9f1c-2b"  # the versionId text: duplicates dedupe
    assert ev2.version == 1704104400_500000  # microseconds since 1970 of lastUpdated

    r = Replayer()
    r.feed_normalised(run(cart))
    records = r.feed_normalised(run(v1))
    assert any(isinstance(x, CrsGradeChange) and x.grade == 1 for x in records)
    records = r.feed_normalised(run(v2))  # the later lastUpdated replaces the earlier version
    assert r.logs["p1"].state.crs_grade == 0 and any(isinstance(x, Retraction) for x in records)
    assert r.outcomes["corrected"] == 1
    assert r.feed_normalised(run(v2)) == [] and r.outcomes["duplicate"] == 1
    assert r.feed_normalised(run(v1)) == [] and r.outcomes["superseded"] == 1  # the earlier version, late

    late = Replayer()  # the later version first: the earlier one arriving after it is superseded
    late.feed_normalised(run(cart))
    late.feed_normalised(run(v2))
    late.feed_normalised(run(v1))
    assert late.logs["p1"].state.crs_grade == 0 and late.outcomes["superseded"] == 1


@pytest.mark.parametrize(("res", "status"), [(obs("8867-4", 80, "/min", status="cancelled"), "cancelled"),
                                             (obs("8867-4", status="registered"), "registered"),
                                             (med("612865", status="not-done"), "not-done")])
def test_statuses_without_a_value_are_ignored_but_counted(res: dict[str, Any], status: str) -> None:
    n = run(res)
    assert n.units == 1 and not n.events and not n.rejected and status in n.ignored[0].reason


def test_unknown_status_is_rejected() -> None:
    assert "status" in rejected(obs("8867-4", 80, "/min", status="unknown"))[0]
    assert "status" in rejected(med("612865", status="on-hold"))[0]


# ---------------------------------------------------------------- envelope


def test_ndjson_lines_and_bundles_of_every_type() -> None:
    a, b = obs("8867-4", 80, "/min", rid="a"), obs("8310-5", 37, "Cel", rid="b")
    n = normalise_fhir(json.dumps(a) + "\n\n" + json.dumps(b) + "\n{broken\n", "f")
    assert [e.event_id for e in n.events] == ["Observation/a", "Observation/b"]
    assert n.rejected[0].category == "not_json" and n.rejected[0].source == "f:4"
    for btype in ("collection", "transaction", "batch"):
        bundle = {"resourceType": "Bundle", "type": btype, "entry": [{"resource": a}, {"resource": b}]}
        assert len(run(bundle).events) == 2
    header = {"resourceType": "MessageHeader", "id": "h", "eventCoding": {"code": "x"}, "source": {"endpoint": "x"}}
    message = {"resourceType": "Bundle", "type": "message", "entry": [{"resource": header}, {"resource": a}]}
    n = run(message)
    assert len(n.events) == 1 and len(n.ignored) == 1
    bad = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": a}]}
    assert "searchset" in rejected(bad, strict=False)[0]


def test_entries_in_any_order_give_the_same_state() -> None:
    # contract: lines and entries come in any order (here all within the lateness window)
    def at(hhmm: str) -> str:
        return f"2024-01-01T{hhmm}:00+00:00"

    def comp(code: str, value: float, unit: str) -> dict[str, Any]:
        return {"code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}

    resources = [
        med("1986438", effectiveDateTime=at("08:30"), rid="cart"),
        obs("8310-5", 39.2, "Cel", rid="t1", effectiveDateTime=at("09:00")),
        obs("85354-9", rid="bp1", effectiveDateTime=at("09:30"),
            component=[comp("8480-6", 84, "mm[Hg]"), comp("8462-4", 48, "mm[Hg]"), comp("8478-0", 60, "mm[Hg]")]),
        method("336623009") | {"id": "nc", "effectiveDateTime": at("09:45")},
        obs("59408-5", 91, "%", rid="ox1", effectiveDateTime=at("09:45"), component=[comp("3151-8", 4, "L/min")]),
        segment(med("7512"), 5, "ug/min", "ne1", start=at("10:00")),
        obs("2276-4", 12000, "ng/mL", rid="fer", effectiveDateTime=at("10:30"), issued=at("11:30")),
        obs("8310-5", 38.4, "Cel", rid="t2", effectiveDateTime=at("11:00")),
    ]

    def state(entries: list[dict[str, Any]]) -> dict[str, Any]:
        r = Replayer()
        r.feed_normalised(run({"resourceType": "Bundle", "type": "collection",
                               "entry": [{"resource": e} for e in entries]}))
        assert not r.rejected and r.outcomes["late"] == 0
        doc: dict[str, Any] = json.loads(state_to_json(r.logs["p1"].state))
        return doc

    ordered = state(resources)
    assert ordered["crs_grade"] == 3  # fever, one vasopressor, low-flow oxygen
    assert state(resources[::-1]) == ordered
    assert state(resources[3:] + resources[:3]) == ordered


def test_a_resource_without_id_takes_its_full_url() -> None:
    res = obs("8867-4", 80, "/min")
    del res["id"]
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"fullUrl": "urn:uuid:0f6b6a3e-1d7f-4c53-9f53-4b8c7f0c1a11", "resource": res}]}
    assert run(bundle).events[0].event_id == "Observation/0f6b6a3e-1d7f-4c53-9f53-4b8c7f0c1a11"


def test_strict_mode_adds_full_fhir_structure_validation() -> None:
    res = obs("8867-4", 80, "/min")
    res["valueQuantity"]["valu"] = 3  # not a FHIR element: the contract path does not read it
    assert len(run(res, strict=False).events) == 1
    reason, _ = rejected(res, strict=True)
    assert reason.startswith("not a valid FHIR R4 Observation")


def test_strict_mode_rejects_what_the_library_cannot_read_instead_of_failing() -> None:
    res = obs("8867-4", 80, "/min", contained=[{"resourceType": "NopeType", "id": "x"}])
    assert len(run(res, strict=False).events) == 1
    reason, category = rejected(res, strict=True)
    assert reason.startswith("not a valid FHIR R4 Observation") and category == "invalid_value"


@pytest.mark.parametrize("coding", [{"system": "http://loinc.org", "code": None},
                                    {"system": None, "code": "8867-4"}, {"system": "http://loinc.org", "code": 8867}])
def test_a_coding_whose_system_or_code_is_not_a_string_is_rejected(coding: dict[str, Any]) -> None:
    res = obs("8867-4", 80, "/min")
    res["code"]["coding"].insert(0, coding)
    reason, category = rejected(res, strict=False)
    assert "system and code are strings" in reason and category == "invalid_value"


# ---------------------------------------------------------------- published examples


@pytest.mark.parametrize(("example", "measure", "value"), ex.EXAMPLES)
def test_published_vital_sign_examples(example: dict[str, Any], measure: str, value: float) -> None:
    published = run(example, strict=True)  # structurally valid R4 (fhir.resources)
    if "T" not in example["effectiveDateTime"]:
        assert not published.events
        assert "has no time of day and no UTC offset" in published.rejected[0].reason
        timed = example | {"effectiveDateTime": "1999-07-02T08:00:00+00:00"}
    else:
        timed = example
    ev = one(timed)
    assert isinstance(ev, VitalSigns) and ev.patient_id == "example"
    assert getattr(ev, measure).value == value and ev.event_id == f"Observation/{example['id']}"


def test_published_sat_o2_example_keeps_its_offset() -> None:
    ev = one(ex.SAT_O2)
    assert ev.time.isoformat() == "2014-12-05T09:30:10+01:00" and ev.ts == 1417768210.0


def test_published_blood_pressure_and_body_weight_examples() -> None:
    bp = one(ex.BLOOD_PRESSURE | {"effectiveDateTime": "2012-09-17T08:00:00+00:00"})
    assert isinstance(bp, VitalSigns) and bp.sbp is not None and bp.dbp is not None
    assert (bp.sbp.value, bp.dbp.value) == (107, 60)
    weight = one(ex.BODY_WEIGHT | {"effectiveDateTime": "2016-03-28T08:00:00+00:00"})
    assert isinstance(weight, PatientContext) and weight.weight is not None
    assert weight.weight.value == pytest.approx(185 * 0.45359237) and weight.weight.unit == "kg"
    assert "no time of day" in rejected(ex.BLOOD_PRESSURE)[0]


def test_a_segment_at_rate_0_pauses_the_infusion_and_a_later_segment_restarts_it() -> None:
    r = Replayer()
    r.feed_normalised(run(med("1986438", effectiveDateTime="2024-01-01T00:00:00+00:00", rid="cart")))
    r.feed_normalised(run(obs("8310-5", 38.6, "Cel", rid="t")))
    ne = {k: v for k, v in med("7512").items() if k != "effectiveDateTime"}
    r.feed_normalised(run(segment(ne, 5, "ug/min", "seg1", start="2024-01-01T10:30:00+00:00")))
    assert r.logs["p1"].state.crs_grade == 3
    r.feed_normalised(run(segment(ne, 0, "ug/min", "seg2", start="2024-01-01T11:00:00+00:00")))
    seg1_done = ne | {"id": "seg1", "meta": {"versionId": "2"}, "status": "completed",
                      "effectivePeriod": {"start": "2024-01-01T10:30:00+00:00", "end": "2024-01-01T11:00:00+00:00"},
                      "dosage": {"rateQuantity": {"value": 5, "unit": "ug/min", "system": UCUM, "code": "ug/min"}}}
    r.feed_normalised(run(seg1_done))
    state = r.logs["p1"].state
    assert "norepinephrine" not in state.infusions and state.crs_grade == 1  # rate 0: not running
    assert state.infusions_paused["norepinephrine"].segment == "MedicationAdministration/seg2"
    r.feed_normalised(run(segment(ne, 8, "ug/min", "seg3", start="2024-01-01T12:00:00+00:00")))
    state = r.logs["p1"].state
    assert state.infusions["norepinephrine"].rate == 8 and state.crs_grade == 3


def test_a_coded_snomed_reason_without_display_is_understood_and_preferred_to_text() -> None:
    def coded(code: str, text: str | None = None) -> dict[str, Any]:
        concept: dict[str, Any] = {"coding": [{"system": "http://snomed.info/sct", "code": code}]}
        if text is not None:
            concept["text"] = text
        return med("7512") | {"reasonCode": [concept]}

    for code, term in (("76571007", "septic shock"), ("91302008", "sepsis"), ("89138009", "cardiogenic shock"),
                       ("78275009", "obstructive sleep apnea"), ("134401001", "left ventricular systolic")):
        e = one(segment(coded(code), 5, "ug/min"))
        assert isinstance(e, Infusion) and e.reason is not None and e.reason.startswith(term), code
    e = one(segment(coded("76571007", text="hypotension"), 5, "ug/min"))  # the code wins over the text
    assert isinstance(e, Infusion) and e.reason == "septic shock (SNOMED CT 76571007)"

    def grade(res: dict[str, Any]) -> int:
        r = Replayer()
        r.feed_normalised(run(med("1986438", effectiveDateTime="2024-01-01T00:00:00+00:00", rid="cart")))
        r.feed_normalised(run(obs("8310-5", 38.6, "Cel", rid="t")))
        r.feed_normalised(run(segment(res, 5, "ug/min", start="2024-01-01T10:30:00+00:00")))
        return r.logs["p1"].state.crs_grade

    assert grade(coded("76571007")) == 1  # septic shock: not CRS
    assert grade(coded("442891000124101")) == 3  # cytokine release syndrome: counted
    assert grade(coded("427573005")) == 3  # an unknown code names no other cause: counted
    assert grade(coded("427573005", text="cardiogenic shock")) == 1  # text is the fallback
