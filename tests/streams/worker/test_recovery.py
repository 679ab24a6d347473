"""Crash recovery of the worker, simulated without faust or a broker, with a kill at every step.

A `SimWorker` drives the worker's own parts (`TimeAligner`, `Processor`, `AckGate`) the way
`streams.worker.runtime.Runtime` does: messages fetched topic partition by topic partition in an
order a seeded RNG picks, released in event time, folded, outputs first, the patient's log written
to the changelog, and a message acked once a confirmed write covers it; offsets are committed from
the acks now and then. A kill loses everything but the broker: the changelog (confirmed writes and
perhaps some in flight) and the committed offsets. The next worker starts from those, as faust does.

Definition (the one the restart tests check): after any sequence of kills and restarts, every
patient's whole state (`state_to_json` of the head, `iec_eval_ts` included) equals the fold of the
patient's events in event-time order, (event time, event_id), which is also what the embedded
replay of the file gives. Arrival order within the lateness window must not matter.
"""

from __future__ import annotations

import json
import random
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from alerts.config import Thresholds
from alerts.log import log_from_json, new_log, step
from models.events import ClinicalEvent
from models.state import state_to_json
from streams.publish import interleave
from streams.replay import read_lines
from streams.topics import INPUT_TOPICS, input_topic
from streams.worker.acks import AckGate
from streams.worker.align import Standing, TimeAligner
from streams.worker.processor import Output, Processor, Rejection, parse_message
from tests.streams.helpers import write_cohort

CFG = Thresholds()
PARTITIONS = 2
TP = tuple[str, int]


@dataclass
class Broker:
    """What survives a kill."""

    topics: dict[TP, list[tuple[bytes, bytes]]]
    changelog: list[tuple[str, bytes]] = field(default_factory=list)
    committed: dict[TP, int] = field(default_factory=dict)  # next offset to read

    def table(self) -> dict[str, bytes]:
        return {pid: value for pid, value in self.changelog}  # the latest write per patient


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes

    @property
    def tp(self) -> TP:
        return (self.topic, self.partition)


