"""Fit report: published against simulated, as charts, a table and a one-page summary.

Reads only results (the fit table of `caresim.analysis.targets.fit_table`): national series
charts, LA small multiples, and `fit_summary.md` with the checks of issue 3 (national
targets: stocks within 5%, flows within 7%, shares within 3 points, or their own tolerance
if wider; LA correlation and median absolute relative error).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from caresim.analysis.targets import is_la, period_position  # noqa: E402
from caresim.report.numbers import as_published, number  # noqa: E402

CHECK_LIMIT = {"stock": 0.05, "flow": 0.07, "share": 3.0, "duration": 4.0}
LA_METRICS = ("looked_after", "child_in_need", "cpp_starts")


def national_checks(fit: pd.DataFrame, years: tuple[int, int]) -> pd.DataFrame:
    """England targets in `years`: within the issue's limit or their own wider tolerance."""
    t = fit[(fit.geography == "England") & fit.year.between(*years) & fit.simulated.notna()
            & (fit.qualifier == "")].copy()
    limit = t.kind.map(CHECK_LIMIT)
    t["limit"] = np.maximum(limit, t.tolerance)
    dev = np.where(t.kind.isin(["stock", "flow"]), t.rel_error.abs(), t.error.abs())
    t["passes"] = dev <= t["limit"] + 1e-12
    return t


def fit_checks(fit: pd.DataFrame, check_years: tuple[int, int], la_year: int) -> dict:
    """The fit's checks for a manifest: national targets within their limit (in total and
    by kind) and the LA statistics, so a run's brief can state how well its calibration fits."""
    checks = national_checks(fit, check_years)
    by_kind = {k: {"passed": int(g.passes.sum()), "total": int(len(g))}
               for k, g in checks.groupby("kind")}
    la = la_statistics(fit, la_year)
    return {
        "checks": {"passed": int(checks.passes.sum()), "total": int(len(checks)),
                   "years": list(check_years), "by_kind": by_kind,
                   "limits": "stocks 5%, flows 7%, shares 3 points, durations 4 weeks, or the "
                             "figure's own tolerance if wider"},
        "la_statistics": {"year": la_year, "rows": json.loads(la.to_json(orient="records"))},
    }


def la_statistics(fit: pd.DataFrame, year: int) -> pd.DataFrame:
    """Correlation and median |relative error| across LAs, per LA metric, in `year`."""
    rows = []
    las = fit[is_la(fit.geography) & (fit.year == year)]
    for m in LA_METRICS:
        d = las[(las.metric == m) & las.simulated.notna() & (las.published > 0)]
        if len(d) < 3:
            continue
        rows.append({"metric": m, "year": year, "las": len(d),
                     "correlation": float(np.corrcoef(d.published, d.simulated)[0, 1]),
                     "median_abs_rel_error": float(np.median(np.abs(d.rel_error)))})
    return pd.DataFrame(rows)


def _positions(fit: pd.DataFrame) -> pd.Series:
    """x of each target on a chart: its year, or the middle of its period (court figures)."""
    periods = fit["period"] if "period" in fit else pd.Series("", index=fit.index)
    return pd.Series([period_position(p) if p else float(y) for y, p in zip(fit["year"], periods.fillna(""))],
                     index=fit.index)


