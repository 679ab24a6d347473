"""Figure data: downsampling keeps real readings (the extremes of each bucket), versions and retractions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from models.events import ClinicalEvent, DrugDose, LabResult, Measurement, Provenance, Retract, VitalSigns
from models.vocabulary import LabAnalyte
from streams.review.series import SeriesBuilder, clock, day_x

P = Provenance(source="test")
T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)


def ev(kind: type[Any], minutes: float, **kw: Any) -> ClinicalEvent:
    return kind(event_id=f"e{minutes}-{kw}", patient_id="p", time=T0 + timedelta(minutes=minutes), provenance=P,
                **kw)  # type: ignore[no-any-return]


def test_downsampling_keeps_each_buckets_lowest_and_highest_real_reading() -> None:
    rng = random.Random(7)
    b = SeriesBuilder("p", bucket_seconds=900)
    readings: dict[float, float] = {}
    for minute in range(24 * 60):
        t = round(rng.gauss(37.2, 0.4), 1)
        if minute == 611:
            t = 39.4  # a single febrile minute must survive
        e = ev(VitalSigns, minute, temperature=Measurement(value=t, unit="Cel"))
        readings[e.ts] = t
        b.add(e)
    pts = b.build().vitals["temperature"]
    assert len(pts) <= 2 * 96 < len(readings) / 7
    for p in pts:
        assert readings[p.ts] == p.value  # a real reading at its own time
        inside = [v for ts, v in readings.items() if p.bucket_start <= ts < p.bucket_end]
        assert p.n == len(inside)
        assert p.value == (min(inside) if p.role == "min" else max(inside) if p.role == "max" else p.value)
    assert max(p.value for p in pts) == 39.4 == max(readings.values())
    assert min(p.value for p in pts) == min(readings.values())


def test_an_older_version_and_a_retracted_lab_are_not_drawn() -> None:
    b = SeriesBuilder("p")
    b.add(ev(DrugDose, 0, drug="tisagenlecleucel"))
    b.add(ev(LabResult, 60, analyte=LabAnalyte.FERRITIN, value=900, unit="ng/mL", logical_id="lab1", version=1))
    b.add(ev(LabResult, 60, analyte=LabAnalyte.FERRITIN, value=1200, unit="ng/mL", logical_id="lab1", version=2))
    b.add(ev(LabResult, 120, analyte=LabAnalyte.FERRITIN, value=5000, unit="ng/mL", logical_id="lab2"))
    b.add(ev(Retract, 130, retracts="lab2"))
    s = b.build()
    assert [m.value for m in s.labs["ferritin"]] == [1200]
    assert s.day0_ts == T0.timestamp()


def test_day_axis_follows_the_folds_calendar_days() -> None:
    day0 = T0.timestamp()  # 10:00 on Day 0
    assert day_x(day0, day0, day0) == 10 / 24
    later = (T0 + timedelta(days=21, hours=-2)).timestamp()  # Day +21 08:00
    assert round(day_x(later, day0, day0), 4) == round(21 + 8 / 24, 4)
    assert clock(later, day0, 3600).startswith("Day +21 08:00 UTC (2026-01-26 09:00 +01:00)")
