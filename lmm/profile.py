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
minimization by trust-region Newton steps.  A local optimizer can stop short
on a problem this far from the estimate (Sitka's slope variance at 0.2, 27,000
times its estimate), so each point's end is verified (projected gradient and
curvature, `is_constrained_minimum`), warm starts come from both neighbours,
and a point no start verifies is NaN with a warning, never a wrong number.

statsmodels' profile_re instead holds cov_re / scale fixed and reports it
times the re-estimated scale, so its second column is not the profile of the
variance on its first column.
"""

import math
import warnings

import numpy as np

from . import _core
from .exceptions import ConvergenceWarning

# A candidate is accepted as the constrained maximum when the quadratic model
# at it (exact gradient and Hessian) promises less than this much decrease of
# -2 l_v (5e-9 in log-likelihood), with no direction of negative curvature.
_GAIN_TOL = 1e-8
# negative curvature below -_CURVATURE_TOL x the largest curvature fails
_CURVATURE_TOL = 1e-8
# a gradient component along a direction of (numerically) zero curvature
_FLAT_GRAD_TOL = 1e-6
# at most this many (up, down) sweep pairs over a side of the grid
_MAX_ROUNDS = 3
# at most this many resumed minimizations from an unverified end
_MAX_RESUMES = 3


def profile_grid(value, num_low, dist_low, num_high, dist_high):
    """statsmodels' grid: num_low + 1 points from value - dist_low up to value,
    then num_high more up to value + dist_high; values <= 0 dropped."""
    left = np.linspace(value - dist_low, value, num_low + 1)
    right = np.linspace(value, value + dist_high, num_high + 1)[1:]
    grid = np.concatenate([left, right])
    return grid[grid > 0]


def is_constrained_minimum(crit, theta, lower):
    """Whether theta minimizes `crit` locally within the bounds theta >= lower.

    Parameters at their bound whose gradient points outward are held; over
    the others the Hessian must have no negative curvature and the Newton
    step of the quadratic model must promise a decrease below _GAIN_TOL.

    Examples
    --------
    >>> import numpy as np
    >>> class Quadratic:
    ...     def value_grad_hessian(self, t):
    ...         return t @ t, 2 * t, 2 * np.eye(len(t))
    >>> is_constrained_minimum(Quadratic(), np.zeros(2), np.full(2, -np.inf))
    True
    >>> is_constrained_minimum(Quadratic(), np.ones(2), np.full(2, -np.inf))
    False
    """
    f, grad, hess = crit.value_grad_hessian(theta)
    if not math.isfinite(f):
        return False
    free = ~((theta <= lower) & (grad > 0))
    if free.all():
        grad_free, hess_free = grad, hess
    elif not free.any():
        return True
    else:
        grad_free, hess_free = grad[free], hess[free][:, free]
    if not (math.isfinite(float(grad_free.sum())) and math.isfinite(float(hess_free.sum()))):
        return False
    # (the optimizer's own Jacobi routine: numpy's eigh costs more on 1 to 6 rows)
    w, vecs = _core.symmetric_eigen(hess_free)
    largest = max(1.0, abs(w[0]), abs(w[-1]))
    if w[0] < -_CURVATURE_TOL * largest:
        return False
    along = vecs.T @ grad_free
    curved = w > 1e-12 * largest
    if not curved.all() and np.abs(along[~curved]).max() > _FLAT_GRAD_TOL:
        return False
    return 0.5 * float(np.sum(along[curved] ** 2 / w[curved])) < _GAIN_TOL


class _PointSolver:
    """The constrained problems of one variance: solves a grid point from a
    start, verifies the end, and makes starts from other points' solutions."""

    def __init__(self, results, re_ix):
        dev = results.criterion
        self.crit = dev.make_criterion()
        self.t_row = dev.reparam.t[int(re_ix)]   # user G_jj = |row j of T Lambda|^2
        self.lower = np.asarray(dev.structure.lower_bounds, dtype=float)
        self.rows = np.asarray(dev.structure.theta_rows)
        self.cols = np.asarray(dev.structure.theta_cols)
        self.q = int(dev.structure.q)
        self.scale_hat = float(results.scale)

    def solve(self, v, start):
        """(theta, -2 l_v, verified) from one start.

        An unverified end is started again (the trust region afresh) while
        that lowers the criterion: on ill-conditioned problems next to a
        bound the optimizer can stop short, and resume."""
        self.crit.set_profile(v, self.t_row)
        theta, value, _ = minimize_profile(self.crit, np.asarray(start, dtype=float))
        ok = self._verified(theta, value)
        for _ in range(_MAX_RESUMES):
            if ok or not np.isfinite(value):
                break
            theta_next, value_next, _ = minimize_profile(self.crit, theta)
            if not value_next < value:
                break
            theta, value = theta_next, value_next
            ok = self._verified(theta, value)
        return theta, value, ok

    def _verified(self, theta, value):
        return bool(np.isfinite(value)) and is_constrained_minimum(self.crit, theta, self.lower)

    def relative_variance(self, theta):
        """g(theta) = G_jj / scale, |row j of T Lambda|^2."""
        lam = np.zeros((self.q, self.q))
        lam[self.rows, self.cols] = theta
        return float(np.sum((self.t_row @ lam) ** 2))

    def start(self, theta, v_from, v_to):
        """A start at variance v_to from the solution theta at v_from.

        Lambda times sqrt(v_to / v_from) keeps that solution's residual
        variance and every correlation.  From an estimate with the variance
        at zero (a boundary fit), Lambda's zero diagonal entries are first
        set to 1 and Lambda scaled to the estimate's residual variance.
        """
        if v_from > 0:
            return theta * np.sqrt(v_to / v_from)
        lifted = np.array(theta, dtype=float)
        lifted[(self.rows == self.cols) & (lifted == 0)] = 1.0
        g = self.relative_variance(lifted)
        return lifted * np.sqrt(v_to / (self.scale_hat * g)) if g > 0 else lifted


