"""Profile-likelihood confidence intervals for variance components (lme4's way).

The covariance parameters are written as lme4 reports them: the standard
deviation of each random effect, the correlation of each pair in a block, and
the residual standard deviation sigma.  For each one, the interval is the set
of values whose profile deviance (the deviance minimized over every other
parameter, fixed effects included) lies within the chi-square(1) quantile of
the minimum, as in lme4's ``confint(m, method = "profile")``.  By default the
deviance profiled is the ML deviance, also for a REML fit (lme4 refits a
REML model by ML before profiling); ``criterion="REML"`` profiles the REML
criterion instead.

Each profile point is a small bounded optimization over the other parameters
on the cross-products (the compiled profiled criterion gives the deviance for
any covariance), and the ends of the interval are found by root finding.
"""

import math

import numpy as np
import pandas as pd
from scipy import special


class _SdCorParametrization:
    """(sd of each effect, correlations within blocks, sigma) <-> (Lambda, scale)."""

    def __init__(self, results):
        s = results.structure
        self.q = s.q
        self.names = [str(n) for n in results.varcorr_names()]
        self.group = results.model.group_name
        self.sd_index = list(range(s.q))
        self.cor_pairs = []
        self.blocks = s.blocks
        for members in s.blocks:
            for a, j in enumerate(members):
                for k in members[a + 1:]:
                    self.cor_pairs.append((j, k))
        self.n = s.q + len(self.cor_pairs) + 1
        lo = [0.0] * s.q + [-1.0] * len(self.cor_pairs) + [0.0]
        hi = [np.inf] * s.q + [1.0] * len(self.cor_pairs) + [np.inf]
        self.lower = np.array(lo)
        self.upper = np.array(hi)

    def lme4_order(self):
        """Positions in phi of lme4's row order: per block, column by column of
        the lower triangle (sd_j, then the correlations below it), sigma last."""
        order = []
        for members in self.blocks:
            for a, j in enumerate(members):
                order.append(j)
                for k in members[a + 1:]:
                    order.append(self.q + self.cor_pairs.index((j, k)))
        return order + [self.n - 1]

    def labels(self):
        out = [f"sd_{self.names[j]}|{self.group}" for j in self.sd_index]
        out += [f"cor_{self.names[k]}.{self.names[j]}|{self.group}" for j, k in self.cor_pairs]
        return out + ["sigma"]

    def from_results(self, res):
        cov = res.cov_re.to_numpy()
        sd = np.sqrt(np.diag(cov))
        cors = [cov[j, k] / (sd[j] * sd[k]) if sd[j] * sd[k] > 0 else 0.0
                for j, k in self.cor_pairs]
        return np.concatenate([sd, cors, [np.sqrt(res.scale)]])

    def cov_and_scale(self, phi):
        sd = phi[:self.q]
        cov = np.diag(sd**2)
        for (j, k), r in zip(self.cor_pairs, phi[self.q:-1]):
            cov[j, k] = cov[k, j] = r * sd[j] * sd[k]
        return cov, phi[-1] ** 2



# (the public name: lmm.bootstrap labels its replicates the same way)
SdCorParametrization = _SdCorParametrization

class _ProfiledDevianceInPhi:
    """-2 log-likelihood (beta profiled) as a function of (sd, cor, sigma)."""

    def __init__(self, dev, param):
        self.dev = dev
        self.param = param
        self.t_inv = dev.reparam.t_inv

    def __call__(self, phi):
        cov, scale = self.param.cov_and_scale(phi)
        if not scale > 0:
            return np.inf
        # relative covariance of the conditioned design: G_s = T^-1 (cov / scale) T^-T
        g_s = self.t_inv @ (cov / scale) @ self.t_inv.T
        w, v = np.linalg.eigh(0.5 * (g_s + g_s.T))
        if w[0] < -1e-10 * max(1.0, w[-1]):
            return np.inf                       # |correlation| > 1 in effect
        f = v * np.sqrt(np.clip(w, 0, None))
        lam = np.linalg.qr(f.T, mode="r").T
        d = self.dev
        dev, rss = d.deviance_and_rss(lam)
        if not np.isfinite(dev):
            return np.inf
        nu = d.nu
        logdets = dev - nu * (1.0 + np.log(2.0 * np.pi * rss / nu))
        return logdets + nu * np.log(2.0 * np.pi * scale) + rss / scale + d.shift


