"""streams.observability.metrics: what the worker and the embedded replay export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from alerts.log import new_log, step
from models.records import ALERT_KINDS, Alert, Record
from streams.cli import main
from streams.observability.metrics import LAG_BUCKETS, Metrics
from streams.replay import Replayer, replay_files
from tests.case000 import CASE_000, CASE_004, PATIENT_000, replay_in_two_parts
from tests.factories import PID, attribution, bp, car_t, temp

ROOT = Path(__file__).resolve().parents[3]

Sample = tuple[str, frozenset[tuple[str, str]]]


def samples(text: str) -> dict[Sample, float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, frozenset(labels.items()))]


def total(text: str, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples(text).items() if n == name and want <= ls)


def exported(m: Metrics) -> str:
    body, _ = m.exposition()
    return body.decode()


def test_counters_of_both_seed_cases_match_the_replay() -> None:
    m = Metrics()
    replayer, records = replay_files([CASE_004, CASE_000])
    mr = Replayer(metrics=m)
    for path in (CASE_004, CASE_000):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            mr.feed(line, f"{path}:{n}")
    text = exported(m)
    assert total(text, "crswatch_events_ingested_total") == sum(replayer.outcomes.values()) == 127
    assert total(text, "crswatch_events_ingested_total", outcome="applied") == 127
    assert total(text, "crswatch_events_ingested_total", topic="labs") == 21
    alerts = [r for r in records if isinstance(r, Alert)]
    assert total(text, "crswatch_alerts_emitted_total") == len(alerts)
    assert value(text, "crswatch_alerts_emitted_total", kind="crs", severity="critical", status="firing") == 2
    # The one retraction of these replays took back an "IEC-HS level 0 -> 0" record, no longer emitted.
    assert total(text, "crswatch_records_emitted_total", type="retraction") == 0
    # both patients end the cases with CRS resolved and no IEC-HS suspicion
    assert value(text, "crswatch_patients_crs_grade", grade="0") == 2
    assert total(text, "crswatch_patients_crs_grade") == 2
    assert value(text, "crswatch_patients_iec_hs_level", level="0") == 2
    assert value(text, "crswatch_fold_duration_seconds_count") == 127


def test_patient_gauges_follow_case_000_to_grade_4_and_back() -> None:
    m = Metrics()
    parts = replay_in_two_parts(Replayer(metrics=m))
    next(parts)
    text = exported(m)
    assert value(text, "crswatch_patients_crs_grade", grade="4") == 1
    assert total(text, "crswatch_patients_crs_grade") == 1
    next(parts)
    text = exported(m)
    assert value(text, "crswatch_patients_crs_grade", grade="4") == 0
    assert value(text, "crswatch_patients_crs_grade", grade="0") == 1


def test_gauges_follow_the_state_when_a_late_event_rewrites_history() -> None:
    # fever 10:00 (grade 1), SBP 80 at 11:00 (grade 2), then a note of 10:30 arrives that
    # attributes hypotension from then on to sepsis: the grade-2 change is retracted.
    m = Metrics()
    log = new_log(PID)
    emitted: list[Record] = []
    for e in (car_t(), temp(10, 38.6), bp(11, 80), attribution(10.5, ["hypotension"], "sepsis", forward=True)):
        result = step(log, e, Replayer().cfg)
        emitted += result.records
        m.observe_step("treatments", e, result, log.state, e.ts, 0.0)
    text = exported(m)
    assert sum(r.type == "retraction" for r in emitted) == 2
    assert value(text, "crswatch_records_emitted_total", type="retraction") == 2
    assert log.state.crs_grade == 1
    assert value(text, "crswatch_patients_crs_grade", grade="1") == 1
    assert value(text, "crswatch_patients_crs_grade", grade="2") == 0
    assert total(text, "crswatch_patients_crs_grade") == 1


def test_forgotten_patients_leave_the_gauges() -> None:
    m = Metrics()
    m.set_patient_levels("a", 3, 2)
    m.set_patient_levels("b", 3, 0)
    m.set_patient_levels("b", 4, 0)
    text = exported(m)
    assert value(text, "crswatch_patients_crs_grade", grade="3") == 1
    assert value(text, "crswatch_patients_crs_grade", grade="4") == 1
    m.forget_patients(["a", "never-seen"])
    text = exported(m)
    assert value(text, "crswatch_patients_crs_grade", grade="3") == 0
    assert value(text, "crswatch_patients_iec_hs_level", level="2") == 0
    assert total(text, "crswatch_patients_crs_grade") == 1 == m.patients


def test_values_outside_the_closed_sets_get_a_fixed_label() -> None:
    m = Metrics()
    m.observe_event("vitals-MRN123", "MRN123", "weird", 0.0, 10.0, 0.001)
    m.dead_lettered("MRN123 broke it")
    m.observe_records([Alert(patient_id="MRN123", time="2024-01-01T00:00:00Z", day=None, evidence=(),
                             id="MRN123:new_kind:1:1", kind="new_kind", severity="high", level="1", summary="s")])
    m.published("MRN123-topic", 2)
    text = exported(m)
    assert "MRN123" not in text
    assert value(text, "crswatch_events_ingested_total", topic="unknown", kind="unknown", outcome="other") == 1
    assert value(text, "crswatch_dead_letters_total", reason="other") == 1
    assert value(text, "crswatch_alerts_emitted_total", kind="other", severity="high", status="firing") == 1
    assert value(text, "crswatch_records_published_total", topic="other") == 2


def test_lag_and_last_event_time() -> None:
    m = Metrics()
    m.observe_event("vitals", "vitals", "applied", event_time_s=1000.0, now_s=1090.0, fold_seconds=2e-5)
    m.observe_event("vitals", "vitals", "duplicate", event_time_s=0.0, now_s=2000.0, fold_seconds=1e-5)
    m.observe_event("labs", "lab", "late", event_time_s=0.0, now_s=20000.0)
    text = exported(m)
    assert value(text, "crswatch_event_lag_seconds_count", topic="vitals") == 1  # the duplicate is not lag
    assert value(text, "crswatch_event_lag_seconds_sum", topic="vitals") == 90
    assert value(text, "crswatch_event_lag_seconds_bucket", topic="vitals", le="60.0") == 0
    assert value(text, "crswatch_event_lag_seconds_bucket", topic="vitals", le="120.0") == 1
    assert value(text, "crswatch_event_lag_seconds_bucket", topic="labs", le="14400.0") == 0
    assert value(text, "crswatch_event_lag_seconds_bucket", topic="labs", le="28800.0") == 1
    assert value(text, "crswatch_input_last_event_timestamp_seconds", topic="vitals") == 2000
    assert value(text, "crswatch_fold_duration_seconds_count") == 2
    assert list(LAG_BUCKETS) == sorted(LAG_BUCKETS)


def test_the_worker_start_sets_every_input_topic_last_event_time() -> None:
    m = Metrics()
    assert not any(n == "crswatch_input_last_event_timestamp_seconds" for n, _ in samples(exported(m)))
    m.inputs_started(1000.0)
    text = exported(m)
    for topic in ("vitals", "labs", "treatments"):
        assert value(text, "crswatch_input_last_event_timestamp_seconds", topic=topic) == 1000
    # a message moves its own topic only; a feed that never delivers keeps the start time
    m.observe_event("vitals", "vitals", "applied", event_time_s=1100.0, now_s=1200.0)
    text = exported(m)
    assert value(text, "crswatch_input_last_event_timestamp_seconds", topic="vitals") == 1200
    assert value(text, "crswatch_input_last_event_timestamp_seconds", topic="labs") == 1000
    assert value(text, "crswatch_input_last_event_timestamp_seconds", topic="treatments") == 1000


def test_rejected_messages_are_ingested_and_dead_lettered() -> None:
    m = Metrics()
    r = Replayer(metrics=m)
    r.feed("{not json", "x:1")
    r.feed('{"kind": "vitals"}', "x:2")
    text = exported(m)
    assert value(text, "crswatch_events_ingested_total", topic="unknown", kind="unknown", outcome="rejected") == 2
    assert value(text, "crswatch_dead_letters_total", reason="not_json") == 1
    assert value(text, "crswatch_dead_letters_total", reason="missing_field") == 1
    m.observe_rejected("labs", "invalid_value", 5.0)
    text = exported(m)
    assert value(text, "crswatch_input_last_event_timestamp_seconds", topic="labs") == 5


def test_feed_units_are_counted_by_format_and_outcome_ignored_included() -> None:
    from streams.feeds.fhir import normalise_fhir
    from streams.feeds.hl7v2 import normalise_hl7

    obs = {"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/p1"},
           "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
           "effectiveDateTime": "2024-01-01T10:00:00+00:00",
           "valueQuantity": {"value": 80, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}
    fhir = "\n".join([json.dumps(obs), json.dumps(obs | {"id": "o2", "status": "cancelled"}),
                      json.dumps(obs | {"id": "o3", "status": "registered"}), "{broken"])
    hl7 = ("MSH|^~\\&|GW|ICU|CRSWATCH|HOSP|20240101100000+0000||ORU^R01|M1|P|2.6\rPID|||MRN1\r"
           "OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X")
    m = Metrics()
    text = exported(m)
    assert value(text, "crswatch_feed_units_total", format="fhir", outcome="ignored") == 0  # present from the start
    m.observe_feed("fhir", normalise_fhir(fhir))
    m.observe_feed("hl7v2", normalise_hl7(hl7))
    m.observe_feed("MRN1", normalise_fhir(json.dumps(obs)))
    text = exported(m)
    assert value(text, "crswatch_feed_units_total", format="fhir", outcome="accepted") == 1
    assert value(text, "crswatch_feed_units_total", format="fhir", outcome="rejected") == 1
    assert value(text, "crswatch_feed_units_total", format="fhir", outcome="ignored") == 2
    assert value(text, "crswatch_feed_units_total", format="hl7v2", outcome="ignored") == 1
    assert value(text, "crswatch_feed_units_total", format="hl7v2", outcome="accepted") == 0
    assert value(text, "crswatch_feed_units_total", format="other", outcome="accepted") == 1
    assert "MRN1" not in text


def test_records_queued_and_published_per_output_topic_start_at_0() -> None:
    m = Metrics()
    text = exported(m)
    for topic in ("crs-alerts", "patient-state", "dead-letter"):
        # present from the start: increase() and queued - published see the first record
        assert value(text, "crswatch_records_queued_total", topic=topic) == 0
        assert value(text, "crswatch_records_published_total", topic=topic) == 0
    m.queued("crs-alerts", 3)
    m.published("crs-alerts", 2)
    m.queued("MRN123", 1)
    text = exported(m)
    assert value(text, "crswatch_records_queued_total", topic="crs-alerts") == 3
    assert value(text, "crswatch_records_published_total", topic="crs-alerts") == 2
    assert value(text, "crswatch_records_queued_total", topic="other") == 1
    assert "MRN123" not in text


def test_two_instances_share_no_series() -> None:
    a, b = Metrics(), Metrics()
    a.dead_lettered("not_json")
    assert value(exported(a), "crswatch_dead_letters_total", reason="not_json") == 1
    assert value(exported(b), "crswatch_dead_letters_total", reason="not_json") == 0


def test_exposition_negotiates_openmetrics() -> None:
    m = Metrics()
    body, ctype = m.exposition("application/openmetrics-text; version=1.0.0")
    assert ctype.startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")
    body, ctype = m.exposition(None)
    assert ctype.startswith("text/plain") and b"crswatch_build_info{" in body


def test_metrics_file_of_an_embedded_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "metrics.prom"
    assert main(["replay", str(CASE_000), "--format", "jsonl", "--metrics-file", str(out)]) == 0
    capsys.readouterr()
    text = out.read_text()
    assert value(text, "crswatch_patients_crs_grade", grade="0") == 1
    assert total(text, "crswatch_events_ingested_total", outcome="applied") == 79
    assert value(text, "crswatch_alerts_emitted_total", kind="crs", severity="critical", status="firing") == 1
    # replay clock = the patient's newest event time: vitals and charting arrive in order,
    # labs arrive at their result time, 2 h after collection (cases/README.md)
    assert value(text, "crswatch_event_lag_seconds_sum", topic="treatments") == 0
    labs = value(text, "crswatch_event_lag_seconds_count", topic="labs")
    assert labs > 0
    assert value(text, "crswatch_event_lag_seconds_bucket", topic="labs", le="7200.0") == labs
    assert value(text, "crswatch_event_lag_seconds_sum", topic="labs") > 0
    assert not any(n.startswith("process_") for n, _ in samples(text))  # the CLI's process is not the worker


def test_alert_kinds_are_every_kind_the_fold_raises() -> None:
    source = (ROOT / "alerts" / "fold.py").read_text()
    raised = set(re.findall(r'em\.(?:alert|resolve)\(\s*"([a-z_]+)"', source))
    assert raised == set(ALERT_KINDS)


def test_patient_id_is_never_exported() -> None:
    m = Metrics()
    replay_files([CASE_000])
    r = Replayer(metrics=m)
    for n, line in enumerate(CASE_000.read_text().splitlines(), 1):
        r.feed(line, str(n))
    assert PATIENT_000 not in exported(m)
