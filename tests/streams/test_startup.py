"""Worker start-up on the test broker: the flavor is detected (Tansu's settings make a join take
seconds, not half a minute), and each phase is logged at INFO with its time (bench/startup.py
measures the seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import Settings, detect_flavor
from tests.broker import free_port
from tests.streams.conftest import Worker


def _ready(worker: Worker) -> bool:
    try:
        return bool(worker.get("/crswatch/ready/").get("ready"))
    except (OSError, ValueError):
        return False


@pytest.mark.broker
def test_the_worker_detects_the_test_broker_and_logs_each_start_up_phase(fresh_broker: str, tmp_path: Path) -> None:
    worker = Worker(fresh_broker, tmp_path / "data", extra_env={"CRSWATCH_BROKER_FLAVOR": "auto"})
    try:
        worker.wait_for(lambda: _ready(worker), timeout=60, what="ready")
        worker.wait_for(lambda: "start-up: changelog recovered, ready after" in worker.tail(), timeout=10,
                        what="the ready phase in the log")
    finally:
        worker.stop()
    log = worker.log_path.read_text(errors="replace")
    phases = [line.split("start-up: ", 1)[1] for line in log.splitlines() if "start-up: " in line]
    assert [p.split(" after ")[0].split(" (")[0] for p in phases] == [
        "broker flavor tansu", "app built", "group joined, partitions assigned", "changelog recovered, ready"]
    assert "auto: cluster id 'tansu_cluster' is Tansu's" in phases[0]
    assert all(" s (+" in p for p in phases)


def test_a_set_flavor_is_kept_and_an_unreachable_broker_is_taken_for_kafka() -> None:
    assert detect_flavor(Settings(broker_flavor="kafka")) == ("kafka", "set")
    assert detect_flavor(Settings(broker_flavor="tansu")) == ("tansu", "set")
    flavor, why = detect_flavor(Settings(broker=f"127.0.0.1:{free_port()}"), timeout=1.0)
    assert flavor == "kafka" and why.startswith("auto: cluster id not read")
    assert detect_flavor(Settings(security_protocol="SSL"))[0] == "kafka"


@pytest.mark.broker
def test_a_second_app_id_is_warned_about_at_start(fresh_broker: str, tmp_path: Path) -> None:
    worker = Worker(fresh_broker, tmp_path / "data", extra_env={"CRSWATCH_APP_ID": "crswatch-test-2"})
    try:
        worker.wait_for(lambda: "start-up: app id 'crswatch-test-2' is not the default" in worker.tail(),
                        timeout=60, what="the app id warning")
    finally:
        worker.stop()
    assert "readers see those alerts again" in worker.log_path.read_text(errors="replace")
