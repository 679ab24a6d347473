"""The faust streaming worker: `crswatch worker`, or `faust -A streams.app worker`.

One agent reads the co-partitioned input topics (`vitals`, `labs`, `treatments`, keyed by
patient_id), hands each message to `streams.worker.runtime.Runtime`, which aligns them in event time
per partition (`streams.worker.align`) and applies the
same pure fold as the embedded replay (`streams.worker.processor` -> `alerts.log.step`). Each
patient's log is kept in the `patient-logs` table (changelog-backed; store `memory://` or
`rocksdb://`), cached in memory while this worker owns the patient's partition.
Outputs: `crs-alerts`, `patient-state` (compacted) and `dead-letter`.

Delivery is at-least-once: a message is acked (its offset may be committed) only after its
event was folded and the log written; redeliveries are duplicates to the log.
Settings come from `CRSWATCH_*` environment variables (`streams.settings`).
"""

from __future__ import annotations

import gc
from typing import Any

import faust
from faust.types import TP
from faust.web import Request, Response, View

from streams.settings import Settings, detect_flavor, from_env, load_thresholds
from streams.topics import INPUT_TOPICS
from streams.worker.batching import BatchApp
from streams.worker.runtime import Runtime
from streams.worker.startup import StartupLog


def make_app(settings: Settings, flavor: str | None = None) -> faust.App:
    extra: dict[str, Any] = {}
    if (flavor or settings.broker_flavor) == "tansu":
        from streams.worker import tansu_compat

        extra = tansu_compat.apply()
    if settings.batch:
        # one fetch is one batch: bounded, so that a batch is folded, its outputs sent and its logs
        # written in a bounded time, and a rebalance never waits on a huge one
        extra["broker_max_poll_records"] = settings.batch_max
    app_type = BatchApp if settings.batch else faust.App
    return app_type(
        settings.app_id,
        broker=settings.broker_urls,
        broker_credentials=settings.credentials(),
        store=settings.store_url,
        datadir=settings.data_dir,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        topic_partitions=settings.partitions,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,  # held (unacked) messages must not stall a rebalance
        producer_acks=-1,
        autodiscover=False,
        # faust's table, router, graph and stats pages: closed unless CRSWATCH_FAUST_WEB_APPS (docs/privacy.md)
        web_tables_enabled=settings.faust_web_apps,
        web_router_enabled=settings.faust_web_apps,
        web_graph_enabled=settings.faust_web_apps,
        web_stats_enabled=settings.faust_web_apps,
        **extra,
    )


startup = StartupLog()
settings = from_env()
flavor, why = detect_flavor(settings)
startup.phase(f"broker flavor {flavor} ({why})")
if settings.app_id != Settings().app_id:
    startup.warn(f"app id {settings.app_id!r} is not the default {Settings().app_id!r}: this worker is a consumer "
                 "group of its own, reads every input from the beginning and writes its alerts, states and dead "
                 "letters to the same shared topics (crs-alerts, patient-state, dead-letter) as any other app id: "
                 "readers see those alerts again. Give a second app id its own broker, or use it only for tests.")
app = make_app(settings, flavor)
runtime = Runtime(app, settings, load_thresholds(settings.config))
startup.phase("app built")


if settings.batch:
    # The input topics stay subscribed (and co-assigned with the table) through app.topics; the
    # consumer hands each fetch of them to this channel as one Batch (streams/worker/batching.py).
    batches = app.channel(maxsize=4)
    app.topics.add(runtime.inputs)
    app.batch_topics(set(INPUT_TOPICS), batches)

    @app.agent(batches, name="streams.app.fold")
    async def fold(stream: Any) -> None:
        async for batch in stream:
            await runtime.on_batch(batch.generation_id, batch.messages)

else:

    @app.agent(runtime.inputs)
    async def fold(stream: Any) -> None:
        async for event in stream.noack().events():
            await runtime.on_message(event)


@app.agent(runtime.raw_feeds)
async def normalise_feeds(stream: Any) -> None:
    async for event in stream.events():
        await runtime.normalise_feed(event)


@app.timer(interval=0.2)
async def release_waiting() -> None:
    await runtime.release_waiting()


@app.timer(interval=2.0)
async def refresh_levels() -> None:
    runtime.refresh_levels()


# In-house tuning, measured with bench/stream.py: the fold keeps every patient's window of
# events alive, and with Python's default thresholds the worker ran 15 full collections in
# the one-minute bench, up to 292 ms each (2.6 s in all). Objects made while starting are
# frozen out of the collector and the youngest generation is collected less often: 1 full
# collection (62 ms, the one here). The pipeline rate moved within its run-to-run spread.
GC_THRESHOLDS = (20_000, 20, 10)


@app.task
async def tune_gc() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@app.task
async def declare_raw_input_topics() -> None:
    """Create the topics that keep raw input with their retention (docs/privacy.md); an existing topic
    keeps its own configuration."""
    await runtime.declare_raw_input_topics()


@app.task
async def start_sink() -> None:
    if runtime.sink is not None:
        runtime.sink.start()


@app.on_before_shutdown.connect
async def before_shutdown(sender: Any, **kwargs: Any) -> None:
    # faust skips the revoke handlers when stopping: store what was folded first
    async with runtime.lock:
        await runtime.drain()
    if runtime.sink is not None:
        runtime.sink.close(timeout=5)


@app.page("/metrics")
class PrometheusMetrics(View):
    async def get(self, request: Request) -> Response:
        body, content_type = runtime.metrics.exposition(request.headers.get("Accept"))
        return self.bytes(body, headers={"Content-Type": content_type})


@app.on_partitions_revoked.connect
async def on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
    async with runtime.lock:  # not while a release is half done: it would fold onto a forgotten cache
        await runtime.on_revoked()


@app.on_partitions_assigned.connect
async def on_assigned(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
    startup.once("group joined, partitions assigned", f"{len(assigned)} partitions")
    async with runtime.lock:
        await runtime.on_assigned(assigned)


def is_ready() -> bool:
    return not app.rebalancing and not getattr(app, "in_recovery", False) and bool(app.consumer.assignment())


@app.timer(interval=0.5)
async def log_ready() -> None:
    startup.flush()
    if not startup.done and is_ready():
        startup.once("changelog recovered, ready")
        startup.done = True


@app.page("/crswatch/stats/")
class Stats(View):
    async def get(self, request: Request) -> Response:
        return self.json(runtime.stats())


@app.page("/crswatch/ready/")
class Ready(View):
    async def get(self, request: Request) -> Response:
        ready = is_ready()
        return self.json({"ready": ready}, status=200 if ready else 503)
