"""The documentation stays inside the repository: every relative link resolves, and nothing points outside.

- Every relative link in the markdown files (README.md, docs/, cases/, bench/, deploy/) names a file or
  directory of the repository, and a `#fragment` names a heading of the target file (GitHub's anchors).
- Every field of `alerts.config.Thresholds` is documented in docs/clinical-rules.md, and every IN-HOUSE
  DEFAULT field in its "In-house defaults" table.
- The README's sample output is a verbatim excerpt of what `make demo` prints today.
- No tracked text file points to the material the project was written from outside the repository:
  clinical facts are cited by their published source (docs/clinical-rules.md), the FHIR input contract is
  docs/feeds.md, the test-broker notes are in docs/development.md.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from alerts.config import Thresholds
from streams.cli import main

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache", "build", "dist", "__pycache__"}
# Written in two parts so that this file does not match itself.
OUTSIDE = ("../" + "shared", "shared/" + "clinical", "shared/" + "contracts", "shared/" + "seeds",
           "shared/" + "notes", "REFERENCE" + ".md")

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")


def markdown_files() -> list[Path]:
    files = sorted(ROOT.glob("*.md")) + sorted((ROOT / "docs").rglob("*.md"))
    for folder in ("cases", "bench", "deploy"):
        files += sorted((ROOT / folder).rglob("*.md"))
    return files


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (a link in a code sample is not a link)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats."""
    seen: dict[str, int] = {}
    for line in _prose_lines(path.read_text(encoding="utf-8")):
        m = HEADING.match(line)
        if not m:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m.group(1))  # a link in a heading keeps its text
        slug = re.sub(r"[^\w\- ]", "", text.replace("`", "").lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        if n:
            slug = f"{slug}-{n}"
        seen.setdefault(slug, 1)
    return set(seen)


def broken_links(path: Path, text: str | None = None) -> list[str]:
    """Every relative link of one markdown file (or of `text` as if it were at `path`) that does not
    resolve inside the repository."""
    problems = []
    for line in _prose_lines(path.read_text(encoding="utf-8") if text is None else text):
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, fragment = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(ROOT)}: ({target})"
            if ROOT not in dest.parents and dest != ROOT:
                problems.append(f"{where} leaves the repository")
            elif not dest.exists():
                problems.append(f"{where} does not exist")
            elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
                problems.append(f"{where} names no heading of {dest.relative_to(ROOT)}")
    return problems


def tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        paths = [ROOT / p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked sdist)
        paths = [p for p in ROOT.rglob("*") if p.is_file() and not SKIP_DIRS & set(p.relative_to(ROOT).parts)]
    return [p for p in paths if p.is_file()]


def test_the_documentation_files_exist() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in markdown_files()}
    assert {"README.md", "docs/architecture.md", "docs/operations.md", "docs/feeds.md", "docs/clinical-rules.md",
            "docs/monitoring.md", "docs/development.md", "cases/README.md", "bench/README.md",
            "deploy/RUNBOOK.md"} <= names


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves_inside_the_repository(path: Path) -> None:
    assert broken_links(path) == []


def test_the_link_check_catches_a_missing_file_a_missing_heading_and_a_way_out() -> None:
    text = "\n".join([
        "# Title",
        "See [ops](operations.md#known-limits), [gone](nothing-here.md), [bad anchor](feeds.md#no-such-heading),",
        "[out](../../outside.md), [web](https://example.org/x.md) and `[code](not-a-link.md)`.",
        "```",
        "[fenced](not-a-link-either.md)",
        "```",
    ])
    problems = broken_links(ROOT / "docs" / "probe.md", text)
    assert len(problems) == 3, problems
    assert "(nothing-here.md) does not exist" in problems[0]
    assert "(feeds.md#no-such-heading) names no heading" in problems[1]
    assert "(../../outside.md) leaves the repository" in problems[2]


def test_heading_anchors_follow_github() -> None:
    assert {"fhir-r4-input-contract", "versions", "medicationadministration-infusions-and-doses"} <= anchors(
        ROOT / "docs" / "feeds.md")
    assert "authors-grades-which-the-case-tests-check" in anchors(ROOT / "cases" / "README.md")


def test_no_tracked_file_points_outside_the_repository() -> None:
    files = tracked_text_files()
    assert any(p.name == "README.md" for p in files)
    found = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary
        for needle in OUTSIDE:
            for n, line in enumerate(text.splitlines(), 1):
                if needle in line:
                    found.append(f"{path.relative_to(ROOT)}:{n}: {needle}")
    assert found == []


def test_the_readme_sample_is_what_make_demo_prints(capsys: pytest.CaptureFixture[str]) -> None:
    demo = re.search(r"^demo:.*\n\t\$\(VENV\)/bin/crswatch (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert demo is not None
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    samples = re.findall(r"^```\n(Day [+-]\d+\n.*?)^```", readme, re.M | re.S)
    assert len(samples) == 1 and len(samples[0].splitlines()) >= 10
    assert main([str(ROOT / a) if a.startswith("cases/") else a for a in demo.group(1).split()]) == 0
    assert samples[0] in capsys.readouterr().out


def test_every_threshold_is_documented_and_every_in_house_default_is_in_the_table() -> None:
    doc = (ROOT / "docs" / "clinical-rules.md").read_text(encoding="utf-8")
    table = doc.split("## In-house defaults", 1)[1].split("\n## ", 1)[0]
    first_cells = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    rows = {name for cell in first_cells for name in re.findall(r"`(\w+)`", cell)}
    fields = Thresholds.model_fields
    in_house = {name for name, f in fields.items() if "IN-HOUSE" in (f.description or "")}
    assert in_house and in_house <= rows, sorted(in_house - rows)
    assert rows <= in_house, sorted(rows - in_house)  # a published number is not listed as in-house
    assert [name for name in fields if f"`{name}`" not in doc] == []
