"""Test helpers: read a topic back, build a small synthetic cohort, replay it embedded."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

from alerts.config import Thresholds
from alerts.log import log_from_json
from models.state import state_to_json
from streams.feeds.inputs import read_lines
from streams.replay import Replayer
from tests.synthetic import patient_events

CASES = Path(__file__).resolve().parents[2] / "cases"


def read_topic(broker: str, topic: str, timeout: float = 60.0) -> list[Any]:
    """Every message of a topic, partition by partition, up to the high watermark of the last
    fetch of each partition (what the broker holds once the writers have stopped). Not "until
    nothing new for a while": under load a fetch can take longer than any such pause, and a
    changelog read short of its end gives a patient's older log as its latest."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=None, enable_auto_commit=False,
                             fetch_max_wait_ms=100)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        while True:
            for messages in consumer.poll(timeout_ms=200).values():
                out.extend(messages)
            ends = {tp: consumer.highwater(tp) for tp in tps}
            if all(end is not None and consumer.position(tp) >= end for tp, end in ends.items()):
                return out
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: not read to its end in {timeout:g} s: high watermarks {ends}, "
                                     f"positions { {tp: consumer.position(tp) for tp in tps} }")
    finally:
        consumer.close()


def write_cohort(path: Path, patients: int, days: int, vitals_every: int = 15, seed: int = 7) -> int:
    """A synthetic cohort (tests.synthetic), vitals thinned to one in `vitals_every`
    minutes so a test stays at a few thousand events. Written patient after patient."""
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for index in range(patients):
            _, events = patient_events(seed, index, days, id_style="uuid")
            kept = 0
            for ev in events:
                if ev.kind == "vitals":
                    kept += 1
                    if kept % vitals_every:
                        continue
                fh.write(ev.model_dump_json(exclude_none=True) + "\n")
                n += 1
    return n


def embedded(paths: list[Path]) -> tuple[Replayer, list[dict[str, Any]]]:
    r = Replayer(Thresholds())
    records: list[dict[str, Any]] = []
    for source, line in read_lines(paths):
        records.extend(json.loads(x.model_dump_json()) for x in r.feed(line, source))
    return r, records


def alert_key(record: dict[str, Any]) -> str:
    if record["type"] == "alert":
        return str(record["id"])
    if record["type"] == "notice":
        return f"notice:{record['refers_to']}@{record['time']}"
    return f"retraction:{record['retracts']}"


def alert_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alerts, notices and retractions of alerts: what goes to crs-alerts."""
    change = ("crs_grade@", "iec_hs@", "icans_grade@")
    return [r for r in records if r["type"] in ("alert", "notice")
            or (r["type"] == "retraction" and not r["retracts"].startswith(change))]


def without_flags(record: dict[str, Any]) -> dict[str, Any]:
    """A record minus how it was arrived at: `correction` depends on arrival order (the worker
    aligns topics by event time; a file replays in file order)."""
    return {k: v for k, v in record.items() if k != "correction"}


def head_states(changelog: list[Any], cfg: Thresholds) -> dict[str, bytes]:
    """patient -> head state JSON from the latest changelog entry per patient."""
    latest: dict[str, bytes] = {}
    for m in changelog:
        latest[m.key.decode()] = m.value
    return {pid: state_to_json(log_from_json(json.dumps(json.loads(v)["log"]), cfg).head)
            for pid, v in latest.items()}
