"""End to end with the real binaries on 127.0.0.1.

Case 000 is replayed in-process up to its CRS grade 4 (Day +21) with the worker's metrics
served on /metrics and its alerts posted by the worker's sink to the real Alertmanager.
The real Prometheus scrapes that endpoint as job crswatch-worker, evaluates the deploy
rules and sends its alerts to the same Alertmanager, which notifies a local webhook
receiver through the deploy routing tree. Then the rest of the case is replayed: the
patient recovers and the page is resolved.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from models.records import Alert
from streams.observability.alertmanager import AlertmanagerSink, SinkConfig, patient_key, split_alert_id
from streams.observability.metrics import Metrics
from streams.replay import Replayer
from tests.case000 import PATIENT_000, replay_in_two_parts
from tests.deploy.conftest import DASHBOARDS_DIR, Alertmanager, Prometheus, free_port, wait_until
from tests.http_recorder import Recorder

pytestmark = pytest.mark.binaries

SECRET = b"e2e-secret"


def notified(webhook: Recorder, receiver: str, status: str, **labels: str) -> Callable[[Any], bool]:
    def match(posts: list[tuple[str, Any]]) -> bool:
        return any(
            path == f"/{receiver}" and any(
                a["status"] == status and labels.items() <= a["labels"].items() for a in body["alerts"])
            for path, body in posts)
    return match


def test_case_000_from_the_worker_to_prometheus_alertmanager_and_the_pager(
    start_alertmanager: Callable[[str], Alertmanager],
    start_prometheus: Callable[..., Prometheus],
    webhook: Recorder,
) -> None:
    key = patient_key(PATIENT_000, SECRET)
    am = start_alertmanager(webhook.url)
    metrics = Metrics()
    port = free_port()
    server, _ = metrics.serve(port)
    sink = AlertmanagerSink(SinkConfig(url=am.url, secret=SECRET, unit="haem-4"), metrics)
    sink.start()
    try:
        parts = replay_in_two_parts(Replayer(metrics=metrics))
        first = next(parts)
        assert sink.submit(first) == 0
        assert sink.flush()
        prom = start_prometheus([f"127.0.0.1:{port}"], alertmanager=am.address)

        # Prometheus sees the worker, the patient at grade 4 and the alerts it raised
        prom.wait_for_value('up{job="crswatch-worker"}', 1)
        prom.wait_for_value('crswatch_patients_crs_grade{grade="4"}', 1)
        assert prom.value("sum(crswatch_patients_crs_grade)") == 1
        assert prom.value('crswatch_patients_crs_grade{grade="3"}') == 0
        assert prom.value('crswatch_alerts_emitted_total{kind="crs",severity="critical",status="firing"}') == 1
        assert prom.value('sum(crswatch_alerts_emitted_total{kind="crs",status="resolved"})') == 2
        assert prom.value("crswatch_alertmanager_post_failures_total") == 0
        assert (prom.value("crswatch_alertmanager_alerts_sent_total") or 0) > 0
        prom.wait_for_value('crswatch:patients_crs_grade:sum{grade="4"}', 1)  # recording rule

        # the ward rule fires in Prometheus ...
        wait_until(lambda: [a for a in prom.alerts() if a["labels"]["alertname"] == "CrswatchPatientsCrsGrade3OrAbove"
                            and a["state"] == "firing"], "CrswatchPatientsCrsGrade3OrAbove firing")
        # (pending for a moment at start-up, before the first scrape: absent(up))
        wait_until(lambda: not [a for a in prom.alerts() if a["labels"]["alertname"] == "CrswatchWorkerDown"],
                   "CrswatchWorkerDown cleared once the worker is scraped")
        # ... and reaches the ward receiver through Alertmanager
        assert webhook.wait_for(notified(webhook, "clinical-ward", "firing",
                                         alertname="CrswatchPatientsCrsGrade3OrAbove"))

        # the worker's grade-4 alert is paged, routed by severity, grouped by patient
        assert webhook.wait_for(notified(webhook, "clinical-page", "firing", alertname="crs", level="4",
                                         episode="3", patient_key=key, unit="haem-4"))
        page = next(body for path, body in webhook.posts if path == "/clinical-page")
        assert page["groupLabels"] == {"patient_key": key}
        grade4 = next(a for a in page["alerts"] if a["labels"]["alertname"] == "crs")
        assert "CRS escalated to grade 4" in grade4["annotations"]["summary"]
        assert grade4["annotations"]["day"] == "+21" and grade4["annotations"]["evidence"]
        assert PATIENT_000 not in json.dumps(webhook.posts)

        # the grade-3 alert of the same episode is inhibited by the grade-4 one
        in_am = {(a["labels"]["alertname"], a["labels"]["episode"], a["labels"]["level"]): a
                 for a in am.alerts() if a["labels"].get("patient_key") == key}
        grade3 = in_am[("crs", "3", "3")]
        assert grade3["status"]["state"] == "suppressed" and grade3["status"]["inhibitedBy"]
        assert in_am[("crs", "3", "4")]["status"]["state"] == "active"
        assert in_am[("refractory_crs", "3", "1")]["status"]["state"] == "active"
        assert ("crs", "2", "3") not in in_am or in_am[("crs", "2", "3")]["status"]["state"] != "active"

        # every dashboard query is valid PromQL on the real Prometheus
        dash = json.loads((DASHBOARDS_DIR / "crswatch.json").read_text())
        for p in dash["panels"]:
            for t in p.get("targets", []):
                prom.query(t["expr"])
        assert prom.value('sum(up{job="crswatch-worker"})') == 1

        # the rest of the case: CRS resolves on Day +27, the page is resolved
        rest = next(parts)
        assert sink.submit(rest) == 0
        assert sink.flush()
        prom.wait_for_value('crswatch_patients_crs_grade{grade="0"}', 1)
        assert prom.value('crswatch_patients_crs_grade{grade="4"}') == 0
        assert webhook.wait_for(notified(webhook, "clinical-page", "resolved", alertname="crs", level="4",
                                         patient_key=key))
        # what stays active in Alertmanager is exactly what the fold never resolved
        ids = [split_alert_id(r.id, PATIENT_000) for r in first + rest if isinstance(r, Alert)]
        resolved = {(kind, activation) for kind, activation, level in ids if level == "resolved"}
        unresolved = {(kind, level) for kind, activation, level in ids
                      if level != "resolved" and (kind, activation) not in resolved}
        left = {(a["labels"]["alertname"], a["labels"]["level"]) for a in am.alerts()
                if a["labels"].get("patient_key") == key}
        assert ("oxygen_escalation", "4") in left and not {n for n, _ in left} & {"crs", "refractory_crs"}
        assert left == unresolved
    finally:
        sink.close(timeout=5)
        server.shutdown()
        server.server_close()
