"""The several-factor engine's optimum check, restart and warnings; its
invariance to shifts and units of the data (issue 16: no silent wrong answers).

Oracles: the optimum of the compiled criterion from a multi-start scipy search
(never the fit under test alone), and the invariances of the likelihood itself.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

import lmm
from lmm.exceptions import ConvergenceWarning
from lmm.several_factors import MultiTermModel

SLOPE = "y ~ x + (1 + x | a) + (1 | b)"
CROSSED = "y ~ 1 + (1 | a) + (1 | b)"


def slope_data(seed=1, n_a=30, n_b=20, n=600):
    """y ~ x + (1 + x | a) + (1 | b), x on a grid of 1/1024 (dyadic: exact shifts)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_a, n)
    b = rng.integers(0, n_b, n)
    x = np.round(rng.normal(size=n) * 1024) / 1024
    ua = rng.normal(size=(n_a, 2)) * [1.0, 0.5]
    ub = rng.normal(size=n_b) * 0.7
    y = 1 + 0.5 * x + ua[a, 0] + ua[a, 1] * x + ub[b] + rng.normal(size=n)
    y = np.round(y * 1024) / 1024
    return pd.DataFrame({"y": y, "x": x, "a": [f"a{i}" for i in a],
                         "b": [f"b{i}" for i in b]})


def crossed_data(seed=2, n_a=25, n_b=15, ratio=1e6):
    """Crossed (1 | a) + (1 | b), two rows per cell, var(a) / var(b) = ratio."""
    rng = np.random.default_rng(seed)
    a = np.repeat(np.arange(n_a), n_b * 2)
    b = np.tile(np.repeat(np.arange(n_b), 2), n_a)
    y = 10 + rng.normal(size=n_a)[a] * np.sqrt(ratio) + rng.normal(size=n_b)[b] \
        + rng.normal(size=len(a))
    y = np.round(y * 1024) / 1024
    return pd.DataFrame({"y": y, "a": [f"a{i}" for i in a], "b": [f"b{i}" for i in b]})


