"""Prometheus metrics of the pipeline, on a dedicated CollectorRegistry.

One `Metrics` object per process (the streaming worker, or an embedded replay). It owns
its registry, so tests and several instances never share series. Every label value is
from a closed set (topics, event kinds, outcomes, alert kinds, severities, grades);
anything else is counted under "other"/"unknown". No patient or event id is ever a label.

Per message the worker calls:

    metrics.observe_rejected(topic, exc.category, now_s)             # parse raised InvalidEvent
    metrics.observe_step(topic, event, result, log.state, now_s, fold_seconds)
    metrics.queued(topic, n)                                          # records handed to the producer
    metrics.published(topic, n)                                       # ... and confirmed by the broker
    metrics.forget_patients(ids)                                      # partitions revoked

`observe_step` is `observe_event` + `observe_records` + `set_patient_levels`; these and
`dead_lettered` can also be called on their own. At start-up the streaming worker calls
`inputs_started(now_s)`, so a feed silent since before a restart is measured from the start
instead of having no series until its first message (the embedded replay does not call it).
The Alertmanager sink reports through `alertmanager_sent`, `alertmanager_failed`,
`alertmanager_dropped`, `alertmanager_firing`.
Output: `exposition(accept)` for an HTTP handler, `serve(port)` for a stand-alone
endpoint, `write_textfile(path)` for `crswatch replay --metrics-file`.

Patients at each CRS grade / IEC-HS level are gauges over the patients this process
holds. They are driven by the fold's current state (`set_patient_levels`), not by the
grade-change records: after a late event re-orders history the state is the truth, while
records only say what changed. A worker that loses partitions must `forget_patients`
them, so that the sum over all workers counts each patient once.

Metrics (base units, `_total` counters):
- crswatch_events_ingested_total{topic, kind, outcome}  outcome: applied|duplicate|late|rejected|corrected|
                                                        retracted|superseded
- crswatch_dead_letters_total{reason}                   reason: REJECT_CATEGORIES, processing_error, other
- crswatch_feed_units_total{format, outcome}            raw FHIR / HL7 v2 feed units (a resource, an OBX);
                                                        outcome: accepted|rejected|ignored (observe_feed)
- crswatch_alerts_emitted_total{kind, severity, status}
- crswatch_records_emitted_total{type}                  crs_grade|iec_hs|icans_grade|alert|retraction
- crswatch_records_queued_total{topic}                  records handed to the producer for an output topic
- crswatch_records_published_total{topic}               ... and confirmed by the broker (both 0 from the start)
- crswatch_patients_crs_grade{grade}                    gauge, grade 0-4
- crswatch_patients_iec_hs_level{level}                 gauge, level 0-3
- crswatch_event_lag_seconds{topic}                     histogram: processing time - event time
- crswatch_input_last_event_timestamp_seconds{topic}    gauge: processing time of the last message; in the
                                                        worker the start time until a message arrives
- crswatch_fold_duration_seconds                        histogram: one `step` call
- crswatch_alertmanager_alerts_sent_total, crswatch_alertmanager_post_failures_total,
  crswatch_alertmanager_alerts_dropped_total, crswatch_alertmanager_firing_alerts
- crswatch_build_info{version, python}                  and the process_* collector

Event-time lag: in the worker, now_s is the wall clock, so the lag is how long after the
event happened it was processed (labs lag by their result time: hours are normal). The
buckets run from 1 s to 1 week; 14400 s is the default lateness window (older events are
folded as `late`). In an embedded replay of case files the clock is the replay's
patient's event-time frontier (the newest event time of that patient so far, the clock of
the lateness window), so there the lag is how far behind the patient's newest event each
event arrived in the file (a lab result 2 h after a later vital sign), and the last-event
timestamps are event times; wall-clock lag would be the
age of the case report (years) and say nothing.
"""

from __future__ import annotations

import platform
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from threading import Thread
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
    start_http_server,
    write_to_textfile,
)
from prometheus_client.exposition import choose_encoder

from alerts.iec_hs import LEVEL_NAMES
from alerts.log import StepResult
from models.events import EVENT_KINDS, REJECT_CATEGORIES, ClinicalEvent
from models.records import ALERT_KINDS, SEVERITIES, Alert, Record
from models.state import PatientState
from streams.feeds.normalised import Normalised
from streams.topics import ALERTS, DEAD_LETTER, INPUT_TOPICS, PATIENT_STATE

