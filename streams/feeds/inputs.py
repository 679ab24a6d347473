"""Input formats: native JSONL, FHIR R4 (NDJSON or Bundle) and HL7 v2 ORU^R01.

`normalise(payload, fmt)` is the one entry point for a message or a file's content (the
streaming agent calls it for each record of the raw FHIR and HL7 topics); `read_units`
yields a file's input units in file order for the replay and publish commands.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, get_args

from models.events import InvalidEvent, parse_event
from streams.feeds.fhir import normalise_fhir
from streams.feeds.hl7v2 import normalise_hl7, split_messages
from streams.feeds.normalised import Normalised, Rejection

Format = Literal["native", "fhir", "hl7v2"]
FORMATS: tuple[str, ...] = get_args(Format)


def detect_format(payload: bytes | str) -> Format:
    """From the content: `MSH|` (or a batch header, or an MLLP start byte) is HL7 v2; a JSON
    object with `resourceType` is FHIR; anything else is read as native JSONL."""
    head = payload[:4096]
    text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
    text = text.lstrip("\ufeff\x0b \t\r\n")
    if text[:3] in ("MSH", "FHS", "BHS"):
        return "hl7v2"
    first = text.split("\n", 1)[0]
    if '"resourceType"' in first:
        return "fhir"
    if '"kind"' in first:
        return "native"
    if text.startswith("{") and '"resourceType"' in text:  # a pretty-printed resource or Bundle
        return "fhir"
    return "native"


def normalise_native(payload: bytes | str, source: str = "native") -> Normalised:
    out = Normalised()
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()] or [(1, text)]
    for n, line in lines:
        out.units += 1
        where = f"{source}:{n}" if len(lines) > 1 else source
        try:
            out.events.append(parse_event(line))
            out.accepted += 1
        except InvalidEvent as exc:
            out.rejected.append(Rejection(str(exc), exc.category, line, where))
    return out


def normalise(payload: bytes | str, fmt: Format | None = None, source: str = "", strict: bool = False,
              hl7_timezone: str | None = None) -> Normalised:
    """Native events and rejections (reason, bounded category) of one message or file content.
    `hl7_timezone`: IANA zone of HL7 v2 times without a UTC offset (None: they are rejected)."""
    fmt = fmt or detect_format(payload)
    if fmt == "fhir":
        return normalise_fhir(payload, source or "fhir", strict)
    if fmt == "hl7v2":
        return normalise_hl7(payload, source or "hl7v2", strict, hl7_timezone)
    return normalise_native(payload, source or "native")


def read_units(path: Path, fmt: Format | None = None, strict: bool = False, hl7_timezone: str | None = None
               ) -> Iterator[tuple[str, str, Normalised]]:
    """(source, raw text, normalised) for each line (native, FHIR NDJSON), Bundle or HL7 message."""
    data = path.read_bytes()
    fmt = fmt or detect_format(data)
    text = data.decode("utf-8", "replace")
    if fmt == "hl7v2":
        for n, message in enumerate(split_messages(text), 1):
            where = f"{path}:message {n}"
            yield where, message, normalise_hl7(message, where, strict, hl7_timezone)
        return
    if fmt == "fhir" and text.lstrip().startswith("{") and _is_one_json(text):
        yield str(path), text, normalise_fhir(text, str(path), strict)  # one Bundle or resource over several lines
        return
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            where = f"{path}:{n}"
            yield where, line, (normalise_fhir(line, where, strict) if fmt == "fhir" else normalise_native(line, where))


def _is_one_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
