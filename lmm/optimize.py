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
analytic derivatives; several factors in lmm.several_factors, on finite differences).
"""

from dataclasses import dataclass, field

import numpy as np

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
# log-likelihood by less than this (g' H^-1 g / 4, scale-free: the gradient's
# rounding noise grows with the number of observations, the gain does not).
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
    from scipy import optimize  # (0.15 s at import: when needed)
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
    from scipy import optimize  # (0.15 s at import: when needed)
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
    identified).  The verdict is compiled (lmm/_optimum.pxd, shared with the
    many-responses fitter); this function words its messages.

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
    # (the verdict is compiled, lmm/_optimum.pxd, and shared with the
    # many-responses fitter; here only the messages are worded)
    flags, pg, at_bound, flat, gmax, smallest = _core.judge(
        theta, value, gradient, hessian, lower, hessian_noise, GRADIENT_TOLERANCE,
        NEWTON_DECREMENT_TOLERANCE, FLAT_TOLERANCE)
    messages = []
    if flags & _NONFINITE:
        messages.append("the deviance is not finite at the end point")
    if flags & _GRADIENT:
        messages.append(f"projected gradient {gmax:.3g} exceeds {GRADIENT_TOLERANCE:g}")
    if flags & _SADDLE:
        messages.append(f"the Hessian has a negative eigenvalue ({smallest:.3g}): a saddle "
                        "point, not a minimum")
    if flags & _FLAT:
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
    return Verdict(converged=flags == 0, messages=messages, projected_gradient=pg,
                   at_bound=at_bound, flat=flat)


# the flags of the compiled verdict (lmm/_optimum.pxd)
_NONFINITE, _GRADIENT, _SADDLE, _FLAT = 1, 2, 4, 8


# a direction whose curvature (diagonally scaled Hessian) is below this times the
# largest is flat: the data do not determine the parameters along it
FLAT_TOLERANCE = 1e-8


