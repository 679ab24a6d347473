"""`crswatch mllp`: an MLLP listener for HL7 v2 ORU^R01 that ACKs each message and feeds the stream.

Framing (<VT> message <FS><CR>) is python-hl7's asyncio MLLP server. Each message is
normalised (streams.feeds.hl7v2), delivered to a sink, and then acknowledged:
- AA: every OBX gave an event or carried no value (a message of device and channel headers
  only, or of status X results, is AA: ignored, but counted in `Listener.units`);
- AE: the message was read but some OBX were rejected (the others were delivered), or the
  sink failed (nothing is acknowledged as stored; the sender may resend: the event ids are
  stable, so a resend is a duplicate for the fold);
- AR: the message as a whole was refused (not HL7, not ORU^R01, no PID-3).
MSA-3 and one ERR segment per rejection carry the reasons.

Sinks: Kafka (kafka-python, like `crswatch publish`): events to their input topic keyed by
patient_id with the event time as message time, rejections to `dead-letter` as JSON
{"raw", "reason", "category", "source", "time"}; or, without a broker, native JSONL events
to a file or stdout and dead letters as JSON lines on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from streams.feeds.hl7v2 import Encoding, normalise_hl7, split_messages
from streams.feeds.normalised import Normalised
from streams.topics import DEAD_LETTER, input_topic

if TYPE_CHECKING:
    from streams.observability.metrics import Metrics

MSA_TEXT_MAX = 80  # MSA-3 is 80 characters in HL7 v2.x


@dataclass(frozen=True, slots=True)
class Limits:
    """What one listener holds at most (IN-HOUSE DEFAULTS; docs/privacy.md). An ORU^R01 from a bedside
    monitor or a lab is a few kB: a message over `max_message_bytes` is refused (AR) and its connection
    closed, since the rest of its frame cannot be told from the next one. A connection with no complete
    message for `idle_seconds` (idle, or a frame that never ends) is closed; MLLP senders reconnect.
    Connections beyond `max_connections` are closed at once."""

    max_message_bytes: int = 1_048_576
    idle_seconds: float = 120.0
    max_connections: int = 64
_ack_ids = count(1)


class Sink(Protocol):
    def deliver(self, result: Normalised) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """Events as native JSONL to `out`; dead letters as JSON lines to `errors`."""

    def __init__(self, out: TextIO, errors: TextIO = sys.stderr) -> None:
        self.out, self.errors = out, errors

    def deliver(self, result: Normalised) -> None:
        for ev in result.events:
            self.out.write(ev.model_dump_json(exclude_none=True) + "\n")
        for rej in result.rejected:
            self.errors.write(rej.dead_letter_json() + "\n")
        self.out.flush()
        self.errors.flush()

    def close(self) -> None:
        if self.out is not sys.stdout:
            self.out.close()


class KafkaSink:
    """Events to the native input topics, rejections to the dead-letter topic; flushed per message."""

    def __init__(self, broker: str, partitions: int = 4) -> None:
        from streams.publish import create_input_topics

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from kafka import KafkaProducer
        create_input_topics(broker, partitions, extra=(DEAD_LETTER,))
        self.producer = KafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=5,
                                      max_in_flight_requests_per_connection=1, client_id="crswatch-mllp")

    def deliver(self, result: Normalised) -> None:
        for ev in result.events:
            self.producer.send(input_topic(ev), key=ev.patient_id.encode(),
                               value=ev.model_dump_json(exclude_none=True).encode(), timestamp_ms=int(ev.ts * 1000))
        for rej in result.rejected:
            self.producer.send(DEAD_LETTER, value=rej.dead_letter_json().encode())
        self.producer.flush(timeout=30)

    def close(self) -> None:
        self.producer.close()


def _escape(enc: Encoding, text: str) -> str:
    e = enc.escape
    text = text.replace(e, f"{e}E{e}")
    for code, char in (("F", enc.field), ("S", enc.component), ("T", enc.subcomponent), ("R", enc.repetition)):
        text = text.replace(char, f"{e}{code}{e}")
    return text.replace("\r", " ").replace("\n", " ")


def build_ack(message: str, code: str, reasons: list[str]) -> str:
    """An original-mode ACK (MSH, MSA, ERR per reason) for `message` (which may not be HL7 at all)."""
    first = message.split("\r", 1)[0].split("\n", 1)[0]
    enc = Encoding()
    fields: list[str] = []
    if first.startswith("MSH") and len(first) >= 8:
        sep, chars = first[3], first[4:8]
        if len(set(sep + chars)) == 5:
            enc = Encoding(sep, chars[0], chars[1], chars[2], chars[3])
            fields = first.split(sep)

    def get(n: int) -> str:  # MSH-n of the original message
        return fields[n - 1] if n - 1 < len(fields) else ""

    f, c = enc.field, enc.component
    trigger = get(9).split(c)[1] if c in get(9) else ""
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
    segments = [
        f"MSH{f}{c}{enc.repetition}{enc.escape}{enc.subcomponent}{f}CRSWATCH{f}CRSWATCH{f}{get(3)}{f}{get(4)}{f}{now}"
        f"{f}{f}ACK{c}{trigger}{c}ACK{f}CRSWATCH-ACK-{next(_ack_ids)}{f}P{f}{get(12) or '2.6'}",
        f"MSA{f}{code}{f}{get(10)}" + (f"{f}{_escape(enc, reasons[0])[:MSA_TEXT_MAX]}" if reasons else ""),
    ]
    for reason in reasons:
        err = "207" if code == "AE" else "200"  # HL7 table 0357: application internal error / unsupported
        label = "Application internal error" if code == "AE" else "Unsupported message type"
        segments.append(f"ERR{f}{f}{f}{err}{c}{label}{c}HL70357{f}E{f}{f}{f}{_escape(enc, reason)[:1000]}")
    return "\r".join(segments) + "\r"


def acknowledge(message: str, result: Normalised) -> tuple[str, list[str]]:
    """(AA | AE | AR, reasons) for a normalised message."""
    if not result.rejected:
        return "AA", []
    reasons = [f"{r.source}: {r.reason}" for r in result.rejected]
    whole = any(" OBX " not in r.source for r in result.rejected)  # refused as a message, not per OBX
    return ("AR" if whole else "AE"), reasons


class Listener:
    """Handles MLLP connections: normalise, deliver, ACK. Counts messages by ACK code and the
    input units (OBX, or a refused message) of the messages stored by outcome: accepted,
    rejected, ignored (no value: a message of device headers only is ACKed AA and counted)."""

    def __init__(self, sink: Sink, strict: bool = False, on_message: Callable[[str, Normalised], None] | None = None,
                 limits: Limits | None = None, metrics: Metrics | None = None, hl7_timezone: str | None = None
                 ) -> None:
        self.sink, self.strict, self.on_message = sink, strict, on_message
        self.hl7_timezone = hl7_timezone  # IANA zone of times without a UTC offset (None: they are rejected)
        self.metrics = metrics  # the worker's metric names: dead letters by reason, feed units by outcome
        self.limits = limits if limits is not None else Limits()
        self.connections = 0
        # refusals by the listener's limits: oversized messages, idle connections, connections over the limit
        self.refused: dict[str, int] = {"oversized": 0, "idle": 0, "connections": 0}
        self.acks: dict[str, int] = {"AA": 0, "AE": 0, "AR": 0}
        self.units: dict[str, int] = {"accepted": 0, "rejected": 0, "ignored": 0}

    def process(self, block: bytes, peer: str) -> str:
        text = block.decode("utf-8", "replace")
        result = normalise_hl7(text, f"mllp:{peer}", self.strict, self.hl7_timezone)
        messages = split_messages(text) or [text]
        code, reasons = acknowledge(messages[0], result)
        try:
            self.sink.deliver(result)
        except Exception as exc:  # the broker or the file failed: nothing is acknowledged as stored
            code, reasons = "AE", [f"not stored: {type(exc).__name__}: {exc}"]
        else:
            self.units["accepted"] += result.accepted
            self.units["rejected"] += len(result.rejected)
            self.units["ignored"] += len(result.ignored)
            if self.metrics is not None:
                self.metrics.observe_feed("hl7v2", result)
                for rej in result.rejected:
                    self.metrics.dead_lettered(rej.category)
        self.acks[code] += 1
        if self.on_message is not None:
            self.on_message(code, result)
        return build_ack(messages[0], code, reasons)

    async def handle(self, reader: Any, writer: Any) -> None:
        from hl7.mllp import InvalidBlockError  # type: ignore[import-untyped]

        peer = "{}:{}".format(*writer.get_extra_info("peername")[:2])
        if self.connections >= self.limits.max_connections:
            self.refused["connections"] += 1
            writer.close()
            return
        self.connections += 1
        try:
            while True:
                try:
                    block = await asyncio.wait_for(reader.readblock(), self.limits.idle_seconds)
                except asyncio.IncompleteReadError:
                    break
                except TimeoutError:
                    self.refused["idle"] += 1
                    break
                except InvalidBlockError as exc:
                    writer.writeblock(build_ack("", "AR", [f"invalid MLLP frame: {exc}"]).encode())
                    await writer.drain()
                    continue
                except ValueError:  # over the stream limit: the frame's end cannot be found reliably
                    self.refused["oversized"] += 1
                    self.acks["AR"] += 1
                    reason = f"message over {self.limits.max_message_bytes} bytes: refused, connection closed"
                    writer.writeblock(build_ack("", "AR", [reason]).encode())
                    await writer.drain()
                    break
                ack = await asyncio.to_thread(self.process, block, peer)
                writer.writeblock(ack.encode())
                await writer.drain()
        finally:
            self.connections -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def start(listener: Listener, host: str, port: int) -> asyncio.Server:
    from hl7.mllp import start_hl7_server

    server: asyncio.Server = await start_hl7_server(listener.handle, host, port,
                                                    limit=listener.limits.max_message_bytes)
    return server


def serve_forever(host: str, port: int, broker: str | None = None, out: str | None = None,
                  strict: bool = False, limits: Limits | None = None, metrics_port: int | None = None,
                  hl7_timezone: str | None = None) -> int:
    sink: Sink
    if broker:
        sink = KafkaSink(broker)
    else:
        sink = JsonlSink(sys.stdout if out in (None, "-") else open(str(out), "a", encoding="utf-8"))
    metrics = None
    if metrics_port is not None:
        from streams.observability.metrics import Metrics

        metrics = Metrics()
        metrics.serve(metrics_port, host)
        print(f"crswatch mllp: metrics on {host}:{metrics_port}/metrics", file=sys.stderr, flush=True)
    listener = Listener(sink, strict, limits=limits, metrics=metrics, hl7_timezone=hl7_timezone)

    async def main() -> None:
        server = await start(listener, host, port)
        bound = server.sockets[0].getsockname()
        print(f"crswatch mllp: listening on {bound[0]}:{bound[1]}", file=sys.stderr, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with server:
            await stop.wait()

    try:
        asyncio.run(main())
    finally:
        sink.close()
        print(f"crswatch mllp: stopped; ACKs {listener.acks}; units {listener.units}; refused {listener.refused}",
              file=sys.stderr)
    return 0
