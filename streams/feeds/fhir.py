"""FHIR R4 adapter: Observation and MedicationAdministration in, native events out.

Implements the FHIR R4 input contract (docs/feeds.md). Every resource ends as events, as ignored
(status cancelled / not-done / registered: no value; a FHIR resource type crswatch does not
monitor, e.g. Patient or Encounter: "skipped, not monitored") or as a rejection whose reason
names the contract rule it broke. Contract extensions (docs/feeds.md): references to a
Bundle's entries by fullUrl (`urn:uuid:`), medicationReference to a contained or Bundle
Medication, a CAR-T product's dose kept as given, pulse-oximetry and BP-panel components
(3150-0, 55284-4, components without a value skipped), annotated `/min` and a UCUM-spelled
`unit` without `code`.

Parsing: the hot path is a hand-written contract validator over `orjson.loads` output
(strict JSON: NaN and Infinity are malformed JSON, as the JSON standard has it).
fhir.resources (R4B models, structurally R4 for these resources) validates a resource in
~140-160 us on this machine, i.e. at most ~7,000 resources/s on one core, below the
20,000/s target; the contract checks plus the native pydantic model take ~25 us. The
contract is narrower than FHIR (it names every element it reads), so the hand-written
path checks exactly what the monitor uses. `strict=True` adds the full fhir.resources
validation per resource (structure and datatypes of the whole resource); the tests run
every example and every exported resource through it.

Identity: event_id is `<resourceType>/<id>` (+ `/_history/<versionId>`), logical_id is
`<resourceType>/<id>`, version orders the versions: meta.versionId when it is an integer,
else meta.lastUpdated in microseconds since 1970 (opaque versionIds; without lastUpdated
such a resource is rejected: its versions cannot be ordered). One
resource may give several events (a pulse-oximetry Observation with an oxygen-flow
component; a completed infusion segment gives its start and its end): they share the
logical id and version and are replaced or retracted together (alerts.log).

Outside the hospital contract, two crswatch extensions let `crswatch export` round-trip
native case files (see streams/feeds/export.py): NATIVE_EVENT_URL on a `Basic` resource carries
a native event the contract has no row for, and PROVENANCE_URL carries a native event's
identity and provenance on a standard resource.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from models.events import AGENT_RATE_UNITS, ClinicalEvent, InvalidEvent, Provenance, parse_event
from models.units import canonical_unit_name, resolve_unit
from models.vocabulary import DrugClass, VasoactiveAgent
from models.vocabulary import drug_class as class_of_drug
from streams.feeds.normalised import Ignore, Ignored, Normalised, Reject, Rejection
from streams.feeds.terminology import (
    CAR_T_PRODUCT_NAMES,
    FHIR_NOT_MONITORED,
    GENERIC_NAMES,
    LOINC,
    LOINC_CODES,
    PANEL_COMPONENTS,
    PANEL_RULE,
    RXNORM,
    RXNORM_DRUGS,
    SNOMED,
    SNOMED_DEVICE,
    SNOMED_REASONS,
    UCUM,
    UCUM_ANNOTATED_PER_MIN,
    VASOACTIVE_NAMES,
    name_key,
)

NATIVE_EVENT_URL = "urn:crswatch:fhir:StructureDefinition:native-event"
PROVENANCE_URL = "urn:crswatch:fhir:StructureDefinition:provenance"
CRSWATCH_CODES = "urn:crswatch:fhir:CodeSystem:native"

BUNDLE_TYPES = frozenset({"collection", "transaction", "batch", "message"})
OBS_ACCEPTED = frozenset({"final", "amended", "corrected", "preliminary"})
OBS_IGNORED = frozenset({"cancelled", "registered"})
MED_ACCEPTED = frozenset({"in-progress", "completed", "stopped"})
MED_IGNORED = frozenset({"not-done"})
COMPARATORS = frozenset({"<", "<=", ">=", ">"})
RULE_TIME = "contract: times are ISO 8601 with a UTC offset"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# FHIR dateTime with a time of day: seconds are required, fractions up to 9 digits.
_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?")
_PLAIN_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# Dose units: the contract gives mg, mg/kg, g as examples; read as mass, units or cells, per kg or m2.
DOSE_UNIT = re.compile(r"(ng|ug|mg|g|U|mU|\[iU\]|\[USP'U\]|\{cells\}|10\*\d{1,2}(\{cells\})?)(/(kg|m2))?")


# ---------------------------------------------------------------- small readers


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Reject(f"{where} must be a JSON object", "invalid_value")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Reject(f"{where} must be a non-empty string", "invalid_value")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Reject(f"{where} must be a number (contract: a value that is not a finite number is rejected)",
                     "invalid_value" if value is not None else "missing_field")
    v = float(value)
    if not math.isfinite(v):
        raise Reject(f"{where} is not a finite number (contract)", "invalid_value")
    return v


def parse_time(value: Any, where: str) -> str:
    """The time as an ISO 8601 string with an offset (the native model parses it: faster than a datetime)."""
    if type(value) is not str:
        raise Reject(f"{where} must be an ISO 8601 string ({RULE_TIME})", "invalid_value")
    text = _PLAIN_TIMES.get(value)
    if text is not None:
        return text
    if _PLAIN_DATETIME.fullmatch(value):  # the common shape: seconds and a +hh:mm offset, nothing to rewrite
        try:
            datetime.fromisoformat(value)  # a real calendar date and time
            if len(_PLAIN_TIMES) >= 8192:  # feeds repeat timestamps (one per monitor cycle): a bounded memo
                _PLAIN_TIMES.clear()
            _PLAIN_TIMES[value] = value
            return value
        except ValueError:
            pass  # the general path below gives the reason
    return _parse_time(value, where)


_PLAIN_TIMES: dict[str, str] = {}


@functools.lru_cache(maxsize=1024)
def _parse_time(value: str, where: str) -> str:
    m = _DATETIME.fullmatch(value)
    if m is None:
        if re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", value):
            raise Reject(f"{where} {value!r} has no time of day and no UTC offset ({RULE_TIME})", "invalid_value")
        raise Reject(f"{where} {value!r} is not an ISO 8601 date-time with seconds ({RULE_TIME})", "invalid_value")
    if m.group(3) is None:
        raise Reject(f"{where} {value!r} has no UTC offset ({RULE_TIME}); a time without an offset is rejected",
                     "invalid_value")
    fraction = (m.group(2) or "")[:7]  # Python keeps microseconds
    try:
        text = m.group(1) + fraction + m.group(3).replace("Z", "+00:00")
        datetime.fromisoformat(text)  # a real calendar date and time
        return text
    except ValueError as exc:
        raise Reject(f"{where} {value!r}: {exc}", "invalid_value") from None


Refs = dict[str, dict[str, Any]]  # fullUrl -> resource, of the entries of one Bundle


def _patient(res: dict[str, Any], refs: Refs | None = None) -> str:
    subject = res.get("subject")
    if subject is None:
        raise Reject("subject missing (contract: the patient is subject.reference = Patient/<id>)", "missing_field")
    ref = _obj(subject, "subject").get("reference")
    if isinstance(ref, str) and not ref.startswith("Patient/"):
        return _bundle_patient(ref, refs)
    if not isinstance(ref, str) or len(ref) <= len("Patient/"):
        raise Reject(f"subject.reference {ref!r} is not Patient/<id> (contract)",
                     "missing_field" if ref is None else "invalid_value")
    pid = ref[len("Patient/"):]
    if len(pid) > 256:
        raise Reject("subject.reference: patient id longer than 256 characters", "invalid_value")
    return pid


def _bundle_patient(ref: str, refs: Refs | None) -> str:
    """The patient id of a reference to a Patient entry of the same Bundle (`urn:uuid:...`, or any
    fullUrl): the Patient's `id`, else the last part of its fullUrl (contract extension)."""
    target = refs.get(ref) if refs is not None else None
    if target is None and (refs is None or not ref.startswith("urn:")):
        hint = ("; a urn:uuid reference resolves only inside a Bundle that holds the Patient entry"
                if ref.startswith("urn:") else "")
        raise Reject(f"subject.reference {ref!r} is not Patient/<id> (contract{hint})", "invalid_value")
    if target is None:
        raise Reject(f"subject.reference {ref!r} does not resolve: no entry of this Bundle has that fullUrl",
                     "invalid_value")
    if target.get("resourceType") != "Patient":
        raise Reject(f"subject.reference {ref!r} resolves to a {target.get('resourceType')!r} entry, not a Patient",
                     "invalid_value")
    pid = target.get("id")
    if pid is None:
        pid = _safe_id(ref)
    if not isinstance(pid, str) or not _ID.fullmatch(pid):
        raise Reject(f"subject.reference {ref!r}: the Patient entry has no usable id", "invalid_value")
    return pid


