"""deploy/prometheus: promtool checks the config and the rules and runs their unit tests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, PROM_CONFIG, RULE_TESTS_DIR, RULES_DIR, promtool, run_tool

RUNBOOK = DEPLOY / "RUNBOOK.md"


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def unit_test_files() -> list[Path]:
    return sorted(RULE_TESTS_DIR.glob("*.yml"))


def alerting_rules() -> list[dict[str, Any]]:
    return [r for f in rule_files() for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]
            if "alert" in r]


@pytest.mark.binaries
def test_promtool_checks_the_rules_and_the_config() -> None:
    out = run_tool([promtool(), "check", "rules", *map(str, rule_files())])
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("SUCCESS") == len(rule_files())
    out = run_tool([promtool(), "check", "config", "--syntax-only", str(PROM_CONFIG)])
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.binaries
def test_promtool_unit_tests_pass() -> None:
    out = run_tool([promtool(), "test", "rules", *map(str, unit_test_files())])
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("SUCCESS") == len(unit_test_files())


def test_every_alerting_rule_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for f in unit_test_files():
        for group in yaml.safe_load(f.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {r["alert"] for r in alerting_rules()}
    assert names - firing == set(), "never tested firing"
    assert names - silent == set(), "never tested not firing"


def test_every_alert_has_severity_category_summary_and_a_runbook_section() -> None:
    anchors = {re.sub(r"[^a-z0-9-]", "", h.strip().lower().replace(" ", "-"))
               for h in re.findall(r"^#+ (.+)$", RUNBOOK.read_text(), re.M)}
    for r in alerting_rules():
        assert r["labels"]["severity"] in ("warning", "high", "critical"), r["alert"]
        assert r["labels"]["category"] in ("service", "clinical"), r["alert"]
        assert r["annotations"]["summary"], r["alert"]
        path, anchor = r["annotations"]["runbook_url"].split("#")
        assert path == "deploy/RUNBOOK.md" and anchor in anchors, r["alert"]


@pytest.mark.binaries
def test_the_unit_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """Guard against tests that cannot fail: the same tests on a rule with a wrong threshold fail."""
    rules = tmp_path / "rules"
    tests = tmp_path / "tests"
    rules.mkdir()
    tests.mkdir()
    for f in rule_files():
        text = f.read_text()
        if f.name == "crswatch-clinical.yml":
            text = text.replace('{grade=~"3|4"}) > 0', '{grade=~"3|4"}) > 1')
            assert '> 1' in text
        (rules / f.name).write_text(text)
    clinical = RULE_TESTS_DIR / "clinical_test.yml"
    (tests / clinical.name).write_text(clinical.read_text())
    out = run_tool([promtool(), "test", "rules", str(tests / clinical.name)])
    assert out.returncode != 0 and "CrswatchPatientsCrsGrade3OrAbove" in out.stdout + out.stderr


@pytest.mark.binaries
def test_the_local_config_loads_its_rules_and_scrapes_only_loopback() -> None:
    local = PROM_CONFIG.with_name("prometheus-local.yml")
    out = run_tool([promtool(), "check", "config", str(local)])  # not --syntax-only: the rule files load
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rule_files())} rule files found" in out.stdout + out.stderr
    doc = yaml.safe_load(local.read_text())
    targets = [t for job in doc["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    targets += [t for am in doc["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]]
    assert targets and all(t.startswith("127.0.0.1:") for t in targets)
    assert {job["job_name"] for job in doc["scrape_configs"]} >= {"crswatch-worker", "crswatch-mllp"}
