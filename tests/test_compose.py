"""docker-compose.yml and the Dockerfile, checked against the repository and the worker's
settings (Docker cannot run where this is developed and tested)."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.cli import build_parser
from streams.observability.alertmanager import ENV_SECRET, ENV_SECRET_FILE, ENV_UNIT, ENV_URL
from streams.settings import ENV, from_env

KNOWN_ENV = {*ENV.values(), ENV_URL, ENV_SECRET, ENV_SECRET_FILE, ENV_UNIT}

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_services_kafka_worker_and_a_one_shot_publisher(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "worker", "publish-seeds"} <= set(services)
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    kenv = env_of(kafka)
    assert set(kenv["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}  # KRaft, one node
    assert services["publish-seeds"]["restart"] == "no"


def test_worker_is_built_from_the_dockerfile_and_its_settings_are_valid(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert (ROOT / worker["build"] / "Dockerfile").is_file()
    env = env_of(worker)
    assert set(env) <= KNOWN_ENV, f"unknown settings: {set(env) - KNOWN_ENV}"
    settings = from_env(env)  # raises on any invalid value
    assert settings.broker_flavor == "kafka"  # no test-broker workarounds in production
    # the broker address is the kafka service and a port it advertises
    host, port = settings.broker.split(":")
    assert host in compose["services"]
    advertised = env_of(compose["services"][host])["KAFKA_ADVERTISED_LISTENERS"]
    assert f"//{host}:{port}" in advertised
    # the web port is published, and the data dir is a declared volume
    assert any(str(p).split(":")[-1] == str(settings.web_port) for p in worker["ports"])
    # Alertmanager is the compose service, and the secret is required from the environment
    assert env[ENV_URL] == "http://alertmanager:9093" and "alertmanager" in compose["services"]
    assert env[ENV_SECRET].startswith("${CRSWATCH_PATIENT_KEY_SECRET:?")
    mounts = {v.split(":")[1]: v.split(":")[0] for v in worker["volumes"]}
    assert settings.data_dir in mounts and mounts[settings.data_dir] in compose["volumes"]
    assert settings.web_host == "0.0.0.0"  # reachable from other containers (Prometheus, later)


@pytest.mark.parametrize("name", ["worker", "publish-seeds", "alerts"])
def test_commands_are_crswatch_subcommands_with_files_that_exist(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    command = service["command"]
    argv = command if isinstance(command, list) else shlex.split(command)
    args = build_parser().parse_args(argv)
    for f in getattr(args, "files", []):
        assert (ROOT / f).is_file(), f
    assert service.get("image", "crswatch:latest") == compose["services"]["worker"]["image"]
    assert set(env_of(service)) <= KNOWN_ENV


def test_dockerfile_copies_what_exists_and_exposes_the_web_port(compose: dict[str, Any]) -> None:
    text = (ROOT / "Dockerfile").read_text()
    for src in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for part in src.split():
            assert (ROOT / part).exists(), part
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    packages = {name.split(".")[0] for name in listed}  # sub-packages come with their top-level folder
    copied = {Path(p).name for line in re.findall(r"^COPY (.+) \S+$", text, re.M) for p in line.split()}
    assert set(packages) <= copied, "every Python package the wheel needs is copied"
    exposed = re.search(r"^EXPOSE (\d+)", text, re.M)
    assert exposed and exposed[1] == env_of(compose["services"]["worker"])["CRSWATCH_WEB_PORT"]
    assert re.search(r'^ENTRYPOINT \["crswatch"\]', text, re.M)
    assert re.search(r"^USER (?!root)", text, re.M)


def test_monitoring_services_mount_the_deploy_files_and_scrape_the_worker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, image in (("prometheus", "prom/prometheus:"), ("alertmanager", "prom/alertmanager:"),
                        ("grafana", "grafana/grafana:")):
        assert services[name]["image"].startswith(image)
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
            else:
                assert source in compose["volumes"], source
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = [t for job in prom["scrape_configs"] if job["job_name"] == "crswatch-worker"
               for sc in job["static_configs"] for t in sc["targets"]]
    web_port = env_of(services["worker"])["CRSWATCH_WEB_PORT"]
    assert targets == [f"worker:{web_port}"]
    am = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["alertmanager:9093"]
    assert "/etc/prometheus/rules:ro" in " ".join(services["prometheus"]["volumes"])
    assert any(rf.startswith("/etc/prometheus/rules/") for rf in prom["rule_files"])


def test_grafana_provisioning_matches_its_mounts(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/crswatch.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert mounts[path] == "./deploy/grafana/dashboards"
    datasource = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    url = datasource["datasources"][0]["url"]
    assert url == "http://prometheus:9090" and "prometheus" in compose["services"]