def _effective(res: dict[str, Any]) -> tuple[str | None, str | None]:
    """(start, end) from effectiveDateTime or effectivePeriod; both None when absent."""
    if "effectiveDateTime" in res:
        return parse_time(res["effectiveDateTime"], "effectiveDateTime"), None
    if "effectivePeriod" in res:
        period = _obj(res["effectivePeriod"], "effectivePeriod")
        start = parse_time(period["start"], "effectivePeriod.start") if "start" in period else None
        end = parse_time(period["end"], "effectivePeriod.end") if "end" in period else None
        if start is not None and end is not None and datetime.fromisoformat(end) < datetime.fromisoformat(start):
            raise Reject("effectivePeriod.end is before effectivePeriod.start", "invalid_value")
        return start, end
    others = [k for k in res if k.startswith("effective")]
    if others:
        raise Reject(f"{others[0]} is not accepted: event time is effectiveDateTime or effectivePeriod (contract)",
                     "unsupported")
    return None, None


def _codes(concept: Any, where: str, system: str) -> list[str | None]:
    """The codes of `system` in a CodeableConcept, after checking that its codings are objects whose
    system and code are strings."""
    if type(concept) is not dict:
        raise Reject(f"{where} must be a JSON object", "invalid_value")
    codings = concept.get("coding", [])
    if type(codings) is not list:
        raise Reject(f"{where}.coding must be a list", "invalid_value")
    codes: list[str | None] = []
    for c in codings:
        if type(c) is not dict:
            raise Reject(f"{where}.coding must hold objects whose system and code are strings", "invalid_value")
        code, csys = c.get("code", ""), c.get("system", "")
        if type(code) is not str or type(csys) is not str:
            raise Reject(f"{where}.coding must hold objects whose system and code are strings", "invalid_value")
        if csys == system:
            codes.append(code or None)
    return codes


