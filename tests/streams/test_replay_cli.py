"""`crswatch replay`: the embedded replay as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.cli import main

CASES = Path(__file__).resolve().parents[2] / "cases"


def test_jsonl_records_have_the_documented_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(CASES / "ruemmele-2025.jsonl"), "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = {r["type"] for r in rows}
    assert {"crs_grade", "iec_hs", "alert"} <= kinds
    for r in rows:
        if r["type"] == "crs_grade":
            assert {"patient_id", "time", "day", "grade", "previous", "evidence"} <= r.keys()
        elif r["type"] == "iec_hs":
            assert {"patient_id", "time", "day", "level", "evidence"} <= r.keys()
        elif r["type"] == "alert":
            assert {"id", "kind", "severity", "patient_id", "time", "day", "evidence"} <= r.keys()
            assert r["evidence"], r["id"]
    grade4 = [r for r in rows if r["type"] == "crs_grade" and r["grade"] == 4]
    assert grade4 and grade4[0]["day"] == 21


def test_text_timeline_is_day_by_day(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(CASES / "ruemmele-2025.jsonl"), str(CASES / "mcnerney-2022.jsonl")]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "=== patient ruemmele-2025 ===" in out and "=== patient mcnerney-2022 ===" in out
    assert "\nDay +21\n" in out and "CRS grade 3 -> 4" in out
    # the one summary line (stderr): input units and the events they gave, counted apart
    assert "2 files, 127 input units: 127 accepted, 0 rejected, 0 ignored; 127 events: 127 applied" in captured.err


def test_bad_lines_are_reported_and_do_not_stop_the_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = (CASES / "mcnerney-2022.jsonl").read_text().splitlines()
    f = tmp_path / "mixed.jsonl"
    f.write_text("\n".join([good[0], "{not json", '{"kind": "teleport"}', *good[1:]]) + "\n")
    assert main(["replay", str(f), "--format", "jsonl"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("crswatch: rejected") == 2 and "not valid JSON" in captured.err
    assert '"grade":4' in captured.out.replace(" ", "")


def test_config_file_overrides_thresholds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "site.toml"
    cfg.write_text("ferritin_high_ng_ml = 200000.0\n")
    assert main(["replay", str(CASES / "mcnerney-2022.jsonl"), "--format", "jsonl", "--config", str(cfg)]) == 0
    kinds = {json.loads(line).get("kind") for line in capsys.readouterr().out.splitlines()}
    assert "ferritin_high" in kinds  # >202,000 is still above 200,000
    cfg.write_text("ferritin_high_ng_ml = 250000.0\n")
    assert main(["replay", str(CASES / "mcnerney-2022.jsonl"), "--format", "jsonl", "--config", str(cfg)]) == 0
    kinds = {json.loads(line).get("kind") for line in capsys.readouterr().out.splitlines()}
    assert "ferritin_high" not in kinds  # >202,000 cannot be placed above 250,000


def test_missing_file_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "does-not-exist.jsonl"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_strict_adds_full_fhir_and_hl7_library_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = {"resourceType": "Observation", "id": "hr-1", "status": "final", "subject": {"reference": "Patient/p1"},
           "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
           "effectiveDateTime": "2024-01-01T10:00:00+00:00",
           "valueQuantity": {"value": 80, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}
    not_r4 = json.loads(json.dumps(res)) | {"id": "hr-2"}
    not_r4["valueQuantity"]["valu"] = 3  # not an R4 element; the contract checks do not read it
    f = tmp_path / "feed.ndjson"
    f.write_text(json.dumps(res) + "\n" + json.dumps(not_r4) + "\n")
    assert main(["replay", str(f), "--format", "jsonl"]) == 0
    assert "crswatch: rejected" not in capsys.readouterr().err
    assert main(["replay", str(f), "--format", "jsonl", "--strict"]) == 0
    err = capsys.readouterr().err
    assert err.count("crswatch: rejected") == 1 and f"{f}:2" in err and "not a valid FHIR R4 Observation" in err



def test_text_timeline_clock_times_are_local_to_the_infusion(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 15 item 13: CAR-T at 20:00 -05:00 and a fever at 09:00 the next local morning: Day +1 09:00."""
    rows = [
        {"event_id": "d0", "kind": "dose", "time": "2024-03-01T20:00:00-05:00", "drug": "tisagenlecleucel"},
        {"event_id": "t1", "kind": "vitals", "time": "2024-03-02T09:00:00-05:00",
         "temperature": {"value": 38.9, "unit": "Cel"}},
    ]
    path = tmp_path / "local.jsonl"
    path.write_text("".join(json.dumps({"patient_id": "p", "provenance": {"source": "t"}, **r}) + "\n" for r in rows))
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    assert "(clock times UTC-05:00" in out
    assert "\nDay +1\n  09:00  CRS grade 0 -> 1" in out
