"""Format detection, normalise(), export, and both seed cases as FHIR R4 and as HL7 v2."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from models.events import ClinicalEvent, parse_event
from models.records import Record, record_key
from streams.cli import main
from streams.feeds.export import to_fhir, to_hl7
from streams.feeds.fhir import normalise_fhir
from streams.feeds.hl7v2 import normalise_hl7
from streams.feeds.inputs import detect_format, normalise
from streams.replay import Replayer
from tests.test_seed_cases import effective, grades_by_day

CASES = Path(__file__).resolve().parents[3] / "cases"
SEEDS = [CASES / "ruemmele-2025.jsonl", CASES / "mcnerney-2022.jsonl"]


def native(path: Path) -> list[ClinicalEvent]:
    return [parse_event(line) for line in path.read_text().splitlines() if line.strip()]


def replay(events: list[ClinicalEvent]) -> list[Record]:
    r = Replayer()
    out: list[Record] = []
    for e in events:
        out += r.apply(e).records
    return out


def test_detect_format() -> None:
    assert detect_format(b'{"kind": "vitals", "event_id": "x"}\n') == "native"
    assert detect_format('{"resourceType": "Observation"}') == "fhir"
    assert detect_format(b'{\n  "resourceType": "Bundle"\n}') == "fhir"
    assert detect_format(b"\x0bMSH|^~\\&|A") == "hl7v2"
    assert detect_format("FHS|^~\\&|\rBHS|^~\\&|\rMSH|^~\\&|") == "hl7v2"


def test_normalise_is_the_one_entry_point() -> None:
    line = (CASES / "mcnerney-2022.jsonl").read_text().splitlines()[1]
    n = normalise(line.encode())
    assert [e.event_id for e in n.events] == ["m22-002"] and n.units == n.accepted == 1
    bad = normalise(b'{"kind": "vitals"}', "native")
    assert bad.rejected[0].category == "missing_field"
    dead = bad.rejected[0].dead_letter()
    assert set(dead) == {"topic", "partition", "offset", "key", "source", "raw", "raw_encoding", "reason",
                         "category", "time"}
    assert dead["raw"] == '{"kind": "vitals"}' and dead["raw_encoding"] == "utf-8"
    binary = normalise(b"\xff\xfe\x00garbage", "fhir")
    assert binary.rejected[0].category == "not_json"
    letter = binary.rejected[0].dead_letter()
    assert letter["raw_encoding"] == "base64" and base64.b64decode(str(letter["raw"])) == b"\xff\xfe\x00garbage"


# ---------------------------------------------------------------- FHIR R4: round trip and replay


@pytest.mark.parametrize("case", SEEDS, ids=lambda p: p.stem)
def test_seed_case_round_trips_through_fhir(case: Path) -> None:
    events = native(case)
    standard = 0
    for ev in events:
        res, is_standard = to_fhir(ev)
        standard += is_standard
        n = normalise_fhir(json.dumps(res), "export", strict=True)  # also valid R4 structure (fhir.resources)
        assert not n.rejected, n.rejected[0].reason
        assert [e.model_dump(mode="json") for e in n.events] == [ev.model_dump(mode="json")]
    kinds = {ev.kind for ev in events if to_fhir(ev)[1]}
    assert standard >= 20 and {"vitals", "lab", "dose", "infusion", "oxygen"} <= kinds


@pytest.mark.parametrize("case", SEEDS, ids=lambda p: p.stem)
def test_seed_case_as_fhir_replays_to_the_same_records(case: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"{case.stem}.ndjson"
    assert main(["export", "--format", "fhir", str(case), "-o", str(out)]) == 0
    assert "as contract resources" in capsys.readouterr().err
    assert main(["replay", str(case), "--format", "jsonl"]) == 0
    expected = capsys.readouterr().out
    assert main(["replay", str(out), "--format", "jsonl"]) == 0  # detected as FHIR from the content
    assert capsys.readouterr().out == expected
    assert main(["replay", str(out), "--format", "jsonl", "--input-format", "fhir"]) == 0
    assert capsys.readouterr().out == expected


def test_only_the_contract_part_as_fhir_and_the_rest_native_gives_the_same_grades() -> None:
    for case in SEEDS:
        events = native(case)
        mixed: list[ClinicalEvent] = []
        for ev in events:
            res, is_standard = to_fhir(ev)
            if is_standard:
                res["extension"] = []  # as a hospital would send it: no crswatch identity
                mixed += normalise_fhir(json.dumps(res), "hospital").events
            else:
                mixed.append(ev)
        assert [record_key(r) for r in effective(replay(mixed))] == [record_key(r) for r in effective(replay(events))]


# ---------------------------------------------------------------- HL7 v2: vitals and labs


@pytest.mark.parametrize("case", SEEDS, ids=lambda p: p.stem)
def test_seed_case_vitals_and_labs_as_hl7_give_the_same_grades_and_alerts(case: Path) -> None:
    events = native(case)
    mixed: list[ClinicalEvent] = []
    converted = 0
    for n, ev in enumerate(events):
        message = to_hl7(ev, f"{case.stem}-{n}")
        if message is None:
            mixed.append(ev)
            continue
        converted += 1
        result = normalise_hl7(message, "hl7", strict=True)
        assert not result.rejected, result.rejected[0].reason
        assert len(result.events) == 1 and result.events[0].kind == ev.kind
        mixed += result.events
    assert converted >= 10
    ref, got = replay(events), replay(mixed)
    assert grades_by_day(got) == grades_by_day(ref)
    assert [record_key(r) for r in effective(got)] == [record_key(r) for r in effective(ref)]


def test_replay_reads_an_hl7_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = [e for e in native(CASES / "mcnerney-2022.jsonl") if e.kind in ("vitals", "lab")]
    messages = "".join(m for n, e in enumerate(events) if (m := to_hl7(e, f"c{n}")) is not None)
    f = tmp_path / "feed.hl7"
    f.write_text(messages)
    assert main(["replay", str(f), "--format", "jsonl"]) == 0  # detected from the content
    assert '"ferritin_high"' in capsys.readouterr().out
    f.write_text("junk\r" + messages)  # no longer recognisable as HL7: name the format
    assert main(["replay", str(f), "--input-format", "hl7v2"]) == 0
    out = capsys.readouterr()
    assert "10 events: 10 applied" in out.err and "1 rejected" in out.err and "[not_hl7]" in out.err


@pytest.mark.broker
def test_publish_reads_fhir_and_sends_native_events(kafka_broker: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "case.ndjson"
    assert main(["export", "--format", "fhir", str(SEEDS[1]), "-o", str(out)]) == 0
    with out.open("a") as fh:
        fh.write('{"resourceType": "Patinet", "id": "x"}\n')
    assert main(["publish", str(out), "--broker", kafka_broker, "--partitions", "2"]) == 0
    err = capsys.readouterr().err
    assert "48 sent" in err and "1 rejected" in err and "[unknown_kind]" in err
