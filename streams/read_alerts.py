"""`crswatch alerts`: read alerts back from the `crs-alerts` topic (kafka-python).

Reads every partition from the beginning without joining a consumer group (so it commits
nothing and disturbs no worker). Delivery to the topic is at-least-once: after a worker
crash the same alert can be written twice; alert ids are deterministic, so the reader
prints each record once (by its key: the alert id, or the retraction's target). Notices (a
correction or retraction of a source record that could not be applied exactly) are printed
too: they ask a clinician to review.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import TypeAdapter, ValidationError

from models.records import Alert, Notice, Record, Retraction, record_key
from streams.topics import ALERTS, PATIENT_STATE

_ADAPTER: TypeAdapter[Alert | Retraction | Notice] = TypeAdapter(Alert | Retraction | Notice)


def parse_record(value: bytes) -> Alert | Retraction | Notice | None:
    try:
        return _ADAPTER.validate_json(value)
    except ValidationError:
        return None


def read_alerts(broker: str, follow: bool, max_wait: float | None,
                clock: Callable[[], float] = time.monotonic) -> Iterator[tuple[Alert | Retraction | Notice, int]]:
    """Yield (record, times seen) for each new record key. Stops after `max_wait` seconds without
    a new record (default 2 s without --follow; never with --follow and no --max-wait)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaConsumer, TopicPartition

    idle_limit = max_wait if max_wait is not None else (None if follow else 2.0)
    consumer: Any = KafkaConsumer(bootstrap_servers=broker, group_id=None, enable_auto_commit=False,
                                  client_id="crswatch-alerts", fetch_max_wait_ms=100)
    try:
        partitions: set[int] | None = None
        seen: dict[str, int] = {}
        last_new = clock()
        while True:
            if partitions is None:
                partitions = consumer.partitions_for_topic(ALERTS)
                if partitions:
                    tps = [TopicPartition(ALERTS, p) for p in sorted(partitions)]
                    consumer.assign(tps)
                    consumer.seek_to_beginning(*tps)
                else:
                    partitions = None
                    time.sleep(0.2)
            if partitions is not None:
                batches = consumer.poll(timeout_ms=200)
                for messages in batches.values():
                    for message in messages:
                        record = parse_record(message.value)
                        if record is None:
                            continue
                        key = record_key(record)
                        seen[key] = seen.get(key, 0) + 1
                        if seen[key] == 1:
                            last_new = clock()
                            yield record, 1
            if idle_limit is not None and clock() - last_new >= idle_limit:
                return
    finally:
        consumer.close()


def alert_line(record: Record) -> str:
    if isinstance(record, Retraction):
        return f"{record.time}  RETRACTED {record.retracts}"
    if isinstance(record, Notice):
        return f"{record.time}  REVIEW {record.patient_id}: {'; '.join(record.evidence)}  (re {record.refers_to})"
    assert isinstance(record, Alert)
    day = "Day ?" if record.day is None else f"Day {record.day:+d}"
    return f"{record.time}  {day}  [{record.severity}] {record.patient_id}: {record.summary}  ({record.id})"


def patient_ids(broker: str, max_wait: float = 5.0) -> set[str]:
    """The patient ids that key the compacted `patient-state` topic (every patient with a grade), read
    from the beginning without a consumer group; stops after `max_wait` seconds without a message."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaConsumer, TopicPartition

    consumer: Any = KafkaConsumer(bootstrap_servers=broker, group_id=None, enable_auto_commit=False,
                                  client_id="crswatch-resolve-key", fetch_max_wait_ms=100)
    found: set[str] = set()
    try:
        partitions = consumer.partitions_for_topic(PATIENT_STATE) or set()
        if not partitions:
            return found
        tps = [TopicPartition(PATIENT_STATE, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        last = time.monotonic()
        while time.monotonic() - last < max_wait:
            for messages in consumer.poll(timeout_ms=200).values():
                for message in messages:
                    if message.key:
                        found.add(message.key.decode("utf-8", "replace"))
                    last = time.monotonic()
        return found
    finally:
        consumer.close()
