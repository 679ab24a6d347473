"""deploy/grafana: the provisioning files and the dashboard, checked against the exported metrics."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.conftest import DASHBOARDS_DIR, DEPLOY, RULES_DIR, exercise_metrics

GRAFANA = DEPLOY / "grafana"
# Series Prometheus makes itself, not the worker (checked against the real Prometheus in
# tests/deploy/test_end_to_end.py).
PROMETHEUS_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
            "offset", "inf", "nan"}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in dashboard["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def dashboards() -> dict[str, dict[str, Any]]:
    return {f.name: json.loads(f.read_text()) for f in sorted(DASHBOARDS_DIR.glob("*.json"))}


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (label matchers, strings, ranges and groupings removed)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    tokens = re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:]|\s*\()", e)
    return {t.group(1) for t in tokens if t.group(1).lower() not in KEYWORDS}


def recording_rules() -> dict[str, str]:
    return {r["record"]: r["expr"] for f in sorted(RULES_DIR.glob("*.yml"))
            for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"] if "record" in r}


def test_metric_names_are_found_in_expressions() -> None:
    assert metric_names('sum by (le) (rate(crswatch_x_bucket{topic="a b"}[5m])) / on() crswatch:y') == {
        "crswatch_x_bucket", "crswatch:y"}
    assert metric_names('histogram_quantile(0.95, up{job="w"}) > 1e3') == {"up"}


def test_provisioning_files() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert ds["apiVersion"] == 1
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    prov = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "crswatch.yml").read_text())
    (provider,) = prov["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/var/lib/grafana/dashboards"
    for name, dash in dashboards().items():
        for p in panels(dash):
            if p["type"] != "row":
                assert p["datasource"]["uid"] == source["uid"], (name, p["title"])


def test_every_panel_queries_metrics_the_worker_exports() -> None:
    exported = {s.name for f in text_string_to_metric_families(exercise_metrics()) for s in f.samples}
    records = recording_rules()

    def missing(expr: str) -> set[str]:
        out = set()
        for name in metric_names(expr):
            if name in records:
                out |= missing(records[name])
            elif name not in exported and name not in PROMETHEUS_SERIES:
                out.add(name)
        return out

    dash = dashboards()
    assert set(dash) == {"crswatch.json"}
    titles = [p["title"] for p in panels(dash["crswatch.json"]) if p["type"] != "row"]
    for required in ("Patients by current CRS grade", "Event-time lag", "Dead letters", "Alerts raised"):
        assert any(required in t for t in titles), required
    for p in panels(dash["crswatch.json"]):
        for target in p.get("targets", []):
            assert metric_names(target["expr"]), target["expr"]
            assert missing(target["expr"]) == set(), (p["title"], target["expr"])
    # and every recording rule reads exported metrics only
    for name, expr in records.items():
        assert missing(expr) == set(), name