def fit_quietly(formula, data, reml=True):
    """The fit and the warnings it raised (ConvergenceWarning is an error in the
    test configuration: collect it instead)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        res = lmm.lmer(formula, data, REML=reml)
    return res, [w for w in caught if issubclass(w.category, ConvergenceWarning)]


def multistart_optimum(model, reml, n_starts=6, seed=0):
    """The best deviance scipy finds over random starts (L-BFGS-B then Powell from
    each), on the model's own criterion in the user's theta."""
    rng = np.random.default_rng(seed)
    lower = model.lower_bounds
    bounds = optimize.Bounds(lower, np.full_like(lower, np.inf))

    def fun(th):
        return model.deviance(np.maximum(th, lower), reml)

    best = np.inf
    for _ in range(n_starts):
        start = np.where(np.isfinite(lower), rng.uniform(0.1, 2.0, len(lower)),
                         rng.uniform(-0.5, 0.5, len(lower)))
        r = optimize.minimize(fun, start, method="L-BFGS-B", bounds=bounds)
        r = optimize.minimize(fun, r.x, method="Powell", bounds=bounds,
                              options=dict(xtol=1e-10, ftol=1e-14, maxfev=20000))
        best = min(best, r.fun)
    return best


# -- the check and the restart ---------------------------------------------------

def test_check_passes_at_the_optimum_and_fails_elsewhere():
    d = slope_data()
    res, caught = fit_quietly(SLOPE, d)
    assert not caught and res.converged
    model = res.model
    check = model.check_optimum(res.theta, reml=True)
    assert check.converged and check.messages == []
    away = model.check_optimum(res.optimum_check.theta * 1.3, reml=True, conditioned=True)
    assert not away.converged
    assert "projected gradient" in away.messages[0]


@pytest.mark.parametrize("reml", [True, False])
def test_random_slope_fit_reaches_the_multistart_optimum(reml):
    res, caught = fit_quietly(SLOPE, slope_data(), reml)
    assert not caught and res.converged
    best = multistart_optimum(res.model, reml, n_starts=4)
    assert -2 * res.llf <= best + 1e-9 * abs(best)


def _stuck(model, theta0, reml):
    """An optimizer that stops at its start and says it converged."""
    return optimize.OptimizeResult(x=np.asarray(theta0, dtype=float),
                                   fun=model.deviance(theta0, reml), success=True, nit=0)


def test_a_stopped_optimizer_is_restarted_from_its_end_point(monkeypatch):
    d = slope_data()
    reference, _ = fit_quietly(SLOPE, d)
    monkeypatch.setattr(MultiTermModel, "_newton",
                        lambda self, theta0, reml: _stuck(self, theta0, reml))
    res, caught = fit_quietly(SLOPE, d)
    assert not caught and res.converged
    assert res.llf == pytest.approx(reference.llf, abs=1e-7)
    methods = [a["method"] for a in res.optimum_check.attempts]
    assert methods[0] == "newton"
    assert any("restart from the best point" in m for m in methods)


def test_a_fit_that_fails_the_check_warns_and_says_not_converged(monkeypatch):
    d = slope_data()
    monkeypatch.setattr(MultiTermModel, "_newton",
                        lambda self, theta0, reml: _stuck(self, theta0, reml))
    monkeypatch.setattr(MultiTermModel, "_scipy_search",
                        staticmethod(lambda fun, theta0, lower, method:
                                     optimize.OptimizeResult(x=theta0, fun=fun(theta0),
                                                             success=True, nit=0)))
    res, caught = fit_quietly(SLOPE, d)
    assert not res.converged
    assert len(caught) == 1 and caught[0].category is ConvergenceWarning
    assert "projected gradient" in str(caught[0].message)


# -- invariances ---------------------------------------------------------------------

def _same_fit(new, old, fe_map=None, llf_shift=0.0):
    """new's log-likelihood is old's plus llf_shift (1e-7 relative at worst, well
    within the 1e-9 the engine reaches); fixed effects (mapped) to 1e-6 relative
    or 1e-6 standard errors."""
    assert new.converged and old.converged
    assert new.llf == pytest.approx(old.llf + llf_shift, rel=1e-9, abs=0)
    fe_old = old.fe_params.to_numpy() if fe_map is None else fe_map(old.fe_params.to_numpy())
    bse = new.bse_fe.to_numpy()
    fe_new = new.fe_params.to_numpy()
    assert np.all(np.abs(fe_new - fe_old) <= 1e-6 * np.abs(fe_old) + 1e-6 * bse), \
        (fe_new, fe_old)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("shift", [1e3, 1e6, 1e9])
def test_shifting_the_response(reml, shift):
    d = slope_data()
    old, _ = fit_quietly(SLOPE, d, reml)
    new, caught = fit_quietly(SLOPE, d.assign(y=d.y + shift), reml)
    assert not caught

    def moved(fe):
        return fe + np.array([shift, 0.0])

    _same_fit(new, old, moved)
    np.testing.assert_allclose(new.theta, old.theta, rtol=1e-6, atol=1e-8)
    assert new.scale == pytest.approx(old.scale, rel=1e-6)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("unit", [1e-6, 1e-3, 1e3, 1e6])
def test_changing_the_response_unit(reml, unit):
    """y -> c y: every variance by c^2, the fixed effects by c, theta unchanged;
    the log-likelihood by -n log c (ML) or -(n - p) log c (REML)."""
    d = slope_data()
    old, _ = fit_quietly(SLOPE, d, reml)
    new, caught = fit_quietly(SLOPE, d.assign(y=d.y * unit), reml)
    assert not caught
    nu = old.nobs - (2 if reml else 0)
    _same_fit(new, old, lambda fe: fe * unit, llf_shift=-nu * np.log(unit))
    np.testing.assert_allclose(new.theta, old.theta, rtol=1e-6, atol=1e-8)
    assert new.scale == pytest.approx(old.scale * unit ** 2, rel=1e-6)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("shift", [1e3, 1e6, 1e9])
def test_shifting_a_covariate_with_a_random_slope(reml, shift):
    """x -> x + c (exact: x is dyadic): the same model, the intercept absorbing
    -c times the slope; the slope's variance and the residual unchanged."""
    d = slope_data()
    old, _ = fit_quietly(SLOPE, d, reml)
    new, caught = fit_quietly(SLOPE, d.assign(x=d.x + shift), reml)
    assert not caught
    assert new.llf == pytest.approx(old.llf, rel=1e-9, abs=0)
    slope = old.fe_params["x"]
    assert new.fe_params["x"] == pytest.approx(slope, rel=1e-6)
    if shift <= 1e3:       # (mapped back: cancels c^2 in the intercept's variance)
        assert new.fe_params["(Intercept)"] == pytest.approx(
            old.fe_params["(Intercept)"] - shift * slope, rel=1e-6)
    for group in ("a", "b"):
        assert new.cov_re[group].loc["x" if group == "a" else "(Intercept)"].iloc[-1] == \
            pytest.approx(old.cov_re[group].iloc[-1, -1], rel=1e-5)
    assert new.scale == pytest.approx(old.scale, rel=1e-6)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("unit", [1e-8, 1e-6, 1e6])
