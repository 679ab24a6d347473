"""Replay order is a property of the data (issue 14): the same records whatever the file layout.

Both seed cases as native JSONL and as FHIR R4 (streams.feeds.export.to_fhir), plus a hand-made
FHIR case with versions, `issued` and `meta.lastUpdated`, are replayed from the file as written,
grouped by resource type (or event kind), reversed, shuffled (several seeds) and as a Bulk export
folder (one .ndjson per type, one of them gzipped): `--order known` and `--order event` give
identical records for every layout.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest

from models.events import parse_event
from streams.cli import main
from streams.feeds.export import to_fhir
from streams.feeds.inputs import read_inputs, read_lines
from streams.feeds.known import hl7_known, known_time, unit_known
from streams.feeds.normalised import dead_letter_record
from streams.replay import replay_files, replay_paths

CASES = Path(__file__).resolve().parents[2] / "cases"
SEEDS = {"ruemmele": CASES / "ruemmele-2025.jsonl", "mcnerney": CASES / "mcnerney-2022.jsonl"}
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SHUFFLE_SEEDS = (0, 1, 2, 3, 4)


def at(day: int, hhmm: str) -> str:
    return f"2024-03-{day:02d}T{hhmm}:00+00:00"


def obs(rid: str, code: str, value: float, unit: str, when: str, **kw: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final", "subject": {"reference": "Patient/hand-1"},
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]}, "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}, **kw}


def hand_made_fhir() -> list[dict[str, Any]]:
    """A short CRS course in standard resources: CAR-T, fever, hypotension on norepinephrine, a
    ferritin resulted an hour after collection, a CRP corrected by version 2, a lab resulted two
    days late (beyond the 4 h lateness window), a dose known by meta.lastUpdated."""
    cart = {"resourceType": "MedicationAdministration", "id": "cart", "status": "completed",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "1986438"}]},
            "subject": {"reference": "Patient/hand-1"}, "effectiveDateTime": at(1, "10:00"),
            "meta": {"lastUpdated": at(1, "10:20")}}
    ne = {"resourceType": "MedicationAdministration", "id": "ne1", "status": "in-progress",
          "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "7512"}]},
          "subject": {"reference": "Patient/hand-1"}, "effectivePeriod": {"start": at(3, "12:00")},
          "dosage": {"rateQuantity": {"value": 5, "unit": "ug/min", "system": UCUM, "code": "ug/min"}}}
    out = [cart, ne]
    for n, (day, hhmm, temp) in enumerate([(2, "08:00", 37.0), (2, "20:00", 38.9), (3, "06:00", 39.4),
                                           (3, "11:00", 39.1), (3, "16:00", 38.2), (4, "09:00", 37.2)]):
        out.append(obs(f"t{n}", "8310-5", temp, "Cel", at(day, hhmm)))
    for n, (day, hhmm, sbp) in enumerate([(3, "10:00", 84), (3, "11:30", 78), (3, "14:00", 96)]):
        out.append(obs(f"sbp{n}", "8480-6", sbp, "mm[Hg]", at(day, hhmm)))
    out.append(obs("fer", "2276-4", 2400, "ng/mL", at(3, "06:00"), issued=at(3, "07:05")))
    crp = obs("crp", "1988-5", 80, "mg/L", at(3, "06:00"), issued=at(3, "07:30"),
              meta={"versionId": "1", "lastUpdated": at(3, "07:30")})
    out.append(crp)
    out.append(crp | {"status": "corrected", "valueQuantity": {"value": 180, "unit": "mg/L", "system": UCUM,
                                                               "code": "mg/L"},
                      "meta": {"versionId": "2", "lastUpdated": at(3, "09:00")}, "issued": at(3, "09:00")})
    out.append(obs("late-ldh", "14804-9", 900, "U/L", at(2, "06:00"), issued=at(4, "10:00")))
    return out


def layouts(lines: list[str], group: Any) -> dict[str, list[str]]:
    out = {"file": lines, "grouped": sorted(lines, key=group), "reversed": lines[::-1]}
    for seed in SHUFFLE_SEEDS:
        out[f"shuffled-{seed}"] = random.Random(seed).sample(lines, len(lines))
    return out


def fhir_type(line: str) -> str:
    return str(json.loads(line)["resourceType"])


def native_kind(line: str) -> str:
    return str(json.loads(line)["kind"])


def write_bulk(folder: Path, lines: list[str], group: Any, ext: str) -> Path:
    folder.mkdir()
    by: dict[str, list[str]] = {}
    for line in lines:
        by.setdefault(group(line), []).append(line)
    for n, (name, part) in enumerate(sorted(by.items())):
        text = "\n".join(part) + "\n"
        if n == 0:
            with gzip.open(folder / f"{name}.{ext}.gz", "wt", encoding="utf-8") as fh:
                fh.write(text)
        else:
            (folder / f"{name}.{ext}").write_text(text, encoding="utf-8")
    (folder / "manifest.json").write_text('{"transactionTime": "2024-03-05T00:00:00Z", "output": []}')
    return folder


def case_lines(case: str) -> tuple[list[str], Any, str]:
    if case in SEEDS:
        return [line for _, line in read_lines([SEEDS[case]])], native_kind, "jsonl"
    if case == "hand-made-fhir":
        return [json.dumps(r) for r in hand_made_fhir()], fhir_type, "ndjson"
    events = [parse_event(line) for _, line in read_lines([SEEDS[case.removesuffix("-fhir")]])]
    return [json.dumps(to_fhir(e)[0]) for e in events], fhir_type, "ndjson"


def replay_cli(paths: list[Path], order: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["replay", *map(str, paths), "--format", "jsonl", "--order", order]) == 0
    return capsys.readouterr().out.splitlines()


CASE_NAMES = ["ruemmele", "mcnerney", "ruemmele-fhir", "mcnerney-fhir", "hand-made-fhir"]


@pytest.mark.parametrize("case", CASE_NAMES)
@pytest.mark.parametrize("order", ["known", "event"])
def test_every_layout_replays_to_identical_records(case: str, order: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    lines, group, ext = case_lines(case)
    runs: dict[str, list[str]] = {}
    for name, content in layouts(lines, group).items():
        path = tmp_path / f"{name}.{ext}"
        path.write_text("\n".join(content) + "\n", encoding="utf-8")
        runs[name] = replay_cli([path], order, capsys)
    runs["bulk-folder"] = replay_cli([write_bulk(tmp_path / "bulk", lines, group, ext)], order, capsys)
    reference = runs["file"]
    assert any('"type":"crs_grade"' in r for r in reference)
    for name, records in runs.items():
        assert records == reference, f"{case} {order}: {name} differs from the file as written"


@pytest.mark.parametrize("case", ["ruemmele", "mcnerney"])
def test_known_order_of_any_layout_is_what_the_live_feed_gave(case: str, tmp_path: Path) -> None:
    """The seed files are written in arrival order (labs after their result time): the known order of
    the FHIR export, shuffled or as a Bulk folder, folds to exactly the records of that live order."""
    _, live = replay_files([SEEDS[case]])
    lines, group, _ = case_lines(f"{case}-fhir")
    shuffled = tmp_path / "shuffled.ndjson"
    shuffled.write_text("\n".join(random.Random(7).sample(lines, len(lines))) + "\n")
    bulk = write_bulk(tmp_path / "bulk", lines, group, "ndjson")
    for paths in ([shuffled], [bulk]):
        _, records = replay_paths(paths, "known")
        assert [r.model_dump_json() for r in records] == [r.model_dump_json() for r in live]


def test_a_bulk_folder_in_file_order_is_not_the_live_order(tmp_path: Path) -> None:
    """Why the default is not file order: the Bulk layout (every Observation before any drug) folds
    the drugs days late in file order."""
    lines, group, _ = case_lines("ruemmele-fhir")
    bulk = write_bulk(tmp_path / "bulk", lines, group, "ndjson")
    file_order, _ = replay_paths([bulk], "file")
    known, _ = replay_paths([bulk], "known")
    assert file_order.outcomes["late"] > 0 and known.outcomes["late"] == 0


def test_a_later_version_comes_after_the_earlier_whatever_the_file_order(tmp_path: Path) -> None:
    """CRP version 2 (value 180) corrects version 1 (80): in known and in event order version 1 is
    folded first and corrected (never version 2 first and version 1 'superseded'), even when
    version 2 says it was issued before version 1 (a clock error)."""
    v1 = obs("crp", "1988-5", 80, "mg/L", at(3, "06:00"), meta={"versionId": "1", "lastUpdated": at(3, "09:00")})
    v2 = v1 | {"status": "corrected", "meta": {"versionId": "2", "lastUpdated": at(3, "07:00")},
               "valueQuantity": {"value": 180, "unit": "mg/L", "system": UCUM, "code": "mg/L"}}
    f = tmp_path / "versions.ndjson"
    f.write_text(json.dumps(v2) + "\n" + json.dumps(v1) + "\n")
    for order in ("known", "event"):
        r, _ = replay_paths([f], order)  # type: ignore[arg-type]
        assert r.outcomes["corrected"] == 1 and r.outcomes["superseded"] == 0, order
        assert [p.value for p in r.logs["hand-1"].state.labs["crp"]] == [180]
    r, _ = replay_paths([f], "file")
    assert r.outcomes["superseded"] == 1  # the file as written: version 1 arrives after version 2


def test_known_order_keeps_late_handling_and_event_order_does_not(tmp_path: Path) -> None:
    """An LDH collected on day 2 and resulted on day 4: a live monitor met it two days after the
    newest vitals of day 2, beyond the 240 min lateness window (alerts.config), so folded late;
    the retrospective event order folds it at its collection time."""
    f = tmp_path / "hand.ndjson"
    f.write_text("\n".join(json.dumps(r) for r in random.Random(3).sample(hand_made_fhir(), 15)) + "\n")
    known, _ = replay_paths([f], "known")
    event, _ = replay_paths([f], "event")
    assert known.outcomes["late"] == 1 and event.outcomes["late"] == 0


def test_ties_in_known_time_are_broken_by_the_data_not_the_file(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Same known time and event time for two patients, two events each: every file order gives one
    sequence of events (event time, then event_id: the order the fold keeps inside its window)."""
    rows = [obs(f"o{n}", "8310-5", 38.5 + n / 10, "Cel", at(2, "08:00"), issued=at(2, "09:00"))
            for n in range(4)]
    rows[1]["subject"] = rows[3]["subject"] = {"reference": "Patient/hand-2"}
    seen = set()
    for seed in range(6):
        f = tmp_path / f"ties-{seed}.ndjson"
        f.write_text("\n".join(json.dumps(r) for r in random.Random(seed).sample(rows, 4)) + "\n")
        assert main(["replay", str(f), "--events"]) == 0
        seen.add(tuple(json.loads(line)["event_id"] for line in capsys.readouterr().out.splitlines()))
    assert seen == {("Observation/o0", "Observation/o1", "Observation/o2", "Observation/o3")}