def _status(res: dict[str, Any]) -> str | None:
    status = res.get("status")
    if status is not None and not isinstance(status, str):
        raise Reject("status must be a string", "invalid_value")
    return status


def _by_status(res: dict[str, Any], ctx: _Context, ignored: frozenset[str], accepted: frozenset[str],
               accepted_text: str) -> tuple[str, str, ClinicalEvent | None]:
    """The contract's status rules, the same for both resources: an ignored status is counted,
    entered-in-error retracts (the retraction is returned), any other status outside `accepted`
    is rejected. Returns the patient id and the status."""
    kind = res["resourceType"]
    status = _status(res)
    if status in ignored:
        raise Ignore(f"{kind} status {status}: carries no value (ignored, counted; contract)")
    pid = _patient(res, ctx.refs)
    if status == "entered-in-error":
        return pid, status, ctx.retract(res, pid)
    if status not in accepted:
        raise Reject(f"{kind} status {status!r} is not accepted ({accepted_text}; entered-in-error retracts)",
                     "missing_field" if status is None else "unsupported")
    return pid, status, None


def _concept_text(concept: dict[str, Any]) -> str | None:
    text = concept.get("text")
    if isinstance(text, str) and text.strip():
        return text.strip()
    for c in concept.get("coding", []) if isinstance(concept.get("coding"), list) else []:
        if isinstance(c, dict):
            for key in ("display", "code"):
                if isinstance(c.get(key), str) and c[key].strip():
                    return str(c[key]).strip()
    return None


def _coded_reason(concept: dict[str, Any]) -> str | None:
    """The term of a SNOMED CT reason code the reason rule knows (terminology.SNOMED_REASONS), if any."""
    codings = concept.get("coding")
    for c in codings if isinstance(codings, list) else []:
        if isinstance(c, dict) and c.get("system") == SNOMED and isinstance(c.get("code"), str):
            term = SNOMED_REASONS.get(c["code"].strip())
            if term is not None:
                return f"{term} (SNOMED CT {c['code'].strip()})"
    return None


def _reason(res: dict[str, Any]) -> str | None:
    reasons = res.get("reasonCode")
    if reasons is None:
        return None
    if not isinstance(reasons, list) or not reasons:
        raise Reject("reasonCode must be a non-empty list of CodeableConcept", "invalid_value")
    # A known coded reason wins over the text beside it; the text (or display, or code) is the fallback.
    texts = [_coded_reason(c) or _concept_text(c) for c in (_obj(r, "reasonCode") for r in reasons)]
    joined = "; ".join(t for t in texts if t)
    return joined or None


def _quantity(q: Any, where: str, accepted: tuple[str, ...], what: str) -> tuple[float, str, str | None]:
    """(value, UCUM code, comparator) of a Quantity whose unit the contract accepts for `what`."""
    q = _obj(q, where)
    value = _number(q.get("value"), f"{where}.value")
    code = q.get("code")
    system = q.get("system")
    if code is None:
        code = _unit_text(q, where, accepted, what)
    elif system != UCUM:
        raise Reject(f"{where}.system {system!r} is not UCUM ({UCUM}) (contract)", "invalid_value")
    # A spelling feeds send for an accepted UCUM code (ng/ml, mcg/L, K/uL, degF) is read as that code; the
    # native model records the alias in the event's provenance (models.units.resolve_unit).
    if not isinstance(code, str) or resolve_unit(code, accepted)[0] not in accepted:
        if isinstance(code, str) and code in UCUM_ANNOTATED_PER_MIN and "/min" in accepted:  # {beats}/min
            code = "/min"
        else:
            raise Reject(f"unit {code!r} not accepted for {what}: accepted {', '.join(accepted)}", "invalid_value")
    comparator = q.get("comparator")
    if comparator is not None and (not isinstance(comparator, str) or comparator not in COMPARATORS):
        raise Reject(f"{where}.comparator {comparator!r} is not one of <, <=, >=, > (contract)", "invalid_value")
    return value, str(code), comparator


def _unit_text(q: dict[str, Any], where: str, accepted: tuple[str, ...], what: str) -> str:
    """A Quantity without `code`: its `unit` text is read as the UCUM code only when it is spelled
    exactly as one of the UCUM codes accepted for `what` (or an annotated `/min`), and no other
    system is named (contract extension: a display text equal to a UCUM code is that unit)."""
    unit, system = q.get("unit"), q.get("system")
    if isinstance(unit, str) and (unit in accepted or (unit in UCUM_ANNOTATED_PER_MIN and "/min" in accepted)) \
            and system in (None, UCUM):
        return unit
    raise Reject(f"{where}.code missing and unit {unit!r} is not a UCUM code accepted for {what} (contract: the "
                 f"unit is a UCUM code; accepted {', '.join(accepted)})", "missing_field")


# ---------------------------------------------------------------- resources


