"""What the monitor emits: grade changes, IEC-HS changes, alerts and corrections.

Every record carries the facts that drove it (`evidence`). Alerts have deterministic
ids `<patient>:<kind>:<activation>:<level>` so the same alert is never emitted twice.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Severity = Literal["info", "warning", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "high", "critical")

# Every alert kind the fold raises (a closed set: safe as a metric or routing label).
ALERT_KINDS = (
    "crs",
    "refractory_crs",
    "vasopressor_escalation",
    "inotrope",
    "oxygen_escalation",
    "ferritin_high",
    "ferritin_rapid_rise",
    "hypofibrinogenemia",
    "crp_ferritin_divergence",
    "iec_hs",
    "icans",
)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    patient_id: str
    time: str  # ISO 8601 event time of the fact that caused the record
    day: int | None  # day relative to the CAR-T infusion (Day 0), None before it is known
    evidence: tuple[str, ...]
    late: bool = False  # caused by an event older than the lateness window
    correction: bool = False  # emitted by re-ordering a late event into the window


class CrsGradeChange(_Record):
    type: Literal["crs_grade"] = "crs_grade"
    grade: int
    previous: int
    episode: int
    uncertain: tuple[str, ...] = ()


class IecHsChange(_Record):
    type: Literal["iec_hs"] = "iec_hs"
    level: int
    previous: int
    label: str
    hscore: str
    hlh2004: str


class IcansGradeChange(_Record):
    type: Literal["icans_grade"] = "icans_grade"
    grade: int
    previous: int


class Alert(_Record):
    type: Literal["alert"] = "alert"
    id: str
    kind: str
    severity: Severity
    level: str
    status: Literal["firing", "resolved"] = "firing"
    summary: str


class Retraction(_Record):
    """A record emitted earlier that a late, re-ordered event showed to be wrong."""

    type: Literal["retraction"] = "retraction"
    retracts: str  # key of the retracted record (alert id, or "crs_grade@<time>:<grade>")


class Notice(_Record):
    """A correction or retraction that could not be applied exactly: its source record is
    older than the lateness window (already folded into the settled state) or unknown."""

    type: Literal["notice"] = "notice"
    refers_to: str  # logical id of the corrected or retracted source record


Record = CrsGradeChange | IecHsChange | IcansGradeChange | Alert | Retraction | Notice


def record_key(record: Record) -> str:
    """Identity of a record, used to diff emitted records when a late event re-orders history."""
    if isinstance(record, Alert):
        return record.id
    if isinstance(record, Retraction):
        return f"retraction:{record.retracts}"
    if isinstance(record, CrsGradeChange):
        return f"crs_grade@{record.time}:{record.previous}->{record.grade}"
    if isinstance(record, IecHsChange):
        return f"iec_hs@{record.time}:{record.previous}->{record.level}"
    if isinstance(record, Notice):
        return f"notice:{record.refers_to}@{record.time}"
    return f"icans_grade@{record.time}:{record.previous}->{record.grade}"


# corrected: a new version replaced an earlier one; retracted: entered-in-error voided events;
# superseded: an older version (or a voided record) that arrived after its replacement, ignored.
Outcome = Literal["applied", "duplicate", "late", "rejected", "corrected", "retracted", "superseded"]
