"""streams.observability.alertmanager: crswatch alerts as Alertmanager v2 alerts, posted from a thread.

The sink posts to a real HTTP server on 127.0.0.1 that records the bodies
(tests/http_recorder.py); tests/deploy/test_end_to_end.py posts to the real Alertmanager.
"""

from __future__ import annotations

import json
import re
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from models.records import Alert, Retraction
from streams.observability.alertmanager import (
    AlertmanagerSink,
    SinkConfig,
    patient_key,
    sink_config_from_env,
    split_alert_id,
    to_am_alert,
)
from streams.observability.metrics import Metrics
from streams.replay import Replayer
from tests.case000 import PATIENT_000, replay_in_two_parts
from tests.http_recorder import Recorder, recording_server

SECRET = b"test-secret"


def alert(aid: str, severity: str = "critical", status: str = "firing", pid: str = "MRN-42", **kw: Any) -> Alert:
    kind, _, level = split_alert_id(aid, pid)
    return Alert(patient_id=pid, time="2024-01-22T08:00:00Z", day=21, evidence=(f"evidence of {pid}",), id=aid,
                 kind=kind, severity=severity, level=level, status=status, summary=f"summary for {pid}", **kw)


def posted(rec: Recorder) -> list[dict[str, Any]]:
    return [a for _, body in rec.posts for a in body]


def ts(rfc: str) -> float:
    return datetime.fromisoformat(rfc.replace("Z", "+00:00")).timestamp()


def counter(m: Metrics, name: str) -> float:
    body, _ = m.exposition()
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            if s.name == name:
                return s.value
    raise KeyError(name)


def test_patient_key_is_a_keyed_pseudonym() -> None:
    k = patient_key("MRN-42", SECRET)
    assert re.fullmatch(r"[0-9a-f]{16}", k)
    assert k == patient_key("MRN-42", SECRET) != patient_key("MRN-42", b"other") != patient_key("MRN-43", SECRET)
    with pytest.raises(ValueError):
        SinkConfig(url="http://127.0.0.1:1", secret=b"")


def test_config_from_the_environment(tmp_path: Path) -> None:
    assert sink_config_from_env({}) is None
    cfg = sink_config_from_env({"CRSWATCH_ALERTMANAGER_URL": "http://am:9093", "CRSWATCH_PATIENT_KEY_SECRET": "s",
                                "CRSWATCH_UNIT": "haem-4"})
    assert cfg is not None and (cfg.url, cfg.secret, cfg.unit) == ("http://am:9093", b"s", "haem-4")
    (tmp_path / "secret").write_text("from-file\n")
    cfg = sink_config_from_env({"CRSWATCH_ALERTMANAGER_URL": "http://am:9093",
                                "CRSWATCH_PATIENT_KEY_SECRET_FILE": str(tmp_path / "secret")})
    assert cfg is not None and cfg.secret == b"from-file" and cfg.unit is None
    with pytest.raises(ValueError, match="secret"):
        sink_config_from_env({"CRSWATCH_ALERTMANAGER_URL": "http://am:9093"})


def test_alert_ids_split_even_when_ids_and_levels_hold_colons() -> None:
    assert split_alert_id("p:1:vasopressor_escalation:2:agent:norepinephrine", "p:1") == (
        "vasopressor_escalation", "2", "agent:norepinephrine")
    assert split_alert_id("ruemmele-2025:crs:3:4", "ruemmele-2025") == ("crs", "3", "4")


def test_labels_are_bounded_and_carry_no_patient_id() -> None:
    cfg = SinkConfig(url="http://127.0.0.1:1", secret=SECRET, unit="haem-4", bed_of=lambda pid: "bed-7")
    am = to_am_alert(alert("MRN-42:crs:3:4", late=True), cfg, now=2e9)
    key = patient_key("MRN-42", SECRET)
    assert am.labels == {"alertname": "crs", "severity": "critical", "level": "4", "episode": "3",
                         "patient_key": key, "category": "clinical", "unit": "haem-4", "bed": "bed-7"}
    payload = json.dumps(am.payload(2e9, 60.0))
    assert "MRN-42" not in payload
    assert am.annotations["ref"] == f"{key}:crs:3:4"
    assert am.annotations["summary"] == f"summary for {key}"
    assert am.annotations["evidence"] == f"evidence of {key}" and am.annotations["day"] == "+21"
    assert "late" in am.annotations["note"]
    p = am.payload(2e9, 60.0)
    assert ts(p["startsAt"]) == ts("2024-01-22T08:00:00Z")  # the event time, not the post time
    assert ts(p["endsAt"]) == 2e9 + 240  # 4 resend intervals ahead: Alertmanager ends it if we die


