from __future__ import annotations

from streams.acks import AckGate


def test_acks_pass_in_offset_order_only() -> None:
    acked: list[int] = []
    gate: AckGate[int] = AckGate(acked.append)
    for offset in (10, 11, 12):
        gate.track("t0", offset, offset)
    assert gate.done("t0", 11) == 0 and gate.done("t0", 12) == 0  # 10 is still open
    assert acked == []
    assert gate.done("t0", 10) == 3
    assert acked == [10, 11, 12] and gate.open_count() == 0


def test_partitions_are_independent_and_forgotten_messages_are_not_acked() -> None:
    acked: list[str] = []
    gate: AckGate[str] = AckGate(acked.append)
    gate.track("a", 0, "a0")
    gate.track("b", 0, "b0")
    assert gate.done("b", 0) == 1 and acked == ["b0"]
    gate.forget()
    assert gate.done("a", 0) == 0 and acked == ["b0"]
