"""What one changelog write of a patient's log costs (`Processor.stored_form`), and what that means
for many patients at a bedside rate (issue 16, item 3).

A patient gets one vital sign every `--every` seconds for `--hours` hours (the lateness window keeps
the last 240 min of events in the log); the stored form is then timed. With `flush_seconds` = 1 every
event of a patient seen once per few seconds leads to one write of its whole log.

    .venv/bin/python bench/state_writes.py [--hours 5] [--every 5] [--patients 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.config import Thresholds
from models.events import parse_event
from streams.worker.processor import Processor


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=5.0)
    ap.add_argument("--every", type=float, default=5.0, help="seconds between a patient's vital signs")
    ap.add_argument("--patients", type=int, default=2000)
    args = ap.parse_args(argv)
    processor = Processor(Thresholds(), {})
    start = datetime(2026, 1, 1, tzinfo=UTC)
    n = int(args.hours * 3600 / args.every)
    for i in range(n):
        doc = {"kind": "vitals", "event_id": str(uuid.uuid4()), "patient_id": "p1",
               "time": (start + timedelta(seconds=args.every * i)).isoformat(),
               "heart_rate": {"value": 80 + i % 7, "unit": "/min"}, "temperature": {"value": 37.0, "unit": "Cel"},
               "sbp": {"value": 120, "unit": "mm[Hg]"}, "spo2": {"value": 97, "unit": "%"},
               "provenance": {"source": "monitor"}}
        processor.process(parse_event(json.dumps(doc)), "vitals:0", i)
    runs = []
    for _ in range(20):
        t = time.perf_counter()
        value = processor.stored_form("p1")
        runs.append(time.perf_counter() - t)
    cost = statistics.median(runs)
    writes = args.patients / args.every
    print(f"{n} events over {args.hours:g} h: stored log {len(value):,} bytes, "
          f"stored_form {cost * 1e3:.2f} ms (median of 20)")
    print(f"{args.patients} patients, one event each per {args.every:g} s, one write per event: "
          f"{writes:.0f} writes/s = {writes * len(value) / 1e6:.1f} MB/s, {writes * cost:.2f} CPU s/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
