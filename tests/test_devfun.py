"""model.deviance_function: lme4's devfun as a public callable of lme4's theta.

Checked against the fits (the value at the estimate is -2 llf), against central
differences of the value (the analytic gradient), and against lme4's own devfun
value at a point away from the optimum (computed in R, see the comment)."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmm

from seedcases import UNCORRELATED

DATA = Path(__file__).parent / "data"


def _fits(dietox):
    penicillin = pd.read_csv(DATA / "penicillin.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        md = lmm.mixedlm("Weight ~ Time", dietox, groups="Pig", re_formula="~Time")
        return [
            (md, md.fit(reml=True), True),
            (md, md.fit(reml=False), False),
            (md, md.fit(reml=True, free=UNCORRELATED), True),
            (None, lmm.lmer("Weight ~ Time + (Time || Pig)", dietox, REML=False), False),
            (None, lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", penicillin), True),
        ]


def _fd(f, theta, h=1e-6):
    return np.array([(f(theta + h * e) - f(theta - h * e)) / (2 * h)
                     for e in np.eye(len(theta))])


def test_value_at_the_estimate_is_minus_two_llf_and_the_gradient_is_exact(dietox):
    for i, (md, res, reml) in enumerate(_fits(dietox)):
        model = md if md is not None else res.model
        kwargs = {"free": UNCORRELATED} if i == 2 else {}
        f = model.deviance_function(reml=reml, **kwargs)
        assert f(res.theta) == pytest.approx(-2 * res.llf, rel=1e-12, abs=1e-9)
        away = res.theta * 1.2 + 0.05 * (res.theta >= 0)
        if f.analytic_gradient:
            # analytic: agrees with differences of the value to their accuracy
            np.testing.assert_allclose(f.gradient(away), _fd(f, away), rtol=1e-5, atol=1e-5)
        # at an interior optimum the gradient vanishes (relative to the curvature)
        g, h = f.gradient(res.theta), f.hessian(res.theta)
        assert np.all(np.linalg.eigvalsh(h) > 0)
        step = np.linalg.solve(h, g)
        assert abs(g @ step) < 1e-6
        # any point's value is at least the optimum's
        assert f(away) > f(res.theta)


def test_lme4_devfun_value_away_from_the_optimum(dietox):
    # R 4.2.2, lme4 1.1.31:
    #   m <- lmer(Weight ~ Time + (Time | Pig), dietox)   # dietox from geepack
    #   devfun <- as.function(m); sprintf("%.10f", devfun(c(1.5, 0.1, 0.3)))
    # gives "4444.7048122574" (REML); with REML = FALSE: "4442.1412849912"
    md = lmm.lmer("Weight ~ Time + (Time | Pig)", dietox).model
    # (lme4's devfun for an lmer REML fit is the REML criterion)
    assert md.deviance_function(reml=True)(np.array([1.5, 0.1, 0.3])) == pytest.approx(
        4444.7048122574, rel=1e-10)
    assert md.deviance_function(reml=False)(np.array([1.5, 0.1, 0.3])) == pytest.approx(
        4442.1412849912, rel=1e-10)


def test_bad_theta_is_a_clear_error(dietox):
    f = lmm.lmer("Weight ~ Time + (Time | Pig)", dietox).model.deviance_function()
    with pytest.raises(ValueError, match="3 entries"):
        f(np.ones(2))
    with pytest.raises(ValueError, match="finite"):
        f(np.array([1.0, np.nan, 1.0]))
