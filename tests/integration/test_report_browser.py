"""The report after a lab run with one failed VM, opened in a real headless Chromium from disk (file://).

Checks what a person would see: no console error, no request leaving file://, one row per VM, the
graph and the timeline drawn (on the DOM and on a screenshot's pixels), and the table's filter working.
Needs Debian's `chromium` and `chromium-driver` and the `selenium` package.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate.lab.manager import LabInfo
from tests.helpers import run_cli
from tests.integration.migration.conftest import (
    block_the_mark,
    estate,
    migrate_cli,
    plan_lab,
    start_lab,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not CHROMIUM.exists() or not CHROMEDRIVER.exists(),
                       reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"),
]


@pytest.fixture(scope="module")
def rlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    yield from start_lab(tmp_path_factory, "report", 10, 3)


@pytest.fixture(scope="module")
def reported(rlab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """discover -> plan -> run (one VM cannot be marked: it fails) -> report."""
    work = tmp_path_factory.mktemp("report-run")
    plan = plan_lab(rlab, work, max_vms=5)
    waves = yaml.safe_load(plan.read_text())["waves"]
    seeded = {vm["instance_uuid"]: vm for vm in estate(rlab)["vms"]}
    names = {uuid: vm["name"] for uuid, vm in seeded.items()}
    victim = next(uuid for uuid in waves[0]["vms"] if len(seeded[uuid]["disks"]) == 1 and not seeded[uuid].get("vapp"))
    block_the_mark(rlab, names[victim], victim, seeded[victim]["disks"][0]["datastore"])
    journal = work / "run.db"
    ran = migrate_cli(rlab, "run", plan, "--journal", journal, "--json")
    assert ran.code == 1, ran
    out = work / "report.html"
    result = run_cli("report", "--plan", plan, "--inventory", work / "inventory.json", "--flows",
                     rlab.directory / "flows.csv", "--journal", journal, "--out", out)
    assert result.code == 0, result
    planned = [vm for wave in waves for vm in wave["vms"]]
    return {"out": out, "victim": names[victim], "names": [names[v] for v in planned], "work": work, "plan": plan}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--disable-gpu"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _png_colours(png: bytes, limit: int = 64) -> set[tuple[int, ...]]:
    """Distinct pixel colours of an 8-bit, non-interlaced PNG (what Chromium writes), up to `limit`."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    channels = 4
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, _height, depth, colour_type = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour_type in (2, 6)
            channels = 4 if colour_type == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    colours: set[tuple[int, ...]] = set()
    for start in range(0, len(raw), stride + 1):
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        colours.update(tuple(line[i:i + channels]) for i in range(0, stride, channels * 7))
        if len(colours) >= limit:
            break
        previous = line
    return colours


