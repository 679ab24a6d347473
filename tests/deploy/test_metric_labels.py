"""No label value of any exported series is a patient id or another unbounded value."""

from __future__ import annotations

import json
import re

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.case000 import CASE_000, CASE_004
from tests.deploy.conftest import exercise_metrics

# Every label name the worker exports, and the values it may take.
CLOSED = {
    "topic": {"vitals", "labs", "treatments", "unknown", "crs-alerts", "patient-state", "dead-letter", "other"},
    "kind": {"vitals", "oxygen", "infusion", "dose", "lab", "neuro", "context", "finding", "attribution",
             "retract", "unknown", "crs", "refractory_crs", "vasopressor_escalation", "inotrope", "oxygen_escalation",
             "ferritin_high", "ferritin_rapid_rise", "hypofibrinogenemia", "crp_ferritin_divergence", "iec_hs",
             "icans", "other"},
    "outcome": {"applied", "duplicate", "late", "rejected", "corrected", "retracted", "superseded", "other"},
    "reason": {"not_json", "unknown_kind", "missing_field", "invalid_value", "unsupported", "not_hl7",
               "processing_error", "other"},
    "severity": {"info", "warning", "high", "critical", "other"},
    "status": {"firing", "resolved"},
    "type": {"crs_grade", "iec_hs", "icans_grade", "alert", "retraction", "notice"},
    "grade": {"0", "1", "2", "3", "4"},
    "level": {"0", "1", "2", "3"},
    "format": {"fhir", "hl7v2", "other"},
}
# A label whose closed set depends on the metric.
CLOSED_FOR = {
    "crswatch_feed_units_total": {"outcome": {"accepted", "rejected", "ignored"}},
}
PATTERNED = {
    "le": re.compile(r"^(\+Inf|\d+(\.\d+)?(e[-+]?\d+)?)$"),
    "version": re.compile(r"^[0-9][0-9A-Za-z.+-]{0,31}$|^unknown$"),
    "python": re.compile(r"^\d+\.\d+\.\d+\w*$"),
}
ID_LIKE = [
    re.compile(r"\d{5,}"),  # MRN-like digit runs
    re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-"),  # UUID
    re.compile(r"\d{4}-\d{2}-\d{2}"),  # dates
    re.compile(r"[0-9a-f]{12,}"),  # hashes, hashed keys
]


def case_identifiers() -> set[str]:
    ids: set[str] = set()
    for path in (CASE_000, CASE_004):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            ids.update((row["patient_id"], row["event_id"]))
    return ids


def violations(text: str, identifiers: set[str]) -> list[str]:
    found = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            for name, v in s.labels.items():
                where = f"{s.name}{{{name}={v!r}}}"
                if v in identifiers or any(i in v for i in identifiers if len(i) >= 6):
                    found.append(f"{where}: a patient or event id")
                elif name in CLOSED:
                    if v not in CLOSED_FOR.get(s.name, {}).get(name, CLOSED[name]):
                        found.append(f"{where}: not in the closed set of {name}")
                elif name in PATTERNED:
                    if not PATTERNED[name].match(v):
                        found.append(f"{where}: unexpected form")
                else:
                    found.append(f"{where}: unknown label name")
                if name != "le" and (len(v) > 32 or any(p.search(v) for p in ID_LIKE)):
                    found.append(f"{where}: looks unbounded")
    return found


def test_no_exported_label_value_is_an_identifier_or_unbounded() -> None:
    text = exercise_metrics()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert len(names) >= 15  # the scan saw the whole exposition, not an empty one
    assert violations(text, case_identifiers()) == []


def test_the_scan_catches_a_patient_id_and_an_unbounded_value() -> None:
    r = CollectorRegistry()
    c = Counter("crswatch_bad", "a metric with a patient label", ("kind", "patient"), registry=r)
    c.labels("crs", "ruemmele-2025").inc()
    c.labels("MRN-00123456", "x").inc()
    feed = Counter("crswatch_feed_units", "an event outcome on a feed unit", ("format", "outcome"), registry=r)
    feed.labels("fhir", "applied").inc()
    found = violations(generate_latest(r).decode(), case_identifiers())
    assert any("crswatch_feed_units_total{outcome='applied'}" in f and "closed set" in f for f in found)
    assert any("ruemmele-2025" in f and "patient or event id" in f for f in found)
    assert any("unknown label name" in f for f in found)
    assert any("MRN-00123456" in f and "looks unbounded" in f for f in found)
