"""Embedded replay: the same fold as the streaming worker, in-process, no broker.

`Replayer` routes events to per-patient logs and counts every outcome; `replay_files` folds
native files in file order; `ordered_events` reads files and folders of any input format and
yields their events in replay order (streams.ordering), the one order `crswatch replay` and
`crswatch publish` share.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from alerts.config import Thresholds
from alerts.log import PatientLog, StepResult, new_log, step
from models.events import ClinicalEvent, InvalidEvent, parse_event
from models.records import Record
from streams.feeds.inputs import Format, Unit, read_inputs, read_lines
from streams.feeds.known import known_time
from streams.feeds.normalised import Normalised, Rejection
from streams.ordering import Order, Sorter
from streams.topics import input_topic

# read_lines moved to streams.feeds.inputs; kept importable from here
__all__ = ["Replayer", "ordered_events", "read_lines", "replay_files", "replay_paths"]

if TYPE_CHECKING:
    from streams.observability.metrics import Metrics


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
    rejected: list[Rejection] = field(default_factory=list)
    metrics: Metrics | None = None
    # Called with each rejection; with it, rejections are not kept in `rejected` (long runs).
    on_reject: Callable[[Rejection], None] | None = None

    def reject(self, rej: Rejection) -> None:
        self.outcomes["rejected"] += 1
        if self.on_reject is None:
            self.rejected.append(rej)
        else:
            self.on_reject(rej)

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
            if self.metrics is not None:
                self.metrics.observe_rejected("unknown", exc.category, time.time())
            self.reject(Rejection(str(exc), exc.category, raw, source))
            return []
        return self.apply(event).records

    def feed_normalised(self, n: Normalised) -> list[Record]:
        """Apply what an input adapter produced (FHIR, HL7 v2): events, rejections, ignored inputs."""
        self.take_rejections(n)
        records: list[Record] = []
        for event in n.events:
            records += self.apply(event).records
        return records

    def take_rejections(self, n: Normalised) -> None:
        """Count (and keep or hand on) the rejections and ignored units of `n`, not its events."""
        for rej in n.rejected:
            self.reject(rej)
        if n.ignored:
            self.outcomes["ignored"] += len(n.ignored)


def replay_files(paths: list[Path], cfg: Thresholds | None = None) -> tuple[Replayer, list[Record]]:
    r = Replayer(cfg or Thresholds())
    records: list[Record] = []
    for source, line in read_lines(paths):
        records.extend(r.feed(line, source))
    return r, records


def ordered_events(units: Iterable[Unit], order: Order, on_unit: Callable[[Unit], None] | None = None,
                   directory: str | None = None, on_sorted: Callable[[int], None] | None = None
                   ) -> Iterator[tuple[str, ClinicalEvent, float]]:
    """(source, event, known time) of every event of the units, in `order`. Each unit is handed to
    `on_unit` as it is read (count it, report its rejections). With `known` or `event` every unit
    is read before the first event is yielded (the sort is on disk: streams.ordering.Sorter);
    `on_sorted` is then told how many events follow."""
    if order == "file":
        for unit in units:
            if on_unit is not None:
                on_unit(unit)
            for event in unit.normalised.events:
                yield unit.source, event, known_time(event, unit.known)
        return
    with Sorter(order, directory) as sorter:
        for unit in units:
            if on_unit is not None:
                on_unit(unit)
            for event in unit.normalised.events:
                sorter.add(unit.source, event, known_time(event, unit.known))
        if on_sorted is not None:
            on_sorted(sorter.count)
        yield from sorter


def replay_paths(paths: Iterable[Path], order: Order = "known", cfg: Thresholds | None = None,
                 fmt: Format | None = None) -> tuple[Replayer, list[Record]]:
    """Files and folders of any input format, replayed in `order` (what `crswatch replay` does)."""
    r = Replayer(cfg or Thresholds())
    records: list[Record] = []
    for _, event, _ in ordered_events(read_inputs(paths, fmt), order, lambda u: r.take_rejections(u.normalised)):
        records.extend(r.apply(event).records)
    return r, records


EVENT_OUTCOMES = ("applied", "late", "corrected", "retracted", "duplicate", "superseded")
FOLDED = ("applied", "late", "corrected", "retracted")  # outcomes that changed (or re-ordered) the fold


@dataclass(slots=True)
class FileCounts:
    """What one file gave: input units (a native line, a FHIR resource, an HL7 observation) and events."""

    fmt: str = ""
    units: int = 0
    accepted: int = 0
    rejected: int = 0
    ignored: int = 0
    events: int = 0


@dataclass(slots=True)
class ReadCounts:
    """Per-file counts of what was read; `add` is an `on_unit` for ordered_events."""

    files: dict[Path, FileCounts] = field(default_factory=dict)

    def add(self, unit: Unit) -> None:
        c = self.files.get(unit.path)
        if c is None:
            c = self.files[unit.path] = FileCounts(unit.fmt)
        n = unit.normalised
        c.units += n.units
        c.accepted += n.accepted
        c.rejected += len(n.rejected)
        c.ignored += len(n.ignored)
        c.events += len(n.events)

    def total(self) -> FileCounts:
        t = FileCounts()
        for c in self.files.values():
            t.units += c.units
            t.accepted += c.accepted
            t.rejected += c.rejected
            t.ignored += c.ignored
            t.events += c.events
        return t


def _units_line(c: FileCounts) -> str:
    return f"{c.units} input units: {c.accepted} accepted, {c.rejected} rejected, {c.ignored} ignored"


def summary_line(command: str, counts: ReadCounts, outcomes: Counter[str] | None) -> str:
    """One line per run. Input units (a native line, a FHIR resource, an HL7 observation) are counted
    once, as accepted, rejected or ignored; the events the accepted units gave are counted apart,
    by what the fold did with them (never added to the units)."""
    t = counts.total()
    line = f"crswatch {command}: {len(counts.files)} files, {_units_line(t)}; {t.events} events"
    if outcomes is not None:
        line += ": " + ", ".join(f"{outcomes.get(k, 0)} {k}" for k in EVENT_OUTCOMES)
    return line


def file_lines(counts: ReadCounts) -> list[str]:
    return [f"  {path} ({c.fmt}): {_units_line(c)}; {c.events} events" for path, c in counts.files.items()]
