"""The profiled criterion as a public function of lme4's theta (lme4's ``devfun``,
MixedModels.jl's ``objective!``), for either engine.

``theta`` is lme4's: the entries of each term's relative covariance factor
Lambda (cov_re / sigma^2 = Lambda Lambda'), column by column of the lower
triangle, term after term, in the user's units.  The value is -2 log-likelihood
(ML) or the REML criterion, with the fixed effects and sigma profiled out, as
lme4 reports it (so at a fit's theta it is ``-2 * res.llf``).
"""

import numpy as np

# central-difference steps of the Hessian (of the analytic gradient) and of
# derivatives where the kernel has none, relative to max(1, |theta_i|)
_GRADIENT_STEP = 1e-5
_VALUE_STEP = 1e-4


class DevianceFunction:
    """The profiled deviance (ML) or REML criterion as a function of lme4's theta.

    Built by ``model.deviance_function(reml=...)``; call it with theta.

    Attributes
    ----------
    reml : bool
    lower_bounds : ndarray, theta's bounds (0 for diagonal entries, -inf else)
    analytic_gradient : bool
        Whether `gradient` is exact (one grouping factor) or central
        differences of the criterion (several: that kernel has no derivatives).

    Notes
    -----
    `hessian` is central differences of `gradient` (steps 1e-5 max(1, |theta|)):
    the optimizer's analytic Hessian lives in its conditioned coordinates, and
    the map from lme4's theta to those is not linear.

    Examples
    --------
    >>> import lmm
    >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
    >>> res = lmm.lmer("Weight ~ Time + (Time | Pig)", d)
    >>> f = res.model.deviance_function(reml=True)
    >>> bool(abs(f(res.theta) + 2 * res.llf) < 1e-8)
    True
    """

    def __init__(self, value, lower_bounds, reml, gradient=None):
        self._value = value
        self._gradient = gradient
        self.lower_bounds = np.asarray(lower_bounds, dtype=float)
        self.reml = bool(reml)
        self.analytic_gradient = gradient is not None

    def _theta(self, theta):
        theta = np.asarray(theta, dtype=float)
        if theta.shape != self.lower_bounds.shape:
            raise ValueError(f"theta must have {len(self.lower_bounds)} entries, got shape "
                             f"{theta.shape}")
        if not np.all(np.isfinite(theta)):
            raise ValueError("theta must be finite")
        return theta

    def __call__(self, theta):
        """The criterion at theta (inf where X'V^-1 X is not positive definite)."""
        return float(self._value(self._theta(theta)))

    def gradient(self, theta):
        """The criterion's gradient at theta."""
        theta = self._theta(theta)
        if self._gradient is not None:
            return np.asarray(self._gradient(theta), dtype=float)
        return _central_gradient(self._value, theta, _VALUE_STEP)

    def hessian(self, theta):
        """The criterion's Hessian at theta (symmetrized central differences)."""
        theta = self._theta(theta)
        n = len(theta)
        steps = _GRADIENT_STEP * np.maximum(1.0, np.abs(theta))
        if self._gradient is None:
            steps = _VALUE_STEP * np.maximum(1.0, np.abs(theta))
        hess = np.zeros((n, n))
        for i in range(n):
            e = np.zeros(n)
            e[i] = steps[i]
            hess[:, i] = (self.gradient(theta + e) - self.gradient(theta - e)) / (2 * steps[i])
        return 0.5 * (hess + hess.T)


def _central_gradient(value, theta, rel_step):
    steps = rel_step * np.maximum(1.0, np.abs(theta))
    grad = np.zeros(len(theta))
    for i in range(len(theta)):
        e = np.zeros(len(theta))
        e[i] = steps[i]
        grad[i] = (value(theta + e) - value(theta - e)) / (2 * steps[i])
    return grad


def one_factor_function(dev):
    """The `DevianceFunction` of a one-factor `ProfiledDeviance` (its conditioned
    design Z T): values from the compiled criterion at the conditioned theta,
    the gradient exact by the chain rule through G = T G_s T'."""
    s, reparam = dev.structure, dev.reparam
    t_inv = reparam.t_inv
    rows, cols = s.theta_rows, s.theta_cols

    def conditioned(theta):
        return s.theta(reparam.lam_to_scaled(s.lam(theta)))

    def value(theta):
        return dev.value(conditioned(theta))

    def gradient(theta):
        lam_user = s.lam(theta)
        # dD = tr(S dG_s) with G_s = T^-1 G T^-T and G = Lambda Lambda', so
        # dD / dLambda = 2 T^-T S T^-1 Lambda
        sym = dev.covariance_gradient(s.lam(conditioned(theta)))
        grad = 2.0 * t_inv.T @ sym @ t_inv @ lam_user
        return grad[rows, cols]

    return DevianceFunction(value, s.lower_bounds, dev.reml, gradient)


def several_factor_function(model, reml):
    """The `DevianceFunction` of a MultiTermModel (values from its compiled
    criterion; derivatives by central differences)."""
    return DevianceFunction(lambda theta: model.deviance(theta, reml), model.lower_bounds,
                            reml)
