"""Case 000 (Ruemmele 2025) replayed up to its CRS grade 4 on Day +21, then the rest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from models.records import CrsGradeChange, Record
from streams.feeds.inputs import read_lines
from streams.replay import Replayer

CASES = Path(__file__).resolve().parents[1] / "cases"
CASE_000 = CASES / "ruemmele-2025.jsonl"
CASE_004 = CASES / "mcnerney-2022.jsonl"
PATIENT_000 = "ruemmele-2025"
PATIENT_004 = "mcnerney-2022"


def replay_in_two_parts(replayer: Replayer) -> Iterator[list[Record]]:
    """Yields the records up to and including the event that takes case 000 to CRS grade 4,
    then the records of the rest of the file."""
    records: list[Record] = []
    lines = iter(read_lines([CASE_000]))
    for source, line in lines:
        new = replayer.feed(line, source)
        records.extend(new)
        if any(isinstance(r, CrsGradeChange) and r.grade == 4 for r in new):
            break
    yield records
    rest: list[Record] = []
    for source, line in lines:
        rest.extend(replayer.feed(line, source))
    yield rest
