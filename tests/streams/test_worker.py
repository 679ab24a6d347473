"""The faust worker in its own process on a real Kafka-protocol broker (Tansu).

Each test has a broker of its own (the input topic names are fixed) and compares what the
worker wrote to the topics with the embedded replay of the same input.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from alerts.config import Thresholds
from models.events import parse_event
from models.state import state_to_json
from streams.feeds.inputs import read_lines
from streams.publish import create_input_topics, known_at, publish_lines
from streams.topics import ALERTS, DEAD_LETTER, PATIENT_STATE, VITALS
from tests.streams.conftest import Worker, wait_quiet
from tests.streams.helpers import (
    CASES,
    alert_key,
    alert_records,
    embedded,
    head_states,
    read_topic,
    without_flags,
    write_cohort,
)

pytestmark = pytest.mark.broker

CHANGELOG = "crswatch-patient-logs-changelog"


def comparable(state: bytes) -> dict[str, Any]:
    """A patient's whole state, as plain JSON values (dict key order carries no meaning)."""
    doc: dict[str, Any] = json.loads(state)
    return doc


def differing(got: dict[str, Any], want: dict[str, Any]) -> dict[str, Any]:
    """{field: (got, want)} of the fields that differ; for a dict field only its differing entries."""
    out: dict[str, Any] = {}
    for k in {*got, *want}:
        g, w = got.get(k), want.get(k)
        if g != w:
            both_dicts = isinstance(g, dict) and isinstance(w, dict)
            out[k] = {x: (g.get(x), w.get(x)) for x in {*g, *w} if g.get(x) != w.get(x)} if both_dicts else (g, w)
    return out


def publish(broker: str, paths: list[Path]) -> int:
    create_input_topics(broker, 4)
    return publish_lines(list(read_lines(paths)), broker).sent


