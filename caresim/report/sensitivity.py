"""Sensitivity figures: tornado charts and index bars, from a sweep's tables.

Inputs are the rows of `tornado.csv` (`output, parameter, value_low, value_high,
output_low, output_high, output_centre, swing`) and `indices.csv` (`output, parameter,
method` and the method's index columns). Figures use matplotlib's object-oriented API on
the Agg canvas and the Okabe-Ito palette, one PNG per output:

- `tornado_<output>.png`: each parameter at its 5th and 95th percentile, the others at
  their medians, as bars from the centre run (all at medians), largest swing on top;
- `sobol_<output>.png` / `fast_<output>.png`: first-order (S1) and total (ST) indices with
  their confidence intervals; `delta_<output>.png`: delta and S1;
  `morris_<output>.png`: mu* with its interval, and sigma; parameters sorted by ST (delta,
  mu*), largest on top.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from caresim.report.fancharts import OKABE_ITO

#: index pairs drawn per method: (value column, interval column or None, legend label)
_BARS: dict[str, tuple[tuple[str, str | None, str], ...]] = {
    "sobol": (("S1", "S1_conf", "first order S1"), ("ST", "ST_conf", "total ST")),
    "fast": (("S1", "S1_conf", "first order S1"), ("ST", "ST_conf", "total ST")),
    "delta": (("delta", "delta_conf", "delta"), ("S1", "S1_conf", "first order S1")),
    "morris": (("mu_star", "mu_star_conf", "mu* (mean |elementary effect|)"), ("sigma", None, "sigma")),
}


def file_stem(output: str) -> str:
    """An output name as part of a file name: `diff:cost.total@2030` -> `diff_cost_total_2030`."""
    return re.sub(r"[^A-Za-z0-9]+", "_", output).strip("_")


def _divisor(unit: str, peak: float) -> tuple[float, str]:
    if unit == "GBP" and peak >= 1e6:
        return 1e6, "GBP million"
    return 1.0, unit


def tornado_chart(rows: pd.DataFrame, output: str, path: Path | str, unit: str = "",
                  note: str = "") -> Path:
    """Write the tornado chart of one output (rows of tornado.csv for it) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    g = rows.sort_values("swing", kind="mergesort")  # largest at the top of a barh
    centre = float(g["output_centre"].iloc[0])
    peak = float(np.nanmax(np.abs(g[["output_low", "output_high"]].to_numpy()))) if len(g) else 0.0
    div, shown_unit = _divisor(unit, peak)
    fig = Figure(figsize=(7.5, 0.45 * len(g) + 2.3), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(g))
    lo = (g["output_low"].to_numpy() - centre) / div
    hi = (g["output_high"].to_numpy() - centre) / div
    # side by side in each row, so equal effects at both ends (e.g. a U-shaped response) show
    ax.barh(y + 0.2, lo, height=0.4, left=centre / div, color=OKABE_ITO[0],
            label="parameter at its 5th percentile")
    ax.barh(y - 0.2, hi, height=0.4, left=centre / div, color=OKABE_ITO[1],
            label="parameter at its 95th percentile")
    ax.axvline(centre / div, color="#222222", linewidth=1)
    labels = [f"{p}\n({_num(a)} to {_num(b)})" for p, a, b in
              zip(g["parameter"], g["value_low"], g["value_high"])]
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel(f"{output}" + (f" ({shown_unit})" if shown_unit else ""))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.6g}"))
    ax.set_title(f"{output}: one at a time, others at their medians" + (f"\n{note}" if note else ""),
                 fontsize=10)
    return _finish(fig, ax, path)


def index_chart(rows: pd.DataFrame, output: str, method: str, path: Path | str, note: str = "",
                unit: str = "") -> Path:
    """Write the bar chart of one output's indices (rows of indices.csv) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bars = _BARS[method]
    key = "ST" if method in ("sobol", "fast") else bars[0][0]
    rows = rows.sort_values(key, ascending=False, kind="mergesort", na_position="last")  # largest on top
    fig = Figure(figsize=(7.5, 0.4 * len(rows) + 2.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(rows))[::-1]
    height = 0.8 / len(bars)
    for i, (col, conf, label) in enumerate(bars):
        values = rows[col].to_numpy(dtype=float)
        err = rows[conf].to_numpy(dtype=float) if conf else None
        ax.barh(y + (len(bars) / 2 - i - 0.5) * height, np.nan_to_num(values), height=height,
                xerr=None if err is None else np.nan_to_num(err), color=OKABE_ITO[i % len(OKABE_ITO)],
                error_kw={"elinewidth": 1, "capsize": 2}, label=label + (" (95% interval)" if conf else ""))
    ax.set_yticks(y, list(rows["parameter"]), fontsize=8)
    if method == "morris":
        ax.set_xlabel("elementary effect per unit probability scale" + (f" ({unit})" if unit else ""))
    else:
        ax.set_xlabel("share of output variance" if method != "delta" else "index")
        lows = [rows[c].to_numpy(dtype=float) - (rows[e].to_numpy(dtype=float) if e else 0.0)
                for c, e, _ in bars]
        ax.set_xlim(left=min(0.0, float(np.nanmin(np.concatenate(lows)))) - 0.02)
    ax.axvline(0, color="#222222", linewidth=0.8)
    ax.set_title(f"{output}: {method} indices" + (f"\n{note}" if note else ""), fontsize=10)
    return _finish(fig, ax, path)


def _finish(fig: Figure, ax, path: Path) -> Path:
    """Legend below, grid, layout, and the PNG written."""
    _legend_below(ax)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    fig.clear()
    return path


def _legend_below(ax) -> None:
    """The legend under the axes, so it never hides a bar."""
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)


def _num(v: float) -> str:
    return f"{v:,.4g}"


def sensitivity_figures(indices: pd.DataFrame, tornado: pd.DataFrame, folder: Path | str, method: str,
                        units: dict[str, str] | None = None, title_note: str = "") -> list[Path]:
    """Every output's tornado chart and index chart in `folder`; returns the paths."""
    folder = Path(folder)
    units = units or {}
    paths = []
    for output in dict.fromkeys(indices["output"]):
        t = tornado[tornado["output"] == output]
        if len(t):
            paths.append(tornado_chart(t, output, folder / f"tornado_{file_stem(output)}.png",
                                       units.get(output, ""), title_note))
        rows = indices[indices["output"] == output]
        if rows[list(c for c, _, _ in _BARS[method])].notna().any().any():
            paths.append(index_chart(rows, output, method, folder / f"{method}_{file_stem(output)}.png",
                                     title_note, units.get(output, "")))
    return paths
