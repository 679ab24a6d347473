"""`crswatch publish`: send case or cohort files to the input topics (kafka-python).

Lines are validated before they are sent; an invalid line is reported and counted, never
sent. Each event goes to its input topic (streams.topics), keyed by patient_id, with the
Kafka message timestamp set from its event time. One producer with one request in flight
sends each patient's events in file order, so they keep their order in a partition.
Different patients are interleaved by the time each event became known (`recorded_time`,
else `time`), as a live feed would send them: a cohort file written patient after patient
would otherwise put one patient's last day on the topics before another's first.

A producer keeps order within a partition only: a batch for `labs` can reach the broker
before an earlier batch for `vitals`. Sent as fast as possible, hours of event time go out
in milliseconds, so the producer is flushed each time the known time has moved
SKEW_SECONDS since the last flush: nothing reaches the broker ahead of an event known more
than that much earlier, which keeps a fast replay well inside the lateness window.

`crswatch publish` sends events in the replay's order (`publish_events` over
streams.replay.ordered_events: by known time by default, whatever the file layout), so the
worker is fed what the embedded replay folds; `publish_units` and `publish_lines` keep the
per-patient file order (`--order file`).
"""

from __future__ import annotations

import heapq
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from models.events import ClinicalEvent, InvalidEvent, parse_event
from streams.feeds.normalised import Normalised, Rejection
from streams.settings import Settings, from_env, topic_configs
from streams.topics import INPUT_TOPICS, REPLAY_HEADER, input_topic

# In-house: an eighth of the default 240 min lateness window (alerts.config.Thresholds).
SKEW_SECONDS = 30 * 60


@dataclass(slots=True)
class PublishResult:
    sent: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)
    ignored: int = 0  # FHIR / HL7 units that carry no value (e.g. status cancelled): counted, not sent
    flushes: int = 0  # flushes that kept the topics within SKEW_SECONDS of each other


def create_input_topics(broker: str, partitions: int, extra: tuple[str, ...] = (),
                        settings: Settings | None = None) -> None:
    """Create the input topics (and `extra` ones) if they do not exist (co-partitioned: same partition count).

    Topics that keep raw input (dead-letter, fhir-in, hl7-in) get their retention from `settings`
    (CRSWATCH_*_RETENTION_HOURS; docs/privacy.md)."""
    configs = topic_configs(settings if settings is not None else from_env())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic
        from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=broker, client_id="crswatch-publish")
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(t, partitions, 1, topic_configs=configs.get(t, {}))
                   for t in (*INPUT_TOPICS, *extra) if t not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def known_at(event: ClinicalEvent) -> float:
    return event.recorded_time.timestamp() if event.recorded_time is not None else event.ts


def _events(units: list[tuple[str, str, Normalised | None]],
            rejected: list[Rejection]) -> Iterator[tuple[str, ClinicalEvent]]:
    """(source, event) for each valid event of the input units, in order; rejections reported."""
    for source, line, normalised in units:
        if normalised is None:
            try:
                yield source, parse_event(line)
            except InvalidEvent as exc:
                rejected.append(Rejection(str(exc), exc.category, line, source))
        else:
            rejected += normalised.rejected
            for event in normalised.events:
                yield source, event


def interleave(lines: list[tuple[str, str]], rejected: list[Rejection]) -> Iterator[tuple[str, ClinicalEvent]]:
    """Valid events of native lines, each patient's in file order, patients merged by `known_at`."""
    return interleave_units([(source, line, None) for source, line in lines], rejected)


def interleave_units(units: list[tuple[str, str, Normalised | None]],
                     rejected: list[Rejection]) -> Iterator[tuple[str, ClinicalEvent]]:
    per_patient: dict[str, list[tuple[float, int, str, ClinicalEvent]]] = {}
    for n, (source, event) in enumerate(_events(units, rejected)):
        per_patient.setdefault(event.patient_id, []).append((known_at(event), n, source, event))
    # heapq.merge keeps each input's order even where an input is not sorted (late labs).
    for _, _, source, event in heapq.merge(*per_patient.values(), key=lambda item: (item[0], item[1])):
        yield source, event


def publish_lines(
    lines: list[tuple[str, str]],
    broker: str,
    speed: float | None = None,
    on_line: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PublishResult:
    """Publish (source, line) pairs in order. `speed` N replays event-time gaps N times faster."""
    return publish_units([(source, line, None) for source, line in lines], broker, speed, on_line, sleep)


def publish_units(
    units: list[tuple[str, str, Normalised | None]],
    broker: str,
    speed: float | None = None,
    on_line: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PublishResult:
    """Publish input units in order: a native line (normalised None) or what an adapter made of a
    FHIR or HL7 unit (streams.feeds.inputs.read_units). Rejections are reported, never sent; ignored
    units (no value) are counted."""
    result = PublishResult(ignored=sum(len(n.ignored) for _, _, n in units if n is not None))
    events = ((source, event, known_at(event)) for source, event in interleave_units(units, result.rejected))
    return publish_events(events, broker, speed, on_line, sleep, result)


def publish_events(
    events: Iterable[tuple[str, ClinicalEvent, float]],
    broker: str,
    speed: float | None = None,
    on_line: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    result: PublishResult | None = None,
) -> PublishResult:
    """Publish (source, event, known time) in the order given (streams.replay.ordered_events)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=broker,
        acks="all",
        linger_ms=5,
        max_in_flight_requests_per_connection=1,  # keep the order within a partition across retries
        client_id="crswatch-publish",
    )
    result = result if result is not None else PublishResult()
    previous_ts: float | None = None
    flushed_at: float | None = None
    try:
        for source, event, known in events:
            if on_line is not None:
                on_line(source)
            previous_ts = _send(producer, result, event, known, speed, previous_ts, sleep)
            if flushed_at is None:
                flushed_at = previous_ts
            elif previous_ts - flushed_at >= SKEW_SECONDS:
                producer.flush()
                result.flushes += 1
                flushed_at = previous_ts
        producer.flush()
    finally:
        producer.close()
    return result


def _send(producer: Any, result: PublishResult, event: ClinicalEvent, now_known: float, speed: float | None,
          previous_ts: float | None, sleep: Callable[[float], None]) -> float:
    """Send one event to its input topic; returns the newest known time sent so far."""
    if speed is not None and previous_ts is not None and now_known > previous_ts:
        sleep((now_known - previous_ts) / speed)
    topic = input_topic(event)
    producer.send(
        topic,
        key=event.patient_id.encode(),
        value=event.model_dump_json(exclude_none=True).encode(),
        timestamp_ms=int(event.ts * 1000),
        headers=[(REPLAY_HEADER, b"1")],
    )
    result.sent += 1
    result.by_topic[topic] = result.by_topic.get(topic, 0) + 1
    return now_known if previous_ts is None else max(previous_ts, now_known)
