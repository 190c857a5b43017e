"""Profile likelihoods of random-effect variances.

The profile of the variance v_j = cov_re[j, j] at a value v holds v fixed on
the scale of cov_re and maximizes the likelihood over every other parameter:
the other covariance entries, the residual variance and the fixed effects
(under REML the criterion is the REML likelihood).  With the scale tied to the
relative covariance by scale = v / G_jj(theta) (G = cov_re / scale), the
constrained problem is an optimization over theta alone:

    -2 l_v(theta) = L(theta) + nu log(2 pi v / g(theta)) + rss(theta) g(theta) / v

where L = log|V| (+ log|X'V^-1 X| under REML), g = G_jj, nu = n (ML) or n - p
(REML).  The compiled criterion (`_core.Criterion.set_profile`) evaluates it
with its gradient and Hessian; each grid point is a small bounded
minimization by trust-region Newton steps, warm-started from its neighbour.

statsmodels' profile_re instead holds cov_re / scale fixed and reports it
times the re-estimated scale, so its second column is not the profile of the
variance on its first column.
"""

import numpy as np


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
    prof = dev.make_criterion()
    t_row = dev.reparam.t[int(re_ix)]     # user G_jj = |row j of T Lambda|^2
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
            prof.set_profile(grid[i], t_row)
            theta, value, _ = prof.minimize(theta)
            out[i, 1] = -0.5 * value
    return out
