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


# -- every grid point a verified constrained maximum (issue 16) --------------------
#
# Sitka's 79 trees are all measured at the same five times, so every tree has
# the same V = Z0 C Z0' + scale I (5 x 5) and the dense REML likelihood needs
# one inverse per evaluation.  The oracle holds cov_re[j, j] = v through a
# Cholesky factor ordered (held, other): its first row is (sqrt(v), 0), its
# second row (m10, m11) is free, as is log(scale); it passes smoothly through
# the correlation +-1 that Sitka's slope profile approaches at large v.

def _sitka_dense_reml(data):
    times = np.sort(data["Time"].unique()).astype(float)
    wide = data.pivot(index="tree", columns="Time", values="size")[times].to_numpy()
    z0 = np.column_stack([np.ones(len(times)), times])
    n_trees, size = wide.shape
    n, p = wide.size, 2

    def loglik(cov, scale):
        v = z0 @ cov @ z0.T + scale * np.eye(size)
        vi = np.linalg.inv(v)
        xvx = n_trees * z0.T @ vi @ z0
        beta = np.linalg.solve(xvx, z0.T @ vi @ wide.sum(axis=0))
        r = wide - z0 @ beta
        quad = np.einsum("gi,ij,gj->", r, vi, r)
        return -0.5 * (n_trees * np.linalg.slogdet(v)[1] + np.linalg.slogdet(xvx)[1]
                       + quad + (n - p) * np.log(2 * np.pi))

    return loglik


def _oracle_profile(loglik, j, v, cov_hat, scale_hat):
    """max over the other parameters of the REML likelihood with cov[j, j] = v,
    from several starts (the estimate's correlation and 0, +-0.99; the other
    variance as estimated and scaled like v)."""
    k = 1 - j

    def neg(par):
        m = np.array([[np.sqrt(v), 0.0], [par[0], par[1]]])
        c = m @ m.T
        cov = np.empty((2, 2))
        cov[j, j], cov[k, k], cov[0, 1] = c[0, 0], c[1, 1], c[1, 0]
        cov[1, 0] = cov[0, 1]
        return -loglik(cov, np.exp(par[2]))

    r_hat = cov_hat[0, 1] / np.sqrt(cov_hat[0, 0] * cov_hat[1, 1])
    ends = []
    for rho in (r_hat, 0.0, -0.99, 0.99):
        for other in (cov_hat[k, k], cov_hat[k, k] * v / cov_hat[j, j]):
            start = [rho * np.sqrt(other), np.sqrt(1 - rho ** 2) * np.sqrt(other),
                     np.log(scale_hat)]
            ends.append(optimize.minimize(neg, start, method="BFGS", options=dict(gtol=1e-8)))
    # the best end polished derivative-free, then by BFGS again
    best = min(ends, key=lambda r: r.fun)
    r = optimize.minimize(neg, best.x, method="Nelder-Mead",
                          options=dict(xatol=1e-10, fatol=1e-12, maxfev=3000))
    r = optimize.minimize(neg, r.x, method="BFGS", options=dict(gtol=1e-9))
    return -min(best.fun, r.fun)