class _Context:
    """What every event of one resource shares."""

    __slots__ = ("event_id", "exported", "logical_id", "provenance", "refs", "version")

    def __init__(self, res: dict[str, Any], source: str, full_url: str | None, refs: Refs | None = None) -> None:
        self.refs = refs
        rtype = res["resourceType"]
        rid = res.get("id")
        if rid is None:
            # No id (e.g. a transaction entry): the fullUrl, else the content, identifies it.
            rid = full_url or "sha1-" + hashlib.sha1(json.dumps(res, sort_keys=True).encode()).hexdigest()
        elif not isinstance(rid, str) or not _ID.fullmatch(rid):
            raise Reject(f"id {rid!r} is not a FHIR id ([A-Za-z0-9-.]{{1,64}})", "invalid_value")
        self.logical_id: str | None = f"{rtype}/{rid}"
        self.version: int | None = None
        self.event_id = self.logical_id
        meta = res.get("meta")
        if meta is not None:
            meta = _obj(meta, "meta")
            vid = meta.get("versionId")
            if vid is not None:
                self.version, text = _version(vid, meta)
                self.event_id += f"/_history/{text}"
        self.provenance: dict[str, Any] | Provenance = _provenance(source)
        self.exported = False  # carries a native event's identity (crswatch export): one event, its id
        extensions = res.get("extension")
        if extensions and type(extensions) is list:
            for ext in extensions:
                if isinstance(ext, dict) and ext.get("url") == PROVENANCE_URL:
                    self._crswatch_provenance(ext)

    def _crswatch_provenance(self, ext: dict[str, Any]) -> None:
        parts = {e.get("url"): e for e in ext.get("extension", []) if isinstance(e, dict)}
        self.exported = True
        self.event_id = _str(parts.get("event-id", {}).get("valueString"), "crswatch provenance event-id")
        self.logical_id = parts.get("logical-id", {}).get("valueString")
        self.version = parts.get("version", {}).get("valueInteger")
        self.provenance = {k: parts[k]["valueString"] for k in ("source", "quote", "assumption")
                           if k in parts and isinstance(parts[k].get("valueString"), str)}

    def event(self, kind: str, pid: str, time: str, suffix: str = "", prefix: str = "",
              **fields: Any) -> ClinicalEvent:
        event_id = self.event_id if self.exported else prefix + self.event_id + suffix
        raw: dict[str, Any] = {"kind": kind, "event_id": event_id, "patient_id": pid, "time": time,
                               "provenance": self.provenance, **fields}
        if self.logical_id is not None:
            raw["logical_id"] = self.logical_id
        if self.version is not None:
            raw["version"] = self.version
        try:
            return parse_event(raw)
        except InvalidEvent as exc:
            # Range checks (contract: a physiologically impossible value is rejected) live in the model.
            raise Reject(f"{exc.field}: {exc.reason}", exc.category) from None

    def retract(self, res: dict[str, Any], pid: str) -> ClinicalEvent:
        start, end = _effective(res)
        when = start or end
        if when is None and "issued" in res:
            when = parse_time(res["issued"], "issued")
        if when is None:
            raise Reject("entered-in-error without effective[x] or issued: no time (contract: a missing time is "
                         "rejected)", "missing_field")
        assert self.logical_id is not None
        return self.event("retract", pid, when, "/entered-in-error", retracts=self.logical_id)


def _version(vid: Any, meta: dict[str, Any]) -> tuple[int, str]:
    """(order key, text for the event id) of meta.versionId. A new versionId replaces the earlier
    version (contract), so versions must order: an all-digit versionId is that integer; any other
    (FHIR versionId is an id, and some servers send opaque ones) is ordered by meta.lastUpdated,
    as microseconds since 1970."""
    if type(vid) is str and vid.isascii() and vid.isdigit() and len(vid) <= 18:  # within a 64-bit integer
        version = int(vid)
        return version, str(version)
    if not isinstance(vid, str) or not _ID.fullmatch(vid):
        raise Reject(f"meta.versionId {vid!r} is not a FHIR id ([A-Za-z0-9-.]{{1,64}})", "invalid_value")
    if "lastUpdated" not in meta:
        raise Reject(f"meta.versionId {vid!r} is not an integer and meta.lastUpdated is missing: the versions of "
                     "this resource cannot be ordered (contract: a new versionId replaces the earlier version)",
                     "missing_field")
    updated = datetime.fromisoformat(parse_time(meta["lastUpdated"], "meta.lastUpdated"))
    micros = (updated - _EPOCH) // timedelta(microseconds=1)
    if micros < 0:
        raise Reject(f"meta.lastUpdated {meta['lastUpdated']!r} is before 1970: it cannot order meta.versionId "
                     f"{vid!r}", "invalid_value")
    return micros, vid


@functools.lru_cache(maxsize=1024)
def _provenance(source: str) -> Provenance:
    return Provenance(source=source)  # an instance is not validated again by the event model


def _loinc(res: dict[str, Any]) -> tuple[str, str, tuple[str, ...], tuple[str, str]]:
    """(code, display, accepted units, target) of the Observation's LOINC code; with components, a
    code that has them (US Core pulse oximetry codes 2708-6 before 59408-5)."""
    if "code" not in res:
        raise Reject("code missing (contract: a missing code is rejected)", "missing_field")
    loincs = _codes(res["code"], "code", LOINC)
    if "component" in res and len(loincs) > 1:
        loincs = sorted(loincs, key=lambda c: c not in PANEL_COMPONENTS)
    for code in loincs:
        if code in LOINC_CODES:
            target, display, units = LOINC_CODES[code]
            return code, display, units, target
    if loincs:
        raise Reject(f"LOINC {loincs[0]} is not in the contract's Observation table", "unsupported")
    raise Reject(f"code has no LOINC coding (system {LOINC}); the contract identifies observations by LOINC",
                 "unsupported")


