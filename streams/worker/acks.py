"""Ack messages in offset order, per topic partition, starting at the committed offset.

The worker finishes messages out of order: the event-time alignment holds some, and a
patient's messages are acked only when the changelog has the patient's log. faust 0.15.3
commits "the first run of consecutive acked offsets" and checks the gap before it only
when a commit already exists, and then off by one (`min(acked) - committed > 1`, in
`Consumer._new_offset`): with offset 11 acked and 10 not, it can commit 12, and a crash
then loses 10. So the worker hands each finished message here, and the gate passes acks to
faust strictly in offset order from the partition's committed offset: faust only ever sees
a contiguous run after its committed offset.

One offset can be delivered more than once while it is open: right after a rebalance faust
can hand over a message fetched before its seek to the committed offset, then the same
offset again from the seek. Each delivery is tracked and finished on its own (by identity),
and an offset is acked only when every delivery of it is finished: the copy recognised as a
duplicate at once must not ack an offset whose first copy is folded but not yet stored. A
finish for a delivery the gate does not hold (forgotten on a rebalance) acks nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

M = TypeVar("M")


class AckGate(Generic[M]):
    def __init__(self, ack: Callable[[M], object], committed: Callable[[Hashable], int | None]) -> None:
        self._ack = ack
        self._committed = committed  # the partition's committed offset (next to read), if any
        # sorted open offsets per partition: a deque, since offsets come mostly in order and leave
        # from the front (a list's pop(0) moved every open offset, per ack)
        self._offsets: dict[Hashable, deque[int]] = {}
        # offset -> its deliveries, each [message, finished]
        self._open: dict[Hashable, dict[int, list[list[Any]]]] = {}
        self._next: dict[Hashable, int] = {}  # next offset faust may be given an ack for

    def track(self, tp: Hashable, offset: int, message: M) -> None:
        if tp not in self._next:
            committed = self._committed(tp)
            self._next[tp] = offset if committed is None else min(committed, offset)
        opened = self._open.setdefault(tp, {})
        deliveries = opened.get(offset)
        if deliveries is None:
            deliveries = opened[offset] = []
            offsets = self._offsets.get(tp)
            if offsets is None:
                offsets = self._offsets[tp] = deque()
            if not offsets or offset > offsets[-1]:
                offsets.append(offset)
            else:  # delivered out of offset order (after a seek back): rare
                ordered = sorted([*offsets, offset])
                offsets.clear()
                offsets.extend(ordered)
        deliveries.append([message, False])

    def done(self, tp: Hashable, offset: int, message: M) -> int:
        """Mark this delivery finished; ack every offset from the partition's next one on whose
        deliveries are all finished, up to the first that is not or is missing. Returns how
        many were acked."""
        deliveries = self._open.get(tp, {}).get(offset)
        delivery = next((d for d in deliveries or () if d[0] is message), None)
        if delivery is None:
            return 0  # forgotten on a rebalance: faust redelivers it from the committed offset
        delivery[1] = True
        opened = self._open[tp]
        offsets = self._offsets[tp]
        acked = 0
        while offsets and offsets[0] == self._next[tp] and all(d[1] for d in opened[offsets[0]]):
            first = offsets.popleft()
            self._ack(opened.pop(first)[0][0])
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
