"""The Cython kernels against brute force and finite differences.

Oracles: the dense profiled criterion (V = I + Z G Z', O(n^3)), central
finite differences of it for the gradient and of the analytic gradient for the
Hessian, and a direct GLS solve for beta and the BLUPs.
"""

import numpy as np
import pytest

import lmm
from lmm import _core
from lmm.covariance import CovarianceStructure

from seedcases import dense_profiled_deviance, simulated

CASES = [  # (q, p, blocks, seed)
    (1, 2, None, 0),
    (2, 3, None, 1),
    (3, 2, None, 2),
    (3, 3, [[0, 2], [1]], 3),
    (3, 1, [[0], [1], [2]], 4),
]


def _model(q, p, seed):
    y, x, z, g = simulated(q=q, p=p, seed=seed)
    return lmm.MixedLM(y, x, g, exog_re=z), (y, x, z, g)


def _random_theta(structure, rng):
    theta = rng.normal(size=structure.n_theta) * 0.7
    diag = structure.theta_rows == structure.theta_cols
    theta[diag] = np.abs(theta[diag]) + 0.2
    return theta


def test_cross_products_match_numpy():
    y, x, z, g = simulated(q=3, p=3, seed=5)
    md = lmm.MixedLM(y, x, g, exog_re=z)
    st = md.cross_products
    for code in range(md.n_groups):
        rows = g == md.group_labels[code]
        np.testing.assert_allclose(st.ztz[code], z[rows].T @ z[rows], rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(st.ztx[code], z[rows].T @ x[rows], rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(st.zty[code], z[rows].T @ y[rows], rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(st.xtx, x.T @ x, rtol=1e-13)
    np.testing.assert_allclose(st.xty, x.T @ y, rtol=1e-13)
    assert st.yty == pytest.approx(y @ y, rel=1e-13)


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
@pytest.mark.parametrize("q,p,blocks,seed", CASES)
def test_deviance_matches_dense(q, p, blocks, seed, reml):
    md, (y, x, z, g) = _model(q, p, seed)
    st = md.cross_products
    s = CovarianceStructure(q, blocks)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        lam = s.lam(_random_theta(s, rng))
        dev, _ = _core.deviance(lam, st.ztz, st.ztx, st.zty, st.xtx, st.xty, st.yty,
                                float(st.nobs), reml, None)
        assert dev == pytest.approx(dense_profiled_deviance(y, x, z, g, lam, reml), rel=1e-11)


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
@pytest.mark.parametrize("q,p,blocks,seed", CASES)
def test_gradient_and_hessian_match_finite_differences(q, p, blocks, seed, reml):
    md, _ = _model(q, p, seed)
    s = CovarianceStructure(q, blocks)
    dev = md._deviance(reml, s)
    theta = _random_theta(s, np.random.default_rng(seed + 100))
    f0, grad = dev.value_and_grad(theta)
    h = 1e-6
    fd_grad = np.array([(dev.value(theta + h * e) - dev.value(theta - h * e)) / (2 * h)
                        for e in np.eye(len(theta))])
    np.testing.assert_allclose(grad, fd_grad, rtol=1e-6, atol=1e-6 * max(1, abs(f0)) * 1e-2)
    hess = dev.hessian(theta)
    h = 1e-5
    fd_hess = np.array([(dev.value_and_grad(theta + h * e)[1]
                         - dev.value_and_grad(theta - h * e)[1]) / (2 * h)
                        for e in np.eye(len(theta))])
    np.testing.assert_allclose(hess, fd_hess, rtol=1e-5, atol=1e-5 * np.abs(fd_hess).max())


@pytest.mark.parametrize("q,p,blocks,seed", CASES[:3])
def test_blups_and_conditional_covariance_match_dense(q, p, blocks, seed):
    md, (y, x, z, g) = _model(q, p, seed)
    st = md.cross_products
    s = CovarianceStructure(q, blocks)
    lam = s.lam(_random_theta(s, np.random.default_rng(seed)))
    sol = _core.solve(lam, st.ztz, st.ztx, st.zty, st.xtx, st.xty, st.yty)
    modes, cond = _core.conditional_modes(lam, st.ztz, st.ztx, st.zty, sol["beta"])
    g_rel = lam @ lam.T
    # dense GLS and BLUP: b_g = G Z_g' V_g^{-1} (y_g - X_g beta)
    n = len(y)
    v = np.eye(n)
    for lab in md.group_labels:
        idx = np.flatnonzero(g == lab)
        v[np.ix_(idx, idx)] += z[idx] @ g_rel @ z[idx].T
    vi = np.linalg.inv(v)
    beta = np.linalg.solve(x.T @ vi @ x, x.T @ vi @ y)
    np.testing.assert_allclose(sol["beta"], beta, rtol=1e-10)
    for code, lab in enumerate(md.group_labels):
        idx = np.flatnonzero(g == lab)
        vgi = np.linalg.inv(np.eye(len(idx)) + z[idx] @ g_rel @ z[idx].T)
        b = g_rel @ z[idx].T @ vgi @ (y[idx] - x[idx] @ beta)
        c = g_rel - g_rel @ z[idx].T @ vgi @ z[idx] @ g_rel
        np.testing.assert_allclose(modes[code], b, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(cond[code], c, rtol=1e-9, atol=1e-12)


def test_evaluation_touches_no_rows():
    """After set-up, evaluations use only the per-group cross-products.

    The row arrays are overwritten with NaN: any evaluation that read them
    would return NaN.  The kernels' signatures take no row arrays at all.
    """
    y, x, z, g = simulated(q=2, p=3, seed=7)
    md = lmm.MixedLM(y, x, g, exog_re=z)
    dev = md.profiled_deviance(reml=True)
    theta = np.array([0.8, 0.1, 0.5])
    before = dev.value_and_grad(theta)
    hess_before = dev.hessian(theta)
    for arr in (md.endog, md.exog, md.exog_re):
        arr[...] = np.nan
    after = dev.value_and_grad(theta)
    assert after[0] == before[0]
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_array_equal(dev.hessian(theta), hess_before)
    # the cross-products have one row per group, whatever the number of rows
    assert md.cross_products.ztz.shape[0] == md.n_groups


def test_fit_optimum_is_stationary_for_dense_criterion():
    """The fitted theta minimizes the brute-force criterion (zero FD gradient)."""
    y, x, z, g = simulated(n_groups=15, q=2, p=2, seed=11)
    res = lmm.MixedLM(y, x, g, exog_re=z).fit()
    lam = res.structure.lam(res.theta)
    f0 = dense_profiled_deviance(y, x, z, g, lam, True)
    assert -0.5 * f0 == pytest.approx(res.llf, rel=1e-12)
    s = res.structure
    h = 1e-6
    for a in range(s.n_theta):
        e = np.zeros(s.n_theta)
        e[a] = h
        up = dense_profiled_deviance(y, x, z, g, s.lam(res.theta + e), True)
        dn = dense_profiled_deviance(y, x, z, g, s.lam(res.theta - e), True)
        assert abs(up - dn) / (2 * h) < 1e-4


def test_symmetric_eigen_matches_numpy():
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 6, 10):
        a = rng.normal(size=(n, n))
        a = a + a.T
        w, v = _core.symmetric_eigen(a)
        np.testing.assert_allclose(w, np.linalg.eigvalsh(a), atol=1e-12 * np.abs(a).max())
        np.testing.assert_allclose(v @ np.diag(w) @ v.T, a, atol=1e-11 * np.abs(a).max())
        np.testing.assert_allclose(v.T @ v, np.eye(n), atol=1e-12)


@pytest.mark.parametrize("q,p,blocks,seed", CASES)
def test_compiled_criterion_matches_kernels(q, p, blocks, seed):
    md, _ = _model(q, p, seed)
    s = CovarianceStructure(q, blocks)
    dev = md._deviance(True, s)
    theta = _random_theta(s, np.random.default_rng(seed + 7))
    f, g, h = dev.criterion.value_grad_hessian(theta)
    lam = s.lam(theta)
    st = dev.stats
    grad = np.empty(s.n_theta)
    hess = np.empty((s.n_theta, s.n_theta))
    f2, _ = _core.deviance_hessian(lam, st.ztz, st.ztx, st.zty, st.xtx, st.xty, st.yty,
                                   float(st.nobs), True, s.theta_rows, s.theta_cols, grad, hess)
    assert f == pytest.approx(f2 + dev.shift, rel=1e-14)
    np.testing.assert_allclose(g, grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h, hess, rtol=1e-12, atol=1e-12)
    assert dev.criterion.value(theta) == pytest.approx(f, rel=1e-14)


@pytest.mark.parametrize("q,p,blocks,seed", CASES)
def test_end_point_derivatives_handed_over_are_a_fresh_evaluation(q, p, blocks, seed):
    md, _ = _model(q, p, seed)
    s = CovarianceStructure(q, blocks)
    crit = md._deviance(True, s).criterion
    theta, f, _ = crit.minimize(s.start_theta())
    n0 = crit.n_evaluations
    first = crit.value_grad_hessian(theta)          # minimize's end point, handed over
    again = crit.value_grad_hessian(theta)          # evaluated
    assert crit.n_evaluations == n0 + 2
    assert first[0] == again[0] == f
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(first[2], again[2])
    # another theta, or a changed criterion, is evaluated
    crit.minimize(s.start_theta())
    crit.set_scale_profile(2.0)
    f2, _, _ = crit.value_grad_hessian(theta)
    assert f2 == pytest.approx(crit.value(theta), rel=1e-14)
    assert f2 != f
    crit.clear_profile()


@pytest.mark.parametrize("seed", range(6))
def test_trust_region_step_solves_the_subproblem(seed):
    """The step minimizes g'p + p'Hp/2 over |p| <= r (brute force: SLSQP from
    several starts), for convex and indefinite H, inside and on the boundary."""
    from scipy import optimize

    rng = np.random.default_rng(seed)
    n = 1 + seed % 4
    a = rng.normal(size=(n, n))
    h = a + a.T if seed % 2 else a @ a.T + 0.1 * np.eye(n)
    g = rng.normal(size=n)
    radius = [0.05, 0.5, 5.0][seed % 3]
    step = _core.trust_region_step(h, g, radius, -g)
    assert np.linalg.norm(step) <= radius * (1 + 1e-3)

    def model(p):
        return g @ p + 0.5 * p @ h @ p

    best = min(
        optimize.minimize(model, x0, method="SLSQP", constraints=[
            {"type": "ineq", "fun": lambda p: radius**2 - p @ p}],
            options=dict(ftol=1e-14, maxiter=500)).fun
        for x0 in [np.zeros(n), *(radius * 0.5 * rng.normal(size=(4, n)))]
    )
    assert model(step) <= best + 1e-6 * (1 + abs(best))


def test_group_blocks_is_a_stable_counting_sort():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 9, 500).astype(np.intp)
    sizes, offsets, order = _core.group_blocks(codes, 10)
    np.testing.assert_array_equal(order, np.argsort(codes, kind="stable"))
    np.testing.assert_array_equal(sizes, np.bincount(codes, minlength=10))
    np.testing.assert_array_equal(offsets, np.concatenate([[0], np.cumsum(sizes)]))
    with pytest.raises(ValueError):
        _core.group_blocks(codes, 5)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16, np.uint64])
