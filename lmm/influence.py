"""Influence and residuals: hat values, Cook's distances, studentized residuals, with
lme4's definitions (``hatvalues.merMod``, ``cooks.distance.merMod``, ``rstudent.merMod``).

The hat matrix maps y to the fitted values X beta + Z b (the conditional fit). With
A = [Z Lambda, X] and the penalty P = diag(I, 0) of the penalized least-squares problem
lme4 solves, H = A (A'A + P)^-1 A', and its diagonal is

    h_i = |L^-1 Lambda' z_i|^2 + |R_X^-T (x_i - R_ZX' L^-1 Lambda' z_i)|^2,

L L' = Lambda'Z'Z Lambda + I, R_ZX = L^-1 Lambda'Z'X, R_X'R_X = X'X - R_ZX'R_ZX (the
two column sums of lme4's hatvalues). With one grouping factor L is block diagonal and
this is done per group from the group's products; with several the system is formed
densely (models with up to 5,000 random effects). Row quantities, unlike everything
else the fit needs: they read the rows once.

The design is used centred (X's columns and Z's at their means where an intercept
absorbs the shift, the covariance mapped alike): H depends only on X's column space
and on Z G Z', and the centred products keep their digits.
"""

import math

import numpy as np
import pandas as pd

MAX_DENSE_EFFECTS = 5000


def _factor(cov):
    """F with F F' = cov (positive semi-definite)."""
    w, v = np.linalg.eigh(cov)
    return v * np.sqrt(np.clip(w, 0.0, None))


def _centred_design(x):
    """X with its non-constant columns centred when it has a column of ones (same
    column space)."""
    ones = np.all(x == 1.0, axis=0)
    if not ones.any():
        return x
    out = x - x.mean(axis=0)
    out[:, ones] = 1.0
    return out


def hat_values_one_factor(results):
    from .dask_frames import requires_rows

    requires_rows(results.model, "hat values (and Cook's distances)")
    """Diagonal of the hat matrix of a one-factor fit (lmm.results.MixedLMResults)."""
    m = results.model
    st = m.statistics                      # products of the centred design
    z = m.exog_re - st.z_shift
    x = m.exog - st.x_shift
    weights = getattr(m, "weights", None)
    if weights is not None:             # (lme4's sqrt(W): the products are weighted)
        root = np.sqrt(np.asarray(weights, dtype=float))[:, None]
        z, x = z * root, x * root
    g_user = results.cov_re.to_numpy() / results.scale
    b_inv = np.eye(m.k_re)                 # Z_c = Z B, B = I - e_0 shift': G_c = B^-1 G B^-T
    if m.z_intercept >= 0:
        b_inv[m.z_intercept] += st.z_shift
    lam = _factor(b_inv @ g_user @ b_inv.T)
    q = m.k_re
    # per group: K_g = L_g^-1 Lambda', L_g L_g' = Lambda' Z_g'Z_g Lambda + I
    inner = np.einsum("ji,gjk,kl->gil", lam, st.ztz, lam) + np.eye(q)
    chol = np.linalg.cholesky(inner)
    k = np.linalg.solve(chol, np.broadcast_to(lam.T, chol.shape))
    codes = m.group_codes
    c = np.einsum("nij,nj->ni", k[codes], z)
    h_z = np.einsum("ni,ni->n", c, c)
    rzx = k @ st.ztx                        # (G, q, p)
    xvx = st.xtx - np.einsum("gqi,gqj->ij", rzx, rzx)
    d = x - np.einsum("nqi,nq->ni", rzx[codes], c)
    sol = np.linalg.solve(xvx, d.T)
    h_x = np.einsum("in,ni->n", sol, d)
    return h_z + h_x


