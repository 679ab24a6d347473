"""The architecture as rules: which package may import which, no import cycles, and a
non-editable build that ships every package.

Layering (docs/architecture.md): `models` <- `alerts` <- `streams`; `streams/feeds` are pure
adapters over `models`; only the CLI imports `streams.cli`; the pure core imports no faust, no
Kafka client. Imports inside functions count: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OURS = ("models", "alerts", "streams")
BROKER_CLIENTS = ("faust", "aiokafka", "kafka", "mode")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in OURS for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """Every module name an `import` or `from ... import` in the file names (any depth)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        graph[name] = {m for m in _imports(path) if m in mods and m != name}
    return graph


def _starts(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_the_scan_sees_every_package_and_the_known_edges() -> None:
    graph = _graph()
    assert {"models.events", "alerts.fold", "alerts.evolve", "streams.app", "streams.cli",
            "streams.feeds.fhir", "streams.worker.processor", "streams.observability.metrics"} <= set(graph)
    assert "alerts.evolve" in graph["alerts.fold"]
    assert "streams.app" in graph["streams.cli"]  # the lazy import that starts the worker


def test_models_import_nothing_of_ours_but_models() -> None:
    bad = {(m, d) for m, deps in _graph().items() if _starts(m, "models")
           for d in deps if not _starts(d, "models")}
    assert not bad


def test_alerts_import_only_models() -> None:
    bad = {(m, d) for m, deps in _graph().items() if _starts(m, "alerts")
           for d in deps if not (_starts(d, "models") or _starts(d, "alerts"))}
    assert not bad


def test_feeds_import_only_models() -> None:
    bad = {(m, d) for m, deps in _graph().items() if _starts(m, "streams.feeds")
           for d in deps if not (_starts(d, "models") or _starts(d, "streams.feeds"))}
    assert not bad


def test_review_logic_is_pure() -> None:
    """streams.review's diff, lead-time and figure-data modules import only models, alerts and each other."""
    pure = ("streams.review.series", "streams.review.leadtime", "streams.review.whatif")
    graph = _graph()
    assert set(pure) <= set(graph)
    bad = {(m, d) for m in pure for d in graph[m] if not (_starts(d, "models") or _starts(d, "alerts") or d in pure)}
    assert not bad
    for m in pure:
        path = _modules()[m]
        third_party = {i.split(".")[0] for i in _imports(path)} - {"models", "alerts", "streams", "__future__"}
        assert third_party <= {"collections", "dataclasses", "datetime", "typing"}, (m, third_party)


def test_only_the_cli_imports_the_cli() -> None:
    bad = {m for m, deps in _graph().items() if "streams.cli" in deps and m != "streams.cli"}
    assert not bad


def test_the_pure_core_and_the_feeds_import_no_broker_client() -> None:
    bad = set()
    for name, path in _modules().items():
        if _starts(name, "models") or _starts(name, "alerts") or _starts(name, "streams.feeds"):
            bad |= {(name, i) for i in _imports(path) if i.split(".")[0] in BROKER_CLIENTS}
    assert not bad


def test_no_import_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep):], dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles


def test_every_package_directory_is_listed_for_setuptools() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {_module_name(p.parent / "__init__.py") for pkg in OURS for p in (ROOT / pkg).rglob("*.py")}
    assert on_disk == listed


def test_a_non_editable_build_ships_every_module(tmp_path: Path) -> None:
    """What the Dockerfile's `pip install .` installs: the wheel holds every module of ours."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for pkg in OURS:
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(src)], check=True, capture_output=True, timeout=300)
    wheels = list(out.glob("crswatch-*.whl"))
    assert len(wheels) == 1
    shipped = {n for n in zipfile.ZipFile(wheels[0]).namelist() if n.endswith(".py")}
    expected = {str(p.relative_to(ROOT)) for p in _modules().values()}
    assert expected - shipped == set()
    assert {"streams/feeds/fhir.py", "streams/worker/processor.py", "streams/observability/metrics.py"} <= shipped