class SimWorker:
    """One worker process: the fetch position, aligner, cache, unsaved logs, writes in flight and
    gate are lost on a kill."""

    def __init__(self, broker: Broker, rng: random.Random, repeat: int = 0) -> None:
        self.broker = broker
        self.rng = rng
        self.repeat = repeat
        self.table = broker.table()
        self.processor = Processor(CFG, self.table)
        self.aligner: TimeAligner[Message] = TimeAligner(INPUT_TOPICS, max_idle=1e9, max_behind=1e9)
        self.position = {tp: broker.committed.get(tp, 0) for tp in broker.topics}  # faust seeks to committed
        self.acked = dict(self.position)  # next offset faust may commit
        self.gate: AckGate[Message] = AckGate(self._ack, lambda tp: broker.committed.get(tp))  # type: ignore[arg-type]
        self.unsaved: dict[str, list[Message]] = {}
        self.in_flight: deque[tuple[str, bytes, list[Message]]] = deque()
        self.outputs: list[Output] = []

    def _ack(self, m: Message) -> None:
        assert m.offset == self.acked[m.tp], "acks in offset order"
        self.acked[m.tp] = m.offset + 1

    def standing(self, topic: str, partition: int, seen: float | None = None) -> Standing:
        tp = (topic, partition)
        return "caught_up" if self.position[tp] >= len(self.broker.topics[tp]) else "behind"

    def done(self) -> bool:
        return (all(self.position[tp] >= len(msgs) for tp, msgs in self.broker.topics.items())
                and not len(self.aligner) and not self.unsaved and not self.in_flight)

    def steps(self) -> Iterator[None]:
        """One unit of work per step: fetch a message, confirm a write, flush, or commit.

        With `repeat`, the start is what a restarted worker logged on the test broker ('vitals:2
        delivered offset 733 after 733', 'treatments:2 ... 3 after 32'): faust hands over up to
        `repeat` messages of each partition from the committed offset, then its seek to the
        committed offset delivers them again."""
        if self.repeat:
            start = dict(self.position)
            tps = sorted(self.broker.topics)
            for tp in self.rng.sample(tps * self.repeat, len(tps) * self.repeat):
                if self.position[tp] < len(self.broker.topics[tp]):
                    self._deliver(tp)
                    yield
            self.position = start
        while not self.done():
            r = self.rng.random()
            if r < 0.15 and self.in_flight:
                self._confirm()
            elif r < 0.20:
                self._flush()
            elif r < 0.25:
                self.broker.committed.update(self.acked)
            else:
                open_tps = [tp for tp, msgs in self.broker.topics.items() if self.position[tp] < len(msgs)]
                if open_tps:
                    self._deliver(self.rng.choice(sorted(open_tps)))
                elif self.in_flight:
                    self._confirm()
                else:
                    self._flush()
            yield
        self.broker.committed.update(self.acked)

    def _deliver(self, tp: TP) -> None:
        offset = self.position[tp]
        key, value = self.broker.topics[tp][offset]
        self.position[tp] = offset + 1
        m = Message(tp[0], tp[1], offset, key, value)
        self.gate.track(tp, offset, m)
        parsed = parse_message(key, value)
        assert not isinstance(parsed, Rejection)
        self.aligner.push(m.topic, m.partition, parsed.ts, m)
        for released in self.aligner.pop_ready(m.partition, self.standing, 0.0):
            self._fold(released)

    def _fold(self, m: Message) -> None:
        event = parse_message(m.key, m.value)
        assert not isinstance(event, Rejection)
        position = f"{m.topic}:{m.partition}"
        if self.processor.redelivered(event, position, m.offset):
            self.gate.done(m.tp, m.offset, m)
            return
        result, outputs = self.processor.process(event, position, m.offset)
        assert result.outcome != "late", f"{event.event_id} folded late: the simulation keeps the window"
        if result.outcome == "duplicate":
            self.gate.done(m.tp, m.offset, m)
            return
        self.outputs.extend(outputs)
        self.unsaved.setdefault(event.patient_id, []).append(m)
        if outputs:
            self._write(event.patient_id)

    def _write(self, patient_id: str) -> None:
        messages = self.unsaved.pop(patient_id, [])
        if messages:
            self.in_flight.append((patient_id, self.processor.stored_form(patient_id), messages))

    def _flush(self) -> None:
        for patient_id in list(self.unsaved):
            self._write(patient_id)

    def _confirm(self) -> None:
        patient_id, value, messages = self.in_flight.popleft()
        self.broker.changelog.append((patient_id, value))
        self.table[patient_id] = value
        for m in messages:
            self.gate.done(m.tp, m.offset, m)

    def rebalance(self, ahead: int) -> None:
        """A rebalance that keeps every partition here, as Runtime.on_revoked / on_assigned see it:
        everything folded is stored and acked, offsets committed, held messages dropped, the
        cache and the gate forgotten. Then, as observed with faust (tests/streams/worker/
        test_acks.py), up to `ahead` messages fetched from the old position of one topic
        partition are delivered before faust's seek to the committed offset redelivers the rest."""
        self._flush()
        while self.in_flight:
            self._confirm()
        self.broker.committed.update(self.acked)
        self.aligner.drop(self.aligner.waiting())
        self.gate.forget()
        self.processor.forget()
        open_tps = sorted(tp for tp, msgs in self.broker.topics.items() if self.position[tp] < len(msgs))
        if open_tps:
            tp = self.rng.choice(open_tps)
            for _ in range(min(ahead, len(self.broker.topics[tp]) - self.position[tp])):
                self._deliver(tp)
        for tp in self.position:
            self.position[tp] = self.broker.committed.get(tp, 0)
        self.acked = dict(self.position)

    def kill(self, writes_reached_broker: int) -> None:
        """SIGKILL: the first `writes_reached_broker` writes in flight reached the changelog
        (unconfirmed: their messages are not acked); everything else of this process is gone."""
        for patient_id, value, _ in list(self.in_flight)[:writes_reached_broker]:
            self.broker.changelog.append((patient_id, value))


def cohort_events(tmp: Path, patients: int, days: int, vitals_every: int) -> list[ClinicalEvent]:
    path = tmp / "cohort.jsonl"
    write_cohort(path, patients=patients, days=days, vitals_every=vitals_every)
    return [event for _, event in interleave(list(read_lines([path])), [])]


def publish(events: list[ClinicalEvent]) -> Broker:
    """Each event on its input topic, partition by patient, in publishing order."""
    topics: dict[TP, list[tuple[bytes, bytes]]] = {(t, p): [] for t in INPUT_TOPICS for p in range(PARTITIONS)}
    for ev in events:
        key = ev.patient_id.encode()
        topics[(input_topic(ev), zlib.crc32(key) % PARTITIONS)].append(
            (key, ev.model_dump_json(exclude_none=True).encode()))
    return Broker(topics)


def event_time_fold(events: list[ClinicalEvent]) -> dict[str, Any]:
    """patient -> whole state after folding the patient's events in event-time order."""
    logs: dict[str, Any] = {}
    for ev in sorted(events, key=lambda e: (e.ts, e.event_id)):
        log = logs.get(ev.patient_id)
        if log is None:
            log = logs[ev.patient_id] = new_log(ev.patient_id)
        step(log, ev, CFG)
    return {pid: json.loads(state_to_json(log.head)) for pid, log in logs.items()}