def observation(res: dict[str, Any], ctx: _Context) -> list[ClinicalEvent]:
    pid, _, retraction = _by_status(res, ctx, OBS_IGNORED, OBS_ACCEPTED, "final, amended, corrected, preliminary")
    if retraction is not None:
        return [retraction]
    code, display, units, (kind, name) = _loinc(res)
    what = f"LOINC {code} ({display})"
    start, _ = _effective(res)
    if start is None:
        raise Reject("effectiveDateTime or effectivePeriod.start missing (contract: a missing time is rejected)",
                     "missing_field")
    extra: dict[str, Any] = {}
    if "issued" in res:
        extra["recorded_time"] = parse_time(res["issued"], "issued")
    components = res.get("component")
    if components is not None and code not in PANEL_COMPONENTS:
        raise Reject(f"component is not accepted on {what} (contract: only the blood pressure panels 85354-9 / "
                     "55284-4 and pulse oximetry 59408-5 / 2708-6 have components)", "unsupported")

    if kind == "method":
        concept = res.get("valueCodeableConcept")
        if concept is None:
            raise Reject(f"valueCodeableConcept missing on {what} (contract: a missing value is rejected)",
                         "missing_field")
        sct = _codes(concept, "valueCodeableConcept", SNOMED)
        device = next((SNOMED_DEVICE[c] for c in sct if c in SNOMED_DEVICE), None)
        if device is None:
            raise Reject(f"method of oxygen delivery {sct[0] if sct else 'without a SNOMED CT coding'} is not in the "
                         "contract's SNOMED CT table", "unsupported")
        return [ctx.event("oxygen", pid, start, device=device.value, **extra)]

    if kind == "bp_panel":
        if not isinstance(components, list) or not components:
            raise Reject(f"{what} needs components 8480-6 / 8462-4 (contract: a missing value is rejected)",
                         "missing_field")
        measures: dict[str, Any] = {_VITAL_OF[c]: m for c, m in _components(components, code).items()}
        if not measures:
            raise Reject(f"{what}: no component has a value (contract: a missing value is rejected)",
                         "missing_field")
        return [ctx.event("vitals", pid, start, **measures, **extra)]

    value, unit, comparator = _quantity(_value_quantity(res, what), "valueQuantity", units, what)
    if comparator is not None and kind != "lab":
        raise Reject(f"comparator {comparator!r} on {what}: the contract takes comparators on lab results only",
                     "invalid_value")
    if kind == "vital":
        measure: dict[str, Any] = {name: {"value": value, "unit": unit}}
        events = [ctx.event("vitals", pid, start, **measure, **extra)]
        if components:  # pulse oximetry: the inhaled oxygen flow and concentration
            for c, m in _components(components, code).items():
                if c == "3150-0":
                    events.append(ctx.event("oxygen", pid, start, "#fio2_pct", fio2_pct=m["value"]))
                else:
                    events.append(ctx.event("oxygen", pid, start, "#flow_l_min", flow_l_min=m["value"]))
        return events
    if kind == "lab":
        if comparator is not None:
            extra["comparator"] = comparator
        return [ctx.event("lab", pid, start, analyte=name, value=value, unit=unit, **extra)]
    if kind == "weight":
        return [ctx.event("context", pid, start, weight={"value": value, "unit": unit})]
    alone: dict[str, Any] = {"flow_l_min" if kind == "flow" else "fio2_pct": value}
    return [ctx.event("oxygen", pid, start, **alone)]


_VITAL_OF = {"8480-6": "sbp", "8462-4": "dbp", "8478-0": "map"}


def _value_quantity(res: dict[str, Any], what: str) -> Any:
    if "valueQuantity" in res:
        return res["valueQuantity"]
    others = [k for k in res if k.startswith("value")]
    if others:
        raise Reject(f"{others[0]} on {what}: the contract takes valueQuantity", "unsupported")
    raise Reject(f"valueQuantity missing on {what} (contract: a missing value is rejected)", "missing_field")


def _components(components: Any, panel: str) -> dict[str, Any]:
    """LOINC code -> {"value", "unit"} for each component the contract allows in `panel`."""
    if not isinstance(components, list):
        raise Reject("component must be a list", "invalid_value")
    out: dict[str, Any] = {}
    for n, comp in enumerate(components):
        where = f"component[{n}]"
        comp = _obj(comp, where)
        codes = _codes(comp.get("code", {}), where + ".code", LOINC)
        code = next((c for c in codes if c in PANEL_COMPONENTS[panel]), None)
        if code is None:
            raise Reject(f"component[{n}] LOINC {codes[0] if codes else '(none)'} is not a component of {panel} "
                         f"(contract: {PANEL_RULE[panel]})", "unsupported")
        _, display, units = LOINC_CODES[code]
        what = f"LOINC {code} ({display})"
        if "valueQuantity" not in comp:
            if "dataAbsentReason" in comp or not any(k.startswith("value") for k in comp):
                continue  # a component without a value (US Core: dataAbsentReason); the others are kept
            raise Reject(f"component[{n}] {what}: valueQuantity missing (contract: a missing value is rejected)",
                         "missing_field")
        value, unit, comparator = _quantity(comp["valueQuantity"], where + ".valueQuantity", units, what)
        if comparator is not None:
            raise Reject(f"comparator on {what}: the contract takes comparators on lab results only",
                         "invalid_value")
        out[code] = {"value": value, "unit": unit}
    return out


