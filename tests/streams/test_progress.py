"""The publish progress line: events, rate and simulated clock; live on a terminal, sparse in a log."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from streams.progress import Progress

T0 = datetime(2024, 1, 14, 10, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_in_a_log_a_line_every_log_every_seconds_and_a_short_run_stays_silent() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress("publish", out, interactive=False, log_every=5.0, clock=clock)
    clock.now += 4.9
    p.update(10, T0)
    assert out.getvalue() == ""
    clock.now += 0.2
    p.update(12, T0 + 3600)
    assert out.getvalue() == "publish: 12 events, 2 ev/s, simulated clock 2024-01-14 11:00 UTC\n"
    p.close(20, T0 + 7200)
    assert out.getvalue().splitlines()[-1] == "publish: 20 events, 4 ev/s, simulated clock 2024-01-14 12:00 UTC"
    quiet, clock2 = io.StringIO(), Clock()
    q = Progress("publish", quiet, interactive=False, clock=clock2)
    clock2.now += 1.0
    q.update(3, T0)
    q.close(3, T0)
    assert quiet.getvalue() == ""


def test_on_a_terminal_the_line_is_rewritten_in_place_and_ended_once() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress("publish", out, interactive=True, every=0.5, clock=clock)
    for n in range(1, 5):
        clock.now += 0.6
        p.update(n * 100, None)
    p.close(400, None)
    text = out.getvalue()
    assert text.count("\r") == 5 and text.endswith("\n") and text.count("\n") == 1
    assert "publish: 400 events" in text and "simulated clock" not in text
