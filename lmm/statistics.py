"""Sufficient statistics of a one-factor model, about a centre, and their exact merge.

A linear mixed model with one grouping factor needs only, per group g, the sums and
cross-products of its rows (DESIGN.md):

    Z_g'Z_g, Z_g'X_g, Z_g'y_g   and globally   X'X, X'y, y'y.

Summed from raw data these cancel: y'y - beta'X'y loses every digit of y's offset. So
lmm sums the products of *shifted* columns, x - c_x, z - c_z, y - c_y, with the centre
c near the columns' means (each shifted value is then exact), and keeps the per-group
sums of the shifted columns beside them. With those sums the statistics can be moved
to any other centre exactly (in real arithmetic), which is what makes statistics of
separate chunks of rows combinable: each chunk is moved to the pooled mean and the
arrays add (the pairwise update of Chan, Golub and LeVeque, 1979, for cross-products
by group). `lmm.model.MixedLM` keeps its statistics in this form (made in one compiled
pass by `_core.model_products`); a distributed fit adds chunks with `merge`.

With prior weights w (a weighted model) every sum and product is weighted,
sum w (x - c_x)(z - c_z)', the centre is the weighted means, and each group's sum
of weights is kept (`weight_sums`) so that the move to another centre stays exact.

Which columns are centred is the model's choice (X's and y's when X has an intercept,
Z's when Z has one: the intercept absorbs the shift); a shift of zero leaves a column
as it is, and `merge` keeps it so.
"""

from dataclasses import dataclass

import numpy as np

from . import _core
from .deviance import CrossProducts


