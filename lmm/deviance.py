"""The profiled deviance as a function of theta, on the cross-products only.

`ProfiledDeviance` wraps the Cython kernels for the optimizer: it holds the
cross-products of the conditioned design (X D, Z T), evaluates the profiled
criterion (-2 log-likelihood, ML or REML, beta and the scale solved out), its
gradient and Hessian in theta, and maps results back to the user's
parametrization.  No method here touches the rows of the data.
"""

import math
import threading
from dataclasses import dataclass

import numpy as np

from . import _core


@dataclass(frozen=True)
class CrossProducts:
    """Sufficient statistics of a model with one grouping factor.

    ztz (n_groups, q, q), ztx (n_groups, q, p), zty (n_groups, q),
    xtx (p, p), xty (p,), yty float, nobs int.
    """

    ztz: np.ndarray
    ztx: np.ndarray
    zty: np.ndarray
    xtx: np.ndarray
    xty: np.ndarray
    yty: float
    nobs: int

    @property
    def n_groups(self):
        return self.ztz.shape[0]

    @property
    def q(self):
        return self.ztz.shape[1]

    @property
    def p(self):
        return self.ztx.shape[2]

    def mapped(self, z_map=None, x_map=None, y_from_x=None):
        """Cross-products of Z U, X W and y + X c (U = z_map, W = x_map, c = y_from_x;
        None: the identity, or no change of y).

        Used to undo a centring (exactly in real arithmetic): the products
        of a centred design carry every digit, and those of the user's design
        are made from them only where they are asked for.
        """
        ztz, ztx, zty = self.ztz, self.ztx, self.zty
        xtx, xty, yty = self.xtx, self.xty, float(self.yty)
        if y_from_x is not None:
            zty = zty + ztx @ y_from_x
            yty = yty + 2.0 * float(y_from_x @ xty) + float(y_from_x @ xtx @ y_from_x)
            xty = xty + xtx @ y_from_x
        if z_map is not None:
            ztz = z_map.T @ ztz @ z_map
            ztx = z_map.T @ ztx
            zty = zty @ z_map
        if x_map is not None:
            ztx = ztx @ x_map
            xtx = x_map.T @ xtx @ x_map
            xty = xty @ x_map
        return CrossProducts(np.ascontiguousarray(ztz), np.ascontiguousarray(ztx),
                             np.ascontiguousarray(zty), np.ascontiguousarray(xtx),
                             np.ascontiguousarray(xty), yty, self.nobs)

    def transformed(self, x_scale, z_transform, y_offset=None):
        """Cross-products of X diag(x_scale), Z z_transform and y - X diag(x_scale) y_offset."""
        t = z_transform
        if np.array_equal(t, np.eye(t.shape[0])):
            # T = I (a random intercept alone): the products below would return
            # the same numbers; Z'Z is shared, not copied (nothing writes to it)
            ztz = self.ztz
            ztx = self.ztx * x_scale
            zty = self.zty.copy()
        else:
            # (plain matmul broadcasting: einsum's path search costs more than the
            # work; in-place updates keep one per-group temporary at a time)
            ztz = t.T @ self.ztz
            ztz = ztz @ t
            ztx = t.T @ self.ztx
            ztx *= x_scale
            zty = self.zty @ t
        xtx = self.xtx * np.outer(x_scale, x_scale)
        xty = self.xty * x_scale
        yty = float(self.yty)
        if y_offset is not None:
            yty = yty - 2.0 * y_offset @ xty + y_offset @ xtx @ y_offset
            zty -= ztx @ y_offset
            xty = xty - xtx @ y_offset
        return CrossProducts(
            np.ascontiguousarray(ztz),
            np.ascontiguousarray(ztx),
            np.ascontiguousarray(zty),
            np.ascontiguousarray(xtx),
            np.ascontiguousarray(xty),
            yty,
            self.nobs,
        )


@dataclass(frozen=True)
class FixedEffectsCentring:
    """X - 1 x_shift' = X A and y - y_shift, with the intercept (column
    `intercept` of X, a column of ones) absorbing both shifts.

    A = I - e_intercept x_shift' (x_shift[intercept] = 0), so det A = 1 and
    the REML criterion of the centred design is the user's.  Coefficients of
    the centred design map back as beta = A beta_c + y_shift e_intercept, their
    covariance as A V A'.
    """

    intercept: int
    x_shift: np.ndarray
    y_shift: float

    def coefficients(self, beta_centred):
        beta = beta_centred.copy()
        i = self.intercept
        beta[i] = beta_centred[i] - float(self.x_shift @ beta_centred) + self.y_shift
        return beta

    def covariance(self, vcov_centred):
        a = np.eye(len(self.x_shift))
        a[self.intercept] -= self.x_shift
        return a @ vcov_centred @ a.T


