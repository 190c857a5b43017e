"""lme4 formula syntax: same engine, same answers as the statsmodels-style calls."""

import numpy as np
import pytest

import lmm
import lmm.formula.api as smf
from lmm.formula import lme4

from seedcases import UNCORRELATED


@pytest.mark.parametrize("formula,re_formula,free", [
    ("Weight ~ Time + (1 + Time | Pig)", "~Time", None),
    ("Weight ~ Time + (Time | Pig)", "~Time", None),
    ("Weight ~ Time + (1 | Pig)", None, None),
    ("Weight ~ Time + (1 | Pig) + (0 + Time | Pig)", "~Time", UNCORRELATED),
    ("Weight ~ Time + (Time || Pig)", "~Time", UNCORRELATED),
    ("Weight ~ Time + (0 + Time | Pig)", "~0 + Time", None),
])
@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
def test_lmer_equals_statsmodels_syntax(dietox, formula, re_formula, free, reml):
    a = lmm.lmer(formula, dietox, REML=reml)
    b = smf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"],
                    re_formula=re_formula).fit(reml=reml, free=free)
    assert a.llf == pytest.approx(b.llf, abs=1e-8)
    np.testing.assert_allclose(a.fe_params, b.fe_params, rtol=1e-8)
    np.testing.assert_allclose(a.cov_re.to_numpy(), b.cov_re.to_numpy(), rtol=1e-6,
                               atol=1e-10)
    assert a.scale == pytest.approx(b.scale, rel=1e-8)


def test_lmer_names_follow_lme4(dietox):
    res = lmm.lmer("Weight ~ Time + (1 + Time | Pig)", dietox)
    assert list(res.cov_re.index) == ["(Intercept)", "Time"]
    assert res.model.formula == "Weight ~ Time + (1 + Time | Pig)"


def test_lmer_matches_lme4_reference(dietox, lme4_seed):
    res = lmm.lmer("Weight ~ Time + (1 | Pig) + (0 + Time | Pig)", dietox)
    assert res.llf >= lme4_seed["dietox_diag_reml"]["best"]["loglik"] - 1e-6
    res = lmm.lmer("size ~ Time + (1 + Time | tree)",
                   lmm.datasets.get_rdataset("Sitka", "MASS").data)
    assert res.llf >= lme4_seed["sitka_rs_reml"]["best"]["loglik"] - 1e-6


def test_parse():
    f = lme4.parse("y ~ x + z + (1 + x | g)")
    assert f.fixed == "x + z" and f.group == "g"
    assert f.terms[0] == lme4.RandomTerm("1 + x", "g", False)
    f = lme4.parse("y ~ (x || g) - 1")
    assert f.fixed == "- 1" and f.terms[0].uncorrelated
    assert lme4.parse("y ~ (1 | g)").fixed == "1"


@pytest.mark.parametrize("formula,error,match", [
    ("Weight ~ Time + (1 | Pig) + (1 | Nope)", ValueError, "Nope"),
    ("Weight ~ Time + (1 | Pig + Litter)", ValueError, "cannot read the grouping"),
    ("Weight ~ Time", ValueError, "no random-effect term"),
    ("Weight ~ Time + (1 | Nope)", ValueError, "Nope"),
    ("Weight ~ Time + (1 | Pig) + (1 + Time | Pig)", ValueError, "more than one term"),
])
def test_lmer_errors(dietox, formula, error, match):
    with pytest.raises(error, match=match):
        lmm.lmer(formula, dietox)


def test_lme4_summary_content(dietox, lme4_seed):
    res = lmm.lmer("Weight ~ Time + (1 + Time | Pig)", dietox)
    text = str(res.summary())
    best = lme4_seed["dietox_rs_reml"]["best"]
    assert f"REML criterion at convergence: {best['criterion']:.1f}" in text
    lines = text.splitlines()
    pig = next(ln for ln in lines if ln.strip().startswith("Pig"))
    cov = np.array(best["varcorr"][0]["cov"])
    assert f"{cov[0, 0]:.2f}" in pig and f"{np.sqrt(cov[0, 0]):.3f}" in pig
    resid = next(ln for ln in lines if ln.strip().startswith("Residual"))
    assert f"{best['sigma2']:.3f}" in resid
    time_row = next(ln for ln in lines if ln.startswith("Time ") and "." in ln)
    assert f"{best['fixef']['Time']:.4f}" in time_row
    assert "Number of obs: 861, groups:  Pig, 72" in text
    # the statsmodels layout is still there on request
    assert "Mixed Linear Model Regression Results" in str(res.summary(style="statsmodels"))
    assert "<table" in res._repr_html_()


