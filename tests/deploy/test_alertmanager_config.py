"""deploy/alertmanager: amtool checks the config and tests the routing tree."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from models.records import Alert
from streams.observability.alertmanager import SinkConfig, to_am_alert
from streams.replay import Replayer
from tests.case000 import replay_in_two_parts
from tests.deploy.conftest import AM_CONFIG, RULES_DIR, amtool, run_tool

pytestmark = pytest.mark.binaries


def route(labels: dict[str, str], receiver: str | None = None) -> tuple[int, str]:
    argv = [amtool(), "config", "routes", "test", f"--config.file={AM_CONFIG}"]
    if receiver:
        argv.append(f"--verify.receivers={receiver}")
    out = run_tool([*argv, *(f"{k}={v}" for k, v in labels.items())])
    return out.returncode, out.stdout.strip()


def test_amtool_check_config() -> None:
    out = run_tool([amtool(), "check-config", str(AM_CONFIG)])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout and "2 inhibit rules" in out.stdout


PATIENT = {"category": "clinical", "patient_key": "0123456789abcdef", "episode": "3"}
CASES = [
    ({**PATIENT, "alertname": "crs", "severity": "critical", "level": "4"}, "clinical-page"),
    ({**PATIENT, "alertname": "refractory_crs", "severity": "critical", "level": "1"}, "clinical-page"),
    ({**PATIENT, "alertname": "crs", "severity": "high", "level": "3"}, "clinical-urgent"),
    ({**PATIENT, "alertname": "iec_hs", "severity": "warning", "level": "1"}, "clinical-ward"),
    ({**PATIENT, "alertname": "crs", "severity": "info", "level": "down3"}, "crswatch-log"),
    ({"alertname": "CrswatchPatientsCrsGrade3OrAbove", "category": "clinical", "scope": "ward",
      "severity": "high"}, "clinical-ward"),
    ({"alertname": "CrswatchWorkerDown", "category": "service", "severity": "critical"}, "ops-page"),
    ({"alertname": "CrswatchInputFeedSilent", "category": "service", "severity": "warning"}, "ops-ticket"),
    ({"alertname": "SomethingElse", "severity": "critical"}, "crswatch-log"),
]


@pytest.mark.parametrize(("labels", "receiver"), CASES, ids=[f"{c[0]['alertname']}-{c[1]}" for c in CASES])
def test_routing(labels: dict[str, str], receiver: str) -> None:
    rc, out = route(labels, receiver)
    assert rc == 0 and out == receiver, out


def test_a_wrong_expectation_fails() -> None:
    rc, out = route(CASES[0][0], "clinical-ward")
    assert rc != 0 and out != "clinical-ward"


def test_the_sinks_labels_for_case_000_grade_4_route_to_the_pager() -> None:
    records = next(replay_in_two_parts(Replayer()))
    grade4 = next(r for r in records if isinstance(r, Alert) and r.kind == "crs" and r.level == "4")
    am = to_am_alert(grade4, SinkConfig(url="http://127.0.0.1:1", secret=b"k", unit="haem-4"), now=2e9)
    rc, out = route(am.labels, "clinical-page")
    assert rc == 0, out


def rules() -> list[dict[str, Any]]:
    return [r for f in sorted(RULES_DIR.glob("*.yml")) for g in yaml.safe_load(f.read_text())["groups"]
            for r in g["rules"] if "alert" in r]


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_every_prometheus_alert_reaches_its_team(rule: dict[str, Any]) -> None:
    labels = {"alertname": rule["alert"], **rule["labels"]}
    expected = {
        ("service", "critical"): "ops-page",
        ("service", "warning"): "ops-ticket",
        ("clinical", "high"): "clinical-ward",
    }[(labels["category"], labels["severity"])]
    rc, out = route(labels, expected)
    assert rc == 0, out
