"""Helpers shared by the test modules (tests/ is on pytest's pythonpath)."""

import numpy as np

import lmm

UNCORRELATED = lmm.MixedLMParams.from_components(np.ones(2), np.eye(2))


def fit_seed_case(case_id, reml, dietox, sitka):
    """Fit one of the ten seed cases of lme4_seed.json with lmm's statsmodels API."""
    data = dietox if case_id.startswith("dietox") else sitka
    kind = case_id.split("_")[1]
    if case_id.startswith("dietox"):
        formula, groups = "Weight ~ Time", data["Pig"]
    else:
        formula, groups = "size ~ Time", data["tree"]
    re_formula = None if kind == "ri" else "~Time"
    md = lmm.mixedlm(formula, data, groups=groups, re_formula=re_formula)
    free = UNCORRELATED if kind == "diag" else None
    return md.fit(reml=reml, free=free)


def simulated(n_groups=12, q=2, p=3, seed=0, min_size=2, max_size=7):
    """A small random mixed-model data set (rows not sorted by group).

    Returns y, X (intercept + p-1 covariates), Z (intercept + q-1 covariates
    that differ from X's), group codes.
    """
    rng = np.random.default_rng(seed)
    sizes = rng.integers(min_size, max_size + 1, n_groups)
    n = int(sizes.sum())
    groups = rng.permutation(np.repeat(np.arange(n_groups), sizes))
    x = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1)) * [3.0, 0.5][: p - 1]
                         if p > 1 else np.empty((n, 0))])
    z = np.column_stack([np.ones(n), rng.uniform(0, 5, size=(n, q - 1))])
    b = rng.normal(size=(n_groups, q)) * np.linspace(1.0, 0.3, q)
    y = x @ rng.normal(size=p) + np.einsum("ij,ij->i", z, b[groups]) + rng.normal(size=n)
    return y, x, z, groups


def dense_loglik(y, x, z, groups, beta, cov_re, scale, reml):
    """Unprofiled (RE)ML log-likelihood by brute force, V_g = Z_g G Z_g' + scale I.

    Each group's covariance block is inverted directly (no Woodbury identity).
    Under REML beta is ignored (integrated out).
    """
    n, p = x.shape
    logdet = 0.0
    xvx = np.zeros((p, p))
    xvy = np.zeros(p)
    quad_parts = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        v = scale * np.eye(len(idx)) + z[idx] @ cov_re @ z[idx].T
        vi = np.linalg.inv(v)
        logdet += np.linalg.slogdet(v)[1]
        xvx += x[idx].T @ vi @ x[idx]
        xvy += x[idx].T @ vi @ y[idx]
        quad_parts.append((idx, vi))
    if reml:
        beta = np.linalg.solve(xvx, xvy)
    r = y - x @ beta
    quad = sum(r[idx] @ vi @ r[idx] for idx, vi in quad_parts)
    if reml:
        return -0.5 * (logdet + np.linalg.slogdet(xvx)[1] + quad + (n - p) * np.log(2 * np.pi))
    return -0.5 * (logdet + quad + n * np.log(2 * np.pi))


def dense_profiled_deviance(y, x, z, groups, lam, reml):
    """The profiled criterion (DESIGN.md) by brute force.

    V_g = I + Z_g G Z_g' is formed and inverted directly for each group (no
    Woodbury identity, no determinant lemma, no cross-products).
    """
    n, p = x.shape
    g_rel = lam @ lam.T
    logdet = 0.0
    xvx = np.zeros((p, p))
    xvy = np.zeros(p)
    yvy = 0.0
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        v = np.eye(len(idx)) + z[idx] @ g_rel @ z[idx].T
        vi = np.linalg.inv(v)
        logdet += np.linalg.slogdet(v)[1]
        xvx += x[idx].T @ vi @ x[idx]
        xvy += x[idx].T @ vi @ y[idx]
        yvy += y[idx] @ vi @ y[idx]
    beta = np.linalg.solve(xvx, xvy)
    rss = yvy - beta @ xvy
    nu = n - p if reml else n
    dev = logdet + nu * (1 + np.log(2 * np.pi * rss / nu))
    if reml:
        dev += np.linalg.slogdet(xvx)[1]
    return dev


def batched_loglik(md, reml=True):
    """Brute-force (RE)ML log-likelihood of (cov_re, scale) for a model whose
    groups all have the same size: V_g formed and inverted directly, batched.
    Under ML beta is profiled (its GLS estimate)."""
    order = np.argsort(md.group_codes, kind="stable")
    size = md.group_sizes[0]
    assert np.all(md.group_sizes == size)
    g = md.n_groups
    y = md.endog[order].reshape(g, size)
    x = md.exog[order].reshape(g, size, -1)
    z = md.exog_re[order].reshape(g, size, -1)
    n, p = md.endog.size, md.exog.shape[1]

    def loglik(cov, scale):
        v = np.einsum("gij,jk,glk->gil", z, cov, z) + scale * np.eye(size)
        vi = np.linalg.inv(v)
        logdet = np.linalg.slogdet(v)[1].sum()
        xvx = np.einsum("gia,gij,gjb->ab", x, vi, x)
        xvy = np.einsum("gia,gij,gj->a", x, vi, y)
        beta = np.linalg.solve(xvx, xvy)
        r = y - x @ beta
        quad = np.einsum("gi,gij,gj->", r, vi, r)
        if not reml:
            return -0.5 * (logdet + quad + n * np.log(2 * np.pi))
        return -0.5 * (logdet + np.linalg.slogdet(xvx)[1] + quad + (n - p) * np.log(2 * np.pi))

    return loglik
