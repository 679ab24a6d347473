"""docker-compose.yml and the Dockerfile, checked against the repository and the worker's
settings (Docker cannot run where this is developed and tested)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.cli import build_parser
from streams.settings import ENV, from_env

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
    known = set(ENV.values())
    assert set(env) <= known, f"unknown settings: {set(env) - known}"
    settings = from_env(env)  # raises on any invalid value
    assert settings.broker_flavor == "kafka"  # no test-broker workarounds in production
    # the broker address is the kafka service and a port it advertises
    host, port = settings.broker.split(":")
    assert host in compose["services"]
    advertised = env_of(compose["services"][host])["KAFKA_ADVERTISED_LISTENERS"]
    assert f"//{host}:{port}" in advertised
    # the web port is published, and the data dir is a declared volume
    assert any(str(p).split(":")[-1] == str(settings.web_port) for p in worker["ports"])
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
    assert set(env_of(service)) <= set(ENV.values())


def test_dockerfile_copies_what_exists_and_exposes_the_web_port(compose: dict[str, Any]) -> None:
    text = (ROOT / "Dockerfile").read_text()
    for src in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for part in src.split():
            assert (ROOT / part).exists(), part
    packages = re.findall(r'"(\w+)"', re.search(r"packages = \[(.*)\]", (ROOT / "pyproject.toml").read_text())[1])
    copied = {Path(p).name for line in re.findall(r"^COPY (.+) \S+$", text, re.M) for p in line.split()}
    assert set(packages) <= copied, "every Python package the wheel needs is copied"
    exposed = re.search(r"^EXPOSE (\d+)", text, re.M)
    assert exposed and exposed[1] == env_of(compose["services"]["worker"])["CRSWATCH_WEB_PORT"]
    assert re.search(r'^ENTRYPOINT \["crswatch"\]', text, re.M)
    assert re.search(r"^USER (?!root)", text, re.M)
