"""The optimizer loop over theta and the optimum check.

The search runs in the conditioned theta space of `ProfiledDeviance`, by
projected Newton steps with the analytic Hessian (from lme4's start,
Lambda = I): few iterations, quadratic convergence whatever scaling is left
over, and exact handling of the bounds through an active set.  A
scipy.optimize method can be asked for instead; Newton steps then finish
from its end point.
The end point is checked (projected gradient, curvature, boundary) before the
fit is called converged; nothing restarts from a failed point.
"""

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from .exceptions import ConvergenceWarning

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


def _projected_gradient(theta, grad, lower):
    pg = grad.copy()
    at_bound = np.isfinite(lower) & (theta <= lower)
    # at a lower bound, only a negative gradient (pointing out of the region
    # when descending) would mean the point is not optimal
    pg[at_bound] = np.minimum(grad[at_bound], 0.0)
    return pg, at_bound


def _trust_region_step(h, g, radius, prefer):
    """Minimizer of g'p + p'Hp/2 subject to |p| <= radius (exact, by eigh).

    Small dimensions only (the number of theta entries): the secular equation
    |p(lam)| = radius is solved for the shift lam by Newton steps.
    """
    w, v = np.linalg.eigh(h)
    gv = v.T @ g
    if w[0] > 0:
        p = -(v @ (gv / w))
        if np.linalg.norm(p) <= radius:
            return p
    lo = max(0.0, -w[0]) + 1e-14 * max(1.0, abs(w[-1]))
    if np.linalg.norm(gv / (w + lo)) < radius:
        # the 'hard case': move along the lowest-curvature direction as well
        p = -(v @ (gv / (w + lo)))
        extra = np.sqrt(max(radius**2 - p @ p, 0.0))
        # either sign of the eigenvector solves the subproblem; take the one
        # pointing into the feasible region (a zero gradient at a bound, as at
        # a variance of zero, would otherwise leave the choice to rounding)
        direction = v[:, 0] if v[:, 0] @ prefer >= 0 else -v[:, 0]
        return p + extra * direction
    # Newton's method on 1/|p(lam)| - 1/radius, which is concave and increasing
    # in lam: from the left end it converges monotonically (More and Sorensen).
    lam = lo
    g2 = gv * gv
    for _ in range(50):
        shifted = w + lam
        norm2 = np.sum(g2 / shifted**2)
        norm = np.sqrt(norm2)
        if abs(norm - radius) <= 1e-3 * radius:
            break
        dnorm = np.sum(g2 / shifted**3) / norm2**1.5
        lam -= (1.0 / norm - 1.0 / radius) / dnorm
    return -(v @ (gv / (w + lam)))


def projected_newton(dev, theta, max_iter=200, tol=1e-9, radius=1.0):
    """Minimize by trust-region Newton steps, projected onto the bounds.

    Each iteration takes the criterion, gradient and Hessian from one kernel
    call and solves the trust-region subproblem exactly on the free
    parameters (those at their bound with an outward gradient are held, the
    active set).  The radius starts at `radius` (theta is of order one in the
    conditioned space), so early steps cannot leap onto the boundary, where
    rank-deficient local optima lie.  Returns the final theta and the number
    of iterations.
    """
    lower = dev.structure.lower_bounds
    theta = np.maximum(np.asarray(theta, dtype=float), lower)
    f, g, h = dev.value_grad_hessian(theta)
    n_iter = 0
    while n_iter < max_iter and np.isfinite(f):
        pg, at_bound = _projected_gradient(theta, g, lower)
        free = ~(at_bound & (g > 0))
        if np.max(np.abs(pg), initial=0.0) < tol and (
                not free.any() or np.linalg.eigvalsh(h[np.ix_(free, free)])[0] >= 0):
            break
        step = np.zeros_like(theta)
        prefer = np.where(at_bound, 1.0, -g)[free]
        step[free] = _trust_region_step(h[np.ix_(free, free)], g[free], radius, prefer)
        cand = np.maximum(theta + step, lower)
        d = cand - theta
        predicted = -(g @ d + 0.5 * d @ h @ d)
        if 0 <= predicted < 1e-15 * (1.0 + abs(f)):
            break                # nothing left that double precision can resolve
        if 0 <= predicted < 1e-11 * (1.0 + abs(f)) and np.all(np.linalg.eigvalsh(
                h[np.ix_(free, free)]) > 0):
            # Within rounding noise of the criterion, its values cannot judge
            # the step; the convex quadratic model (exact derivatives) can.
            n_iter += 1
            theta = cand
            f, g, h = dev.value_grad_hessian(theta)
            continue
        fc = dev.value(cand)
        n_iter += 1
        rho = (f - fc) / predicted if predicted > 0 else -1.0
        dnorm = np.linalg.norm(d)
        if not np.isfinite(fc) or rho < 0.25:
            radius = 0.25 * max(dnorm, 1e-3 * radius)
        elif rho > 0.75 and np.linalg.norm(step) > 0.99 * radius:
            radius *= 2.0
        if np.isfinite(fc) and fc < f:
            moved = dnorm > 1e-15 * (1.0 + np.max(np.abs(theta)))
            theta = cand
            f, g, h = dev.value_grad_hessian(theta)
            if not moved:
                break
        elif radius < 1e-12 * (1.0 + np.max(np.abs(theta))):
            break
    return theta, n_iter


