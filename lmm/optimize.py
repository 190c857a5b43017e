"""The optimizer loop over theta and the optimum check.

The search runs in the conditioned theta space of `ProfiledDeviance`, by
trust-region Newton steps with the analytic Hessian (from lme4's start,
Lambda = I; the iterations run in C, `_core.Criterion.minimize`): few
iterations, quadratic convergence whatever scaling is left over, and exact
handling of the bounds through an active set.  The trust region keeps early
steps from leaping onto the boundary, where rank-deficient local optima lie.
A scipy.optimize method can be asked for instead; Newton steps then finish
from its end point.
The end point is checked before the fit is called converged, by
`judge_optimum`: the one check of every engine (one grouping factor here, on
analytic derivatives; several factors in lmm.multi, on finite differences).
"""

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from . import _core

# scipy.optimize.minimize methods accepted through fit(method=...); statsmodels'
# names map to their scipy counterparts.
_METHOD_ALIASES = {
    "lbfgs": "L-BFGS-B",
    "l-bfgs-b": "L-BFGS-B",
    "bfgs": "L-BFGS-B",        # bounds are needed on theta: L-BFGS-B is BFGS with bounds
    "newton": "newton",
    "nm": "Nelder-Mead",
    "nelder-mead": "Nelder-Mead",
    "powell": "Powell",
    "cg": "L-BFGS-B",          # CG takes no bounds
    "trust-constr": "trust-constr",
    "tnc": "TNC",
}

# Projected-gradient tolerance on the deviance scale (lme4 uses 2e-3 on the
# same scale for its warning; a Newton polish reaches far below it).
GRADIENT_TOLERANCE = 1e-4
# ... or, whatever the gradient, when a Newton step would raise the
# log-likelihood by less than this (scale-free; see _newton_decrement_small).
NEWTON_DECREMENT_TOLERANCE = 1e-9
# theta diagonal entries below this (in the conditioned space, where theta is
# a standard deviation relative to the residual's for unit-scale covariates)
# count as zero: lme4's isSingular default.
SINGULAR_TOLERANCE = 1e-4


@dataclass
class OptimumCheck:
    theta: np.ndarray
    deviance: float
    gradient: np.ndarray
    projected_gradient: np.ndarray
    hessian: np.ndarray
    at_bound: np.ndarray
    converged: bool
    messages: list = field(default_factory=list)
    n_iterations: int = 0
    n_evaluations: int = 0
    # the searches run, in order (several-factor engine: method, deviance, success)
    attempts: list = field(default_factory=list)


def optimization_record(check):
    """The record of an optimization (lme4's ``optinfo``, MixedModels.jl's
    ``optsum``) from its `OptimumCheck`, as a plain dict.

    Keys: ``method`` (the search that produced the optimum: "newton" is the
    compiled trust-region Newton loop; a scipy method name, then "newton", when
    one was asked for; a derivative-free restart is named as such),
    ``n_iterations``, ``n_evaluations`` (criterion evaluations of the check and,
    for one grouping factor, of the whole fit), ``theta`` (the optimizer's
    conditioned coordinates), ``gradient``, ``projected_gradient``, ``hessian``,
    ``at_bound``, ``converged`` (the optimum check's verdict), ``messages``
    and ``attempts`` (every search run, in order).

    Examples
    --------
    >>> import lmm
    >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
    >>> rec = lmm.lmer("Weight ~ Time + (1 | Pig)", d).optinfo
    >>> rec["method"], rec["converged"]
    ('newton', True)
    """
    attempts = [dict(a) for a in check.attempts]
    n_iterations = int(check.n_iterations) or sum(int(a.get("iterations", 0) or 0)
                                                  for a in attempts)
    method = attempts[-1]["method"] if attempts else "newton"
    return dict(method=method, n_iterations=n_iterations,
                n_evaluations=int(check.n_evaluations), theta=np.array(check.theta),
                gradient=np.array(check.gradient),
                projected_gradient=np.array(check.projected_gradient),
                hessian=np.array(check.hessian), at_bound=np.array(check.at_bound),
                converged=bool(check.converged), messages=list(check.messages),
                attempts=attempts)


