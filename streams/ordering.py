"""Replay order as a property of the data: events sorted on disk, not in memory.

`--order known` (default): by when each fact became known (streams.feeds.known), then event
time, then event_id, patient, version, retraction last and finally the event's JSON, so
that the order, and with it every record the fold emits, does not depend on file layout or
line order. Fed in this order, the fold meets each event when a live monitor would have, and
its lateness window (alerts.log) marks late exactly the events a live monitor would have
folded late. Ties in known time fall to event time and event_id, the order the fold itself
keeps inside the window.
`--order event`: by event time first (retrospective chart review: nothing is late unless two
facts share a time and a version order forces one behind).
`--order file`: the order read (a captured live feed whose order is the arrival order).

Versions: for one FHIR logical id, a later version (or the entered-in-error retraction) is
never ordered before an earlier one: its sort time is at least the latest sort time of
every earlier version of that logical id (a SQL window over the logical id).

Memory: the events go to an sqlite table in a temporary file; sqlite sorts on disk (external
merge sort, `temp_store=FILE`, a bounded page cache), so memory does not grow with the
number of events. The file is removed when the sorter is closed.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from typing import Literal, get_args

from models.events import ClinicalEvent, Retract, parse_event

Order = Literal["known", "event", "file"]
ORDERS: tuple[str, ...] = get_args(Order)
CACHE_KIB = 16 * 1024  # sqlite page cache in KiB; each sort (two: version window, order) uses about as much again
_BATCH = 5000

_SCHEMA = """CREATE TABLE ev (
    k REAL NOT NULL,      -- primary sort time: known time, or event time for --order event
    ts REAL NOT NULL,     -- event time
    eid TEXT NOT NULL,
    pid TEXT NOT NULL,
    lid TEXT,             -- logical id (FHIR Type/id), NULL if none
    ver INTEGER NOT NULL, -- version, -1 if none
    retract INTEGER NOT NULL,
    known REAL NOT NULL,
    source TEXT NOT NULL,
    body TEXT NOT NULL    -- the event as JSON
)"""

# Each row's sort time is raised to the latest sort time of the earlier versions of its logical
# id (peers: the events of one version, e.g. an infusion's start and end, keep their own).
_SELECT = """SELECT source, known, body FROM (
    SELECT source, known, body, ts, eid, pid, ver, retract,
           CASE WHEN lid IS NULL THEN k ELSE MAX(k, COALESCE(MAX(k) OVER (
               PARTITION BY lid ORDER BY ver, retract GROUPS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), k))
           END AS sk
    FROM ev)
ORDER BY sk, ts, eid, pid, ver, retract, body"""


class Sorter:
    """Add (source, event, known time); iterate them in the chosen order (once)."""

    def __init__(self, order: Order, directory: str | None = None, cache_kib: int = CACHE_KIB) -> None:
        if order not in ("known", "event"):
            raise ValueError(f"Sorter sorts by known or event time, not {order!r}")
        self.order = order
        fd, self.path = tempfile.mkstemp(prefix="crswatch-order-", suffix=".sqlite", dir=directory)
        os.close(fd)
        self._db = sqlite3.connect(self.path)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE", f"cache_size=-{cache_kib}",
                       "locking_mode=EXCLUSIVE"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute(_SCHEMA)
        self._rows: list[tuple[object, ...]] = []
        self.count = 0

    def add(self, source: str, event: ClinicalEvent, known: float) -> None:
        ts = event.ts
        self._rows.append((known if self.order == "known" else ts, ts, event.event_id, event.patient_id,
                           event.logical_id, -1 if event.version is None else event.version,
                           int(isinstance(event, Retract)), known, source, event.model_dump_json(exclude_none=True)))
        self.count += 1
        if len(self._rows) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        self._db.executemany("INSERT INTO ev VALUES (?,?,?,?,?,?,?,?,?,?)", self._rows)
        self._rows.clear()

    def __iter__(self) -> Iterator[tuple[str, ClinicalEvent, float]]:
        """(source, event, known time) in order."""
        self._flush()
        self._db.commit()
        for source, known, body in self._db.execute(_SELECT):
            yield source, parse_event(body), known

    def close(self) -> None:
        self._db.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> Sorter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
