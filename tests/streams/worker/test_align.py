from __future__ import annotations

from streams.worker.align import Standing, TimeAligner

TOPICS = ("vitals", "labs", "treatments")


def everyone_caught_up(topic: str, partition: int, seen: float | None) -> Standing:
    return "caught_up"


def test_releases_the_smallest_event_time_first_across_topics() -> None:
    a: TimeAligner[str] = TimeAligner(TOPICS, max_idle=2.0)
    a.push("vitals", 0, 10.0, "v10")
    a.push("vitals", 0, 30.0, "v30")
    a.push("treatments", 0, 20.0, "t20")
    assert a.pop_ready(0, everyone_caught_up, now=0.0) == ["v10", "t20", "v30"]
    assert len(a) == 0


def test_holds_while_an_empty_topic_is_unknown_then_gives_up_after_max_idle() -> None:
    a: TimeAligner[str] = TimeAligner(TOPICS, max_idle=2.0)
    a.push("vitals", 1, 10.0, "v10")

    def labs_behind(topic: str, partition: int, seen: float | None) -> Standing:
        return "unknown" if topic == "labs" else "caught_up"

    assert a.pop_ready(1, labs_behind, now=100.0) == []
    assert a.waiting() == [1]
    assert a.pop_ready(1, labs_behind, now=101.0) == []
    a.push("labs", 1, 5.0, "l5")  # the late topic delivers an older event: it goes first
    assert a.pop_ready(1, labs_behind, now=101.5) == ["l5"]
    assert a.pop_ready(1, labs_behind, now=102.0) == []  # labs empty and behind again: wait anew
    assert a.idled_out == 0
    assert a.pop_ready(1, labs_behind, now=104.1) == ["v10"]
    assert a.idled_out == 1 and a.gave_up == 0  # counted apart from giving up on a topic known behind


def test_partitions_are_independent_and_dropped_on_rebalance() -> None:
    a: TimeAligner[str] = TimeAligner(TOPICS, max_idle=2.0)
    a.push("vitals", 0, 10.0, "p0")
    a.push("vitals", 1, 5.0, "p1")
    assert a.pop_ready(1, everyone_caught_up, now=0.0) == ["p1"]
    assert a.drop([0]) == ["p0"]
    assert len(a) == 0 and a.waiting() == []


def test_fifo_within_a_topic_even_when_event_time_goes_back() -> None:
    # a topic partition is delivered in offset order; a late lab stays behind what came before it
    a: TimeAligner[str] = TimeAligner(TOPICS, max_idle=2.0)
    a.push("labs", 0, 50.0, "l50")
    a.push("labs", 0, 40.0, "l40")
    assert a.pop_ready(0, everyone_caught_up, now=0.0) == ["l50", "l40"]


def test_a_topic_known_to_be_behind_is_waited_for_longer() -> None:
    a: TimeAligner[str] = TimeAligner(TOPICS, max_idle=2.0, max_behind=30.0)
    a.push("vitals", 0, 10.0, "v10")

    def labs_has_data_coming(topic: str, partition: int, seen: float | None) -> Standing:
        return "behind" if topic == "labs" else "caught_up"

    assert a.pop_ready(0, labs_has_data_coming, now=0.0) == []
    assert a.pop_ready(0, labs_has_data_coming, now=10.0) == []  # past max_idle, still waiting
    assert a.gave_up == 0
    assert a.pop_ready(0, labs_has_data_coming, now=30.0) == ["v10"]  # safety cap
    assert a.gave_up == 1


def test_standing_is_asked_as_of_the_fetch_of_the_message_to_release() -> None:
    # labs' high watermark is from a fetch at t=5; a vital fetched at t=8 may not pass labs
    # until a fetch at or after t=8 says labs has nothing more (published since t=5)
    a: TimeAligner[str] = TimeAligner(TOPICS, max_idle=2.0, max_behind=30.0)
    labs_polled = 5.0
    asked: list[tuple[str, float | None]] = []

    def standing(topic: str, partition: int, seen: float | None) -> Standing:
        asked.append((topic, seen))
        if topic == "labs" and seen is not None and labs_polled < seen:
            return "behind"
        return "caught_up"

    a.push("vitals", 0, 100.0, "v100", seen=4.0)
    a.push("vitals", 0, 200.0, "v200", seen=8.0)
    assert a.pop_ready(0, standing, now=0.0) == ["v100"]  # fetched before labs' last fetch
    assert ("labs", 4.0) in asked
    assert a.pop_ready(0, standing, now=1.0) == []
    a.push("labs", 0, 150.0, "l150", seen=9.0)  # the next fetch brings a lab published since
    assert a.pop_ready(0, standing, now=1.5) == ["l150"]
    labs_polled = 9.0
    assert a.pop_ready(0, standing, now=1.6) == ["v200"]
    assert a.gave_up == 0
