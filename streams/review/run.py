"""Replays input files for review: the same fold as `crswatch replay` (streams.replay.Replayer), once per
threshold set, in one pass over the files, collecting each patient's figure data on the way.

Inputs are read as `crswatch replay` reads them (streams.feeds.inputs.read_inputs: files, folders, Bulk
exports; native, FHIR, HL7 v2) and ordered the same way (streams.replay.ordered_events, `known` by default);
each event is validated once and applied to every Replayer; every rejection is listed on each Replayer.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from alerts.config import Thresholds
from models.events import ClinicalEvent
from models.records import Record
from streams.feeds.inputs import Unit, input_files, read_inputs
from streams.ordering import Order
from streams.replay import Replayer, ordered_events
from streams.review.series import DEFAULT_BUCKET_SECONDS, PatientSeries, SeriesBuilder


@dataclass(slots=True)
class ReviewReplay:
    cfgs: list[Thresholds]
    replayers: list[Replayer]
    records: list[dict[str, list[Record]]]  # per threshold set: patient -> records
    series: dict[str, PatientSeries] = field(default_factory=dict)
    events: int = 0
    units: int = 0
    bytes: int = 0
    seconds: float = 0.0

    @property
    def patients(self) -> list[str]:
        return sorted(self.series)


def replay_for_review(paths: list[Path], cfgs: list[Thresholds], input_format: str = "auto", strict: bool = False,
                      bucket_seconds: float = DEFAULT_BUCKET_SECONDS, progress: bool | None = None,
                      desc: str = "replay", order: Order = "known") -> ReviewReplay:
    """Replay `paths` (files and folders, as `crswatch replay` reads them, in the same `order`) once through
    one Replayer per threshold set. `progress`: None = a bar on a terminal only."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    started = time.perf_counter()
    replayers = [Replayer(cfg) for cfg in cfgs]
    out = ReviewReplay(list(cfgs), replayers, [{} for _ in cfgs])
    builders: dict[str, SeriesBuilder] = {}
    files = input_files(paths)
    total = sum(p.stat().st_size for p in files)
    disable = None if progress is None else not progress
    fmt = None if input_format == "auto" else input_format

    def take(ev: ClinicalEvent) -> None:
        b = builders.get(ev.patient_id)
        if b is None:
            b = builders[ev.patient_id] = SeriesBuilder(ev.patient_id, bucket_seconds)
        b.add(ev)

    with tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, disable=disable, desc=desc) as bar:
        def on_unit(unit: Unit) -> None:
            out.units += 1
            size = len(unit.raw.encode("utf-8"))
            out.bytes += size
            bar.update(size)
            for r in replayers:
                r.rejected.extend(unit.normalised.rejected)

        for _, event, _ in ordered_events(read_inputs(files, fmt, strict), order, on_unit):  # type: ignore[arg-type]
            out.events += 1
            take(event)
            for k, r in enumerate(replayers):
                recs = r.apply(event).records
                if recs:
                    out.records[k].setdefault(event.patient_id, []).extend(recs)
    for pid, b in builders.items():
        log = replayers[0].logs.get(pid)
        day0 = log.state.day0_ts if log is not None else None
        out.series[pid] = b.build(day0)
    out.seconds = time.perf_counter() - started
    return out
