"""Invariances that must hold exactly: shifts and units of the response and of the
covariates, row order, group label coding (one grouping factor and fit_many).

The references are not numbers from lmm: each transformed fit is compared with the
untransformed one through what the transformation does to the model, in closed form.

- A shift of the response (an intercept in X) changes nothing but the intercept.
- A shift of a covariate that is in X (with an intercept) and in Z (with a random
  intercept, unstructured covariance) changes nothing but the intercept and the
  covariance entries of the random intercept: the llf, the slope and the slope's
  variance are the same, and the intercept at the original origin is too.
- Scaling the response by s: llf moves by -nu log|s| (nu = n - p for REML, n for ML),
  fixed effects scale by s, cov_re and scale by s^2.
- Scaling a fixed covariate by s: the REML llf moves by -log|s| (lme4's criterion
  depends on X's parametrization through log|X'V^-1X|), the ML llf not at all.

Shifted data are made exactly representable: the reference fit uses (x + c) - c, so
the two data sets differ by exactly c (issue 16's decision).
"""

import math

import numpy as np
import pandas as pd
import pytest

import lmm

REL_LLF = 1e-7
REL_EST = 1e-6


@pytest.fixture(scope="module")
def dietox():
    return lmm.datasets.get_rdataset("dietox", "geepack").data


def _fit(y, time, groups, reml, free=None):
    """dietox's random slope by the array interface: Weight ~ Time, re ~ Time."""
    n = len(y)
    x = np.column_stack([np.ones(n), time])
    md = lmm.MixedLM(y, x, groups, exog_re=x.copy())
    return md.fit(reml=reml, free=free)