def test_events_prints_the_normalised_events_in_replay_order(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "hand.ndjson"
    f.write_text("\n".join(json.dumps(r) for r in hand_made_fhir()[::-1]) + "\n")
    orders: dict[str, list[str]] = {}
    for order in ("known", "event", "file"):
        assert main(["replay", str(f), "--events", "--order", order]) == 0
        captured = capsys.readouterr()
        events = [parse_event(line) for line in captured.out.splitlines()]
        assert len(events) == 15 and "15 events" in captured.err and "applied" not in captured.err
        orders[order] = [e.event_id for e in events]
        if order == "event":
            assert [e.ts for e in events] == sorted(e.ts for e in events)
    assert orders["file"][0] == "Observation/late-ldh"  # the last resource of the file
    assert orders["known"] != orders["event"]  # the late LDH: known on day 4, collected on day 2
    assert orders["known"].index("Observation/late-ldh") > orders["known"].index("Observation/t5")
    assert orders["event"].index("Observation/late-ldh") < orders["event"].index("Observation/t1")


def test_dead_letter_file_exit_status_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.ndjson"
    good.write_text("\n".join(json.dumps(r) for r in hand_made_fhir()) + "\n")
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"resourceType": "Observation", "id": "no-subject", "status": "final"}\n{not json\n')
    dead = tmp_path / "dead.jsonl"
    assert main(["replay", str(good), str(bad), "--dead-letter", str(dead), "--verbose", "--format", "jsonl"]) == 0
    err = capsys.readouterr().err
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    shape = dead_letter_record(b"x", "r", "not_json", source="s")
    assert [d.keys() for d in letters] == [shape.keys(), shape.keys()]
    assert [d["category"] for d in letters] == ["missing_field", "not_json"]
    assert letters[0]["source"] == f"{bad}:1" and letters[0]["raw"].startswith('{"resourceType"')
    summary = [line for line in err.splitlines() if line.startswith("crswatch replay:")]
    assert summary == ["crswatch replay: 2 files, 17 input units: 15 accepted, 2 rejected, 0 ignored; 15 events: "
                       "13 applied, 1 late, 1 corrected, 0 retracted, 0 duplicate, 0 superseded"]
    assert f"  {good} (fhir): 15 input units: 15 accepted, 0 rejected, 0 ignored; 15 events" in err
    assert f"  {bad} (fhir): 2 input units: 0 accepted, 2 rejected, 0 ignored; 0 events" in err
    # more rejections than allowed: status 3; as many as allowed: 0
    assert main(["replay", str(good), str(bad), "--max-rejections", "1"]) == 3
    assert "more than --max-rejections 1" in capsys.readouterr().err
    assert main(["replay", str(good), str(bad), "--max-rejections", "2"]) == 0
    capsys.readouterr()
    # nothing applied: status 1
    assert main(["replay", str(bad)]) == 1
    assert "no input event was applied" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "missing")]) == 2


