"""What the streaming worker does with one input message, without faust.

`Processor` parses a message, applies the pure fold (`alerts.log.step`) to the patient's
log and says what to write: the patient's stored log, alerts to `crs-alerts`, grade and
suspicion changes to `patient-state`, rejects to `dead-letter`. The faust agent
(`streams.app`) feeds it; tests feed it directly with a dict as the store.

At-least-once delivery is safe: a redelivered event is a duplicate for the log (event id),
changes nothing, is not written again and emits nothing (alert ids are deterministic and
the log's ledger never emits one twice). Outputs go out before the log is stored, so a crash
can repeat an alert (readers keep the first copy of an id) but never lose one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from alerts.config import Thresholds
from alerts.log import PatientLog, StepResult, log_from_json, log_to_json, new_log, step
from models.events import ClinicalEvent, InvalidEvent, parse_event
from models.records import Alert, Notice, Record, Retraction
from streams.feeds.normalised import dead_letter_record
from streams.topics import ALERTS, DEAD_LETTER, PATIENT_STATE

logger = logging.getLogger(__name__)
# Logs name a patient by a pseudonym that holds only for this process (docs/privacy.md): lines of one
# run can be matched to each other, never to a patient id without the process's memory.
_RUN_KEY = os.urandom(16)


def run_pseudonym(patient_id: str) -> str:
    return "p-" + hmac.new(_RUN_KEY, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()[:12]

_CHANGE_KEYS = ("crs_grade@", "iec_hs@", "icans_grade@")  # record_key prefixes of grade changes

class StoredLogs(Protocol):
    def get(self, patient_id: str, /) -> bytes | None: ...


Output = tuple[str, bytes, bytes]  # (topic, key, value) to send


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    category: str


def dead_letter_value(topic: str, partition: int | None, offset: int | None, key: bytes | None,
                      raw: bytes | None, rejection: Rejection, now: float) -> bytes:
    """The dead-letter record of a rejected input message (streams.feeds.normalised.dead_letter_record)."""
    record = dead_letter_record(raw, rejection.reason, rejection.category, topic=topic, partition=partition,
                                offset=offset, key=key, now=datetime.fromtimestamp(now, UTC))
    return json.dumps(record).encode()


def stored_levels(stored: bytes) -> tuple[int, int]:
    """(CRS grade, IEC-HS level) of a stored log, without re-folding it."""
    head = stored[:200]
    start = head.index(b'"levels":[') + len(b'"levels":[')
    crs, iec = head[start:head.index(b"]", start)].split(b",")
    return int(crs), int(iec)


def parse_message(key: bytes | None, value: bytes | None) -> ClinicalEvent | Rejection:
    if value is None:
        return Rejection("message has no value", "not_json")
    try:
        event = parse_event(value)
    except InvalidEvent as exc:
        return Rejection(str(exc), exc.category)
    if key is None or key != event.patient_id.encode():
        # The key decides the partition, and so which worker holds the patient's state.
        shown = "none" if key is None else repr(key.decode("utf-8", "replace"))
        return Rejection(f"key: message key {shown} is not the event's patient_id {event.patient_id!r}",
                         "invalid_value")
    return event


def state_summary(log: PatientLog, record: Record) -> bytes:
    """The `patient-state` value: the patient's current grades and the change that led there.
    Keyed by patient on a compacted topic, so the latest message is the current state."""
    s = log.head
    doc = {
        "patient_id": s.patient_id,
        "crs_grade": s.crs_grade,
        "crs_episode": s.episode,
        "icans_grade": s.icans_grade,
        "iec_hs_level": s.iec_hs_level,
        "change": record.model_dump(mode="json"),
    }
    return json.dumps(doc).encode()


@dataclass(slots=True)
class Processor:
    cfg: Thresholds
    store: StoredLogs
    counts: Counter[str] = field(default_factory=Counter)
    cache: dict[str, PatientLog] = field(default_factory=dict)
    # patient -> {"topic:partition": offset of the newest input message folded}
    offsets: dict[str, dict[str, int]] = field(default_factory=dict)

    def log_for(self, patient_id: str) -> PatientLog:
        log = self.cache.get(patient_id)
        if log is None:
            stored = self.store.get(patient_id)
            if stored is None:
                log, offsets = new_log(patient_id), {}
            else:
                doc = json.loads(stored)
                log, offsets = log_from_json(json.dumps(doc["log"]), self.cfg), doc["offsets"]
            self.cache[patient_id] = log
            self.offsets[patient_id] = offsets
        return log

    def redelivered(self, event: ClinicalEvent, position: str, offset: int) -> bool:
        """True if this input message was folded already and the log cannot tell by itself.

        Inside the patient's lateness window the log holds every event id (alerts.log keeps the
        whole window pending), so such an event goes to the log, which answers "duplicate"
        exactly. Beyond the window the ids of vitals are not kept: there the newest input offset
        folded of this patient on this topic partition says it. That offset is a high-water
        mark, right only if a partition's messages are folded in offset order, and right after a
        rebalance faust can hand over a few messages fetched before its seek to the committed
        offset ahead of the redelivered ones: a message below the mark may never have been
        folded. Inside the window such a message is folded (in event-time order, as any
        out-of-order event); beyond it, it is taken for a duplicate (the log would fold it late)."""
        log = self.log_for(event.patient_id)
        done = self.offsets[event.patient_id].get(position)
        if done is None or offset > done:
            return False
        return log.max_ts is not None and event.ts <= log.max_ts - self.cfg.lateness_minutes * 60

    def process(self, event: ClinicalEvent, position: str | None = None,
                offset: int | None = None) -> tuple[StepResult, list[Output]]:
        """Fold the event into the patient's cached log; return what to send. The caller sends
        the outputs, waits for the broker to have them, then stores the log: after a crash a
        stored log that holds the event implies its outputs were delivered (a redelivery is a
        duplicate and emits nothing), and a log that does not is folded again."""
        log = self.log_for(event.patient_id)
        newest = log.max_ts
        result = step(log, event, self.cfg)
        self.counts[result.outcome] += 1
        if result.outcome == "late":
            late = self.counts["late"]
            if late <= 20 or late % 1000 == 0:  # a late event means an input fell behind: say which
                logger.warning("late event #%d: patient %s, %s offset %s, event time %s, newest folded %s",
                               late, run_pseudonym(event.patient_id), position, offset, event.time.isoformat(),
                               datetime.fromtimestamp(newest, UTC).isoformat() if newest is not None else None)
        if position is not None and offset is not None:
            offsets = self.offsets[event.patient_id]
            offsets[position] = max(offset, offsets.get(position, offset))  # may come out of order
        outputs: list[Output] = []
        key = event.patient_id.encode()
        for record in result.records:
            if isinstance(record, (Alert, Notice)) or (isinstance(record, Retraction)
                                                       and not record.retracts.startswith(_CHANGE_KEYS)):
                outputs.append((ALERTS, key, record.model_dump_json().encode()))
            else:
                outputs.append((PATIENT_STATE, key, state_summary(log, record)))
        return result, outputs

    def stored_form(self, patient_id: str) -> bytes:
        """{"offsets", "levels": [CRS grade, IEC-HS level], "log": alerts.log.log_to_json}"""
        log = self.cache[patient_id]
        offsets = json.dumps(self.offsets[patient_id], separators=(",", ":")).encode()
        levels = f"[{log.head.crs_grade},{log.head.iec_hs_level}]".encode()
        return b'{"offsets":' + offsets + b',"levels":' + levels + b',"log":' + log_to_json(log) + b"}"

    def reject(self, topic: str, partition: int | None, offset: int | None, key: bytes | None,
               raw: bytes | None, rejection: Rejection, now: float) -> Output:
        self.counts["rejected"] += 1
        self.counts[f"dead_letter:{rejection.category}"] += 1
        return DEAD_LETTER, key or b"", dead_letter_value(topic, partition, offset, key, raw, rejection, now)

    def forget(self) -> None:
        """Drop cached logs (after a rebalance the store is the truth)."""
        self.cache.clear()
        self.offsets.clear()