def test_integer_groups_coded_as_pandas_codes_them(dtype):
    import pandas as pd

    from lmm.model import _factorize_groups

    rng = np.random.default_rng(4)
    for lo in (0, 20, int(min(np.iinfo(dtype).max - 120, 2**40))):
        groups = (rng.integers(0, 100, 300) + lo).astype(dtype)
        codes, labels = _factorize_groups(groups)
        expected_codes, expected_labels = pd.factorize(groups, sort=True)
        np.testing.assert_array_equal(codes, expected_codes)
        assert codes.dtype == np.intp
        assert labels.dtype == expected_labels.dtype
        np.testing.assert_array_equal(labels, expected_labels)
    sparse = np.array([2**40, 3, 2**40, -7], dtype=np.int64)    # wide span: pandas' path
    codes, labels = _factorize_groups(sparse)
    np.testing.assert_array_equal(codes, [2, 1, 2, 0])
    np.testing.assert_array_equal(labels, [-7, 3, 2**40])
    extreme = np.array([2**63 - 1, -2**63, 0], dtype=np.int64)   # the span overflows int64
    codes, labels = _factorize_groups(extreme)
    np.testing.assert_array_equal(codes, [2, 0, 1])
    np.testing.assert_array_equal(labels, [-2**63, 0, 2**63 - 1])
    big = np.array([2**64 - 1, 5, 2**64 - 1], dtype=np.uint64)
    codes, labels = _factorize_groups(big)
    np.testing.assert_array_equal(codes, [1, 0, 1])
    assert labels.dtype == np.uint64 and labels[1] == 2**64 - 1
    strided = np.arange(40, dtype=np.int64)[::-2]
    codes, labels = _factorize_groups(strided)
    np.testing.assert_array_equal(labels, np.sort(strided))
    np.testing.assert_array_equal(labels[codes], strided)