def test_case_000_alerts_fire_and_resolve_by_activation() -> None:
    with recording_server() as rec:
        m = Metrics()
        sink = AlertmanagerSink(SinkConfig(url=rec.url, secret=SECRET), m)
        sink.start()
        parts = replay_in_two_parts(Replayer())
        first = next(parts)
        assert sink.submit(first) == 0
        assert sink.flush()
        fired = posted(rec)
        key = patient_key(PATIENT_000, SECRET)
        assert all(a["labels"]["patient_key"] == key for a in fired)
        assert PATIENT_000 not in json.dumps(rec.posts)
        grade4 = [a for a in fired if a["labels"]["alertname"] == "crs" and a["labels"]["level"] == "4"]
        assert len(grade4) == 1 and grade4[0]["labels"]["severity"] == "critical"
        assert grade4[0]["labels"]["episode"] == "3"
        # resolved records are not alerts of their own; earlier episodes were posted and ended
        assert not any(a["labels"]["level"] == "resolved" for a in fired)
        episode2 = [a for a in fired if a["labels"]["alertname"] == "crs" and a["labels"]["episode"] == "2"]
        assert episode2 and all(ts(a["endsAt"]) <= datetime.now().timestamp() for a in episode2)
        firing_crs = {a.labels["level"] for a in sink.firing if a.labels["alertname"] == "crs"}
        assert firing_crs == {"1", "2", "3", "4"}  # every level of episode 3 fires until it resolves

        rec.posts.clear()
        sink.submit(next(parts))
        assert sink.flush()
        ended = {(a["labels"]["alertname"], a["labels"]["episode"], a["labels"]["level"]): a for a in posted(rec)}
        for level in ("1", "2", "3", "4"):
            a = ended[("crs", "3", level)]
            assert ts(a["endsAt"]) <= datetime.now().timestamp() + 1
            assert "peak grade 4" in a["annotations"]["resolution"]
        assert ("refractory_crs", "3", "1") in ended
        assert not [a for a in sink.firing if a.labels["alertname"] == "crs"]
        sink.close()
        assert counter(m, "crswatch_alertmanager_alerts_sent_total") == len(posted(rec)) + len(fired)
        assert counter(m, "crswatch_alertmanager_post_failures_total") == 0


def test_retraction_ends_an_alert_and_a_retracted_resolution_fires_again() -> None:
    with recording_server() as rec:
        sink = AlertmanagerSink(SinkConfig(url=rec.url, secret=SECRET))
        sink.start()
        sink.submit([alert("MRN-42:crs:1:2", "warning"), alert("MRN-42:crs:1:3", "high")])
        sink.submit([Retraction(patient_id="MRN-42", time="2024-01-22T09:00:00Z", day=21, evidence=(),
                                retracts="MRN-42:crs:1:3")])
        assert sink.flush()
        assert [a.labels["level"] for a in sink.firing] == ["2"]
        rec.posts.clear()
        sink.submit([alert("MRN-42:crs:1:resolved", "info", "resolved")])
        assert sink.flush() and sink.firing == []
        sink.submit([Retraction(patient_id="MRN-42", time="2024-01-22T09:00:00Z", day=21, evidence=(),
                                retracts="MRN-42:crs:1:resolved")])
        assert sink.flush()
        assert [a.labels["level"] for a in sink.firing] == ["2"]
        last = posted(rec)[-1]
        assert last["labels"]["level"] == "2" and "resolution" not in last["annotations"]
        assert ts(last["endsAt"]) > datetime.now().timestamp()
        sink.close()


def test_firing_alerts_are_sent_again_until_resolved() -> None:
    with recording_server() as rec:
        sink = AlertmanagerSink(SinkConfig(url=rec.url, secret=SECRET, resend_seconds=0.05))
        sink.start()
        sink.submit([alert("MRN-42:iec_hs:1:2", "high")])
        assert rec.wait_for(lambda posts: len(posts) >= 3)
        sink.submit([alert("MRN-42:iec_hs:1:resolved", "info", "resolved")])
        assert sink.flush()
        sink.close()
        bodies = [body for _, body in rec.posts]
        assert all(len(b) == 1 and b[0]["labels"]["level"] == "2" for b in bodies)
        ends = [ts(b[0]["endsAt"]) for b in bodies]
        assert ends[-1] < ends[-2]  # the last post ended it


def test_failed_posts_are_retried_with_backoff_and_counted() -> None:
    with recording_server() as rec:
        rec.statuses = [503, 503]
        m = Metrics()
        sink = AlertmanagerSink(SinkConfig(url=rec.url, secret=SECRET, backoff_seconds=0.01), m)
        sink.start()
        sink.submit([alert("MRN-42:crs:1:4")])
        assert sink.flush()
        sink.close()
        assert len(posted(rec)) == 1
        assert counter(m, "crswatch_alertmanager_post_failures_total") == 2
        assert counter(m, "crswatch_alertmanager_alerts_sent_total") == 1
        assert counter(m, "crswatch_alertmanager_alerts_dropped_total") == 0


def test_a_refused_payload_is_dropped_not_retried() -> None:
    with recording_server() as rec:
        rec.statuses = [400]
        m = Metrics()
        sink = AlertmanagerSink(SinkConfig(url=rec.url, secret=SECRET), m)
        sink.start()
        sink.submit([alert("MRN-42:crs:1:4")])
        assert sink.flush()
        sink.close()
        assert posted(rec) == []
        assert counter(m, "crswatch_alertmanager_alerts_dropped_total") == 1


def test_submit_never_blocks_and_counts_what_a_full_queue_drops() -> None:
    m = Metrics()
    sink = AlertmanagerSink(SinkConfig(url="http://127.0.0.1:1", secret=SECRET, queue_size=2), m)  # not started
    dropped = sink.submit([alert(f"MRN-42:crs:1:{g}") for g in (1, 2, 3, 4)])
    assert dropped == 2
    assert counter(m, "crswatch_alertmanager_alerts_dropped_total") == 2


def test_an_unreachable_alertmanager_is_counted_and_flush_gives_up() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    m = Metrics()
    sink = AlertmanagerSink(SinkConfig(url=f"http://127.0.0.1:{port}", secret=SECRET, backoff_seconds=0.01,
                                       max_backoff_seconds=0.02), m)
    sink.start()
    sink.submit([alert("MRN-42:crs:1:4")])
    assert not sink.flush(timeout=0.5)
    assert counter(m, "crswatch_alertmanager_post_failures_total") >= 2
    assert len(sink.firing) == 1
    sink.close(timeout=0.1)
