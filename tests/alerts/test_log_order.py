"""The whole state does not depend on the arrival order within the lateness window.

Definition the worker's restart tests rest on: a patient's state is the fold of its events in
event-time order, (event time, event_id). Any arrival order in which no event is more than the
lateness window older than the patient's newest event gives that same state, field for field
(`iec_eval_ts`, the lab series and the checkpoints' lab parts included), also when the log is
stored and restored on the way (a restart). Minute-grid vitals make the window long enough for
checkpoints, settling and the lab fast path (alerts.log._insert_lab_commuting) to take part; labs
that open an IEC-HS suspicion make the hourly re-check run.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.log import CHECKPOINT_EVERY, log_from_json, log_to_json, new_log, step
from models.events import ClinicalEvent
from models.state import state_value
from tests.alerts.test_log import CFG, WINDOW_H, event_streams, in_order, run
from tests.factories import PID, lab, temp

_LABS = [
    ("ferritin", "ng/mL", [150000, 12000, 900, 300]),  # the last value of each is normal
    ("fibrinogen", "mg/dL", [40, 140, 300]),
    ("crp", "mg/L", [200, 5]),
    ("platelets", "10*9/L", [15, 150]),
]


@st.composite
def dense_streams(draw: st.DrawFn) -> list[ClinicalEvent]:
    events = draw(event_streams())
    every = draw(st.sampled_from([10, 20, 30]))  # minutes between vitals
    febrile_from, febrile_to = sorted(draw(st.lists(st.integers(0, 72), min_size=2, max_size=2)))
    for minute in range(0, 72 * 60, every):
        h = minute / 60
        events.append(temp(h, 38.6 if febrile_from <= h < febrile_to else 37.0, event_id=f"v{minute}"))
    quiet = draw(st.booleans())  # normal labs only: the lab fast path applies while IEC-HS is off
    for day in range(3):
        for analyte, unit, values in _LABS:
            drawn = day * 24 + 6 + draw(st.integers(0, 12)) / 6
            value = values[-1] if quiet else draw(st.sampled_from(values))
            events.append(lab(drawn, analyte, value, unit, event_id=f"l{day}{analyte}"))
    return events


def arrival(events: list[ClinicalEvent], rng: random.Random) -> list[ClinicalEvent]:
    """Each event delayed by up to `spread` of the window: never beyond it."""
    spread = rng.choice([0.05, 0.5, 0.95])
    delayed = [(e.ts + rng.uniform(0, WINDOW_H * 3600 * spread), e.event_id, e) for e in events]
    return [e for _, _, e in sorted(delayed, key=lambda d: (d[0], d[1]))]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(dense_streams(), st.integers(0, 2**16))
def test_any_arrival_order_within_the_window_gives_the_event_time_fold(events: list[ClinicalEvent],
                                                                         seed: int) -> None:
    want, _ = run(in_order(events))
    rng = random.Random(seed)
    log = new_log(PID)
    for e in arrival(events, rng):
        assert step(log, e, CFG).outcome != "late"
        if rng.random() < 1 / CHECKPOINT_EVERY:
            log = log_from_json(log_to_json(log), CFG)  # stored and restored: a restart
    got, expected = state_value(log.head), state_value(want.head)
    assert isinstance(got, dict) and isinstance(expected, dict)
    assert got == expected, {k: (got[k], v) for k, v in expected.items() if got[k] != v}
    # what a restart would read back is that same state
    assert state_value(log_from_json(log_to_json(log), CFG).head) == expected
