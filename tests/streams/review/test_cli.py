"""`crswatch report` and `crswatch whatif` end to end, on the seed cases and a small synthetic cohort."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.cli import main
from tests.synthetic import patient_events

CASES = Path(__file__).resolve().parents[3] / "cases"
SEEDS = [str(CASES / "ruemmele-2025.jsonl"), str(CASES / "mcnerney-2022.jsonl")]


def test_report_writes_an_index_and_a_page_and_png_per_patient(tmp_path: Path) -> None:
    out = tmp_path / "review"
    assert main(["report", *SEEDS, "-o", str(out), "--days", "4:12"]) == 0
    index = (out / "index.html").read_text(encoding="utf-8")
    for pid in ("ruemmele-2025", "mcnerney-2022"):
        assert f"href='{pid}.html'" in index
        page = (out / f"{pid}.html").read_text(encoding="utf-8")
        assert "id='leadtime'" in page and "id='alerts'" in page
        assert (out / f"{pid}.png").stat().st_size > 50_000
    # both cases reached CRS grade 4: the index row says so
    assert index.count("<td class=num>4</td>") >= 2


def test_whatif_on_the_seed_cases_reports_the_alert_a_lower_threshold_removes(tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture[str]
                                                                              ) -> None:
    cfg = tmp_path / "changed.toml"
    cfg.write_text("fibrinogen_low_mg_dl = 40.0\n", encoding="utf-8")  # case 000's 50 mg/dL no longer alerts
    html = tmp_path / "whatif"
    assert main(["whatif", "--config", str(cfg), *SEEDS, "--format", "json", "--html", str(html)]) == 0
    data = json.loads(capsys.readouterr().out)
    by_pid = {p["patient_id"]: p for p in data["patients"]}
    removed = {a["kind"] for a in by_pid["ruemmele-2025"]["removed"]}
    assert "hypofibrinogenemia" in removed
    assert data["total"]["removed"] >= 1 and data["total"]["patients"] == 2
    page = (html / "index.html").read_text(encoding="utf-8")
    assert "changed-ruemmele-2025.html" in page and "current-ruemmele-2025.html" in page
    assert (html / "changed-ruemmele-2025.html").is_file() and (html / "plotly.min.js").is_file()
    assert "src=\"plotly.min.js\"" in (html / "current-ruemmele-2025.html").read_text(encoding="utf-8")


def test_whatif_text_on_a_synthetic_cohort(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = []
    for i in range(3):
        pid, events = patient_events(5, i, 4, id_style="short")
        path = tmp_path / f"{pid}.jsonl"
        path.write_text("".join(e.model_dump_json(exclude_none=True) + "\n" for e in events), encoding="utf-8")
        files.append(str(path))
    cfg = tmp_path / "changed.toml"
    cfg.write_text("hypotension_sbp_below = 85.0\nferritin_high_ng_ml = 1000.0\n", encoding="utf-8")
    assert main(["whatif", "--config", str(cfg), *files]) == 0
    text = capsys.readouterr().out
    assert "3 patients" in text and "grade-days per level" in text and "escalations:" in text
    # the unchanged thresholds change nothing
    same = tmp_path / "same.toml"
    same.write_text("", encoding="utf-8")
    assert main(["whatif", "--config", str(same), *files, "--format", "json"]) == 0
    total = json.loads(capsys.readouterr().out)["total"]
    assert (total["patients_changed"], total["added"], total["removed"], total["moved"]) == (0, 0, 0, 0)