def _projected_gradient(theta, grad, lower):
    pg = grad.copy()
    at_bound = np.isfinite(lower) & (theta <= lower)
    # at a lower bound, only a negative gradient (pointing out of the region
    # when descending) would mean the point is not optimal
    pg[at_bound] = np.minimum(grad[at_bound], 0.0)
    return pg, at_bound


def minimize_deviance(dev, theta0, method=None, maxiter=None, options=None, names=None):
    """Minimize the profiled deviance over theta.

    Parameters
    ----------
    dev : ProfiledDeviance
    theta0 : start (conditioned space)
    method : str, optional
        None (default): projected Newton with the analytic Hessian from the
        start.  Otherwise a scipy.optimize.minimize method (or a statsmodels
        name for one) runs first, and projected Newton finishes from its end
        point.
    names : optional random-effect names, for the optimum check's messages

    An end point that fails the optimum check is restarted from once, by
    COBYQA (derivative-free) with Newton steps finishing; the better point's
    check is returned, the restart listed in its ``attempts``.
    """
    lower = dev.structure.lower_bounds
    theta0 = np.asarray(theta0, dtype=float)
    # (np.maximum(theta0, lower), which returns theta0's entry unless the bound
    # is above it, made only when some entry is at or below its bound or not a
    # number: the ufunc's first call costs more than the rest of this set-up)
    inside = theta0.ndim == 1 and len(theta0) == len(lower)
    if inside:
        for t, lo in zip(theta0.tolist(), lower.tolist()):
            if not t > lo:
                inside = False
                break
    if not inside:
        theta0 = np.maximum(theta0, lower)
    name = "newton" if method is None else _METHOD_ALIASES.get(str(method).lower(), method)
    opts = dict(options or {})
    if maxiter is not None:
        opts["maxiter"] = int(maxiter)
    n_iter = 0
    theta = theta0
    if name != "newton":
        if name == "L-BFGS-B":
            opts.setdefault("ftol", 1e-12)
            opts.setdefault("gtol", 1e-7)
        gradient_based = name not in ("Nelder-Mead", "Powell", "COBYLA", "COBYQA")
        fun = dev.value_and_grad if gradient_based else dev.value
        extra = {"hess": dev.hessian} if name == "trust-constr" else {}
        res = optimize.minimize(
            fun, theta0, jac=gradient_based or None, method=name,
            bounds=optimize.Bounds(lower, np.full_like(lower, np.inf)), options=opts,
            **extra,
        )
        theta = np.maximum(res.x, lower)
        n_iter = int(getattr(res, "nit", 0) or 0)
    theta, _, n_newton = dev.criterion.minimize(
        theta, max_iter=opts.get("maxiter", 200) if name == "newton" else 200
    )
    n_iter += n_newton
    if method is None and _on_boundary(dev, theta):
        # Rank-deficient (boundary) local optima trap local searches: before
        # calling a boundary point the optimum, search again from the start
        # along a different path (quasi-Newton, small first steps) and keep
        # the better end point.
        other = minimize_deviance(dev, theta0, method="L-BFGS-B", names=names)
        if other.deviance < dev.value(theta) - 1e-10 * (1.0 + abs(other.deviance)):
            other.n_iterations += n_iter
            return other
    # (made only if a message needs them)
    labels = None if names is None else (lambda: theta_labels(dev.structure, names))
    check = check_optimum(dev, theta, n_iterations=n_iter, names=labels)
    if not check.converged and method is None:
        check = _restart(dev, check, labels)
    if not check.attempts:
        check.attempts = [dict(method=name if name == "newton" else name + ", then newton",
                               deviance=float(check.deviance), success=bool(check.converged),
                               message="; ".join(check.messages), iterations=n_iter)]
    return check


def derivative_free():
    """The derivative-free back-end of restarts: COBYQA (scipy >= 1.14), else Powell."""
    import scipy

    major, minor = (int(v) for v in scipy.__version__.split(".")[:2])
    return "COBYQA" if (major, minor) >= (1, 14) else "Powell"


def derivative_free_options(method=None):
    """Options of the derivative-free back-end (or of `method`, COBYQA or Powell)."""
    if (method or derivative_free()) == "COBYQA":
        return dict(f_target=-np.inf, maxfev=4000, initial_tr_radius=0.5,
                    final_tr_radius=1e-6)
    return dict(xtol=1e-10, ftol=1e-14, maxfev=20000)


