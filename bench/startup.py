"""Worker start-up: seconds from process start to `/crswatch/ready/` on the test broker (Tansu), first
start and restarts after a clean stop, with the seed cases in the topics.

    .venv/bin/python bench/startup.py                       # broker flavor auto (the default)
    .venv/bin/python bench/startup.py --flavor kafka        # without the Tansu settings, for comparison

Each start's phases (flavor, app built, group joined, ready) are in the worker's INFO log, printed
after the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.publish import create_input_topics, publish_lines  # noqa: E402
from streams.replay import read_lines  # noqa: E402
from tests.broker import free_port, start_tansu, stop  # noqa: E402


def start_once(broker: str, data: Path, flavor: str, log_path: Path, limit: float = 300) -> float | None:
    port = free_port()
    env = {**os.environ, "CRSWATCH_BROKER": broker, "CRSWATCH_DATA_DIR": str(data), "CRSWATCH_WEB_PORT": str(port),
           "CRSWATCH_BROKER_FLAVOR": flavor, "CRSWATCH_PARTITIONS": "4"}
    with log_path.open("wb") as log:
        started = time.monotonic()
        worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker", "--loglevel", "info"], env=env,
                                  stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        ready = None
        try:
            while ready is None and time.monotonic() - started < limit:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/crswatch/ready/", timeout=1) as r:
                        if json.loads(r.read()).get("ready"):
                            ready = time.monotonic() - started
                except OSError:
                    pass
                time.sleep(0.1)
            time.sleep(1.0)  # let the ready phase reach the log
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
    return ready


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--flavor", default="auto", choices=["auto", "kafka", "tansu"])
    p.add_argument("--restarts", type=int, default=2)
    args = p.parse_args()
    proc, broker = start_tansu()
    work = Path(tempfile.mkdtemp(prefix="crswatch-startup-"))
    try:
        create_input_topics(broker, 4)
        publish_lines(list(read_lines(sorted((ROOT / "cases").glob("*.jsonl")))), broker)
        for i in range(args.restarts + 1):
            name = "first start" if i == 0 else f"restart {i}"
            log = work / f"worker-{i}.log"
            ready = start_once(broker, work / "data", args.flavor, log)
            print(f"{name}: ready after {ready:.1f} s" if ready is not None else f"{name}: not ready", flush=True)
            for line in log.read_text(errors="replace").splitlines():
                if "start-up:" in line:
                    print("   ", line.split("start-up:", 1)[1].strip())
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