def national_charts(fit: pd.DataFrame, out_dir: Path, train: tuple[int, int] | None) -> list[Path]:
    """One chart per England count/share series with a simulated value."""
    out_dir.mkdir(parents=True, exist_ok=True)
    eng = fit[(fit.geography == "England")]
    metrics = sorted(m for m in eng.metric.unique() if eng[eng.metric == m].simulated.notna().any())
    paths = []
    n = len(metrics)
    if n == 0:
        return paths
    cols = 4
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.9 * rows), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        d = eng[eng.metric == m].assign(x=lambda f: _positions(f)).sort_values("x")
        ax.plot(d.x, d.published, "o", color="black", ms=3.5, label="published")
        s = d[d.simulated.notna()]
        ax.plot(s.x, s.simulated, "-", color="#1f5f8b", label="simulated (mean)")
        if train:
            ax.axvspan(train[0] - 0.5, train[1] + 0.5, color="#eeeeee", zorder=0)
        ax.set_title(m, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("England: published (points) and simulated (line); grey = fitted years", fontsize=10)
    fig.tight_layout()
    p = out_dir / "fit_national.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths


def la_charts(fit: pd.DataFrame, out_dir: Path, year: int) -> list[Path]:
    """Small multiples of LAs: published against simulated, one panel per LA metric."""
    las = fit[is_la(fit.geography) & (fit.year == year)]
    mets = [m for m in LA_METRICS if las[las.metric == m].simulated.notna().any()]
    if not mets:
        return []
    fig, axes = plt.subplots(1, len(mets), figsize=(4.4 * len(mets), 4.2), squeeze=False)
    for ax, m in zip(axes.flat, mets):
        d = las[(las.metric == m) & las.simulated.notna() & (las.published > 0)]
        ax.loglog(d.published, d.simulated, ".", ms=4, color="#1f5f8b")
        lo, hi = max(1.0, d.published.min() * 0.8), d.published.max() * 1.25
        ax.plot([lo, hi], [lo, hi], "-", color="grey", lw=0.8)
        r = np.corrcoef(d.published, d.simulated)[0, 1]
        ax.set_title(f"{m}, {year}: r = {r:.3f}, median |err| = {np.median(np.abs(d.rel_error)):.1%}",
                     fontsize=8)
        ax.set_xlabel("published (LA)", fontsize=8)
        ax.set_ylabel("simulated (LA)", fontsize=8)
    fig.tight_layout()
    p = out_dir / "fit_local_authorities.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return [p]


def summary_markdown(fit: pd.DataFrame, params: pd.DataFrame | None, check_years: tuple[int, int],
                     la_year: int, title: str, method: str) -> str:
    checks = national_checks(fit, check_years)
    la = la_statistics(fit, la_year)
    out_of_tol = fit[fit.within_tolerance == "no"]
    lines = [f"# {title}", "", method, ""]
    if params is not None:
        lines += ["## Fitted parameters (95% interval)", "",
                  "| parameter | prior | fitted | 95% interval | at bound |", "|---|---|---|---|---|"]
        for r in params.itertuples():
            lines.append(f"| `{r.name}` | {r.prior:.4g} | {r.fitted:.4g} | {r.lower_95:.4g} – "
                         f"{r.upper_95:.4g} | {'yes' if r.at_bound else ''} |")
        lines.append("")
    n_pass = int(checks.passes.sum())
    lines += [f"## National targets {check_years[0] - 1}-{str(check_years[0])[2:]} to "
              f"{check_years[1] - 1}-{str(check_years[1])[2:]}",
              "", f"{n_pass} of {len(checks)} within the limit (stocks 5%, flows 7%, shares 3 "
              "points, durations 4 weeks, or the figure's own tolerance if wider).", "",
              "| metric | year | published | simulated | error | limit | passes |",
              "|---|---|---|---|---|---|---|"]
    for r in checks.sort_values(["metric", "year"]).itertuples():
        err = f"{r.rel_error:+.1%}" if r.kind in ("stock", "flow") else f"{r.error:+.1f}"
        lim = f"{r.limit:.0%}" if r.kind in ("stock", "flow") else f"{r.limit:.1f}"
        lines.append(f"| {r.metric} | {getattr(r, 'period', '') or r.year} | {as_published(r.published)} | {number(r.simulated)} | {err} | "
                     f"{lim} | {'yes' if r.passes else '**no**'} |")
    lines += ["", f"## Local authorities, {la_year}", "",
              "| metric | LAs | correlation | median abs. relative error |", "|---|---|---|---|"]
    for r in la.itertuples():
        lines.append(f"| {r.metric} | {r.las} | {r.correlation:.3f} | {r.median_abs_rel_error:.1%} |")
    lines += ["", f"## Targets outside their published tolerance: {len(out_of_tol)} of "
              f"{int((fit.within_tolerance != 'not simulated').sum())} simulated "
              f"({int((fit.within_tolerance == 'not simulated').sum())} targets have no simulated "
              "counterpart); every one is in fit.csv.", ""]
    return "\n".join(lines)
