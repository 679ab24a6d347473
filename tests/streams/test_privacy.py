"""Privacy by default (docs/privacy.md): faust's web apps closed, no patient id in logs, the
Alertmanager patient_key the only patient reference in notifications, raw-input retention set when
crswatch creates a topic, and a key resolved only by a holder of the secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.records import Alert
from streams.observability.alertmanager import SinkConfig, patient_key, resolve_patient_key, to_am_alert
from streams.publish import create_input_topics, publish_lines
from streams.replay import read_lines, replay_files
from streams.settings import Settings, topic_configs
from streams.topics import DEAD_LETTER, FHIR_IN, HL7_IN, VITALS
from tests.streams.conftest import Worker, wait_quiet
from tests.streams.proxy import PausableProxy

CASES = Path(__file__).resolve().parents[2] / "cases"
SEEDS = [CASES / "ruemmele-2025.jsonl", CASES / "mcnerney-2022.jsonl"]
PATIENTS = ("ruemmele-2025", "mcnerney-2022")


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.broker
def test_a_default_worker_closes_faust_web_apps_and_logs_no_patient_id(
        proxied_broker: tuple[str, PausableProxy], tmp_path: Path) -> None:
    broker, proxy = proxied_broker
    create_input_topics(broker, 4)
    sent = publish_lines(list(read_lines(SEEDS)), broker).sent
    # an event far older than the patient's newest: folded late, which the worker logs at WARNING
    late = {"event_id": "late-vitals-1", "patient_id": PATIENTS[0], "kind": "vitals",
            "time": "2024-01-02T08:00:00+00:00", "sbp": {"value": 120, "unit": "mm[Hg]"},
            "provenance": {"source": "test"}}
    worker = Worker(broker, tmp_path / "data", faust_cli=True)  # faust's CLI at --loglevel info
    try:
        worker.wait_for(lambda: worker.count("in") >= sent, what=f"{sent} events")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from kafka import KafkaProducer
        producer = KafkaProducer(bootstrap_servers=broker, acks="all")
        producer.send(VITALS, key=PATIENTS[0].encode(), value=json.dumps(late).encode())
        producer.send(VITALS, key=b"x", value=b"not json")  # to the dead-letter topic
        producer.flush()
        producer.close()
        worker.wait_for(lambda: worker.count("late") >= 1 and worker.count("rejected") >= 1, what="late + rejected")
        wait_quiet([worker])
        base = f"http://127.0.0.1:{worker.port}"
        for path in ("/table/", "/router/", "/graph/", "/table/patient-logs/", "/stats/"):
            assert _status(base + path) == 404, path
        assert _status(base + "/crswatch/ready/") == 200
        stats = json.dumps(worker.get("/crswatch/stats/"))
        assert not any(pid in stats for pid in PATIENTS)
    finally:
        worker.stop()
    log = worker.log_path.read_text(errors="replace")
    assert "late event #1: patient p-" in log  # the line is there, with the per-run pseudonym
    assert " INFO" in log or "[INFO]" in log  # the scan saw INFO lines, not only warnings
    leaks = [line for line in log.splitlines() if any(pid in line for pid in PATIENTS)]
    assert leaks == []
    # the topics that keep raw input were created with their retention (the broker does not report
    # topic configs, so the CreateTopics requests on the wire are read)
    week_ms = str(7 * 24 * 3_600_000).encode()
    assert b"retention.ms" in proxy.to_broker and week_ms in proxy.to_broker


@pytest.mark.broker
def test_create_input_topics_sets_the_retention_of_raw_input(
        proxied_broker: tuple[str, PausableProxy]) -> None:
    broker, proxy = proxied_broker
    settings = Settings(dead_letter_retention_hours=36, raw_feed_retention_hours=12)
    create_input_topics(broker, 2, extra=(DEAD_LETTER, FHIR_IN, HL7_IN), settings=settings)
    wire = bytes(proxy.to_broker)
    assert wire.count(b"retention.ms") == 3
    assert str(36 * 3_600_000).encode() in wire and str(12 * 3_600_000).encode() in wire
    assert topic_configs(Settings())[DEAD_LETTER] == {"retention.ms": str(7 * 24 * 3_600_000)}


def test_the_replay_logs_no_patient_id() -> None:
    done = subprocess.run([sys.executable, "-m", "streams.cli", "replay", *map(str, SEEDS)],
                          capture_output=True, text=True, check=True, timeout=120)
    assert PATIENTS[0] in done.stdout  # the timeline is the product and names the patient
    assert not any(pid in done.stderr for pid in PATIENTS)


def _seed_alerts() -> list[Alert]:
    _, records = replay_files(SEEDS)
    return [r for r in records if isinstance(r, Alert)]


def test_every_seed_alert_reaches_alertmanager_with_the_key_only() -> None:
    cfg = SinkConfig(url="http://127.0.0.1:1", secret=b"s3cret", unit="icu-1")
    alerts = _seed_alerts()
    assert len(alerts) > 20 and {a.patient_id for a in alerts} == set(PATIENTS)
    now = datetime.now(UTC).timestamp()
    for alert in alerts:
        am = to_am_alert(alert, cfg, now)
        text = json.dumps([am.labels, am.annotations])
        assert alert.patient_id not in text, alert.id
        assert am.labels["patient_key"] == patient_key(alert.patient_id, cfg.secret)


def test_resolve_key_needs_the_secret_and_finds_the_patient(tmp_path: Path) -> None:
    secret = b"s3cret"
    key = patient_key(PATIENTS[1], secret)
    assert resolve_patient_key(key.upper(), PATIENTS, secret) == [PATIENTS[1]]
    assert resolve_patient_key(key, PATIENTS, b"another secret") == []
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(PATIENTS) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRSWATCH_")}
    run = [sys.executable, "-m", "streams.cli", "resolve-key", key, "--ids", str(ids)]
    without = subprocess.run(run, capture_output=True, text=True, env=env, timeout=60)
    assert without.returncode == 2 and "CRSWATCH_PATIENT_KEY_SECRET" in without.stderr
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(secret + b"\n")
    found = subprocess.run(run, capture_output=True, text=True, timeout=60,
                           env={**env, "CRSWATCH_PATIENT_KEY_SECRET_FILE": str(secret_file)})
    assert found.returncode == 0 and found.stdout.split() == [PATIENTS[1]]


@pytest.mark.parametrize("var,value", [("CRSWATCH_FAUST_WEB_APPS", "maybe"),
                                       ("CRSWATCH_DEAD_LETTER_RETENTION_HOURS", "0")])
def test_privacy_settings_refuse_bad_values(var: str, value: str) -> None:
    from streams.settings import SettingsError, from_env

    with pytest.raises(SettingsError):
        from_env({var: value})

