"""The ten seed models against lme4 (tests/data/lme4_seed.json, entry `best`).

The issue's tolerances are: log-likelihood no lower than lme4's best - 1e-6,
fixed effects 1e-5 relative, their standard errors 1e-4, variance parameters
and BLUPs 1e-3.  lmm lands within about 1e-6 of lme4's best optimum on every
case (lme4 stops at its own tolerance), so the tolerances are tightened.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from seedcases import fit_seed_case

with open(Path(__file__).parent / "data" / "lme4_seed.json") as _fh:
    CASES = sorted(json.load(_fh))

FE_RTOL = 1e-7
SE_RTOL = 1e-5
VAR_RTOL = 5e-5


def _lme4_cov_re(best, q):
    """cov_re from lme4's VarCorr (one term, or the uncorrelated Pig + Pig.1 terms)."""
    terms = best["varcorr"]
    if len(terms) == 1:
        return np.atleast_2d(np.array(terms[0]["cov"], dtype=float))
    return np.diag([np.array(t["cov"], dtype=float).item() for t in terms])


@pytest.fixture(scope="module")
def fits(lme4_seed, dietox, sitka):
    return {cid: fit_seed_case(cid, lme4_seed[cid]["reml"], dietox, sitka) for cid in CASES}


@pytest.mark.parametrize("case_id", CASES)
def test_loglik_at_least_lme4_best(case_id, fits, lme4_seed):
    best = lme4_seed[case_id]["best"]
    res = fits[case_id]
    assert res.converged
    assert res.llf >= best["loglik"] - 1e-6
    # and not suspiciously above it: both evaluate the same criterion
    assert res.llf <= best["loglik"] + 1e-4


@pytest.mark.parametrize("case_id", CASES)
def test_fixed_effects_and_standard_errors(case_id, fits, lme4_seed):
    best = lme4_seed[case_id]["best"]
    res = fits[case_id]
    np.testing.assert_allclose(res.fe_params.to_numpy(), list(best["fixef"].values()),
                               rtol=FE_RTOL)
    np.testing.assert_allclose(res.bse_fe.to_numpy(), list(best["se"].values()), rtol=SE_RTOL)
    # the full covariance of the fixed effects, on the correlation scale
    se = np.array(list(best["se"].values()))
    np.testing.assert_allclose(res.cov_params().iloc[:2, :2].to_numpy() / np.outer(se, se),
                               np.array(best["vcov"]) / np.outer(se, se), atol=2 * SE_RTOL)


@pytest.mark.parametrize("case_id", CASES)
def test_variance_parameters(case_id, fits, lme4_seed):
    best = lme4_seed[case_id]["best"]
    res = fits[case_id]
    cov = _lme4_cov_re(best, res.k_re)
    np.testing.assert_allclose(res.cov_re.to_numpy(), cov, rtol=VAR_RTOL,
                               atol=VAR_RTOL * np.abs(cov).max())
    np.testing.assert_allclose(res.scale, best["sigma2"], rtol=VAR_RTOL)
    theta = np.atleast_1d(np.array(best["theta"], dtype=float))
    np.testing.assert_allclose(res.theta, theta, rtol=VAR_RTOL, atol=VAR_RTOL * theta.max())


@pytest.mark.parametrize("case_id", CASES)
def test_blups(case_id, fits, lme4_seed):
    best = lme4_seed[case_id]["best"]
    res = fits[case_id]
    ranef = best["ranef"][0]
    assert [str(g) for g in res.model.group_labels] == ranef["levels"]
    expected = np.array(ranef["values"], dtype=float).reshape(len(ranef["levels"]), -1)
    got = np.array([res.random_effects[g].to_numpy() for g in res.model.group_labels])
    scale = np.abs(expected).max(axis=0)
    np.testing.assert_allclose(got / scale, expected / scale, atol=VAR_RTOL)


@pytest.mark.parametrize("case_id", [c for c in CASES if c.endswith("_ml")])
def test_information_criteria_under_ml(case_id, fits, lme4_seed):
    best = lme4_seed[case_id]["best"]
    res = fits[case_id]
    assert res.aic == pytest.approx(best["aic"], abs=1e-5)
    assert res.bic == pytest.approx(best["bic"], abs=1e-5)


def test_anchor_cases_named_in_the_issue(fits):
    # where lme4's default stops at -76.68 and statsmodels' default at -2220.39
    assert fits["sitka_rs_reml"].llf == pytest.approx(-62.4834, abs=1e-4)
    assert fits["dietox_rs_reml"].llf == pytest.approx(-2217.0475, abs=1e-4)
    assert not fits["sitka_rs_reml"].is_singular


@pytest.mark.parametrize("case_id", ["sitka_rs_reml", "dietox_rs_reml"])
def test_no_convergence_warning(case_id, lme4_seed, dietox, sitka):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = fit_seed_case(case_id, True, dietox, sitka)
    assert res.converged
