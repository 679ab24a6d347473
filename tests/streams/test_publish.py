"""`crswatch publish` against a real Kafka-protocol broker (Tansu on 127.0.0.1)."""

from __future__ import annotations

import json
import warnings
from collections import defaultdict
from pathlib import Path

import pytest

from models.events import parse_event
from streams.cli import main
from streams.topics import INPUT_TOPICS, input_topic

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer

CASES = Path(__file__).resolve().parents[2] / "cases"
FILES = [CASES / "ruemmele-2025.jsonl", CASES / "mcnerney-2022.jsonl"]


def consume_all(broker: str) -> list[tuple[str, int, bytes, bytes, int]]:
    consumer = KafkaConsumer(*INPUT_TOPICS, bootstrap_servers=broker, auto_offset_reset="earliest",
                             consumer_timeout_ms=3000, enable_auto_commit=False)
    try:
        return [(m.topic, m.partition, m.key, m.value, m.timestamp) for m in consumer]
    finally:
        consumer.close()


@pytest.mark.broker
def test_publish_routes_keys_timestamps_and_order(kafka_broker: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "vitals", "event_id": "x"}\n{not json\n')
    assert main(["publish", *map(str, FILES), str(bad), "--broker", kafka_broker, "--partitions", "3",
                 "--order", "file"]) == 0
    err = capsys.readouterr().err
    assert "127 sent" in err and "2 rejected" in err

    messages = consume_all(kafka_broker)
    assert len(messages) == 127
    expected = [parse_event(line) for f in FILES for line in f.open() if line.strip()]
    by_id = {e.event_id: e for e in expected}
    partitions: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for topic, partition, key, value, timestamp in messages:
        event = parse_event(value)
        original = by_id[event.event_id]
        assert topic == input_topic(original)  # vitals / labs / treatments
        assert key == original.patient_id.encode()
        assert timestamp == int(original.ts * 1000)  # message time = event time (collection time for labs)
        assert event == original
        partitions[original.patient_id].add((topic, partition))
    # Co-partitioned: one patient lands on the same partition number in every topic.
    for pid, places in partitions.items():
        assert len({p for _, p in places}) == 1, (pid, places)
    # Per-patient order within each topic is the file order.
    for topic in INPUT_TOPICS:
        for pid in partitions:
            got = [json.loads(v)["event_id"] for t, _, k, v, _ in messages if t == topic and k == pid.encode()]
            want = [e.event_id for e in expected if e.patient_id == pid and input_topic(e) == topic]
            assert got == want


@pytest.mark.broker
def test_publish_reports_ignored_fhir_resources(kafka_broker: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    obs = {"resourceType": "Observation", "id": "hr1", "status": "final", "subject": {"reference": "Patient/ign-1"},
           "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
           "effectiveDateTime": "2024-01-01T10:00:00+00:00",
           "valueQuantity": {"value": 80, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}
    header = {"resourceType": "MessageHeader", "id": "h1", "eventCoding": {"code": "x"}, "source": {"endpoint": "x"}}
    message = {"resourceType": "Bundle", "type": "message",
               "entry": [{"resource": header}, {"resource": obs | {"id": "hr2"}}]}
    feed = tmp_path / "feed.ndjson"
    feed.write_text("\n".join(json.dumps(r) for r in (obs, obs | {"id": "hr3", "status": "cancelled"}, message))
                    + "\n")
    assert main(["publish", str(feed), "--broker", kafka_broker, "--partitions", "3"]) == 0
    err = capsys.readouterr().err
    # cancelled, and the MessageHeader
    assert "0 rejected, 2 ignored; 2 events, 2 sent (vitals 2)" in err


def test_publish_needs_a_broker(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRSWATCH_BROKER", raising=False)
    assert main(["publish", str(FILES[0])]) == 2
    assert "no broker" in capsys.readouterr().err


@pytest.mark.broker
def test_speed_replays_gaps_in_when_events_became_known_faster(kafka_broker: str) -> None:
    from streams.feeds.inputs import read_lines
    from streams.publish import create_input_topics, known_at, publish_lines

    create_input_topics(kafka_broker, 2)
    lines = list(read_lines([FILES[1]]))
    sleeps: list[float] = []
    result = publish_lines(lines, kafka_broker, speed=3600.0, sleep=sleeps.append)
    assert result.sent == 48
    # one patient: file order; the clock is when each event became known (a lab's result time)
    times = [known_at(parse_event(line)) for _, line in lines]
    assert any(t != parse_event(line).ts for t, (_, line) in zip(times, lines, strict=True))
    latest = times[0]
    expected = []
    for t in times[1:]:  # a gap is slept only when that clock moves forward
        if t > latest:
            expected.append((t - latest) / 3600.0)
            latest = t
    assert sleeps == pytest.approx(expected)
    assert sum(sleeps) == pytest.approx((max(times) - times[0]) / 3600.0)