def test_changing_a_covariate_unit(reml, unit):
    """x -> c x: the REML log-likelihood moves by -log|c| (log|X'V^-1 X|), ML not
    at all; the slope by 1/c, its variance by 1/c^2."""
    d = slope_data()
    old, _ = fit_quietly(SLOPE, d, reml)
    new, caught = fit_quietly(SLOPE, d.assign(x=d.x * unit), reml)
    assert not caught
    _same_fit(new, old, lambda fe: fe / np.array([1.0, unit]),
              llf_shift=-np.log(unit) if reml else 0.0)
    assert new.cov_re["a"].loc["x", "x"] == pytest.approx(
        old.cov_re["a"].loc["x", "x"] / unit ** 2, rel=1e-5)


@pytest.mark.parametrize("reml", [True, False])
def test_a_unix_timestamp_covariate(reml):
    """x in seconds since 1970, hourly: x -> 3600 x + 1.7e9 (exact)."""
    d = slope_data()
    old, _ = fit_quietly(SLOPE, d, reml)
    new, caught = fit_quietly(SLOPE, d.assign(x=d.x * 3600 + 1.7e9), reml)
    assert not caught
    assert new.llf == pytest.approx(old.llf - (np.log(3600) if reml else 0.0), rel=1e-9)
    assert new.fe_params["x"] == pytest.approx(old.fe_params["x"] / 3600, rel=1e-6)


@pytest.mark.parametrize("reml", [True, False])
def test_crossed_variance_ratio_1e6_reaches_the_multistart_optimum(reml):
    d = crossed_data()
    res, caught = fit_quietly(CROSSED, d, reml)
    assert not caught and res.converged
    best = multistart_optimum(res.model, reml)
    assert -2 * res.llf <= best + 1e-9 * abs(best)
    # and the invariances on this badly scaled model too
    shifted, _ = fit_quietly(CROSSED, d.assign(y=d.y + 1e6), reml)
    _same_fit(shifted, res, lambda fe: fe + 1e6)
    scaled, _ = fit_quietly(CROSSED, d.assign(y=d.y * 1e-3), reml)
    nu = res.nobs - (1 if reml else 0)
    _same_fit(scaled, res, lambda fe: fe * 1e-3, llf_shift=-nu * np.log(1e-3))


# -- flat directions: unidentified models --------------------------------------------

def test_judge_flags_a_singular_interior_hessian_naming_the_entries():
    from lmm.optimize import judge_optimum

    h = np.array([[2.0, 2.0, 0.0], [2.0, 2.0, 0.0], [0.0, 0.0, 5.0]])   # e0 - e1 is flat
    v = judge_optimum(np.ones(3), 1.0, np.zeros(3), h, np.zeros(3),
                      names=["first", "second", "third"])
    assert not v.converged and v.flat == [0, 1]
    assert "flat along a direction of the covariance parameters first, second" in v.messages[0]
    # the same matrix made regular: accepted; and a flat entry at its bound is not
    # a flat direction (a variance at zero is the boundary check's business)
    assert judge_optimum(np.ones(3), 1.0, np.zeros(3), h + np.eye(3) * 1e-3,
                         np.zeros(3)).converged
    at_bound = judge_optimum(np.array([0.0, 1.0, 1.0]), 1.0, np.array([0.5, 0.0, 0.0]), h,
                             np.zeros(3))
    assert at_bound.converged and at_bound.flat == []


def test_random_effect_constant_within_groups_is_not_identified(dietox):
    """statsmodels' re_formula='~C(Evit)' with groups Pig: Evit never varies within
    a pig, so only each pig's total is seen; many covariances fit equally well."""
    md = lmm.mixedlm("Weight ~ Time", dietox, groups="Pig", re_formula="~C(Evit)")
    with pytest.warns(ConvergenceWarning, match="flat along a direction") as caught:
        res = md.fit()
    assert not res.converged
    message = str(caught[0].message)
    assert "C(Evit)[T.Evit100]" in message and "not identified" in message
    assert [a["method"] for a in res.optimum_check.attempts][-1].startswith("COBYQA")


@pytest.mark.parametrize("case", ["dietox_ri", "dietox_slope", "dietox_diag", "sitka_ri",
                                  "sitka_slope", "sitka_diag"])