def test_pretty_printed_resource_bom_and_late_resource_type_are_read(tmp_path: Path) -> None:
    res = obs("t0", "8310-5", 38.9, "Cel", at(2, "08:00"))
    narrative = {"text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">" + "x" * 5000
                          + "</div>"}}
    files = {"pretty.json": json.dumps(res, indent=2),
             "bom.json": "\ufeff" + json.dumps(res, indent=2),
             "narrative-first.json": json.dumps(narrative | res, indent=2),  # resourceType after 5 kB
             "bundle.json": json.dumps({"resourceType": "Bundle", "type": "collection",
                                        "entry": [{"resource": res}]}, indent=1)}
    for name, text in files.items():
        f = tmp_path / name
        f.write_text(text, encoding="utf-8")
        units = list(read_inputs([f]))
        assert len(units) == 1 and units[0].fmt == "fhir", name
        assert [e.event_id for e in units[0].normalised.events] == ["Observation/t0"], name
        assert not units[0].normalised.rejected, name


def test_known_time_sources() -> None:
    lab = obs("fer", "2276-4", 2400, "ng/mL", at(3, "06:00"), issued=at(3, "07:05"),
              meta={"lastUpdated": at(3, "08:00")})
    dose = {"resourceType": "MedicationAdministration", "id": "m", "meta": {"lastUpdated": at(3, "08:00")}}
    ts = parse_event({"kind": "vitals", "event_id": "v", "patient_id": "p", "time": at(3, "06:00"),
                      "provenance": {"source": "t"}, "heart_rate": {"value": 80, "unit": "/min"}})
    assert unit_known(json.dumps(lab), "fhir").whole == parse_event(
        {**json.loads(ts.model_dump_json()), "time": at(3, "07:05")}).ts  # issued first
    assert unit_known(json.dumps(dose), "fhir").whole == parse_event(
        {**json.loads(ts.model_dump_json()), "time": at(3, "08:00")}).ts  # then meta.lastUpdated
    early = unit_known(json.dumps(dose | {"meta": {"lastUpdated": at(1, "00:00")}}), "fhir")
    assert known_time(ts, early) == ts.ts  # never before the event time
    msg = ("MSH|^~\\&|LIS|H|CRS|H|20240303080000+0000||ORU^R01|1|P|2.5\rPID|||p\r"
           "OBR|1|||x|||20240303060000+0000" + "|" * 15 + "20240303071500+0000\rOBX|1|NM|2276-4||2400|ng/mL")
    assert hl7_known(msg).whole == parse_event(
        {**json.loads(ts.model_dump_json()), "time": at(3, "07:15")}).ts  # OBR-22 first
    no_obr22 = msg.replace("20240303071500+0000", "")
    assert hl7_known(no_obr22).whole == parse_event(
        {**json.loads(ts.model_dump_json()), "time": at(3, "08:00")}).ts  # then MSH-7


