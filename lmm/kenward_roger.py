"""Kenward-Roger inference on the fixed effects: pbkrtest's adjusted covariance and df.

Kenward and Roger (1997, Biometrics 53, 983-997), with pbkrtest's definitions
(Halekoh and Hojsgaard, 2014, J. Stat. Softw. 59(9)):

- the covariance of y is linear in its parameters sigma_i: V = sum_i sigma_i G_i, the
  sigma_i being the free entries of each term's cov_re and the residual variance
  (G_i = Z (E_jk + E_kj) Z' for entry (j, k) of cov_re, G = I for the residual), so
  the second derivatives R_ij of V vanish;
- Phi = (X' V^-1 X)^-1 at the fitted parameters,
  P_i = -X' V^-1 G_i V^-1 X,  Q_ij = X' V^-1 G_i V^-1 G_j V^-1 X;
- the REML expected information is I_ij = tr(Pm G_i Pm G_j) / 2 with
  Pm = V^-1 - V^-1 X Phi X' V^-1, that is
  2 I_ij = tr(V^-1 G_i V^-1 G_j) - 2 tr(Phi Q_ij) + tr(Phi P_i Phi P_j);
  W = I^-1 (a pseudo-inverse when I is singular, as pbkrtest);
- Phi_A = Phi + 2 Phi (sum_ij W_ij (Q_ij - P_i Phi P_j)) Phi;
- for a contrast matrix L of rank q, Theta = L' (L Phi L')^-1 L and
  A1 = sum_ij W_ij tr(Theta Phi P_i Phi) tr(Theta Phi P_j Phi),
  A2 = sum_ij W_ij tr(Theta Phi P_i Phi Theta Phi P_j Phi), then B, g, c1..c3, E*, V*,
  rho, the denominator df m = 4 + (q + 2) / (q rho - 1) and the scaling
  lambda = m (1 - A2 / q) / (m - 2) of the Wald statistic
  F = (L beta)' (L Phi_A L')^-1 (L beta) / q.

One grouping factor makes V block-diagonal: every sum above runs over the groups,
each an n_g x n_g block (groups of one size are stacked and done in one batch).
Several grouping factors (crossed or nested) make V dense: up to `MAX_DENSE_ROWS`
rows it is formed and inverted as one n x n matrix.
"""

import math

import numpy as np
from scipy import special

# the largest data set whose n x n covariance is formed when V is not block-diagonal
# (3000 rows: 72 MB per n x n matrix, a few seconds of O(n^3) work)
MAX_DENSE_ROWS = 3000

# groups of one size are done in batches of about this many n_g x n_g entries (8 MB
# per stacked array; a few such arrays per parameter are alive at once)
BATCH_ENTRIES = 1_000_000

# pbkrtest's threshold on the smallest |eigenvalue| of 2 I before a pseudo-inverse
_SINGULAR_INFORMATION = 1e-10


class _Term:
    """One random-effect term of a block: u (batch, n, levels * q) its design, level
    by level, and the unit matrices E of its free covariance entries."""

    def __init__(self, u, q, units):
        self.u = u
        self.q = q
        self.levels = u.shape[2] // q
        self.units = units


def _units(structure):
    """E_jk + E_kj (E_jj on the diagonal) for the free entries of a cov_re."""
    out = []
    for j, k in zip(structure.cov_rows, structure.cov_cols):
        e = np.zeros((structure.q, structure.q))
        e[j, k] = e[k, j] = 1.0
        out.append(e)
    return out


def _apply_unit(term, unit, a):
    """(I_levels kron E) a for a (batch, levels * q, c): E applied level by level."""
    b, _, c = a.shape
    blocks = a.reshape(b, term.levels, term.q, c)
    return np.einsum("jk,blkc->bljc", unit, blocks).reshape(b, term.levels * term.q, c)