def test_the_report_opens_offline_and_shows_everything(reported: dict[str, Any], browser: Any) -> None:
    """No console error, only file:// requests, a row per VM, graph and timeline drawn, the filter works."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    started = time.monotonic()
    browser.get(reported["out"].resolve().as_uri())
    opened = time.monotonic() - started
    assert opened < 10, f"the report took {opened:.1f} s to open"
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == [], severe
    urls = [json.loads(e["message"])["message"]["params"]["request"]["url"]
            for e in browser.get_log("performance")
            if json.loads(e["message"])["message"]["method"] == "Network.requestWillBeSent"]
    assert urls and all(u.startswith(("file://", "data:")) for u in urls), urls

    rows = browser.find_elements(By.CSS_SELECTOR, "#vm-table tbody tr")
    shown_names = [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows]
    assert sorted(shown_names) == sorted(reported["names"])
    failed = browser.find_elements(By.CSS_SELECTOR, '#vm-table tbody tr[data-state="failed"]')
    assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in failed] == [reported["victim"]]
    assert reported["victim"] in browser.find_element(By.CSS_SELECTOR, ".failures").text

    for svg_id, parts in (("graph-svg", "circle.node"), ("timeline-svg", "rect")):
        svg = browser.find_element(By.ID, svg_id)
        box = browser.execute_script("var b = arguments[0].getBBox(); return [b.width, b.height];", svg)
        assert box[0] > 100 and box[1] > 50, (svg_id, box)
        assert len(svg.find_elements(By.CSS_SELECTOR, parts)) >= (len(reported["names"]) if svg_id == "graph-svg"
                                                                  else 2)
        browser.execute_script("arguments[0].scrollIntoView()", svg)
        png = svg.screenshot_as_png
        (reported["work"] / f"{svg_id}.png").write_bytes(png)
        assert len(_png_colours(png)) > 3, f"{svg_id} renders as one flat colour"

    search = browser.find_element(By.ID, "vm-filter")
    search.send_keys(reported["victim"])
    visible = [r for r in rows if r.is_displayed()]
    assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in visible] == [reported["victim"]]
    assert browser.find_element(By.ID, "vm-count").text.startswith("1 of ")
    search.clear()
    browser.execute_script("document.getElementById('vm-filter').dispatchEvent(new Event('input'))")
    Select(browser.find_element(By.ID, "vm-state")).select_by_value("completed")
    assert len([r for r in rows if r.is_displayed()]) == len(reported["names"]) - 1
    Select(browser.find_element(By.ID, "vm-state")).select_by_value("")
    header = browser.find_element(By.CSS_SELECTOR, '#vm-table th[data-key="0"]')
    header.click()
    first = browser.find_element(By.CSS_SELECTOR, "#vm-table tbody tr td").text
    assert first == sorted(reported["names"], key=str.lower)[0]
    (reported["work"] / "page.png").write_bytes(browser.get_screenshot_as_png())  # for people to look at


def test_the_readiness_section_shows_the_plan_s_notes(reported: dict[str, Any], browser: Any) -> None:
    """The section lists exactly the VMs plan.yaml's notes find not plainly ready for their wave's method (cold),
    each with its verdict and rule ids; the counts card adds up to every planned VM."""
    from selenium.webdriver.common.by import By

    notes = yaml.safe_load(reported["plan"].read_text())["readiness"]
    cold = {vm["name"]: vm["verdict"] if "verdict" in vm else vm["verdicts"]["cold"] for vm in notes["vms"]}
    expected = {vm["name"]: vm for vm in notes["vms"] if cold[vm["name"]] != "ready"}
    assert expected, "the lab's VMs run without VMware Tools: the notes warn about them"
    browser.get(reported["out"].resolve().as_uri())
    section = browser.find_element(By.ID, "readiness")
    browser.execute_script("arguments[0].scrollIntoView()", section)
    assert section.is_displayed() and "from the plan's readiness notes" in section.text
    assert browser.find_element(By.CSS_SELECTOR, 'nav a[href="#readiness"]').is_displayed()
    rows = section.find_elements(By.CSS_SELECTOR, "#readiness-table tbody tr")
    shown = {r.find_elements(By.TAG_NAME, "td")[0].text: r for r in rows}
    assert set(shown) == set(expected)
    labels = {"not_ready": "not ready", "ready_with_warnings": "ready with warnings"}
    for name, row in shown.items():
        note = expected[name]
        cells = row.find_elements(By.TAG_NAME, "td")
        assert cells[2].text == "cold" and cells[3].text == labels[cold[name]]
        rules = [c.text for c in cells[4].find_elements(By.TAG_NAME, "code")]
        unknown = {r for r in note.get("unknown", []) if "cold" in notes["unknown_facts"][r].get("methods", ["cold"])}
        assert rules and set(rules) == unknown | {f["rule"] for f in note.get("findings", [])
                                                  if "cold" in f.get("methods", ["cold"])}
        assert row.is_displayed() and row.size["height"] > 0
    card = section.find_element(By.CSS_SELECTOR, ".card dl").text.split("\n")
    counts = dict(zip(card[0::2], (int(n.replace(",", "")) for n in card[1::2]), strict=True))
    assert sum(counts.values()) == len(reported["names"])
    assert counts["ready"] == len(reported["names"]) - len(expected)