class Solution(dict):
    """The estimates at theta (a dict); "vcov_fe", the fixed effects' covariance,
    is computed on first access (a fit that is not asked for standard errors
    does not invert X'V^-1 X)."""

    def __missing__(self, key):
        if key != "vcov_fe":
            raise KeyError(key)
        x_scale = self["_x_scale"]
        xvx_inv_s = np.linalg.inv(self["_xvx"])
        vcov_fe = self["scale"] * xvx_inv_s * np.outer(x_scale, x_scale)
        if self["_fe_centring"] is not None:
            vcov_fe = self["_fe_centring"].covariance(vcov_fe)
        self["vcov_fe"] = vcov_fe
        return vcov_fe


class ProfiledDeviance:
    """Profiled -2 log-likelihood (ML) or -2 REML log-likelihood in theta.

    Parameters
    ----------
    stats : CrossProducts
        Cross-products of the user's design.
    structure : CovarianceStructure
    reml : bool
    reparam : Reparametrization
    x_scale : (p,) array
        Column scaling of X for the optimizer.
    fe_centring : FixedEffectsCentring, optional
        How `stats`' X and y were centred (their estimates map back through it).
    log_weights : float
        sum(log(w)) of the prior weights w the products are weighted by (0
        unweighted).

    Notes
    -----
    theta here is the factor of Z T (the conditioned random-effects design).
    Scaling X by D shifts the REML criterion by 2 log|det D|; `value` reports
    the criterion of the user's parametrization.  With prior weights the
    products are those of W^1/2 X, W^1/2 Z and W^1/2 y, an unweighted model
    whose -2 log-likelihood exceeds the weighted one's by sum(log(w)) (the
    Jacobian of y -> W^1/2 y): `shift` includes -sum(log(w)), as lme4's
    deviance does.
    """

    def __init__(self, stats, structure, reml, reparam, x_scale, fe_centring=None,
                 log_weights=0.0):
        self.structure = structure
        self.fe_centring = fe_centring
        self.reml = bool(reml)
        self.reparam = reparam
        self.x_scale = np.asarray(x_scale, dtype=float)
        self.user_stats = stats
        # The response enters as its residual from ordinary least squares: the
        # criterion is unchanged (it depends on y only through y - X beta) but
        # y'V^{-1}y - beta'X'V^{-1}y then cancels far less, so the criterion
        # is smooth to near machine precision and Newton steps can be judged
        # by it all the way to the optimum.
        # (the products of the conditioned design in one compiled call; the
        # least-squares coefficients by Cholesky there, by numpy if X'X is not
        # positive definite)
        args = (stats.ztz, stats.ztx, stats.zty, stats.xtx, stats.xty, float(stats.yty),
                self.x_scale, reparam.t_products)
        cond = _core.condition_products(*args)
        if cond is None:
            xtx_scaled = stats.xtx * np.outer(self.x_scale, self.x_scale)
            xty_scaled = stats.xty * self.x_scale
            try:
                beta_ols = np.linalg.solve(xtx_scaled, xty_scaled)
            except np.linalg.LinAlgError:
                beta_ols = np.zeros(stats.p)
            cond = _core.condition_products(*args, beta_ols)
        self.beta_ols = cond[0]
        self.stats = CrossProducts(*cond[1:], stats.nobs)
        self.nobs = stats.nobs
        self.p = stats.xtx.shape[0]
        self.nu = self.nobs - self.p if self.reml else self.nobs
        shift = 0.0
        if self.reml:
            log_scale = 0
            for v in self.x_scale.tolist():
                log_scale += math.log(v)
            shift = -2.0 * log_scale
        self.shift = shift - log_weights
        self._args = (
            self.stats.ztz, self.stats.ztx, self.stats.zty,
            self.stats.xtx, self.stats.xty, self.stats.yty,
        )
        self._scipy_evaluations = 0
        # The compiled criterion holds scratch buffers and the optimizer's end
        # point: each thread gets its own (a model fitted from several threads
        # at once, and its results used anywhere, never share one); the
        # thread that built the deviance uses the first without a lookup.
        self._owner = threading.get_ident()
        self._criterion = self.make_criterion()
        self._per_thread = threading.local()

    def __getstate__(self):
        # The compiled criteria (scratch buffers, thread-local) are rebuilt
        # from the conditioned products on unpickling.
        state = self.__dict__.copy()
        for key in ("_criterion", "_per_thread", "_owner"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._owner = threading.get_ident()
        self._criterion = self.make_criterion()
        self._per_thread = threading.local()

    def make_criterion(self):
        """A compiled `_core.Criterion` on this model's conditioned cross-products."""
        s = self.structure
        return _core.Criterion(*self._args, float(self.nobs), self.reml, s.theta_rows,
                               s.theta_cols, s.lower_bounds, self.shift)

    @property
    def criterion(self):
        """This thread's compiled `_core.Criterion` (see __init__)."""
        if threading.get_ident() == self._owner:
            return self._criterion
        crit = getattr(self._per_thread, "criterion", None)
        if crit is None:
            crit = self._per_thread.criterion = self.make_criterion()
        return crit

    @property
    def n_evaluations(self):
        return self.criterion.n_evaluations + self._scipy_evaluations

    def value(self, theta):
        return self.criterion.value(theta)

    def value_and_grad(self, theta):
        """Criterion and gradient (for scipy.optimize methods)."""
        self._scipy_evaluations += 1
        lam = self.structure.lam(theta)
        grad = np.zeros((self.structure.q, self.structure.q))   # (per call: threads)
        dev, _ = _core.deviance(lam, *self._args, float(self.nobs), self.reml, grad)
        s = self.structure
        return dev + self.shift, grad[s.theta_rows, s.theta_cols]

    def deviance_and_rss(self, lam):
        """The kernel's criterion (without `shift`) and penalized residual sum of
        squares at the relative covariance factor Lambda (conditioned space)."""
        return _core.deviance(np.ascontiguousarray(lam), *self._args, float(self.nobs),
                              self.reml, None, None)

    def covariance_gradient(self, lam):
        """The criterion's gradient with respect to G = Lambda Lambda' at Lambda
        (conditioned space), as the symmetric S with dD = tr(S dG)."""
        pieces = np.zeros((2, self.structure.q, self.structure.q))
        _, rss = _core.deviance(np.ascontiguousarray(lam), *self._args, float(self.nobs),
                                self.reml, None, pieces)
        return pieces[0] + (self.nu / rss) * pieces[1]

    def pieces(self, lam, directions):
        """Second-derivative pieces of the kernel at Lambda (conditioned space)."""
        return _core.second_derivatives(lam, *self._args, directions)

    def value_grad_hessian(self, theta):
        """Criterion, gradient and Hessian in theta from one kernel call."""
        return self.criterion.value_grad_hessian(theta)

    def hessian(self, theta):
        """Hessian of the profiled criterion in theta (analytic)."""
        return self.value_grad_hessian(theta)[2]

    # -- results in the user's parametrization -----------------------------
    def solution(self, theta):
        """Estimates at theta in the user's units (no per-group work beyond one pass)."""
        s = self.structure
        lam_s = s.lam(theta)
        sol = _core.solve(lam_s, *self._args)
        if sol["info"] != 0:
            raise np.linalg.LinAlgError("X'V^{-1}X is not positive definite at the optimum")
        scale = sol["rss"] / self.nu
        beta = (sol["beta"] + self.beta_ols) * self.x_scale
        if self.fe_centring is not None:
            beta = self.fe_centring.coefficients(beta)
        lam_user = self.reparam.lam_to_user(lam_s)
        # (one effect: the 1 x 1 product, exactly, without matmul's machinery)
        cov_re = scale * (lam_user * lam_user if s.q == 1 else lam_user @ lam_user.T)
        nu = self.nu
        dev = sol["logdet_v"] + nu * (1.0 + math.log(2.0 * math.pi * sol["rss"] / nu))
        if self.reml:
            dev += sol["logdet_xvx"]
        return Solution(
            theta_user=s.theta(lam_user),
            lam_user=lam_user,
            fe_params=beta,
            beta_conditioned=sol["beta"],
            scale=scale,
            cov_re=cov_re,
            deviance=dev + self.shift,
            _xvx=sol["xvx"],
            _x_scale=self.x_scale,
            _fe_centring=self.fe_centring,
        )

    def deviance_and_vcov_fe(self, theta_user, sigma):
        """lmerTest's deviance in (theta, sigma) and the fixed effects' covariance there.

        theta_user is lme4's theta (the factor of cov_re / sigma^2 on the user's Z),
        sigma the residual standard deviation, both free (not profiled): the
        deviance is -2 log-likelihood (-2 REML log-likelihood for a REML fit),

            log|V| + rss / sigma^2 + n log(2 pi sigma^2)
                [+ log|X'V^-1X| - p log(2 pi sigma^2)],

        V relative to sigma^2, and vcov_fe = sigma^2 (X'V^-1X)^-1 in the user's
        parametrization.  At the optimum the deviance is -2 llf.  Satterthwaite's
        degrees of freedom are built from its derivatives (lmm.inference).
        """
        lam_user = self.structure.lam(np.asarray(theta_user, dtype=float))
        lam_s = self.reparam.lam_to_scaled(lam_user)
        sol = _core.solve(np.ascontiguousarray(lam_s), *self._args)
        if sol["info"] != 0:
            raise np.linalg.LinAlgError("X'V^{-1}X is not positive definite")
        sigma2 = float(sigma) ** 2
        log_2pi_s2 = math.log(2.0 * math.pi * sigma2)
        dev = sol["logdet_v"] + sol["rss"] / sigma2 + self.nobs * log_2pi_s2 + self.shift
        if self.reml:
            dev += sol["logdet_xvx"] - self.p * log_2pi_s2
        vcov = sigma2 * np.linalg.inv(sol["xvx"]) * np.outer(self.x_scale, self.x_scale)
        if self.fe_centring is not None:
            vcov = self.fe_centring.covariance(vcov)
        return float(dev), vcov

    def conditional_modes(self, theta, beta_conditioned, scale):
        """BLUPs (n_groups, q) and their conditional covariances (n_groups, q, q)."""
        lam_s = self.structure.lam(theta)
        # the offset response has the same residuals, so its beta gives the same modes
        modes_s, cond_s = _core.conditional_modes(
            lam_s, self.stats.ztz, self.stats.ztx, self.stats.zty, beta_conditioned
        )
        t = self.reparam.t
        modes = modes_s @ t.T
        cond = (t @ cond_s @ t.T) * scale
        return modes, cond

    def variance_information(self, theta):
        """Observed information of the log-likelihood in (free cov_re entries, scale).

        The likelihood is the unprofiled one in the variance parameters (beta
        profiled out under ML, which gives the same variance block of the
        inverse information as the full (beta, cov_re, scale) Hessian at the
        optimum; integrated out under REML).  Returned in the user's units,
        parameters ordered as statsmodels orders cov_re's lower triangle,
        followed by the scale.
        """
        s = self.structure
        lam = s.lam(theta)
        dirs = s.cov_directions()
        pc = self.pieces(lam, dirs)
        rss, nu = pc["rss"], self.nu
        sc = rss / nu
        g_rel = s.cov_vector(lam @ lam.T)          # entries of G = cov_re / scale
        d_ld = np.einsum("ij,aij->a", pc["grad_logdet_v"], dirs)
        d_rss = np.einsum("ij,aij->a", pc["grad_rss"], dirs)
        h_gg = pc["hess_logdet_v"] + pc["hess_rss"] / sc
        first = d_ld + d_rss / sc
        if self.reml:
            h_gg = h_gg + pc["hess_logdet_xvx"]
            first = first + np.einsum("ij,aij->a", pc["grad_logdet_xvx"], dirs)
        # F(G, s) = log|V| [+ log|X'V^-1 X|] + nu log s + rss(G) / s  (= -2 loglik + const)
        k = len(g_rel)
        h = np.zeros((k + 1, k + 1))
        h[:k, :k] = h_gg
        h[:k, k] = h[k, :k] = -d_rss / sc**2
        h[k, k] = -nu / sc**2 + 2 * rss / sc**3
        # change of variables (cov_re, s) -> (G = cov_re / s, s)
        jac = np.zeros((k + 1, k + 1))
        jac[:k, :k] = np.eye(k) / sc
        jac[:k, k] = -g_rel / sc
        jac[k, k] = 1.0
        h_phi = jac.T @ h @ jac
        h_phi[:k, k] += -first / sc**2
        h_phi[k, :k] += -first / sc**2
        h_phi[k, k] += np.sum(first * 2 * g_rel / sc**2)
        info_scaled = 0.5 * h_phi
        # back to the user's Z: cov_re = T cov_s T' is linear in the entries
        m = np.eye(k + 1)
        m[:k, :k] = self.reparam.cov_jacobian()
        m_inv = np.linalg.inv(m)
        return m_inv.T @ info_scaled @ m_inv
