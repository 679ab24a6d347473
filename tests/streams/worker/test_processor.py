"""The worker's per-message logic without faust or a broker (a dict is the table)."""

from __future__ import annotations

import json

from alerts.config import Thresholds
from streams.feeds.inputs import read_lines
from streams.replay import Replayer
from streams.topics import ALERTS, DEAD_LETTER, PATIENT_STATE
from streams.worker.processor import Processor, Rejection, dead_letter_value, parse_message
from tests.streams.helpers import CASES


class Table(dict[str, bytes]):
    pass


def run(lines: list[str], table: Table, processor: Processor) -> list[tuple[str, bytes, bytes]]:
    out = []
    for n, line in enumerate(lines):
        parsed = parse_message(json.loads(line)["patient_id"].encode(), line.encode())
        assert not isinstance(parsed, Rejection)
        if processor.redelivered(parsed, "t:0", n):
            continue
        result, outputs = processor.process(parsed, "t:0", n)
        if result.outcome != "duplicate":
            out.extend(outputs)
            table[parsed.patient_id] = processor.stored_form(parsed.patient_id)
    return out


def test_outputs_are_the_embedded_replay_records_routed_by_type() -> None:
    lines = [line for _, line in read_lines([CASES / "ruemmele-2025.jsonl"])]
    table = Table()
    outputs = run(lines, table, Processor(Thresholds(), table))
    replay = Replayer()
    records = [r for line in lines for r in replay.feed(line, "x")]
    alerts = [r.model_dump_json().encode() for r in records if r.type == "alert"]
    assert [v for t, _, v in outputs if t == ALERTS] == alerts
    changes = [json.loads(v) for t, _, v in outputs if t == PATIENT_STATE]
    assert [c["change"]["type"] for c in changes] == [r.type for r in records if r.type != "alert"]
    assert changes[-1]["crs_grade"] == replay.logs["ruemmele-2025"].head.crs_grade


def test_redelivery_after_a_restart_from_the_table_changes_nothing() -> None:
    lines = [line for _, line in read_lines([CASES / "mcnerney-2022.jsonl"])]
    table = Table()
    first = run(lines, table, Processor(Thresholds(), table))
    stored = dict(table)
    # a new worker (empty cache) gets everything again: offsets and event ids say "done"
    again = Processor(Thresholds(), table)
    assert run(lines, table, again) == []
    assert dict(table) == stored
    # and without the offsets (a message re-published under a new offset) the event ids still hold
    table2 = Table()
    p = Processor(Thresholds(), table2)
    run(lines, table2, p)
    for line in lines[-5:]:
        parsed = parse_message(json.loads(line)["patient_id"].encode(), line.encode())
        assert not isinstance(parsed, Rejection)
        result, outputs = p.process(parsed, "t:1", 0)
        assert result.outcome == "duplicate" and outputs == []
    assert first


def test_rejections_name_the_reason_and_keep_the_raw_bytes() -> None:
    assert isinstance(parse_message(b"p", None), Rejection)
    rej = parse_message(b"p", b"\xff")
    assert isinstance(rej, Rejection) and rej.category == "not_json"
    good = next(iter(read_lines([CASES / "mcnerney-2022.jsonl"])))[1].encode()
    wrong = parse_message(b"other", good)
    assert isinstance(wrong, Rejection) and "patient_id" in wrong.reason
    assert isinstance(parse_message(None, good), Rejection)
    doc = json.loads(dead_letter_value("vitals", 2, 7, b"p", b"\xff", rej, 0.0))
    assert doc["raw_encoding"] == "base64" and doc["raw"] == "/w=="
    assert doc["category"] == "not_json" and doc["time"].startswith("1970-01-01")
    table = Table()
    processor = Processor(Thresholds(), table)
    topic, key, value = processor.reject("vitals", 2, 7, b"p", b"{", rej, 0.0)
    assert topic == DEAD_LETTER and key == b"p" and json.loads(value)["raw"] == "{"
    assert processor.counts["rejected"] == 1 and processor.counts["dead_letter:not_json"] == 1
