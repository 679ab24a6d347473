"""Event-time alignment of the co-partitioned input topics, one partition number at a time.

Kafka orders messages within a partition, never across topics. A worker that reads a fast
replay can get a patient's whole `vitals` history before the `treatments` of the same days;
the vasopressor start would then be days older than the newest vitals, beyond the lateness
window, and the grades would differ from the embedded replay. So, like Kafka Streams'
`max.task.idle.ms` (KIP-353, and KIP-695 for the caught-up check), messages are held per
partition number and released smallest event time first, but only while every input topic
of that partition either has a message buffered or is caught up (nothing more to read in
the broker). A topic known to be behind (the broker's high watermark is past what was
delivered) has data on its way and is waited for, up to `max_behind` seconds as a safety
cap; a topic whose position is unknown is waited for at most `max_idle` seconds.

"Caught up" must hold as of a fetch no older than the message to be released: each message
carries when it was fetched (`seen`), and the caller is asked where a topic stands as of
then. A high watermark from an older fetch misses what was published since (a consumer
skips a partition in a fetch while it still buffers records from it), and a fast replay
published while the worker reads it would otherwise let the vitals run hours past a lab
already in the broker.

Pure: the caller says where each topic stands and what time it is.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, Literal, TypeVar

T = TypeVar("T")
Standing = Literal["caught_up", "behind", "unknown"]
# where a topic of a partition stands, as of a fetch no older than `seen` (None: any fetch)
StandingOf = Callable[[str, int, "float | None"], Standing]


class TimeAligner(Generic[T]):
    def __init__(self, topics: Sequence[str], max_idle: float, max_behind: float = 30.0) -> None:
        self.topics = tuple(topics)
        self.max_idle = max_idle
        self.max_behind = max_behind
        self.gave_up = 0  # releases that did not wait for a topic known to be behind
        self.idled_out = 0  # releases after max_idle for a topic whose position was unknown
        self._queues: dict[int, dict[str, deque[tuple[float, float | None, T]]]] = {}
        self._blocked_since: dict[int, float] = {}
        self._held = 0

    def __len__(self) -> int:
        return self._held

    def push(self, topic: str, partition: int, ts: float, item: T, seen: float | None = None) -> None:
        """Hold a message of event time `ts`, fetched at `seen` (the caller's clock)."""
        queues = self._queues.get(partition)
        if queues is None:
            queues = self._queues[partition] = {t: deque() for t in self.topics}
        queues[topic].append((ts, seen, item))
        self._held += 1

    def pop_ready(self, partition: int, standing: StandingOf, now: float) -> list[T]:
        """Release, in event-time order, what can be released for this partition now."""
        queues = self._queues.get(partition)
        out: list[T] = []
        if queues is None:
            return out
        while True:
            heads = [(q[0][0], t) for t, q in queues.items() if q]
            if not heads:
                self._blocked_since.pop(partition, None)
                break
            _, topic = min(heads)
            seen = queues[topic][0][1]
            waits = [standing(t, partition, seen) for t, q in queues.items() if not q]
            waits = [w for w in waits if w != "caught_up"]
            if waits:
                since = self._blocked_since.setdefault(partition, now)
                limit = self.max_behind if "behind" in waits else self.max_idle
                if now - since < limit:
                    break
                if "behind" in waits:
                    self.gave_up += 1
                else:
                    self.idled_out += 1
            else:
                self._blocked_since.pop(partition, None)
            out.append(queues[topic].popleft()[2])
            self._held -= 1
        return out

    def waiting(self) -> list[int]:
        """Partitions holding messages."""
        return [p for p, qs in self._queues.items() if any(qs.values())]

    def drop(self, partitions: Iterable[int]) -> list[T]:
        """Forget held messages of partitions this worker no longer owns; returns them."""
        dropped: list[T] = []
        for p in partitions:
            queues = self._queues.pop(p, None)
            self._blocked_since.pop(p, None)
            if queues:
                for q in queues.values():
                    dropped.extend(item for _, _, item in q)
        self._held -= len(dropped)
        return dropped
