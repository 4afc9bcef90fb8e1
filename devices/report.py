"""The profile as a terminal table and as one self-contained ``report.html`` (plotly, JS inlined).

Everything is drawn from ``profile.json`` alone, so a profile taken on a device renders on the
workstation (``emotrt profile report DIR``). The page fetches nothing: plotly.js is inlined once.
When the page has drawn its plots it writes their count to ``<body data-plots-rendered>`` (what
the headless-Chromium test reads back).
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from emotrt.devices.layer_times import layer_rows
from emotrt.runtime.atomic import atomic_write, make_dirs
from emotrt.runtime.errors import DependencyError

STAGE_ORDER = ("resample", "tse_step", "vad", "ser", "host", "end_to_end")
FIGURES = 5


def summary_rows(doc: Dict[str, Any]) -> List[Tuple[str, ...]]:
    """(precision, stage, count, mean, p50, p90, p95, p99, max, cv) per stage and run, as strings."""
    rows = []
    for run in doc["runs"]:
        for stage in STAGE_ORDER:
            s = run["stages"].get(stage, {})
            if not s.get("count"):
                continue
            rows.append((run["precision"], stage, str(s["count"]),
                         *("{:.3f}".format(s[k]) for k in ("mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")),
                         "{:.1%}".format(s["cv"])))
    return rows


SUMMARY_COLUMNS = ("precision", "stage", "count", "mean ms", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms", "CV")


def run_lines(doc: Dict[str, Any]) -> List[str]:
    """One line per run: backend, real-time factor, hops, overruns, dropped hops, stability."""
    lines = []
    for run in doc["runs"]:
        stable = run["stability"]["stable"]
        lines.append("{}: {} ({}), real-time factor {:.4f}, {} hops, {} overruns, {} dropped, stability: {}".format(
            run["precision"], run["backend"], run["backend_reason"], run["real_time_factor"] or 0.0, run["hops"],
            run["overruns"], run["dropped_hops"], {True: "stable", False: "UNSTABLE", None: "too few samples"}[stable]))
    overhead = doc.get("overhead")
    if overhead:
        lines.append("profiler cost (same run, {} hops): real-time factor {:.4f} timed vs {:.4f} untimed ({:+.1%}); "
                     "thread CPU {:.4f} vs {:.4f} ({:+.1%}); median hop {:+.1%}".format(
                         overhead["hops"], overhead["rtf_timed"], overhead["rtf_untimed"], overhead["overhead"],
                         overhead["rtf_cpu_timed"], overhead["rtf_cpu_untimed"], overhead["overhead_cpu"],
                         overhead["overhead_median_hop"]))
    res = doc["resources"]
    if res.get("average_power_mw") is not None:
        lines.append("power: {:.0f} mW average, {:.1f} mJ per audio second, {:.2f} mJ per inference".format(
            res["average_power_mw"], res["energy_mj_per_audio_s"] or 0.0, res["energy_mj_per_inference"] or 0.0))
    if res.get("process_cpu_percent_mean") is not None:
        lines.append("process CPU {:.0f} % mean ({} cores), RSS {:.0f} MB max".format(
            res["process_cpu_percent_mean"], doc["device"].get("cpu_count"), res.get("rss_mb_max") or 0.0))
    return lines


def _plotly() -> Any:
    try:
        import plotly.graph_objects as go
        import plotly.offline
    except ImportError as exc:
        raise DependencyError("plotly is needed to draw report.html ({})".format(exc),
                              hint="pip install plotly, or copy DIR to the workstation and run `emotrt profile report DIR`")
    return go, plotly.offline


def figures(doc: Dict[str, Any]) -> List[Any]:
    """The five figures: latency CDF, per-stage breakdown, hop timeline, power/CPU over time, precisions side by side."""
    go, _ = _plotly()
    runs = doc["runs"]
    hop_ms = doc["config"]["hop_ms"]
    cdf = go.Figure()
    for run in runs:
        for stage in STAGE_ORDER:
            samples = sorted(run["stages"][stage].get("samples_ms") or [])
            if samples:
                n = len(samples)
                cdf.add_trace(go.Scatter(x=samples, y=[(i + 1) / n for i in range(n)], mode="lines",
                                         name="{} {}".format(run["precision"], stage)))
    cdf.update_layout(title="Latency CDF per stage", xaxis_title="ms (log)", yaxis_title="fraction of calls",
                      xaxis_type="log")

    breakdown = go.Figure()
    for stage in STAGE_ORDER[:-1]:
        per_hop = []
        for run in runs:
            s = run["stages"][stage]
            per_hop.append(s["mean_ms"] * s["count"] / max(run["hops"], 1) if s.get("count") else 0.0)
        breakdown.add_trace(go.Bar(x=[r["precision"] for r in runs], y=per_hop, name=stage))
    breakdown.update_layout(barmode="stack", title="Per-stage time per hop ({:.0f} ms of audio), mean".format(hop_ms),
                            yaxis_title="ms per hop")

    timeline = go.Figure()
    for run in runs:
        t, y = run["timeline"]["t_s"], run["stages"]["end_to_end"].get("samples_ms") or []
        timeline.add_trace(go.Scatter(x=t, y=y, mode="markers", marker={"size": 3},
                                        name="{} hop latency".format(run["precision"])))
        over = set(run["timeline"]["overrun_t_s"])
        if over:
            pairs = [(ti, yi) for ti, yi in zip(t, y) if ti in over]
            timeline.add_trace(go.Scatter(x=[p[0] for p in pairs], y=[p[1] for p in pairs], mode="markers",
                                          marker={"symbol": "x", "color": "red", "size": 8},
                                          name="{} overruns".format(run["precision"])))
    timeline.add_hline(y=hop_ms, line_dash="dot", annotation_text="hop deadline {:.0f} ms".format(hop_ms))
    timeline.update_layout(title="Hop latency over the run (audio in -> result out); overruns marked",
                           xaxis_title="audio time, s", yaxis_title="ms")

    res = doc["resources"]
    power = go.Figure()
    if res["power_samples"]:
        samples = res["power_samples"]
        power.add_trace(go.Scatter(x=[p["t_s"] for p in samples], y=[p["total_mw"] for p in samples], name="total mW"))
        for rail in sorted({r for p in samples for r in p["rails_mw"]}):
            power.add_trace(go.Scatter(x=[p["t_s"] for p in samples], y=[p["rails_mw"].get(rail) for p in samples],
                                       name=rail, line={"width": 1}))
        power.update_layout(title="Power over time (tegrastats)", xaxis_title="s", yaxis_title="mW")
    else:
        samples = res["cpu_samples"]
        power.add_trace(go.Scatter(x=[p["t_s"] for p in samples], y=[p["cpu_percent"] for p in samples],
                                   name="process CPU %"))
        power.update_layout(title="No tegrastats here: process CPU % over time ({})".format(res["source"]),
                            xaxis_title="s", yaxis_title="CPU % (100 = one core)")

    side = go.Figure()
    labels = [r["precision"] for r in runs]
    for key in ("p50_ms", "p99_ms"):
        side.add_trace(go.Bar(x=labels, y=[r["stages"]["end_to_end"].get(key, 0.0) for r in runs],
                              name="end-to-end " + key.split("_")[0]))
    side.add_trace(go.Scatter(x=labels, y=[r["real_time_factor"] for r in runs], name="real-time factor",
                              yaxis="y2", mode="markers+lines", marker={"size": 10}))
    side.update_layout(title="Precisions side by side", barmode="group", yaxis_title="ms",
                       yaxis2={"overlaying": "y", "side": "right", "title": "real-time factor", "rangemode": "tozero"})
    return [cdf, breakdown, timeline, power, side]


def _table(columns: Tuple[str, ...], rows: List[Tuple[Any, ...]], css: str = "") -> str:
    head = "".join("<th>{}</th>".format(html.escape(c)) for c in columns)
    body = "".join("<tr>{}</tr>".format("".join("<td>{}</td>".format(html.escape(str(v))) for v in row)) for row in rows)
    return "<table class='{}'><thead><tr>{}</tr></thead><tbody>{}</tbody></table>".format(css, head, body)


_STYLE = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}th{background:#f3f3f3}
td:first-child,td:nth-child(2),table.layers td:nth-child(4),table.layers td:nth-child(5){text-align:left}.warn{color:#a40}.plot{margin-bottom:12px}code{background:#f5f5f5}"""

