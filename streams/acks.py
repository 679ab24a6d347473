"""Ack messages in offset order, per topic partition.

The worker finishes messages out of order: the event-time alignment holds some, and a
patient's messages are acked only when the changelog has the patient's log. faust 0.15.3
commits "the first run of consecutive acked offsets" and checks the gap before it only
when a commit already exists, and then off by one (`min(acked) - committed > 1`, in
`Consumer._new_offset`): with offsets 11 and 12 acked and 10 not, it can commit 13 and a
crash loses 10. So the worker hands each finished message here, and the gate passes acks
to faust strictly in offset order: faust only ever sees a contiguous run from its
committed offset.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

M = TypeVar("M")


class AckGate(Generic[M]):
    def __init__(self, ack: Callable[[M], object]) -> None:
        self._ack = ack
        # partition -> offset -> [message, finished]; messages arrive in offset order
        self._open: dict[Hashable, OrderedDict[int, list[object]]] = {}

    def track(self, tp: Hashable, offset: int, message: M) -> None:
        self._open.setdefault(tp, OrderedDict())[offset] = [message, False]

    def done(self, tp: Hashable, offset: int) -> int:
        """Mark a message finished; ack it and every finished one after it that has no
        unfinished message before it. Returns how many were acked."""
        queue = self._open.get(tp)
        if queue is None or offset not in queue:
            return 0  # forgotten on a rebalance: faust redelivers it from the committed offset
        queue[offset][1] = True
        acked = 0
        while queue:
            first = next(iter(queue.values()))
            if not first[1]:
                break
            _, (message, _) = queue.popitem(last=False)
            self._ack(message)  # type: ignore[arg-type]
            acked += 1
        return acked

    def open_count(self) -> int:
        return sum(len(q) for q in self._open.values())

    def forget(self) -> None:
        """After a rebalance faust seeks every partition back to its committed offset and
        redelivers what was not acked."""
        self._open.clear()