@pytest.mark.parametrize("reml", [True, False])
def test_seed_fits_have_no_flat_direction(case, reml, dietox, sitka):
    """Identified models pass the check by a wide margin: the smallest scaled
    curvature is above a quarter of the largest on all twelve seed fits."""
    from seedcases import fit_seed_case

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        res = fit_seed_case(case, reml, dietox, sitka)
    assert res.converged and res.optimum_check.messages == []
    h = res.optimum_check.hessian
    d = np.sqrt(np.diag(h))
    w = np.linalg.eigvalsh(h / np.outer(d, d))
    assert w[0] > 0.25 * w[-1]


def test_several_factors_unidentified_term_warns():
    """(1 + f | a) with f a factor constant within each level of a."""
    d = slope_data(n_a=40, n=1200)
    d["f"] = d.a.map({f"a{i}": ("lo", "mid", "hi")[i % 3] for i in range(40)})
    res, caught = fit_quietly("y ~ x + f + (1 + f | a) + (1 | b)", d)
    assert not res.converged
    assert len(caught) == 1 and "flat along a direction" in str(caught[0].message)
    assert "for 'a'" in str(caught[0].message)


@pytest.mark.parametrize("formula, data", [(SLOPE, slope_data), (CROSSED, crossed_data)])
def test_identified_several_factor_models_pass_the_noise_aware_check(formula, data):
    """The finite-difference Hessian's rounding (up to 1e-7 in the criterion with a
    variance ratio of 1e6) is not mistaken for a flat direction."""
    for reml in (True, False):
        res, caught = fit_quietly(formula, data(), reml)
        assert not caught and res.converged and res.optimum_check.messages == []


# -- predictions ---------------------------------------------------------------------

def test_predict_include_re_takes_only_a_bool():
    res, _ = fit_quietly(SLOPE, slope_data())
    with pytest.raises(TypeError, match="re_form"):
        res.predict(include_re=["a"])
    with pytest.raises(TypeError, match="re_form"):
        res.predict(slope_data().iloc[:3], include_re="b")


def test_missing_grouping_value_in_new_data_is_an_unseen_level():
    """A missing level contributes no random effect (as an unseen one), never the
    last level's."""
    d = slope_data()
    res, _ = fit_quietly(SLOPE, d)
    new = d.iloc[:6].copy()
    new["a"] = new["a"].astype(object)
    new.loc[new.index[:3], "a"] = np.nan
    unseen = new.assign(a=["never-seen"] * 3 + list(new["a"].iloc[3:]))
    got = res.predict(new, include_re=True)
    np.testing.assert_allclose(got, res.predict(unseen, include_re=True), rtol=1e-12)
    # by hand: fixed part plus b's effect for the missing rows
    fe = res.fe_params.to_numpy()
    b = res.ranef()["b"].loc[new["b"].iloc[:3], "(Intercept)"].to_numpy()
    np.testing.assert_allclose(got[:3], fe[0] + fe[1] * new["x"].to_numpy()[:3] + b,
                               rtol=1e-12)


@pytest.mark.parametrize("reml", [True, False])
def test_the_issue_examples_on_the_shipped_crossed_data(reml):
    """Issue 16's transformations of tests/data/multi_crossed_sim.csv's x, which
    before the conditioning ended 1 to 580 log-likelihood units below the optimum
    (x + 100: not converged after 4,600 evaluations; a timestamp: singular)."""
    from pathlib import Path

    d = pd.read_csv(Path(__file__).parent / "data" / "multi_crossed_sim.csv",
                    dtype={"g1": str, "g2": str})
    formula = "y ~ x + (1 + x | g1) + (1 | g2)"
    base, _ = fit_quietly(formula, d, reml)
    for x, unit in [(d.x + 100, 1.0), (d.x * 86400 + 1.6e9, 86400.0), (d.x * 1e-8, 1e-8)]:
        res, caught = fit_quietly(formula, d.assign(x=x), reml)
        assert not caught and res.converged
        shift = -np.log(unit) if reml else 0.0
        assert res.llf == pytest.approx(base.llf + shift, rel=1e-9, abs=0)
        assert res.fe_params["x"] == pytest.approx(base.fe_params["x"] / unit, rel=1e-6)


# -- BLAS threads --------------------------------------------------------------------

def test_blas_threads_are_set_inside_and_restored_after(monkeypatch):
    from lmm import _threads

    controls = _threads._controls_once()
    if not controls:
        pytest.skip("no OpenBLAS found in this process")
    before = [get() for get, _ in controls]
    with _threads.blas_threads(1):
        assert [get() for get, _ in controls] == [1] * len(controls)
    assert [get() for get, _ in controls] == before
    monkeypatch.setenv("LMM_BLAS_THREADS", "2")
    assert _threads.default_threads() == 2
    monkeypatch.setenv("LMM_BLAS_THREADS", "many")
    assert _threads.default_threads() == 1