def _medication_reference(res: dict[str, Any], refs: Refs | None) -> tuple[dict[str, Any], str]:
    """(code of the referenced Medication, where) for medicationReference to a contained Medication
    (`#id`) or to a Medication entry of the same Bundle (by fullUrl). Contract extension."""
    ref = _obj(res["medicationReference"], "medicationReference").get("reference")
    if not isinstance(ref, str) or not ref:
        raise Reject("medicationReference.reference missing (contract: a missing code is rejected)", "missing_field")
    target: Any = None
    if ref.startswith("#"):
        contained = res.get("contained", [])
        if not isinstance(contained, list):
            raise Reject("contained must be a list", "invalid_value")
        target = next((c for c in contained if isinstance(c, dict) and c.get("id") == ref[1:]), None)
        if target is None:
            raise Reject(f"medicationReference {ref!r}: no contained resource has id {ref[1:]!r}", "invalid_value")
    elif refs is not None and ref in refs:
        target = refs[ref]
    else:
        raise Reject(f"medicationReference {ref!r} cannot be resolved: crswatch reads a contained Medication (#id) "
                     "or a Medication entry of the same Bundle", "unsupported")
    if target.get("resourceType") != "Medication":
        raise Reject(f"medicationReference {ref!r} is a {target.get('resourceType')!r}, not a Medication",
                     "invalid_value")
    if "code" not in target:
        raise Reject(f"medicationReference {ref!r}: the Medication has no code (contract: a missing code is "
                     "rejected)", "missing_field")
    return _obj(target["code"], "Medication.code"), "Medication.code"


def _drug(res: dict[str, Any], refs: Refs | None = None) -> tuple[str, VasoactiveAgent | None, DrugClass | None]:
    """(generic name, agent if vasoactive, class override) from medicationCodeableConcept, or from
    the code of the Medication that medicationReference points to."""
    if "medicationCodeableConcept" in res:
        concept, where = _obj(res["medicationCodeableConcept"], "medicationCodeableConcept"), \
            "medicationCodeableConcept"
    elif "medicationReference" in res:
        concept, where = _medication_reference(res, refs)
    else:
        raise Reject("medicationCodeableConcept missing (contract: a missing code is rejected)", "missing_field")
    rx = _codes(concept, where, RXNORM)
    codings: list[dict[str, Any]] = concept.get("coding", [])  # checked by _codes
    for code in rx:
        if code in RXNORM_DRUGS:
            name = RXNORM_DRUGS[code]
            return name, VASOACTIVE_NAMES.get(name), None
    names = [concept.get("text")] + [c.get("display") for c in codings]
    for raw in names:
        if not isinstance(raw, str):
            continue
        generic = GENERIC_NAMES.get(name_key(raw))  # the table's names as written, any case and spacing
        if generic is not None:
            return generic, VASOACTIVE_NAMES.get(generic), None
        name = " ".join(raw.lower().split())
        if any(p in name for p in CAR_T_PRODUCT_NAMES):
            return name, None, DrugClass.CAR_T
    label = f"RxNorm {rx[0]}" if rx else repr(next((n for n in names if isinstance(n, str)), None))
    raise Reject(f"medication {label} is not in the contract's MedicationAdministration table (RxNorm code, or "
                 "text/display equal to the generic name)", "unsupported")


def medication_administration(res: dict[str, Any], ctx: _Context) -> list[ClinicalEvent]:
    pid, status, retraction = _by_status(res, ctx, MED_IGNORED, MED_ACCEPTED, "in-progress, completed, stopped")
    if retraction is not None:
        return [retraction]
    name, agent, drug_class = _drug(res, ctx.refs)
    start, end = _effective(res)
    reason = _reason(res)
    dosage = _obj(res.get("dosage", {}), "dosage")
    common: dict[str, Any] = {"reason": reason} if reason is not None else {}
    if agent is not None:
        return _infusion(ctx, pid, status, agent, name, start, end, dosage, common)
    if start is None:
        raise Reject("effectiveDateTime or effectivePeriod.start missing (contract: a missing time is rejected)",
                     "missing_field")
    if (drug_class or class_of_drug(name)) is DrugClass.CAR_T:
        dose, unread = _cell_dose(dosage)  # whatever its dose or rate: the infusion is Day 0
        common.update(dose)
        if unread:
            prov = ctx.provenance
            source = (prov.get("source") if isinstance(prov, dict) else prov.source) or "fhir"
            common["provenance"] = {"source": source, "assumption": unread}
    elif "rateQuantity" in dosage or "rateRatio" in dosage:
        raise Reject(f"{name} is given as a dose (contract): dosage.rate is not accepted", "unsupported")
    elif "dose" in dosage:
        q = _obj(dosage["dose"], "dosage.dose")
        common["dose"] = _number(q.get("value"), "dosage.dose.value")
        unit = q.get("code")
        if not isinstance(unit, str) or q.get("system") != UCUM:
            raise Reject("dosage.dose needs a UCUM unit (system and code)", "missing_field" if unit is None
                         else "invalid_value")
        if not DOSE_UNIT.fullmatch(unit):
            raise Reject(f"dose unit {unit!r} is not a dose unit (mass, units or cells, optionally per kg or m2; "
                         "contract: for example mg, mg/kg, g)", "invalid_value")
        common["unit"] = unit
    if drug_class is not None:
        common["drug_class"] = drug_class.value
    return [ctx.event("dose", pid, start, drug=name, **common)]


