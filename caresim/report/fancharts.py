"""Fan charts: the simulated median and 90% range of a metric, with published history.

Inputs are a summary table (the `summary.csv` columns: `scenario, metric, year,
geography, mean, p05, p50, p95, replications`) and a history table (`metric, year,
geography, value, qualifier, source_id`, in the metric's unit). Figures are drawn with
matplotlib's object-oriented API on the Agg canvas, so nothing touches pyplot's global
state and no window is opened.

For `caresim compare`, `overlay_fan_charts` draws several scenarios' bands and means on
one chart and `difference_chart` draws a paired difference (rows of difference.csv) with
its 90% band, both in Okabe-Ito colours.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from caresim.results.metrics import metric_info

_COLOURS = ("#1f5f8b", "#c0502d", "#2e8b57", "#7b4fa0", "#b8860b")
#: Okabe-Ito colours (distinguishable with the common colour-vision deficiencies), in the
#: order used for compared scenarios: blue, vermillion, bluish green, reddish purple, orange.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00")
_HISTORY_COLOUR = "#222222"
_X_LABEL = "Financial year ending 31 March"


def _select(df: pd.DataFrame, metric: str, geography: str) -> pd.DataFrame:
    if df is None or df.empty:
        return pd.DataFrame(columns=df.columns if df is not None else [])
    return df[(df["metric"] == metric) & (df["geography"] == geography)].sort_values("year")


def _history_for(history: pd.DataFrame | None, metric: str, geography: str, last_year: int) -> pd.DataFrame:
    if history is None or history.empty:
        return pd.DataFrame(columns=["metric", "year", "geography", "value", "qualifier", "source_id"])
    h = _select(history, metric, geography)
    h = h[h["value"].notna() & (h["year"] <= last_year)]
    return h.sort_values(["source_id", "year"], kind="mergesort")


def _scale(unit: str, peak: float) -> tuple[float, str]:
    """Divide GBP by a million when the figures are that large, for readable ticks."""
    if unit == "GBP" and peak >= 1e6:
        return 1e6, "GBP million"
    return 1.0, unit


def _draw(ax: Axes, summary: pd.DataFrame, history: pd.DataFrame | None, metric: str,
          geography: str, title: str | None, legend: bool = True, centre: str = "p50",
          colours: Sequence[str] = _COLOURS) -> tuple[list[str], list[str]]:
    """Draw one fan chart on `ax`; return the history source ids and qualifiers shown.

    `centre` is the line drawn inside each band: `p50` (median) or `mean`."""
    sim = _select(summary, metric, geography)
    info = metric_info(metric)
    hist = _history_for(history, metric, geography, int(sim["year"].max()))
    peak = max(
        float(sim[["p95", "p50", centre]].abs().max().max()),
        float(hist["value"].abs().max()) if not hist.empty else 0.0,
    )
    divisor, unit = _scale(info.unit, peak)
    scenarios = list(dict.fromkeys(sim["scenario"])) if "scenario" in sim else [None]
    for i, scenario in enumerate(scenarios):
        s = sim if scenario is None else sim[sim["scenario"] == scenario]
        colour = colours[i % len(colours)]
        label = "" if len(scenarios) == 1 else f"{scenario}: "
        reps = int(s["replications"].max()) if "replications" in s else 0
        ax.fill_between(s["year"], s["p05"] / divisor, s["p95"] / divisor, color=colour,
                        alpha=0.22, linewidth=0,
                        label=f"{label}simulated 90% range (p05-p95, {reps} replications)")
        ax.plot(s["year"], s[centre] / divisor, color=colour, linewidth=2,
                label=f"{label}simulated {'median' if centre == 'p50' else centre}")
    sources: list[str] = []
    qualifiers: list[str] = []
    for j, (source, h) in enumerate(hist.groupby("source_id", sort=True)):
        sources.append(str(source))
        qualifier = h["qualifier"].fillna("").astype(str).str.strip()
        qualified = qualifier != ""
        qualifiers += list(qualifier[qualified])
        ax.plot(h["year"], h["value"] / divisor, color=_HISTORY_COLOUR, linewidth=1,
                linestyle="--", marker="o", markersize=4,
                label="published" if j == 0 else None)
        if qualified.any():
            ax.plot(h.loc[qualified, "year"], h.loc[qualified, "value"] / divisor, linestyle="none",
                    marker="o", markersize=6, markerfacecolor="white",
                    markeredgecolor=_HISTORY_COLOUR, label=None)
    decimals = 0 if peak / divisor >= 100 else 1
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.{decimals}f}"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(_X_LABEL)
    ax.set_ylabel(unit)
    ax.set_title(title or f"{metric}, {geography}", fontsize=10)
    # Start at zero (no exaggerated trends) and leave headroom for the legend.
    low, high = ax.get_ylim()
    ax.set_ylim(bottom=min(0.0, low), top=max(high, peak / divisor * 1.25))
    ax.grid(True, color="#dddddd", linewidth=0.6)
    if legend:
        ax.legend(fontsize=7, loc="best", frameon=False)
    return sources, qualifiers


def _footnote(fig: Figure, sources: Iterable[str], qualifiers: Iterable[str]) -> None:
    ids = sorted(set(sources))
    text = f"Published figures: {', '.join(ids)}." if ids else "No published figures shown."
    quals = sorted(set(qualifiers))
    if quals:
        text += f" Hollow markers: figures qualified as {', '.join(quals)}."
    fig.text(0.01, 0.005, text, fontsize=6.5, color="#555555", ha="left", va="bottom", wrap=True)


def _has_data(summary: pd.DataFrame, metric: str, geography: str) -> bool:
    return not _select(summary, metric, geography).empty


def fan_chart(summary: pd.DataFrame, history: pd.DataFrame | None, metric: str, geography: str,
              path: Path | str, title: str | None = None) -> Path:
    """Write a PNG fan chart of `metric` in `geography` to `path`: the simulated median
    and 90% band (p05-p95) per financial year, with the published history (years up to
    the last simulated year) as a dashed line with points, and a footnote naming the
    history's source ids. The y axis is in the metric's unit (GBP in millions when large).
    Raises `ValueError` if the summary has no rows for the metric and geography."""
    if not _has_data(summary, metric, geography):
        raise ValueError(f"no simulated values of {metric!r} for {geography!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(7.5, 4.6), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    sources, qualifiers = _draw(ax, summary, history, metric, geography, title)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    _footnote(fig, sources, qualifiers)
    fig.savefig(path, format="png")
    fig.clear()
    return path


def _file_name(metric: str) -> str:
    return "fan_" + metric.replace(".", "_").replace("<", "").replace(">", "") + ".png"


def fan_charts(summary: pd.DataFrame, history: pd.DataFrame | None, out_dir: Path | str,
               metrics: Sequence[str], geography: str = "England") -> list[Path]:
    """Write `fan_<metric>.png` (dots become underscores) into `out_dir` for every metric
    in `metrics` that has simulated values in `geography`, plus `fan_charts.png`, a grid
    of all of them. Returns the paths written, the grid last; empty if nothing had data."""
    out_dir = Path(out_dir)
    present = [m for m in dict.fromkeys(metrics) if _has_data(summary, m, geography)]
    paths = [fan_chart(summary, history, m, geography, out_dir / _file_name(m)) for m in present]
    if not present:
        return paths
    ncols = min(3, len(present))
    nrows = math.ceil(len(present) / ncols)
    fig = Figure(figsize=(5.2 * ncols, 3.6 * nrows + 0.4), dpi=100)
    FigureCanvasAgg(fig)
    sources: list[str] = []
    qualifiers: list[str] = []
    for k, metric in enumerate(present):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        s, q = _draw(ax, summary, history, metric, geography, None, legend=(k == 0))
        sources += s
        qualifiers += q
    fig.suptitle(f"Simulated median and 90% range with published figures, {geography}", fontsize=12)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    _footnote(fig, sources, qualifiers)
    grid = out_dir / "fan_charts.png"
    fig.savefig(grid, format="png")
    fig.clear()
    paths.append(grid)
    return paths


def overlay_fan_charts(summary: pd.DataFrame, history: pd.DataFrame | None, out_dir: Path | str,
                       metrics: Sequence[str], geography: str = "England") -> list[Path]:
    """For compared scenarios (several values of `scenario` in `summary`): write
    `compare_<metric>.png` into `out_dir` for each metric in `metrics` with values in
    `geography`, every scenario's 90% band (p05-p95) and mean overlaid in Okabe-Ito
    colours, with the published history; plus `compare_fan_charts.png`, a grid of them.
    Returns the paths written, the grid last; empty if nothing had data."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    present = [m for m in dict.fromkeys(metrics) if _has_data(summary, m, geography)]
    names = list(dict.fromkeys(summary["scenario"]))
    paths: list[Path] = []
    for metric in present:
        fig = Figure(figsize=(7.5, 4.6), dpi=120)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        sources, qualifiers = _draw(ax, summary, history, metric, geography,
                                    f"{metric}, {geography}: {' vs '.join(names)}",
                                    centre="mean", colours=OKABE_ITO)
        fig.tight_layout(rect=(0, 0.05, 1, 1))
        _footnote(fig, sources, qualifiers)
        path = out_dir / _file_name(metric).replace("fan_", "compare_", 1)
        fig.savefig(path, format="png")
        fig.clear()
        paths.append(path)
    if not present:
        return paths
    ncols = min(2, len(present))
    nrows = math.ceil(len(present) / ncols)
    fig = Figure(figsize=(6.2 * ncols, 4.0 * nrows + 0.4), dpi=100)
    FigureCanvasAgg(fig)
    sources, qualifiers = [], []
    for k, metric in enumerate(present):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        s, q = _draw(ax, summary, history, metric, geography, None, legend=(k == 0),
                     centre="mean", colours=OKABE_ITO)
        sources += s
        qualifiers += q
    fig.suptitle(f"Simulated mean and 90% range, {' vs '.join(names)}, {geography}", fontsize=12)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    _footnote(fig, sources, qualifiers)
    grid = out_dir / "compare_fan_charts.png"
    fig.savefig(grid, format="png")
    fig.clear()
    paths.append(grid)
    return paths


