"""Replays input files for review: the same fold as `crswatch replay` (streams.replay.Replayer), once per
threshold set, in one pass over the files, collecting each patient's figure data on the way.

Each native line is parsed once and the same validated event is applied to every Replayer; a line that does
not parse is fed to each Replayer as `crswatch replay` feeds it, so rejections are counted the same way. FHIR
and HL7 v2 units go through Replayer.feed_normalised, as in `crswatch replay`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from alerts.config import Thresholds
from models.events import ClinicalEvent, InvalidEvent, parse_event
from models.records import Record
from streams.feeds.inputs import detect_format, read_units
from streams.feeds.normalised import Normalised
from streams.replay import Replayer, read_lines
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


def units(paths: list[Path], input_format: str = "auto", strict: bool = False
          ) -> Iterator[tuple[str, str, Normalised | None]]:
    """Each file's input units in order, as `crswatch replay` reads them: native lines as text (None),
    FHIR and HL7 v2 normalised."""
    for path in paths:
        with path.open("rb") as fh:
            fmt = detect_format(fh.read(4096)) if input_format == "auto" else input_format
        if fmt == "native":
            for source, line in read_lines([path]):
                yield source, line, None
        else:
            yield from read_units(path, fmt, strict)  # type: ignore[arg-type]


def replay_for_review(paths: list[Path], cfgs: list[Thresholds], input_format: str = "auto", strict: bool = False,
                      bucket_seconds: float = DEFAULT_BUCKET_SECONDS, progress: bool | None = None,
                      desc: str = "replay") -> ReviewReplay:
    """Replay `paths` once through one Replayer per threshold set. `progress`: None = a bar on a terminal only."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    started = time.perf_counter()
    replayers = [Replayer(cfg) for cfg in cfgs]
    out = ReviewReplay(list(cfgs), replayers, [{} for _ in cfgs])
    builders: dict[str, SeriesBuilder] = {}
    total = sum(p.stat().st_size for p in paths)
    disable = None if progress is None else not progress

    def take(ev: ClinicalEvent) -> None:
        b = builders.get(ev.patient_id)
        if b is None:
            b = builders[ev.patient_id] = SeriesBuilder(ev.patient_id, bucket_seconds)
        b.add(ev)

    with tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, disable=disable, desc=desc) as bar:
        for source, line, normalised in units(paths, input_format, strict):
            out.units += 1
            size = len(line.encode("utf-8"))
            out.bytes += size
            bar.update(size)
            if normalised is None:
                try:
                    event = parse_event(line)
                except InvalidEvent:
                    for r in replayers:
                        r.feed(line, source)
                    continue
                out.events += 1
                take(event)
                for k, r in enumerate(replayers):
                    recs = r.apply(event).records
                    if recs:
                        out.records[k].setdefault(event.patient_id, []).extend(recs)
            else:
                for ev in normalised.events:
                    take(ev)
                out.events += len(normalised.events)
                for k, r in enumerate(replayers):
                    for rec in r.feed_normalised(normalised):
                        out.records[k].setdefault(rec.patient_id, []).append(rec)
    for pid, b in builders.items():
        log = replayers[0].logs.get(pid)
        day0 = log.state.day0_ts if log is not None else None
        out.series[pid] = b.build(day0)
    out.seconds = time.perf_counter() - started
    return out