@dataclass(frozen=True)
class GroupedStatistics:
    """Sums and cross-products of X - 1 x_shift', Z - 1 z_shift', y - y_shift by group.

    Attributes
    ----------
    group_sizes : (G,) int
    x_shift : (p,) float ; z_shift : (q,) float ; y_shift : float
        The centre.
    x_sum : (G, p) ; z_sum : (G, q) ; y_sum : (G,)
        Per-group sums of the shifted columns.
    ztz : (G, q, q) ; ztx : (G, q, p) ; zty : (G, q)
        Per-group cross-products of the shifted columns.
    xtx : (p, p) ; xty : (p,) ; yty : float
        Global cross-products of the shifted columns.
    weight_sums : (G,) float or None
        With prior weights w, each group's sum of weights; the sums and
        products above are then weighted (sum w (x - x_shift), sum w (x -
        x_shift)(z - z_shift)', ...), and group_sizes stay row counts.  None:
        unweighted.

    Examples
    --------
    >>> import numpy as np
    >>> from lmm.statistics import GroupedStatistics
    >>> rng = np.random.default_rng(0)
    >>> X = np.column_stack([np.ones(8), rng.normal(size=8) + 1e9])
    >>> Z, y, codes = X[:, :1].copy(), rng.normal(size=8), np.arange(8) % 2
    >>> whole = GroupedStatistics.from_rows(X, Z, y, codes, 2)
    >>> a = GroupedStatistics.from_rows(X[:5], Z[:5], y[:5], codes[:5], 2)
    >>> b = GroupedStatistics.from_rows(X[5:], Z[5:], y[5:], codes[5:], 2)
    >>> bool(np.allclose(a.merge(b).xtx, whole.xtx, rtol=1e-12))
    True
    """

    group_sizes: np.ndarray
    x_shift: np.ndarray
    z_shift: np.ndarray
    y_shift: float
    x_sum: np.ndarray
    z_sum: np.ndarray
    y_sum: np.ndarray
    ztz: np.ndarray
    ztx: np.ndarray
    zty: np.ndarray
    xtx: np.ndarray
    xty: np.ndarray
    yty: float
    weight_sums: np.ndarray | None = None

    @classmethod
    def from_rows(cls, X, Z, y, codes, n_groups, x_shift=None, z_shift=None, y_shift=None,
                  weights=None):
        """Statistics of the rows (group codes 0..n_groups-1), about the given centre
        or, where none is given, about the columns' (weighted) means; with
        `weights` (n,) the sums and products are weighted."""
        X = np.ascontiguousarray(X, dtype=float)
        Z = np.ascontiguousarray(Z, dtype=float)
        y = np.ascontiguousarray(y, dtype=float)
        codes = np.ascontiguousarray(codes, dtype=np.intp)
        if X.ndim != 2 or Z.ndim != 2 or y.ndim != 1:
            raise ValueError("X and Z must be 2-dimensional and y 1-dimensional")
        n = len(y)
        if len(X) != n or len(Z) != n or len(codes) != n:
            raise ValueError("X, Z, y and codes must have the same number of rows")
        if n and (codes.min() < 0 or codes.max() >= n_groups):
            raise ValueError(f"group codes must lie in 0..{n_groups - 1}")
        weight_sums = None
        if weights is not None:
            weights = np.ascontiguousarray(weights, dtype=float)
            if weights.shape != (n,) or not np.all(np.isfinite(weights)) or \
                    np.any(weights <= 0):
                raise ValueError("weights must be n positive finite values")
            weight_sums = np.bincount(codes, weights, minlength=n_groups).astype(float)
        if x_shift is None:
            x_shift = np.average(X, 0, weights) if n else np.zeros(X.shape[1])
        if z_shift is None:
            z_shift = np.average(Z, 0, weights) if n else np.zeros(Z.shape[1])
        if y_shift is None:
            y_shift = float(np.average(y, weights=weights)) if n else 0.0
        sizes, offsets, order = _core.group_blocks(codes, n_groups)
        ztz, ztx, zty, xtx, xty, yty, x_sum, z_sum, y_sum = _core.shifted_cross_products(
            X, Z, y, order, offsets, x_shift, z_shift, float(y_shift), weights)
        return cls(sizes, np.asarray(x_shift, dtype=float), np.asarray(z_shift, dtype=float),
                   float(y_shift), x_sum, z_sum, y_sum, ztz, ztx, zty, xtx, xty, float(yty),
                   weight_sums)

    @property
    def nobs(self):
        return int(self.group_sizes.sum())

    @property
    def _masses(self):
        """Each group's sum of weights (its row count, unweighted), as floats."""
        return self.group_sizes.astype(float) if self.weight_sums is None else \
            self.weight_sums

    def means(self):
        """The columns' (weighted) means (x (p,), z (q,), y)."""
        n = float(self._masses.sum()) if self.nobs else 1.0
        return (self.x_shift + self.x_sum.sum(0) / n, self.z_shift + self.z_sum.sum(0) / n,
                self.y_shift + float(self.y_sum.sum()) / n)

    def recentred(self, x_shift, z_shift, y_shift):
        """The same statistics about another centre (exact in real arithmetic).

        With d the change of centre, sum (u - d)(v - e)' = S_uv - s_u e' - d s_v'
        + n d e' for any two shifted columns u, v with sums s_u, s_v (weighted:
        sums and products weighted, n the sum of weights).
        """
        dx = np.asarray(x_shift, dtype=float) - self.x_shift
        dz = np.asarray(z_shift, dtype=float) - self.z_shift
        dy = float(y_shift) - self.y_shift
        ng = self._masses
        xs, zs, ys = self.x_sum, self.z_sum, self.y_sum
        ztz = (self.ztz - zs[:, :, None] * dz[None, None, :] - dz[None, :, None] * zs[:, None, :]
               + ng[:, None, None] * np.outer(dz, dz)[None])
        ztx = (self.ztx - zs[:, :, None] * dx[None, None, :] - dz[None, :, None] * xs[:, None, :]
               + ng[:, None, None] * np.outer(dz, dx)[None])
        zty = self.zty - zs * dy - dz[None, :] * ys[:, None] + ng[:, None] * dz[None, :] * dy
        x_tot, y_tot, n = xs.sum(0), float(ys.sum()), float(ng.sum())
        xtx = self.xtx - np.outer(x_tot, dx) - np.outer(dx, x_tot) + n * np.outer(dx, dx)
        xty = self.xty - x_tot * dy - dx * y_tot + n * dx * dy
        yty = self.yty - 2.0 * dy * y_tot + n * dy * dy
        return GroupedStatistics(
            self.group_sizes, self.x_shift + dx, self.z_shift + dz, self.y_shift + dy,
            xs - ng[:, None] * dx, zs - ng[:, None] * dz, ys - ng * dy,
            ztz, ztx, zty, xtx, xty, float(yty), self.weight_sums)

    def merge(self, other):
        """The statistics of both chunks' rows (the same groups, coded alike).

        Both are moved to the pooled means (of the columns either centres; a
        column neither shifts stays unshifted) and added.
        """
        if self.ztx.shape[1:] != other.ztx.shape[1:] or \
                len(self.group_sizes) != len(other.group_sizes):
            raise ValueError("statistics of different designs or groupings cannot be merged")
        if (self.weight_sums is None) != (other.weight_sums is None):
            raise ValueError("weighted and unweighted statistics cannot be merged")
        if self.nobs == 0:
            return other
        if other.nobs == 0:
            return self
        n_a, n_b = float(self._masses.sum()), float(other._masses.sum())
        means_a, means_b = self.means(), other.means()
        pooled = [(n_a * a + n_b * b) / (n_a + n_b) for a, b in zip(means_a, means_b)]
        shifts_a = (self.x_shift, self.z_shift, self.y_shift)
        shifts_b = (other.x_shift, other.z_shift, other.y_shift)
        centre = [np.where((np.asarray(sa) != 0) | (np.asarray(sb) != 0), m, 0.0)
                  for sa, sb, m in zip(shifts_a, shifts_b, pooled)]
        a = self.recentred(centre[0], centre[1], float(centre[2]))
        b = other.recentred(centre[0], centre[1], float(centre[2]))
        return GroupedStatistics(
            a.group_sizes + b.group_sizes, a.x_shift, a.z_shift, a.y_shift,
            a.x_sum + b.x_sum, a.z_sum + b.z_sum, a.y_sum + b.y_sum,
            a.ztz + b.ztz, a.ztx + b.ztx, a.zty + b.zty, a.xtx + b.xtx, a.xty + b.xty,
            a.yty + b.yty, None if a.weight_sums is None else a.weight_sums + b.weight_sums)

    def cross_products(self):
        """The products as `CrossProducts` (of the shifted design)."""
        return CrossProducts(self.ztz, self.ztx, self.zty, self.xtx, self.xty,
                             float(self.yty), self.nobs)
