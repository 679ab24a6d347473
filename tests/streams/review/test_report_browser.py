"""`crswatch report` pages in a real browser: Debian's headless Chromium driven by selenium.

The page of each seed case is loaded from disk (file://, no server, no network): the figure's traces and the
alert markers are in the DOM, a real mouse hover over an alert marker shows that alert's evidence lines, and
the console has no errors. A screenshot of each page is saved under the test's tmp dir.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.cli import main

CASES = Path(__file__).resolve().parents[3] / "cases"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"



def test_the_browser_is_installed() -> None:
    assert shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER), "apt-get install chromium chromium-driver " \
        "(deploy/ensure-tools.sh does it for make test)"


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    assert main(["report", str(CASES / "ruemmele-2025.jsonl"), str(CASES / "mcnerney-2022.jsonl"), "-o", str(out),
                 "--no-png"]) == 0
    return out


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1500,1900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield drv
    finally:
        drv.quit()


# Pixel position (relative to the figure's top-left corner) of point j of trace i.
_POINT_JS = """
const gd = document.getElementById('timeline');
const t = gd._fullData[arguments[0]];
const L = gd._fullLayout;
const xa = L[t.xaxis === 'x' ? 'xaxis' : 'xaxis' + t.xaxis.slice(1)];
const ya = L[t.yaxis === 'y' ? 'yaxis' : 'yaxis' + t.yaxis.slice(1)];
return [xa._offset + xa.d2p(t.x[arguments[1]]), ya._offset + ya.d2p(t.y[arguments[1]])];
"""


def _load(driver: Any, page: Path) -> dict[str, Any]:
    driver.get(page.as_uri())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready = driver.execute_script(
            "const gd = document.getElementById('timeline'); return !!(gd && gd._fullData && "
            "gd.querySelector('.main-svg'))")
        if ready:
            break
        time.sleep(0.2)
    info: dict[str, Any] = driver.execute_script(
        "const gd = document.getElementById('timeline');"
        "return {names: gd.data.map(t => t.name), types: gd._fullData.map(t => t.type),"
        " metas: gd.data.map(t => t.meta || null),"
        " ids: gd.data.map(t => t.customdata || null), hover: gd.data.map(t => t.hovertext || null),"
        " traces: gd.querySelectorAll('.trace').length, points: gd.querySelectorAll('.scatterlayer .point').length}")
    return info


@pytest.mark.parametrize(("case", "expected_kinds"), [
    ("ruemmele-2025", {"crs", "refractory_crs", "vasopressor_escalation", "iec_hs", "oxygen_escalation"}),
    ("mcnerney-2022", {"crs", "refractory_crs", "iec_hs", "ferritin_high", "crp_ferritin_divergence"}),
])
def test_seed_case_page_in_chromium(pages: Path, driver: Any, tmp_path: Path, case: str,
                                    expected_kinds: set[str]) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    page = pages / f"{case}.html"
    html = page.read_text(encoding="utf-8")
    assert re.findall(r"<script[^>]*\bsrc=", html) == [] and "Plotly" in html  # offline: the library is inlined
    info = _load(driver, page)
    names = info["names"]
    for trace in ("Alert: critical", "grade/level 4", "documented fever", "tocilizumab", "emapalumab", "ferritin",
                  "crp"):
        assert trace in names, (trace, names)
    svg = sum(1 for t in info["types"] if t != "scattergl")
    assert info["traces"] >= svg and len(names) > 20  # every SVG trace is drawn
    alert_traces = [i for i, m in enumerate(info["metas"]) if m == "alert"]
    alert_ids = [a for i in alert_traces for a in info["ids"][i]]
    assert {a.split(":")[1] for a in alert_ids} >= expected_kinds
    assert info["points"] >= len(alert_ids)
    # every alert marker is an SVG point of its trace's group in the DOM
    drawn = driver.execute_script(
        "const gd = document.getElementById('timeline');"
        "return arguments[0].map(i => gd.querySelectorAll('.trace' + gd._fullData[i].uid + ' .point').length)",
        alert_traces)
    assert drawn == [len(info["ids"][i]) for i in alert_traces]

    # hover the first critical alert with the mouse: its evidence lines appear
    crit = names.index("Alert: critical")
    hover_text: str = info["hover"][crit][0]
    first_line = hover_text.split("• ")[1].split("<br>")[0]
    x, y = driver.execute_script(_POINT_JS, crit, 0)
    gd = driver.find_element(By.ID, "timeline")
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", gd)
    rect = gd.rect
    ActionChains(driver).move_to_element_with_offset(gd, int(x - rect["width"] / 2), int(y - rect["height"] / 2)
                                                     ).perform()
    label = ""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "evidence" not in label:
        label = driver.execute_script(
            "return Array.from(document.querySelectorAll('.hoverlayer .hovertext')).map(e => e.textContent)"
            ".join('\\n')")
        time.sleep(0.2)
    assert "evidence" in label and info["ids"][crit][0] in label
    assert first_line.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")[:40] in label
    shot = tmp_path / f"{case}.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 50_000

    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], json.dumps(errors, indent=1)
    # the lead-time and alert tables are on the page too
    assert driver.find_element(By.ID, "leadtime").text