def hat_values_dense(x, z_blocks, covs, scale, weights=None):
    """Diagonal of the hat matrix from dense pieces: x (n, p); z_blocks a list of
    (z (n, q_k), codes (n,), n_levels); covs the terms' cov_re (q_k, q_k); prior
    weights, if any (the rows of X and Z scaled by sqrt(w), as lme4 does)."""
    n = x.shape[0]
    root = None if weights is None else np.sqrt(np.asarray(weights, dtype=float))
    total = sum(z.shape[1] * levels for z, _, levels in z_blocks)
    if total > MAX_DENSE_EFFECTS:
        raise NotImplementedError(
            f"hat values of a model with {total} random effects and several grouping "
            f"factors are computed densely, up to {MAX_DENSE_EFFECTS}")
    cols = []
    for (z, codes, levels), cov in zip(z_blocks, covs):
        zl = z @ _factor(np.asarray(cov, dtype=float) / scale)
        if root is not None:
            zl = zl * root[:, None]
        q = z.shape[1]
        block = np.zeros((n, levels * q))
        for j in range(q):
            block[np.arange(n), codes * q + j] = zl[:, j]
        cols.append(block)
    xc = _centred_design(x)
    a = np.hstack(cols + [xc if root is None else xc * root[:, None]])
    s = a.T @ a
    s[np.arange(total), np.arange(total)] += 1.0
    w = np.linalg.solve(s, a.T)
    return np.einsum("in,ni->n", w, a)


def cooks_distance(hat, pearson, scale, rank):
    """lme4's closed form: (r / (1 - h))^2 h / (sigma^2 rank(X))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (pearson / (1.0 - hat)) ** 2 * hat / (scale * rank)
    out[np.isinf(out)] = np.nan
    return out


def studentized(hat, resid, scale):
    """lme4's rstudent for a linear mixed model: r / (sigma sqrt(1 - h))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.sign(resid) * np.sqrt(resid ** 2 + hat * resid ** 2 / (1.0 - hat))
    out[np.isinf(out)] = np.nan
    return out / math.sqrt(scale)


class InfluenceMeasures:
    """lme4's residual and influence methods for a results class that provides
    `_hat_values()` (the hat matrix's diagonal), `resid` (response residuals, a Series
    indexed by the rows), `scale` and `k_fe` (X has full rank)."""

    def residuals(self, type="response", scaled=False):
        """lme4's ``residuals``: 'response' and 'working' (y minus the conditional fit,
        the offset included), 'pearson' (times sqrt(w) under prior weights); `scaled`
        divides by sigma.  A Series indexed like the data (`lmm.residuals`)."""
        from .residuals import residuals

        return residuals(self, type, scaled)

    def resid_pearson(self):
        """Pearson residuals (lme4's ``residuals(type = "pearson")``: sqrt(w) times the
        response residuals under prior weights)."""
        return self.residuals("pearson")

    def hat_values(self):
        """Leverages: the diagonal of the hat matrix of the conditional fit (lme4's
        ``hatvalues``), a Series indexed like the data.

        Examples
        --------
        >>> import lmm
        >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
        >>> res = lmm.lmer("Weight ~ Time + (1 + Time | Pig)", d)
        >>> h = res.hat_values()
        >>> bool(0 < h.min() and h.max() < 1)
        True
        """
        cached = self.__dict__.get("_hat_cache")
        if cached is None:
            cached = self.__dict__["_hat_cache"] = self._hat_values()
        return pd.Series(cached, index=self.resid.index)

    def cooks_distance(self):
        """Cook's distances (lme4's ``cooks.distance``, its closed form from the hat
        values and Pearson residuals)."""
        h = self.hat_values()
        return pd.Series(cooks_distance(h.to_numpy(), self.resid_pearson().to_numpy(),
                                        self.scale, self.k_fe), index=h.index)

    def resid_studentized(self):
        """Studentized residuals (lme4's ``rstudent``)."""
        h = self.hat_values()
        return pd.Series(studentized(h.to_numpy(), self.resid_pearson().to_numpy(),
                                     self.scale), index=h.index)
