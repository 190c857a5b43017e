"""Profile likelihoods of random-effect variances.

The profile of the variance v_j = cov_re[j, j] at a value v holds v fixed on
the scale of cov_re and maximizes the likelihood over every other parameter:
the other covariance entries, the residual variance and the fixed effects
(under REML the criterion is the REML likelihood).  With the scale tied to the
relative covariance by scale = v / G_jj(theta) (G = cov_re / scale), the
constrained problem is an optimization over theta alone:

    -2 l_v(theta) = L(theta) + nu log(2 pi v / g(theta)) + rss(theta) g(theta) / v

where L = log|V| (+ log|X'V^-1 X| under REML), g = G_jj, nu = n (ML) or n - p
(REML).  The kernel supplies L, rss and their gradients in G; each grid point
is a small bounded minimization warm-started from its neighbour.

statsmodels' profile_re instead holds cov_re / scale fixed and reports it
times the re-estimated scale, so its second column is not the profile of the
variance on its first column.
"""

import numpy as np

from . import _core


class VarianceProfile:
    """-2 l_v(theta), its gradient and Hessian, for one variance held at v.

    Has the interface `optimize.projected_newton` works with (structure,
    value, value_grad_hessian), so each grid point is solved by the same
    trust-region Newton iterations as the fit.

    Parameters
    ----------
    dev : ProfiledDeviance (conditioned parametrization)
    re_ix : index of the random effect whose variance is profiled
    v : the variance, on the scale of cov_re
    """

    def __init__(self, dev, re_ix, v=None):
        self.dev = dev
        self.structure = dev.structure
        self.j = int(re_ix)
        self.v = v
        self.t_row = dev.reparam.t[self.j]          # user G_jj = |row j of T Lambda|^2
        s = dev.structure
        self.rows, self.cols = s.theta_rows, s.theta_cols
        n = s.n_theta
        self._grad = np.empty(n)
        self._hess = np.empty((n, n))
        self._pg = np.empty((2, n))
        self._ph = np.empty((2, n, n))
        self.n_evaluations = 0

    def _g(self, lam):
        """g = G_jj of the user's parametrization, its gradient and Hessian in theta."""
        r = self.t_row @ lam                        # row j of T Lambda
        g = float(r @ r)
        grad = 2.0 * self.t_row[self.rows] * r[self.cols]
        same_col = self.cols[:, None] == self.cols[None, :]
        hess = 2.0 * np.outer(self.t_row[self.rows], self.t_row[self.rows]) * same_col
        return g, grad, hess

    def value_grad_hessian(self, theta):
        self.n_evaluations += 1
        d, v = self.dev, self.v
        lam = self.structure.lam(theta)
        dev, rss = _core.deviance_hessian(lam, *d._args, float(d.nobs), d.reml, self.rows,
                                          self.cols, self._grad, self._hess, self._pg,
                                          self._ph)
        g, dg, hg = self._g(lam)
        if not np.isfinite(dev) or g <= 0:
            return np.inf, np.zeros_like(theta), np.eye(len(theta))
        nu = d.nu
        logdets = dev - nu * (1.0 + np.log(2.0 * np.pi * rss / nu))
        f = logdets + nu * np.log(2.0 * np.pi * v / g) + rss * g / v
        gl, gr = self._pg
        hl, hr = self._ph
        grad = gl + (g / v) * gr + (rss / v - nu / g) * dg
        hess = (hl + (g / v) * hr + (np.outer(gr, dg) + np.outer(dg, gr)) / v
                + (rss / v - nu / g) * hg + (nu / g**2) * np.outer(dg, dg))
        return f + d.shift, grad, hess

    def value(self, theta):
        self.n_evaluations += 1
        d, v = self.dev, self.v
        lam = self.structure.lam(theta)
        dev, rss = _core.deviance(lam, *d._args, float(d.nobs), d.reml, None, None)
        g = self._g(lam)[0]
        if not np.isfinite(dev) or g <= 0:
            return np.inf
        nu = d.nu
        logdets = dev - nu * (1.0 + np.log(2.0 * np.pi * rss / nu))
        return logdets + nu * np.log(2.0 * np.pi * v / g) + rss * g / v + d.shift

    def maximize(self, v, theta0):
        """(log-likelihood, theta) at the variance v, from theta0."""
        from .optimize import projected_newton

        self.v = float(v)
        theta, _ = projected_newton(self, theta0)
        return -0.5 * self.value(theta), theta


def profile_grid(value, num_low, dist_low, num_high, dist_high):
    """statsmodels' grid: num_low + 1 points from value - dist_low up to value,
    then num_high more up to value + dist_high; values <= 0 dropped."""
    left = np.linspace(value - dist_low, value, num_low + 1)
    right = np.linspace(value, value + dist_high, num_high + 1)[1:]
    grid = np.concatenate([left, right])
    return grid[grid > 0]


def profile_variance(results, re_ix, grid):
    """Profile log-likelihood of cov_re[re_ix, re_ix] at each value of `grid`.

    Returns an (len(grid), 2) array: the variance and its profile
    log-likelihood.  The optimization at each point starts from its
    neighbour's solution, walking outward from the estimate.
    """
    dev = results._dev
    prof = VarianceProfile(dev, re_ix)
    theta_hat = results._check.theta
    v_hat = results.cov_re.iloc[re_ix, re_ix]
    grid = np.asarray(grid, dtype=float)
    out = np.empty((len(grid), 2))
    out[:, 0] = grid
    order_up = [i for i in np.argsort(grid) if grid[i] >= v_hat]
    order_down = [i for i in np.argsort(grid)[::-1] if grid[i] < v_hat]
    for order in (order_up, order_down):
        theta = theta_hat
        for i in order:
            if grid[i] == v_hat:
                out[i, 1] = results.llf
                continue
            out[i, 1], theta = prof.maximize(grid[i], theta)
    return out