def _restart(dev, check, labels):
    """One derivative-free search (COBYQA) from a point that failed the check,
    Newton steps finishing; the better of the two points' checks."""
    lower = dev.structure.lower_bounds
    res = optimize.minimize(
        lambda th: dev.value(np.maximum(th, lower)), check.theta, method=derivative_free(),
        bounds=optimize.Bounds(lower, np.full_like(lower, np.inf)),
        options=derivative_free_options(),  # (the default back-end's)
    )
    theta, _, n_newton = dev.criterion.minimize(np.maximum(res.x, lower), max_iter=200)
    other = check_optimum(dev, theta, n_iterations=check.n_iterations + int(res.nit) + n_newton,
                          names=labels)
    attempt = dict(method=derivative_free() + " (restart from the best point)",
                   deviance=float(res.fun),
                   success=bool(res.success), message=str(res.message))
    best = other if other.converged or other.deviance < check.deviance else check
    best.attempts = [dict(method="newton", deviance=float(check.deviance),
                          success=bool(check.converged), message="; ".join(check.messages)),
                     attempt]
    return best


def _on_boundary(dev, theta):
    s = dev.structure
    for t, j, k in zip(theta.tolist(), s.theta_rows.tolist(), s.theta_cols.tolist()):
        if j == k and t < SINGULAR_TOLERANCE:
            return True
    return False


def _newton_decrement_small(h, pg, at_bound, g):
    """Whether a Newton step could still raise the log-likelihood by more than
    NEWTON_DECREMENT_TOLERANCE.

    The gradient of the deviance grows with the number of observations, and
    so does its rounding noise: on 10^6 rows an absolute gradient tolerance
    would fail at the optimum.  g' H^-1 g / 4 (the log-likelihood a Newton
    step would gain, on the free parameters with positive curvature) is
    invariant to the scale of the problem.
    """
    free = ~(at_bound & (g > 0))
    if not free.any():
        return True
    sub = h[np.ix_(free, free)]
    w, v = np.linalg.eigh(sub)
    if w[0] <= 0:
        return False
    gain = 0.25 * float(np.sum((v.T @ pg[free]) ** 2 / w))
    return gain < NEWTON_DECREMENT_TOLERANCE


def _eigvalsh(a):
    """Eigenvalues of a small symmetric matrix, ascending (a 1 x 1 matrix's is its
    entry; up to 16 x 16 the optimizer's compiled Jacobi routine, whose call costs
    a fraction of numpy.linalg's)."""
    if a.shape[0] == 1:
        return a.diagonal().astype(float)
    if a.shape[0] <= 16:
        return _core.symmetric_eigen(a)[0]
    return np.linalg.eigvalsh(a)


def check_optimum(dev, theta, n_iterations=0, names=None):
    """The optimum check of the one-factor criterion at theta (`judge_optimum` on
    its analytic gradient and Hessian).

    names : optional labels of theta's entries for the messages (by default
        their positions in the factor Lambda of cov_re).
    """
    f, g, h = dev.criterion.value_grad_hessian(theta)
    verdict = judge_optimum(theta, f, g, h, dev.structure.lower_bounds,
                            names=names, structure=dev.structure)
    return OptimumCheck(
        theta=theta, deviance=f, gradient=g, projected_gradient=verdict.projected_gradient,
        hessian=h, at_bound=verdict.at_bound, converged=verdict.converged,
        messages=verdict.messages, n_iterations=n_iterations,
        n_evaluations=dev.n_evaluations,
    )


@dataclass
class Verdict:
    """What `judge_optimum` found: whether the point is a verified minimum, why
    not (messages), the projected gradient, which entries sit at their bound,
    and the entries spanning a flat direction (empty when none)."""

    converged: bool
    messages: list
    projected_gradient: np.ndarray
    at_bound: np.ndarray
    flat: list = field(default_factory=list)


