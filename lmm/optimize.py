"""The optimizer loop over theta and the optimum check.

The search runs in the conditioned theta space of `ProfiledDeviance`: a
quasi-Newton descent with the analytic gradient and simple bounds
(scipy's L-BFGS-B), then projected Newton steps with the analytic Hessian,
which converge quadratically to the optimum whatever the scaling left over.
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


def newton_polish(dev, theta, max_iter=50, tol=1e-10):
    """Projected Newton iterations with backtracking, from a nearby start.

    Returns the final theta, the number of iterations done.
    """
    lower = dev.structure.lower_bounds
    f, g = dev.value_and_grad(theta)
    it = 0
    while it < max_iter:
        it += 1
        pg, at_bound = _projected_gradient(theta, g, lower)
        if np.max(np.abs(pg), initial=0.0) < tol:
            break
        # active set: parameters at their bound that the gradient pushes outward
        active = at_bound & (g > 0)
        free = ~active
        h = dev.hessian(theta)[np.ix_(free, free)]
        gf = g[free]
        step_f = None
        damping = 0.0
        scale = max(1.0, np.max(np.abs(np.diag(h)), initial=1.0))
        for _ in range(30):
            try:
                c = np.linalg.cholesky(h + damping * np.eye(len(gf)))
                step_f = -np.linalg.solve(c.T, np.linalg.solve(c, gf))
                break
            except np.linalg.LinAlgError:
                damping = max(2 * damping, 1e-8 * scale)
        if step_f is None:
            break
        step = np.zeros_like(theta)
        step[free] = step_f
        t = 1.0
        improved = False
        for _ in range(40):
            cand = np.maximum(theta + t * step, lower)
            fc, gc = dev.value_and_grad(cand)
            if np.isfinite(fc) and fc <= f + 1e-4 * t * float(g @ (cand - theta)) / max(t, 1e-300):
                improved = True
                break
            if np.isfinite(fc) and fc < f:
                improved = True
                break
            t *= 0.5
        if not improved:
            break
        small = np.max(np.abs(cand - theta)) < 1e-14 * (1 + np.max(np.abs(theta)))
        theta, f, g = cand, fc, gc
        if small:
            break
    return theta, it


def minimize_deviance(dev, theta0, method=None, maxiter=None, options=None):
    """Minimize the profiled deviance over theta.

    Parameters
    ----------
    dev : ProfiledDeviance
    theta0 : start (conditioned space)
    method : str, optional
        None (default): L-BFGS-B then projected Newton.  Otherwise a
        scipy.optimize.minimize method (or a statsmodels name for one); its end
        point is then polished by projected Newton as well.
    """
    lower = dev.structure.lower_bounds
    bounds = optimize.Bounds(lower, np.full_like(lower, np.inf))
    theta0 = np.maximum(np.asarray(theta0, dtype=float), lower)
    name = "L-BFGS-B" if method is None else _METHOD_ALIASES.get(str(method).lower(), method)
    opts = dict(options or {})
    if maxiter is not None:
        opts["maxiter"] = int(maxiter)
    n_iter = 0
    if name == "newton":
        theta = theta0
    else:
        if name == "L-BFGS-B":
            opts.setdefault("ftol", 1e-12)
            opts.setdefault("gtol", 1e-7)
            opts.setdefault("maxiter", 1000)
        gradient_based = name not in ("Nelder-Mead", "Powell", "COBYLA", "COBYQA")
        fun = dev.value_and_grad if gradient_based else dev.value
        res = optimize.minimize(
            fun, theta0, jac=gradient_based or None, method=name,
            bounds=bounds if name != "trust-constr" else bounds, options=opts,
            **({"hess": dev.hessian} if name in ("trust-constr",) else {}),
        )
        theta = np.maximum(res.x, lower)
        n_iter = int(getattr(res, "nit", 0) or 0)
    theta, n_newton = newton_polish(dev, theta)
    return check_optimum(dev, theta, n_iterations=n_iter + n_newton)


def check_optimum(dev, theta, n_iterations=0):
    """The optimum check: projected gradient and curvature at theta."""
    lower = dev.structure.lower_bounds
    f, g = dev.value_and_grad(theta)
    pg, at_bound = _projected_gradient(theta, g, lower)
    h = dev.hessian(theta)
    messages = []
    converged = bool(np.isfinite(f))
    if not converged:
        messages.append("the deviance is not finite at the end point")
    gmax = np.max(np.abs(pg), initial=0.0)
    if gmax > GRADIENT_TOLERANCE:
        converged = False
        messages.append(f"projected gradient {gmax:.3g} exceeds {GRADIENT_TOLERANCE:g}")
    interior = ~at_bound
    if interior.any() and converged:
        w = np.linalg.eigvalsh(h[np.ix_(interior, interior)])
        if w[0] < -1e-6 * max(1.0, abs(w[-1])):
            converged = False
            messages.append(
                f"the Hessian has a negative eigenvalue ({w[0]:.3g}): a saddle point, not a minimum"
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
