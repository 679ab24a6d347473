"""The worker's runtime: per-worker glue between faust messages and the pure Processor.

`Runtime` holds what one worker process owns: the `patient-logs` table and its in-memory cache of
unsaved logs, the time aligner over the co-partitioned input topics, the in-order ack gate, the
changelog writes in flight, metrics and the Alertmanager sink. `streams/app.py` declares the
faust app, agents, timers and pages and hands each message here; this module references no
global of `app.py`, so it can be imported without building an app.

Delivery is at-least-once: a message is acked (its offset may be committed) only after its event
was folded and the log the broker confirmed covers it; redeliveries are duplicates to the log.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from collections import Counter
from typing import Any

import faust
from faust.streams import _current_event
from faust.types import TP

from alerts.config import Thresholds
from streams.observability.alertmanager import AlertmanagerSink, sink_config_from_env
from streams.observability.metrics import Metrics
from streams.settings import Settings
from streams.topics import (
    ALERTS,
    DEAD_LETTER,
    FHIR_IN,
    HL7_IN,
    INPUT_TOPICS,
    PATIENT_STATE,
    REPLAY_HEADER,
    input_topic,
)
from streams.worker.acks import AckGate
from streams.worker.align import Standing, TimeAligner
from streams.worker.processor import Output, Processor, Rejection, parse_message, stored_levels

TABLE = "patient-logs"
MAX_STATE_BYTES = 900_000
# In-house: a changed patient's log is also written after this many of its own unsaved events
# (and every Settings.flush_seconds); alerts go out at once, only the acks of the covered messages
# wait. Counted per patient: a count over all patients would rewrite every changed log several
# times a second at tens of thousands of events/s (a log is tens of KB).
FLUSH_EVENTS = 2000
# In-house: how long a rebalance or a shutdown waits for the changelog writes in flight
# (unconfirmed ones are not acked, so their events are folded again by the next owner).
DRAIN_SECONDS = 10.0


def _replayed(msg: Any) -> bool:
    return any(k == REPLAY_HEADER for k, _ in (msg.headers.items() if isinstance(msg.headers, dict)
                                              else msg.headers or ()))


class Held:
    """A faust message handed over in a batch (streams.worker.batching), held until the changelog
    has its patient's log. Event-like (`.message`, `.ack()`), like the events of faust's
    per-message stream: the ack gate, the store's current-event lookup and the rest of the
    runtime take either."""

    __slots__ = ("__weakref__", "consumer", "message")

    def __init__(self, message: Any, consumer: Any) -> None:
        self.message = message
        self.consumer = consumer

    def ack(self) -> None:
        self.consumer.ack(self.message)


class _StrKeys:
    """Read access to the table by patient id (the table's keys are the raw key bytes)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, patient_id: str) -> bytes | None:
        value: bytes | None = self.table.get(patient_id.encode())
        return value


class Runtime:
    """Per-worker glue between faust messages and the pure Processor."""

    def __init__(self, app: faust.App, settings: Settings, cfg: Thresholds) -> None:
        self.app = app
        # bytes keys and values: faust picks the raw codec for both (the changelog holds
        # patient_id -> alerts.log.log_to_json, readable by any Kafka client)
        self.table = app.Table(TABLE, key_type=bytes, value_type=bytes, partitions=settings.partitions)
        raw = {"key_serializer": "raw", "value_serializer": "raw", "partitions": settings.partitions}
        self.inputs = app.topic(*INPUT_TOPICS, key_type=bytes, value_type=bytes, **raw)
        self.raw_feeds = app.topic(FHIR_IN, HL7_IN, key_type=bytes, value_type=bytes,
                                   retention=settings.raw_feed_retention_hours * 3600, **raw)
        self.outputs = {
            **{t: app.topic(t, **raw) for t in INPUT_TOPICS},
            ALERTS: app.topic(ALERTS, **raw),
            PATIENT_STATE: app.topic(PATIENT_STATE, compacting=True, **raw),
            DEAD_LETTER: app.topic(DEAD_LETTER, retention=settings.dead_letter_retention_hours * 3600, **raw),
        }
        self.counts: Counter[str] = Counter()
        self.processor = Processor(cfg, _StrKeys(self.table), self.counts)
        self.metrics = Metrics()
        # Silence of each input feed counts from the start: a feed that died before a restart
        # would otherwise have no series, and CrswatchInputFeedSilent would never fire.
        self.metrics.inputs_started(time.time())
        sink_config = sink_config_from_env(os.environ)
        self.sink = None if sink_config is None else AlertmanagerSink(sink_config, self.metrics)
        self.partition_of: dict[str, int] = {}  # patients in the gauges -> their partition
        self.levels_stale = True  # gauges need a refresh from the table (start, rebalance)
        # patient -> messages folded but not yet stored, in the order of each patient's first
        # unsaved message (so the oldest come first), and since when
        self.unsaved: dict[str, list[Any]] = {}
        self.unsaved_since: dict[str, float] = {}
        self.unsaved_count = 0
        self.flush_seconds = settings.flush_seconds
        self.strict_feeds = settings.strict_feeds
        self.hl7_timezone = settings.hl7_timezone
        self.lock = asyncio.Lock()  # the agent and the timer both release held messages
        self.aligner: TimeAligner[tuple[Any, Any]] = TimeAligner(INPUT_TOPICS, settings.max_idle_seconds)
        self.delivered: dict[TP, int] = {}
        self.pending: set[Any] = set()  # changelog writes the broker has not confirmed yet
        self.paused = False  # from a revoke to the next assignment: nothing is folded
        self.gate: AckGate[Any] = AckGate(lambda event: event.ack(), self._committed_offset)

    async def declare_raw_input_topics(self) -> None:
        for topic in (self.raw_feeds, self.outputs[DEAD_LETTER]):
            await topic.maybe_declare()

    async def normalise_feed(self, event: Any) -> None:
        """A raw FHIR R4 or HL7 v2 message -> native events on the input topics (keyed by
        patient, message time = event time), rejected units -> dead-letter. Event ids come
        from the resource or message ids, so a redelivered message makes duplicates only."""
        from streams.feeds.inputs import normalise

        msg = event.message
        fmt = "fhir" if msg.topic == FHIR_IN else "hl7v2"
        result = normalise(msg.value or b"", fmt, source=f"{msg.topic}:{msg.partition}:{msg.offset}",
                           strict=self.strict_feeds, hl7_timezone=self.hl7_timezone)
        now = time.time()
        for ev in result.events:
            fut = await self.outputs[input_topic(ev)].send(key=ev.patient_id.encode(),
                                                          value=ev.model_dump_json(exclude_none=True).encode(),
                                                          timestamp=ev.ts)
            await fut
        letters: list[Output] = []
        for rej in result.rejected:
            raw = rej.raw.encode() if isinstance(rej.raw, str) else rej.raw
            letters.append(self.processor.reject(msg.topic, msg.partition, msg.offset, msg.key, raw,
                                                 Rejection(f"{rej.source}: {rej.reason}", rej.category), now))
            self.metrics.dead_lettered(rej.category)
        self.counts[f"normalised:{fmt}"] += len(result.events)
        self.counts[f"ignored:{fmt}"] += len(result.ignored)  # no value (contract: ignored, but counted)
        self.metrics.observe_feed(fmt, result)
        if letters:
            await self.send(letters)

    async def send(self, outputs: list[Output]) -> None:
        """Send and wait until the broker has them (acks=all). Counted as queued first and as
        published once confirmed: a gap that stays is a producer that does not deliver."""
        for topic, _, _ in outputs:
            self.metrics.queued(topic)
        pending = [await self.outputs[topic].send(key=key, value=value) for topic, key, value in outputs]
        for fut in pending:
            await fut
        for topic, _, _ in outputs:
            self.counts[f"out:{topic}"] += 1
            self.metrics.published(topic)

    def _committed_offset(self, tp: Any) -> int | None:
        committed: int | None = getattr(self.app.consumer, "_committed_offset", {}).get(tp)
        return committed

    def _polled_at(self, tp: Any) -> float | None:
        """When the consumer last had a fetch answer for this partition (ms, wall clock): the
        time its high watermark is from. None if unknown."""
        try:
            consumer = self.app.consumer._thread._consumer  # the aiokafka consumer
            polled: int | None = consumer.last_poll_timestamp(tp)
        except (AssertionError, AttributeError, KeyError):
            return None
        return None if polled is None else float(polled)

    def standing(self, topic: str, partition: int, seen: float | None = None) -> Standing:
        """Where this worker stands on an input topic partition, from the high watermark of
        the consumer's last fetch against the last offset delivered (or the committed one),
        as of a fetch no older than `seen` (a fetch time from `_polled_at`)."""
        tp = TP(topic, partition)
        try:
            highwater = self.app.consumer.highwater(tp)
        except (AssertionError, KeyError, AttributeError):  # not (or no longer) assigned
            return "unknown"
        if highwater is None:
            # assigned, but no fetch answered for it yet (just after a rebalance): one is on its
            # way, and under load it can take longer than max_idle
            return "behind"
        last = self.delivered.get(tp)
        if last is None:
            # no committed offset: consumption starts at the beginning (auto_offset_reset=earliest)
            start = getattr(self.app.consumer, "_committed_offset", {}).get(tp) or 0
            caught_up = start >= highwater
        else:
            caught_up = last + 1 >= highwater
        if caught_up and seen is not None:
            polled = self._polled_at(tp)
            if polled is None or polled < seen:
                # this high watermark is older than the message to release: what was published
                # since is not in it; the next fetch answers
                return "behind"
        return "caught_up" if caught_up else "behind"

    async def on_message(self, event: Any) -> None:
        """One message of faust's per-message stream (CRSWATCH_BATCH=false)."""
        async with self.lock:
            if self.paused:
                # taken before faust cleared its buffers on a revoke: not acked, so redelivered
                # to whoever owns the partition after the rebalance
                self.counts["skipped_in_rebalance"] += 1
                return
            partitions = await self._intake([event])
            if self.ready():
                await self._release(partitions)
            self.flush_due()

    def ready(self) -> bool:
        """Whether the table is recovered and faust has sought to the committed offsets. Before that
        (from an assignment to "Worker ready") faust can hand over messages fetched from the consumer's
        old position: folded then, a patient's log would be loaded from a table not yet recovered (empty
        for a memory store) and cached, and the events between those messages and the committed offset,
        which only the stored log held, would be lost (issue 18). So nothing is folded until then: the
        messages wait in the aligner and the timer releases them once ready."""
        return not self.app.rebalancing and not getattr(self.app, "in_recovery", False)

    async def on_batch(self, generation_id: int, messages: list[Any]) -> None:
        """One fetch of the input topics (streams.worker.batching): parse all, push all into the
        aligner, release once per touched partition, fold, send all outputs with one wait, write
        the logs of the patients with outputs, then what is due."""
        async with self.lock:
            if self.paused or generation_id != self.app.consumer_generation_id:
                # fetched before a rebalance (or queued while it ran): not acked, so redelivered
                # from the committed offset to whoever owns the partition now
                self.counts["skipped_in_rebalance"] += len(messages)
                return
            consumer = self.app.consumer
            self.counts["batches"] += 1
            partitions = await self._intake([Held(m, consumer) for m in messages])
            if self.ready():
                await self._release(partitions)
            self.flush_due()

    async def _intake(self, events: list[Any]) -> list[int]:
        """Track, parse and hold (in the aligner) events in delivery order; dead letters are sent
        at once, with one wait. Returns the partitions that got messages to release."""
        delivered, track, push = self.delivered, self.gate.track, self.aligner.push
        polled: dict[TP, float | None] = {}  # one fetch time per topic partition and batch
        letters: list[Any] = []
        outputs: list[Output] = []
        partitions: dict[int, None] = {}
        for event in events:
            msg = event.message
            tp = msg.tp
            last = delivered.get(tp)
            if last is not None and msg.offset != last + 1:
                # faust went back (messages fetched before its seek to the committed offset came
                # first; seen at start-up and after a rebalance: the Processor and the AckGate take
                # a partition out of offset order) or skipped offsets (faust drops a message below
                # its read offset; the gate acks nothing past a missing offset). Counted, logged.
                kind = "delivered_out_of_order" if msg.offset <= last else "delivered_with_gap"
                self.counts[kind] += 1
                if self.counts[kind] <= 20:
                    self.app.log.warning("input %s:%d delivered offset %d after %d", msg.topic, msg.partition,
                                         msg.offset, last)
            delivered[tp] = msg.offset
            track(tp, msg.offset, event)
            parsed = parse_message(msg.key, msg.value)
            if isinstance(parsed, Rejection):
                now = time.time()
                self.metrics.observe_rejected(msg.topic, parsed.category, now)
                outputs.append(self.processor.reject(msg.topic, msg.partition, msg.offset, msg.key, msg.value,
                                                     parsed, now))
                letters.append(event)
                continue
            if tp not in polled:
                polled[tp] = self._polled_at(tp)
            # Released in the order the information was known (`recorded_time`, else the event
            # time), as `crswatch publish` orders and the embedded replay folds: a lab collected at
            # 06:00 and resulted at 07:30 comes after the vitals of 07:14, as it would live.
            known = parsed.ts if parsed.recorded_time is None else parsed.recorded_time.timestamp()
            push(msg.topic, msg.partition, known, (parsed, event), seen=polled[tp])
            partitions[msg.partition] = None
        self.counts["in"] += len(events)
        if outputs:
            await self.send(outputs)
            for event in letters:
                self._done(event)
        return list(partitions)

    async def _release(self, partitions: list[int]) -> None:
        """Fold what the aligner releases for these partitions, in its order. The outputs of all
        of them are sent with one wait before any of their events is marked for storing: a
        stored log that holds an event must imply its outputs went out."""
        processor, metrics, counts = self.processor, self.metrics, self.counts
        now = time.time()
        steps: list[tuple[str, Any, Any, Any, float, bool]] = []
        outputs: list[Output] = []
        records: list[Any] = []
        folded: list[tuple[str, Any]] = []
        alerted: dict[str, None] = {}
        mono = time.monotonic()
        for partition in partitions:
            for parsed, event in self.aligner.pop_ready(partition, self.standing, mono):
                msg = event.message
                position = f"{msg.topic}:{msg.partition}"
                pid = parsed.patient_id
                if processor.redelivered(parsed, position, msg.offset):
                    counts["duplicate"] += 1
                    metrics.observe_event(msg.topic, parsed.kind, "duplicate", parsed.ts, now)
                    self._done(event)
                    continue
                started = time.perf_counter()
                result, out = processor.process(parsed, position, msg.offset)
                steps.append((msg.topic, parsed, result, processor.cache[pid].head, time.perf_counter() - started,
                              _replayed(msg)))
                self.partition_of[pid] = msg.partition
                if result.outcome == "duplicate":
                    self._done(event)
                    continue
                if out:
                    outputs.extend(out)
                    records.extend(result.records)
                    alerted[pid] = None
                folded.append((pid, event))
        metrics.observe_steps(steps, now)
        if outputs:
            await self.send(outputs)
            if self.sink is not None:
                self.sink.submit(records)
        for pid, event in folded:
            self._store(pid, event)
        for pid in alerted:
            # Store this patient's log now, not at the next flush: a crash between the alert and
            # the stored log would send the alert again on redelivery.
            self.flush_patient(pid)

    def _store(self, patient_id: str, event: Any) -> None:
        """Mark the patient's log for writing; its message is acked once the changelog has it."""
        held = self.unsaved.get(patient_id)
        if held is None:
            self.unsaved[patient_id] = [event]
            self.unsaved_since[patient_id] = time.monotonic()
        else:
            held.append(event)
        self.unsaved_count += 1
        if held is not None and len(held) >= FLUSH_EVENTS:
            self.flush_patient(patient_id)

    def flush_patient(self, patient_id: str) -> None:
        events = self.unsaved.pop(patient_id, [])
        self.unsaved_since.pop(patient_id, None)
        self.unsaved_count -= len(events)
        self._write(patient_id, events)

    def flush(self) -> None:
        """Write each changed patient's log once (not once per event: a log is tens of KB)
        and ack the messages it covers when the changelog has it, so a committed offset never
        runs ahead of the stored state (faust does not wait for changelog delivery itself)."""
        unsaved, self.unsaved, self.unsaved_count = self.unsaved, {}, 0
        self.unsaved_since = {}
        for patient_id, events in unsaved.items():
            self._write(patient_id, events)

    def _write(self, patient_id: str, events: list[Any]) -> None:
        """Send the patient's log to the changelog; once the broker has it, put it in the local
        store and ack `events`."""
        if not events or patient_id not in self.processor.cache:
            return  # dropped on a rebalance: not acked, folded again by the new owner
        value = self.processor.stored_form(patient_id)
        if len(value) > MAX_STATE_BYTES:
            # Kafka's default message size limit; a state this large is a bug or a flood of
            # late events. Not acked: folded again after a restart; counted and logged.
            self.counts["state_too_large"] += 1
            self.app.log.error("state of a patient is %d bytes; not stored", len(value))
            return
        fut = self.table.send_changelog(events[-1].message.partition, patient_id.encode(), value)
        self.pending.add(fut)
        fut.add_done_callback(lambda f: self._confirmed(f, patient_id, value, events))
        self.counts["changelog_writes"] += 1

    def flush_due(self) -> None:
        """Write the logs of the patients whose oldest unsaved message is `flush_seconds` old:
        spread over time, not every patient at once."""
        limit = time.monotonic() - self.flush_seconds
        while self.unsaved_since:
            patient_id, since = next(iter(self.unsaved_since.items()))
            if since > limit:
                break  # the rest are younger
            self.flush_patient(patient_id)

    def _confirmed(self, fut: Any, patient_id: str, value: bytes, events: list[Any]) -> None:
        self.pending.discard(fut)
        if fut.cancelled() or fut.exception() is not None:
            self.counts["changelog_failed"] += 1  # not acked: the messages are folded again after a restart
            return
        # The local store gets the log only now: a RocksDB store ahead of the changelog would,
        # after a crash, hold offsets that make the redelivered messages duplicates, and the
        # changelog (what any other worker recovers from) would never get those events.
        last = events[-1]
        # Written from a callback, not inside faust's stream: make the message the current
        # event, which the RocksDB store uses to pick the partition's database.
        token = _current_event.set(weakref.ref(last))
        try:
            self.table.data[patient_id.encode()] = value
        finally:
            _current_event.reset(token)
        self.counts["changelog_confirmed"] += 1
        for event in events:
            self._done(event)

    async def drain(self) -> None:
        """Write every changed log and wait until the broker has confirmed all of them (and
        their messages are acked)."""
        self.flush()
        if self.pending:
            await self.app.producer.flush()
            await asyncio.wait(list(self.pending), timeout=DRAIN_SECONDS)

    def _done(self, event: Any) -> None:
        self.gate.done(event.message.tp, event.message.offset, event)

    async def release_waiting(self) -> None:
        if not self.ready():
            return
        async with self.lock:
            await self._release(self.aligner.waiting())
            self.flush_due()

    def refresh_levels(self) -> None:
        """Patients-at-grade gauges over every patient in the partitions this worker owns
        (recovered from the changelog too, not only those seen since start)."""
        if not self.levels_stale or self.app.rebalancing or getattr(self.app, "in_recovery", False):
            return
        owned = {tp.partition for tp in self.app.consumer.assignment() if tp.topic in INPUT_TOPICS}
        for key, value in self.table.items():
            pid = key.decode()
            crs, iec = stored_levels(value)
            self.metrics.set_patient_levels(pid, crs, iec)
            self.partition_of.setdefault(pid, -1)
        self.metrics.forget_patients([p for p, part in self.partition_of.items() if part not in owned and part != -1])
        self.levels_stale = False

    async def on_revoked(self) -> None:
        # Before any partition moves: every folded event stored and acked, so the next owner
        # recovers it from the changelog, and no offset is committed past a log it cannot see.
        await self.drain()
        self.paused = True

    async def on_assigned(self, assigned: set[TP]) -> None:
        # faust seeks every assigned partition back to its committed offset after a rebalance
        # and redelivers what was not acked: drop what is held, and store what was folded (a
        # redelivered message already in a stored log is then a duplicate, by its offset).
        await self.drain()
        self.paused = False
        self.counts["dropped_on_rebalance"] += len(self.aligner.drop(self.aligner.waiting()))
        self.gate.forget()
        owned = {tp.partition for tp in assigned if tp.topic in INPUT_TOPICS}
        gone = [pid for pid, p in self.partition_of.items() if p not in owned]
        self.metrics.forget_patients(gone)
        for pid in gone:
            del self.partition_of[pid]
        self.levels_stale = True
        self.delivered = {}  # positions start again from the committed offsets
        self.processor.forget()

    def input_lag(self) -> int | None:
        """Messages in the broker on this worker's input partitions not yet taken; None while
        unknown (not assigned, or no fetch answered yet)."""
        assigned = [tp for tp in self.app.consumer.assignment() if tp.topic in INPUT_TOPICS]
        if not assigned or self.app.rebalancing or getattr(self.app, "in_recovery", False):
            return None
        lag = 0
        for tp in assigned:
            try:
                highwater = self.app.consumer.highwater(tp)
            except (AssertionError, KeyError, AttributeError):
                return None
            if highwater is None:
                return None
            last = self.delivered.get(tp)
            start = getattr(self.app.consumer, "_committed_offset", {}).get(tp) or 0
            lag += max(0, highwater - (last + 1 if last is not None else start))
        return lag

    def stats(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "held": len(self.aligner), "input_lag": self.input_lag(),
                "aligner_gave_up": self.aligner.gave_up, "aligner_idled_out": self.aligner.idled_out,
                "unsaved": self.unsaved_count, "pending_writes": len(self.pending),
                "assigned_input_partitions": len([tp for tp in self.app.consumer.assignment()
                                                  if tp.topic in INPUT_TOPICS]),
                "cached_patients": len(self.processor.cache),
                "input_path": "batch" if getattr(self.app, "batch_route", None) is not None else "message"}


