"""The streaming worker itself as Prometheus's scrape target and Alertmanager's client.

The worker starts on a real Kafka-protocol broker with empty input topics, then both seed
cases are published; the real worker folds them, serves /metrics on its web port (scraped by
the real Prometheus) and posts its alerts to the real Alertmanager, which pages the local
webhook receiver for case 000's grade 4.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.feeds.inputs import read_lines
from streams.observability.alertmanager import patient_key
from streams.publish import create_input_topics, publish_lines
from tests.deploy.conftest import Alertmanager, Prometheus, wait_until
from tests.deploy.test_end_to_end import notified
from tests.deploy.test_grafana import unexported_panel_metrics
from tests.deploy.test_metric_labels import case_identifiers, violations
from tests.http_recorder import Recorder
from tests.streams.conftest import Worker, fresh_broker, wait_quiet  # noqa: F401 (fixture)
from tests.streams.helpers import CASES

pytestmark = [pytest.mark.broker, pytest.mark.binaries]

SECRET = "worker-e2e-secret"


def scrape(worker: Worker) -> str:
    """The body the worker serves at /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=2) as resp:
        body: bytes = resp.read()
    return body.decode()


def sample_values(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {frozenset(s.labels.items()): s.value for f in text_string_to_metric_families(text)
            for s in f.samples if s.name == name}


def grade_4_line(lines: list[tuple[str, str]]) -> int:
    """How many lines (of both cases, in file order) up to and including the event that takes case
    000 to CRS grade 4."""
    from models.records import CrsGradeChange
    from streams.replay import Replayer

    replayer = Replayer()
    for n, (source, line) in enumerate(lines, 1):
        if any(isinstance(r, CrsGradeChange) and r.grade == 4 for r in replayer.feed(line, source)):
            return n
    raise AssertionError("case 000 never reaches CRS grade 4")


def test_worker_metrics_in_prometheus_and_its_grade_4_page_through_alertmanager(
    fresh_broker: str,  # noqa: F811
    tmp_path: Path,
    start_alertmanager: Callable[[str], Alertmanager],
    start_prometheus: Callable[..., Prometheus],
    webhook: Recorder,
) -> None:
    am = start_alertmanager(webhook.url)
    paths = [CASES / "ruemmele-2025.jsonl", CASES / "mcnerney-2022.jsonl"]
    create_input_topics(fresh_broker, 4)
    started = time.time()
    worker = Worker(fresh_broker, tmp_path / "data", extra_env={
        "CRSWATCH_ALERTMANAGER_URL": am.url, "CRSWATCH_PATIENT_KEY_SECRET": SECRET, "CRSWATCH_UNIT": "haem-4"})
    try:
        # Before any message: every input topic has a last-event time, the worker's start, so
        # a feed that never delivers after a restart is seen as silent (CrswatchInputFeedSilent).
        before = wait_until(lambda: scrape(worker), "the worker's /metrics")
        assert sum(sample_values(before, "crswatch_events_ingested_total").values()) == 0
        last_event = sample_values(before, "crswatch_input_last_event_timestamp_seconds")
        assert set(last_event) == {frozenset({("topic", t)}) for t in ("vitals", "labs", "treatments")}
        assert all(started <= v <= time.time() for v in last_event.values()), last_event
        # Case 000 up to its CRS grade 4 first, then the rest: a page goes out for an alert that is
        # firing when Alertmanager hears of it. (Published at once, a batch worker folds the whole
        # case in one fetch; the sink then posts grade 4 already ended with its episode, in one burst.)
        lines = list(read_lines(paths))
        upto = grade_4_line(lines)
        sent = publish_lines(lines[:upto], fresh_broker).sent
        key = patient_key("ruemmele-2025", SECRET.encode())
        assert webhook.wait_for(notified(webhook, "clinical-page", "firing", alertname="crs", level="4",
                                         patient_key=key, unit="haem-4"))
        sent += publish_lines(lines[upto:], fresh_broker).sent
        worker.wait_for(lambda: worker.count("applied") >= sent, what=f"{sent} events")
        wait_quiet([worker])
        prom = start_prometheus([f"127.0.0.1:{worker.port}"], alertmanager=am.address)
        prom.wait_for_value('up{job="crswatch-worker"}', 1)
        prom.wait_for_value('sum(crswatch_events_ingested_total{outcome="applied"})', sent)
        # both patients are held by the worker; at the end of the case reports neither has CRS
        prom.wait_for_value("sum(crswatch_patients_crs_grade)", 2)
        assert prom.value('crswatch_patients_crs_grade{grade="0"}') == 2
        assert prom.value('crswatch_alerts_emitted_total{kind="crs",severity="critical",status="firing"}') == 2
        assert prom.value("sum(crswatch_records_published_total)") == worker.count("out:crs-alerts") + \
            worker.count("out:patient-state")
        # every record queued for crs-alerts was written (CrswatchAlertsTopicSilent reads the gap)
        assert prom.value('crswatch_records_queued_total{topic="crs-alerts"}') == \
            prom.value('crswatch_records_published_total{topic="crs-alerts"}') == worker.count("out:crs-alerts") > 0
        assert prom.value("crswatch_alertmanager_post_failures_total") == 0
        # what the real worker serves: no label value is a patient id or unbounded, and every
        # metric a dashboard panel (or a recording rule) queries is there
        body = scrape(worker)
        assert len({f.name for f in text_string_to_metric_families(body)}) >= 15
        assert violations(body, case_identifiers()) == []
        assert unexported_panel_metrics(body) == []
    finally:
        worker.stop()
