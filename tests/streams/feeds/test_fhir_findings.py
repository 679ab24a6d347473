"""FHIR R4 shapes from public samples that the adapter rejected (issue 14), each from a small
sample written here in the shape of the published examples (US Core pulse oximetry, blood
pressure and CBC examples, Synthea transaction Bundles, contained Medication), with adversarial
neighbours: what must still be rejected, and with which reason.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from models.events import DrugDose, LabResult, OxygenSupport, VitalSigns
from models.records import CrsGradeChange
from models.vocabulary import DrugClass, drug_class
from streams.feeds.fhir import normalise_fhir
from streams.replay import Replayer
from tests.streams.feeds.test_fhir import RXNORM, UCUM, med, obs, run

LOINC = "http://loinc.org"


def _q(value: float, code: str) -> dict[str, Any]:
    return {"value": value, "unit": code, "system": UCUM, "code": code}


def _component(code: str, value: dict[str, Any] | None = None, absent: bool = False) -> dict[str, Any]:
    comp: dict[str, Any] = {"code": {"coding": [{"system": LOINC, "code": code}]}}
    if value is not None:
        comp["valueQuantity"] = value
    if absent:
        comp["dataAbsentReason"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                                                "code": "unknown"}]}
    return comp


# ---------------------------------------------------------------- CAR-T dose as given


@pytest.mark.parametrize(("unit", "value"), [("1", 1.0), ("{cells}", 5e8), ("10*6", 100.0), ("mL", 68.0)])
def test_car_t_infusion_is_accepted_whatever_its_dose_unit(unit: str, value: float) -> None:
    res = med("1986438", rid="cart", effectiveDateTime="2024-01-01T00:00:00+00:00",
              dosage={"dose": {"value": value, "unit": unit, "system": UCUM, "code": unit}})
    n = run(res)
    assert not n.rejected, n.rejected[0].reason
    [ev] = n.events
    assert isinstance(ev, DrugDose) and ev.drug == "tisagenlecleucel" and drug_class(ev.drug) is DrugClass.CAR_T
    assert (ev.dose, ev.unit) == (value, unit)  # kept as given
    # It is Day 0: a fever a day later is graded on Day 1, not "Day ?".
    r = Replayer()
    r.feed_normalised(n)
    fever = obs("8310-5", 39.2, "Cel", rid="t1", effectiveDateTime="2024-01-02T08:00:00+00:00")
    records = r.feed_normalised(run(fever))
    assert any(isinstance(x, CrsGradeChange) and x.grade == 1 and x.day == 1 for x in records)


def test_car_t_infusion_with_an_unreadable_dose_or_a_rate_keeps_the_infusion() -> None:
    bad_dose = med(text="axicabtagene ciloleucel", rid="c1", dosage={"dose": {"value": "2x10^6/kg", "unit": "cells"}})
    [ev] = run(bad_dose, strict=False).events
    assert isinstance(ev, DrugDose) and ev.drug == "axicabtagene ciloleucel" and ev.dose is None and ev.unit is None
    assert ev.provenance.assumption is not None and "not kept" in ev.provenance.assumption  # said, not dropped
    rate = med("2479136", rid="c2", dosage={"rateQuantity": {"value": 68, "unit": "mL/h", "system": UCUM,
                                                             "code": "mL/h"}})
    [ev] = run(rate).events
    assert isinstance(ev, DrugDose) and ev.drug == "lisocabtagene maraleucel"


def test_a_dose_unit_outside_the_table_is_still_rejected_for_other_drugs() -> None:
    res = med("612865", dosage={"dose": {"value": 8, "unit": "mL", "system": UCUM, "code": "mL"}})
    n = run(res)
    assert not n.events and "dose unit 'mL' is not a dose unit" in n.rejected[0].reason


# ---------------------------------------------------------------- transaction Bundles (Synthea style)

PATIENT_UUID = "8c95253e-8ee8-9ae8-6d40-021d702dc78e"
ENCOUNTER_UUID = "a1f8f2b5-8b4d-4c3e-9a51-7d1c4c0f7e11"


def _entry(resource: dict[str, Any], uuid: str) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{uuid}", "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"]}}


def _synthea_bundle(subject: str = f"urn:uuid:{PATIENT_UUID}", patient_id: str | None = PATIENT_UUID
                    ) -> dict[str, Any]:
    patient: dict[str, Any] = {"resourceType": "Patient",
                               "identifier": [{"system": "https://github.com/synthetichealth/synthea",
                                               "value": PATIENT_UUID},
                                              {"type": {"coding": [{"code": "MR"}]}, "value": "MRN-4711"}],
                               "name": [{"family": "Doe", "given": ["Jane"]}], "gender": "female"}
    if patient_id is not None:
        patient["id"] = patient_id
    temp = obs("8310-5", 39.4, "Cel", rid="6f1a2b3c-0000-4000-8000-000000000001",
               subject={"reference": subject}, encounter={"reference": f"urn:uuid:{ENCOUNTER_UUID}"})
    bp = obs("85354-9", rid="6f1a2b3c-0000-4000-8000-000000000002", subject={"reference": subject},
             component=[_component("8480-6", _q(84, "mm[Hg]")), _component("8462-4", _q(50, "mm[Hg]"))])
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        _entry(patient, PATIENT_UUID),
        _entry({"resourceType": "Encounter", "id": ENCOUNTER_UUID, "status": "finished",
                "class": {"code": "IMP"}, "subject": {"reference": f"urn:uuid:{PATIENT_UUID}"}}, ENCOUNTER_UUID),
        _entry(temp, "6f1a2b3c-0000-4000-8000-000000000001"),
        _entry(bp, "6f1a2b3c-0000-4000-8000-000000000002"),
        _entry({"resourceType": "Claim", "id": "c9", "status": "active",
                "patient": {"reference": f"urn:uuid:{PATIENT_UUID}"}}, "c0000000-0000-4000-8000-000000000009"),
        _entry({"resourceType": "Condition", "id": "d1", "subject": {"reference": f"urn:uuid:{PATIENT_UUID}"}},
               "d0000000-0000-4000-8000-000000000001"),
    ]}


def test_transaction_bundle_resolves_urn_uuid_patient_references() -> None:
    n = normalise_fhir(json.dumps(_synthea_bundle()), "synthea.json")
    assert not n.rejected, [r.reason for r in n.rejected]
    assert {e.patient_id for e in n.events} == {PATIENT_UUID}  # the Patient entry's id
    temp, bp = n.events
    assert isinstance(temp, VitalSigns) and temp.temperature is not None and temp.temperature.value == 39.4
    assert isinstance(bp, VitalSigns) and bp.sbp is not None and bp.sbp.value == 84
    # Patient, Encounter, Claim, Condition: skipped, not monitored, counted apart from rejections.
    assert n.units == 6 and n.accepted == 2 and len(n.ignored) == 4 and n.not_monitored == 4
    assert all(i.reason.startswith("skipped, not monitored: ") for i in n.ignored)
    assert {i.reason.split(": ")[1].split(" ")[0] for i in n.ignored} == {"Patient", "Encounter", "Claim", "Condition"}
    r = Replayer()
    records = r.feed_normalised(n)
    assert r.outcomes["ignored"] == 4 and r.outcomes["rejected"] == 0 and not r.rejected
    assert records == [] or all(x.patient_id == PATIENT_UUID for x in records)


def test_a_patient_entry_without_id_is_keyed_by_its_fullurl() -> None:
    n = normalise_fhir(json.dumps(_synthea_bundle(patient_id=None)), "b")
    assert not n.rejected and {e.patient_id for e in n.events} == {PATIENT_UUID}


def test_urn_uuid_to_a_missing_entry_is_a_clear_rejection() -> None:
    n = normalise_fhir(json.dumps(_synthea_bundle(subject="urn:uuid:00000000-0000-4000-8000-00000000dead")), "b")
    assert not n.events and len(n.rejected) == 2
    assert n.rejected[0].reason == ("subject.reference 'urn:uuid:00000000-0000-4000-8000-00000000dead' does not "
                                    "resolve: no entry of this Bundle has that fullUrl")
    assert n.rejected[0].category == "invalid_value"


def test_urn_uuid_to_an_entry_that_is_not_a_patient_is_rejected() -> None:
    n = normalise_fhir(json.dumps(_synthea_bundle(subject=f"urn:uuid:{ENCOUNTER_UUID}")), "b")
    assert not n.events and "resolves to a 'Encounter' entry, not a Patient" in n.rejected[0].reason


def test_urn_uuid_outside_a_bundle_is_rejected_with_the_reason() -> None:
    n = run(obs("8867-4", 80, "/min", subject={"reference": f"urn:uuid:{PATIENT_UUID}"}), strict=False)
    assert not n.events and "resolves only inside a Bundle that holds the Patient entry" in n.rejected[0].reason


def test_a_resource_type_that_is_not_fhir_is_still_rejected() -> None:
    n = run({"resourceType": "Vitals", "id": "x"}, strict=False)
    assert not n.ignored and n.rejected[0].category == "unknown_kind"


# ---------------------------------------------------------------- pulse oximetry, BP panels


def _us_core_pulse_ox(components: list[dict[str, Any]]) -> dict[str, Any]:
    res = obs("2708-6", 95, "%", rid="satO2", component=components)
    res["code"] = {"coding": [{"system": LOINC, "code": "2708-6", "display": "Oxygen saturation in Arterial blood"},
                              {"system": LOINC, "code": "59408-5",
                               "display": "Oxygen saturation in Arterial blood by Pulse oximetry"}]}
    return res


def test_us_core_pulse_oximetry_keeps_spo2_and_the_oxygen_flow() -> None:
    n = run(_us_core_pulse_ox([_component("3151-8", _q(6, "L/min")), _component("3150-0", _q(40, "%"))]))
    assert not n.rejected, n.rejected[0].reason
    spo2, flow, fio2 = n.events
    assert isinstance(spo2, VitalSigns) and spo2.spo2 is not None and spo2.spo2.value == 95
    assert isinstance(flow, OxygenSupport) and flow.flow_l_min == 6
    assert isinstance(fio2, OxygenSupport) and fio2.fio2_pct == 40


def test_pulse_oximetry_component_without_value_keeps_the_others() -> None:
    n = run(_us_core_pulse_ox([_component("3151-8", _q(6, "L/min")), _component("3150-0", absent=True)]))
    assert not n.rejected and len(n.events) == 2
    assert isinstance(n.events[1], OxygenSupport) and n.events[1].flow_l_min == 6


def test_a_bp_panel_with_one_component_absent_keeps_the_other() -> None:
    with_reason = obs("85354-9", component=[_component("8480-6", _q(80, "mm[Hg]")), _component("8462-4", absent=True)])
    without = obs("85354-9", component=[_component("8480-6", _q(80, "mm[Hg]"))])
    for res in (with_reason, without):
        [ev] = run(res).events
        assert isinstance(ev, VitalSigns) and ev.sbp is not None and ev.sbp.value == 80 and ev.dbp is None


def test_a_bp_panel_without_any_value_is_rejected() -> None:
    n = run(obs("85354-9", component=[_component("8480-6", absent=True), _component("8462-4", absent=True)]))
    assert not n.events and n.rejected[0].reason.startswith("LOINC 85354-9 (blood pressure panel): no component")


def test_a_component_with_a_value_of_another_type_is_still_rejected() -> None:
    comp = _component("8480-6")
    comp["valueString"] = "80"
    n = run(obs("85354-9", component=[comp]), strict=False)
    assert not n.events and "valueQuantity missing" in n.rejected[0].reason


def test_bp_panel_55284_4() -> None:
    res = obs("55284-4", component=[_component("8480-6", _q(80, "mm[Hg]")), _component("8462-4", _q(45, "mm[Hg]"))])
    [ev] = run(res).events
    assert isinstance(ev, VitalSigns) and ev.sbp is not None and ev.dbp is not None
    assert (ev.sbp.value, ev.dbp.value) == (80, 45)


# ---------------------------------------------------------------- medicationReference


def _with_contained(code: dict[str, Any], ref: str = "#med1") -> dict[str, Any]:
    res = med(rid="toci", dosage={"dose": {"value": 8, "unit": "mg/kg", "system": UCUM, "code": "mg/kg"}})
    del res["medicationCodeableConcept"]
    res["contained"] = [{"resourceType": "Medication", "id": "med1", "code": code}]
    res["medicationReference"] = {"reference": ref}
    return res


def test_medication_reference_to_a_contained_tocilizumab_is_seen() -> None:
    n = run(_with_contained({"coding": [{"system": RXNORM, "code": "612865", "display": "tocilizumab"}]}))
    assert not n.rejected, n.rejected[0].reason
    [ev] = n.events
    assert isinstance(ev, DrugDose) and ev.drug == "tocilizumab" and (ev.dose, ev.unit) == (8, "mg/kg")


def test_contained_medication_that_is_not_monitored_is_rejected_as_outside_the_table() -> None:
    n = run(_with_contained({"coding": [{"system": RXNORM, "code": "26225", "display": "ondansetron"}]}))
    assert not n.events and n.rejected[0].reason.startswith("medication RxNorm 26225 is not in the contract's")
    assert n.rejected[0].category == "unsupported"


@pytest.mark.parametrize(("ref", "why"), [("#med2", "no contained resource has id 'med2'"),
                                          ("Medication/med1", "cannot be resolved")])
def test_medication_reference_that_does_not_resolve_is_rejected(ref: str, why: str) -> None:
    n = run(_with_contained({"coding": [{"system": RXNORM, "code": "612865"}]}, ref), strict=False)
    assert not n.events and why in n.rejected[0].reason


def test_medication_reference_to_a_bundle_entry() -> None:
    admin = med(rid="toci", dosage={"dose": {"value": 8, "unit": "mg/kg", "system": UCUM, "code": "mg/kg"}})
    del admin["medicationCodeableConcept"]
    admin["medicationReference"] = {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
         "resource": {"resourceType": "Medication", "code": {"text": "Tocilizumab"}}},
        {"fullUrl": "urn:uuid:22222222-2222-4222-8222-222222222222", "resource": admin}]}
    n = normalise_fhir(json.dumps(bundle), "b")
    assert not n.rejected and n.not_monitored == 1  # the Medication entry itself
    [ev] = n.events
    assert isinstance(ev, DrugDose) and ev.drug == "tocilizumab"


# ---------------------------------------------------------------- CBC codes, units


@pytest.mark.parametrize(("code", "analyte", "value"), [("26464-8", "wbc", 0.4), ("26515-7", "platelets", 18.0),
                                                        ("26499-4", "anc", 0.1)])
def test_cbc_counts_without_method(code: str, analyte: str, value: float) -> None:
    ev = run(obs(code, value, "10*3/uL", category=[{"coding": [{"code": "laboratory"}]}])).events[0]
    assert isinstance(ev, LabResult) and ev.analyte.value == analyte and ev.value == value


def test_triglycerides_35217_9_in_mmol_per_litre() -> None:
    ev = run(obs("35217-9", 3.0, "mmol/L")).events[0]
    assert isinstance(ev, LabResult) and ev.analyte.value == "triglycerides"
    assert ev.unit == "mg/dL" and ev.value == pytest.approx(265.7, abs=0.1)  # 88.57 mg/dL per mmol/L


def test_value_quantity_with_unit_but_no_code_uses_a_ucum_spelled_unit() -> None:
    res = obs("8480-6", rid="s")
    res["valueQuantity"] = {"value": 80, "unit": "mm[Hg]"}
    [ev] = run(res).events
    assert isinstance(ev, VitalSigns) and ev.sbp is not None and ev.sbp.value == 80
    res["valueQuantity"] = {"value": 118, "unit": "{beats}/min"}
    res["code"]["coding"][0]["code"] = "8867-4"
    [ev] = run(res).events
    assert isinstance(ev, VitalSigns) and ev.heart_rate is not None and ev.heart_rate.value == 118


@pytest.mark.parametrize("quantity", [{"value": 80, "unit": "mmHg"}, {"value": 80, "unit": "mm Hg"},
                                      {"value": 80, "unit": "mm[Hg]", "system": "http://acme.org/units"},
                                      {"value": 80}])
def test_value_quantity_without_code_and_a_unit_that_is_not_ucum_is_rejected(quantity: dict[str, Any]) -> None:
    res = obs("8480-6", rid="s")
    res["valueQuantity"] = quantity
    n = run(res, strict=False)
    assert not n.events and "valueQuantity.code missing" in n.rejected[0].reason
    assert n.rejected[0].category == "missing_field"
