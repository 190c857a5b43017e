"""Notebook displays (_repr_html_) of the results objects other than fits: the
likelihood-ratio test, the bootstrap, the parametric-bootstrap test, many responses.
Each must show its own numbers (checked against the objects' attributes)."""

import re

import numpy as np
import pandas as pd
import pytest

import lmm


@pytest.fixture(scope="module")
def fits():
    d = lmm.datasets.get_rdataset("dietox", "geepack").data
    return (lmm.lmer("Weight ~ Time + (1 | Pig)", d),
            lmm.lmer("Weight ~ Time + Evit + (1 | Pig)", d), d)


def _cells(html):
    return re.findall(r"<t[dh][^>]*>([^<]*)</t[dh]>", html)


def test_lrtest_display(fits):
    small, large, _ = fits
    t = lmm.lrtest(small, large)
    html = t._repr_html_()
    cells = _cells(html)
    assert f"{t.statistic:.4f}" in cells and str(t.df) in cells
    assert f"{t.pvalue:.4g}" in cells and f"{t.llf_full:.4f}" in cells
    assert any("refit" in c or "ML" in c for c in cells)       # the note or criterion


def test_bootstrap_display(fits):
    _, large, _ = fits
    boot = large.bootstrap(30, seed=1)
    html = boot._repr_html_()
    assert "30 replicates" in html
    frame = boot.summary_frame()
    assert list(frame.columns) == ["estimate", "bootstrap_sd", "lower", "upper"]
    np.testing.assert_allclose(frame["bootstrap_sd"], boot.sd()[frame.index])
    assert f"{frame.loc['sigma', 'bootstrap_sd']:.4g}" in _cells(html)


def test_pb_test_display(fits):
    small, large, _ = fits
    t = lmm.pb_test(small, large, nboot=20, seed=1)
    html = t._repr_html_()
    assert "20 samples" in html and f"{t.n_extreme} above" in html
    assert f"{t.pvalue:.4g}" in _cells(html)


def test_many_responses_display(fits):
    _, _, d = fits
    res = lmm.fit_many("~ Time", d, responses=d[["Weight"]], groups="Pig", progress=False)
    html = res._repr_html_()
    assert "Weight" in html and "llf" in html


def test_random_effects_keep_statsmodels_type_with_a_readable_display():
    import lmm

    d = lmm.datasets.get_rdataset("dietox", "geepack").data
    res = lmm.lmer("Weight ~ Time + (Time | Pig)", d)
    re = res.random_effects
    assert isinstance(re, dict) and len(re) == 72
    first = next(iter(re.values()))
    assert isinstance(first, pd.Series) and list(first.index) == ["(Intercept)", "Time"]
    text = repr(re)
    assert len(text.splitlines()) <= 13 and "72 groups x 2 effects" in text
    html = re._repr_html_()
    assert "<table" in html and "first and last 5" in html
    frame = re.to_frame()
    ranef = next(iter(res.ranef().values()))
    np.testing.assert_allclose(frame.to_numpy(), ranef.to_numpy())
    assert list(frame.index) == list(ranef.index)


def test_several_factor_fit_display_has_lme4s_tables():
    from pathlib import Path

    d = pd.read_csv(Path(__file__).parent / "data" / "multi_nested_sim.csv")
    res = lmm.lmer("y ~ x + (1 + x | school) + (1 | school:class)", d)
    html = res._repr_html_()
    assert html.count("<table") == 2                    # random and fixed effects
    assert "Random effects" in html and "Fixed effects" in html
    assert "school:class, 200; school, 40" in html
    for name in ("(Intercept)", "x", "Residual"):
        assert name in html
