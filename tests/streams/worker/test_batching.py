"""The batch hand-over relies on faust internals: the pinned version and the private attributes."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from faust.transport.consumer import Consumer

from streams.settings import Settings
from streams.worker.batching import FAUST_VERSION, PRIVATE_ATTRIBUTES, BatchApp, BatchConsumer, BatchTransport

ROOT = Path(__file__).resolve().parents[3]


def app_factory() -> Any:
    """streams.app's make_app. Importing streams.app builds the module's own app and, with the flavor
    left on auto, asks the default broker address which flavor it is (seconds when nothing answers):
    the flavor is set for the import."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRSWATCH_BROKER_FLAVOR", "kafka")
        from streams.app import make_app
    return make_app


def test_faust_is_the_pinned_version() -> None:
    pin = re.search(r'"faust-streaming==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert pin is not None, "faust-streaming must be pinned to an exact version"
    assert pin.group(1) == FAUST_VERSION == metadata.version("faust-streaming")


def test_the_private_attributes_batching_reads_exist() -> None:
    consumer = app_factory()(Settings(broker="127.0.0.1:1", broker_flavor="kafka")).consumer
    assert isinstance(consumer, BatchConsumer)
    missing = [a for a in PRIVATE_ATTRIBUTES if not hasattr(consumer, a)]
    assert not missing, f"faust no longer has {missing}: streams/worker/batching.py must follow"
    assert BatchConsumer._drain_messages is not Consumer._drain_messages


def test_the_app_makes_the_batch_consumer() -> None:
    make_app = app_factory()
    app = make_app(Settings(broker="127.0.0.1:1", broker_flavor="kafka"))
    assert isinstance(app, BatchApp)
    assert isinstance(app.transport, BatchTransport)
    assert app.transport.Consumer is BatchConsumer
    assert app.conf.broker_max_poll_records == Settings().batch_max
    plain = make_app(Settings(broker="127.0.0.1:1", broker_flavor="kafka", batch=False))
    assert not isinstance(plain, BatchApp)
