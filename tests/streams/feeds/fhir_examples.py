"""FHIR R4 example Observations of the vital-signs profile, written out from the FHIR specification's
published examples (hl7.org/fhir/R4: observation-example-heart-rate, -body-temperature,
-respiratory-rate, -bloodpressure, -satO2, and observation-example (body weight)).
The generated narrative (`text`) is left out; every other element is as published."""

from __future__ import annotations

from typing import Any

_VS = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs",
                   "display": "Vital Signs"}], "text": "Vital Signs"}
_PROFILE = {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]}
_UCUM = "http://unitsofmeasure.org"
_INTERP = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

HEART_RATE: dict[str, Any] = {
    "resourceType": "Observation", "id": "heart-rate", "meta": _PROFILE, "status": "final", "category": [_VS],
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}],
             "text": "Heart rate"},
    "subject": {"reference": "Patient/example"}, "effectiveDateTime": "1999-07-02",
    "valueQuantity": {"value": 44, "unit": "beats/minute", "system": _UCUM, "code": "/min"},
}

BODY_TEMPERATURE: dict[str, Any] = {
    "resourceType": "Observation", "id": "body-temperature", "meta": _PROFILE, "status": "final", "category": [_VS],
    "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5", "display": "Body temperature"}],
             "text": "Body temperature"},
    "subject": {"reference": "Patient/example"}, "effectiveDateTime": "1999-07-02",
    "valueQuantity": {"value": 36.5, "unit": "C", "system": _UCUM, "code": "Cel"},
}

RESPIRATORY_RATE: dict[str, Any] = {
    "resourceType": "Observation", "id": "respiratory-rate", "meta": _PROFILE, "status": "final", "category": [_VS],
    "code": {"coding": [{"system": "http://loinc.org", "code": "9279-1", "display": "Respiratory rate"}],
             "text": "Respiratory rate"},
    "subject": {"reference": "Patient/example"}, "effectiveDateTime": "1999-07-02",
    "valueQuantity": {"value": 26, "unit": "breaths/minute", "system": _UCUM, "code": "/min"},
}

BLOOD_PRESSURE: dict[str, Any] = {
    "resourceType": "Observation", "id": "blood-pressure", "meta": _PROFILE,
    "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:187e0c12-8dd2-67e2-99b2-bf273c878281"}],
    "basedOn": [{"identifier": {"system": "https://acme.org/identifiers", "value": "1234"}}],
    "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                              "code": "vital-signs", "display": "Vital Signs"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9",
                         "display": "Blood pressure panel with all children optional"}],
             "text": "Blood pressure systolic & diastolic"},
    "subject": {"reference": "Patient/example"}, "effectiveDateTime": "2012-09-17",
    "performer": [{"reference": "Practitioner/example"}],
    "interpretation": [{"coding": [{"system": _INTERP, "code": "L", "display": "low"}], "text": "Below low normal"}],
    "bodySite": {"coding": [{"system": "http://snomed.info/sct", "code": "368209003", "display": "Right arm"}]},
    "component": [
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"},
                             {"system": "http://snomed.info/sct", "code": "271649006",
                              "display": "Systolic blood pressure"},
                             {"system": "http://acme.org/devices/clinical-codes", "code": "bp-s",
                              "display": "Systolic Blood pressure"}]},
         "valueQuantity": {"value": 107, "unit": "mmHg", "system": _UCUM, "code": "mm[Hg]"},
         "interpretation": [{"coding": [{"system": _INTERP, "code": "N", "display": "normal"}], "text": "Normal"}]},
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4", "display": "Diastolic blood pressure"}]},
         "valueQuantity": {"value": 60, "unit": "mmHg", "system": _UCUM, "code": "mm[Hg]"},
         "interpretation": [{"coding": [{"system": _INTERP, "code": "L", "display": "low"}],
                             "text": "Below low normal"}]},
    ],
}

SAT_O2: dict[str, Any] = {
    "resourceType": "Observation", "id": "satO2", "meta": _PROFILE,
    "identifier": [{"system": "http://goodcare.org/observation/id", "value": "o1223435-10"}],
    "partOf": [{"reference": "Procedure/ob"}], "status": "final", "category": [_VS],
    "code": {"coding": [
        {"system": "http://loinc.org", "code": "2708-6", "display": "Oxygen saturation in Arterial blood"},
        {"system": "http://loinc.org", "code": "59408-5",
         "display": "Oxygen saturation in Arterial blood by Pulse oximetry"},
        {"system": "urn:iso:std:iso:11073:10101", "code": "150456", "display": "MDC_PULS_OXIM_SAT_O2"}]},
    "subject": {"reference": "Patient/example"}, "effectiveDateTime": "2014-12-05T09:30:10+01:00",
    "valueQuantity": {"value": 95, "unit": "%", "system": _UCUM, "code": "%"},
    "interpretation": [{"coding": [{"system": _INTERP, "code": "N", "display": "Normal"}],
                        "text": "Normal (applies to non-numeric results)"}],
    "device": {"reference": "DeviceMetric/example"},
    "referenceRange": [{"low": {"value": 90, "unit": "%", "system": _UCUM, "code": "%"},
                        "high": {"value": 99, "unit": "%", "system": _UCUM, "code": "%"}}],
}

BODY_WEIGHT: dict[str, Any] = {
    "resourceType": "Observation", "id": "example", "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                              "code": "vital-signs", "display": "Vital Signs"}]}],
    "code": {"coding": [
        {"system": "http://loinc.org", "code": "29463-7", "display": "Body Weight"},
        {"system": "http://loinc.org", "code": "3141-9", "display": "Body weight Measured"},
        {"system": "http://snomed.info/sct", "code": "27113001", "display": "Body weight"},
        {"system": "http://acme.org/devices/clinical-codes", "code": "body-weight", "display": "Body Weight"}]},
    "subject": {"reference": "Patient/example"}, "encounter": {"reference": "Encounter/example"},
    "effectiveDateTime": "2016-03-28",
    "valueQuantity": {"value": 185, "unit": "lbs", "system": _UCUM, "code": "[lb_av]"},
}

# (example, effectiveDateTime as published, the native measure and its canonical value)
EXAMPLES: list[tuple[dict[str, Any], str, float]] = [
    (HEART_RATE, "heart_rate", 44.0),
    (BODY_TEMPERATURE, "temperature", 36.5),
    (RESPIRATORY_RATE, "resp_rate", 26.0),
    (SAT_O2, "spo2", 95.0),
]