def _cell_dose(dosage: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """(dose fields, why a dose was not kept) of a CAR-T cell product, as given (contract extension):
    the dose plays no part in grading (the infusion is Day 0), so any unit is kept (`1`, `{cells}`,
    `10*6`, `mL`, ...) and a dose that cannot be read is left out, and said, rather than losing the
    infusion."""
    q = dosage.get("dose")
    if q is None:
        return {}, None
    value = q.get("value") if isinstance(q, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return {}, f"dosage.dose of the CAR-T product not kept: {json.dumps(q)[:200]} is not a dose (value >= 0)"
    unit = q.get("code") if isinstance(q.get("code"), str) and q.get("code") else q.get("unit")
    return {"dose": float(value), **({"unit": unit.strip()[:64]} if isinstance(unit, str) and unit.strip() else {})}, \
        None


def _infusion(ctx: _Context, pid: str, status: str, agent: VasoactiveAgent, name: str, start: str | None,
              end: str | None, dosage: dict[str, Any], common: dict[str, Any]) -> list[ClinicalEvent]:
    allowed = sorted(AGENT_RATE_UNITS[agent] | ({"[USP'U]/min"} if agent is VasoactiveAgent.VASOPRESSIN else set()))
    rate: dict[str, Any] = {}
    if "rateQuantity" in dosage:
        q = _obj(dosage["rateQuantity"], "dosage.rateQuantity")
        value = _number(q.get("value"), "dosage.rateQuantity.value")
        unit = q.get("code")
        if not isinstance(unit, str) or canonical_unit_name(unit) not in AGENT_RATE_UNITS[agent] or (
                unit != canonical_unit_name(unit) and unit != "[USP'U]/min"):
            raise Reject(f"rate unit {unit!r} not accepted for {name}: accepted {', '.join(allowed)}",
                         "missing_field" if unit is None else "invalid_value")
        if value < 0:
            raise Reject(f"dosage.rateQuantity.value {value:g} is negative (contract: a negative rate is rejected)",
                         "invalid_value")
        rate = {"rate": value, "unit": canonical_unit_name(unit)}
    elif "rateRatio" in dosage:
        raise Reject("dosage.rateRatio is not accepted: the contract takes dosage.rateQuantity", "unsupported")
    if status == "in-progress":
        if start is None:
            raise Reject("an infusion segment needs effectivePeriod.start (contract)", "missing_field")
        if not rate:
            raise Reject(f"an infusion segment of {name} needs dosage.rateQuantity (contract: a missing value is "
                         "rejected)", "missing_field")
        return [ctx.event("infusion", pid, start, action="start", agent=agent.value, **rate, **common)]
    if end is None:
        raise Reject(f"{status} infusion without effectivePeriod.end: the end time is missing (contract)",
                     "missing_field")
    events = []
    if start is not None:  # the segment as a whole; its earlier in-progress version is replaced by it
        events.append(ctx.event("infusion", pid, start, "#start", action="start", agent=agent.value, **rate,
                                **common))
    # "~" sorts after every resource type name: a segment that ends when the next one starts is
    # ordered after that start (same event time), and the fold lets the newer segment run on.
    events.append(ctx.event("infusion", pid, end, "#stop", prefix="~", action="stop", agent=agent.value, **common))
    return events


def native_event(res: dict[str, Any], source: str) -> list[ClinicalEvent]:
    """A `Basic` resource of the crswatch native-event profile (outside the hospital contract)."""
    codes = _codes(res.get("code", {}), "code", CRSWATCH_CODES)
    if "native-event" not in codes:
        raise Reject("resourceType 'Basic' is accepted only in the crswatch native-event profile (contract: "
                     "Observation and MedicationAdministration)", "unknown_kind")
    values = [e.get("valueString") for e in res.get("extension", []) if isinstance(e, dict)
              and e.get("url") == NATIVE_EVENT_URL]
    if len(values) != 1 or not isinstance(values[0], str):
        raise Reject(f"crswatch native-event: exactly one extension {NATIVE_EVENT_URL} with valueString needed",
                     "missing_field")
    try:
        event = parse_event(values[0])
    except InvalidEvent as exc:
        raise Reject(f"crswatch native-event: {exc}", exc.category) from None
    if _patient(res) != event.patient_id:
        raise Reject("crswatch native-event: subject does not match the event's patient_id", "invalid_value")
    return [event]


def from_resource(res: Any, source: str, full_url: str | None = None, refs: Refs | None = None
                  ) -> list[ClinicalEvent]:
    """Native events of one resource (`refs`: the fullUrls of its Bundle's entries). Raises Reject or Ignore."""
    if not isinstance(res, dict):
        raise Reject("a resource must be a JSON object", "not_json")
    rtype = res.get("resourceType")
    if rtype is not None and not isinstance(rtype, str):
        raise Reject("resourceType must be a string", "invalid_value")
    if rtype == "Observation":
        return observation(res, _Context(res, source, full_url, refs))
    if rtype == "MedicationAdministration":
        return medication_administration(res, _Context(res, source, full_url, refs))
    if rtype == "Basic":
        return native_event(res, source)
    if rtype in FHIR_NOT_MONITORED:
        raise Ignore(f"skipped, not monitored: {rtype} (crswatch reads Observation and MedicationAdministration)",
                     "not_monitored")
    if rtype is None:
        raise Reject("resourceType missing (contract: Observation or MedicationAdministration)", "missing_field")
    raise Reject(f"resourceType {rtype!r} is not accepted (contract: Observation and MedicationAdministration, "
                 "as NDJSON or in a Bundle)", "unknown_kind")


# ---------------------------------------------------------------- envelope


_Unit = tuple[str, Any, str | None, str, Refs | None]  # (source, resource or Reject/Ignore, fullUrl, raw, refs)


def _units(payload: str, source: str) -> list[_Unit]:
    """The resources of a payload (lists, not generators: one resource per call is the hot path)."""
    text = payload.strip()
    whole: Any = None
    if text.startswith("{"):
        try:
            whole = orjson.loads(text)
        except orjson.JSONDecodeError:
            whole = None
    if type(whole) is dict and ("\n" not in text or whole.get("resourceType") == "Bundle"):
        return _bundle_or_one(whole, source, text)
    units: list[_Unit] = []
    for n, line in enumerate(payload.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source}:{n}" if source else f"line {n}"
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            units.append((where, Reject(f"malformed JSON: {exc}", "not_json"), None, line, None))
            continue
        units += _bundle_or_one(obj, where, line)
    return units


def _bundle_or_one(obj: Any, source: str, raw: str) -> list[_Unit]:
    if type(obj) is not dict or obj.get("resourceType") != "Bundle":
        return [(source, obj, None, raw, None)]
    btype = obj.get("type")
    if not isinstance(btype, str) or btype not in BUNDLE_TYPES:
        return [(source, Reject(f"Bundle type {btype!r} is not accepted (collection, transaction, batch or "
                                "message)", "unsupported"), None, raw, None)]
    entries = obj.get("entry", [])
    if not isinstance(entries, list):
        return [(source, Reject("Bundle.entry must be a list", "invalid_value"), None, raw, None)]
    # Entries reference each other by fullUrl (urn:uuid:... in transaction Bundles, as Synthea writes them).
    refs: Refs = {e["fullUrl"]: e["resource"] for e in entries if isinstance(e, dict)
                  and isinstance(e.get("fullUrl"), str) and isinstance(e.get("resource"), dict)}
    units: list[_Unit] = []
    for n, entry in enumerate(entries):
        where = f"{source}#entry{n}"
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            units.append((where, Reject("Bundle entry without a resource", "missing_field"), None, json.dumps(entry),
                          None))
            continue
        resource = entry["resource"]
        full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
        if btype == "message" and resource.get("resourceType") == "MessageHeader":
            units.append((where, Ignore("MessageHeader of a message Bundle (ignored, counted)"), None, "", None))
        elif resource.get("resourceType") == "Bundle":
            units.append((where, Reject("a Bundle inside a Bundle is not accepted", "unsupported"), None, "", None))
        else:
            units.append((where, resource, _safe_id(full_url), json.dumps(resource), refs))
    return units


def _safe_id(full_url: str | None) -> str | None:
    """A FHIR id from a fullUrl (urn:uuid:..., or .../Type/id)."""
    if not full_url:
        return None
    tail = full_url.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return tail if _ID.fullmatch(tail) else None


def normalise_fhir(payload: bytes | str, source: str = "fhir", strict: bool = False) -> Normalised:
    """Native events from NDJSON, a Bundle or one resource; rejections name the contract rule."""
    out = Normalised()
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            out.units += 1
            out.rejected.append(Rejection(f"not UTF-8 JSON: {exc}", "not_json", payload, source))
            return out
    for where, res, full_url, raw, refs in _units(payload, source):
        out.units += 1
        try:
            if isinstance(res, (Reject, Ignore)):
                raise res
            events = from_resource(res, where, full_url, refs)
            if strict:  # after the contract checks, so that a contract reason comes first
                validate_structure(res)
        except Reject as exc:
            out.rejected.append(Rejection(exc.reason, exc.category, raw, where))
            continue
        except Ignore as exc:
            out.ignored.append(Ignored(str(exc), where, exc.kind))
            continue
        out.events += events
        out.accepted += 1
    if not out.units and payload.strip(" \t\r\n"):
        out.units = 1  # only separators (str.strip() also strips \x1c-\x1f): still an input, rejected
        out.rejected.append(Rejection("no FHIR resource in the payload", "not_json", payload, source))
    return out


def validate_structure(res: Any) -> None:
    """Full FHIR R4 structure and datatype validation (fhir.resources, R4B models). Raises Reject."""
    from fhir.resources.R4B.basic import Basic
    from fhir.resources.R4B.medicationadministration import MedicationAdministration
    from fhir.resources.R4B.observation import Observation
    from pydantic import BaseModel, ValidationError

    if not isinstance(res, dict):
        raise Reject("a resource must be a JSON object", "not_json")
    rtype = res.get("resourceType")
    models: dict[str, type[BaseModel]] = {"Observation": Observation, "MedicationAdministration":
                                          MedicationAdministration, "Basic": Basic}
    model = models.get(str(rtype))
    if model is None:
        return  # from_resource rejects it with the contract's reason
    try:
        model.model_validate(res)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        raise Reject(f"not a valid FHIR R4 {rtype}: {loc}: {err.get('msg')}", "invalid_value") from None
    except Exception as exc:  # fhir.resources raises others on some inputs (e.g. an unknown contained type)
        raise Reject(f"not a valid FHIR R4 {rtype}: {type(exc).__name__}: {exc}", "invalid_value") from None
