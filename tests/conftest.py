"""Test-wide settings, and the guard that keeps the `broker` and `binaries` markers honest.

The markers (registered in pyproject.toml) give a fast loop: `pytest -m "not broker and not binaries"`.
A test that requests a broker fixture must carry `broker`, one that starts Prometheus or Alertmanager must
carry `binaries`; otherwise collection fails, so the fast loop cannot silently start a broker or a binary.
Tests that call `promtool()` / `amtool()` directly are marked by hand (docs/development.md).
"""

from __future__ import annotations

import pytest

import alerts.log

# Every late lab that takes the fast path is checked against the full re-fold.
alerts.log.VERIFY_FAST_PATH = True

MARKER_FIXTURES = {
    "broker": {"kafka_broker", "fresh_broker", "proxied_broker"},
    "binaries": {"start_prometheus", "start_alertmanager"},
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = [
        f"{item.nodeid} uses {sorted(fixtures & set(getattr(item, 'fixturenames', ())))} without @pytest.mark.{marker}"
        for item in items
        for marker, fixtures in MARKER_FIXTURES.items()
        if fixtures & set(getattr(item, "fixturenames", ())) and item.get_closest_marker(marker) is None
    ]
    if missing:
        raise pytest.UsageError("unmarked slow tests:\n" + "\n".join(missing))