def _close(a, b, rel, se=None):
    """a == b to `rel` relative; entries whose value is near 0 against their standard
    error `se` to rel x se absolute."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    tol = rel * np.abs(b)
    if se is not None:
        tol = np.maximum(tol, rel * np.asarray(se, dtype=float))
    assert np.all(np.abs(a - b) <= tol), (a, b, np.abs(a - b) / np.maximum(np.abs(b), 1e-300))


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
@pytest.mark.parametrize("c", [1e3, 1e6, 1e9])
def test_response_shift(dietox, reml, c):
    w, t, g = dietox["Weight"].to_numpy(), dietox["Time"].to_numpy(float), dietox["Pig"]
    shifted = w + c
    ref = _fit(shifted - c, t, g, reml)
    res = _fit(shifted, t, g, reml)
    assert res.converged and ref.converged
    _close(res.llf, ref.llf, REL_LLF)
    fe, fe_ref = res.fe_params.to_numpy(), ref.fe_params.to_numpy()
    _close(fe[1], fe_ref[1], REL_EST)
    # the intercept after removing the shift, to 1e-6 of its standard error at least
    _close(fe[0] - c, fe_ref[0], REL_EST, se=ref.bse_fe.iloc[0])
    _close(res.cov_re.to_numpy(), ref.cov_re.to_numpy(), REL_EST)
    _close(res.scale, ref.scale, REL_EST)
    _close(res.bse_fe.to_numpy(), ref.bse_fe.to_numpy(), REL_EST)


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
@pytest.mark.parametrize("c", [1e3, 1e6, 1.7e9])
def test_covariate_shift_in_fixed_and_random_parts(dietox, reml, c):
    """Time + c (c = 1.7e9: a Unix timestamp): the random slope's optimum, unchanged.

    lme4 itself ends at -2405 with a singular fit on Time + 1.7e9; lmm must not even
    call it rank deficient.
    """
    w, g = dietox["Weight"].to_numpy(), dietox["Pig"]
    shifted = dietox["Time"].to_numpy(float) + c
    ref = _fit(w, shifted - c, g, reml)
    res = _fit(w, shifted, g, reml)
    assert res.converged and not res.is_singular
    _close(res.llf, ref.llf, REL_LLF)
    fe, fe_ref = res.fe_params.to_numpy(), ref.fe_params.to_numpy()
    _close(fe[1], fe_ref[1], REL_EST)
    _close(res.cov_re.iloc[1, 1], ref.cov_re.iloc[1, 1], REL_EST)
    _close(res.scale, ref.scale, REL_EST)
    _close(res.bse_fe.iloc[1], ref.bse_fe.iloc[1], REL_EST)
    # the intercept at the original origin (fe[0] is at Time = -c); its error is the
    # slope's times c, so compare it on the scale of its standard error
    _close(fe[0] + c * fe[1], fe_ref[0], 1e-3 * ref.bse_fe.iloc[0] / abs(fe_ref[0]))
    # and the random effects: the slopes the same, the intercepts at the original origin
    re = np.array([v.to_numpy() for v in res.random_effects.values()])
    re_ref = np.array([v.to_numpy() for v in ref.random_effects.values()])
    _close(re[:, 1], re_ref[:, 1], 1e-5, se=np.sqrt(ref.cov_re.iloc[1, 1]))
    _close(re[:, 0] + c * re[:, 1], re_ref[:, 0], 1e-3, se=np.sqrt(ref.cov_re.iloc[0, 0]))


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
@pytest.mark.parametrize("s", [1e-6, 1e-3, 1e3, 1e6])
def test_response_units(dietox, reml, s):
    w, t, g = dietox["Weight"].to_numpy(), dietox["Time"].to_numpy(float), dietox["Pig"]
    ref = _fit(w, t, g, reml)
    res = _fit(w * s, t, g, reml)
    n, p = len(w), 2
    nu = n - p if reml else n
    _close(res.llf, ref.llf - nu * math.log(abs(s)), REL_LLF)
    _close(res.fe_params.to_numpy(), s * ref.fe_params.to_numpy(), REL_EST)
    _close(res.cov_re.to_numpy(), s * s * ref.cov_re.to_numpy(), REL_EST)
    _close(res.scale, s * s * ref.scale, REL_EST)


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
@pytest.mark.parametrize("s", [1e-6, 1e-3, 1e3, 1e6])
def test_covariate_units(dietox, reml, s):
    """Time x s in X and Z: REML llf moves by -log|s|, ML's not at all."""
    w, t, g = dietox["Weight"].to_numpy(), dietox["Time"].to_numpy(float), dietox["Pig"]
    ref = _fit(w, t, g, reml)
    res = _fit(w, t * s, g, reml)
    _close(res.llf, ref.llf - (math.log(abs(s)) if reml else 0.0), REL_LLF)
    fe, fe_ref = res.fe_params.to_numpy(), ref.fe_params.to_numpy()
    _close(fe, fe_ref / np.array([1.0, s]), REL_EST)
    d = np.diag([1.0, 1.0 / s])
    _close(res.cov_re.to_numpy(), d @ ref.cov_re.to_numpy() @ d, REL_EST,
           se=np.abs(d @ ref.cov_re.to_numpy() @ d))


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
def test_fixed_covariate_units_and_shift(reml):
    """A covariate only in X (random intercept): units move the REML llf by -log|s|,
    shifts change nothing but the intercept."""
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(30), 6)
    x1 = rng.normal(size=g.size)
    y = 2.0 + 0.5 * x1 + rng.normal(size=30)[g] + rng.normal(size=g.size)

    def fit(col):
        x = np.column_stack([np.ones(g.size), col])
        return lmm.MixedLM(y, x, g).fit(reml=reml)

    ref = fit(x1)
    for s in (1e-6, 1e6):
        res = fit(x1 * s)
        _close(res.llf, ref.llf - (math.log(s) if reml else 0.0), REL_LLF)
        _close(res.fe_params.iloc[1] * s, ref.fe_params.iloc[1], REL_EST)
    shifted = x1 + 1.7e9
    ref = fit(shifted - 1.7e9)
    res = fit(shifted)
    _close(res.llf, ref.llf, REL_LLF)
    _close(res.fe_params.iloc[1], ref.fe_params.iloc[1], REL_EST)
    _close(res.cov_re.iloc[0, 0], ref.cov_re.iloc[0, 0], REL_EST)


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
def test_row_order_and_label_coding(dietox, reml):
    w, t = dietox["Weight"].to_numpy(), dietox["Time"].to_numpy(float)
    pig = dietox["Pig"].to_numpy()
    ref = _fit(w, t, pig, reml)
    perm = np.random.default_rng(2).permutation(len(w))
    res = _fit(w[perm], t[perm], pig[perm], reml)
    _close(res.llf, ref.llf, 1e-10)
    _close(res.fe_params.to_numpy(), ref.fe_params.to_numpy(), 1e-8)
    _close(res.cov_re.to_numpy(), ref.cov_re.to_numpy(), 1e-7)
    # the same groups under other labels: strings, in another order, negative integers
    labels = {p: f"pig-{(p * 7919) % 1000:03d}" for p in np.unique(pig)}
    for coded in (np.array([labels[p] for p in pig]), -pig * 3 + 5):
        res = _fit(w, t, coded, reml)
        _close(res.llf, ref.llf, 1e-10)
        _close(res.fe_params.to_numpy(), ref.fe_params.to_numpy(), 1e-8)
        _close(res.cov_re.to_numpy(), ref.cov_re.to_numpy(), 1e-7)


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
def test_fit_many_response_shift(dietox, reml):
    w = dietox["Weight"].to_numpy()
    cs = [1e3, 1e6, 1e9]
    shifted = np.column_stack([w + c for c in cs])
    reference = np.column_stack([(w + c) - c for c in cs])
    res = lmm.fit_many("~ Time", dietox, responses=shifted, groups="Pig", re_formula="~Time",
                       reml=reml)
    ref = lmm.fit_many("~ Time", dietox, responses=reference, groups="Pig",
                       re_formula="~Time", reml=reml)
    tab, tab_ref = res.table, ref.table
    llf = [c for c in tab.columns if c == "llf"][0]
    _close(tab[llf].to_numpy(), tab_ref[llf].to_numpy(), REL_LLF)
    icpt = tab.columns[0]
    se0 = tab_ref[tab.columns[2]].to_numpy() if tab.shape[1] > 2 else None
    _close(tab[icpt].to_numpy() - np.array(cs), tab_ref[icpt].to_numpy(), REL_EST, se=se0)
    # and each equals the one-model fit of the same response
    for j in range(len(cs)):
        one = _fit(reference[:, j], dietox["Time"].to_numpy(float), dietox["Pig"], reml)
        _close(tab_ref[llf].iloc[j], one.llf, 1e-9)