def difference_chart(difference: pd.DataFrame, metric: str, geography: str, path: Path | str,
                     unit: str, title: str | None = None) -> Path:
    """Write a PNG of a paired difference (rows of difference.csv: `metric, year,
    geography, mean, p05, p50, p95`) of `metric` in `geography` to `path`: the mean per
    financial year and its 90% band (p05-p95 across replications), with a zero line. The
    y axis is in `unit` (GBP in millions when large). Raises `ValueError` if there are no
    rows for the metric and geography."""
    d = _select(difference, metric, geography)
    if d.empty:
        raise ValueError(f"no differences of {metric!r} for {geography!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    peak = float(d[["p05", "p95", "mean"]].abs().max().max())
    divisor, shown = _scale(unit, peak)
    colour = OKABE_ITO[2]
    fig = Figure(figsize=(7.5, 4.6), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.fill_between(d["year"], d["p05"] / divisor, d["p95"] / divisor, color=colour, alpha=0.25,
                    linewidth=0, label="90% range of the paired difference (p05-p95)")
    ax.plot(d["year"], d["mean"] / divisor, color=colour, linewidth=2, marker="o", markersize=4,
            label="mean difference")
    ax.axhline(0.0, color=_HISTORY_COLOUR, linewidth=0.8)
    decimals = _tick_decimals(ax)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.{decimals}f}"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(_X_LABEL)
    ax.set_ylabel(f"difference, B minus A ({shown})" if shown else "difference, B minus A")
    ax.set_title(title or f"{metric}, {geography}: B minus A", fontsize=10)
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.legend(fontsize=7, loc="best", frameon=False)
    fig.tight_layout()
    fig.savefig(path, format="png")
    fig.clear()
    return path


def _tick_decimals(ax: Axes) -> int:
    """The fewest decimals (up to 4) that write every major y tick exactly, so ticks such
    as -0.25 are not shown rounded to -0.2."""
    low, high = ax.get_ylim()
    ticks = ax.yaxis.get_major_locator().tick_values(low, high)
    for d in range(5):
        if all(abs(round(t, d) - t) < 1e-9 * max(1.0, abs(t)) for t in ticks):
            return d
    return 4