class _Pieces:
    """The sums over the blocks of V that Kenward-Roger needs: X'V^-1X, the P_i, Q_ij
    and tr(V^-1 G_i V^-1 G_j), the parameters ordered term by term, residual last."""

    def __init__(self, p, n_par):
        self.xvx = np.zeros((p, p))
        self.p = np.zeros((n_par, p, p))
        self.q = np.zeros((n_par, n_par, p, p))
        self.ktrace = np.zeros((n_par, n_par))

    def add(self, x, vinv, terms):
        """Add a batch of blocks: x (b, n, p), vinv (b, n, n), terms [_Term]."""
        vx = vinv @ x
        self.xvx += np.einsum("bni,bnj->ij", x, vx)
        cross = _cross_products(vinv, terms)
        # per parameter: its term (None: the residual, U = I), C = U' V^-1 X and M_i C
        c_of = {s: np.swapaxes(term.u, 1, 2) @ vx for s, term in enumerate(terms)}
        c_of[None] = vx
        params = [(s, unit) for s, term in enumerate(terms) for unit in term.units]
        params.append((None, None))
        mc = [c_of[s] if unit is None else _apply_unit(terms[s], unit, c_of[s])
              for s, unit in params]
        # M_i D_st for the traces tr(M_i D_st M_j D_ts)
        keys = list(range(len(terms))) + [None]
        scaled = [{t: cross[s, t] if unit is None else _apply_unit(terms[s], unit, cross[s, t])
                   for t in keys} for s, unit in params]
        for i, (s, _) in enumerate(params):
            self.p[i] -= np.einsum("bki,bkj->ij", c_of[s], mc[i])
            for j in range(i, len(params)):
                t = params[j][0]
                qij = np.einsum("bki,bkj->ij", mc[i], cross[s, t] @ mc[j])
                tr = float(np.einsum("bkl,blk->", scaled[i][t], scaled[j][s]))
                self.q[i, j] += qij
                self.ktrace[i, j] += tr
                if j != i:
                    self.q[j, i] += qij.T
                    self.ktrace[j, i] += tr


def _cross_products(vinv, terms):
    """{(s, t): U_s' V^-1 U_t} over the terms and the residual (key None, U = I)."""
    vu = {s: vinv @ term.u for s, term in enumerate(terms)}
    cross = {(None, None): vinv}
    for s, term in enumerate(terms):
        ut = np.swapaxes(term.u, 1, 2)
        for t in range(len(terms)):
            cross[s, t] = ut @ vu[t]
        cross[s, None] = np.swapaxes(vu[s], 1, 2)
        cross[None, s] = vu[s]
    return cross


