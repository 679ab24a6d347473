"""Fold benchmark: throughput, per-event cost against history length, and state size.

Measurements (see bench/README.md):
  A  events/s of `alerts.log.step` over a deterministic synthetic cohort, in arrival order;
  B  per-event cost of Day +1 against Day +30 for one patient with 30 days of history;
  C  `len(log_to_json(log))` per patient after the cohort run and after the 30-day patient.

Events are built as validated pydantic objects before the timed sections; parsing is not
timed. Patients are independent (one `PatientLog` each), so the cohort is generated and
stepped patient by patient, which keeps memory at one patient's events.

    .venv/bin/python bench/fold.py                    # 500 patients x 7 days (~5M events)
    .venv/bin/python bench/fold.py --patients 50      # quick run
    .venv/bin/python bench/fold.py --json out.json    # also write the figures as JSON
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.synthetic

from alerts.config import Thresholds
from alerts.log import PatientLog, StepResult, log_to_json, new_log, step
from models.events import ClinicalEvent
from tests.synthetic import MINUTES_PER_DAY, patient_events, plan_course

STATE_BUDGET_BYTES = 65_536
TARGET_EVENTS_PER_S = 100_000
HISTORY_SEED_OFFSET = 1_000_003  # B draws its patient from another stream than the cohort


# ---------------------------------------------------------------- measurements


@dataclass(slots=True)
class CohortResult:
    patients: int = 0
    events: int = 0
    seconds: float = 0.0
    gen_seconds: float = 0.0
    kinds: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)
    corrections: int = 0
    sizes: list[int] = field(default_factory=list)
    pending_lens: list[int] = field(default_factory=list)
    parts: list[dict[str, int]] = field(default_factory=list)  # bytes per top-level key of log_to_json


def _record_type(r: Any) -> str:
    return str(r.type)


def _tally(res: CohortResult, results: list[StepResult]) -> None:
    for r in results:
        res.outcomes[r.outcome] += 1
        for rec in r.records:
            res.records[_record_type(rec)] += 1
            if rec.correction:
                res.corrections += 1


def state_parts(log: PatientLog) -> dict[str, int]:
    """Compact JSON bytes of each top-level part of `log_to_json(log)` (settled, pending, ...)."""
    obj = json.loads(log_to_json(log))
    return {k: len(json.dumps(v, separators=(",", ":"), ensure_ascii=False)) for k, v in obj.items()}


def run_cohort(patients: int, days: int, seed: int, id_style: str, cfg: Thresholds, progress: bool) -> CohortResult:
    """Measurement A (and C): time only `step` over each patient's events in arrival order."""
    res = CohortResult()
    clock = time.perf_counter
    for i in range(patients):
        g0 = clock()
        _, events = patient_events(seed, i, days, id_style)
        res.gen_seconds += clock() - g0
        log = new_log(events[0].patient_id)
        gc.collect()
        t0 = clock()
        results = [step(log, ev, cfg) for ev in events]
        res.seconds += clock() - t0
        res.patients += 1
        res.events += len(events)
        res.kinds.update(ev.kind for ev in events)
        _tally(res, results)
        res.sizes.append(len(log_to_json(log)))
        res.parts.append(state_parts(log))
        res.pending_lens.append(len(log.pending))
        if progress and (i + 1) % max(1, patients // 20) == 0:
            print(f"  ... {i + 1}/{patients} patients, {res.events:,} events, "
                  f"{res.events / res.seconds:,.0f} events/s so far", file=sys.stderr, flush=True)
    return res


def _day_of_arrival(events: list[ClinicalEvent]) -> list[int]:
    """Day of each event after Day 0 00:00 (the first vitals); a lab's event day is also its arrival day."""
    t0 = next(ev.ts for ev in events if ev.kind == "vitals")
    return [int((ev.ts - t0) // 86400) for ev in events]


def run_history(days: int, seed: int, id_style: str, cfg: Thresholds, repeats: int, steady: bool,
                index: int = 0) -> dict[str, Any]:
    """Measurement B: per-event cost on Day +1 against Day +`days - 1` for one patient; and its state size."""
    _, events = patient_events(seed + HISTORY_SEED_OFFSET, index, days, id_style, steady=steady)
    day_idx = _day_of_arrival(events)
    first, last = 1, days - 1
    clock = time.perf_counter
    per_rep: list[dict[str, float]] = []
    for _ in range(repeats):
        log = new_log(events[0].patient_id)
        sums: dict[str, float] = defaultdict(float)
        counts: Counter[str] = Counter()
        gc.collect()
        for ev, d in zip(events, day_idx, strict=True):
            t0 = clock()
            step(log, ev, cfg)
            dt = clock() - t0
            sums[f"day:{d}"] += dt
            counts[f"day:{d}"] += 1
            if d == first or d == last:
                tag = "first" if d == first else "last"
                sums[tag] += dt
                counts[tag] += 1
                sums[f"{tag}:{ev.kind}"] += dt
                counts[f"{tag}:{ev.kind}"] += 1
        per_rep.append({k: sums[k] / counts[k] * 1e6 for k in sums})
    med = {k: statistics.median(r[k] for r in per_rep) for k in per_rep[0]}

    # Untimed replay to sample the state size over time (peak while the morning labs are pending).
    log = new_log(events[0].patient_id)
    peak, peak_at, peak_pending = 0, "", 0
    for n, ev in enumerate(events):
        step(log, ev, cfg)
        if n % 15 == 0 or ev.kind == "lab":
            size = len(log_to_json(log))
            if size > peak:
                peak, peak_at, peak_pending = size, ev.time.isoformat(), len(log.pending)
    last_day_events = sum(1 for d in day_idx if d == last)
    return {
        "profile": "steady, no CRS" if steady else "grade >= 3 CRS: pressors, oxygen, tocilizumab, dexamethasone",
        "days": days,
        "events": len(events),
        "repeats": repeats,
        "day_first": first,
        "day_last": last,
        "events_day_first": sum(1 for d in day_idx if d == first),
        "events_day_last": last_day_events,
        "us_per_event_day_first": med["first"],
        "us_per_event_day_last": med["last"],
        "ratio_last_over_first": med["last"] / med["first"],
        # Day +1 still fills bounded structures (3 values kept per lab analyte); Day +7 is past that warm-up.
        "ratio_last_over_day7": med["last"] / med["day:7"] if "day:7" in med and last > 7 else None,
        "us_per_event_by_day": {int(k[4:]): v for k, v in med.items() if k.startswith("day:")},
        "us_per_event_by_kind": {
            k.split(":", 1)[1]: {"day_first": med[k], "day_last": med.get("last:" + k.split(":", 1)[1])}
            for k in med if k.startswith("first:")
        },
        "state_bytes_end": len(log_to_json(log)),
        "state_bytes_peak": peak,
        "state_peak_at": peak_at,
        "state_peak_pending_events": peak_pending,
        "pending_events_end": len(log.pending),
        "bytes_by_part_end": state_parts(log),
    }


# ---------------------------------------------------------------- report


def _pct(values: list[int], q: float) -> int:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def _revision() -> str:
    """Commit of the code measured, with '+dirty' when alerts/ or models/ have uncommitted changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "alerts", "models"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def figures(args: argparse.Namespace, a: CohortResult | None, b: list[dict[str, Any]], revision: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "date": datetime.now(UTC).date().isoformat(),
        "revision": revision,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "config": {"lateness_minutes": Thresholds().lateness_minutes if args.lateness is None else args.lateness},
        "seed": args.seed,
        "id_style": args.ids,
    }
    if a is not None:
        eps = a.events / a.seconds
        out["throughput"] = {
            "patients": a.patients,
            "days": args.days,
            "events": a.events,
            "events_by_kind": dict(a.kinds),
            "step_seconds": a.seconds,
            "events_per_s": eps,
            "us_per_event": 1e6 / eps,
            "target_events_per_s": TARGET_EVENTS_PER_S,
            "meets_target": eps >= TARGET_EVENTS_PER_S,
            "generation_seconds": a.gen_seconds,
            "generation": "per patient (patients are independent); one patient's events in memory at a time",
            "outcomes": dict(a.outcomes),
            "records": dict(a.records),
            "records_total": sum(a.records.values()),
            "corrections": a.corrections,
        }
        out["state_size"] = {
            "budget_bytes": STATE_BUDGET_BYTES,
            "max_bytes": max(a.sizes),
            "median_bytes": int(statistics.median(a.sizes)),
            "p95_bytes": _pct(a.sizes, 0.95),
            "min_bytes": min(a.sizes),
            "patients_over_budget": sum(1 for s in a.sizes if s > STATE_BUDGET_BYTES),
            "median_bytes_by_part": {k: int(statistics.median(p.get(k, 0) for p in a.parts)) for k in a.parts[0]},
            "pending_events_median": int(statistics.median(a.pending_lens)),
            "when": f"after each patient's last event (Day +{args.days - 1} 23:59)",
        }
    if b:
        out["history"] = b
    return out


def print_report(f: dict[str, Any]) -> None:
    p = print
    p(f"crswatch fold benchmark  {f['date']}  revision {f['revision']}  python {f['python']}  {f['machine']}")
    p(f"  lateness window {f['config']['lateness_minutes']:g} min, seed {f['seed']}, event ids: {f['id_style']}")
    a = f.get("throughput")
    if a:
        ok = "MEETS" if a["meets_target"] else "BELOW"
        p(f"\nA. throughput: {a['patients']} patients x {a['days']} days, {a['events']:,} events "
          f"({', '.join(f'{k} {v:,}' for k, v in sorted(a['events_by_kind'].items()))})")
        p(f"   step() total {a['step_seconds']:.2f} s -> {a['events_per_s']:,.0f} events/s "
          f"({a['us_per_event']:.1f} us/event); target {a['target_events_per_s']:,} events/s: {ok}")
        p(f"   outcomes: {a['outcomes']}")
        p(f"   records: {a['records_total']:,} {a['records']}, of which corrections {a['corrections']:,}")
        p(f"   (event generation, untimed: {a['generation_seconds']:.1f} s, {a['generation']})")
        c = f["state_size"]
        p(f"\nC. state size (len(log_to_json(log))) {c['when']}: median {c['median_bytes']:,} B, "
          f"p95 {c['p95_bytes']:,} B, max {c['max_bytes']:,} B; budget {c['budget_bytes']:,} B; "
          f"{c['patients_over_budget']} patient(s) over budget")
        parts = ", ".join(f"{k} {v:,} B" for k, v in c["median_bytes_by_part"].items())
        p(f"   median by part: {parts}; {c['pending_events_median']} pending events")
    for h in f.get("history", []):
        p(f"\nB. per-event cost vs history, one patient ({h['profile']}), {h['days']} days, {h['events']:,} events, "
          f"median of {h['repeats']} runs")
        p(f"   Day +{h['day_first']} ({h['events_day_first']} events): {h['us_per_event_day_first']:.1f} us/event;  "
          f"Day +{h['day_last']} ({h['events_day_last']} events): {h['us_per_event_day_last']:.1f} us/event;  "
          f"ratio {h['ratio_last_over_first']:.2f}"
          + (f" (Day +{h['day_last']} / Day +7: {h['ratio_last_over_day7']:.2f})" if h["ratio_last_over_day7"] else ""))
        curve = h["us_per_event_by_day"]
        shown = sorted({d for d in (0, 1, 2, 3, 7, 14, 21, h["day_last"]) if d in curve})
        p("   by day: " + ", ".join(f"+{d} {curve[d]:.1f}" for d in shown) + " us/event")
        for kind, v in sorted(h["us_per_event_by_kind"].items()):
            last = "-" if v["day_last"] is None else f"{v['day_last']:.1f}"
            p(f"     {kind:>10}: Day +{h['day_first']} {v['day_first']:.1f} us, Day +{h['day_last']} {last} us")
        parts = ", ".join(f"{k} {v:,} B" for k, v in h["bytes_by_part_end"].items())
        p(f"   state after {h['days']} days: {h['state_bytes_end']:,} B ({parts}; {h['pending_events_end']} pending "
          f"events); peak {h['state_bytes_peak']:,} B at {h['state_peak_at']} "
          f"({h['state_peak_pending_events']} pending events)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--patients", type=int, default=500, help="cohort size for A and C (default 500)")
    ap.add_argument("--days", type=int, default=7, help="days per cohort patient (default 7)")
    ap.add_argument("--history-days", type=int, default=31,
                    help="days of the single patient of B; compares Day +1 with Day +(N-1) (default 31)")
    ap.add_argument("--repeats", type=int, default=5, help="repeats of B, median taken (default 5)")
    ap.add_argument("--seed", type=int, default=20261121)
    ap.add_argument("--ids", choices=("uuid", "short"), default="uuid",
                    help="event id style: 36-char UUIDs (default, like FHIR ids) or short '<patient>-<n>'")
    ap.add_argument("--lateness", type=float, default=None, help="override Thresholds.lateness_minutes")
    ap.add_argument("--skip-cohort", action="store_true", help="run B only")
    ap.add_argument("--skip-history", action="store_true", help="run A and C only")
    ap.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the figures as JSON")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="instead of the benchmark, profile step() over N cohort patients (cProfile, top 25)")
    args = ap.parse_args(argv)

    revision = _revision()  # taken before the run: the modules measured are the ones imported now
    cfg = Thresholds() if args.lateness is None else Thresholds(lateness_minutes=args.lateness)
    if args.profile:
        return profile(args.profile, args.days, args.seed, args.ids, cfg)
    a = None
    if not args.skip_cohort:
        a = run_cohort(args.patients, args.days, args.seed, args.ids, cfg, not args.quiet)
    b: list[dict[str, Any]] = []
    if not args.skip_history:
        for steady in (True, False):
            b.append(run_history(args.history_days, args.seed, args.ids, cfg, args.repeats, steady,
                                 index=_crs_patient_index(args.seed, args.history_days) if not steady else 0))
    f = figures(args, a, b, revision)
    print_report(f)
    if args.json is not None:
        args.json.write_text(json.dumps(f, indent=2) + "\n")
        print(f"\nfigures written to {args.json}")
    return 0


def profile(patients: int, days: int, seed: int, id_style: str, cfg: Thresholds) -> int:
    """cProfile of `step` over the first `patients` cohort patients (events generated before profiling)."""
    import cProfile
    import pstats

    cohort = [patient_events(seed, i, days, id_style)[1] for i in range(patients)]
    prof = cProfile.Profile()
    prof.enable()
    for events in cohort:
        log = new_log(events[0].patient_id)
        for ev in events:
            step(log, ev, cfg)
    prof.disable()
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)
    return 0


def _crs_patient_index(seed: int, days: int) -> int:
    """The first patient whose drawn course has a grade >= 3 CRS episode (pressors, oxygen, doses), for B.

    `patient_events` draws the course first from its seeded generator, so re-drawing it here is exact.
    """
    for i in range(1000):
        c = plan_course(random.Random(f"crswatch-bench:{seed + HISTORY_SEED_OFFSET}:{i}"), days * MINUTES_PER_DAY)
        if c.severity >= 3:
            return i
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