def _gershgorin_bound(gram):
    d = np.sqrt(np.diag(gram))
    corr = np.abs(gram / np.outer(d, d))
    return np.min(2 * np.diag(corr) - corr.sum(axis=1))


def test_model_products_gershgorin_flags():
    rng = np.random.default_rng(11)
    n = 120
    codes = np.repeat(np.arange(12), 10).astype(np.intp)
    y = rng.normal(size=n)
    t = rng.normal(size=n)
    for eps in (1.0, 1e-2, 1e-4, 1e-7, 0.0):
        x = np.column_stack([np.ones(n), t, t + eps * rng.normal(size=n)])
        z = np.column_stack([np.ones(n), t])
        pr = _core.model_products(x, z, y, codes, 12)
        assert pr["x_clear"] == (_gershgorin_bound(pr["xtx"]) > 1e-6)
        assert pr["z_clear"] == (_gershgorin_bound(pr["ztz_all"]) > 1e-6)
    zero = np.column_stack([np.ones(n), np.zeros(n)])
    assert not _core.model_products(zero, zero, y, codes, 12)["x_clear"]


def test_integer_groups_coded_with_the_products_as_apart():
    from lmm.model import _coded_products, _factorize_groups

    rng = np.random.default_rng(3)
    n = 90
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    z = np.ones((n, 1))
    y = rng.normal(size=n)
    labels = rng.integers(100, 130, size=n)
    for groups in (labels, labels.astype(np.int32), labels * 2**40, labels[::-1].copy()):
        codes, labs, pr = _coded_products(y, x, z, groups)
        codes2, labs2 = _factorize_groups(groups)
        pr2 = _core.model_products(x, z, y, codes2, len(labs2))
        np.testing.assert_array_equal(codes, codes2)
        np.testing.assert_array_equal(labs, labs2)
        assert labs.dtype == labs2.dtype
        for key in ("order", "offsets", "ztz", "ztx", "zty", "xtx", "xty", "ztz_all"):
            np.testing.assert_array_equal(pr[key], pr2[key])
        assert pr["yty"] == pr2["yty"]
    assert _core.integer_model_products(x, z, y, labels * 2**40, n + 65536) is None