def test_lme4_summary_ml_and_uncorrelated(dietox, lme4_seed):
    res = lmm.lmer("Weight ~ Time + (Time || Pig)", dietox, REML=False)
    text = str(res.summary())
    best = lme4_seed["dietox_diag_ml"]["best"]
    assert f"{best['aic']:.1f}" in text and f"{best['bic']:.1f}" in text
    assert any(ln.strip().startswith("Pig.1") for ln in text.splitlines())


def test_varcorr_layout(dietox):
    res = lmm.lmer("Weight ~ Time + (1 + Time | Pig)", dietox)
    vc = res.varcorr()
    assert list(vc.columns) == ["grp", "var1", "var2", "vcov", "sdcor"]
    assert vc["grp"].iloc[-1] == "Residual"
    cov = res.cov_re.to_numpy()
    corr_row = vc[vc["var2"].notna()].iloc[0]
    assert corr_row["sdcor"] == pytest.approx(cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]))


def test_top_level_bar_is_lme4s_shorthand():
    """lme4 reads a bar outside parentheses as binding loosest: ``Yield ~ 1 | Batch``
    is ``Yield ~ 1 + (1 | Batch)`` and ``Reaction ~ Days | Subject`` is ``Reaction ~
    1 + (Days | Subject)`` (lme4 1.1-31 with bobyqa: logLik -884.92245193 for the
    latter, fixed effect 257.761773; its default nloptwrap stops at 257.762168)."""
    from pathlib import Path

    import pandas as pd

    d = pd.read_csv(Path(__file__).parent / "data" / "sleepstudy.csv")
    short = lmm.lmer("Reaction ~ Days | Subject", d)
    explicit = lmm.lmer("Reaction ~ 1 + (Days | Subject)", d)
    assert short.llf == pytest.approx(explicit.llf, abs=1e-10)
    assert short.llf == pytest.approx(-884.92245193, abs=1e-7)
    assert list(short.fe_params.index) == ["(Intercept)"]
    assert short.fe_params.iloc[0] == pytest.approx(257.761773, abs=2e-5)
    pen = pd.read_csv(Path(__file__).parent / "data" / "penicillin.csv")
    a = lmm.lmer("diameter ~ 1 | plate", pen)
    b = lmm.lmer("diameter ~ 1 + (1 | plate)", pen)
    assert a.llf == pytest.approx(b.llf, abs=1e-10)


def test_scale_in_lme4_formulas_is_rs_scale():
    """R's scale() divides by the sd with n - 1, patsy's (statsmodels-style formulas) by
    the n version. lme4 1.1-31 (bobyqa): Reaction ~ scale(Days) + (1 | Subject) on
    sleepstudy has logLik -892.1747 and slope 30.14885, and with (1 | Days) added too;
    statsmodels-style formulas keep patsy's 30.0650 (= 30.14885 sqrt(179 / 180))."""
    from pathlib import Path

    import pandas as pd

    d = pd.read_csv(Path(__file__).parent / "data" / "sleepstudy.csv")
    one = lmm.lmer("Reaction ~ scale(Days) + (1 | Subject)", d)
    with pytest.warns(lmm.SingularFitWarning):     # (so is lme4's: Days' variance 0)
        two = lmm.lmer("Reaction ~ scale(Days) + (1 | Subject) + (1 | Days)", d)
    for res in (one, two):
        assert res.llf == pytest.approx(-892.1747, abs=1e-4)
        assert res.fe_params["scale(Days)"] == pytest.approx(30.14885, abs=1e-5)
    sm = lmm.mixedlm("Reaction ~ scale(Days)", d, groups="Subject").fit()
    assert sm.fe_params["scale(Days)"] == pytest.approx(30.14885 * np.sqrt(179 / 180),
                                                        rel=1e-6)
    # new data: the fit's mean and sd, not the new rows'
    new = d.iloc[:3]
    np.testing.assert_allclose(one.predict(new), one.fittedvalues.iloc[:3], atol=1e-9)
    # with eval_env the caller's names are still seen, R's scale still used
    k = 2.0  # noqa: F841 (read by the formula, through eval_env=0)
    res = lmm.lmer("Reaction ~ scale(Days) + I(k * (Days > 4)) + (1 | Subject)", d,
                   eval_env=0)
    assert "I(k * (Days > 4))" in res.fe_params.index
    direct = lmm.lmer("Reaction ~ scale(Days) + I(2.0 * (Days > 4)) + (1 | Subject)", d)
    assert res.llf == pytest.approx(direct.llf, abs=1e-10)
