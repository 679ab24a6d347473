"""Input formats: native JSONL, FHIR R4 (NDJSON, Bundle, single resource) and HL7 v2 ORU^R01.

`normalise(payload, fmt)` is the one entry point for a message or a file's content (the
streaming agent calls it for each record of the raw FHIR and HL7 topics). For the replay and
publish commands, `input_files` expands files and folders (a FHIR Bulk Data export folder:
one `.ndjson` or `.ndjson.gz` per resource type) and `read_inputs` yields every file's input
units in file order, each with the times it says the facts became known
(streams.feeds.known). NDJSON and JSONL are read line by line (memory does not grow with the
file); a file whose first line is not a whole JSON value is one pretty-printed resource or
Bundle and is read whole. `.gz` files are decompressed on the fly; a UTF-8 byte order mark is
dropped.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from models.events import InvalidEvent, parse_event
from streams.feeds.fhir import normalise_fhir
from streams.feeds.hl7v2 import normalise_hl7, split_messages
from streams.feeds.known import NOTHING, UnitKnown, unit_known
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


# Files taken from a folder (files named on the command line are always read).
FOLDER_SUFFIXES = (".ndjson", ".jsonl", ".json", ".hl7", ".txt", ".er7")


def input_files(paths: Iterable[Path]) -> list[Path]:
    """The files to read: each file as given, each folder's input files (recursively, by name,
    `FOLDER_SUFFIXES` optionally `.gz`; hidden files and a Bulk export's `manifest.json` skipped).
    Raises FileNotFoundError for a path that does not exist."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                name = f.name.lower().removesuffix(".gz")
                if (f.is_file() and not f.name.startswith(".") and name != "manifest.json"
                        and name.endswith(FOLDER_SUFFIXES)):
                    out.append(f)
        elif path.is_file():
            out.append(path)
        else:
            raise FileNotFoundError(str(path))
    return out


def _open_text(path: Path) -> Iterator[str]:
    """The file's lines (gzip by magic number), UTF-8 with a leading byte order mark dropped."""
    with path.open("rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    fh = gzip.open(path, "rt", encoding="utf-8-sig", errors="replace") if gz else \
        path.open(encoding="utf-8-sig", errors="replace")
    with fh:
        yield from fh


def _head(path: Path, size: int = 4096) -> str:
    text = ""
    for line in _open_text(path):
        text += line
        if len(text) >= size:
            break
    return text


def read_lines(paths: Iterable[Path]) -> Iterator[tuple[str, str]]:
    """(source, line) for every non-blank line of the given JSONL files, file by file."""
    for path in paths:
        for n, line in enumerate(_lines(path), 1):
            if line.strip():
                yield f"{path}:{n}", line


def _lines(path: Path) -> Iterator[str]:
    """Lines without their end (\\n, \\r\\n or \\r: universal newlines)."""
    for line in _open_text(path):
        yield line.rstrip("\n")


@dataclass(frozen=True, slots=True)
class Unit:
    """One input unit of a file: a native line, a FHIR line / resource / Bundle, or an HL7 message."""

    path: Path
    fmt: Format
    source: str
    raw: str
    normalised: Normalised
    known: UnitKnown


def _is_one_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def file_format(path: Path, fmt: Format | None = None) -> Format:
    """The format of a file: `fmt` if given, else detected from its content. A file whose first
    line is not a whole JSON value but whose content is one JSON object with `resourceType` is FHIR
    (a pretty-printed resource whose `resourceType` comes after a long narrative)."""
    if fmt is not None:
        return fmt
    head = _head(path)
    found = detect_format(head)
    if found == "native" and head.lstrip().startswith("{"):
        first = head.lstrip().split("\n", 1)[0]
        if not _is_one_json(first):
            try:
                whole = json.loads("".join(_open_text(path)))
            except ValueError:
                return found
            if isinstance(whole, dict) and "resourceType" in whole:
                return "fhir"
    return found


def read_units(path: Path, fmt: Format | None = None, strict: bool = False, hl7_timezone: str | None = None
               ) -> Iterator[tuple[str, str, Normalised]]:
    """(source, raw text, normalised) for each line (native, FHIR NDJSON), Bundle, resource or HL7 message."""
    for unit in read_file(path, fmt, strict, hl7_timezone):
        yield unit.source, unit.raw, unit.normalised


def read_file(path: Path, fmt: Format | None = None, strict: bool = False, hl7_timezone: str | None = None
              ) -> Iterator[Unit]:
    """The input units of one file in file order, each with its known times. `hl7_timezone`: IANA zone of
    HL7 v2 times without a UTC offset (None: they are rejected)."""
    fmt = file_format(path, fmt)
    if fmt == "hl7v2":
        for n, message in enumerate(split_messages("".join(_open_text(path))), 1):
            where = f"{path}:message {n}"
            yield Unit(path, fmt, where, message, normalise_hl7(message, where, strict, hl7_timezone),
                       unit_known(message, fmt))
        return
    first = next((line for line in _lines(path) if line.strip()), "")
    if first.lstrip().startswith("{") and not _is_one_json(first):
        text = "".join(_open_text(path))
        try:
            # one resource, Bundle or native event over several lines, given to the adapter as one line
            compact = json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
        except ValueError:
            compact = None
        if compact is not None:
            where = str(path)
            if fmt == "fhir":
                yield Unit(path, fmt, where, text, normalise_fhir(compact, where, strict), unit_known(compact, fmt))
            else:
                yield Unit(path, fmt, where, text, normalise_native(compact, where), NOTHING)
            return
    for n, line in enumerate(_lines(path), 1):
        if line.strip():
            where = f"{path}:{n}"
            if fmt == "fhir":
                yield Unit(path, fmt, where, line, normalise_fhir(line, where, strict), unit_known(line, fmt))
            else:
                yield Unit(path, fmt, where, line, normalise_native(line, where), NOTHING)


def read_inputs(paths: Iterable[Path], fmt: Format | None = None, strict: bool = False,
                hl7_timezone: str | None = None) -> Iterator[Unit]:
    """Every input unit of the given files and folders (input_files), file by file, in file order."""
    for path in input_files(paths):
        yield from read_file(path, fmt, strict, hl7_timezone)
