"""Workarounds for the Tansu broker, used by the tests; enabled only by `--broker-flavor tansu`.

Against Apache Kafka (`--broker-flavor kafka`, the default) nothing here is imported.
Each item below is a Tansu deviation measured on this project's machines
(docs/development.md, "The Tansu test broker"):

1. A group join waits about half the session timeout: short session, heartbeat and
   rebalance timeouts make a worker ready in seconds.
2. ListOffsets(latest) answers the base offset of the last record batch + 1, not the high
   watermark, so faust's changelog recovery stops early and tables come back stale. The
   Fetch response carries the right high watermark: `_highwaters` reads it from a scratch
   consumer positioned just before the reported end.
3. A Fetch long-poll is not answered when new data arrives, and faust hard-codes
   fetch_max_wait_ms=1500: a shorter wait bounds latency.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

# Tansu answers a fetch only when this wait ends, so it bounds the added latency (and each
# idle poll costs a round trip). CRSWATCH_TANSU_FETCH_WAIT_MS overrides it.
FETCH_MAX_WAIT_MS = int(os.environ.get("CRSWATCH_TANSU_FETCH_WAIT_MS", "10"))
GROUP_SETTINGS: dict[str, Any] = {
    "broker_session_timeout": 6.0,
    "broker_heartbeat_interval": 1.0,
    "broker_rebalance_timeout": 6.0,
}

_applied = False


def apply() -> dict[str, Any]:
    """Patch faust's aiokafka driver for Tansu (once) and return the faust settings to use."""
    global _applied
    if not _applied:
        _patch_fetch_wait()
        _patch_highwaters()
        _applied = True
    return dict(GROUP_SETTINGS)


def _patch_fetch_wait() -> None:
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    original = AIOKafkaConsumerThread._create_worker_consumer

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts its fetcher
        return consumer

    AIOKafkaConsumerThread._create_worker_consumer = create


def _patch_highwaters() -> None:
    import aiokafka
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, server_list

    async def _highwaters(self: Any, partitions: list[Any]) -> Mapping[Any, int]:
        consumer = self._ensure_consumer()
        reported: Mapping[Any, int] = await consumer.end_offsets(partitions)
        if not partitions:
            return reported
        scratch = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=server_list(self.transport.url, self.transport.default_port),
            enable_auto_commit=False,
            group_id=None,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        await scratch.start()
        try:
            tps = [aiokafka.TopicPartition(tp.topic, tp.partition) for tp in partitions]
            scratch.assign(tps)
            for tp in tps:
                scratch.seek(tp, max(reported.get(tp, 0) - 1, 0))  # type: ignore[call-overload]
            result: dict[Any, int] = {}
            for _ in range(50):
                await scratch.getmany(timeout_ms=100)
                for tp in tps:
                    hw = scratch.highwater(tp)
                    if hw is not None:
                        result[tp] = max(hw, reported.get(tp, 0))  # type: ignore[call-overload]
                if len(result) == len(tps):
                    break
                await asyncio.sleep(0)
            missing = [tp for tp in tps if tp not in result]
            if missing:
                self.log.warning("tansu: no fetch high watermark for %s; recovery may stop early", missing)
            for tp in tps:
                result.setdefault(tp, reported.get(tp, 0))  # type: ignore[call-overload]
            return {orig: result[tp] for orig, tp in zip(partitions, tps, strict=True)}
        finally:
            await scratch.stop()

    AIOKafkaConsumerThread._highwaters = _highwaters
