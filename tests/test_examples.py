"""The shipped examples (examples/) replay with no rejection and fold at least one event each.

Each example is one realistic input a site would send (a FHIR transaction Bundle, a PCD-01 monitor
ORU^R01, a lab ORU^R01, a Bulk export folder); a change to a feed adapter that starts rejecting one
of them fails here, with the rejection reason in the message.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streams.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# Every input in examples/, with the format the replay must detect for its files.
INPUTS = {
    "bundle-transaction.json": "fhir",
    "monitor-pcd01.hl7": "hl7v2",
    "lab-inflammation.hl7": "hl7v2",
    "bulk-mcnerney-2022": "fhir",
}
SUMMARY = re.compile(r"crswatch replay: (\d+) files?, (\d+) input units: (\d+) accepted, (\d+) rejected, "
                     r"(\d+) ignored; (\d+) events: (\d+) applied")


def test_every_example_input_is_listed() -> None:
    shipped = {p.name for p in EXAMPLES.iterdir() if p.name not in {"README.md", "site.toml", "changed.toml"}}
    assert shipped == set(INPUTS)


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_each_example_replays_without_rejection(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "-v", "--max-rejections", "0", str(EXAMPLES / name)]) == 0
    out, err = capsys.readouterr()
    m = SUMMARY.search(err)
    assert m is not None, err
    rejected, applied = int(m.group(4)), int(m.group(7))
    assert rejected == 0 and "rejected " not in err.split("crswatch replay:")[0], err
    assert applied >= 1
    formats = re.findall(r"^  \S+ \((\w+)\):", err, re.M)
    assert formats and set(formats) == {INPUTS[name]}, err
    assert "ALERT" in out  # each example is clinically meaningful, not just parseable


def test_the_examples_of_one_patient_fold_into_one_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(EXAMPLES / n) for n in ("bundle-transaction.json", "monitor-pcd01.hl7", "lab-inflammation.hl7")]
    assert main(["replay", "--max-rejections", "0", *files]) == 0
    out, err = capsys.readouterr()
    assert out.count("=== patient EX-0001") == 1 and "0 late" in err
    # Day 0 from the Bundle's CAR-T dose places the monitor's cuff SBP 84 (HL7) on Day +2, grade 2.
    assert "hypotension axis 2: hypotension without vasopressors (SBP 84 mmHg at Day +2 02:15 (UTC+01:00)" in out
    # The lab's event time is SPM-17 (06:00 local), not the message time.
    assert "fibrinogen 140 mg/dL collected Day +2 06:00 (UTC+01:00)" in out


def test_the_bulk_folder_replays_like_the_native_case(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(EXAMPLES / "bulk-mcnerney-2022")]) == 0
    bulk = capsys.readouterr().out
    assert main(["replay", str(ROOT / "cases" / "mcnerney-2022.jsonl")]) == 0
    assert bulk == capsys.readouterr().out
