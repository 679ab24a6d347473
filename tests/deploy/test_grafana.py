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


def unexported_panel_metrics(exposition: str) -> list[str]:
    """What the dashboards' panels (through the recording rules they use) and the recording
    rules query that the /metrics body `exposition` does not have a sample of; [] when all is
    there. Also used on the real worker's /metrics (tests/deploy/test_worker_end_to_end.py)."""
    exported = {s.name for f in text_string_to_metric_families(exposition) for s in f.samples}
    records = recording_rules()

    def missing(expr: str) -> set[str]:
        out = set()
        for name in metric_names(expr):
            if name in records:
                out |= missing(records[name])
            elif name not in exported and name not in PROMETHEUS_SERIES:
                out.add(name)
        return out

    found = []
    for dash_name, dash in dashboards().items():
        for p in panels(dash):
            for target in p.get("targets", []):
                if not metric_names(target["expr"]):
                    found.append(f"{dash_name} {p['title']!r}: no metric in {target['expr']!r}")
                elif gone := missing(target["expr"]):
                    found.append(f"{dash_name} {p['title']!r}: {sorted(gone)} not exported ({target['expr']!r})")
    # and every recording rule reads exported metrics only
    for name, expr in records.items():
        if gone := missing(expr):
            found.append(f"recording rule {name}: {sorted(gone)} not exported")
    return found


def test_every_panel_queries_metrics_the_worker_exports() -> None:
    dash = dashboards()
    assert set(dash) == {"crswatch.json"}
    titles = [p["title"] for p in panels(dash["crswatch.json"]) if p["type"] != "row"]
    for required in ("Patients by current CRS grade", "Event-time lag", "Dead letters", "Alerts raised"):
        assert any(required in t for t in titles), required
    assert sum(len(p.get("targets", [])) for p in panels(dash["crswatch.json"])) >= 10
    assert unexported_panel_metrics(exercise_metrics()) == []


def test_the_panel_check_catches_a_missing_metric() -> None:
    text = exercise_metrics()
    kept = "\n".join(line for line in text.splitlines() if "crswatch_fold_duration_seconds" not in line) + "\n"
    found = unexported_panel_metrics(kept)
    assert any("crswatch_fold_duration_seconds_bucket" in f for f in found), found
    assert unexported_panel_metrics("") != []
