"""Batch hand-over of the input topics from faust's consumer to the fold agent.

faust delivers every Kafka message on its own: per message its fetcher loop
(`Consumer._drain_messages`) runs `Service.wait_first(callback(message), suspend_flow.wait())`
(four asyncio tasks and an `asyncio.wait`), the conductor decodes the message into an Event and
queues it, and the agent's stream takes it with a loop turn of its own. That machinery alone caps
an agent that does nothing but ack at 7-11k messages/s on the project's machines.

`BatchApp` is a `faust.App` whose transport makes a `BatchConsumer`. After
`app.batch_topics(topics, channel)`, each fetch (one `getmany` result) of those topics is put on
`channel` as one `Batch` of faust `ConsumerMessage`s, in offset order per topic partition. Every
other topic (the table's changelog during recovery, the raw feed topics) keeps faust's per-message
path unchanged. Everything else stays faust's: group membership and the co-partitioned assignment
with the table (the topics stay subscribed through `app.topics`), changelog recovery, flow control
on a rebalance (`flow_active`, `suspend_flow`, `app.flow_control`), generation ids, the read-offset
filter and gap tracking, the unacked set, and commits of what is acked with `Consumer.ack`.

The consumer reads private attributes of faust's `Consumer` (`_read_offset`, `_add_gap`,
`_wait_next_records`, `_to_message`, `_unacked_messages`, `_commit_every`, `_n_acked`,
`_buffered_partitions`, `_stopped`). pyproject.toml pins faust-streaming to the version this was
written against, and `PRIVATE_ATTRIBUTES` is checked by tests (tests/streams/worker/test_batching.py,
and a broker test in tests/streams/test_worker.py that the batches really flow).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka

FAUST_VERSION = "0.15.3"  # the version the private attributes below were read from
# What BatchConsumer uses of faust's Consumer beyond its public interface: checked by the tests.
PRIVATE_ATTRIBUTES = ("_drain_messages", "_wait_next_records", "_read_offset", "_add_gap", "_to_message",
                      "_unacked_messages", "_commit_every", "_n_acked", "_buffered_partitions", "_stopped",
                      "_committed_offset")


@dataclass(slots=True)
class Batch:
    """One fetch of the batched topics: faust ConsumerMessages, in offset order per topic partition."""

    generation_id: int
    messages: list[Any]


class BatchConsumer(faust_aiokafka.Consumer):  # type: ignore[misc]
    """faust's aiokafka consumer, handing each fetch of the app's batch topics over as one Batch."""

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - needs a broker
        route = getattr(self.app, "batch_route", None)
        if route is None:
            await super()._drain_messages(fetcher)
            return
        topics, channel = route
        app = self.app
        callback = self.callback
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        read_offset = self._read_offset
        acks_enabled_for = app.topics.acks_enabled_for
        to_message = self._to_message
        add_unacked = self._unacked_messages.add
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                records, active = await self._wait_next_records(1.0)
                await self.sleep(0)  # as faust: getmany can return at once in a loop
                if records is None or self.should_stop or not records:
                    unset_flag(CONSUMER_FETCHING)
                    continue
                if not self.flow_active:
                    # as Consumer.getmany: fetched while flow is stopped (a rebalance) -> seek back
                    try:
                        await self.perform_seek()
                    except Exception as exc:
                        self.log.warning(f"exception performing seek when flow not active {exc}")
                    unset_flag(CONSUMER_FETCHING)
                    continue
                generation_id = app.consumer_generation_id
                batch: list[Any] = []
                last: dict[Any, int] = {}
                for tp, recs in records.items():
                    if not self.flow_active or app.consumer_generation_id != generation_id:
                        break
                    if not (active is None or tp in active or tp in self._buffered_partitions):
                        continue
                    app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    if tp.topic in topics:
                        r_offset = read_offset[tp]
                        for rec in recs:
                            offset = rec.offset
                            if r_offset is not None and offset < r_offset:
                                continue  # as faust: already read (a refetch after a seek)
                            if r_offset and offset - r_offset > 1 and acks_enabled_for(tp.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            message = to_message(tp, rec)
                            message.tracked = True  # what Consumer.track_message does, less the sensor
                            add_unacked(message)
                            batch.append(message)
                            r_offset = offset
                        if r_offset is not None:
                            last[tp] = r_offset
                    else:
                        await self._deliver_each(tp, recs, callback)
                if batch:
                    await self._maybe_commit()
                    await app.flow_control.acquire()
                    await app.producer.buffer.wait_until_ebb()
                    result = await self.wait_first(channel.put(Batch(generation_id, batch)),
                                                   self.suspend_flow.wait())
                    if not result.stopped and app.consumer_generation_id == generation_id:
                        read_offset.update(last)
                unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)

    async def _maybe_commit(self) -> None:
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()

    async def _deliver_each(self, tp: Any, recs: list[Any], callback: Any) -> None:  # pragma: no cover
        """faust's own per-message path (Consumer._drain_messages) for a topic that is not batched."""
        read_offset = self._read_offset
        for rec in recs:
            offset = rec.offset
            r_offset = read_offset[tp]
            if r_offset is None or offset >= r_offset:
                if offset - (r_offset or 0) > 1 and r_offset and self.app.topics.acks_enabled_for(tp.topic):
                    await self._add_gap(tp, r_offset + 1, offset)
                await self._maybe_commit()
                await self.wait_first(callback(self._to_message(tp, rec)), self.suspend_flow.wait())
                read_offset[tp] = offset


class BatchTransport(faust_aiokafka.Transport):  # type: ignore[misc]
    Consumer: ClassVar[type] = BatchConsumer


class BatchApp(faust.App):  # type: ignore[misc]
    """A faust App whose consumer hands the topics named in `batch_topics` over by fetch."""

    batch_route: tuple[frozenset[str], Any] | None = None

    def batch_topics(self, topics: set[str] | frozenset[str], channel: Any) -> None:
        """Hand each fetch of `topics` to `channel` as one Batch. The topics must also be
        subscribed (`app.topics.add(topic)`) so that faust assigns and tracks them."""
        self.batch_route = (frozenset(topics), channel)

    def _new_transport(self) -> Any:
        url = self.conf.broker_consumer[0]
        if url.scheme not in ("kafka", "aiokafka"):
            raise ValueError(f"batch hand-over needs the aiokafka transport, not {url.scheme!r}")
        return BatchTransport(self.conf.broker_consumer, self)
