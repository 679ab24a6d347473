from __future__ import annotations

from collections.abc import Hashable

from streams.worker.acks import AckGate


def no_commit(tp: Hashable) -> int | None:
    return None


def test_acks_pass_in_offset_order_only() -> None:
    acked: list[int] = []
    gate: AckGate[int] = AckGate(acked.append, no_commit)
    for offset in (10, 11, 12):
        gate.track("t0", offset, offset)
    assert gate.done("t0", 11, 11) == 0 and gate.done("t0", 12, 12) == 0  # 10 is still open
    assert acked == []
    assert gate.done("t0", 10, 10) == 3
    assert acked == [10, 11, 12] and gate.open_count() == 0


def test_nothing_is_acked_past_an_offset_not_yet_delivered() -> None:
    # committed 10; 11 arrives before 10 (delivered from before a rebalance, 10 comes on the seek)
    acked: list[int] = []
    gate: AckGate[int] = AckGate(acked.append, lambda tp: 10)
    gate.track("t0", 11, 11)
    assert gate.done("t0", 11, 11) == 0 and acked == []  # faust would commit 12 and skip 10
    gate.track("t0", 10, 10)
    assert gate.done("t0", 10, 10) == 2 and acked == [10, 11]


def test_partitions_are_independent_and_forgotten_messages_are_not_acked() -> None:
    acked: list[str] = []
    gate: AckGate[str] = AckGate(acked.append, no_commit)
    gate.track("a", 0, "a0")
    gate.track("b", 0, "b0")
    assert gate.done("b", 0, "b0") == 1 and acked == ["b0"]
    gate.forget()
    assert gate.done("a", 0, "a0") == 0 and acked == ["b0"]


def test_an_offset_delivered_twice_is_acked_only_when_both_deliveries_are_finished() -> None:
    # After a rebalance faust handed over 11 fetched before its seek (folded, its log not yet
    # stored), then 10 and 11 again from the seek; the second 11 is a duplicate at once. Acking
    # 11 then would let faust commit 12 while the first 11 exists only in memory.
    acked: list[str] = []
    gate: AckGate[str] = AckGate(acked.append, lambda tp: 10)
    gate.track("t0", 11, "11 before the seek")
    gate.track("t0", 10, "10")
    gate.track("t0", 11, "11 again")
    assert gate.done("t0", 11, "11 again") == 0
    assert gate.done("t0", 10, "10") == 1 and acked == ["10"]  # 11: its first delivery is open
    assert gate.done("t0", 11, "11 before the seek") == 1 and acked == ["10", "11 before the seek"]


def test_a_finish_for_a_delivery_from_before_a_rebalance_acks_nothing() -> None:
    # A changelog write confirmed after the rebalance forgot the gate: its messages were
    # delivered again since, and the new deliveries are not stored yet.
    acked: list[str] = []
    gate: AckGate[str] = AckGate(acked.append, lambda tp: 5)
    gate.track("t0", 5, "old")
    gate.forget()
    gate.track("t0", 5, "new")
    assert gate.done("t0", 5, "old") == 0 and acked == []
    assert gate.done("t0", 5, "new") == 1 and acked == ["new"]
