"""bse_re against the inverse of a finite-difference Hessian of the likelihood.

The oracle is the unprofiled log-likelihood in (beta, cov_re entries, scale)
under ML and the REML log-likelihood in (cov_re entries, scale), evaluated by
brute force (tests/seedcases.dense_loglik), differentiated numerically,
inverted; bse_re is the square root of the cov_re block's diagonal.
"""

import numpy as np
import pytest

import lmm

from seedcases import UNCORRELATED, dense_loglik, simulated


def _fd_hessian(f, x0, magnitude, rel_step=1e-3):
    """Central second differences with steps proportional to each parameter's size."""
    k = len(x0)
    h = rel_step * magnitude
    hess = np.zeros((k, k))
    for a in range(k):
        for b in range(a, k):
            ea = np.zeros(k)
            eb = np.zeros(k)
            ea[a] = h[a]
            eb[b] = h[b]
            val = (f(x0 + ea + eb) - f(x0 + ea - eb) - f(x0 - ea + eb) + f(x0 - ea - eb))
            hess[a, b] = hess[b, a] = val / (4 * h[a] * h[b])
    return hess


def _oracle_bse_re(res, y, x, z, g):
    s = res.structure
    rows, cols = s.cov_rows, s.cov_cols
    k_fe = x.shape[1]
    reml = res.reml

    def unpack(v):
        off = 0 if reml else k_fe
        beta = None if reml else v[:k_fe]
        cov = np.zeros((s.q, s.q))
        cov[rows, cols] = v[off:off + len(rows)]
        cov[cols, rows] = v[off:off + len(rows)]
        return beta, cov, v[-1]

    def f(v):
        beta, cov, scale = unpack(v)
        return dense_loglik(y, x, z, g, beta, cov, scale, reml)

    v0 = np.concatenate([
        [] if reml else res.fe_params.to_numpy(),
        res.cov_re.to_numpy()[rows, cols],
        [res.scale],
    ])
    assert f(v0) == pytest.approx(res.llf, rel=1e-10)
    # a covariance's natural size is sqrt(var_j var_k), not its own value (which
    # can be near zero); fixed effects are measured against 1 + |beta|
    cov_re = res.cov_re.to_numpy()
    magnitude = np.concatenate([
        [] if reml else 1.0 + np.abs(res.fe_params.to_numpy()),
        np.sqrt(np.diag(cov_re)[rows] * np.diag(cov_re)[cols]),
        [res.scale],
    ])
    cov = np.linalg.inv(-_fd_hessian(f, v0, magnitude))
    off = 0 if reml else k_fe
    return np.sqrt(np.diag(cov)[off:off + len(rows)]), np.sqrt(cov[-1, -1])


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
def test_bse_re_dietox_random_slope(dietox, reml):
    md = lmm.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"], re_formula="~Time")
    res = md.fit(reml=reml)
    y, x, z, g = md.endog, md.exog, md.exog_re, md.group_codes
    expected, expected_scale = _oracle_bse_re(res, y, x, z, g)
    np.testing.assert_allclose(res.bse_re.to_numpy(), expected, rtol=2e-4)
    assert res.bse_scale == pytest.approx(expected_scale, rel=2e-4)


def test_bse_re_dietox_random_intercept(dietox):
    # statsmodels prints 2.149 here; the observed-information figure is 6.94
    res = lmm.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"]).fit()
    md = res.model
    expected, _ = _oracle_bse_re(res, md.endog, md.exog, md.exog_re, md.group_codes)
    assert res.bse_re.iloc[0] == pytest.approx(expected[0], rel=1e-4)
    assert res.bse_re.iloc[0] == pytest.approx(6.94, abs=0.01)


def test_bse_re_uncorrelated(dietox):
    md = lmm.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"], re_formula="~Time")
    res = md.fit(free=UNCORRELATED)
    expected, _ = _oracle_bse_re(res, md.endog, md.exog, md.exog_re, md.group_codes)
    got = res.bse_re.to_numpy()
    assert np.isnan(got[1])  # the covariance is fixed at zero
    np.testing.assert_allclose(got[[0, 2]], expected, rtol=2e-4)


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
def test_bse_re_sitka_random_slope(sitka, reml):
    """Ill-scaled Time (152..258): the conditioning must map back exactly."""
    sitka = sitka.assign(Intercept=1.0)
    exog = sitka[["Intercept", "Time"]]
    md = lmm.MixedLM(sitka["size"], exog, sitka["tree"], exog.copy())
    res = md.fit(reml=reml)
    expected, _ = _oracle_bse_re(res, md.endog, md.exog, md.exog_re, md.group_codes)
    np.testing.assert_allclose(res.bse_re.to_numpy(), expected, rtol=2e-4)


def test_bse_re_q3_simulated():
    y, x, z, g = simulated(n_groups=40, q=3, p=2, seed=3, min_size=4, max_size=9)
    res = lmm.MixedLM(y, x, g, exog_re=z).fit()
    expected, _ = _oracle_bse_re(res, y, x, z, g)
    np.testing.assert_allclose(res.bse_re.to_numpy(), expected, rtol=2e-4)
