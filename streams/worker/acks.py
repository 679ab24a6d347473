"""Ack messages in offset order, per topic partition, starting at the committed offset.

The worker finishes messages out of order: the event-time alignment holds some, and a
patient's messages are acked only when the changelog has the patient's log. faust 0.15.3
commits "the first run of consecutive acked offsets" and checks the gap before it only
when a commit already exists, and then off by one (`min(acked) - committed > 1`, in
`Consumer._new_offset`): with offset 11 acked and 10 not, it can commit 12, and a crash
then loses 10. So the worker hands each finished message here, and the gate passes acks to
faust strictly in offset order from the partition's committed offset: faust only ever sees
a contiguous run after its committed offset.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

M = TypeVar("M")


class AckGate(Generic[M]):
    def __init__(self, ack: Callable[[M], object], committed: Callable[[Hashable], int | None]) -> None:
        self._ack = ack
        self._committed = committed  # the partition's committed offset (next to read), if any
        self._offsets: dict[Hashable, list[int]] = {}  # sorted open offsets per partition
        self._open: dict[Hashable, dict[int, tuple[M, bool]]] = {}
        self._next: dict[Hashable, int] = {}  # next offset faust may be given an ack for

    def track(self, tp: Hashable, offset: int, message: M) -> None:
        if tp not in self._next:
            committed = self._committed(tp)
            self._next[tp] = offset if committed is None else min(committed, offset)
        opened = self._open.setdefault(tp, {})
        if offset not in opened:
            bisect.insort(self._offsets.setdefault(tp, []), offset)
        opened[offset] = (message, False)

    def done(self, tp: Hashable, offset: int) -> int:
        """Mark a message finished; ack every finished message from the partition's next
        offset on, up to the first unfinished or missing one. Returns how many were acked."""
        opened = self._open.get(tp)
        if opened is None or offset not in opened:
            return 0  # forgotten on a rebalance: faust redelivers it from the committed offset
        opened[offset] = (opened[offset][0], True)
        offsets = self._offsets[tp]
        acked = 0
        while offsets and offsets[0] == self._next[tp] and opened[offsets[0]][1]:
            first = offsets.pop(0)
            message, _ = opened.pop(first)
            self._ack(message)
            self._next[tp] = first + 1
            acked += 1
        return acked

    def open_count(self) -> int:
        return sum(len(o) for o in self._open.values())

    def forget(self) -> None:
        """After a rebalance faust seeks every partition back to its committed offset and
        redelivers what was not acked."""
        self._open.clear()
        self._offsets.clear()
        self._next.clear()
