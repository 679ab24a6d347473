"""Write the synthetic cohort of tests/synthetic.py as native JSONL files, for `crswatch whatif` and `report`.

    python bench/cohort.py --patients 200 --days 14 --out /tmp/cohort

writes one file per patient (pt-000000.jsonl, ...) with minute vital signs, daily labs, CAR-T on Day 0 and the
planned CRS / IEC-HS courses (about 20,000 events per patient-fortnight), in arrival order.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.synthetic import patient_events


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--patients", type=int, default=200)
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    events = 0
    for i in range(args.patients):
        pid, evs = patient_events(args.seed, i, args.days, id_style="short")
        with (args.out / f"{pid}.jsonl").open("w", encoding="utf-8") as fh:
            for ev in evs:
                fh.write(ev.model_dump_json(exclude_none=True) + "\n")
        events += len(evs)
    print(f"{args.patients} patients x {args.days} days: {events} events in {args.out} "
          f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