def recovered_states(broker: Broker) -> dict[str, Any]:
    return {pid: json.loads(state_to_json(log_from_json(json.dumps(json.loads(value)["log"]), CFG).head))
            for pid, value in broker.table().items()}


def run_with_kills(events: list[ClinicalEvent], kills: list[tuple[int, int]], seed: int, repeat: int = 0) -> Broker:
    """Run workers one after the other, killing the first at step kills[0][0] (with kills[0][1]
    writes in flight reaching the broker), its successor at kills[1][0], and so on."""
    broker = publish(events)
    rng = random.Random(seed)
    for at, reached in [*kills, (-1, 0)]:
        worker = SimWorker(broker, rng, repeat)
        for n, _ in enumerate(worker.steps()):
            if n == at:
                worker.kill(reached)
                break
    return broker


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> list[ClinicalEvent]:
    return cohort_events(tmp_path_factory.mktemp("cohort"), patients=3, days=2, vitals_every=60)


def test_without_a_kill_the_worker_gives_the_event_time_fold(cohort: list[ClinicalEvent]) -> None:
    want = event_time_fold(cohort)
    for seed in range(3):
        assert recovered_states(run_with_kills(cohort, [], seed)) == want


def differences(got: dict[str, Any], want: dict[str, Any]) -> dict[str, Any]:
    """patient -> {field: (got, want)}, for a dict field only its differing entries."""
    out: dict[str, Any] = {}
    for pid, w in want.items():
        g = got.get(pid, {})
        fields = {}
        for k, v in w.items():
            if g.get(k) != v:
                if isinstance(v, dict) and isinstance(g.get(k), dict):
                    fields[k] = {x: (g[k].get(x), v.get(x)) for x in {*v, *g[k]} if g[k].get(x) != v.get(x)}
                else:
                    fields[k] = (g.get(k), v)
        if fields:
            out[pid] = fields
    return out


def test_a_kill_at_every_step_then_restart_gives_the_event_time_fold(cohort: list[ClinicalEvent]) -> None:
    want = event_time_fold(cohort)
    total = sum(1 for _ in SimWorker(publish(cohort), random.Random(0)).steps())
    for at in range(total):
        kills = [(at, at % 3)]  # 0, 1 or 2 writes in flight reach the broker
        if at % 2:
            kills.append((at // 2, 1))  # and the restarted worker is killed too
        got = recovered_states(run_with_kills(cohort, kills, seed=at))
        assert set(got) == set(want)
        assert not differences(got, want), f"kills {kills}: {differences(got, want)}"


def run_with_rebalances(events: list[ClinicalEvent], at: list[int], ahead: int, seed: int,
                        kill: int | None = None) -> Broker:
    """One worker, rebalanced at the given steps (see SimWorker.rebalance); optionally killed at
    step `kill` and followed by a second worker."""
    broker = publish(events)
    rng = random.Random(seed)
    worker = SimWorker(broker, rng)
    for n, _ in enumerate(worker.steps()):
        if n in at:
            worker.rebalance(ahead)
        if n == kill:
            worker.kill(0)
            for _ in SimWorker(broker, rng).steps():
                pass
            break
    return broker


def test_messages_delivered_ahead_of_the_seek_after_a_rebalance_lose_no_event(cohort: list[ClinicalEvent]) -> None:
    """At start-up and after a rebalance faust can hand over a few messages fetched before its seek
    to the committed offset, and then redeliver from that offset (a restarted worker logged
    'labs:2 offset 10 after 149'): a topic partition reaches the fold out of offset order. Each
    event must still be folded exactly once. (Failed before the Processor took the newest folded
    offset for proof of a duplicate only beyond the lateness window: a lab was lost.)"""
    want = event_time_fold(cohort)
    total = sum(1 for _ in SimWorker(publish(cohort), random.Random(0)).steps())
    for n, at in enumerate(range(5, total, 17)):
        broker = run_with_rebalances(cohort, [at], ahead=1 + n % 8, seed=at,
                                     kill=at + 40 if n % 2 else None)
        got = recovered_states(broker)
        assert not differences(got, want), f"rebalance at step {at}: {differences(got, want)}"



def test_a_start_that_delivers_messages_twice_then_a_kill_loses_no_event(cohort: list[ClinicalEvent]) -> None:
    """The copy delivered again by faust's seek is a duplicate at once; it must not let its offset
    be committed while the first copy's fold is only in memory, or a kill loses that event.
    (Failed before AckGate tracked each delivery of an offset.)"""
    want = event_time_fold(cohort)
    for at in range(0, 160, 2):
        kills = [(at, 0), (at + 40, 0)]  # the restarted worker starts the same way and is killed too
        got = recovered_states(run_with_kills(cohort, kills, seed=at, repeat=1 + at % 9))
        assert not differences(got, want), f"kills {kills}: {differences(got, want)}"