_RENDERED = """<script>
window.addEventListener("load", function () {
  var plots = document.querySelectorAll(".js-plotly-plot");
  var drawn = 0;
  plots.forEach(function (p) { if (p.querySelector("svg.main-svg")) { drawn += 1; } });
  document.body.setAttribute("data-plots-rendered", String(drawn));
});
</script>"""


def render_html(doc: Dict[str, Any]) -> str:
    """The whole report page as a string (plotly.js inlined; nothing is fetched)."""
    go, offline = _plotly()
    divs = [fig.to_html(full_html=False, include_plotlyjs=False, default_width="100%", default_height="420px")
            for fig in figures(doc)]
    device = doc["device"]
    title = "emotrt profile: bundle {} on {}".format(doc["bundle"]["id"], doc.get("device_name") or device["hostname"])
    mode = doc["power_mode"]
    warnings = [(run["precision"], w) for run in doc["runs"] for w in run["warnings"]]
    layer_table = _table(("precision", "model", "rank", "layer", "op", "mean ms", "share"),
                         [(r["precision"], r["model"], r["rank"], r["name"], r["op"], "{:.4f}".format(r["mean_ms"]),
                           "{:.1f} %".format(r["percent"])) for r in layer_rows(doc.get("layers"))], css="layers")
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>{}</title><style>{}</style>".format(html.escape(title), _STYLE),
        "<script>{}</script></head><body>".format(offline.get_plotlyjs()),
        "<h1>{}</h1>".format(html.escape(title)),
        "<p>{} · emotrt {} · {} · {} audio ({}), pace {}, {} s after {} s warm-up, hop {:.0f} ms, SER window {:.1f} s every {:.1f} s</p>".format(
            html.escape(doc["created"]), html.escape(doc["emotrt_commit"]), html.escape(device.get("cpu", "")),
            html.escape(doc["config"]["source"]), html.escape(doc["config"].get("source_description", "")),
            doc["config"]["pace"], doc["config"]["duration_s"], doc["config"]["warmup_s"], doc["config"]["hop_ms"],
            doc["config"]["ser_window_s"], doc["config"]["ser_hop_s"]),
        "<ul>{}</ul>".format("".join("<li>{}</li>".format(html.escape(line)) for line in run_lines(doc))),
        "<p>nvpmodel: <code>{}</code> · jetson_clocks: <code>{}</code> · TensorRT {} · L4T {}</p>".format(
            html.escape(str(mode.get("nvpmodel"))), html.escape(str(mode.get("jetson_clocks"))),
            html.escape(str(device.get("tensorrt"))), html.escape(str(device.get("l4t")))),
        "<h2>Per-stage latency</h2>", _table(SUMMARY_COLUMNS, summary_rows(doc)),
    ]
    if warnings or doc["notes"]:
        parts.append("<h2>Warnings</h2><ul>{}</ul>".format("".join(
            "<li class='warn'>{}{}</li>".format(html.escape(p + ": ") if p else "", html.escape(w))
            for p, w in warnings + [("", n) for n in doc["notes"]])))
    parts += ["<div class='plot'>{}</div>".format(d) for d in divs]
    if doc.get("layers"):
        parts.append("<h2>Per-layer times (separate run)</h2>" + layer_table)
    parts.append(_RENDERED + "</body></html>")
    return "\n".join(parts)


def write_html(doc: Dict[str, Any], out: Any) -> Path:
    """Write ``DIR/report.html``; returns its path."""
    path = Path(out) / "report.html"
    atomic_write(path, render_html(doc).encode("utf-8"))
    return path


def report_for(path: Any, out: Optional[Any] = None) -> Path:
    """Render ``report.html`` next to (or into ``out`` from) an existing ``profile.json``."""
    from emotrt.devices.profile_document import read_profile

    doc = read_profile(path)
    folder = Path(out) if out else (Path(path) if Path(path).is_dir() else Path(path).parent)
    return write_html(doc, make_dirs(folder))