def test_time_as_unix_timestamp_from_formula(dietox):
    """The issue's case through the formula interface: Time + 1.7e9 is an ordinary
    covariate (it used to be refused as rank deficient)."""
    d = dietox.copy()
    base = lmm.mixedlm("Weight ~ Time", d, groups="Pig", re_formula="~Time").fit()
    d["Time"] = d["Time"] + 1.7e9
    res = lmm.mixedlm("Weight ~ Time", d, groups="Pig", re_formula="~Time").fit()
    _close(res.llf, base.llf, REL_LLF)
    _close(res.fe_params.iloc[1], base.fe_params.iloc[1], REL_EST)
    assert isinstance(res.fe_params, pd.Series)


def test_uncorrelated_slope_of_an_offset_covariate_warns_ill_conditioned(dietox):
    """A diagonal structure is not invariant to the covariate's shift: with an offset
    of 1e6 against a spread of 3.4, it is ill-conditioned in the user's units (said),
    while the unstructured model is exactly invariant (silent)."""
    import warnings

    d = dietox.assign(Time=dietox["Time"] + 1e6)
    with pytest.warns(lmm.IllConditionedWarning, match="'Time' has mean 1e\\+06"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lmm.SingularFitWarning)
            lmm.lmer("Weight ~ Time + (Time || Pig)", d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lmm.lmer("Weight ~ Time + (1 + Time | Pig)", d)
        lmm.lmer("Weight ~ Time + (Time || Pig)", dietox)


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
@pytest.mark.parametrize("c", [1e3, 1e6, 1.7e9])
def test_fit_many_covariate_shift(dietox, reml, c):
    """fit_many with Time + c (in X and in Z, unstructured): every response's llf, slope
    and slope variance as on the unshifted data, the intercept and its standard error
    those of the one-model fit at the shifted origin; a response with missing values
    (the fitter's own-rows path) too."""
    rng = np.random.default_rng(8)
    w = dietox["Weight"].to_numpy()
    Y = np.column_stack([w, w + rng.normal(size=len(w)), w * 0.5 + 3.0])
    Y[::17, 1] = np.nan
    shifted = dietox.assign(Time=dietox["Time"] + c)
    ref_data = dietox.assign(Time=(dietox["Time"] + c) - c)
    res = lmm.fit_many("~ Time", shifted, responses=Y, groups="Pig", re_formula="~Time",
                       reml=reml).table
    ref = lmm.fit_many("~ Time", ref_data, responses=Y, groups="Pig", re_formula="~Time",
                       reml=reml).table
    _close(res["llf"].to_numpy(), ref["llf"].to_numpy(), REL_LLF)
    slope = [col for col in res.columns if col == "Time"][0]
    _close(res[slope].to_numpy(), ref[slope].to_numpy(), REL_EST)
    var = [col for col in res.columns if col.startswith("Time Var")][0]
    _close(res[var].to_numpy(), ref[var].to_numpy(), REL_EST)
    # the intercept at the shifted origin, and its standard error, as one MixedLM fit
    # of the same response on the shifted data gives them
    for j in range(Y.shape[1]):
        keep = ~np.isnan(Y[:, j])
        one = _fit(Y[keep, j], shifted["Time"].to_numpy(float)[keep],
                   dietox["Pig"].to_numpy()[keep], reml)
        icpt = res.columns[0]
        _close(res[icpt].iloc[j], one.fe_params.iloc[0], 1e-8)
        se = [col for col in res.columns if col.endswith("_se") or col.startswith("se")]
        if se:
            _close(res[se[0]].iloc[j], one.bse_fe.iloc[0], 1e-6)


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
@pytest.mark.parametrize("s", [1e-6, 1e6])
def test_fit_many_units(dietox, reml, s):
    """Units of the responses and of Time in fit_many, as for one model."""
    w = dietox["Weight"].to_numpy()
    Y = np.column_stack([w, w * 2.0])
    ref = lmm.fit_many("~ Time", dietox, responses=Y, groups="Pig", re_formula="~Time",
                       reml=reml).table
    res = lmm.fit_many("~ Time", dietox, responses=Y * s, groups="Pig", re_formula="~Time",
                       reml=reml).table
    nu = len(w) - 2 if reml else len(w)
    _close(res["llf"].to_numpy(), ref["llf"].to_numpy() - nu * math.log(s), REL_LLF)
    _close(res["Time"].to_numpy(), s * ref["Time"].to_numpy(), REL_EST)
    scaled = dietox.assign(Time=dietox["Time"] * s)
    res = lmm.fit_many("~ Time", scaled, responses=Y, groups="Pig", re_formula="~Time",
                       reml=reml).table
    _close(res["llf"].to_numpy(), ref["llf"].to_numpy() - (math.log(s) if reml else 0.0),
           REL_LLF)
    _close(res["Time"].to_numpy() * s, ref["Time"].to_numpy(), REL_EST)
    _close(res["Time Var"].to_numpy() * s * s, ref["Time Var"].to_numpy(), REL_EST)


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
def test_several_factors_shifts_and_units(reml):
    """Several grouping factors (tests/test_several_factors_check.py has the full set): y + 1e6,
    x + 1.7e9 (exactly representable shifts) and x in other units, on the shipped
    crossed data with a random slope."""
    d = pd.read_csv(__import__("pathlib").Path(__file__).parent / "data" /
                    "multi_crossed_sim.csv")
    formula = "y ~ x + (1 + x | g1) + (1 | g2)"
    ref = lmm.lmer(formula, d, REML=reml)
    shifted_y = d.assign(y=d["y"] + 1e6)
    res = lmm.lmer(formula, shifted_y.assign(y=shifted_y["y"]), REML=reml)
    base = lmm.lmer(formula, shifted_y.assign(y=shifted_y["y"] - 1e6), REML=reml)
    _close(res.llf, base.llf, REL_LLF)
    _close(res.fe_params.iloc[1], base.fe_params.iloc[1], REL_EST)
    shifted_x = d["x"] + 1.7e9
    res = lmm.lmer(formula, d.assign(x=shifted_x), REML=reml)
    base = lmm.lmer(formula, d.assign(x=shifted_x - 1.7e9), REML=reml)
    _close(res.llf, base.llf, REL_LLF)
    _close(res.fe_params.iloc[1], base.fe_params.iloc[1], REL_EST)
    res = lmm.lmer(formula, d.assign(x=d["x"] * 1e3), REML=reml)
    _close(res.llf, ref.llf - (math.log(1e3) if reml else 0.0), REL_LLF)
    _close(res.fe_params.iloc[1] * 1e3, ref.fe_params.iloc[1], REL_EST)
