"""When each fact became known: the replay's ordering time, read from the input unit itself.

A live monitor sees a fact when it is reported, not when it happened. The "known time" of an
event is, first found:
- native: `recorded_time` (carried on the event);
- FHIR: `issued` (Observation; an adapter already puts it in `recorded_time`), then
  `meta.lastUpdated` of the resource the event came from;
- HL7 v2: the latest OBR-22 (results reported / status change) of the message, then MSH-7;
- else the event time.
It is never earlier than the event time: a fact cannot be known before it happened (a report
time before the event time is a clock or zone error, and the event time is the better guess).

`unit_known(raw, fmt)` reads the times a unit carries without judging the unit (the adapters
do that); `known_time(event, unit)` picks the event's. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from models.events import ClinicalEvent


@dataclass(frozen=True, slots=True)
class UnitKnown:
    """Known times a unit carries: per FHIR logical id (`Type/id`), and one for the whole unit."""

    by_logical_id: dict[str, float] = field(default_factory=dict)
    whole: float | None = None


NOTHING = UnitKnown()


def _iso(value: Any) -> float | None:
    if type(value) is not str:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None  # no offset: not a usable instant
    return when.timestamp()


def _resource_known(res: Any) -> float | None:
    if type(res) is not dict:
        return None
    issued = _iso(res.get("issued"))
    if issued is not None:
        return issued
    meta = res.get("meta")
    return _iso(meta.get("lastUpdated")) if type(meta) is dict else None


_ID_TAIL = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _logical_id(res: dict[str, Any], full_url: Any) -> str | None:
    rtype, rid = res.get("resourceType"), res.get("id")
    if type(rtype) is not str:
        return None
    if type(rid) is not str and type(full_url) is str:  # as streams.feeds.fhir names an entry without id
        tail = full_url.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        rid = tail if _ID_TAIL.fullmatch(tail) else None
    return f"{rtype}/{rid}" if type(rid) is str else None


def fhir_known(raw: str | bytes) -> UnitKnown:
    """Known times of one FHIR resource or Bundle (one JSON text); nothing if it does not parse."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return NOTHING
    if type(obj) is not dict:
        return NOTHING
    if obj.get("resourceType") != "Bundle":
        return UnitKnown(whole=_resource_known(obj))
    table: dict[str, float] = {}
    entries = obj.get("entry")
    for entry in entries if type(entries) is list else ():
        if type(entry) is not dict or type(entry.get("resource")) is not dict:
            continue
        res = entry["resource"]
        when = _resource_known(res)
        lid = _logical_id(res, entry.get("fullUrl"))
        if when is not None and lid is not None:
            table[lid] = when
    # A message or transaction Bundle says when it was made: the fallback for entries without their own.
    return UnitKnown(table, _iso(obj.get("timestamp")))


_HL7_TS = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(?:\.\d{1,4})?([+-]\d{4})")


def _hl7_ts(text: str) -> float | None:
    """An HL7 v2 DTM with at least minutes and a UTC offset as POSIX seconds; else None (the adapter,
    not this, decides what a time without an offset means)."""
    m = _HL7_TS.fullmatch(text.strip())
    if m is None:
        return None
    y, mo, d, h, mi = (int(m.group(i)) for i in range(1, 6))
    off = m.group(7)
    minutes = int(off[1:3]) * 60 + int(off[3:5])
    try:
        tz = timezone(timedelta(minutes=minutes if off[0] == "+" else -minutes))
        return datetime(y, mo, d, h, mi, int(m.group(6) or 0), tzinfo=tz).timestamp()
    except ValueError:
        return None


def hl7_known(message: str) -> UnitKnown:
    """The latest OBR-22 of one HL7 v2 message, else MSH-7 (times without a UTC offset are not used)."""
    segments = [s for s in re.split(r"\r\n|\r|\n", message.lstrip("\ufeff\x0b")) if s]
    if not segments or not segments[0].startswith("MSH") or len(segments[0]) < 4:
        return NOTHING
    sep = segments[0][3]
    comp = segments[0][4:5] or "^"

    def ts(text: str) -> float | None:
        return _hl7_ts(text.split(comp, 1)[0])

    reported: list[float] = []
    for seg in segments[1:]:
        fields = seg.split(sep)
        if fields[0] == "OBR" and len(fields) > 22:
            when = ts(fields[22])
            if when is not None:
                reported.append(when)
    if reported:
        return UnitKnown(whole=max(reported))
    msh = segments[0].split(sep)  # msh[n - 1] is MSH-n
    return UnitKnown(whole=ts(msh[6]) if len(msh) > 6 else None)


def unit_known(raw: str | bytes, fmt: str) -> UnitKnown:
    if fmt == "fhir":
        return fhir_known(raw)
    if fmt == "hl7v2":
        return hl7_known(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)
    return NOTHING  # native events carry recorded_time


def known_time(event: ClinicalEvent, unit: UnitKnown = NOTHING) -> float:
    """When `event` became known (POSIX seconds), never before its event time."""
    if event.recorded_time is not None:
        known: float | None = event.recorded_time.timestamp()
    else:
        known = unit.by_logical_id.get(event.logical_id) if event.logical_id is not None else None
        if known is None:
            known = unit.whole
    ts = event.ts
    return ts if known is None or known < ts else known
