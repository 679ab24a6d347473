"""Embedded replay: the same fold as the streaming worker, in-process, no broker."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from alerts.config import Thresholds
from alerts.log import PatientLog, StepResult, new_log, step
from models.events import ClinicalEvent, InvalidEvent, parse_event
from models.records import Record
from streams.feeds.normalised import Normalised
from streams.topics import input_topic

if TYPE_CHECKING:
    from streams.observability.metrics import Metrics


@dataclass(frozen=True, slots=True)
class Rejected:
    source: str
    reason: str
    raw: str


@dataclass(slots=True)
class Replayer:
    """Routes events to per-patient logs and counts every outcome.

    With `metrics`, every event is observed as the worker would observe it, on the replay's
    clock: the patient's event-time frontier, i.e. the newest event time of that patient
    seen so far, the clock the lateness window runs on (see streams.observability.metrics).
    """

    cfg: Thresholds = field(default_factory=Thresholds)
    logs: dict[str, PatientLog] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    rejected: list[Rejected] = field(default_factory=list)
    metrics: Metrics | None = None

    def apply(self, event: ClinicalEvent) -> StepResult:
        log = self.logs.get(event.patient_id)
        if log is None:
            log = self.logs[event.patient_id] = new_log(event.patient_id)
        if self.metrics is None:
            result = step(log, event, self.cfg)
        else:
            started = time.perf_counter()
            result = step(log, event, self.cfg)
            elapsed = time.perf_counter() - started
            now = log.max_ts if log.max_ts is not None else event.ts
            self.metrics.observe_step(input_topic(event), event, result, log.state, now, elapsed)
        self.outcomes[result.outcome] += 1
        return result

    def feed(self, raw: str | bytes, source: str) -> list[Record]:
        try:
            event = parse_event(raw)
        except InvalidEvent as exc:
            self.outcomes["rejected"] += 1
            if self.metrics is not None:
                self.metrics.observe_rejected("unknown", exc.category, time.time())
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            self.rejected.append(Rejected(source, str(exc), text[:2000]))
            return []
        return self.apply(event).records

    def feed_normalised(self, n: Normalised) -> list[Record]:
        """Apply what an input adapter produced (FHIR, HL7 v2): events, rejections, ignored inputs."""
        for rej in n.rejected:
            self.outcomes["rejected"] += 1
            raw = rej.raw.decode("utf-8", "replace") if isinstance(rej.raw, bytes) else rej.raw
            self.rejected.append(Rejected(rej.source, f"[{rej.category}] {rej.reason}", raw[:2000]))
        if n.ignored:
            self.outcomes["ignored"] += len(n.ignored)
        records: list[Record] = []
        for event in n.events:
            records += self.apply(event).records
        return records


def read_lines(paths: Iterable[Path]) -> Iterator[tuple[str, str]]:
    """(source, line) for every non-blank line of the given JSONL files, file by file."""
    for path in paths:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    yield f"{path}:{n}", line


def replay_files(paths: list[Path], cfg: Thresholds | None = None) -> tuple[Replayer, list[Record]]:
    r = Replayer(cfg or Thresholds())
    records: list[Record] = []
    for source, line in read_lines(paths):
        records.extend(r.feed(line, source))
    return r, records