def theta_labels(structure, names=None, group=None):
    """Labels of theta's entries for messages: ``Lambda[j, k]`` of the
    random-effect names j, k (or their positions), with the grouping factor
    (theta is lme4's: the lower-triangular factor of cov_re / scale, in the
    optimizer's coordinates, where the columns other than an intercept are
    centred and scaled)."""
    rows, cols = structure.theta_rows.tolist(), structure.theta_cols.tolist()
    name = (lambda j: repr(names[j])) if names is not None else str
    where = f" for {group!r}" if group is not None else ""
    return [f"Lambda[{name(j)}, {name(k)}]{where}" for j, k in zip(rows, cols)]


def judge_optimum(theta, value, gradient, hessian, lower, names=None, structure=None,
                  hessian_noise=None):
    """The optimum check, for every engine: is theta a minimum of the criterion
    whose value, gradient and Hessian (in theta) are given, within the lower
    bounds?

    Four rules: the criterion is finite; the projected gradient is below
    GRADIENT_TOLERANCE, or a Newton step would gain less than
    NEWTON_DECREMENT_TOLERANCE in log-likelihood; the Hessian on the entries
    that can still move has no negative eigenvalue (a saddle point); and it is
    not singular in the interior (a flat direction: the model is not
    identified; see `_flat_direction`).

    Parameters
    ----------
    theta, gradient : (n,) arrays
    value : float, the criterion (deviance scale) at theta
    hessian : (n, n) array
    lower : (n,) lower bounds (-inf where none)
    names : optional labels of theta's entries (or a function making them), for the
        flat-direction message
    structure : optional CovarianceStructure, to label the entries when no
        names are given
    hessian_noise : optional (n, n) array, the rounding error of each Hessian
        entry (finite differences: the criterion's rounding over the steps'
        product).  Curvature within it cannot tell a saddle or a flat direction
        from a minimum: no saddle is called inside it, and a direction whose
        curvature it covers counts as flat.

    Returns
    -------
    Verdict

    Examples
    --------
    >>> import numpy as np
    >>> v = judge_optimum(np.array([1.0]), 3.0, np.array([0.0]), np.array([[2.0]]),
    ...                   np.array([0.0]))
    >>> v.converged
    True
    """
    f, g, h = value, gradient, hessian
    interior = True
    for t, lo in zip(theta.tolist(), lower.tolist()):
        if t <= lo:
            interior = False
            break
    if interior:
        # no mask to build (the usual case; numpy calls on tiny arrays cost more
        # than the arithmetic)
        pg, at_bound = g.copy(), np.zeros(len(g), dtype=bool)
    else:
        pg, at_bound = _projected_gradient(theta, g, lower)
    messages = []
    converged = math.isfinite(f)
    if not converged:
        messages.append("the deviance is not finite at the end point")
    gmax = 0.0
    for v in pg.tolist():
        v = abs(v)
        if v != v:
            gmax = math.nan
            break
        gmax = max(gmax, v)
    if gmax > GRADIENT_TOLERANCE and not _newton_decrement_small(h, pg, at_bound, g):
        converged = False
        messages.append(f"projected gradient {gmax:.3g} exceeds {GRADIENT_TOLERANCE:g}")
    # second-order check over the parameters that can still move: the interior
    # ones and those at a bound with no gradient holding them there (at a
    # variance of zero the gradient vanishes, and only the curvature says
    # whether moving inward would improve the fit)
    if interior:
        movable = None
    else:
        movable = ~at_bound | (at_bound & (g <= GRADIENT_TOLERANCE))
    saddle = False
    if converged and (len(pg) if interior else movable.any()):
        sub = h if interior or movable.all() else h[np.ix_(movable, movable)]
        w = _eigvalsh(sub)
        tiny = -1e-6 * max(1.0, abs(w[-1]))
        if hessian_noise is not None:
            tiny -= _noise_norm(hessian_noise, movable)
        weak = None if interior else at_bound[movable]
        if weak is None or not weak.any():
            saddle = w[0] < tiny         # the same matrix: its eigenvalues again
        else:
            saddle = np.any(np.diag(sub)[weak] < tiny)
            if (~weak).any():
                saddle = saddle or _eigvalsh(sub[np.ix_(~weak, ~weak)])[0] < tiny
        if saddle:
            converged = False
            messages.append(
                f"the Hessian has a negative eigenvalue ({w[0]:.3g}): a saddle point, "
                "not a minimum"
            )
    flat = []
    # (also when the gradient test failed: along a flat direction a Newton step
    # is unbounded, and the flat direction is the reason to report)
    if math.isfinite(f) and not saddle:
        flat = _flat_direction(h, at_bound, hessian_noise)
        if flat:
            converged = False
            if callable(names):
                names = names()
            if names is None:
                names = theta_labels(structure) if structure is not None else \
                    [f"theta[{i}]" for i in range(len(theta))]
            messages.append(
                "the likelihood is flat along a direction of the covariance parameters "
                + ", ".join(names[i] for i in flat)
                + " (the smallest curvature, diagonally scaled, is below "
                f"{FLAT_TOLERANCE:g} times the largest): the model is not identified; "
                "these parameters can move without changing the fit (is a random effect "
                "constant within its groups, or a copy of another?)"
            )
    return Verdict(converged=converged, messages=messages, projected_gradient=pg,
                   at_bound=at_bound, flat=flat)


