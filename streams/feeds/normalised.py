"""What an input adapter returns: native events, rejections with a reason, ignored inputs.

Every input unit (a FHIR resource, an HL7 OBX segment, a native line) ends in exactly one
of: accepted (it gave one or more events), rejected (reason and a bounded category from
models.events.REJECT_CATEGORIES) or ignored (counted, with the reason). So
`units == accepted + len(rejected) + len(ignored)`. An ignored unit is of one of two kinds:
`no_value` (it carries no value, e.g. FHIR status `cancelled`, an HL7 device header, an ORU
without OBX) or `not_monitored` (a resource crswatch does not monitor, e.g. a FHIR Patient or
Encounter in a Bundle: "skipped, not monitored"). Neither is a rejection: nothing reaches the
dead letter, and every counter that counts ignored units counts both.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from models.events import REJECT_CATEGORIES, ClinicalEvent

RAW_KEPT = 4000  # characters of a rejected input kept for the dead letter


def dead_letter_record(raw: bytes | None, reason: str, category: str, *, source: str | None = None,
                       topic: str | None = None, partition: int | None = None, offset: int | None = None,
                       key: bytes | None = None, now: datetime | None = None) -> dict[str, object]:
    """The one shape of a dead-letter record, whoever rejected the input (the worker, the feed
    normaliser, the MLLP listener): where it came from (topic, partition, offset and key for
    a Kafka message; source for a feed unit), the raw bytes (text if UTF-8, else base64, said
    by raw_encoding), why (reason, category) and when."""
    data = raw or b""
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(data).decode(), "base64"
    return {"topic": topic, "partition": partition, "offset": offset,
            "key": None if key is None else key.decode("utf-8", "replace"), "source": source,
            "raw": text, "raw_encoding": encoding, "reason": reason, "category": category,
            "time": (now or datetime.now(UTC)).isoformat()}


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    category: str
    raw: str | bytes
    source: str

    def __post_init__(self) -> None:
        if self.category not in REJECT_CATEGORIES:
            raise ValueError(f"unknown rejection category {self.category!r}")

    def dead_letter(self, now: datetime | None = None) -> dict[str, object]:
        """This rejection as a dead-letter record (`dead_letter_record`), raw input cut to RAW_KEPT."""
        raw = self.raw[:RAW_KEPT] if isinstance(self.raw, bytes) else self.raw[:RAW_KEPT].encode()
        return dead_letter_record(raw, self.reason, self.category, source=self.source, now=now)

    def dead_letter_json(self, now: datetime | None = None) -> str:
        return json.dumps(self.dead_letter(now), ensure_ascii=False)


IGNORED_KINDS = ("no_value", "not_monitored")


@dataclass(frozen=True, slots=True)
class Ignored:
    reason: str
    source: str
    kind: str = "no_value"  # one of IGNORED_KINDS

    def __post_init__(self) -> None:
        if self.kind not in IGNORED_KINDS:
            raise ValueError(f"unknown ignored kind {self.kind!r}")


@dataclass(slots=True)
class Normalised:
    events: list[ClinicalEvent] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    units: int = 0  # input units seen
    accepted: int = 0  # input units that gave events

    @property
    def not_monitored(self) -> int:
        """Ignored units that are resources crswatch does not monitor ("skipped, not monitored")."""
        return sum(1 for i in self.ignored if i.kind == "not_monitored")

    def extend(self, other: Normalised) -> None:
        self.events += other.events
        self.rejected += other.rejected
        self.ignored += other.ignored
        self.units += other.units
        self.accepted += other.accepted


class Reject(Exception):
    """Raised inside an adapter for one input unit; becomes a Rejection."""

    def __init__(self, reason: str, category: str = "invalid_value") -> None:
        super().__init__(reason)
        self.reason = reason
        self.category = category


class Ignore(Exception):
    """Raised inside an adapter for an input unit that carries no value, or that crswatch does not
    monitor (kind "not_monitored"): counted, not an error."""

    def __init__(self, reason: str, kind: str = "no_value") -> None:
        super().__init__(reason)
        self.kind = kind
