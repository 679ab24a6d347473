"""Historical replay of a FHIR Bulk export: time and peak memory for 100k and 1M resources.

Writes a synthetic FHIR R4 Bulk Data export (one NDJSON file per resource type, the layout
`$export` writes: every Observation before any MedicationAdministration) from the synthetic
cohort (tests.synthetic), then runs `crswatch replay FOLDER --format jsonl` in a fresh process
per measurement and reports wall time, peak resident memory of that process (wait4 rusage)
and the peak disk use of its temporary directory (the on-disk sort, streams.ordering).

The export is what a hospital system writes, not the crswatch round-trip: one Observation per
vital sign (blood pressure as the 85354-9 panel), labs with `issued`, every resource with
`meta.lastUpdated` (its known time), no crswatch extension. Resources the FHIR contract has
no row for (findings, attributions, ...) are left out, as a real export would not carry them.
The patient count is fixed (`--patients`), so that 100k and 1M resources differ in events per
patient, not in patients: the figure to read is how peak memory moves with the number of events.

    python bench/replay.py                       # 100k and 1M resources, --order known
    python bench/replay.py --resources 100000 --orders known file
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.events import ClinicalEvent, VitalSigns  # noqa: E402
from streams.feeds.export import PROVENANCE_URL, contract_resource  # noqa: E402
from tests.synthetic import MINUTES_PER_DAY, patient_events  # noqa: E402

VITAL_GROUPS = (("temperature",), ("heart_rate",), ("spo2",), ("resp_rate",), ("sbp", "dbp"))


def _split_vitals(ev: VitalSigns) -> list[ClinicalEvent]:
    """One event per Observation a monitor gateway would export (blood pressure as one panel)."""
    out: list[ClinicalEvent] = []
    for group in VITAL_GROUPS:
        measures = {f: getattr(ev, f) for f in group if getattr(ev, f) is not None}
        if measures:
            out.append(ev.model_copy(update={"event_id": f"{ev.event_id}-{group[0]}", "temperature": None,
                                             "heart_rate": None, "sbp": None, "dbp": None, "map": None,
                                             "spo2": None, "resp_rate": None, **measures}))
    return out


def _resource(ev: ClinicalEvent) -> dict[str, Any] | None:
    res = contract_resource(ev)
    if res is None:
        return None
    res["extension"] = [e for e in res.get("extension", []) if e.get("url") != PROVENANCE_URL]
    if not res["extension"]:
        del res["extension"]
    known = ev.recorded_time or ev.time
    res["meta"] = {"lastUpdated": known.isoformat()}
    return res


def write_export(folder: Path, resources: int, patients: int, seed: int = 11) -> dict[str, int]:
    """A Bulk export of about `resources` resources, `patients` patients (each its share, from Day 0 on)."""
    folder.mkdir(parents=True)
    per_patient = resources // patients
    days = per_patient // (len(VITAL_GROUPS) * MINUTES_PER_DAY) + 2
    files: dict[str, Any] = {}
    counts: dict[str, int] = {}
    try:
        for index in range(patients):
            _, events = patient_events(seed, index, days, id_style="uuid")
            written = 0
            for ev in events:
                for part in _split_vitals(ev) if isinstance(ev, VitalSigns) else [ev]:
                    res = _resource(part)
                    if res is None:
                        continue
                    rtype = res["resourceType"]
                    if rtype not in files:
                        files[rtype] = (folder / f"{rtype}.ndjson").open("w", encoding="utf-8")
                    files[rtype].write(json.dumps(res, separators=(",", ":")) + "\n")
                    counts[rtype] = counts.get(rtype, 0) + 1
                    written += 1
                if written >= per_patient:
                    break
    finally:
        for fh in files.values():
            fh.close()
    return counts


def _du(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            total += p.stat().st_size
        except FileNotFoundError:
            pass
    return total


def measure(args: list[str], tmp: Path) -> dict[str, float]:
    """Run `crswatch` with args in a fresh process: wall s, peak RSS MiB (wait4), peak temp disk MiB."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp), "SQLITE_TMPDIR": str(tmp)}
    peak_disk = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak_disk
        while not done.is_set():
            peak_disk = max(peak_disk, _du(tmp))
            time.sleep(0.5)

    watcher = threading.Thread(target=poll, daemon=True)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    watcher.start()
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    done.set()
    watcher.join()
    summary = [line for line in err.splitlines() if line.startswith("crswatch replay:")]
    if proc.returncode != 0 or not summary:
        raise SystemExit(f"crswatch {' '.join(args)} failed ({proc.returncode}):\n{err[-2000:]}")
    return {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024, "peak_tmp_mib": peak_disk / 2**20,
            "summary": summary[0]}  # type: ignore[dict-item]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resources", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--patients", type=int, default=20)
    p.add_argument("--orders", nargs="+", default=["known"], choices=["known", "event", "file"])
    p.add_argument("--events-only", action="store_true", help="also time --events (read and sort, no fold)")
    p.add_argument("--keep", type=Path, default=None, help="write the exports here and keep them")
    args = p.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="crswatch-bench-replay-"))
    try:
        for n in args.resources:
            folder = base / f"export-{n}"
            if not folder.exists():
                t = time.perf_counter()
                counts = write_export(folder, n, args.patients)
                size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
                print(f"export {n}: {sum(counts.values())} resources {counts}, {size:.0f} MiB, "
                      f"{args.patients} patients, written in {time.perf_counter() - t:.0f} s", flush=True)
            runs = [(order, ["replay", str(folder), "--format", "jsonl", "--order", order]) for order in args.orders]
            if args.events_only:
                runs.append(("known --events", ["replay", str(folder), "--events", "--order", "known"]))
            for label, cli in runs:
                tmp = base / "tmp"
                tmp.mkdir(exist_ok=True)
                m = measure(cli, tmp)
                shutil.rmtree(tmp)
                print(f"  {n} resources, --order {label}: {m['wall_s']:.1f} s, peak RSS {m['peak_rss_mib']:.0f} MiB, "
                      f"peak temp disk {m['peak_tmp_mib']:.0f} MiB\n    {m['summary']}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
