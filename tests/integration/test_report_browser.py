"""The HTML report in a real browser: headless Chromium opens it offline, unpacks the
embedded plotly.js, its plots render with data on the right axes, a legend per row, labels
inside the chart, nothing is logged as an error, and a screenshot is saved."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))  # the fake runs
from chromium import Chromium, chromium_binary
from report_fakes import CAPACITY, make_run

from harness.report import write_report

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(chromium_binary() is None, reason="no chromium (./dev installs it)"),
]

PLOTTED = "window.reportReady === true"


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    with Chromium(width=1400, height=2000) as chromium:
        yield chromium


def test_report_renders_side_by_side_without_errors(browser: Chromium, tmp_path: Path) -> None:
    make_run(tmp_path, "naive")
    hardened = make_run(tmp_path, "hardened", stamp="20260101-070100-000")
    report = write_report(hardened)

    page = browser.open(report, wait_for=PLOTTED)

    assert page.errors == []
    plot = "document.getElementById('timeline')"
    traces = page.evaluate(f"{plot}.data.length")
    drawn = page.evaluate(f"{plot}.querySelectorAll('.scatterlayer .trace').length")
    assert traces >= 2 * 10 and drawn == traces  # every trace of both columns is drawn
    # the y axes autorange over the data (a fixed x range once froze them at [0, 4])
    top = page.evaluate(f"{plot}._fullLayout.yaxis.range")
    assert top[1] > CAPACITY
    assert page.evaluate(f"{plot}._fullLayout.yaxis2.range") == top  # same axes side by side
    shading = page.evaluate(f"{plot}.querySelectorAll('.shapelayer path').length")
    assert shading >= 2 * 2 * 6  # two faults shaded in six rows of two columns
    labels = page.evaluate(
        f"Array.from({plot}.querySelectorAll('.annotation-text')).map(e => e.textContent)"
    )
    assert labels.count("crash of gateway gateway-a") == 2
    # every label lies inside the chart: none is cut at the right edge
    overflow = page.evaluate(
        f"(() => {{ const box = {plot}.getBoundingClientRect();"
        f" return Array.from({plot}.querySelectorAll('.annotation'))"
        ".filter(a => a.getBoundingClientRect().right > box.right + 1).length; })()"
    )
    assert overflow == 0
    legends = page.evaluate(  # plotly.js names them legend, legend2, ... legend6
        f"Array.from({plot}.querySelectorAll('g.infolayer > g'))"
        ".filter(g => /^legend[0-9]*$/.test(g.getAttribute('class'))).length"
    )
    assert legends == 6  # one per row
    assert page.evaluate("document.querySelectorAll('h2').length") >= 5
    assert page.evaluate("document.body.innerText.includes('never (still down')")
    assert page.evaluate("performance.getEntriesByType('resource').length") == 0  # offline

    shot = page.screenshot(report.with_name("report.png"))
    assert shot.stat().st_size > 50_000


def test_console_errors_are_caught(browser: Chromium, tmp_path: Path) -> None:
    """The error check can fail: a page that logs an error and throws is reported."""
    page_file = tmp_path / "broken.html"
    page_file.write_text(
        "<html><body><script>console.error('boom'); setTimeout(() => { undefinedThing(); }, 0);"
        "</script></body></html>"
    )
    page = browser.open(page_file)
    page.pump(0.5)
    assert any("boom" in e for e in page.errors)
    assert any("undefinedThing" in e for e in page.errors)