@pytest.fixture(scope="module")
def readme_fit(sitka):
    data = sitka.copy()
    data["Intercept"] = 1
    exog = data[["Intercept", "Time"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return lmm.MixedLM(data["size"], exog, data["tree"], exog.copy()).fit()


@pytest.mark.parametrize("re_ix,grid", [(1, "readme"), (1, "default"), (0, "default")])
def test_profile_points_are_constrained_maxima(readme_fit, sitka, re_ix, grid):
    """The README's grid and plot_profile's default grid (which reaches 27,000
    times Sitka's slope variance, where the seed reported -730.36 at 0.2)."""
    res = readme_fit
    v = res.cov_re.iloc[re_ix, re_ix]
    kwargs = dict(dist_low=0.5 * v, dist_high=0.8 * v) if grid == "readme" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prof = res.profile_re(re_ix, "re", **kwargs)
    loglik = _sitka_dense_reml(sitka)
    cov_hat = res.cov_re.to_numpy()
    assert loglik(cov_hat, res.scale) == pytest.approx(res.llf, abs=1e-8)
    expected = [_oracle_profile(loglik, re_ix, x, cov_hat, res.scale) for x in prof[:, 0]]
    np.testing.assert_allclose(prof[:, 1], expected, rtol=0, atol=1e-6)
    if grid == "default" and re_ix == 1:
        assert prof[1, 0] == pytest.approx(0.2, abs=1e-5)
        assert prof[1, 1] == pytest.approx(-405.76, abs=5e-3)


def test_unverified_points_are_nan_and_not_drawn(readme_fit, monkeypatch):
    """A minimizer that stops at once leaves every point unverified: each is
    NaN, one ConvergenceWarning names the variances, and the plot skips them."""
    from lmm import profile

    monkeypatch.setattr(profile, "minimize_profile",
                        lambda crit, start: crit.minimize(start, max_iter=0))
    v = readme_fit.cov_re.iloc[1, 1]
    with pytest.warns(lmm.exceptions.ConvergenceWarning, match="0.200007"):
        prof = readme_fit.profile_re(1, "re")
    assert prof[0, 1] == pytest.approx(readme_fit.llf)       # the estimate itself
    assert np.isnan(prof[1:, 1]).all()
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    with pytest.warns(lmm.exceptions.ConvergenceWarning, match=f"{0.5 * v:.6g}"):
        ax = readme_fit.plot_profile(1, dist_low=0.5 * v, dist_high=0.8 * v)
    line = ax.get_lines()[0]
    shown = np.isfinite(line.get_ydata())
    assert shown.sum() == 1 and line.get_xdata()[shown][0] == pytest.approx(v)
    import matplotlib.pyplot as plt
    plt.close(ax.figure)


def test_check_rejects_a_point_short_of_the_maximum(readme_fit):
    """The estimate's theta scaled to v = 0.2 (the restart's start) is not the
    maximum there; the oracle-verified solution is."""
    from lmm import profile

    dev = readme_fit.criterion
    crit = dev.make_criterion()
    lower = np.asarray(dev.structure.lower_bounds, dtype=float)
    crit.set_profile(0.2, dev.reparam.t[1])
    start = readme_fit.optimum_check.theta * np.sqrt(0.2 / readme_fit.cov_re.iloc[1, 1])
    assert not profile.is_constrained_minimum(crit, start, lower)
    theta, value, _ = crit.minimize(start)
    assert profile.is_constrained_minimum(crit, theta, lower)
    # a point pushed off it by 1e-3 in each coordinate fails again
    assert not profile.is_constrained_minimum(crit, theta * (1 + 1e-3), lower)


def test_profile_grid_must_be_positive(readme_fit):
    from lmm import profile

    with pytest.raises(ValueError, match="positive"):
        profile.profile_variance(readme_fit, 1, [0.0, 1e-5])


def test_profile_from_a_zero_variance_estimate():
    """A random-intercept fit on the boundary (variance 0): the profile above
    it, against the dense REML likelihood maximized over the scale (a grid
    of 400 log-scale values, then Brent's method around the best)."""
    import pandas as pd

    rng = np.random.default_rng(1)
    df = pd.DataFrame({"y": rng.normal(size=60), "g": np.repeat(np.arange(12), 5)})
    with pytest.warns(lmm.SingularFitWarning):
        res = lmm.mixedlm("y ~ 1", df, groups="g").fit()
    assert res.cov_re.iloc[0, 0] == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prof = res.profile_re(0, "re", dist_high=0.3)
    loglik = batched_loglik(res.model, reml=True)
    log_scales = np.linspace(np.log(1e-3), np.log(1e2), 400)
    for v, got in prof:
        def neg(log_scale, v=v):
            return -loglik(np.array([[v]]), np.exp(log_scale))
        k = int(np.argmin([neg(s) for s in log_scales]))
        r = optimize.minimize_scalar(neg, bounds=(log_scales[max(k - 1, 0)],
                                                  log_scales[min(k + 1, 399)]),
                                     method="bounded", options=dict(xatol=1e-10))
        assert got == pytest.approx(-r.fun, abs=1e-6)


def test_a_stopped_minimization_is_resumed(readme_fit, monkeypatch):
    """Minimizations cut to two iterations each: the unverified ends are
    resumed, and the README grid's profile is the same."""
    from lmm import profile

    v = readme_fit.cov_re.iloc[1, 1]
    kwargs = dict(dist_low=0.5 * v, dist_high=0.8 * v)
    full = readme_fit.profile_re(1, "re", **kwargs)
    calls = []

    def two_iterations(crit, start):
        calls.append(1)
        return crit.minimize(start, max_iter=2)

    monkeypatch.setattr(profile, "minimize_profile", two_iterations)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cut = readme_fit.profile_re(1, "re", **kwargs)
    np.testing.assert_allclose(cut[:, 1], full[:, 1], rtol=0, atol=1e-8)
    assert len(calls) > 2 * (len(full) - 1)      # more than the two sweeps' calls


def test_plot_profile_default_grid_draws_the_verified_profile(readme_fit):
    """The README's `mdf.plot_profile(1)`: the drawn points are profile_re's
    default grid (checked against the oracle above), no zig-zag at 0.2."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = readme_fit.plot_profile(1)
    prof = readme_fit.profile_re(1, "re")
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), prof[:, 0])
    np.testing.assert_allclose(line.get_ydata(), 2 * prof[:, 1])
    assert np.all(np.diff(line.get_ydata()) < 0)    # falls away from the estimate
    assert line.get_ydata()[1] == pytest.approx(2 * -405.76, abs=1e-2)
    plt.close(ax.figure)
