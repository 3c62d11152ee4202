"""The chart inside the page, offline and small: plotly.js travels gzipped and
base64-encoded in the page itself (about 2 MB instead of 4.8), and the browser unpacks
it with its own `DecompressionStream` before drawing; the figure travels as JSON. Nothing
is fetched, so the page opens offline, from a CI artifact or an e-mail.

When the chart is drawn, ``window.reportReady`` is true; a browser that cannot unpack it
(before Chrome 80, Firefox 113, Safari 16.4) shows a sentence saying so instead.
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
from typing import Any

__all__ = ["chart_html", "extra_chart_html", "plotly_gz_base64"]

CHART_ID = "timeline"


@functools.cache
def plotly_gz_base64() -> str:
    """plotly.js from the installed plotly package, gzipped (level 9, no timestamp, so a
    page is the same bytes for the same data) and base64-encoded; once per process."""
    from plotly.offline import get_plotlyjs

    packed = gzip.compress(get_plotlyjs().encode("utf-8"), compresslevel=9, mtime=0)
    return base64.b64encode(packed).decode("ascii")


def _script_safe(text: str) -> str:
    """JSON text safe inside a <script> element (no "</" to end it early)."""
    return text.replace("</", "<\\/")


_LOADER = """
(async function () {
  const div = document.getElementById("%(id)s");
  try {
    if (typeof DecompressionStream === "undefined") {
      throw new Error("this browser cannot unpack the embedded chart library"
        + " (needs DecompressionStream: Chrome 80, Firefox 113, Safari 16.4 or later)");
    }
    const packed = document.getElementById("%(id)s-plotly").textContent.trim();
    const bytes = Uint8Array.from(atob(packed), (c) => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    (0, eval)(await new Response(stream).text());
    const spec = JSON.parse(document.getElementById("%(id)s-figure").textContent);
    const config = JSON.parse(document.getElementById("%(id)s-config").textContent);
    await Plotly.newPlot(div, spec.data, spec.layout, config);
    for (const extra of document.querySelectorAll("script[data-chart]")) {
      const target = document.getElementById(extra.dataset.chart);
      const figure = JSON.parse(extra.textContent);
      await Plotly.newPlot(target, figure.data, figure.layout, config);
    }
    window.reportReady = true;
  } catch (e) {
    div.textContent = "The chart could not be drawn: " + e.message;
    console.error(e);
  }
})();
"""


def chart_html(figure_json: str, config: dict[str, Any], height: int) -> str:
    """The chart's div, plotly.js packed, the figure (plotly's JSON) and the loader."""
    return (
        f'<div id="{CHART_ID}" class="chart" style="height:{height}px; width:100%;"></div>\n'
        f'<script type="application/octet-stream" id="{CHART_ID}-plotly">'
        f"{plotly_gz_base64()}</script>\n"
        f'<script type="application/json" id="{CHART_ID}-figure">'
        f"{_script_safe(figure_json)}</script>\n"
        f'<script type="application/json" id="{CHART_ID}-config">'
        f"{_script_safe(json.dumps(config))}</script>\n"
        f"<script>{_LOADER % {'id': CHART_ID}}</script>"
    )


def extra_chart_html(div_id: str, figure_json: str, height: int) -> str:
    """Another chart on the page, drawn by the main chart's loader once plotly.js is in."""
    return (
        f'<div id="{div_id}" class="chart" style="height:{height}px; width:100%;"></div>\n'
        f'<script type="application/json" data-chart="{div_id}">'
        f"{_script_safe(figure_json)}</script>"
    )