def test_model_products_is_blocks_and_cross_products_in_one_call():
    rng = np.random.default_rng(5)
    n, g = 200, 13
    x = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    z = np.column_stack([rng.normal(size=n), np.ones(n)])
    y = rng.normal(size=n)
    codes = rng.integers(0, g, n).astype(np.intp)
    out = _core.model_products(x, z, y, codes, g)
    sizes, offsets, order = _core.group_blocks(codes, g)
    for got, want in zip((out["sizes"], out["offsets"], out["order"]), (sizes, offsets, order)):
        np.testing.assert_array_equal(got, want)
    # the products are those of the centred design: X's other columns and y
    # centred (X has an intercept), Z's first column centred (Z's second is ones)
    x_shift = np.array([0.0, x[:, 1].mean(), x[:, 2].mean()])
    z_shift = np.array([z[:, 0].mean(), 0.0])
    np.testing.assert_allclose(out["x_shift"], x_shift, rtol=1e-14)
    np.testing.assert_allclose(out["z_shift"], z_shift, rtol=1e-14)
    assert out["y_shift"] == pytest.approx(y.mean(), rel=1e-14)
    assert (out["x_intercept"], out["z_intercept"]) == (0, 1)
    ref = _core.cross_products(x - out["x_shift"], z - out["z_shift"], y - out["y_shift"],
                               order, offsets)
    for key, want in zip(("ztz", "ztx", "zty", "xtx", "xty", "yty"), ref):
        np.testing.assert_array_equal(out[key], want)
    np.testing.assert_allclose(out["ztz_all"], ref[0].sum(0), rtol=1e-14)
    assert out["finite"] and list(out["ones"]) == [False, True]
    assert list(out["x_ones"]) == [True, False, False]
    # no intercept in X: nothing centred there, nor y
    no_icpt = _core.model_products(x[:, 1:].copy(), z, y, codes, g)
    assert no_icpt["x_intercept"] == -1 and no_icpt["y_shift"] == 0.0
    assert not no_icpt["x_shift"].any()
    z[3, 1] = 1.0 + 1e-15
    assert list(_core.model_products(x, z, y, codes, g)["ones"]) == [False, False]
    x[7, 2] = np.nan
    assert not _core.model_products(x, z, y, codes, g)["finite"]


@pytest.mark.parametrize("t_identity", [True, False])
def test_condition_products_equals_transformed(t_identity):
    from lmm.deviance import CrossProducts

    rng = np.random.default_rng(6)
    n, g = 150, 11
    x = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    z = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = rng.normal(size=n) + 3.0
    codes = rng.integers(0, g, n).astype(np.intp)
    sizes, offsets, order = _core.group_blocks(codes, g)
    st = CrossProducts(*_core.cross_products(x, z, y, order, offsets)[:5],
                       float(_core.cross_products(x, z, y, order, offsets)[5]), n)
    x_scale = np.array([1.0, 0.5, 2.0])
    t = np.eye(2) if t_identity else np.array([[1.0, -0.3], [0.0, 1.7]])
    beta, *cond = _core.condition_products(st.ztz, st.ztx, st.zty, st.xtx, st.xty, st.yty,
                                           x_scale, t)
    xs = x * x_scale
    np.testing.assert_allclose(beta, np.linalg.lstsq(xs, y, rcond=None)[0], rtol=1e-10)
    ref = st.transformed(x_scale, t, beta)
    for got, want in zip(cond, (ref.ztz, ref.ztx, ref.zty, ref.xtx, ref.xty, ref.yty)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert (cond[0] is st.ztz) == t_identity
    singular = np.zeros((3, 3))
    assert _core.condition_products(st.ztz, st.ztx, st.zty, singular, st.xty, st.yty,
                                    x_scale, t) is None
