"""Real Prometheus, Alertmanager and a webhook receiver on 127.0.0.1, for the deploy tests.

The binaries are Debian's `prometheus`, `promtool`, `prometheus-alertmanager` (or upstream
`alertmanager`) and `amtool`; `make test` and `.ci/run` install them. A missing binary
fails the tests: it is never a skip.

The servers run from configs generated out of the deploy/ files (same jobs, rules, routes,
receivers and inhibitions), changed only where a test must: 127.0.0.1 addresses, 1 s
scrape and evaluation intervals, 1 s group waits, webhooks pointed at the local receiver.

    def test_x(start_alertmanager, start_prometheus, webhook):
        am = start_alertmanager(webhook.url)
        prom = start_prometheus(["127.0.0.1:6066"], alertmanager=am.address)
        prom.wait_for_value('up{job="crswatch-worker"}', 1)
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.broker import free_port
from tests.http_recorder import Recorder, recording_server

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROM_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
RULES_DIR = DEPLOY / "prometheus" / "rules"
RULE_TESTS_DIR = DEPLOY / "prometheus" / "tests"
AM_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
DASHBOARDS_DIR = DEPLOY / "grafana" / "dashboards"
WORKER_JOB = "crswatch-worker"
STARTUP_SECONDS = 30.0


def binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(f"{' or '.join(names)} not found: `make test` installs Debian's prometheus and "
                "prometheus-alertmanager (apt-get install prometheus prometheus-alertmanager)")


def promtool() -> str:
    return binary("promtool")


def amtool() -> str:
    return binary("amtool")




def http_json(url: str, data: bytes | None = None) -> Any:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read() or b"null")


def wait_until(check: Callable[[], Any], what: str, timeout: float = STARTUP_SECONDS) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as exc:  # not listening yet, or answering 503 while starting
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; last: {last!r}")


@dataclass
class Server:
    name: str
    address: str  # 127.0.0.1:port
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _start(name: str, argv: list[str], address: str, log: Path) -> Server:
    fh = log.open("wb")
    proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT)
    fh.close()
    server = Server(name, address, proc, log)

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"{name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as resp:
            return bool(resp.status == 200)

    try:
        wait_until(ready, f"{name} on {address}")
    except BaseException:
        server.stop()
        raise
    return server


@dataclass
class Prometheus(Server):
    def query(self, expr: str) -> list[dict[str, Any]]:
        q = urllib.parse.urlencode({"query": expr})
        body = http_json(f"{self.url}/api/v1/query?{q}")
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        if not result:
            return None
        assert len(result) == 1, result
        return float(result[0]["value"][1])

    def wait_for_value(self, expr: str, expected: float, timeout: float = STARTUP_SECONDS) -> None:
        wait_until(lambda: self.value(expr) == expected, f"{expr} == {expected}", timeout)

    def alerts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = http_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]
        return result


@dataclass
class Alertmanager(Server):
    def alerts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = http_json(f"{self.url}/api/v2/alerts")
        return result


def prometheus_config(targets: list[str], alertmanager: str | None, self_address: str) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with test addresses and 1 s intervals."""
    cfg: dict[str, Any] = yaml.safe_load(PROM_CONFIG.read_text())
    cfg["global"].update(scrape_interval="1s", evaluation_interval="1s")
    cfg["rule_files"] = [str(RULES_DIR / "*.yml")]
    if alertmanager:
        cfg["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [alertmanager]}]
    else:
        del cfg["alerting"]
    for job in cfg["scrape_configs"]:
        job["static_configs"] = [{"targets": targets if job["job_name"] == WORKER_JOB else [self_address]}]
    assert any(job["job_name"] == WORKER_JOB for job in cfg["scrape_configs"])
    return cfg


def alertmanager_config(webhook_url: str) -> dict[str, Any]:
    """deploy/alertmanager/alertmanager.yml with every webhook at `webhook_url` + /<receiver>
    and 1 s group timings; routes, matchers, receivers and inhibitions unchanged."""
    cfg: dict[str, Any] = copy.deepcopy(yaml.safe_load(AM_CONFIG.read_text()))
    for receiver in cfg["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook_url}/{receiver['name']}"

    def fast(route: dict[str, Any]) -> None:
        for key, value in (("group_wait", "1s"), ("group_interval", "1s")):
            if key in route or route is cfg["route"]:
                route[key] = value
        for child in route.get("routes", []):
            fast(child)

    fast(cfg["route"])
    return cfg


@pytest.fixture
def webhook() -> Iterator[Recorder]:
    """A local webhook receiver: records (path = /<receiver name>, notification JSON)."""
    with recording_server() as rec:
        yield rec


@pytest.fixture
def start_alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Alertmanager]]:
    started: list[Server] = []

    def start(webhook_url: str) -> Alertmanager:
        d = tmp_path_factory.mktemp("alertmanager")
        config = d / "alertmanager.yml"
        config.write_text(yaml.safe_dump(alertmanager_config(webhook_url)))
        address = f"127.0.0.1:{free_port()}"
        s = _start("alertmanager", [
            binary("prometheus-alertmanager", "alertmanager"), f"--config.file={config}",
            f"--storage.path={d / 'data'}", f"--web.listen-address={address}", "--cluster.listen-address=",
        ], address, d / "log")
        am = Alertmanager(s.name, s.address, s.proc, s.log)
        started.append(am)
        return am

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def start_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Prometheus]]:
    """start_prometheus(targets, alertmanager=None): scrape `targets` as job crswatch-worker."""
    started: list[Server] = []

    def start(targets: list[str], alertmanager: str | None = None) -> Prometheus:
        d = tmp_path_factory.mktemp("prometheus")
        address = f"127.0.0.1:{free_port()}"
        config = d / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config(targets, alertmanager, address)))
        s = _start("prometheus", [
            binary("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={d / 'data'}",
            f"--web.listen-address={address}",
        ], address, d / "log")
        p = Prometheus(s.name, s.address, s.proc, s.log)
        started.append(p)
        return p

    yield start
    for s in started:
        s.stop()


def run_tool(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)


def exercise_metrics() -> str:
    """The worker's exposition after both seed cases, one bad line, one duplicate, one event
    beyond the lateness window, records published, and the alert sink posting to a local
    receiver: every metric family has samples."""
    from streams.feeds.inputs import read_lines
    from streams.observability.alertmanager import AlertmanagerSink, SinkConfig
    from streams.observability.metrics import Metrics
    from streams.replay import Replayer
    from tests.case000 import CASE_000, CASE_004

    m = Metrics()
    replayer = Replayer(metrics=m)
    lines = list(read_lines([CASE_004, CASE_000]))
    with recording_server() as rec:
        sink = AlertmanagerSink(SinkConfig(url=rec.url, secret=b"label-scan"), m)
        sink.start()
        for source, line in lines:
            records = replayer.feed(line, source)
            sink.submit(records)
            m.queued("crs-alerts", len(records))
            m.published("crs-alerts", len(records))
        replayer.feed(lines[-1][1], "duplicate")
        late = json.loads(lines[-1][1])
        late.update(event_id="late-1", time="2024-01-01T00:00:00+00:00")
        replayer.feed(json.dumps(late), "late")
        replayer.feed("{not json", "bad")
        assert sink.flush()
        sink.close()
    assert replayer.outcomes["late"] == 1 and replayer.outcomes["duplicate"] == 1
    body, _ = m.exposition()
    return body.decode()
