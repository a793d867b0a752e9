"""caresim.analysis.leavers: the cross-tables of care leavers agree with the run's own
flows, and the time in care is measured from the period's start."""

import pytest

from caresim.analysis.leavers import AGE_LABELS, leavers
from caresim.results.metrics import START_AGE_BANDS


def test_leavers_tables_add_up_to_the_recorded_flows(tiny, la_inputs):
    """Every period of care that ends is in the tables once: by age band on ceasing they
    are the run's care_ceased.age_<band> (under 18) and care_ceased.left_care (18), by
    reason its care_ceased.<reason>, in total its care_ceased; the times in care known
    (periods begun in the run) are positive and no longer than the run; and the short-stay
    shares are of all the last year's leavers."""
    out = leavers(tiny.scenario, la_inputs, seed=4, scale=0.5, years=tiny.scenario.years)
    rec = out.records
    flow = rec.groupby("metric").value.sum()
    by_age = out.per_year("reason").sum(axis=1) * out.years
    for band in START_AGE_BANDS:
        assert by_age[band] == pytest.approx(flow.get(f"care_ceased.age_{band}", 0.0)), band
    assert by_age["18"] == pytest.approx(flow["care_ceased.left_care"])
    by_reason = out.per_year("reason").sum(axis=0) * out.years
    for reason, n in by_reason.items():
        assert n == pytest.approx(flow[f"care_ceased.{reason}"]), reason
    assert by_age.sum() == pytest.approx(flow["care_ceased"]) and list(by_age.index) == list(AGE_LABELS)
    days = out.ends["days"].dropna()
    assert days.size > 50 and (days > 0).all() and days.max() <= out.years * 365.25
    # the shares are of the last year's leavers, whose unknown starts are over a year ago
    under_2w, under_1y, n = out.short_stay_shares()
    last = out.ends[out.ends["t"] >= (out.years - 1) * 365.25]
    assert n == len(last) and n > 20
    assert under_1y == pytest.approx((last["days"] < 365.25).sum() / n)
    assert 0 <= under_2w <= under_1y < 1