def _profile_value(fun, phi_hat, i, x, lower, upper, start):
    """min over the other parameters of fun with parameter i held at x.

    The others are optimized in unconstrained coordinates (log of standard
    deviations, atanh of correlations) by Powell's method from `start` (the last
    point's optimum, close by): on a crossed model of 10^6 rows it needs a third
    fewer evaluations than Nelder-Mead at the same accuracy (each a pass over the
    level pairs), and scipy's bounded quasi-Newton costs more per iteration than
    this small problem.
    """
    from scipy import optimize  # (0.15 s at import: when needed)
    free = np.array([k for k in range(len(phi_hat)) if k != i])
    is_cor = np.isfinite(lower[free]) & (lower[free] < 0)

    def to_u(phi_free):
        return np.where(is_cor, np.arctanh(np.clip(phi_free, -1 + 1e-12, 1 - 1e-12)),
                        np.log(np.maximum(phi_free, 1e-300)))

    def sub(u):
        phi = phi_hat.copy()
        phi[i] = x
        phi[free] = np.where(is_cor, np.tanh(u), np.exp(u))
        return fun(phi)

    u0 = to_u(start[free])
    best = optimize.minimize(sub, u0, method="Powell", options=dict(xtol=1e-7, ftol=1e-14))
    phi = phi_hat.copy()
    phi[i] = x
    phi[free] = np.where(is_cor, np.tanh(best.x), np.exp(best.x))
    return float(best.fun), phi


def check_level(level):
    """`level` as a float strictly between 0 and 1, or a ValueError naming it.

    Examples
    --------
    >>> check_level(0.9)
    0.9
    """
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise ValueError(f"level must be a number in (0, 1), got {level!r}") from None
    if isinstance(level, bool) or not 0.0 < value < 1.0:
        raise ValueError(f"level must be in (0, 1) (0.95 for 95% intervals), got {level!r}")
    return value


def profile_intervals(results, level=0.95, criterion="ML"):
    """Profile confidence intervals of lme4's variance-covariance parameters.

    Returns a DataFrame indexed like lme4's confint rows (``sd_(Intercept)|Pig``,
    ``cor_Time.(Intercept)|Pig``, ``sd_Time|Pig``, ``sigma``) with columns
    estimate, lower, upper (on the sd/correlation scale).
    """
    level = check_level(level)
    if criterion not in ("ML", "REML"):
        raise ValueError("criterion must be 'ML' or 'REML'")
    res = results
    if (criterion == "ML") == res.reml:
        res = res.model.fit(reml=criterion == "REML", free=res.free)
    param = _SdCorParametrization(res)
    fun = _ProfiledDevianceInPhi(res.criterion, param)
    phi_hat = param.from_results(res)
    dev_min = res.criterion.value(res.optimum_check.theta)
    cut = special.chdtri(1, 1.0 - level)
    crit = res.criterion.make_criterion()
    theta_hat = res.optimum_check.theta
    rows = []
    for i in param.lme4_order():
        ends = []
        for direction in (-1, 1):
            if i < param.q or i == param.n - 1:
                # sd_j or sigma: the compiled criterion holds the variance (or
                # the scale) fixed and minimizes over theta by Newton steps
                cache = {"theta": theta_hat.copy()}

                def excess(x, i=i, cache=cache):
                    if not x > 0:
                        return np.inf
                    if i == param.n - 1:
                        crit.set_scale_profile(x * x)
                    else:
                        crit.set_profile(x * x, res.criterion.reparam.t[i])
                    theta, value, _ = crit.minimize(cache["theta"])
                    cache["theta"] = theta
                    return value - dev_min - cut

                ends.append(_find_end(excess, phi_hat[i], direction, param.lower[i],
                                      param.upper[i], cut))
            else:
                # a correlation: scale-free, so the endpoint is the extreme of
                # the correlation over the region where the profiled deviance
                # stays within the cut-off (a small constrained problem)
                pair = param.cor_pairs[i - param.q]
                end = _correlation_end(res.criterion, pair, theta_hat, dev_min + cut, direction)
                if end is None:
                    end = _profile_end(fun, phi_hat, i, param.lower, param.upper,
                                       dev_min + cut, direction, cut)
                ends.append(end)
        rows.append((phi_hat[i], ends[0], ends[1]))
    labels = param.labels()
    out = pd.DataFrame(rows, index=[labels[i] for i in param.lme4_order()],
                       columns=["estimate", "lower", "upper"])
    return out