# a direction whose curvature (diagonally scaled Hessian) is below this times the
# largest is flat: the data do not determine the parameters along it
FLAT_TOLERANCE = 1e-8


def _noise_norm(noise, mask=None):
    """A bound on how far rounding moves the eigenvalues of the Hessian (or of
    its rows and columns in mask): the Frobenius norm of the error."""
    if mask is not None:
        noise = noise[np.ix_(mask, mask)]
    return float(np.sqrt(np.sum(noise * noise)))


def _clearly_curved(h):
    """Whether h (2 x 2 or 3 x 3, positive diagonal) is far from flat, by plain
    arithmetic (the one-factor fit's usual case, where numpy's calls would cost
    more than the fit's check): for C = D^-1/2 h D^-1/2 (unit diagonal, so its
    largest eigenvalue is between 1 and n), the smallest eigenvalue is at least
    det(C) / n^(n-1), and the test is passed if that is at least
    FLAT_TOLERANCE n."""
    n = h.shape[0]
    if n not in (2, 3):
        return False
    rows = h.tolist()
    d = []
    for i in range(n):              # (loops: each comprehension is a call more)
        if not rows[i][i] > 0:
            return False
        d.append(rows[i][i])
    if n == 2:
        c01 = rows[0][1] / math.sqrt(d[0] * d[1])
        det = 1.0 - c01 * c01
    else:
        c01 = rows[0][1] / math.sqrt(d[0] * d[1])
        c02 = rows[0][2] / math.sqrt(d[0] * d[2])
        c12 = rows[1][2] / math.sqrt(d[1] * d[2])
        det = 1.0 + 2.0 * c01 * c02 * c12 - c01 * c01 - c02 * c02 - c12 * c12
    return det / n ** (n - 1) >= FLAT_TOLERANCE * n


def _flat_direction(h, at_bound, noise=None):
    """The entries (not at a bound) spanning the flattest direction of h, if its
    diagonally scaled curvature is below FLAT_TOLERANCE times the largest (or
    within the rounding error `noise` of a finite-difference Hessian, scaled
    alike); [] otherwise.

    Scaling by the diagonal makes the test blind to the units of each entry;
    what remains is the near-dependence of the entries' effects on the
    criterion, which no change of units removes."""
    if noise is None and not at_bound.any() and _clearly_curved(h):
        return []
    free = np.flatnonzero(~at_bound)
    if free.size == 0:
        return []
    sub = h[np.ix_(free, free)] if free.size < len(h) else h
    d = np.diag(sub).copy()
    if np.any(~(d > 0)):                  # no curvature at all along an entry
        return [int(free[i]) for i in np.flatnonzero(~(d > 0))]
    if free.size == 1:
        return []
    s = 1.0 / np.sqrt(d)
    scaled = sub * np.outer(s, s)
    # (the optimizer's compiled Jacobi routine up to 16 x 16: cheaper to call)
    w, v = _core.symmetric_eigen(scaled) if free.size <= 16 else np.linalg.eigh(scaled)
    limit = FLAT_TOLERANCE * w[-1]
    if noise is not None:
        limit = max(limit, _noise_norm(noise[np.ix_(free, free)] * np.outer(s, s)))
    if w[0] >= limit:
        return []
    vec = np.abs(v[:, 0])
    return [int(free[i]) for i in np.flatnonzero(vec > 0.1 * vec.max())]