def _one_factor_pieces(results):
    from .dask_frames import requires_rows

    requires_rows(results.model, "Kenward-Roger's degrees of freedom")
    """_Pieces of a one-factor fit, V block by block (groups of one size batched)."""
    model = results.model
    x, z = _root_weighted(model, np.asarray(model.exog, dtype=float),
                          np.asarray(model.exog_re, dtype=float))
    cov = np.asarray(results.cov_re, dtype=float)
    scale = float(results.scale)
    offsets = np.asarray(model.group_offsets)
    order = np.asarray(model.row_order)
    units = _units(results.structure)
    pieces = _Pieces(x.shape[1], len(units) + 1)
    sizes = np.diff(offsets)
    if sizes.max(initial=0) > MAX_DENSE_ROWS:
        raise NotImplementedError(
            f"Kenward-Roger forms each group's covariance of y as a dense matrix; the "
            f"largest group has {sizes.max()} rows, more than the {MAX_DENSE_ROWS} allowed")
    for size in np.unique(sizes):
        if size == 0:
            continue
        starts = offsets[:-1][sizes == size]
        # batches of at most ~BATCH_ENTRIES entries per n_g x n_g stack (bounded memory)
        per_batch = max(1, BATCH_ENTRIES // (size * size))
        for first in range(0, len(starts), per_batch):
            batch = starts[first:first + per_batch]
            rows = order[batch[:, None] + np.arange(size)]          # (groups, size)
            xb, zb = x[rows], z[rows]
            v = zb @ cov @ np.swapaxes(zb, 1, 2) + scale * np.eye(size)
            pieces.add(xb, _inverse_spd(v), [_Term(zb, z.shape[1], units)])
    return pieces


def _root_weighted(model, *arrays):
    """The arrays' rows scaled by sqrt(w) under prior weights: V = Z G Z' + s2 W^-1 is
    then Z* G Z*' + s2 I, and every quantity Kenward-Roger forms (X'V^-1X, the P_i,
    Q_ij, the traces) is unchanged by the congruence.  (pbkrtest ignores prior
    weights: its residual covariance is s2 I whatever the fit's weights.)"""
    weights = getattr(model, "weights", None)
    if weights is None:
        return arrays
    root = np.sqrt(np.asarray(weights, dtype=float))[:, None]
    return tuple(a * root for a in arrays)


def _term_design(term):
    """The n x (levels * q) design of a term, level by level."""
    n, q = term.z.shape
    u = np.zeros((n, term.n_levels * q))
    cols = np.asarray(term.codes)[:, None] * q + np.arange(q)
    np.put_along_axis(u, cols, term.z, axis=1)
    return u


def _several_factor_pieces(results):
    from .dask_frames import requires_rows

    requires_rows(results.model, "Kenward-Roger's degrees of freedom")
    """_Pieces of a several-factor fit from the dense n x n V."""
    model = results.model
    n = model.nobs
    if n > MAX_DENSE_ROWS:
        raise NotImplementedError(
            f"Kenward-Roger with several grouping factors forms the dense n x n covariance "
            f"of y; this model has {n} rows, more than the {MAX_DENSE_ROWS} allowed")
    (x,) = _root_weighted(model, np.asarray(model.exog, dtype=float))
    v = float(results.scale) * np.eye(n)
    terms = []
    for term in model.terms:
        (u,) = _root_weighted(model, _term_design(term))
        cov = np.asarray(results.cov_re[term.group], dtype=float)
        big = np.kron(np.eye(term.n_levels), cov)
        v += u @ big @ u.T
        terms.append(_Term(u[None], term.q, _units(term.structure)))
    vinv = _inverse_spd(v[None])
    pieces = _Pieces(x.shape[1], sum(len(t.units) for t in terms) + 1)
    pieces.add(x[None], vinv, terms)
    return pieces


def _inverse_spd(v):
    """Inverses of a stack of symmetric positive definite matrices (V = ... + s2 I with
    s2 > 0), symmetrized. (LU through numpy's inv: faster here than LAPACK's potri.)"""
    inv = np.linalg.inv(v)
    return 0.5 * (inv + np.swapaxes(inv, -1, -2))


def _adjusted(pieces):
    """(Phi, Phi_A, P, W) from the summed pieces (pbkrtest's vcovAdj)."""
    phi = np.linalg.inv(pieces.xvx)
    phi = 0.5 * (phi + phi.T)
    pp, qq = pieces.p, pieces.q
    k = len(pp)
    phi_p = phi @ pp                                        # (k, p, p): Phi P_i
    info2 = np.empty((k, k))                                # 2 I
    for i in range(k):
        for j in range(i, k):
            info2[i, j] = info2[j, i] = (pieces.ktrace[i, j] - 2.0 * np.sum(phi * qq[i, j])
                                         + np.sum(phi_p[i] * phi_p[j].T))
    if np.min(np.abs(np.linalg.eigvalsh(info2))) > _SINGULAR_INFORMATION:
        w = 2.0 * np.linalg.inv(info2)
    else:
        w = 2.0 * np.linalg.pinv(info2)
    w = 0.5 * (w + w.T)
    u = np.zeros_like(phi)
    for i in range(k):
        for j in range(k):
            u += w[i, j] * (qq[i, j] - pp[i] @ phi @ pp[j])
    phi_a = phi + 2.0 * phi @ u @ phi
    return phi, 0.5 * (phi_a + phi_a.T), pp, w


def _div_zero(a, b, tol=1e-14):
    """a / b, and 1 when both are (nearly) zero (pbkrtest's .divZero)."""
    return 1.0 if abs(a) < tol and abs(b) < tol else a / b


def kr_ddf(L, phi, p_list, w):
    """pbkrtest's denominator df and F scaling of a contrast (its ``.KR_adjust``).

    Parameters
    ----------
    L : (q, p) ndarray
        Contrast matrix of full row rank q.
    phi : (p, p) ndarray
        The unadjusted covariance (X' V^-1 X)^-1.
    p_list : sequence of (p, p) ndarrays
        The P_i, one per variance parameter.
    w : (k, k) ndarray
        The inverse expected REML information of the variance parameters.

    Returns
    -------
    (ddf, F scaling lambda, A1, A2). Degenerate cases (A2 = 0) give NaN or inf, as in R.
    """
    q = L.shape[0]
    theta = L.T @ np.linalg.solve(L @ phi @ L.T, L)
    u = [theta @ phi @ p @ phi for p in p_list]
    tr_u = np.array([np.trace(ui) for ui in u])
    k = len(u)
    a1 = np.float64(tr_u @ w @ tr_u)
    a2 = np.float64(0.0)
    for i in range(k):
        for j in range(k):
            a2 += w[i, j] * np.sum(u[i] * u[j].T)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _kr_ddf_from(q, a1, a2)


def _kr_ddf_from(q, a1, a2):
    """(ddf, scaling, A1, A2) from pbkrtest's A1, A2 (numpy floats: R's inf and NaN)."""
    b = (a1 + 6.0 * a2) / (2.0 * q)
    g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
    denom = 3.0 * q + 2.0 * (1.0 - g)
    c1, c2, c3 = g / denom, (q - g) / denom, (q + 2 - g) / denom
    v0 = 1.0 + c1 * b
    v1 = 1.0 - c2 * b
    v2 = 1.0 - c3 * b
    if abs(v0) < 1e-10:
        v0 = np.float64(0.0)
    rho = _div_zero(1.0 - a2 / q, v1) ** 2 * v0 / (q * v2)
    ddf = 4.0 + (q + 2.0) / (q * rho - 1.0)
    scaling = 1.0 if abs(ddf - 2.0) < 0.01 else ddf * (1.0 - a2 / q) / (ddf - 2.0)
    return float(ddf), float(scaling), float(a1), float(a2)


class KenwardRoger:
    """Kenward-Roger adjusted covariance of the fixed effects, t and F tests (pbkrtest's
    ``vcovAdj``, ``Lb_ddf`` and ``KRmodcomp``; lmerTest's ``ddf = "Kenward-Roger"``).

    Parameters
    ----------
    results : MixedLMResults or MultiTermResults
        A REML fit (Kenward-Roger is defined for REML only; an ML fit raises ValueError).

    Notes
    -----
    The adjusted covariance is computed once, on first use. With one grouping factor
    V^-1 is formed group by group; with several, V is dense and formed as one n x n
    matrix, up to `MAX_DENSE_ROWS` rows (NotImplementedError above).

    Examples
    --------
    >>> import lmm
    >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
    >>> res = lmm.lmer("Weight ~ Time + (1 | Pig)", d)
    >>> kr = KenwardRoger(res)
    >>> round(kr.test([0, 1])["df"], 1)
    788.0
    """

    def __init__(self, results):
        if not getattr(results, "reml", False):
            raise ValueError("Kenward-Roger needs a REML fit (pbkrtest's and lmerTest's "
                             "method is defined for REML only); refit with REML=True")
        self.results = results
        self._adjustment = None

    def _computed(self):
        if self._adjustment is None:
            if hasattr(self.results.model, "terms"):
                pieces = _several_factor_pieces(self.results)
            else:
                pieces = _one_factor_pieces(self.results)
            self._adjustment = _adjusted(pieces)
        return self._adjustment

    def vcov(self):
        """The adjusted covariance Phi_A of the fixed effects (p x p, fe_params' order).

        Examples
        --------
        >>> import lmm
        >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
        >>> KenwardRoger(lmm.lmer("Weight ~ Time + (1 | Pig)", d)).vcov().shape
        (2, 2)
        """
        return self._computed()[1].copy()

    def vcov_unadjusted(self):
        """Phi = (X' V^-1 X)^-1 at the fitted variance parameters."""
        return self._computed()[0].copy()

    def _contrast(self, L):
        p = len(self.results.fe_params)
        L = np.atleast_2d(np.asarray(L, dtype=float))
        if L.ndim != 2 or L.shape[1] != p:
            raise ValueError(f"the contrast has {L.shape[-1]} columns; the model has {p} "
                             "fixed effects")
        if L.shape[0] == 0:
            raise ValueError("the contrast matrix has no rows")
        if not np.all(np.isfinite(L)):
            raise ValueError("the contrast holds NaN or infinite values")
        return L

    def test(self, L, alpha=0.05):
        """The Kenward-Roger test of L beta = 0.

        Parameters
        ----------
        L : array_like, (p,) or (m, p)
            Contrast vector or matrix over the fixed effects (fe_params' order).
        alpha : float
            For the confidence interval of a one-row contrast (1 - alpha).

        Returns
        -------
        dict
            One row: estimate, std_error (from the adjusted covariance), df (pbkrtest's
            ``Lb_ddf``), t, p_value, ci_lower, ci_upper, as lmerTest's
            ``summary(ddf = "Kenward-Roger")``. Several rows: num_df (the rank of L),
            den_df and F, where F is pbkrtest's *scaled* statistic lambda times the Wald
            F of the adjusted covariance (KRmodcomp's "Ftest" row, lmerTest's
            ``contest``), and its p_value.

        Examples
        --------
        >>> import lmm
        >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
        >>> kr = KenwardRoger(lmm.lmer("Weight ~ Time + (1 | Pig)", d))
        >>> sorted(kr.test([[1, 0], [0, 1]]))
        ['F', 'den_df', 'num_df', 'p_value']
        """
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        L = self._contrast(L)
        phi, phi_a, p_list, w = self._computed()
        beta = np.asarray(self.results.fe_params, dtype=float)
        if L.shape[0] == 1:
            return self._t_test(L, beta, phi, phi_a, p_list, w, alpha)
        return self._f_test(L, beta, phi, phi_a, p_list, w)

    @staticmethod
    def _t_test(L, beta, phi, phi_a, p_list, w, alpha):
        lv = L[0]
        var = float(lv @ phi_a @ lv)
        if not float(lv @ phi @ lv) > 0.0:
            raise ValueError("the contrast has zero variance (it tests nothing)")
        df = kr_ddf(L, phi, p_list, w)[0]
        est = float(lv @ beta)
        se = math.sqrt(var)
        t = est / se
        # (scipy.special's ufuncs: scipy.stats costs a second at import)
        if np.isfinite(df):
            half = special.stdtrit(df, 1.0 - alpha / 2.0) * se
            p_value = float(2.0 * special.stdtr(df, -abs(t)))
        else:
            half = special.ndtri(1.0 - alpha / 2.0) * se
            p_value = float(2.0 * special.ndtr(-abs(t)))
        return dict(estimate=est, std_error=se, df=df, t=t, p_value=p_value,
                    ci_lower=est - half, ci_upper=est + half)

    @staticmethod
    def _f_test(L, beta, phi, phi_a, p_list, w):
        # a basis of L's row space (the statistics depend on nothing else), as lmerTest
        vl = L @ phi @ L.T
        vals, vecs = np.linalg.eigh(vl)
        keep = vals > 1e-10 * max(vals.max(), 0.0)
        if not keep.any():
            raise ValueError("the contrast matrix has rank 0 (it tests nothing)")
        basis = vecs[:, keep].T @ L
        q = basis.shape[0]
        ddf, scaling, _, _ = kr_ddf(basis, phi, p_list, w)
        lb = basis @ beta
        wald = float(lb @ np.linalg.solve(basis @ phi_a @ basis.T, lb))
        f_value = scaling * wald / q
        return dict(num_df=q, den_df=ddf, F=f_value, p_value=float(special.fdtrc(q, ddf, f_value)))
