"""Native events written as FHIR R4 (every event) or HL7 v2 ORU^R01 (vitals and labs).

FHIR: an event that a contract resource can carry exactly is written as that resource
(Observation, MedicationAdministration) with the crswatch provenance extension (the
native event_id, source, quote and assumption), so the adapter reads it back to the same
event. Everything else (findings, attributions, neurological assessments, baselines,
oxygen without a documented device or with a reason, infusions without a rate or at
maximal dose, analytes without a contract LOINC code, ...) is written as a `Basic`
resource of the crswatch native-event profile, which carries the native event as JSON.
Both extensions are crswatch's own and outside the hospital contract. Each resource is
read back before it is written; if the adapter would not give back exactly the event, the
event is written as native-event instead, so the round trip holds by construction.

HL7 v2: one ORU^R01 per vitals or lab event (vitals with IEEE 11073 MDC codes as a
monitor gateway sends them, labs with LOINC), for tests and demonstrations; other events
have no HL7 v2 form here.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

from models.events import ClinicalEvent, DrugDose, Infusion, LabResult, OxygenSupport, PatientContext, VitalSigns
from models.units import VITAL_UNITS
from models.vocabulary import DrugClass, OxygenDevice
from streams.feeds.fhir import CRSWATCH_CODES, NATIVE_EVENT_URL, PROVENANCE_URL, from_resource
from streams.feeds.normalised import Ignore, Reject
from streams.feeds.terminology import (
    AGENT_NAME,
    CAR_T_PRODUCT_NAMES,
    DOSE_NAMES,
    LOINC,
    LOINC_CODES,
    LOINC_FOR,
    MDC_CODES,
    MDC_FOR_MEASURE,
    RXNORM,
    RXNORM_FOR,
    SNOMED,
    SNOMED_FOR_DEVICE,
    UCUM,
)

VITAL_FIELDS = ("temperature", "heart_rate", "sbp", "dbp", "map", "spo2", "resp_rate")
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def fhir_id(event_id: str) -> str:
    if _ID.fullmatch(event_id):
        return event_id
    clean = re.sub(r"[^A-Za-z0-9\-.]", "-", event_id)[:40]
    return f"{clean}-{hashlib.sha1(event_id.encode()).hexdigest()[:16]}"


def _provenance(ev: ClinicalEvent) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"url": "event-id", "valueString": ev.event_id}]
    if ev.logical_id is not None:
        parts.append({"url": "logical-id", "valueString": ev.logical_id})
    if ev.version is not None:
        parts.append({"url": "version", "valueInteger": ev.version})
    for key in ("source", "quote", "assumption"):
        value = getattr(ev.provenance, key)
        if value is not None:
            parts.append({"url": key, "valueString": value})
    return {"url": PROVENANCE_URL, "extension": parts}


def _resource(rtype: str, ev: ClinicalEvent) -> dict[str, Any]:
    return {"resourceType": rtype, "id": fhir_id(ev.event_id), "extension": [_provenance(ev)],
            "subject": {"reference": f"Patient/{ev.patient_id}"}}


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _code(code: str) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": code, "display": LOINC_CODES[code][1]}]}


def _observation(ev: ClinicalEvent, code: str, category: str) -> dict[str, Any]:
    res = _resource("Observation", ev)
    res.update(status="final", category=[{"coding": [{"system": _CATEGORY, "code": category}]}], code=_code(code),
               effectiveDateTime=ev.time.isoformat())
    if ev.recorded_time is not None:
        res["issued"] = ev.recorded_time.isoformat()
    return res


def _vitals(ev: VitalSigns) -> dict[str, Any] | None:
    present = [f for f in VITAL_FIELDS if getattr(ev, f) is not None]
    if len(present) == 1:
        m = getattr(ev, present[0])
        res = _observation(ev, LOINC_FOR[("vital", present[0])], "vital-signs")
        res["valueQuantity"] = _quantity(m.value, m.unit)
        return res
    if set(present) <= {"sbp", "dbp", "map"}:
        res = _observation(ev, "85354-9", "vital-signs")
        res["component"] = [{"code": _code(LOINC_FOR[("vital", f)]),
                             "valueQuantity": _quantity(getattr(ev, f).value, getattr(ev, f).unit)} for f in present]
        return res
    return None


def _lab(ev: LabResult) -> dict[str, Any] | None:
    code = LOINC_FOR.get(("lab", ev.analyte.value))
    if code is None:
        return None
    res = _observation(ev, code, "laboratory")
    res["valueQuantity"] = _quantity(ev.value, ev.unit)
    if ev.comparator is not None:
        res["valueQuantity"]["comparator"] = ev.comparator
    return res


def _oxygen(ev: OxygenSupport) -> dict[str, Any] | None:
    if ev.reason is not None:
        return None  # an Observation has no reason in R4
    if ev.device is None:
        if (ev.flow_l_min is None) == (ev.fio2_pct is None):
            return None
        code, value, unit = ("3151-8", ev.flow_l_min, "L/min") if ev.flow_l_min is not None else (
            "3150-0", ev.fio2_pct, "%")
        res = _observation(ev, code, "vital-signs")
        res["valueQuantity"] = _quantity(float(value or 0.0), unit)
        return res
    if ev.device is OxygenDevice.UNSPECIFIED or ev.flow_l_min is not None or ev.fio2_pct is not None:
        return None
    res = _observation(ev, "107117-4", "vital-signs")
    sct = SNOMED_FOR_DEVICE[ev.device]
    res["valueCodeableConcept"] = {"coding": [{"system": SNOMED, "code": sct}], "text": ev.device.value}
    return res


def _medication(ev: ClinicalEvent, name: str) -> dict[str, Any]:
    res = _resource("MedicationAdministration", ev)
    concept: dict[str, Any] = {"text": name}
    if name in RXNORM_FOR:
        concept["coding"] = [{"system": RXNORM, "code": RXNORM_FOR[name], "display": name}]
    res["medicationCodeableConcept"] = concept
    reason = getattr(ev, "reason", None)
    if reason is not None:
        res["reasonCode"] = [{"text": reason}]
    return res


def _infusion(ev: Infusion) -> dict[str, Any] | None:
    res = _medication(ev, AGENT_NAME[ev.agent])
    if ev.at_max_dose:
        return None
    if ev.action == "stop" and ev.rate is None:
        res.update(status="completed", effectivePeriod={"end": ev.time.isoformat()})
        return res
    if ev.rate is None or ev.unit is None:
        return None
    res.update(status="in-progress", effectivePeriod={"start": ev.time.isoformat()},
               dosage={"rateQuantity": _quantity(ev.rate, ev.unit)})
    return res


def _dose(ev: DrugDose) -> dict[str, Any] | None:
    name = ev.drug
    car_t_by_name = any(p in name for p in CAR_T_PRODUCT_NAMES)
    if name not in DOSE_NAMES and not car_t_by_name:
        return None
    if ev.drug_class is not None and not (car_t_by_name and ev.drug_class is DrugClass.CAR_T):
        return None
    res = _medication(ev, name)
    res.update(status="completed", effectiveDateTime=ev.time.isoformat())
    if ev.dose is not None and ev.unit is not None:
        res["dosage"] = {"dose": _quantity(ev.dose, ev.unit)}
    return res


def _weight(ev: PatientContext) -> dict[str, Any] | None:
    if ev.weight is None or ev.baselines or ev.immunosuppression is not None:
        return None
    res = _observation(ev, "29463-7", "vital-signs")
    res["valueQuantity"] = _quantity(ev.weight.value, ev.weight.unit)
    return res


def native_resource(ev: ClinicalEvent) -> dict[str, Any]:
    """A `Basic` resource of the crswatch native-event profile (outside the hospital contract)."""
    return {"resourceType": "Basic", "id": fhir_id(ev.event_id),
            "code": {"coding": [{"system": CRSWATCH_CODES, "code": "native-event"}], "text": f"crswatch {ev.kind}"},
            "subject": {"reference": f"Patient/{ev.patient_id}"},
            "extension": [{"url": NATIVE_EVENT_URL, "valueString": ev.model_dump_json(exclude_none=True)}]}


def contract_resource(ev: ClinicalEvent) -> dict[str, Any] | None:
    """The contract resource that carries `ev`, or None when there is none."""
    if isinstance(ev, VitalSigns):
        return _vitals(ev)
    if isinstance(ev, LabResult):
        return _lab(ev)
    if isinstance(ev, OxygenSupport):
        return _oxygen(ev)
    if isinstance(ev, Infusion):
        return _infusion(ev)
    if isinstance(ev, DrugDose):
        return _dose(ev)
    if isinstance(ev, PatientContext):
        return _weight(ev)
    return None


def to_fhir(ev: ClinicalEvent) -> tuple[dict[str, Any], bool]:
    """(resource, True if a contract resource) that the FHIR adapter reads back to exactly `ev`."""
    res = contract_resource(ev)
    if res is not None:
        try:
            back = from_resource(res, ev.provenance.source)
        except (Reject, Ignore):
            back = []
        if [e.model_dump(mode="json") for e in back] == [ev.model_dump(mode="json")]:
            return res, True
    return native_resource(ev), False


def export_fhir_lines(line: str) -> tuple[str, bool]:
    """One native JSON line as one FHIR NDJSON line. Raises ValueError for an invalid event."""
    from models.events import parse_event

    res, standard = to_fhir(parse_event(line))
    return json.dumps(res, ensure_ascii=False, separators=(",", ":")), standard


# ---------------------------------------------------------------- HL7 v2

# Numeric MDC unit codes as monitor gateways send them next to the reference id.
_MDC_UNIT = {"Cel": "268192^MDC_DIM_DEGC", "/min": "264864^MDC_DIM_BEAT_PER_MIN", "mm[Hg]": "266016^MDC_DIM_MMHG",
             "%": "262688^MDC_DIM_PERCENT"}


def _hl7_escape(text: str) -> str:
    return (text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("&", "\\T\\")
            .replace("~", "\\R\\"))


def hl7_ts(ev_time: datetime) -> str:
    offset = ev_time.strftime("%z") or "+0000"
    frac = f".{ev_time.microsecond // 100:04d}" if ev_time.microsecond else ""
    return ev_time.strftime("%Y%m%d%H%M%S") + frac + offset


def to_hl7(ev: ClinicalEvent, control_id: str) -> str | None:
    """One ORU^R01 message for a vitals or lab event, or None when it has no HL7 form here."""
    ts = hl7_ts(ev.time)
    obx: list[str] = []
    if isinstance(ev, VitalSigns):
        for n, f in enumerate((f for f in VITAL_FIELDS if getattr(ev, f) is not None), 1):
            m = getattr(ev, f)
            code = MDC_FOR_MEASURE[f]
            unit = _MDC_UNIT[VITAL_UNITS[f][0]] if f != "resp_rate" else "264928^MDC_DIM_RESP_PER_MIN"
            obx.append(f"OBX|{n}|NM|{code}^{MDC_CODES[code][1]}^MDC||{m.value!r}|{unit}^MDC|||||F|||{ts}")
    elif isinstance(ev, LabResult):
        loinc = LOINC_FOR.get(("lab", ev.analyte.value))
        if loinc is None or ev.unit not in LOINC_CODES[loinc][2]:
            return None
        code = loinc
        value = f"{ev.comparator}^{ev.value!r}" if ev.comparator else repr(ev.value)
        vtype = "SN" if ev.comparator else "NM"
        display = _hl7_escape(LOINC_CODES[code][1])
        obx.append(f"OBX|1|{vtype}|{code}^{display}^LN||{value}|{_hl7_escape(ev.unit)}^^UCUM|||||F|||{ts}")
    else:
        return None
    return "\r".join([
        f"MSH|^~\\&|CRSWATCH|EXPORT|CRSWATCH|MONITOR|{ts}||ORU^R01^ORU_R01|{_hl7_escape(control_id)}|P|2.6",
        f"PID|||{_hl7_escape(ev.patient_id)}",
        f"OBR|1||||||{ts}",
        *obx,
    ]) + "\r"
