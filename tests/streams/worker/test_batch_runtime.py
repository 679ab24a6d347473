"""Runtime.on_batch without a broker: a faust app that is never started, its consumer, producer and
changelog replaced by recorders. What a batch must keep: outputs confirmed before any log holding
their events is written, acks only once the changelog confirms the log (in offset order), and a
batch of an older consumer generation dropped without a trace (faust delivers it again)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from faust.types import TP

from alerts.config import Thresholds
from streams.settings import Settings
from streams.topics import ALERTS, LABS, VITALS
from streams.worker.runtime import Runtime


@dataclass
class Msg:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: list[Any] = field(default_factory=list)

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


class Recorder:
    """The consumer (acks), the output producer and the changelog, in one journal."""

    def __init__(self) -> None:
        self.journal: list[tuple[str, Any]] = []
        self._committed_offset: dict[TP, int] = {}
        self.changelog: list[asyncio.Future[None]] = []

    def ack(self, message: Msg) -> None:
        self.journal.append(("ack", (message.topic, message.offset)))

    async def send(self, outputs: list[tuple[str, bytes, bytes]]) -> None:
        self.journal.append(("sent", [topic for topic, _, _ in outputs]))

    def send_changelog(self, partition: int, key: bytes, value: bytes) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.journal.append(("changelog", key.decode()))
        self.changelog.append(fut)
        return fut


def runtime() -> tuple[Runtime, Recorder]:
    with pytest.MonkeyPatch.context() as mp:  # importing streams.app asks the broker's flavor unless set
        mp.setenv("CRSWATCH_BROKER_FLAVOR", "kafka")
        from streams.app import make_app
    app = make_app(Settings(broker="127.0.0.1:1", broker_flavor="kafka"))
    rt = Runtime(app, Settings(), Thresholds())
    rec = Recorder()
    app.consumer = rec
    rt.send = rec.send  # type: ignore[method-assign]
    rt.table.send_changelog = rec.send_changelog
    rt.standing = lambda topic, partition, seen=None: "caught_up"  # type: ignore[method-assign]
    rt._polled_at = lambda tp: None  # type: ignore[method-assign]
    return rt, rec


def event(kind: str, pid: str, n: int, **fields: Any) -> bytes:
    return json.dumps({"kind": kind, "event_id": f"{pid}-{n}", "patient_id": pid,
                       "time": f"2024-01-01T0{n}:00:00Z", "provenance": {"source": "test"}, **fields}).encode()


def batch() -> list[Msg]:
    hr = {"heart_rate": {"value": 80, "unit": "/min"}}
    return [
        Msg(VITALS, 0, 0, b"a", event("vitals", "a", 1, **hr)),
        Msg(VITALS, 0, 1, b"b", event("vitals", "b", 1, **hr)),
        # ferritin 20,000 ng/mL: an IEC-HS alert at once for patient b
        Msg(LABS, 0, 0, b"b", event("lab", "b", 2, analyte="ferritin", value=20000, unit="ng/mL")),
        Msg(VITALS, 0, 2, b"a", b"{not json"),
    ]


def test_a_batch_sends_its_outputs_before_any_log_and_acks_only_confirmed_logs_in_offset_order() -> None:
    async def go() -> None:
        rt, rec = runtime()
        await rt.on_batch(rt.app.consumer_generation_id, batch())
        # the dead letter with one wait; the batch's outputs with one wait; then the log of b, the
        # patient with outputs (a's waits for the flush); nothing acked before a confirmed log
        assert rec.journal == [("sent", ["dead-letter"]), ("sent", [ALERTS, "patient-state", ALERTS]),
                               ("changelog", "b")]
        rec.changelog[0].set_result(None)
        await asyncio.sleep(0)
        # b's lab acked; vitals 1 (b) is covered too, but vitals 0 (a, unsaved) holds back 1 and 2
        assert rec.journal[3:] == [("ack", (LABS, 0))]
        rt.flush()
        assert rec.journal[4:] == [("changelog", "a")]
        rec.changelog[1].set_result(None)
        await asyncio.sleep(0)
        assert rec.journal[5:] == [("ack", (VITALS, 0)), ("ack", (VITALS, 1)), ("ack", (VITALS, 2))]
        assert rt.counts["batches"] == 1 and rt.counts["in"] == 4 and rt.counts["applied"] == 3

    asyncio.run(go())


def test_a_batch_of_an_older_generation_is_dropped_untracked() -> None:
    async def go() -> None:
        rt, rec = runtime()
        await rt.on_batch(rt.app.consumer_generation_id - 1, batch())
        assert rec.journal == []
        assert rt.gate.open_count() == 0 and len(rt.aligner) == 0
        assert rt.counts["skipped_in_rebalance"] == 4 and rt.counts["in"] == 0

    asyncio.run(go())