@pytest.mark.parametrize("order", ["known", "event"])
def test_an_hl7_batch_in_any_message_order_replays_to_identical_records(order: str, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The McNerney case's vitals and labs as HL7 v2 ORU^R01 (streams.feeds.export.to_hl7), each lab
    with OBR-22 (results reported) at its result time: every message order gives the same records."""
    from streams.feeds.export import hl7_ts, to_hl7

    messages = []
    for _, line in read_lines([SEEDS["mcnerney"]]):
        ev = parse_event(line)
        msg = to_hl7(ev, ev.event_id)
        if msg is None:
            continue
        if ev.recorded_time is not None:
            obr = f"OBR|1||||||{hl7_ts(ev.time)}"
            msg = msg.replace(obr, obr + "|" * 15 + hl7_ts(ev.recorded_time))
            assert hl7_known(msg).whole == ev.recorded_time.timestamp()
        messages.append(msg)
    assert len(messages) >= 10
    runs = {}
    for name, content in layouts(messages, lambda m: m.split("\r")[3][:12]).items():
        f = tmp_path / f"{name}.hl7"
        f.write_text("".join(content), encoding="utf-8")
        runs[name] = replay_cli([f], order, capsys)
    assert runs["file"]
    for name, records in runs.items():
        assert records == runs["file"], name
