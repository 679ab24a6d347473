"""End-to-end streaming benchmark: broker -> one `crswatch worker` -> crs-alerts.

In one run, on one Tansu broker started on 127.0.0.1 (the test broker; see
docs/development.md, "The Tansu test broker"):

1. raw consume rate: an aiokafka consumer reads the published input topics from the start
   (no processing): the ceiling for any consumer of this broker on this machine;
2. pipeline throughput: `--workers K` worker processes started together after the same events
   were published fold them all; events/s from the first message taken to the last (and between
   10 % and 90 % of the events, interpolated), and the workers' CPU (user + system, from
   /proc/<pid>/stat) per event over the same span. `--mode message` runs faust's per-message
   agent (CRSWATCH_BATCH=false) instead of the batch hand-over, for comparison;
3. event -> alert latency at a fixed rate (default 500 events/s, live event times): mostly
   vital signs of a pool of patients, plus probe events (ferritin > 10,000 ng/mL for a new
   patient) that each raise an alert at once; latency = when the alert is read from
   crs-alerts minus when the probe was sent (one clock, this process).

    .venv/bin/python bench/stream.py [--patients 30] [--days 1] [--rate 500] [--seconds 20] [--json FILE]
                                     [--workers 1] [--mode batch|message] [--no-latency] [--latency-only]

`--latency-only` runs phase 3 alone on a fresh broker and worker, so that neither the broker nor the
worker carries the throughput phase; the broker's own probe delivery is measured beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LOG = Path(tempfile.gettempdir()) / "crswatch-bench-worker.log"
# The probe producer batches for up to 5 ms, like a feed gateway: Tansu's fetch cost grows
# with the number of record batches per partition (docs/development.md, Tansu item 6),
# so one batch per message would measure the test broker more than the pipeline.
LATENCY_LINGER_MS = int(os.environ.get("BENCH_LINGER_MS", "5"))
sys.path.insert(0, str(ROOT))

from streams.feeds.normalised import Rejection  # noqa: E402
from streams.publish import create_input_topics, interleave  # noqa: E402
from streams.topics import ALERTS, INPUT_TOPICS, LABS, VITALS, input_topic  # noqa: E402
from tests.broker import free_port, start_tansu, stop  # noqa: E402
from tests.synthetic import patient_events  # noqa: E402


def cohort_lines(patients: int, days: int, seed: int = 11) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for index in range(patients):
        _, events = patient_events(seed, index, days)
        lines.extend(("bench", ev.model_dump_json(exclude_none=True)) for ev in events)
    return lines


async def publish(broker: str, lines: list[tuple[str, str]]) -> int:
    from aiokafka import AIOKafkaProducer

    rejected: list[Rejection] = []
    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=5)
    await producer.start()
    n = 0
    try:
        batch = []
        for _, event in interleave(lines, rejected):
            batch.append(await producer.send(input_topic(event), key=event.patient_id.encode(),
                                             value=event.model_dump_json(exclude_none=True).encode(),
                                             timestamp_ms=int(event.ts * 1000)))
            n += 1
            if len(batch) >= 5000:
                await asyncio.gather(*batch)
                batch = []
        await asyncio.gather(*batch)
    finally:
        await producer.stop()
    assert not rejected
    return n


async def raw_consume_rate(broker: str, expected: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(*INPUT_TOPICS, bootstrap_servers=broker, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        n = 0
        started = time.perf_counter()
        while n < expected:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            n += sum(len(m) for m in batches.values())
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def stats(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/crswatch/stats/", timeout=2) as r:
            data: dict[str, Any] = json.loads(r.read())
            return data
    except OSError:
        return {}


def start_worker(broker: str, data_dir: str, mode: str = "batch", name: str = "w") -> tuple[Any, int]:
    import subprocess

    port = free_port()
    env = {**os.environ, "CRSWATCH_BROKER": broker, "CRSWATCH_DATA_DIR": data_dir, "CRSWATCH_WEB_PORT": str(port),
           "CRSWATCH_BROKER_FLAVOR": "tansu", "CRSWATCH_STORE": "memory", "CRSWATCH_LOGLEVEL": "warning",
           "CRSWATCH_BATCH": "true" if mode == "batch" else "false"}
    log = LOG.with_name(f"{LOG.stem}-{name}{LOG.suffix}")
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    return proc, port


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pipeline_throughput(workers: list[tuple[Any, int]], expected: int, timeout: float = 600) -> dict[str, Any]:
    """Events/s of the workers together, from the first message taken to the last, and between 10 % and
    90 % of `expected` (interpolated between polls); worker CPU per event over the first-to-last span."""
    deadline = time.monotonic() + timeout
    first: tuple[float, int, float] | None = None
    samples: list[tuple[float, int]] = []
    while time.monotonic() < deadline:
        n = sum(stats(port).get("counts", {}).get("in", 0) for _, port in workers)
        now = time.perf_counter()
        cpu = sum(cpu_seconds(proc.pid) for proc, _ in workers)
        samples.append((now, n))
        if n and first is None:
            first = (now, n, cpu)
        if n >= expected and first is not None:
            t0, n0, cpu0 = first
            return {"events_per_s": (n - n0) / (now - t0), "events_per_s_10_90": _rate_between(samples, expected),
                    "cpu_us_per_event": (cpu - cpu0) / max(1, n - n0) * 1e6, "seconds": now - t0}
        time.sleep(0.02)
    raise RuntimeError(f"workers did not take {expected} events in time: {[stats(p) for _, p in workers]}")


def _rate_between(samples: list[tuple[float, int]], expected: int, low: float = 0.1, high: float = 0.9) -> float | None:
    def when(target: float) -> float | None:
        for (t0, n0), (t1, n1) in itertools.pairwise(samples):
            if n0 <= target <= n1 and n1 > n0:
                return t0 + (t1 - t0) * (target - n0) / (n1 - n0)
        return None

    a, b = when(low * expected), when(high * expected)
    return None if a is None or b is None or b <= a else (high - low) * expected / (b - a)


def vitals(pid: str, when: datetime, hr: int) -> dict[str, Any]:
    return {"kind": "vitals", "event_id": str(uuid.uuid4()), "patient_id": pid, "time": when.isoformat(),
            "heart_rate": {"value": hr, "unit": "/min"}, "temperature": {"value": 37.0, "unit": "Cel"},
            "provenance": {"source": "bench"}}


def probe(pid: str, when: datetime) -> dict[str, Any]:
    return {"kind": "lab", "event_id": str(uuid.uuid4()), "patient_id": pid, "time": when.isoformat(),
            "analyte": "ferritin", "value": 20000, "unit": "ng/mL", "provenance": {"source": "bench"}}


async def latency(broker: str, rate: float, seconds: float, probes_per_s: float) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all", linger_ms=LATENCY_LINGER_MS)
    consumer = AIOKafkaConsumer(ALERTS, bootstrap_servers=broker, group_id=None, auto_offset_reset="latest",
                                fetch_max_wait_ms=5)
    # the same probes read raw from their input topic: what the broker alone adds
    raw_consumer = AIOKafkaConsumer(*INPUT_TOPICS, bootstrap_servers=broker, group_id=None, auto_offset_reset="latest",
                                    fetch_max_wait_ms=5)
    await producer.start()
    await consumer.start()
    await raw_consumer.start()
    sent_at: dict[str, float] = {}
    got: dict[str, float] = {}
    raw_got: dict[str, float] = {}

    async def read(source: Any, seen: dict[str, float], probe_of: Callable[[Any], str | None]) -> None:
        while True:
            batches = await source.getmany(timeout_ms=100)
            now = time.perf_counter()
            for messages in batches.values():
                for m in messages:
                    pid = probe_of(m)
                    if pid in sent_at and pid not in seen:
                        seen[pid] = now

    reader = asyncio.create_task(read(consumer, got, lambda m: json.loads(m.value)["patient_id"]))
    raw_reader = asyncio.create_task(read(raw_consumer, raw_got, lambda m: m.key.decode() if m.topic == LABS else None))
    await asyncio.sleep(1.0)  # the reader has its partitions
    try:
        total = int(rate * seconds)
        every = max(1, round(rate / probes_per_s))
        start = time.perf_counter()
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            now = datetime.now(UTC)
            if i % every == 0:
                pid = f"probe-{i}"
                doc, topic = probe(pid, now), LABS
                sent_at[pid] = time.perf_counter()
            else:
                pid = f"live-{i % 200:03d}"
                doc, topic = vitals(pid, now, 60 + i % 40), VITALS
            await producer.send(topic, key=pid.encode(), value=json.dumps(doc).encode())
        achieved = total / (time.perf_counter() - start)
        deadline = time.perf_counter() + 10
        while len(got) < len(sent_at) and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
    finally:
        reader.cancel()
        raw_reader.cancel()
        await producer.stop()
        await consumer.stop()
        await raw_consumer.stop()
    return {"rate_target": rate, "rate_achieved": round(achieved, 1), "probes": len(sent_at), "alerts": len(got),
            **latency_figures(got, sent_at), "raw_probe_delivery": latency_figures(raw_got, sent_at)}


def latency_figures(arrived: dict[str, float], sent_at: dict[str, float]) -> dict[str, Any]:
    """p50, p99, max (ms) and the p50 of each third of the run, in send order."""
    in_order = [(arrived[p] - sent_at[p]) * 1000 for p in sorted(arrived, key=lambda p: sent_at[p])]
    third = max(1, len(in_order) // 3)
    ranked = sorted(in_order)
    q = statistics.quantiles(ranked, n=100) if len(ranked) >= 2 else ranked * 100
    return {"p50_ms": round(statistics.median(ranked), 1), "p99_ms": round(q[98], 1), "max_ms": round(ranked[-1], 1),
            "p50_ms_by_third": [round(statistics.median(in_order[i * third:(i + 1) * third]), 1) for i in range(3)]}


def latency_only(args: argparse.Namespace) -> None:
    """Only the latency phase (a fresh broker and worker), e.g. to compare worker settings."""
    broker_proc, broker = start_tansu()
    try:
        create_input_topics(broker, 4)
        with tempfile.TemporaryDirectory() as data:
            worker, port = start_worker(broker, data, args.mode)
            while stats(port).get("input_lag") != 0:
                time.sleep(0.2)
            print(json.dumps(asyncio.run(latency(broker, args.rate, args.seconds, args.probes_per_second))))
            worker.terminate()
            worker.wait(timeout=20)
    finally:
        stop(broker_proc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=30)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--probes-per-second", type=float, default=10.0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--latency-only", action="store_true", help="skip the throughput phases")
    ap.add_argument("--no-latency", action="store_true", help="skip the latency phase")
    ap.add_argument("--workers", type=int, default=1, help="worker processes in the throughput phase")
    ap.add_argument("--mode", choices=("batch", "message"), default="batch",
                    help="the fold agent's input: batch hand-over (default) or faust's per-message stream")
    args = ap.parse_args(argv)
    if args.latency_only:
        latency_only(args)
        return 0

    broker_proc, broker = start_tansu()
    workers: list[tuple[Any, int]] = []
    lat: dict[str, Any] | None = None
    try:
        create_input_topics(broker, 4)
        lines = cohort_lines(args.patients, args.days)
        t = time.perf_counter()
        n = asyncio.run(publish(broker, lines))
        print(f"published {n} events in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        raw = asyncio.run(raw_consume_rate(broker, n))
        print(f"raw aiokafka consume: {raw:,.0f} events/s", file=sys.stderr)
        with tempfile.TemporaryDirectory() as data:
            workers = [start_worker(broker, f"{data}/{k}", args.mode, f"{k}") for k in range(args.workers)]
            pipe = pipeline_throughput(workers, n)
            through = pipe["events_per_s"]
            print(f"pipeline ({args.workers} {args.mode} worker(s)): {through:,.0f} events/s ({through / raw:.1%} of "
                  f"raw), 10-90 %: {pipe['events_per_s_10_90'] or 0:,.0f} events/s, worker CPU "
                  f"{pipe['cpu_us_per_event']:.0f} us/event", file=sys.stderr)
            if not args.no_latency:
                lat = asyncio.run(latency(broker, args.rate, args.seconds, args.probes_per_second))
                print(f"latency at {lat['rate_achieved']} events/s: p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, "
                      f"max {lat['max_ms']} ms ({lat['alerts']}/{lat['probes']} probes alerted); broker probe p99 "
                      f"{lat['raw_probe_delivery']['p99_ms']} ms", file=sys.stderr)
            final = [stats(port) for _, port in workers]
    finally:
        for proc, _ in workers:
            proc.terminate()
        for proc, _ in workers:
            proc.wait(timeout=20)
        stop(broker_proc)
    result = {"events": n, "mode": args.mode, "workers": args.workers, "raw_consume_events_per_s": round(raw),
              "pipeline_events_per_s": round(through),
              "pipeline_events_per_s_10_90": round(pipe["events_per_s_10_90"] or 0),
              "pipeline_over_raw": round(through / raw, 4),
              "worker_cpu_us_per_event": round(pipe["cpu_us_per_event"], 1),
              "load_average": os.getloadavg(), "latency": lat, "worker_counts": [f.get("counts") for f in final]}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
