"""`crswatch mllp` over a real socket on 127.0.0.1: ACK codes with reasons, events to the sink or the broker."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.mllp import JsonlSink, KafkaSink, Listener, start
from streams.topics import DEAD_LETTER, VITALS
from tests.streams.conftest import free_port
from tests.streams.feeds.test_hl7v2 import PCD01, oru

VT, FS, CR = b"\x0b", b"\x1c", b"\r"


def exchange(port: int, *payloads: bytes) -> list[str]:
    """Send MLLP frames on one connection and return the ACK of each."""
    acks = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        buf = b""
        for payload in payloads:
            sock.sendall(payload)
            while FS + CR not in buf:
                chunk = sock.recv(65536)
                assert chunk, "connection closed before the ACK"
                buf += chunk
            frame, buf = buf.split(FS + CR, 1)
            assert frame.startswith(VT)
            acks.append(frame[1:].decode())
    return acks


def frame(message: str) -> bytes:
    return VT + message.encode() + FS + CR


def msa(ack: str) -> list[str]:
    segment = next(s for s in ack.split("\r") if s.startswith("MSA"))
    return segment.split("|")


@pytest.fixture
def listener() -> Iterator[tuple[int, Listener, io.StringIO, io.StringIO]]:
    out, errors = io.StringIO(), io.StringIO()
    lst = Listener(JsonlSink(out, errors))
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(start(lst, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    async def shutdown() -> None:
        server.close()
        await server.wait_closed()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        yield port, lst, out, errors
    finally:
        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def test_aa_ae_and_ar_with_reasons(listener: tuple[int, Listener, io.StringIO, io.StringIO]) -> None:
    port, lst, out, errors = listener
    partly = oru("OBX|1|NM|8867-4^HR^LN||80|/min^^UCUM|||||F", "OBX|2|NM|2276-4^Ferritin^LN||9|mg^^UCUM|||||F")
    acks = exchange(port, frame(PCD01), frame(partly), frame("this is not HL7"),
                    frame(oru().replace("ORU^R01^ORU_R01", "ADT^A01^ADT_A01")), b"no start block" + FS + CR)
    assert msa(acks[0])[1:3] == ["AA", "MSG1"]
    assert msa(acks[1])[1] == "AE" and "unit 'mg' not accepted for LOINC 2276-4" in acks[1]
    assert "ERR|||207^Application internal error^HL70357|E" in acks[1]
    assert msa(acks[2])[1] == "AR" and "not an HL7 v2 message" in acks[2]
    assert msa(acks[3])[1] == "AR" and "crswatch takes ORU" in acks[3]
    assert msa(acks[4])[1] == "AR" and "invalid MLLP frame" in acks[4]
    assert acks[0].startswith("MSH|^~\\&|CRSWATCH|CRSWATCH|GATEWAY|ICU|") and "|ACK^R01^ACK|" in acks[0]
    assert lst.acks == {"AA": 1, "AE": 1, "AR": 2}
    assert lst.units == {"accepted": 8, "rejected": 3, "ignored": 1}  # PCD01 has a device header: ignored
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["kind"] for e in events] == ["vitals", "vitals"]  # PCD01, and the good OBX of the partial message
    dead = [json.loads(line) for line in errors.getvalue().splitlines()]
    assert {d["category"] for d in dead} == {"invalid_value", "not_hl7", "unsupported"}
    # the one dead-letter shape (streams.feeds.normalised.dead_letter_record), from a feed unit
    assert all(set(d) == {"topic", "partition", "offset", "key", "source", "raw", "raw_encoding", "reason",
                          "category", "time"} and d["source"] and d["topic"] is None for d in dead)


def test_a_message_with_only_ignored_content_is_acknowledged_aa_and_counted(
        listener: tuple[int, Listener, io.StringIO, io.StringIO]) -> None:
    port, lst, out, errors = listener
    headers = oru("OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X",
                  "OBX|2||69798^MDC_DEV_ECG_VMD^MDC|1.5.0.0|||||||X",
                  "OBX|3|NM|147842^MDC_ECG_HEART_RATE^MDC|1.5.1.1|118|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||X")
    (ack,) = exchange(port, frame(headers))
    assert msa(ack) == ["MSA", "AA", "MSG1"]  # no reason: nothing was wrong
    assert lst.acks == {"AA": 1, "AE": 0, "AR": 0}
    assert lst.units == {"accepted": 0, "rejected": 0, "ignored": 3}
    assert out.getvalue() == "" and errors.getvalue() == ""  # no event, no dead letter


def test_a_failing_sink_is_acknowledged_as_an_error(listener: tuple[int, Listener, io.StringIO, io.StringIO]) -> None:
    port, lst, _, _ = listener

    class Broken:
        def deliver(self, result: object) -> None:
            raise OSError("disk full")

        def close(self) -> None: ...

    lst.sink = Broken()
    (ack,) = exchange(port, frame(PCD01))
    assert msa(ack)[1] == "AE" and "not stored" in ack and "disk full" in ack


def test_the_command_listens_on_127_0_0_1_and_writes_jsonl(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "events.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "mllp", "--port", str(port), "--out", str(out)],
                            stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
                            env={**os.environ, "CRSWATCH_BROKER": ""})
    try:
        assert proc.stderr is not None
        assert "listening on 127.0.0.1:" in proc.stderr.readline()
        (ack,) = exchange(port, frame(PCD01))
        assert msa(ack)[1] == "AA"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "'AA': 1" in err
    assert "units {'accepted': 7, 'rejected': 0, 'ignored': 1}" in err
    (event,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert event["patient_id"] == "MRN123" and event["spo2"]["value"] == 91


@pytest.mark.broker
def test_kafka_sink_produces_events_and_dead_letters(kafka_broker: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaConsumer

    sink = KafkaSink(kafka_broker, partitions=2)
    lst = Listener(sink)
    try:
        ack = lst.process(frame(oru("OBX|1|NM|8867-4^HR^LN||80|/min^^UCUM|||||F",
                                    "OBX|2|NM|8310-5^T^LN||38|mg^^UCUM|||||F"))[1:-2], "test")
    finally:
        sink.close()
    assert msa(ack)[1] == "AE"
    consumer = KafkaConsumer(VITALS, DEAD_LETTER, bootstrap_servers=kafka_broker, auto_offset_reset="earliest",
                             consumer_timeout_ms=3000, enable_auto_commit=False)
    deadline = time.monotonic() + 20
    got: dict[str, list[tuple[bytes | None, bytes]]] = {}
    try:
        while time.monotonic() < deadline and len(got) < 2:
            for m in consumer:
                got.setdefault(m.topic, []).append((m.key, m.value))
    finally:
        consumer.close()
    ((key, value),) = got[VITALS]
    assert key == b"MRN123" and json.loads(value)["heart_rate"]["value"] == 80
    ((_, dead),) = got[DEAD_LETTER]
    letter = json.loads(dead)
    assert letter["category"] == "invalid_value" and "unit 'mg' not accepted" in letter["reason"]
    assert letter["raw"].startswith("OBX|2|") and letter["source"] == "mllp:test OBX 2"
