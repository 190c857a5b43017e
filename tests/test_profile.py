"""profile_re against brute-force constrained fits.

At each grid value v of a variance, the oracle maximizes the unprofiled REML
likelihood, evaluated directly from V_g = Z_g C Z_g' + scale I (batched over
Sitka's equal-sized groups), over the covariance factor with the scale tied
to v by scale = v / G_jj, from several starts, with a derivative-free method.
"""

import warnings

import numpy as np
import pytest
from scipy import optimize

import lmm

from seedcases import batched_loglik


@pytest.fixture(scope="module")
def sitka_rs(sitka):
    data = sitka.assign(Intercept=1.0)
    exog = data[["Intercept", "Time"]]
    md = lmm.MixedLM(data["size"], exog, data["tree"], exog.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return md.fit()


def _brute_force_profile(md, j, v, starts):
    loglik = batched_loglik(md, reml=True)

    def neg(params):
        lam = np.array([[params[0], 0.0], [params[1], params[2]]])
        g = lam @ lam.T
        if g[j, j] <= 0:
            return np.inf
        scale = v / g[j, j]
        return -loglik(scale * g, scale)

    best = -np.inf
    for start in starts:
        r = optimize.minimize(neg, start, method="Powell",
                              options=dict(xtol=1e-10, ftol=1e-13, maxfev=40000))
        best = max(best, -r.fun)
    return best


@pytest.mark.parametrize("re_ix,low,high", [(0, 0.1, 0.1), (1, 0.5, 0.8)])
def test_profile_matches_brute_force(sitka_rs, re_ix, low, high):
    res = sitka_rs
    v = res.cov_re.iloc[re_ix, re_ix]
    if re_ix == 1:   # the walkthrough's relative grid: dist_low=.5*re, dist_high=0.8*re
        low, high = low * v, high * v
    prof = res.profile_re(re_ix, "re", dist_low=low, dist_high=high)
    assert prof.shape == (11, 2)
    np.testing.assert_allclose(prof[:, 0], np.concatenate(
        [np.linspace(v - low, v, 6), np.linspace(v, v + high, 6)[1:]]))
    assert prof[5, 1] == pytest.approx(res.llf)
    assert np.argmax(prof[:, 1]) == 5
    lam_hat = np.linalg.cholesky(res.cov_re.to_numpy() / res.scale)
    hat = lam_hat[np.tril_indices(2)]
    starts = [hat, [1.0, 0.0, 0.01], hat * [1.3, 0.7, 1.2]]
    for i in (0, 3, 8, 10):
        expected = _brute_force_profile(res.model, re_ix, prof[i, 0], starts)
        assert prof[i, 1] == pytest.approx(expected, abs=1e-6)


def test_profile_drops_points_below_zero(sitka_rs):
    v = sitka_rs.cov_re.iloc[1, 1]
    prof = sitka_rs.profile_re(1, "re", dist_low=2 * v, dist_high=v, num_low=4)
    assert np.all(prof[:, 0] > 0)
    assert len(prof) == 2 + 5   # v/2 and v from the low side, 5 above


def test_profile_errors(sitka_rs):
    with pytest.raises(ValueError, match="re_ix"):
        sitka_rs.profile_re(2, "re")
    with pytest.raises(NotImplementedError):
        sitka_rs.profile_re(0, "vc")
