"""What a new user meets first: the thresholds file, a wrong broker address, a pipe into `head`, MLLP
rejections in the metrics, and replayed history that must not look like a late feed."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from alerts.config import Thresholds
from streams.observability.metrics import Metrics
from streams.settings import ConfigError, load_thresholds, thresholds_toml
from streams.topics import REPLAY_HEADER
from streams.worker.runtime import _replayed
from tests.broker import free_port
from tests.streams.test_mllp import exchange, frame, msa

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "cases" / "mcnerney-2022.jsonl"


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


# ---------------------------------------------------------------- the thresholds file


def test_the_shipped_example_config_is_the_generated_one_and_loads_to_the_defaults() -> None:
    shipped = (ROOT / "examples" / "site.toml").read_text(encoding="utf-8")
    assert shipped == thresholds_toml(), "regenerate: crswatch config > examples/site.toml"
    data = tomllib.loads(shipped)
    assert set(data) == set(Thresholds.model_fields)
    assert Thresholds(**data) == Thresholds()
    assert "# unit: degC\nfever_c = 38.0" in shipped and "IN-HOUSE DEFAULT" in shipped
    assert cli("config").stdout == shipped


@pytest.mark.parametrize("text,needle", [
    ("fever_cc = 38.5\n", "unknown key 'fever_cc'; did you mean fever_c?"),
    ("fever_c = \"high\"\n", "fever_c = 'high' is not accepted"),
    ("fever_c = [\n", "not valid TOML"),
])
def test_a_bad_thresholds_file_is_one_line_naming_the_key(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "site.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"site\.toml"):
        load_thresholds(path)
    done = cli("replay", str(SEED), "--config", str(path))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and needle in done.stderr and "Traceback" not in done.stderr


def test_a_missing_thresholds_file_says_where_the_example_is(tmp_path: Path) -> None:
    done = cli("replay", str(SEED), "--config", str(tmp_path / "site.toml"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "cannot read the thresholds file" in done.stderr and "examples/site.toml" in done.stderr


def test_the_worker_refuses_a_bad_thresholds_file_before_it_starts(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text("ferritin_uln = 500\n")
    done = cli("worker", "--broker", "127.0.0.1:1", "--config", str(path), timeout=30)
    assert done.returncode == 2 and "unknown key 'ferritin_uln'" in done.stderr
    assert "ferritin_uln_ng_ml" in done.stderr and "Traceback" not in done.stderr


def test_config_check_says_ok(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text("fever_c = 38.3\n")
    assert cli("config", "--check", str(path)).stdout.strip() == f"{path}: ok"


# ---------------------------------------------------------------- a wrong broker address


@pytest.mark.parametrize("command", [["publish", str(SEED)], ["alerts"], ["mllp", "--port", "0"]])
def test_a_wrong_broker_address_fails_fast_in_one_line(command: list[str]) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    started = time.monotonic()
    done = cli(*command, "--broker", address, timeout=30)
    assert time.monotonic() - started < 10
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"cannot reach the Kafka broker ({address}:" in done.stderr and "CRSWATCH_BROKER" in done.stderr


# ---------------------------------------------------------------- output into a pipe


def test_a_replay_piped_into_head_ends_quietly() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "replay", "--format", "jsonl",
                             *map(str, sorted((ROOT / "cases").glob("*.jsonl")))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()  # what `head -c 10` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err


# ---------------------------------------------------------------- MLLP rejections in the metrics


def test_mllp_rejections_reach_the_dead_letter_metric(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "mllp", "--port", str(port), "--out",
                             str(tmp_path / "events.jsonl"), "--metrics-port", str(metrics_port)],
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stderr is not None
        while "listening" not in proc.stderr.readline():
            assert proc.poll() is None
        acks = exchange(port, frame("this is not HL7"), frame("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\r"))
        assert [msa(a)[1] for a in acks] == ["AR", "AR"]
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        assert 'crswatch_dead_letters_total{reason="not_hl7"} 1.0' in text
        assert 'crswatch_dead_letters_total{reason="unsupported"} 1.0' in text
        assert 'crswatch_feed_units_total{format="hl7v2",outcome="rejected"} 2.0' in text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ---------------------------------------------------------------- replayed history and the lag alert


def test_replayed_history_is_folded_but_not_measured_as_feed_lag() -> None:
    m = Metrics(process_metrics=False)
    now = time.time()
    m.observe_event("vitals", "vitals", "applied", now - 86400 * 365, now, replayed=True)
    m.observe_event("vitals", "vitals", "applied", now - 30, now)
    text = m.exposition()[0].decode()
    assert 'crswatch_event_lag_seconds_count{topic="vitals"} 1.0' in text
    assert 'crswatch_events_ingested_total{kind="vitals",outcome="applied",topic="vitals"} 2.0' in text
    assert _replayed(SimpleNamespace(headers=[(REPLAY_HEADER, b"1")]))
    assert _replayed(SimpleNamespace(headers={REPLAY_HEADER: b"1"}))
    assert not _replayed(SimpleNamespace(headers=[]))
    assert not _replayed(SimpleNamespace(headers=None))


# ---------------------------------------------------------------- export round trips through HL7 v2


def test_export_hl7_reads_back_to_the_same_vitals_and_labs(tmp_path: Path) -> None:
    from models.events import LabResult, VitalSigns, parse_event
    from streams.feeds.export import to_hl7
    from streams.feeds.hl7v2 import normalise_hl7

    out = tmp_path / "case.hl7"
    done = cli("export", str(SEED), "--format", "hl7", "-o", str(out))
    assert done.returncode == 0 and "have no ORU^R01 form" in done.stderr
    native = [parse_event(line) for line in SEED.read_text().splitlines() if line.strip()]
    want = sorted((e.kind, e.ts, e.model_dump_json(include={"temperature", "sbp", "heart_rate", "spo2", "analyte",
                                                             "value", "unit"}))
                  for e in native if isinstance(e, (VitalSigns, LabResult)) and to_hl7(e, e.event_id) is not None)
    read = normalise_hl7(out.read_text(), "export")
    assert not read.rejected
    got = sorted((e.kind, e.ts, e.model_dump_json(include={"temperature", "sbp", "heart_rate", "spo2", "analyte",
                                                            "value", "unit"}))
                 for e in read.events)
    assert len(want) >= 8 and got == want
    assert f"exported {len(want)} events as HL7 v2" in done.stderr


# ---------------------------------------------------------------- reading the text timeline

_LATE = [
    '{"event_id": "d0", "patient_id": "p1", "kind": "dose", "time": "2024-01-01T10:00:00+00:00", '
    '"drug": "tisagenlecleucel", "drug_class": "car_t", "provenance": {"source": "t"}}',
    '{"event_id": "v2", "patient_id": "p1", "kind": "vitals", "time": "2024-01-03T10:00:00+00:00", '
    '"temperature": {"value": 38.6, "unit": "Cel"}, "provenance": {"source": "t"}}',
    # arrives after v2 but happened an hour before it: the onset moves to 09:00
    '{"event_id": "v1", "patient_id": "p1", "kind": "vitals", "time": "2024-01-03T09:00:00+00:00", '
    '"temperature": {"value": 38.4, "unit": "Cel"}, "provenance": {"source": "t"}}',
    '{"event_id": "x1", "patient_id": "p2", "kind": "vitals", "time": "2024-01-03T09:00:00+00:00", '
    '"temperature": {"value": 39.0, "unit": "Cel"}, "provenance": {"source": "t"}}',
]


def test_corrections_follow_what_they_correct_and_retractions_name_a_printed_record(tmp_path: Path) -> None:
    path = tmp_path / "late.jsonl"
    path.write_text("\n".join(_LATE) + "\n")
    text = cli("replay", "--order", "file", str(path)).stdout  # as a live feed delivered them
    p1 = text.split("=== patient p1 ===")[1].split("=== patient")[0]
    original = p1.index("10:00  CRS grade 0 -> 1 (episode 1)\n")
    correction = p1.index("09:00  CRS grade 0 -> 1 (episode 1) (correction)")
    retraction = p1.index("RETRACTED CRS grade 0 -> 1 of Day +2 10:00 (above)")
    assert original < correction < retraction
    assert p1.count("no CAR-T administration") == 0
    p2 = text.split("=== patient p2 ===")[1]
    assert p2.count("no CAR-T administration in the input for this patient") == 1 and "Day ?" in p2


def test_the_legend_explains_every_mark_the_timeline_uses() -> None:
    done = cli("replay", "--legend")
    assert done.returncode == 0
    for mark in ("Day ?", "(late)", "(correction)", "RETRACTED", "NOTICE", "[U]", "[V2]", "uncertain", "=> now:"):
        assert mark in done.stdout, mark
    assert "crswatch replay --legend" in cli("replay", str(SEED)).stdout.splitlines()[0]