OUTCOMES = ("applied", "duplicate", "late", "rejected", "corrected", "retracted", "superseded")
DEAD_LETTER_REASONS = (*REJECT_CATEGORIES, "processing_error", "other")
CRS_GRADES = (0, 1, 2, 3, 4)
IEC_HS_LEVELS = tuple(sorted(LEVEL_NAMES))
RECORD_TYPES = ("crs_grade", "iec_hs", "icans_grade", "alert", "retraction", "notice")
OUTPUT_TOPICS = (ALERTS, PATIENT_STATE, DEAD_LETTER)
FEED_FORMATS = ("fhir", "hl7v2")
FEED_OUTCOMES = ("accepted", "rejected", "ignored")
UNKNOWN = "unknown"
OTHER = "other"

LAG_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800)
# One step is ~10 us on the fast path; a re-fold after a late event takes milliseconds.
FOLD_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


# `_created` series double the series count and Prometheus 2.x does not use them.
disable_created_metrics()  # type: ignore[no-untyped-call]


def bounded(value: str | None, allowed: Sequence[str], fallback: str = OTHER) -> str:
    return value if value is not None and value in allowed else fallback


def _version() -> str:
    try:
        return metadata.version("crswatch")
    except metadata.PackageNotFoundError:
        return UNKNOWN


