"""Fits on the boundary, the warnings, and invariances of the fit."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

import lmm
from lmm.exceptions import ConvergenceWarning, SingularFitWarning
from lmm.optimize import check_optimum

from seedcases import dense_profiled_deviance, simulated


def _no_slope_variance_data(seed=3):
    """Random intercepts only, but a random slope is fitted: its variance is ~0."""
    rng = np.random.default_rng(seed)
    n_groups, size = 25, 6
    g = np.repeat(np.arange(n_groups), size)
    t = np.tile(np.arange(size, dtype=float), n_groups)
    y = 1.0 + 0.5 * t + rng.normal(size=n_groups)[g] + rng.normal(size=len(g)) * 0.8
    return pd.DataFrame({"y": y, "t": t, "g": g})


def test_singular_fit_warns_and_is_the_best_optimum():
    df = _no_slope_variance_data()
    md = lmm.mixedlm("y ~ t", df, groups="g", re_formula="~t")
    with pytest.warns(SingularFitWarning, match="'t'"):
        res = md.fit()
    assert res.is_singular
    assert issubclass(SingularFitWarning, ConvergenceWarning)
    # brute force: the dense criterion minimized from several starts with a
    # derivative-free method, on lme4's theta with its bounds
    y, x, z, g = md.endog, md.exog, md.exog_re, md.group_codes

    def crit(theta):
        lam = np.array([[theta[0], 0.0], [theta[1], theta[2]]])
        return dense_profiled_deviance(y, x, z, g, lam, True)

    best = np.inf
    for start in ([1.0, 0.0, 1.0], [0.5, 0.1, 0.01], [2.0, -0.2, 0.3]):
        r = optimize.minimize(crit, start, method="Powell",
                              bounds=[(0, None), (None, None), (0, None)],
                              options=dict(xtol=1e-10, ftol=1e-14, maxfev=20000))
        best = min(best, r.fun)
    assert res.llf >= -0.5 * best - 1e-6
    # singular: a variance at zero or a correlation at +-1
    cov = res.cov_re.to_numpy()
    assert np.linalg.det(cov) < 1e-6 * cov[0, 0] * cov[1, 1]


def test_no_warning_away_from_the_boundary():
    y, x, z, g = simulated(n_groups=40, q=2, p=2, seed=2, min_size=5, max_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = lmm.MixedLM(y, x, g, exog_re=z).fit()
    assert not res.is_singular and res.converged


def test_check_flags_a_point_that_is_not_an_optimum(dietox):
    md = lmm.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"], re_formula="~Time")
    dev = md.profiled_deviance(reml=True)
    check = check_optimum(dev, dev.structure.start_theta())
    assert not check.converged
    assert "projected gradient" in check.messages[0]


def test_row_order_and_group_coding_do_not_matter(sitka):
    base = lmm.mixedlm("size ~ Time", sitka, groups="tree", re_formula="~Time").fit()
    perm = sitka.sample(frac=1.0, random_state=1)
    perm = perm.assign(tree=perm["tree"].map(lambda v: f"tree-{v:03d}"))
    other = lmm.mixedlm("size ~ Time", perm, groups="tree", re_formula="~Time").fit()
    assert other.llf == pytest.approx(base.llf, abs=1e-8)
    np.testing.assert_allclose(other.fe_params, base.fe_params, rtol=1e-8)
    np.testing.assert_allclose(other.cov_re, base.cov_re, rtol=1e-5, atol=1e-12)
    # fitted values follow the rows they belong to
    np.testing.assert_allclose(other.fittedvalues.loc[sitka.index], base.fittedvalues,
                               rtol=1e-7)


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
def test_rescaling_a_covariate(sitka, reml):
    """Time in days vs in units of 100 days: estimates transform, the REML
    log-likelihood shifts by -log|det T| of the fixed-effects transformation."""
    c = 0.01
    a = lmm.mixedlm("size ~ Time", sitka, groups="tree", re_formula="~Time").fit(reml=reml)
    scaled = sitka.assign(Time=sitka["Time"] * c)
    b = lmm.mixedlm("size ~ Time", scaled, groups="tree", re_formula="~Time").fit(reml=reml)
    shift = -np.log(c) if reml else 0.0   # X -> X T with T = diag(1, c)
    assert b.llf == pytest.approx(a.llf + shift, abs=1e-7)
    assert b.fe_params["Time"] == pytest.approx(a.fe_params["Time"] / c, rel=1e-8)
    t = np.diag([1.0, 1 / c])
    np.testing.assert_allclose(b.cov_re.to_numpy(), t @ a.cov_re.to_numpy() @ t, rtol=1e-5)


def test_stationary_point_at_zero_variance_is_left_for_the_interior_optimum():
    """At a variance of zero the gradient vanishes (the criterion depends on
    theta through theta^2), so only curvature tells a maximum from a minimum.
    On this data set the criterion rises from theta = 0 to an interior optimum
    near 0.5, which a 1-D brute-force search on the dense criterion confirms."""
    y, x, z, g = simulated(n_groups=15, q=1, p=2, seed=27, min_size=2, max_size=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = lmm.MixedLM(y, x, g, exog_re=z).fit()
    grid = np.linspace(0.0, 3.0, 601)
    dense = [dense_profiled_deviance(y, x, z, g, np.array([[t]]), True) for t in grid]
    r = optimize.minimize_scalar(
        lambda t: dense_profiled_deviance(y, x, z, g, np.array([[t]]), True),
        bracket=(grid[np.argmin(dense)] - 0.01, grid[np.argmin(dense)] + 0.01))
    assert res.llf >= -0.5 * r.fun - 1e-8
    assert res.theta[0] == pytest.approx(r.x, rel=1e-4)
    assert not res.is_singular


@pytest.mark.parametrize("seed", [5, 27, 62, 128])
def test_default_fit_is_best_of_several_optimizers(seed):
    """Seeds where an earlier optimizer stopped at a boundary local optimum."""
    q = 1 + seed % 3
    y, x, z, g = simulated(n_groups=8 + seed % 20, q=q, p=2, seed=seed, min_size=2, max_size=6)
    if seed % 4 == 0:
        z[:, 1:] = z[:, 1:] * 100 + 150
    md = lmm.MixedLM(y, x, g, exog_re=z)
    for reml in (True, False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SingularFitWarning)
            default = md.fit(reml=reml)
            others = [md.fit(reml=reml, method=m).llf for m in ("lbfgs", "nm", "powell")]
        assert default.converged
        assert default.llf >= max(others) - 1e-6


def test_singular_like_lme4(dietox):
    """Without Time, the pig variance is estimated at zero (lme4 agrees:
    tests/data/lme4_extra.json, made by tests/data/lme4_extra.R)."""
    import json
    from pathlib import Path

    ref = json.loads((Path(__file__).parent / "data" / "lme4_extra.json").read_text())
    ref = ref["dietox_intercept_only_ri_reml"]
    with pytest.warns(SingularFitWarning, match=r"variance of random effect '\(Intercept\)'"):
        res = lmm.lmer(ref["formula"], dietox)
    assert ref["singular"] and res.is_singular
    assert res.llf >= ref["loglik"] - 1e-6
    assert res.fe_params.iloc[0] == pytest.approx(ref["fixef"]["(Intercept)"], rel=1e-8)
    assert res.scale == pytest.approx(ref["sigma2"], rel=1e-6)
    assert res.theta[0] == pytest.approx(0.0, abs=1e-6)


def test_large_problem_converges_without_false_warning():
    """10^5 rows: the deviance's gradient carries rounding noise proportional to
    n; the optimum check judges by the Newton decrement, which does not grow."""
    rng = np.random.default_rng(11)
    n_groups, size = 10_000, 10
    g = np.repeat(np.arange(n_groups), size)
    x = rng.normal(size=(g.size, 2))
    b = rng.normal(size=(n_groups, 2)) * [1.0, 0.5]
    y = 1 + x @ [0.5, -0.2] + b[g, 0] + b[g, 1] * x[:, 0] + rng.normal(size=g.size)
    exog = np.column_stack([np.ones(g.size), x])
    exog_re = np.column_stack([np.ones(g.size), x[:, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = lmm.MixedLM(y, exog, g, exog_re=exog_re).fit()
    assert res.converged
    # the optimum: a Newton step from it gains nothing
    dev = res.criterion
    f, grad, hess = dev.value_grad_hessian(res.optimum_check.theta)
    assert 0.25 * grad @ np.linalg.solve(hess, grad) < 1e-8
    np.testing.assert_allclose(res.cov_re.to_numpy(), [[1.0, 0.0], [0.0, 0.25]], atol=0.05)