def minimize_profile(crit, start):
    """One bounded minimization of the profile criterion (a seam for tests)."""
    return crit.minimize(start)


def _sweep(solver, values, best, order, anchor):
    """Solve the points `order` (indices into values) in turn, each started
    from the nearest verified solution before it in `order`, or from `anchor`
    ((v, theta), or None: the first verified point found is then only a start).
    Returns whether a point already solved got a better verified value."""
    improved = False
    prev = anchor
    for i in order:
        if prev is not None:
            prev_v, prev_theta = prev
            theta, value, ok = solver.solve(values[i], solver.start(prev_theta, prev_v, values[i]))
            improved |= _keep(best, i, theta, value, ok)
        if best[i] is not None and best[i][2]:
            prev = (values[i], best[i][0])
    return improved


def _keep(best, i, theta, value, ok):
    """Store a candidate if it is the first, or verified and better than the
    point's current one; True if it improved a point already solved."""
    cur = best[i]
    better = cur is None or (ok and (not cur[2] or value < cur[1] - 1e-12 * (1 + abs(value))))
    if better:
        best[i] = (theta, value, ok)
    return better and ok and cur is not None


def _solve_side(solver, values, best, side, v_hat, theta_hat):
    """Sweep one side of the grid (indices `side`, ordered outward from the
    estimate) outward, then inward from its far end, until nothing improves."""
    for _ in range(_MAX_ROUNDS):
        _sweep(solver, values, best, side, (v_hat, theta_hat))
        if not _sweep(solver, values, best, side[::-1], None):
            break


def _restart(solver, values, best, i, v_hat, theta_hat):
    """Last tries for an unverified point: the estimate's solution scaled to
    it and unscaled, and every verified point's solution scaled to it."""
    starts = [solver.start(theta_hat, v_hat, values[i]), theta_hat]
    starts += [solver.start(b[0], values[k], values[i]) for k, b in enumerate(best)
               if b is not None and b[2]]
    for start in starts:
        _keep(best, i, *solver.solve(values[i], start))
        if best[i][2]:
            return


def profile_variance(results, re_ix, grid):
    """Profile log-likelihood of cov_re[re_ix, re_ix] at each value of `grid`.

    Every point is the maximum of the likelihood with that variance held,
    verified by `is_constrained_minimum`: each is started from its
    neighbour's verified solution walking outward from the estimate, then
    again walking back inward, then (if still unverified) from restarts; the
    best verified solution is kept.  A point none of them verifies is NaN,
    with a ConvergenceWarning naming its variance.

    Returns
    -------
    ndarray (len(grid), 2): the variance and its profile log-likelihood.
    """
    grid = np.asarray(grid, dtype=float)
    if np.any(~(grid > 0)):
        raise ValueError("the profile grid's variances must be positive")
    solver = _PointSolver(results, re_ix)
    theta_hat = np.asarray(results.optimum_check.theta, dtype=float)
    v_hat = float(results.cov_re.iloc[re_ix, re_ix])
    values, where = np.unique(grid, return_inverse=True)
    best = [None] * len(values)
    at_hat = values == v_hat
    up = [i for i in range(len(values)) if values[i] > v_hat]
    down = [i for i in range(len(values) - 1, -1, -1) if values[i] < v_hat]
    for side in (up, down):
        if side:
            _solve_side(solver, values, best, side, v_hat, theta_hat)
    for i in up + down:
        if not best[i][2]:
            _restart(solver, values, best, i, v_hat, theta_hat)
    llf = np.array([results.llf if at_hat[i] else
                    (-0.5 * best[i][1] if best[i][2] else np.nan) for i in range(len(values))])
    failed = values[np.isnan(llf)]
    if len(failed):
        warnings.warn(f"profile_re: no verified constrained maximum at variance(s) "
                      f"{', '.join(f'{x:.6g}' for x in failed)} of cov_re[{re_ix}, {re_ix}]; "
                      "reported as NaN", ConvergenceWarning, stacklevel=3)
    return np.column_stack([grid, llf[where]])