class Metrics:
    def __init__(self, *, process_metrics: bool = True) -> None:
        r = self.registry = CollectorRegistry()
        topics = (*INPUT_TOPICS, UNKNOWN)
        self.events = Counter("crswatch_events_ingested", "Input events by topic, kind and outcome.",
                              ("topic", "kind", "outcome"), registry=r)
        self.dead_letters = Counter("crswatch_dead_letters", "Messages sent to the dead-letter topic, by reason.",
                                    ("reason",), registry=r)
        self.feed_units = Counter("crswatch_feed_units",
                                  "Units of the raw FHIR and HL7 v2 feeds (a resource, an OBX) by outcome; ignored "
                                  "units carry no value (e.g. FHIR status cancelled, PCD-01 device headers).",
                                  ("format", "outcome"), registry=r)
        self.alerts = Counter("crswatch_alerts_emitted", "Alerts emitted by the fold.",
                              ("kind", "severity", "status"), registry=r)
        self.records = Counter("crswatch_records_emitted", "Records emitted by the fold, by type.",
                               ("type",), registry=r)
        self.queued_records = Counter("crswatch_records_queued",
                                      "Records handed to the producer for an output topic "
                                      "(crswatch_records_published_total once the broker confirms them).",
                                      ("topic",), registry=r)
        self.published_records = Counter("crswatch_records_published",
                                         "Records written to an output topic (confirmed by the broker).",
                                         ("topic",), registry=r)
        self.crs_patients = Gauge("crswatch_patients_crs_grade",
                                  "Patients held by this process at each current ASTCT CRS grade.", ("grade",),
                                  registry=r)
        self.iec_patients = Gauge("crswatch_patients_iec_hs_level",
                                  "Patients held by this process at each IEC-HS suspicion level "
                                  "(0 none, 1 watch, 2 suspected, 3 strongly suspected).", ("level",), registry=r)
        self.lag = Histogram("crswatch_event_lag_seconds", "Processing time minus event time of applied events.",
                             ("topic",), buckets=LAG_BUCKETS, registry=r)
        self.last_event = Gauge("crswatch_input_last_event_timestamp_seconds",
                                "Processing time of the last message received on an input topic; the "
                                "streaming worker sets it to its start time at start-up, so a feed silent "
                                "since before a restart counts as silent from the start.", ("topic",),
                                registry=r)
        self.fold = Histogram("crswatch_fold_duration_seconds", "Time of one fold step (alerts.log.step).",
                              buckets=FOLD_BUCKETS, registry=r)
        self.am_sent = Counter("crswatch_alertmanager_alerts_sent", "Alerts accepted by Alertmanager (resends too).",
                               registry=r)
        self.am_failures = Counter("crswatch_alertmanager_post_failures", "Failed POSTs to Alertmanager.", registry=r)
        self.am_dropped = Counter("crswatch_alertmanager_alerts_dropped",
                                  "Alerts never delivered to Alertmanager (queue full or rejected).", registry=r)
        self.am_firing = Gauge("crswatch_alertmanager_firing_alerts",
                               "Per-patient alerts the sink keeps re-sending to Alertmanager.", registry=r)
        Info("crswatch_build", "Version of crswatch and Python.", registry=r).info(
            {"version": _version(), "python": platform.python_version()})
        if process_metrics:
            ProcessCollector(registry=r)
        self._topics = topics
        self._levels: dict[str, tuple[int, int]] = {}
        self._crs_count: Tally[int] = Tally()
        self._iec_count: Tally[int] = Tally()
        for g in CRS_GRADES:
            self.crs_patients.labels(str(g)).set(0)
        for lv in IEC_HS_LEVELS:
            self.iec_patients.labels(str(lv)).set(0)
        for reason in DEAD_LETTER_REASONS:
            self.dead_letters.labels(reason)
        for fmt in FEED_FORMATS:
            for outcome in FEED_OUTCOMES:
                self.feed_units.labels(fmt, outcome)
        # From 0, so that increase() and queued - published see the first record after a start.
        # The lag too: a worker that has seen only replayed history (no lag observed) still exports
        # the series its dashboard panel and recording rule read.
        for topic in INPUT_TOPICS:
            self.lag.labels(topic)
        for topic in OUTPUT_TOPICS:
            self.queued_records.labels(topic)
            self.published_records.labels(topic)

    # ------------------------------------------------------------------ start-up

    def inputs_started(self, now_s: float) -> None:
        """The streaming worker starts consuming: every input topic's last-event time is `now_s`
        until a message arrives, so `time() - crswatch_input_last_event_timestamp_seconds` measures a
        feed that died before the start from the start (without it the series would not exist). The lag
        histogram of each input topic exists from the start too (empty): a worker fed only replayed
        history observes no lag, and its dashboard panel must show no lag rather than no data."""
        for topic in INPUT_TOPICS:
            self.last_event.labels(topic).set(now_s)
            self.lag.labels(topic)

    # ------------------------------------------------------------------ per message

    def observe_event(self, topic: str, kind: str | None, outcome: str, event_time_s: float | None, now_s: float,
                      fold_seconds: float | None = None, replayed: bool = False) -> None:
        """One input message. The lag is observed for applied and late events only (a duplicate
        is a redelivery, its lag says nothing about the feed), and not for replayed history
        (`crswatch publish` marks its messages): days-old event times are no feed delay."""
        t = bounded(topic, self._topics, UNKNOWN)
        out = bounded(outcome, OUTCOMES)
        self.events.labels(t, bounded(kind, EVENT_KINDS, UNKNOWN), out).inc()
        if t in INPUT_TOPICS:
            self.last_event.labels(t).set(now_s)
        if event_time_s is not None and not replayed and out in ("applied", "late", "corrected"):
            self.lag.labels(t).observe(max(0.0, now_s - event_time_s))
        if fold_seconds is not None:
            self.fold.observe(fold_seconds)

    def dead_lettered(self, reason: str) -> None:
        self.dead_letters.labels(bounded(reason, DEAD_LETTER_REASONS)).inc()

    def observe_feed(self, fmt: str, result: Normalised) -> None:
        """One raw feed message normalised by an input adapter: its units by outcome."""
        f = bounded(fmt, FEED_FORMATS)
        for outcome, n in (("accepted", result.accepted), ("rejected", len(result.rejected)),
                           ("ignored", len(result.ignored))):
            if n:
                self.feed_units.labels(f, outcome).inc(n)

    def observe_rejected(self, topic: str, category: str, now_s: float) -> None:
        """A message that is not a valid event: counted as ingested (rejected) and dead-lettered."""
        self.observe_event(topic, None, "rejected", None, now_s)
        self.dead_lettered(category)

    def observe_records(self, records: Iterable[Record]) -> None:
        for r in records:
            self.records.labels(r.type).inc()
            if isinstance(r, Alert):
                self.alerts.labels(bounded(r.kind, ALERT_KINDS), bounded(r.severity, SEVERITIES), r.status).inc()

    def set_patient_levels(self, patient_id: str, crs_grade: int, iec_hs_level: int) -> None:
        new = (crs_grade, iec_hs_level)
        old = self._levels.get(patient_id)
        if old == new:
            return
        self._levels[patient_id] = new
        if old is not None:
            self._move(old, -1)
        self._move(new, +1)

    def observe_step(self, topic: str, event: ClinicalEvent, result: StepResult, state: PatientState, now_s: float,
                     fold_seconds: float | None = None, replayed: bool = False) -> None:
        self.observe_event(topic, event.kind, result.outcome, event.ts, now_s, fold_seconds, replayed)
        self.observe_records(result.records)
        self.set_patient_levels(state.patient_id, state.crs_grade, state.iec_hs_level)

    def observe_steps(self, steps: Sequence[tuple[str, ClinicalEvent, StepResult, PatientState, float, bool]],
                      now_s: float) -> None:
        """`observe_step` for each (topic, event, result, state, fold_seconds, replayed) of a batch, with
        the same series and values: each counter is incremented once per label set, each child looked
        up once."""
        if not steps:
            return
        counts: Tally[tuple[str, str, str]] = Tally()
        lag: dict[str, Any] = {}
        fold = self.fold.observe
        for topic, event, result, state, fold_seconds, replayed in steps:
            t = bounded(topic, self._topics, UNKNOWN)
            out = bounded(result.outcome, OUTCOMES)
            counts[(t, bounded(event.kind, EVENT_KINDS, UNKNOWN), out)] += 1
            if not replayed and out in ("applied", "late", "corrected"):
                child = lag.get(t)
                if child is None:
                    child = lag[t] = self.lag.labels(t)
                child.observe(max(0.0, now_s - event.ts))
            fold(fold_seconds)
            if result.records:
                self.observe_records(result.records)
            self.set_patient_levels(state.patient_id, state.crs_grade, state.iec_hs_level)
        topics: set[str] = set()
        for (t, kind, out), n in counts.items():
            self.events.labels(t, kind, out).inc(n)
            topics.add(t)
        for t in topics & set(INPUT_TOPICS):
            self.last_event.labels(t).set(now_s)

    def queued(self, topic: str, n: int = 1) -> None:
        self.queued_records.labels(bounded(topic, OUTPUT_TOPICS)).inc(n)

    def published(self, topic: str, n: int = 1) -> None:
        self.published_records.labels(bounded(topic, OUTPUT_TOPICS)).inc(n)

    def forget_patients(self, patient_ids: Iterable[str]) -> None:
        for pid in patient_ids:
            old = self._levels.pop(pid, None)
            if old is not None:
                self._move(old, -1)

    @property
    def patients(self) -> int:
        return len(self._levels)

    def _move(self, levels: tuple[int, int], delta: int) -> None:
        crs, iec = levels
        if crs in CRS_GRADES:
            self._crs_count[crs] += delta
            self.crs_patients.labels(str(crs)).set(self._crs_count[crs])
        if iec in IEC_HS_LEVELS:
            self._iec_count[iec] += delta
            self.iec_patients.labels(str(iec)).set(self._iec_count[iec])

    # ------------------------------------------------------------------ Alertmanager sink

    def alertmanager_sent(self, n: int) -> None:
        self.am_sent.inc(n)

    def alertmanager_failed(self) -> None:
        self.am_failures.inc()

    def alertmanager_dropped(self, n: int) -> None:
        self.am_dropped.inc(n)

    def alertmanager_firing(self, n: int) -> None:
        self.am_firing.set(n)

    # ------------------------------------------------------------------ output

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """(body, content type) for an HTTP `/metrics` handler, negotiated from its Accept header."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def serve(self, port: int, addr: str = "127.0.0.1") -> tuple[WSGIServer, Thread]:
        """Serve `/metrics` from a daemon thread; `server.shutdown()` stops it."""
        return start_http_server(port, addr, self.registry)

    def write_textfile(self, path: Path) -> None:
        """The Prometheus text format, written atomically (temporary file and rename)."""
        write_to_textfile(str(path), self.registry)


__all__ = ["CRS_GRADES", "DEAD_LETTER_REASONS", "FEED_FORMATS", "FEED_OUTCOMES", "IEC_HS_LEVELS", "OUTCOMES", "Metrics",
           "bounded"]
