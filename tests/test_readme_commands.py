"""The shell commands the README and docs/operations.md show work as written.

Every line of a ```sh block that starts with `.venv/bin/` or `make ` is a documented command. Those
that need no broker (replay, export, config, the examples) are run from the repository root with
`python -m streams.cli` for `.venv/bin/crswatch` (and `make demo` as the Makefile's demo line);
each must exit with status 0 (or the one listed in EXIT) and print something. Paths under /tmp/
are redirected to a temporary directory. The others (a broker, a long-running service, `make test`)
are not run, but they are listed in NOT_RUN exactly: a new command in the docs is either run here
or added to that list on purpose.
"""

from __future__ import annotations

import glob
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "operations.md"]
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.M | re.S)
NEEDS_BROKER = re.compile(r"--broker\b|\b(?:publish|worker|alerts|mllp)\b|faust")

NOT_RUN = {
    "make test",
    ".venv/bin/crswatch publish cases/*.jsonl --broker 127.0.0.1:9092 [--partitions 4] "
    "[--speed 3600 | --as-fast-as-possible]",
    ".venv/bin/crswatch worker --broker 127.0.0.1:9092 [--store memory|rocksdb] [--data-dir DIR] [--web-port 6066] "
    "[--partitions 4]",
    ".venv/bin/faust -A streams.app worker",
    ".venv/bin/crswatch alerts --broker 127.0.0.1:9092 [--follow] [--max-wait SECONDS] [--format text|jsonl]",
}
EXIT: dict[str, int] = {}  # a documented command whose documented exit status is not 0


def documented_commands() -> list[str]:
    commands = []
    for path in DOCS:
        for block in SH_BLOCK.findall(path.read_text(encoding="utf-8")):
            text = re.sub(r"\\\n\s*", " ", block)  # continuation lines
            for line in text.splitlines():
                line = re.sub(r"\s+#.*$", "", line).strip()  # a trailing comment
                if line.startswith((".venv/bin/", "make ")):
                    commands.append(line)
    return commands


def runnable(command: str) -> bool:
    return command not in NOT_RUN and not NEEDS_BROKER.search(command) and command != "make test"


def test_the_commands_not_run_are_exactly_the_listed_ones() -> None:
    commands = documented_commands()
    assert len(commands) >= 10
    assert {c for c in commands if not runnable(c)} == NOT_RUN
    # Every command that needs a broker is in the list, never run by accident.
    assert all(c in NOT_RUN for c in commands if NEEDS_BROKER.search(c))


def _argv(command: str, tmp: Path) -> tuple[list[str], Path | None]:
    if command == "make demo":
        demo = re.search(r"^demo:.*\n\t\$\(VENV\)/bin/crswatch (.+)$", (ROOT / "Makefile").read_text(), re.M)
        assert demo is not None
        command = ".venv/bin/crswatch " + demo.group(1)
    words = shlex.split(command)
    assert words[0] == ".venv/bin/crswatch", command
    stdout_file = None
    if ">" in words:
        i = words.index(">")
        stdout_file, words = Path(words[i + 1]), words[:i] + words[i + 2:]
    args: list[str] = []
    for w in words[1:]:
        if w.startswith("/tmp/"):
            w = str(tmp / Path(w).name)
        args += sorted(glob.glob(w, root_dir=ROOT)) if any(ch in w for ch in "*?[") else [w]
    if stdout_file is not None:
        stdout_file = tmp / stdout_file.name
    return [sys.executable, "-m", "streams.cli", *args], stdout_file


@pytest.mark.parametrize("command", [c for c in documented_commands() if runnable(c)])
def test_a_documented_command_runs_as_written(command: str, tmp_path: Path) -> None:
    argv, stdout_file = _argv(command, tmp_path)
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == EXIT.get(command, 0), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    if stdout_file is not None:
        stdout_file.write_text(done.stdout)
    written = [p for p in tmp_path.iterdir() if p.stat().st_size]
    assert done.stdout.strip() or done.stderr.strip() or written
