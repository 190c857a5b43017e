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
from lmm.exceptions import ConvergenceWarning, SingularFitWarning
from lmm.multi import MultiTermModel

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
    check = model.check_optimum(res.optimization.theta, reml=True)
    assert check.converged and check.messages == []
    away = model.check_optimum(res.optimization.theta * 1.3, reml=True)
    assert not away.converged
    assert "projected gradient" in away.messages[0]


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
    methods = [a["method"] for a in res.optimization.attempts]
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