def _correlation_end(dev, pair, theta_hat, limit, direction):
    """max (direction = 1) or min (-1) of a correlation over
    {theta : profiled deviance(theta) <= limit}, by SLSQP; None if it fails."""
    from scipy import optimize  # (0.15 s at import: when needed)
    j, k = pair
    t = dev.reparam.t
    s = dev.structure

    def rho(theta):
        r = t @ s.lam(theta)
        den = np.sqrt((r[j] @ r[j]) * (r[k] @ r[k]))
        return float(r[j] @ r[k] / den) if den > 0 else 0.0

    def within(theta):
        return limit - dev.value(theta)

    def within_jac(theta):
        return -dev.value_and_grad(theta)[1]

    bounds = [(lo if np.isfinite(lo) else None, None) for lo in s.lower_bounds]
    theta = theta_hat
    for _ in range(4):
        res = optimize.minimize(
            lambda th: -direction * rho(th), theta, method="SLSQP", bounds=bounds,
            constraints=[{"type": "ineq", "fun": within, "jac": within_jac}],
            options=dict(ftol=1e-14, maxiter=500),
        )
        theta = res.x
        if _is_constrained_extreme(rho, dev, theta, within(theta), s.lower_bounds):
            return float(np.clip(rho(theta), -1.0, 1.0))
    return None


def _is_constrained_extreme(rho, dev, theta, slack, lower, h=1e-7):
    """KKT check at an endpoint: the deviance constraint active and the
    gradients of the correlation and of the deviance parallel (on the
    parameters not held at a bound)."""
    if abs(slack) > 1e-6:
        return False
    free = ~(np.isfinite(lower) & (theta <= lower))
    g_dev = dev.value_and_grad(theta)[1][free]
    g_rho = np.array([(rho(theta + h * e) - rho(theta - h * e)) / (2 * h)
                      for e in np.eye(len(theta))])[free]
    den = np.linalg.norm(g_dev) * np.linalg.norm(g_rho)
    return den > 0 and abs(g_dev @ g_rho) / den > 1 - 1e-6


def _profile_end(fun, phi_hat, i, lower, upper, limit, direction, cut=None):
    """The end beyond phi_hat[i] (in `direction`) where the deviance `fun`,
    minimized over the other parameters (`_profile_value`, each point started
    from the last), reaches `limit`."""
    cache = {"start": phi_hat.copy()}

    def excess(x):
        val, phi = _profile_value(fun, phi_hat, i, x, lower, upper, cache["start"])
        cache["start"] = phi
        return val - limit

    return _find_end(excess, phi_hat[i], direction, lower[i], upper[i], cut)


def _find_end(excess, x_hat, direction, lo, hi, cut=None):
    """The point beyond x_hat (in `direction`) where excess crosses zero.

    With `cut` (excess = the deviance's rise over its minimum, less cut): secant
    steps on zeta = sqrt(excess + cut), the profile's signed root, which is nearly
    linear in the parameter (exactly so for a quadratic deviance): from a first step
    of a hundredth of the estimate, a few profile evaluations reach the end, where
    bracketing and Brent's method (the fallback, and the method without `cut`) take
    ten to twenty.  Each evaluation is a fit: on 2 x 10^5 groups, a fifth of a
    second."""
    if cut is not None:
        end = _secant_end(excess, x_hat, direction, lo, hi, cut)
        if end is not None:
            return end
    return _bracketed_end(excess, x_hat, direction, lo, hi)


