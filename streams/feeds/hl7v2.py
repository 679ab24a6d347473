"""HL7 v2 adapter: ORU^R01 observation results in, native events out.

OBX-3 carries a LOINC code of the FHIR input contract (labs, vitals, weight, oxygen flow,
FiO2, method of oxygen delivery) or an IEEE 11073 MDC code of a bedside vital as monitor
gateways send it (IHE PCD-01; streams.feeds.terminology.MDC_CODES); OBX-6 a UCUM unit (the
annotated `{beat}/min`, `{breath}/min` read as `/min`) or an MDC unit by reference id or
numeric code; OBX-5 the value (NM, or SN with a comparator for labs; CWE with a SNOMED CT code
for the oxygen method). Event time is OBX-14, else OBR-7, else SPM-17 (specimen collection),
else MSH-7. A time without a UTC offset is local to the sender: it is read in the source's
IANA time zone when one is given (`tz`; `--hl7-timezone`, CRSWATCH_HL7_TIMEZONE), else rejected,
as in the FHIR contract. A local time that does not exist (the hour skipped when daylight saving
time starts) is rejected; one that occurs twice (the hour repeated when it ends) is read as the
earlier and the event says so (provenance assumption). The patient is PID-3 (first identifier,
component 1). A UTF-8 byte order mark before a segment is dropped.

Vitals OBX of one message with the same time become one `vitals` event; every other OBX
becomes one event. Pulse rate (MDC_PULS_*) is used as heart rate only when no ECG heart rate
of the same time is in the message, and the event says so (provenance assumption); beside an
ECG heart rate it is ignored, counted. The unit of counting is the OBX segment: each one is
accepted, rejected with a reason or ignored (no value: device and channel headers of PCD-01,
status X); a message that cannot be read at all counts as one rejected unit, an ORU without
OBX as one ignored unit.

Event ids: `hl7/<MSH-3>/<MSH-10>/<first OBX index>/<digest>`, the digest (12 hex digits of SHA-1)
taken over the event's content: the patient, its time and the OBX segments it was read from. A
message sent twice gives the same ids (one event); two senders that reuse a control id (MSH-10)
with different readings give different ids, so the second reading is not dropped as a duplicate.

Parsing: python-hl7 (`hl7.parse`) builds a container for every field and takes ~170 us per
OBX here (~7,000 OBX/s on one core), below the 20,000/s target, so the hot path is a
small splitter that honours the message's own encoding characters (MSH-1, MSH-2) and the
escape sequences \\F\\ \\S\\ \\T\\ \\R\\ \\E\\. `strict=True` also parses each message with
python-hl7 and rejects it if that fails; the tests check that both read the same fields.
python-hl7 also provides the MLLP framing and the ACKs (streams.mllp).
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from models.events import VITAL_LIMITS, InvalidEvent, parse_event
from models.units import VITAL_UNITS, UnitError, normalise_vital, resolve_unit
from streams.feeds.normalised import Ignore, Ignored, Normalised, Reject, Rejection
from streams.feeds.terminology import (
    HL7_UNIT_ALIASES,
    LOINC_CODES,
    MDC_BY_REFID,
    MDC_CODES,
    MDC_UNIT_CODES,
    MDC_UNITS,
    SNOMED_DEVICE,
    UCUM_ANNOTATED_PER_MIN,
)

ACCEPTED_STATUS = frozenset({"", "F", "C", "P", "R", "S", "A", "U"})
IGNORED_STATUS = frozenset({"X", "I", "N"})
LOINC_SYSTEMS = frozenset({"LN", "LOINC"})
MDC_SYSTEMS = frozenset({"MDC", "IEEE11073", "ISO11073", "IEEE-11073"})
SNOMED_SYSTEMS = frozenset({"SCT", "SNOMED-CT", "SNOMEDCT", "SNM", "SNOMED CT"})
_TS = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?([+-]\d{4})?")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")
RULE_TIME = ("times need a UTC offset, as in the FHIR input contract, or a time zone for the source "
             "(--hl7-timezone / CRSWATCH_HL7_TIMEZONE)")
BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class Encoding:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    def unescape(self, text: str) -> str:
        e = self.escape
        if e not in text:
            return text
        for code, char in (("F", self.field), ("S", self.component), ("T", self.subcomponent),
                           ("R", self.repetition), ("E", e)):
            text = text.replace(f"{e}{code}{e}", char)
        return text

    def components(self, field: str) -> list[str]:
        """Components of the first repetition, unescaped (subcomponents kept as text)."""
        first = field.split(self.repetition, 1)[0]
        return [self.unescape(c) for c in first.split(self.component)]


@dataclass(slots=True)
class Oru:
    encoding: Encoding
    sending_app: str
    control_id: str
    msh_time: str
    patient_id: str
    # (OBR-7 of the OBR before it, OBX fields with fields[0] = "OBX"), in message order
    observations: list[tuple[str, list[str]]]
    # SPM-17 (specimen collection start) of each observation's OBR group, "" when none
    specimen_times: list[str] = field(default_factory=list)


def split_messages(text: str) -> list[str]:
    """Messages of a file or stream: each starts at a segment `MSH`; batch headers are dropped."""
    segments = [s for s in re.split(r"\r\n|\r|\n", text.replace("\x0b", "").replace("\x1c", "")) if s.strip()]
    messages: list[list[str]] = []
    for seg in segments:
        if seg.startswith(BOM):  # a byte order mark: at the start of a file, or of a file appended to another
            seg = seg.lstrip(BOM)
        if seg.startswith("MSH"):
            messages.append([seg])
        elif seg[:3] in ("FHS", "BHS", "BTS", "FTS"):
            continue
        elif messages:
            messages[-1].append(seg)
        else:
            messages.append([seg])  # text before any MSH: rejected as not HL7
    return ["\r".join(m) for m in messages]


def parse_oru(message: str) -> Oru:
    """The parts of an ORU^R01 the adapter reads. Raises Reject for the whole message."""
    segments = [s for s in re.split(r"\r\n|\r|\n", message.lstrip(BOM)) if s]
    if not segments or not segments[0].startswith("MSH") or len(segments[0]) < 8:
        raise Reject("not an HL7 v2 message: it must start with an MSH segment", "not_hl7")
    msh = segments[0]
    sep = msh[3]
    chars = msh[4:8] if len(msh) >= 8 else ""
    if len(set(chars + sep)) != 5 or any(c.isalnum() or c.isspace() for c in chars + sep):
        raise Reject("not an HL7 v2 message: MSH-1/MSH-2 encoding characters are invalid", "not_hl7")
    enc = Encoding(sep, chars[0], chars[1], chars[2], chars[3])
    msh_fields = msh.split(sep)  # msh_fields[n - 1] is MSH-n: MSH-1 is the separator itself

    def header(n: int) -> str:
        return msh_fields[n - 1] if n - 1 < len(msh_fields) else ""

    mtype = enc.components(header(9))
    if mtype[:1] != ["ORU"] or (len(mtype) > 1 and mtype[1] not in ("R01", "")):
        raise Reject(f"message type {'^'.join(mtype)!r} is not accepted: crswatch takes ORU^R01", "unsupported")
    patient = ""
    observations: list[tuple[str, list[str]]] = []
    obr_time = ""
    group_of: list[int] = []  # OBR group of each observation
    specimen: dict[int, str] = {}  # OBR group -> SPM-17 start
    group = 0
    for seg in segments[1:]:
        fields = seg.split(sep)
        name = fields[0]
        if name == "PID":
            if not patient and len(fields) > 3:
                patient = enc.components(fields[3])[0].strip()
        elif name == "OBR":
            obr_time = enc.components(fields[7])[0] if len(fields) > 7 else ""
            group += 1
        elif name == "OBX":
            observations.append((obr_time, fields))
            group_of.append(group)
        elif name == "SPM":
            # SPM-17 is a DR (start ^ end); its start may carry a precision subcomponent (DTM&precision)
            start = enc.components(fields[17])[0].split(enc.subcomponent, 1)[0] if len(fields) > 17 else ""
            if start.strip() and group not in specimen:
                specimen[group] = start.strip()
        elif len(name) != 3 or not name.isalnum():
            raise Reject(f"not an HL7 v2 message: segment name {name[:20]!r} is not three letters or digits", "not_hl7")
    if not patient:
        raise Reject("PID-3 (patient identifier) missing: the patient is PID-3", "missing_field")
    if len(patient) > 256:
        raise Reject("PID-3: patient identifier longer than 256 characters", "invalid_value")
    return Oru(enc, enc.components(header(3))[0], enc.components(header(10))[0], enc.components(header(7))[0], patient,
               observations, [specimen.get(g, "") for g in group_of])


def zone(name: str | None) -> ZoneInfo | None:
    """The IANA time zone of a source (None: none given). Raises ValueError for an unknown name."""
    if name is None or not name.strip():
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r} ({exc})") from None


def parse_ts(value: str, where: str, tz: str | None = None) -> datetime:
    """An HL7 time; without a UTC offset read in `tz` (IANA name), else rejected."""
    return _parse_ts(value, where, tz)[0]


@functools.lru_cache(maxsize=8192)  # every OBX of a monitor message has the same time
def _parse_ts(value: str, where: str, tz: str | None) -> tuple[datetime, str | None]:
    """(time, assumption or None)."""
    m = _TS.fullmatch(value.strip())
    if m is None:
        raise Reject(f"{where} {value!r} is not an HL7 date-time with at least minutes (YYYYMMDDHHMM[SS][+/-ZZZZ])",
                     "invalid_value")
    y, mo, d, h, mi = (int(m.group(i)) for i in range(1, 6))
    sec = int(m.group(6) or 0)
    micro = int((m.group(7) or "0").ljust(6, "0"))
    if m.group(8) is None:
        if tz is None:
            raise Reject(f"{where} {value!r} has no UTC offset: {RULE_TIME}", "invalid_value")
        return _local(value, where, tz, (y, mo, d, h, mi, sec, micro))
    off = m.group(8)
    minutes = int(off[1:3]) * 60 + int(off[3:5])
    try:
        fixed = timezone(timedelta(minutes=minutes if off[0] == "+" else -minutes))
        return datetime(y, mo, d, h, mi, sec, micro, tzinfo=fixed), None
    except ValueError as exc:
        raise Reject(f"{where} {value!r}: {exc}", "invalid_value") from None


def _local(value: str, where: str, tz: str, parts: tuple[int, int, int, int, int, int, int]
           ) -> tuple[datetime, str | None]:
    """A local time of the source's zone as a fixed-offset time: rejected when it does not exist
    (DST start), the earlier of the two when it occurs twice (DST end), said in the assumption."""
    zi = zone(tz)
    assert zi is not None
    try:
        naive = datetime(*parts)
    except ValueError as exc:
        raise Reject(f"{where} {value!r}: {exc}", "invalid_value") from None
    first, second = naive.replace(tzinfo=zi, fold=0), naive.replace(tzinfo=zi, fold=1)
    offset = first.utcoffset()
    assert offset is not None
    if first.astimezone(UTC).astimezone(zi).replace(tzinfo=None) != naive:
        raise Reject(f"{where} {value!r} does not exist in {tz} (the hour skipped when daylight saving time starts): "
                     "send a UTC offset", "invalid_value")
    note = None
    if second.utcoffset() != offset:
        note = (f"{where} {value!r} occurs twice in {tz} (daylight saving time ends): read as the earlier, "
                f"UTC offset {_offset_text(offset)}")
    return naive.replace(tzinfo=timezone(offset)), note


def _offset_text(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _field(fields: list[str], n: int) -> str:
    return fields[n] if n < len(fields) else ""


def _number(text: str, where: str) -> float:
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        raise Reject(f"{where} {text[:40]!r} is not a finite number", "invalid_value")
    value = float(text)
    if not math.isfinite(value):
        raise Reject(f"{where} {text[:40]!r} is not a finite number", "invalid_value")
    return value


def _code(enc: Encoding, field: str) -> tuple[str, str, str]:
    """("loinc" | "mdc", code, display) of OBX-3 (its first or alternate coding)."""
    comps = enc.components(field) + [""] * 6
    pairs = [(comps[0].strip(), comps[1].strip(), comps[2].strip().upper()),
             (comps[3].strip(), comps[4].strip(), comps[5].strip().upper())]
    for code, text, system in pairs:
        if system in LOINC_SYSTEMS or (not system and code in LOINC_CODES):
            if code in LOINC_CODES:
                return "loinc", code, LOINC_CODES[code][1]
            raise Reject(f"OBX-3 LOINC {code} is not in the contract's Observation table", "unsupported")
        if system in MDC_SYSTEMS or (not system and (code in MDC_CODES or text in MDC_BY_REFID)):
            mdc = code if code in MDC_CODES else MDC_BY_REFID.get(text, "")
            if mdc:
                return "mdc", mdc, MDC_CODES[mdc][1]
            raise Reject(f"OBX-3 MDC {code} {text} is not a bedside vital crswatch takes (heart rate, blood "
                         "pressure, SpO2, respiratory rate, body temperature)", "unsupported")
    label = "^".join(p for p in comps[:3] if p)
    if re.fullmatch(r"\d{1,7}-\d", comps[0].strip()):
        raise Reject(f"OBX-3 {label!r}: LOINC-form code {comps[0].strip()} is not in the contract's Observation "
                     "table", "unsupported")
    raise Reject(f"OBX-3 {label!r} is neither a LOINC (LN) code nor an IEEE 11073 (MDC) code", "unsupported")


def _unit(enc: Encoding, field: str) -> str:
    """The UCUM unit of OBX-6: a UCUM code, or an MDC unit by reference id (`^MDC_DIM_MMHG^MDC`,
    `266016^MDC_DIM_MMHG^MDC`) or by numeric code with the MDC system (`266016^^MDC`)."""
    comps = [*enc.components(field), "", "", ""]
    ident, text, system = comps[0].strip(), comps[1].strip(), comps[2].strip().upper()
    by_code = MDC_UNIT_CODES.get(ident) if system in MDC_SYSTEMS else None
    for refid in (text, ident):
        if refid in MDC_UNITS:
            if by_code is not None and by_code != refid:
                raise Reject(f"OBX-6 MDC unit code {ident} is {by_code}, not {refid}", "invalid_value")
            return MDC_UNITS[refid]
    if by_code is not None:
        return MDC_UNITS[by_code]
    if system in MDC_SYSTEMS:
        raise Reject(f"OBX-6 MDC unit {ident} {text} is not one crswatch reads", "invalid_value")
    return ident


@dataclass(slots=True)
class _Item:
    index: int
    time: datetime
    kind: str  # "vital", "pulse" (pulse rate, a stand-in for heart rate), or a native event kind
    fields: dict[str, Any]
    notes: tuple[str, ...]  # assumptions made in reading it (provenance)
    label: str = ""  # what it is, for reasons


def _observation(oru: Oru, index: int, obr_time: str, fields: list[str], spm_time: str = "",
                 tz: str | None = None) -> _Item:
    enc = oru.encoding
    status = _field(fields, 11).strip().upper()
    value = _field(fields, 5)
    if status in IGNORED_STATUS or not value.strip():
        raise Ignore(f"OBX {index}: no observation value (device or channel header, or status {status or 'blank'})")
    if status not in ACCEPTED_STATUS:
        raise Reject(f"OBX-11 result status {status!r} is not accepted (F, C, P, R, S, A, U); deletions (D, W) over "
                     "HL7 v2 are not supported: retract with FHIR entered-in-error", "unsupported")
    system, code, display = _code(enc, _field(fields, 3))
    what = f"{'LOINC' if system == 'loinc' else 'MDC'} {code} ({display})"
    if _field(fields, 14).strip():
        when, note = _parse_ts(enc.components(_field(fields, 14))[0], "OBX-14", tz)
    elif obr_time.strip():
        when, note = _parse_ts(obr_time, "OBR-7", tz)
    elif spm_time.strip():
        when, note = _parse_ts(spm_time, "SPM-17", tz)
    elif oru.msh_time.strip():
        when, note = _parse_ts(oru.msh_time, "MSH-7", tz)
    else:
        raise Reject("no time: OBX-14, OBR-7, SPM-17 and MSH-7 are empty", "missing_field")
    notes = (note,) if note else ()
    vtype = _field(fields, 2).strip().upper()
    if system == "mdc":
        measure = MDC_CODES[code][0]
        target: tuple[str, str] = ("pulse" if measure == "pulse_rate" else "vital",
                                   "heart_rate" if measure == "pulse_rate" else measure)
        units: tuple[str, ...] = tuple(sorted(VITAL_UNITS[target[1]][1]))
    else:
        target, _, units = LOINC_CODES[code]
    if target[0] == "method":
        if vtype not in ("CWE", "CE", "CNE"):
            raise Reject(f"OBX-2 {vtype!r}: {what} is coded (CWE) with a SNOMED CT method", "invalid_value")
        comps = [*enc.components(value), "", "", ""]
        sct = comps[0].strip()
        if comps[2].strip().upper() not in SNOMED_SYSTEMS or sct not in SNOMED_DEVICE:
            raise Reject(f"method of oxygen delivery {sct!r} is not in the contract's SNOMED CT table", "unsupported")
        return _Item(index, when, "oxygen", {"device": SNOMED_DEVICE[sct].value}, notes)
    if target[0] == "bp_panel":
        raise Reject("LOINC 85354-9 is a panel: send its components 8480-6 / 8462-4 as OBX", "unsupported")
    comparator = None
    if vtype == "NM":
        number = _number(enc.unescape(value.split(enc.repetition)[0]), "OBX-5")
    elif vtype == "SN":
        sn = [*enc.components(value), "", "", ""]
        if sn[2].strip() or sn[3].strip():
            raise Reject("OBX-5 SN ranges and ratios are not accepted: one number with an optional comparator",
                         "invalid_value")
        comparator = sn[0].strip() or None
        if comparator not in (None, "<", "<=", ">=", ">"):
            raise Reject(f"OBX-5 SN comparator {comparator!r} is not one of <, <=, >=, >", "invalid_value")
        number = _number(sn[1], "OBX-5")
    else:
        raise Reject(f"OBX-2 value type {vtype!r} is not accepted for {what}: NM or SN", "unsupported")
    unit = _unit(enc, _field(fields, 6))
    unit = HL7_UNIT_ALIASES.get(unit, unit)  # mmHg, bpm, degF: one unit each, without doubt
    if unit in UCUM_ANNOTATED_PER_MIN and "/min" in units:  # heart or respiratory rate
        unit = "/min"
    if resolve_unit(unit, units)[0] not in units:  # an alias is read; the event's provenance records it
        raise Reject(f"unit {unit!r} not accepted for {what}: accepted {', '.join(units)}", "invalid_value")
    if comparator is not None and target[0] != "lab":
        raise Reject(f"comparator {comparator!r} on {what}: comparators are taken on lab results only",
                     "invalid_value")
    kind, name = target
    if kind in ("vital", "pulse"):
        try:
            canonical, cunit = normalise_vital(name, number, unit)
        except UnitError as exc:
            raise Reject(str(exc), "invalid_value") from None
        low, high = VITAL_LIMITS[name]
        if not low <= canonical <= high:
            raise Reject(f"{what} {canonical:g} {cunit} is outside the possible range {low:g}-{high:g}",
                         "invalid_value")
        return _Item(index, when, kind, {name: {"value": number, "unit": unit}}, notes, what)
    if kind == "lab":
        lab: dict[str, Any] = {"analyte": name, "value": number, "unit": unit}
        if comparator is not None:
            lab["comparator"] = comparator
        return _Item(index, when, "lab", lab, notes)
    if kind == "weight":
        return _Item(index, when, "context", {"weight": {"value": number, "unit": unit}}, notes)
    return _Item(index, when, "oxygen", {"flow_l_min" if kind == "flow" else "fio2_pct": number}, notes)


def normalise_message(message: str, source: str = "hl7v2", strict: bool = False, tz: str | None = None
                      ) -> Normalised:
    out = Normalised()
    message = message.lstrip(BOM)
    try:
        oru = parse_oru(message)
        if strict:
            _python_hl7_parses(message)
    except Reject as exc:
        out.units = 1
        out.rejected.append(Rejection(exc.reason, exc.category, message, source))
        return out
    if not oru.observations:
        out.units = 1
        out.ignored.append(Ignored(f"ORU^R01 without OBX (MSH-10 {oru.control_id!r}): no observation", source))
        return out
    items: list[_Item] = []
    raws: dict[int, str] = {}
    for n, (obr_time, fields) in enumerate(oru.observations, 1):
        out.units += 1
        raw = oru.encoding.field.join(fields)
        where = f"{source} OBX {n}"
        try:
            spm_time = oru.specimen_times[n - 1] if n <= len(oru.specimen_times) else ""
            items.append(_observation(oru, n, obr_time, fields, spm_time, tz))
            raws[n] = raw
        except Reject as exc:
            out.rejected.append(Rejection(exc.reason, exc.category, raw, where))
        except Ignore as exc:
            out.ignored.append(Ignored(str(exc), where))
    prefix = f"hl7/{oru.sending_app or 'unknown'}/{oru.control_id or 'no-control-id'}"
    pulses = [i for i in items if i.kind == "pulse"]
    groups = _groups([i for i in items if i.kind != "pulse"] if pulses else items)
    if pulses:
        groups, unused = _with_pulse(groups, pulses)
        for item, why in unused:
            out.ignored.append(Ignored(why, f"{source} OBX {item.index}"))
    for group in groups:
        first = group[0]
        raw_event: dict[str, Any] = {"kind": "vitals" if first.kind in ("vital", "pulse") else first.kind,
                                     "patient_id": oru.patient_id, "time": first.time}
        notes: list[str] = []
        for item in group:
            raw_event.update(item.fields)
            if item.notes:
                notes += [n for n in item.notes if n not in notes]
        digest = _digest(oru.patient_id, first.time, [raws[i.index] for i in group])
        raw_event["event_id"] = f"{prefix}/{first.index}/{digest}"
        raw_event["provenance"] = {"source": source, "assumption": "; ".join(notes)} if notes else {"source": source}
        try:
            out.events.append(parse_event(raw_event))
            out.accepted += len(group)
        except InvalidEvent as exc:
            for item in group:
                out.rejected.append(Rejection(f"{exc.field}: {exc.reason}", exc.category, raws[item.index],
                                              f"{source} OBX {item.index}"))
    return out


def _digest(patient: str, when: datetime, segments: list[str]) -> str:
    """12 hex digits of SHA-1 over an event's content: the patient, its time and the OBX segments it
    was read from, as sent. A resent message gives the same id, a different reading under a reused
    control id does not."""
    text = "\x1f".join([patient, when.isoformat(), *segments])
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _with_pulse(groups: list[list[_Item]], pulses: list[_Item]) -> tuple[list[list[_Item]], list[tuple[_Item, str]]]:
    """Pulse rate as heart rate where the message has no ECG heart rate of the same time (marked in
    the provenance); the other pulse readings are returned with the reason they are not used."""
    unused: list[tuple[_Item, str]] = []
    for pulse in pulses:
        same_time = [g for g in groups if g[0].kind in ("vital", "pulse") and g[0].time == pulse.time]
        with_rate = next((g for g in same_time if any("heart_rate" in i.fields for i in g)), None)
        if with_rate is not None:
            used = next(i for i in with_rate if "heart_rate" in i.fields)
            unused.append((pulse, f"OBX {pulse.index}: {pulse.label} not used: heart rate of the same time is "
                                  f"{used.label or 'in the message'} (OBX {used.index})"))
            continue
        pulse.notes = (*pulse.notes, f"heart rate is the pulse rate ({pulse.label}): the monitor sent no ECG "
                                     "heart rate")
        if same_time:
            same_time[0].append(pulse)
        else:
            groups.append([pulse])
    return groups, unused


def _groups(items: list[_Item]) -> list[list[_Item]]:
    """Vitals of the same time (no measure twice) together, in message order; others alone."""
    groups: list[list[_Item]] = []
    open_vitals: dict[datetime, list[_Item]] = {}
    for item in items:
        if item.kind != "vital":
            groups.append([item])
            continue
        group = open_vitals.get(item.time)
        if group is None or any(next(iter(item.fields)) in g.fields for g in group):
            group = []
            groups.append(group)
            open_vitals[item.time] = group
        group.append(item)
    return groups


def normalise_hl7(payload: bytes | str, source: str = "hl7v2", strict: bool = False, tz: str | None = None
                  ) -> Normalised:
    """Native events from one or more HL7 v2 messages (a file, or one MLLP frame). `tz`: the IANA
    time zone of the source, for times without a UTC offset (None: such times are rejected)."""
    out = Normalised()
    if isinstance(payload, bytes):
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            text = payload.decode("latin-1")  # HL7 v2 default character set is ASCII; MSH-18 may say 8859/1
    else:
        text = payload
    messages = split_messages(text)
    if not messages:
        out.units = 1
        out.rejected.append(Rejection("not an HL7 v2 message: empty", "not_hl7", text, source))
    for n, message in enumerate(messages, 1):
        out.extend(normalise_message(message, f"{source} message {n}" if len(messages) > 1 else source, strict, tz))
    return out


def _python_hl7_parses(message: str) -> None:
    import hl7  # type: ignore[import-untyped]

    try:
        hl7.parse(message)
    except Exception as exc:  # python-hl7 raises several types on malformed input
        raise Reject(f"not an HL7 v2 message (python-hl7: {exc})", "not_hl7") from None