def topic_alerts(broker: str) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Alerts read back (first copy of each key) and how often each key was written."""
    seen: Counter[str] = Counter()
    first: dict[str, dict[str, Any]] = {}
    for m in read_topic(broker, ALERTS):
        record = json.loads(m.value)
        assert m.key.decode() == record["patient_id"]
        key = alert_key(record)
        seen[key] += 1
        if seen[key] == 1:
            first[key] = record
        else:
            assert record == first[key], f"a repeated copy of {key} differs from the first"
    return list(first.values()), seen


def assert_same_as_embedded(broker: str, paths: list[Path], exactly_once: bool = True) -> None:
    """Alerts id for id and every patient's final state as the embedded replay. Without a crash
    each alert is written once; after a SIGKILL an alert sent just before the kill, whose
    stored log had not reached the changelog, is sent again (at-least-once): identical copies."""
    replay, records = embedded(paths)
    expected = alert_records(records)
    got, copies = topic_alerts(broker)
    assert sorted(alert_key(r) for r in got) == sorted(alert_key(r) for r in expected)
    by_key = {alert_key(r): without_flags(r) for r in expected}
    for r in got:
        assert without_flags(r) == by_key[alert_key(r)]
    if exactly_once:
        assert max(copies.values()) == 1, f"alerts written more than once: {[k for k, n in copies.items() if n > 1]}"
    cfg = Thresholds()
    changelog = read_topic(broker, CHANGELOG)
    states = head_states(changelog, cfg)
    assert set(states) == set(replay.logs)
    for pid, log in replay.logs.items():
        got_state, want_state = comparable(states[pid]), comparable(state_to_json(log.head))
        assert got_state == want_state, (f"{pid}: {differing(got_state, want_state)}; "
                                         f"{missing_events(broker, changelog, pid, paths)}")


def missing_events(broker: str, changelog: list[Any], pid: str, paths: list[Path]) -> str:
    """For a failure message: the patient's events other than vitals that its stored log lacks
    (the log keeps their ids: pending, or the recent settled ones), with their input offsets."""
    stored = [json.loads(m.value) for m in changelog if m.key.decode() == pid][-1]
    log = stored["log"]
    held = set(log["settled_ids"]) | {row["event_id"] for row in log["pending"] if isinstance(row, dict)}
    wanted = {e.event_id: e for e in (parse_event(line) for _, line in read_lines(paths))
              if e.patient_id == pid and e.kind != "vitals"}
    lost = {eid for eid in wanted if eid not in held}
    where = {}
    for topic in ("labs", "treatments"):
        for m in read_topic(broker, topic):
            eid = json.loads(m.value)["event_id"]
            if eid in lost:
                where[eid] = f"{topic}:{m.partition}@{m.offset}"
    shown = sorted((wanted[e].time.isoformat(), wanted[e].kind, where.get(e, "?")) for e in lost)
    return f"stored offsets {stored['offsets']}; not in the stored log: {shown}"


def test_seed_cases_through_the_worker_equal_the_embedded_replay(fresh_broker: str, tmp_path: Path) -> None:
    paths = [CASES / "ruemmele-2025.jsonl", CASES / "mcnerney-2022.jsonl"]
    sent = publish(fresh_broker, paths)
    worker = Worker(fresh_broker, tmp_path / "data")
    try:
        worker.wait_for(lambda: worker.count("in") >= sent, what=f"{sent} events")
        wait_quiet([worker])
        assert worker.count("applied") == sent
        # the input came by fetch through streams.worker.batching (a faust upgrade that renames what
        # BatchConsumer overrides would silently fall back to the per-message path)
        assert worker.count("batches") > 0
        assert worker.stats()["input_path"] == "batch"
    finally:
        worker.stop()
    assert_same_as_embedded(fresh_broker, paths)
    # patient-state: the latest message per patient is the patient's current grades
    latest = {m.key.decode(): json.loads(m.value) for m in read_topic(fresh_broker, PATIENT_STATE)}
    replay, _ = embedded(paths)
    for pid, log in replay.logs.items():
        assert latest[pid]["crs_grade"] == log.head.crs_grade
        assert latest[pid]["iec_hs_level"] == log.head.iec_hs_level
    # `crswatch alerts --format jsonl` prints the objects `crswatch replay --format jsonl` prints
    printed = subprocess.run([sys.executable, "-m", "streams.cli", "alerts", "--broker", fresh_broker,
                              "--format", "jsonl", "--max-wait", "3"], capture_output=True, text=True, check=True)
    replayed = subprocess.run([sys.executable, "-m", "streams.cli", "replay", "--format", "jsonl", *map(str, paths)],
                              capture_output=True, text=True, check=True)
    got = [without_flags(json.loads(line)) for line in printed.stdout.splitlines()]
    want = [without_flags(r) for r in alert_records([json.loads(line) for line in replayed.stdout.splitlines()])]
    assert sorted(got, key=alert_key) == sorted(want, key=alert_key)
    text = subprocess.run([sys.executable, "-m", "streams.cli", "alerts", "--broker", fresh_broker,
                           "--max-wait", "2"], capture_output=True, text=True, check=True).stdout
    assert "ruemmele-2025:crs:3:4" in text and "Day +21" in text


def _producer(broker: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaProducer
    return KafkaProducer(bootstrap_servers=broker, acks="all")


def test_bad_input_goes_to_dead_letter_and_the_rest_is_processed(fresh_broker: str, tmp_path: Path) -> None:
    paths = [CASES / "mcnerney-2022.jsonl"]
    create_input_topics(fresh_broker, 4)
    good = json.loads(next(iter(read_lines(paths)))[1])
    impossible = {**good, "event_id": "bad-1", "kind": "vitals", "temperature": {"value": 58, "unit": "Cel"}}
    for k in ("drug", "dose", "unit", "route", "value"):
        impossible.pop(k, None)
    bad: list[tuple[bytes | None, bytes, str]] = [
        (b"p", b"\xff\xfe not json", "not_json"),
        (b"p", b"{not json", "not_json"),
        (b"p", json.dumps({"kind": "telepathy", "event_id": "x", "patient_id": "p"}).encode(), "unknown_kind"),
        (b"p", json.dumps({"kind": "vitals", "patient_id": "p"}).encode(), "missing_field"),
        (good["patient_id"].encode(), json.dumps(impossible).encode(), "invalid_value"),
        (b"someone-else", json.dumps(good).encode(), "invalid_value"),
    ]
    producer = _producer(fresh_broker)
    for key, value, _ in bad:
        producer.send(VITALS, key=key, value=value)
    producer.flush()
    producer.close()
    sent = publish(fresh_broker, paths)
    worker = Worker(fresh_broker, tmp_path / "data", faust_cli=True)  # `faust -A streams.app worker`
    try:
        worker.wait_for(lambda: worker.count("in") >= sent + len(bad), what="all messages")
        wait_quiet([worker])
        counts = worker.stats()["counts"]
    finally:
        worker.stop()
    assert counts["rejected"] == len(bad)
    assert counts["applied"] == sent
    for category, n in Counter(c for _, _, c in bad).items():
        assert counts[f"dead_letter:{category}"] == n
    letters = [json.loads(m.value) for m in read_topic(fresh_broker, DEAD_LETTER)]
    assert len(letters) == len(bad)
    assert sorted(d["category"] for d in letters) == sorted(c for _, _, c in bad)
    for d in letters:
        assert d["reason"] and d["time"] and d["topic"] == VITALS and d["offset"] is not None
    raws = {d["raw"] for d in letters if d["raw_encoding"] == "utf-8"}
    assert "{not json" in raws
    assert any(d["raw_encoding"] == "base64" for d in letters)
    temperature = next(d for d in letters if "bad-1" in d["raw"])
    assert "temperature" in temperature["reason"]
    wrong_key = next(d for d in letters if d["key"] == "someone-else")
    assert "patient_id" in wrong_key["reason"]
    assert_same_as_embedded(fresh_broker, paths)


@pytest.mark.parametrize("confirmed_writes", [1, 5])
@pytest.mark.parametrize("store", ["memory", "rocksdb"])
def test_sigkill_mid_replay_then_restart_gives_the_uninterrupted_result(
        fresh_broker: str, tmp_path: Path, store: str, confirmed_writes: int) -> None:
    cohort = tmp_path / "cohort.jsonl"
    write_cohort(cohort, patients=12, days=3)
    sent = publish(fresh_broker, [cohort])
    data = tmp_path / "data"
    first = Worker(fresh_broker, data, store=store, name="first")
    try:
        # The kill point is defined by what reached the changelog: the batch worker folds this whole
        # cohort in well under a second, before any log is stored, so "a third applied" alone would
        # kill a worker that stored nothing (and the restart would rightly redo everything).
        first.wait_for(lambda: (c := first.stats().get("counts", {})).get("applied", 0) >= sent // 3
                       and c.get("changelog_confirmed", 0) >= confirmed_writes,
                       what=f"a third of the cohort and {confirmed_writes} confirmed changelog writes")
        before_kill = first.stats()
    finally:
        first.kill()
    second = Worker(fresh_broker, data, store=store, name="second")
    try:
        wait_quiet([second])
        # the restarted worker redid what the first had not committed: duplicates, not new state
        assert second.count("applied") < sent
        after = second.stats()
        print(f"first before the kill: {before_kill}\nsecond: {after}")  # shown if the test fails
        assert after["aligner_gave_up"] == 0
        # nothing folded beyond the lateness window in either run (a late event is folded at its
        # arrival, so the state would rightly differ from the fold in event-time order)
        for stats in (before_kill, after):
            assert stats.get("counts", {}).get("late", 0) == 0, stats

    finally:
        second.stop()
    assert_same_as_embedded(fresh_broker, [cohort], exactly_once=False)


def rocksdb_logs(data_dir: Path) -> dict[str, bytes]:
    """patient -> stored log, read from the RocksDB files a killed worker left behind."""
    from rocksdict import AccessType, Options, Rdict

    logs: dict[str, bytes] = {}
    paths = sorted(data_dir.rglob("patient-logs-*.db"))
    assert paths, f"no RocksDB files under {data_dir}"
    for path in paths:
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            for key, value in db.items():
                if not key.startswith(b"__faust"):  # faust's own changelog-offset key
                    logs[key.decode()] = value
        finally:
            db.close()
    return logs


def test_a_changelog_write_lost_in_a_crash_leaves_the_local_store_behind_not_ahead(
        proxied_broker: tuple[str, Any], tmp_path: Path) -> None:
    """The local store takes a log only once the changelog has it. Here the worker's last writes
    never reach the broker (the proxy holds them) and the worker is killed. A RocksDB log ahead of
    the changelog would make the redelivered events duplicates after the restart (by offset), and
    the changelog, which every other worker recovers from, would never get them."""
    broker, proxy = proxied_broker
    cohort = tmp_path / "cohort.jsonl"
    write_cohort(cohort, patients=8, days=2)
    sent = publish(broker, [cohort])
    data = tmp_path / "data"
    # no timed flush: after the replay each patient's events since its last alert are unsaved
    first = Worker(broker, data, store="rocksdb", name="first", extra_env={"CRSWATCH_FLUSH_SECONDS": "600"})
    try:
        # the writes made at alert time confirmed first: only the shutdown's writes are to be held (a
        # batch worker folds the cohort so fast that those can still be in flight here, and faust's
        # table stop then waits for them behind the paused proxy)
        first.wait_for(lambda: (s := first.stats()).get("counts", {}).get("in", 0) >= sent
                       and s["held"] == 0 and s["unsaved"] > 0 and s["pending_writes"] == 0,
                       what="the cohort folded, logs unsaved, the alert-time writes confirmed")
        writes = first.count("changelog_writes")
        proxy.pause()
        first.terminate()  # a shutdown writes the unsaved logs; the broker never gets them
        first.wait_for(lambda: first.count("changelog_writes") > writes, what="the shutdown's writes")
    finally:
        first.kill()
        proxy.cut()
        proxy.resume()
    changelog: dict[str, list[bytes]] = {}
    for m in read_topic(broker, CHANGELOG):
        changelog.setdefault(m.key.decode(), []).append(m.value)
    replay, _ = embedded([cohort])
    heads = head_states(read_topic(broker, CHANGELOG), Thresholds())
    behind = [pid for pid, log in replay.logs.items() if heads.get(pid) != state_to_json(log.head)]
    assert behind, "the held writes reached the broker: nothing was tested"
    local = rocksdb_logs(data)
    assert local
    ahead = [pid for pid, value in local.items() if value not in changelog.get(pid, [])]
    assert not ahead, f"RocksDB holds logs the changelog never got: {ahead}"
    second = Worker(broker, data, store="rocksdb", name="second")
    try:
        wait_quiet([second])
    finally:
        second.stop()
    assert_same_as_embedded(broker, [cohort], exactly_once=False)


def test_a_worker_joins_and_one_leaves_mid_replay(fresh_broker: str, tmp_path: Path) -> None:
    # The replay is published while the workers consume and rebalance: the first half before
    # the second worker joins, the second half once partitions have moved to it. Split in
    # time, as a live feed goes on: everything known before T, then the rest. (Split by
    # patient, the second half went back days on every partition, behind the first half's
    # unread tail on one topic but not on another, so no alignment could keep those patients
    # in order: a producer must keep its topics within the lateness window of each other.)
    cohort = tmp_path / "cohort.jsonl"
    write_cohort(cohort, patients=24, days=3)
    lines = list(read_lines([cohort]))
    known = [known_at(parse_event(line)) for _, line in lines]
    middle = sorted(known)[len(known) // 2]
    halves: list[list[tuple[str, str]]] = [[], []]
    for (source, line), t in zip(lines, known, strict=True):
        halves[0 if t < middle else 1].append((source, line))
    create_input_topics(fresh_broker, 4)
    a = Worker(fresh_broker, tmp_path / "a", name="a")
    b: Worker | None = None
    try:
        a.wait_for(lambda: a.stats().get("assigned_input_partitions") == 12, what="a to own every partition")
        sent = publish_lines(halves[0], fresh_broker).sent
        a.wait_for(lambda: a.count("applied") >= sent // 5, what="a fifth of the first half")
        b = Worker(fresh_broker, tmp_path / "b", name="b")
        b.wait_for(lambda: b.stats().get("assigned_input_partitions", 0) > 0, what="partitions moving to b")
        sent += publish_lines(halves[1], fresh_broker).sent
        a_during = a.stats()
        a.stop()  # the first leaves; the second takes all partitions
        b.wait_for(lambda: b.stats().get("assigned_input_partitions") == 12, what="b to own every partition")
        wait_quiet([b])
        assert b.count("in") > 0 and a_during["counts"]["applied"] < sent  # both did part of the work
        assert b.stats()["aligner_gave_up"] == 0 and b.count("late") == 0
        assert a_during["counts"].get("late", 0) == 0
    finally:
        a.stop()
        if b is not None:
            b.stop()
    assert_same_as_embedded(fresh_broker, [cohort])


def test_a_replay_published_while_the_worker_reads_it_is_aligned(fresh_broker: str, tmp_path: Path) -> None:
    """Published as fast as possible into a running worker: a topic counts as caught up only as
    of a fetch no older than the message to release, so the vitals never run hours past a lab
    published in between (which would be folded as late, at a later time)."""
    cohort = tmp_path / "cohort.jsonl"
    write_cohort(cohort, patients=12, days=3)
    create_input_topics(fresh_broker, 4)
    worker = Worker(fresh_broker, tmp_path / "data")
    try:
        worker.wait_for(lambda: worker.stats().get("assigned_input_partitions") == 12,
                        what="the worker to own every input partition")
        sent = publish(fresh_broker, [cohort])
        wait_quiet([worker])
        assert worker.count("in") == sent
        assert worker.count("late") == 0
        assert worker.stats()["aligner_gave_up"] == 0
    finally:
        worker.stop()
    assert_same_as_embedded(fresh_broker, [cohort])


def test_raw_fhir_and_hl7_topics_are_normalised_into_the_stream(fresh_broker: str, tmp_path: Path) -> None:
    from streams.feeds.export import to_fhir, to_hl7
    from streams.topics import FHIR_IN, HL7_IN, LABS

    paths = [CASES / "ruemmele-2025.jsonl", CASES / "mcnerney-2022.jsonl"]
    create_input_topics(fresh_broker, 4, extra=(FHIR_IN, HL7_IN))
    events = [parse_event(line) for _, line in read_lines(paths)]
    producer = _producer(fresh_broker)
    for ev in events:  # both cases as FHIR R4, one resource per message, keyed by patient
        resource, _ = to_fhir(ev)
        producer.send(FHIR_IN, key=ev.patient_id.encode(), value=json.dumps(resource).encode())
    bad_fhir = {"resourceType": "Observation", "id": "no-subject", "status": "final"}
    producer.send(FHIR_IN, key=b"x", value=json.dumps(bad_fhir).encode())
    producer.send(HL7_IN, key=b"x", value=b"this is not an HL7 message")
    lab = next(e for e in events if e.kind == "lab" and to_hl7(e, "c1") is not None)
    hl7_lab = lab.model_copy(update={"patient_id": "hl7-patient", "event_id": "hl7-lab-1"})
    producer.send(HL7_IN, key=b"hl7-patient", value=str(to_hl7(hl7_lab, "c1")).encode())
    # carry no value: ignored, but counted (contract)
    cancelled = {"resourceType": "Observation", "id": "cancelled-1", "status": "cancelled",
                 "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}}
    producer.send(FHIR_IN, key=b"x", value=json.dumps(cancelled).encode())
    # within the contract, but not FHIR R4: rejected only because the worker runs with strict feeds
    not_r4 = {"resourceType": "Observation", "id": "not-r4", "status": "final", "subject": {"reference": "Patient/x"},
              "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
              "effectiveDateTime": "2024-01-01T10:00:00+00:00",
              "valueQuantity": {"value": 80, "valu": 3, "unit": "/min", "system": "http://unitsofmeasure.org",
                                "code": "/min"}}
    producer.send(FHIR_IN, key=b"x", value=json.dumps(not_r4).encode())
    headers = ("MSH|^~\\&|GW|ICU|CRSWATCH|HOSP|20240101100000+0000||ORU^R01|H1|P|2.6\rPID|||hl7-patient\r"
               "OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X")
    producer.send(HL7_IN, key=b"hl7-patient", value=headers.encode())
    producer.flush()
    producer.close()
    worker = Worker(fresh_broker, tmp_path / "data", extra_env={"CRSWATCH_STRICT_FEEDS": "true"})
    try:
        worker.wait_for(lambda: worker.count("applied") >= len(events) + 1, what="all normalised events")
        wait_quiet([worker])
        counts = worker.stats()["counts"]
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=5) as r:
            exposition = r.read().decode()
    finally:
        worker.stop()
    assert counts["normalised:fhir"] == len(events) and counts["normalised:hl7v2"] == 1
    assert counts["ignored:fhir"] == 1 and counts["ignored:hl7v2"] == 1
    feed_units = {(s.labels["format"], s.labels["outcome"]): s.value
                  for family in text_string_to_metric_families(exposition) for s in family.samples
                  if s.name == "crswatch_feed_units_total"}
    assert feed_units == {("fhir", "accepted"): len(events), ("fhir", "rejected"): 2, ("fhir", "ignored"): 1,
                          ("hl7v2", "accepted"): 1, ("hl7v2", "rejected"): 1, ("hl7v2", "ignored"): 1}
    got, copies = topic_alerts(fresh_broker)
    _, records = embedded(paths)
    assert sorted(alert_key(r) for r in got) == sorted(alert_key(r) for r in alert_records(records))
    assert max(copies.values()) == 1
    letters = [json.loads(m.value) for m in read_topic(fresh_broker, DEAD_LETTER)]
    assert sorted(d["topic"] for d in letters) == [FHIR_IN, FHIR_IN, HL7_IN]
    assert all(d["reason"] and d["category"] for d in letters)
    assert sum("not a valid FHIR R4 Observation" in d["reason"] for d in letters) == 1
    hl7_events = [json.loads(m.value) for m in read_topic(fresh_broker, LABS) if m.key == b"hl7-patient"]
    assert [e["analyte"] for e in hl7_events] == [lab.analyte.value]


def test_publish_of_a_bulk_export_and_a_shuffled_file_equals_the_embedded_replay(
        fresh_broker: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`crswatch publish` orders by known time whatever the layout (issue 14): one seed case as a FHIR
    Bulk export folder (one NDJSON per resource type, one gzipped: every Observation before any drug),
    the other as a shuffled native file, give the worker's alerts of the embedded `--order known` replay."""
    import gzip
    import random

    from streams.cli import main
    from streams.feeds.export import to_fhir
    from streams.replay import replay_paths

    bulk = tmp_path / "bulk"
    bulk.mkdir()
    by_type: dict[str, list[str]] = {}
    for _, line in read_lines([CASES / "ruemmele-2025.jsonl"]):
        resource, _ = to_fhir(parse_event(line))
        by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))
    for n, (rtype, lines) in enumerate(sorted(by_type.items())):
        text = "\n".join(lines) + "\n"
        if n == 0:
            with gzip.open(bulk / f"{rtype}.ndjson.gz", "wt", encoding="utf-8") as fh:
                fh.write(text)
        else:
            (bulk / f"{rtype}.ndjson").write_text(text, encoding="utf-8")
    shuffled = tmp_path / "mcnerney-shuffled.jsonl"
    lines = [line for _, line in read_lines([CASES / "mcnerney-2022.jsonl"])]
    shuffled.write_text("\n".join(random.Random(5).sample(lines, len(lines))) + "\n", encoding="utf-8")
    paths = [bulk, shuffled]

    assert main(["publish", *map(str, paths), "--broker", fresh_broker, "--partitions", "4"]) == 0
    assert "127 events, 127 sent" in capsys.readouterr().out
    worker = Worker(fresh_broker, tmp_path / "data")
    try:
        worker.wait_for(lambda: worker.count("in") >= 127, what="127 events")
        wait_quiet([worker])
        assert worker.count("applied") == 127
    finally:
        worker.stop()
    replay, replayed = replay_paths(paths, "known")
    expected = alert_records([json.loads(r.model_dump_json()) for r in replayed])
    got, copies = topic_alerts(fresh_broker)
    assert sorted(alert_key(r) for r in got) == sorted(alert_key(r) for r in expected)
    assert any(alert_key(r).startswith("ruemmele-2025:crs:") for r in got)
    by_key = {alert_key(r): without_flags(r) for r in expected}
    for r in got:
        assert without_flags(r) == by_key[alert_key(r)]
    assert max(copies.values()) == 1
    states = head_states(read_topic(fresh_broker, CHANGELOG), Thresholds())
    assert set(states) == set(replay.logs)
    for pid, log in replay.logs.items():
        assert comparable(states[pid]) == comparable(state_to_json(log.head)), pid