def minimize_deviance(dev, theta0, method=None, maxiter=None, options=None):
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
    """
    lower = dev.structure.lower_bounds
    theta0 = np.maximum(np.asarray(theta0, dtype=float), lower)
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
    theta, n_newton = projected_newton(
        dev, theta, max_iter=opts.get("maxiter", 200) if name == "newton" else 200
    )
    n_iter += n_newton
    if method is None and _on_boundary(dev, theta):
        # Rank-deficient (boundary) local optima trap local searches: before
        # calling a boundary point the optimum, search again from the start
        # along a different path (quasi-Newton, small first steps) and keep
        # the better end point.
        other = minimize_deviance(dev, theta0, method="L-BFGS-B")
        if other.deviance < dev.value(theta) - 1e-10 * (1.0 + abs(other.deviance)):
            other.n_iterations += n_iter
            return other
    return check_optimum(dev, theta, n_iterations=n_iter)


def _on_boundary(dev, theta):
    s = dev.structure
    diag = s.theta_rows == s.theta_cols
    return bool(np.any(theta[diag] < SINGULAR_TOLERANCE))


def check_optimum(dev, theta, n_iterations=0):
    """The optimum check: projected gradient and curvature at theta."""
    lower = dev.structure.lower_bounds
    f, g, h = dev.value_grad_hessian(theta)
    pg, at_bound = _projected_gradient(theta, g, lower)
    messages = []
    converged = bool(np.isfinite(f))
    if not converged:
        messages.append("the deviance is not finite at the end point")
    gmax = np.max(np.abs(pg), initial=0.0)
    if gmax > GRADIENT_TOLERANCE:
        converged = False
        messages.append(f"projected gradient {gmax:.3g} exceeds {GRADIENT_TOLERANCE:g}")
    # second-order check over the parameters that can still move: the interior
    # ones and those at a bound with no gradient holding them there (at a
    # variance of zero the gradient vanishes, and only the curvature says
    # whether moving inward would improve the fit)
    movable = ~at_bound | (at_bound & (g <= GRADIENT_TOLERANCE))
    if movable.any() and converged:
        sub = h[np.ix_(movable, movable)]
        w = np.linalg.eigvalsh(sub)
        tiny = -1e-6 * max(1.0, abs(w[-1]))
        weak = at_bound[movable]
        if (~weak).any() and np.linalg.eigvalsh(sub[np.ix_(~weak, ~weak)])[0] < tiny or \
                np.any(np.diag(sub)[weak] < tiny):
            converged = False
            messages.append(
                f"the Hessian has a negative eigenvalue ({w[0]:.3g}): a saddle point, "
                "not a minimum"
            )
    return OptimumCheck(
        theta=theta, deviance=f, gradient=g, projected_gradient=pg, hessian=h,
        at_bound=at_bound, converged=converged, messages=messages,
        n_iterations=n_iterations, n_evaluations=dev.n_evaluations,
    )


def warn_if_not_converged(check, stacklevel=3):
    if not check.converged:
        warnings.warn(
            "The fit did not converge: " + "; ".join(check.messages),
            ConvergenceWarning,
            stacklevel=stacklevel,
        )