def _secant_end(excess, x_hat, direction, lo, hi, cut, tol=1e-9, max_steps=12):
    """`_find_end`'s secant steps on zeta; None when they do not settle (the
    caller brackets instead)."""
    target = math.sqrt(cut)
    edge = lo if direction < 0 else hi
    x_prev, z_prev = x_hat, 0.0
    x = x_hat + direction * max(abs(x_hat) * 1e-2, 1e-4)
    for _ in range(max_steps):
        if (x - edge) * direction >= 0:
            x = edge
        f = excess(x)
        if not np.isfinite(f):
            return None
        if abs(f) <= tol:
            return float(x)
        if x == edge and f < 0:
            return float(edge)          # within the cut-off to the bound
        z = math.sqrt(max(f + cut, 0.0))
        slope = (z - z_prev) / (x - x_prev) if x != x_prev else 0.0
        if not slope * direction > 0:       # (zeta must rise outward)
            return None
        step = (target - z) / slope
        # (at most four times the distance so far, outward)
        limit = 4.0 * abs(x - x_hat)
        step = float(np.clip(step, -limit, limit))
        if abs(step) <= 1e-10 * max(1.0, abs(x)):
            return float(x)             # (converged in x: the profile's own noise is left)
        x_prev, z_prev, x = x, z, x + step
        if (x - x_hat) * direction <= 0:
            return None
    return None


def _bracketed_end(excess, x_hat, direction, lo, hi):
    from scipy import optimize  # (0.15 s at import: when needed)
    step = max(abs(x_hat) * 0.1, 1e-3)
    a = x_hat
    for _ in range(60):
        b = a + direction * step
        if direction < 0 and b <= lo:
            b = lo
        if direction > 0 and b >= hi:
            b = hi
        fb = excess(b)
        if fb >= 0:
            return optimize.brentq(excess, min(a, b), max(a, b), xtol=1e-10, rtol=1e-10)
        if b in (lo, hi):
            return b                # the profile stays within the cut-off to the bound
        a = b
        step *= 2.0
    return np.nan


# ---------------------------------------------------------------------------
# several random-effect terms (lmm.several_factors)
# ---------------------------------------------------------------------------

class _MultiSdCorParametrization:
    """(sd and correlations of every term's blocks, sigma) <-> (theta, scale) of a
    MultiTermModel, in lme4's row order: term by term (the model's order, most
    levels first), block by block, column by column (sd_j, then the
    correlations below it), sigma last."""

    def __init__(self, model):
        self.model = model
        self.entries, self.labels = [], []
        for ti, term in enumerate(model.terms):
            for b, members in enumerate(term.structure.blocks):
                grp = term.group + (f".{b}" if b else "")
                for a, j in enumerate(members):
                    self.entries.append((ti, j, j))
                    self.labels.append(f"sd_{term.names[j]}|{grp}")
                    for k in members[a + 1:]:
                        self.entries.append((ti, j, k))
                        self.labels.append(f"cor_{term.names[k]}.{term.names[j]}|{grp}")
        self.labels.append("sigma")
        self.n = len(self.entries) + 1
        is_cor = np.array([j != k for _, j, k in self.entries] + [False])
        self.lower = np.where(is_cor, -1.0, 0.0)
        self.upper = np.where(is_cor, 1.0, np.inf)

    def from_results(self, res):
        # (the solution's arrays, in the model's term order: the DataFrames of
        # res.cov_re cost more than the refit itself in a bootstrap)
        covs = res.solution["cov_re"]
        phi = []
        for ti, j, k in self.entries:
            cov = covs[ti]
            if j == k:
                phi.append(np.sqrt(cov[j, j]))
            else:
                den = np.sqrt(cov[j, j] * cov[k, k])
                phi.append(cov[j, k] / den if den > 0 else 0.0)
        return np.array(phi + [np.sqrt(res.scale)])

    def theta_and_scale(self, phi):
        """theta of the relative covariances cov_k / sigma^2, or None if a block is
        not positive semi-definite (|correlation| > 1 in effect)."""
        scale = phi[-1] ** 2
        if not scale > 0:
            return None, scale
        model = self.model
        sds = [np.zeros(t.q) for t in model.terms]
        for (ti, j, k), value in zip(self.entries, phi[:-1]):
            if j == k:
                sds[ti][j] = value
        rel = [np.diag(sd ** 2) / scale for sd in sds]
        for (ti, j, k), value in zip(self.entries, phi[:-1]):
            if j != k:
                rel[ti][j, k] = rel[ti][k, j] = value * sds[ti][j] * sds[ti][k] / scale
        thetas = []
        for term, g in zip(model.terms, rel):
            if term.q == 1:
                thetas.append(np.sqrt(g[0]))
                continue
            w = np.linalg.eigvalsh(g)
            if w[0] < -1e-10 * max(1.0, w[-1]):
                return None, scale
            thetas.append(term.structure.theta_from_cov(g))
        return np.concatenate(thetas), scale


class _MultiDevianceInPhi:
    """-2 log-likelihood (or the REML criterion), beta profiled, sigma not, as a
    function of (sd, cor, sigma), from the compiled criterion's profiled value
    and residual sum of squares at theta."""

    def __init__(self, model, param, reml):
        self.model, self.param, self.reml = model, param, reml
        self.nu = model.nobs - model.k_fe if reml else model.nobs

    def __call__(self, phi):
        theta, scale = self.param.theta_and_scale(phi)
        if theta is None:
            return np.inf
        crit = self.model.criterion
        dev = crit.deviance(theta, self.reml)
        if not np.isfinite(dev):
            return np.inf
        rss, nu = crit.rss, self.nu
        logdets = dev - nu * (1.0 + np.log(2.0 * np.pi * rss / nu))
        return logdets + nu * np.log(2.0 * np.pi * scale) + rss / scale


def multi_profile_intervals(results, level=0.95, criterion="ML"):
    """Profile confidence intervals of the variance-covariance parameters of a
    model with several random-effect terms (lme4's confint(method = "profile")).

    Each end is where the deviance, minimized over every other parameter (the
    fixed effects profiled), exceeds its minimum by the chi-square(1) quantile;
    the other parameters are optimized in unconstrained coordinates
    (`_profile_value`) and the ends found by root finding (`_find_end`).
    """
    level = check_level(level)
    if criterion not in ("ML", "REML"):
        raise ValueError("criterion must be 'ML' or 'REML'")
    res = results
    reml = criterion == "REML"
    if res.reml != reml:
        import warnings

        from .exceptions import SingularFitWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SingularFitWarning)
            res = res.model.fit(reml=reml)
    param = _MultiSdCorParametrization(res.model)
    fun = _MultiDevianceInPhi(res.model, param, reml)
    phi_hat = param.from_results(res)
    dev_min = fun(phi_hat)
    cut = special.chdtri(1, 1.0 - level)
    rows = []
    for i in range(param.n):
        ends = [_profile_end(fun, phi_hat, i, param.lower, param.upper, dev_min + cut, d, cut)
                for d in (-1, 1)]
        rows.append((phi_hat[i], ends[0], ends[1]))
    return pd.DataFrame(rows, index=param.labels, columns=["estimate", "lower", "upper"])


def fixed_effect_intervals(ml_results, deviance_at, level=0.95):
    """lme4's profile intervals of the fixed effects (``confint(method = "profile")``'s
    fixed-effect rows), for either engine.

    `ml_results` is the ML fit (lme4 refits a REML fit by ML and profiles the ML
    deviance, centred on the ML estimates); `deviance_at(j, value, start)` is
    the model's ``fixed_effect_profile_deviance`` (called with `start=`): the ML
    deviance minimized over every other parameter with fixed effect j held at
    value, and a warm start for the next call.  Each end is where that deviance exceeds the
    minimum by the chi-square(1) quantile, found by bracketing outwards in
    steps of the Wald half-width and root finding; lme4 interpolates a spline
    through its profile points instead, so the two agree to the spline's
    accuracy (about 1e-5 relative).

    Returns a DataFrame indexed by the fixed-effect names with columns
    estimate (the ML estimate), lower, upper.
    """
    from scipy import optimize  # (0.15 s at import: when needed)
    level = check_level(level)
    cut = special.chdtri(1, 1.0 - level)
    dev_min = -2.0 * float(ml_results.llf)
    names = list(ml_results.fe_params.index)
    beta = np.asarray(ml_results.fe_params, dtype=float)
    se = np.asarray(ml_results.bse_fe, dtype=float)
    rows = []
    for j in range(len(names)):
        ends = []
        for direction in (-1.0, 1.0):
            cache = {"start": None}

            def excess(value, j=j, cache=cache):
                dev, cache["start"] = deviance_at(j, value, start=cache["start"])
                return dev - dev_min - cut

            step = np.sqrt(cut) * se[j] if np.isfinite(se[j]) and se[j] > 0 else \
                max(abs(beta[j]), 1.0)
            inner, outer = beta[j], beta[j] + direction * step
            end = np.nan
            for _ in range(40):
                if excess(outer) >= 0:
                    lo, hi = sorted((inner, outer))
                    end = optimize.brentq(excess, lo, hi, xtol=1e-12 * max(1.0, abs(outer)),
                                          rtol=1e-12)
                    break
                inner, outer = outer, outer + direction * step
                step *= 1.5
            ends.append(end)
        rows.append((beta[j], ends[0], ends[1]))
    return pd.DataFrame(rows, index=names, columns=["estimate", "lower", "upper"])


def conf_int_re(results, intervals, level=0.95, method="profile", criterion="ML"):
    """Profile intervals of a fit, with the variance-scale columns added
    (var_estimate, var_lower, var_upper: squares of the sd rows, NaN for
    correlations).  `intervals` is the engine's interval function
    (`profile_intervals` for one grouping factor, `multi_profile_intervals` for
    several), passed by the results class so that this module knows no engine.
    The results classes' ``conf_int_re`` document it."""
    level = check_level(level)
    if method != "profile":
        raise NotImplementedError("only method='profile' is implemented")
    out = intervals(results, level=level, criterion=criterion)
    is_cor = out.index.str.startswith("cor_")
    for col in ("estimate", "lower", "upper"):
        out["var_" + col] = np.where(is_cor, np.nan, out[col] ** 2)
    return out


# (the public name: lmm.bootstrap labels several-factor replicates the same way)
MultiSdCorParametrization = _MultiSdCorParametrization


def multi_profile_variance(results, term_index, column, grid):
    """Profile log-likelihood of one variance of a model with several random-effect
    terms: for each value v of `grid` (on the variance scale), the highest
    log-likelihood (REML criterion's for a REML fit) with the variance of random
    effect `column` of term `term_index` (the model's term order) held at v and
    every other parameter free (the fixed effects profiled).

    Each point is minimized from two starts (the estimate and the previous
    point outward from it, a warm start along the path); the better end is
    kept.  Returns an (len(grid), 2) array: v and the profile log-likelihood.
    """
    model = results.model
    param = _MultiSdCorParametrization(model)
    i = param.entries.index((term_index, column, column))
    fun = _MultiDevianceInPhi(model, param, results.reml)
    phi_hat = param.from_results(results)
    values = np.asarray(grid, dtype=float)
    out = np.full((len(values), 2), np.nan)
    out[:, 0] = values
    estimate = phi_hat[i] ** 2
    for side in (values < estimate, values >= estimate):
        idx = np.flatnonzero(side)
        # outward from the estimate, each point warm-started from the last
        idx = idx[np.argsort(np.abs(values[idx] - estimate))]
        start = phi_hat
        for j in idx:
            x = float(np.sqrt(values[j]))
            best = None
            for s in (start, phi_hat):
                value, phi = _profile_value(fun, phi_hat, i, x, param.lower, param.upper, s)
                if best is None or value < best[0]:
                    best = (value, phi)
            out[j, 1] = -0.5 * best[0]
            start = best[1]
    return out
