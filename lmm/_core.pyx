# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False, cpow=True
"""Compiled kernels of lmm.

Everything here works on the sufficient statistics of a linear mixed model
with one grouping factor, rows sorted into contiguous group blocks:

    ztz[g] = Z_g' Z_g   (n_groups, q, q)
    ztx[g] = Z_g' X_g   (n_groups, q, p)
    zty[g] = Z_g' y_g   (n_groups, q)
    xtx = X'X (p, p),  xty = X'y (p,),  yty = y'y

`cross_products` makes them in one pass over the rows; every other kernel
takes only these arrays, so the cost of a likelihood evaluation grows with the
number of groups, never with the number of rows.

Notation (see DESIGN.md in the project's shared notes): Lambda is the q x q
lower-triangular relative covariance factor, G = Lambda Lambda' = cov_re /
scale, V_g = I + Z_g G Z_g'.  Per group, M_g = Lambda' Z_g'Z_g Lambda + I =
L_g L_g' (Cholesky), and by the Woodbury identity and the matrix determinant
lemma

    log|V_g| = 2 sum log diag L_g
    X_g'V_g^{-1}X_g = X_g'X_g - C_g'C_g,   C_g = L_g^{-1} Lambda' Z_g'X_g

Small matrices inside the kernels are stored column-major (LAPACK's order);
the arrays passed in are C-ordered numpy arrays, so symmetric ones read the
same either way and `ztx` is read transposed where needed.

The Python layer validates every shape and offset before calling: bounds
checking is off here.
"""

import numpy as np

from libc.math cimport log, sqrt, fabs, M_PI, INFINITY, NAN
from libc.stdlib cimport malloc, free
from libc.stdint cimport int64_t
from libc.string cimport memcmp
from lmm._optimum cimport judge_optimum_flags, optimum_work_size
from lmm._trust_region cimport (
    TR_DERIVATIVES, TR_DONE, TR_EXACT, TrustRegion, tr_init, tr_next,
)
from lmm._linalg cimport (
    _cholesky_lower, _level_factor, _solve_lower, _symmetric_eigen, _trust_region_step,
)


# ---------------------------------------------------------------------------
# Small dense helpers (column-major, q and p are small)
# ---------------------------------------------------------------------------

cdef inline void _factor_group(
    const double* ztz_g, const double* ztx_g, const double* zty_g,
    const double* lam, int q, int p,
    double* al, double* chol, double* cc,
) noexcept nogil:
    """Pass-one quantities of one group.

    On return:
      al   (q x q) = Z'Z Lambda
      chol (q x q) = L, lower Cholesky factor of Lambda'Z'Z Lambda + I
      cc   (q x (p+1)) = L^{-1} Lambda' [Z'X | Z'y]   (C and c of DESIGN.md)
    The factorization cannot fail: M >= I, so every pivot is at least 1.
    """
    cdef int j, m, c
    cdef double s
    _level_factor(ztz_g, lam, q, al, chol)
    # cc = Lambda' [B | d], B[m, c] = ztx_g[m * p + c]
    for c in range(p):
        for j in range(q):
            s = 0.0
            for m in range(j, q):
                s += lam[m + j * q] * ztx_g[m * p + c]
            cc[j + c * q] = s
    for j in range(q):
        s = 0.0
        for m in range(j, q):
            s += lam[m + j * q] * zty_g[m]
        cc[j + p * q] = s
    _solve_lower(chol, q, cc, p + 1, False)


cdef inline void _group_second_pass(
    const double* ztz_g, const double* ztx_g, const double* zty_g,
    int q, int p, const double* al, const double* chol, const double* cc,
    const double* beta, double* f, double* w, double* hv, double* u,
) noexcept nogil:
    """Quantities of one group that need beta (after pass one).

    On return:
      f  (q x q)      = L^{-1} Lambda' Z'Z
      w  (q x q)      = Z'V^{-1}Z = Z'Z - f'f
      hv (q x (p+1))  = [Z'V^{-1}X | Z'V^{-1}y] = [Z'X | Z'y] - f' cc
      u  (q)          = Z'V^{-1}(y - X beta)
    """
    cdef int j, k, m, c
    cdef double s
    for k in range(q):
        for j in range(q):
            f[j + k * q] = al[k + j * q]
    _solve_lower(chol, q, f, q, False)
    for k in range(q):
        for j in range(q):
            s = 0.0
            for m in range(q):
                s += f[m + j * q] * f[m + k * q]
            w[j + k * q] = ztz_g[j * q + k] - s
    for c in range(p + 1):
        for j in range(q):
            s = 0.0
            for m in range(q):
                s += f[m + j * q] * cc[m + c * q]
            if c < p:
                hv[j + c * q] = ztx_g[j * p + c] - s
            else:
                hv[j + c * q] = zty_g[j] - s
    for j in range(q):
        s = hv[j + p * q]
        for c in range(p):
            s -= hv[j + c * q] * beta[c]
        u[j] = s


cdef inline double _trace_product(const double* a, const double* b, int q) noexcept nogil:
    """tr(A B) for q x q column-major A, B."""
    cdef int j, k
    cdef double s = 0.0
    for j in range(q):
        for k in range(q):
            s += a[j + k * q] * b[k + j * q]
    return s


cdef inline void _matmul(const double* a, const double* b, double* out,
                         int n, int m, int r) noexcept nogil:
    """out (n x r) = a (n x m) @ b (m x r), column-major."""
    cdef int i, j, k
    cdef double s
    for j in range(r):
        for i in range(n):
            s = 0.0
            for k in range(m):
                s += a[i + k * n] * b[k + j * m]
            out[i + j * n] = s


# ---------------------------------------------------------------------------
# Argument checks of the entry points.  The kernels run without bounds
# checks, so each `def` entry point checks once, on entry, that its arrays
# agree in shape and that every index it will follow is in range (O(n) at
# most, never inside an evaluation loop).
# ---------------------------------------------------------------------------

cdef tuple _shape(const double[:, :, ::1] a3, const double[:, ::1] a2, const double[::1] a1):
    # the shape of whichever array is given, for messages
    if a3 is not None:
        return tuple(a3.shape)[:3]
    if a2 is not None:
        return tuple(a2.shape)[:2]
    return tuple(a1.shape)[:1]


cdef int _check_products(const double[:, :, ::1] ztz, const double[:, :, ::1] ztx,
                         const double[:, ::1] zty, const double[:, ::1] xtx,
                         const double[::1] xty) except -1:
    """ztz (G, q, q), ztx (G, q, p), zty (G, q), xtx (p, p), xty (p,); xtx and
    xty may be None (for kernels that do not read them)."""
    cdef Py_ssize_t n_groups = ztz.shape[0], q = ztz.shape[1], p = ztx.shape[2]
    if ztz.shape[2] != q:
        raise ValueError(f"ztz must be (n_groups, q, q), got {_shape(ztz, None, None)}")
    if ztx.shape[0] != n_groups or ztx.shape[1] != q:
        raise ValueError(f"ztx must be ({n_groups}, {q}, p) like ztz, "
                         f"got {_shape(ztx, None, None)}")
    if zty.shape[0] != n_groups or zty.shape[1] != q:
        raise ValueError(f"zty must be ({n_groups}, {q}) like ztz, got {_shape(None, zty, None)}")
    if xtx is not None and (xtx.shape[0] != p or xtx.shape[1] != p):
        raise ValueError(f"xtx must be ({p}, {p}) like ztx's last axis, "
                         f"got {_shape(None, xtx, None)}")
    if xty is not None and xty.shape[0] != p:
        raise ValueError(f"xty must have length {p} like ztx's last axis, got {xty.shape[0]}")
    return 0


cdef int _check_row_blocks(Py_ssize_t n, const intp_t[::1] order,
                           const intp_t[::1] group_offsets) except -1:
    """order a permutation of range(n); group_offsets non-decreasing from 0 to n."""
    cdef Py_ssize_t n_groups = group_offsets.shape[0] - 1, g, r, row
    if order.shape[0] != n:
        raise ValueError(f"order must have one entry per row ({n}), got {order.shape[0]}")
    if n_groups < 0:
        raise ValueError("group_offsets must have n_groups + 1 entries, got none")
    if group_offsets[0] != 0 or group_offsets[n_groups] != n:
        raise ValueError(f"group_offsets must run from 0 to the number of rows ({n}), "
                         f"got {group_offsets[0]} to {group_offsets[n_groups]}")
    for g in range(n_groups):
        if group_offsets[g + 1] < group_offsets[g]:
            raise ValueError(f"group_offsets must be non-decreasing, got "
                             f"{group_offsets[g]} then {group_offsets[g + 1]} at {g}")
    seen_arr = np.zeros(n, dtype=np.uint8)
    cdef unsigned char[::1] seen = seen_arr
    for r in range(n):
        row = order[r]
        if row < 0 or row >= n:
            raise ValueError(f"order must index the rows 0..{n - 1}, got {row} at {r}")
        if seen[row]:
            raise ValueError(f"order must be a permutation of the rows: row {row} twice")
        seen[row] = 1
    return 0


cdef int _check_theta_indices(const intp_t[::1] rows, const intp_t[::1] cols,
                              Py_ssize_t q, str what) except -1:
    cdef Py_ssize_t t
    if cols.shape[0] != rows.shape[0]:
        raise ValueError(f"{what} rows and columns must have the same length")
    for t in range(rows.shape[0]):
        if not (0 <= cols[t] <= rows[t] < q):
            raise ValueError(f"{what} indices must address the lower triangle of a "
                             f"{q} x {q} matrix, got ({rows[t]}, {cols[t]})")
    return 0


cdef int _check_square(object a, str name) except -1:
    # (the small dense helpers: a 2-d square array; an ndarray's shape read
    # directly: np.shape and np.ndim are Python functions, on the fit path)
    shape = a.shape if isinstance(a, np.ndarray) else np.shape(a)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {shape}")
    return 0


# ---------------------------------------------------------------------------
# Group blocks: a counting sort of the group codes
# ---------------------------------------------------------------------------

def code_integer_groups(const int64_t[:] groups, Py_ssize_t max_span):
    """Codes of integer group labels through a table of their range (no hashing).

    Parameters
    ----------
    groups : (n,) int64 labels (any strides), n >= 1
    max_span : the largest range (max - min + 1) accepted

    Returns
    -------
    (codes (n,) intp, labels (n_groups,) int64): labels the sorted distinct
    values, codes[r] the index of groups[r] in labels (pandas.factorize with
    sort=True); or None when the range exceeds max_span.
    """
    if max_span < 0:
        raise ValueError(f"max_span must be >= 0, got {max_span}")
    return _code_integer_groups(groups, max_span)


cdef object _code_integer_groups(const int64_t[:] groups, Py_ssize_t max_span):
    # (`code_integer_groups`, callable from C without re-reading its arguments)
    cdef Py_ssize_t n = groups.shape[0], r, k, n_groups = 0
    cdef int64_t lo, hi, v
    if n == 0:
        return None
    lo = groups[0]
    hi = groups[0]
    with nogil:
        for r in range(1, n):
            v = groups[r]
            if v < lo:
                lo = v
            elif v > hi:
                hi = v
    # (hi - lo computed in floating point first: it may overflow int64)
    if <double>hi - <double>lo + 1.0 > <double>max_span:
        return None
    cdef Py_ssize_t span = <Py_ssize_t>(hi - lo) + 1
    index_arr = np.zeros(span, dtype=np.intp)
    codes_arr = np.empty(n, dtype=np.intp)
    cdef intp_t[::1] index = index_arr
    cdef intp_t[::1] codes = codes_arr
    with nogil:
        for r in range(n):
            index[groups[r] - lo] = 1
        for k in range(span):
            if index[k]:
                index[k] = n_groups
                n_groups += 1
            else:
                index[k] = -1
        for r in range(n):
            codes[r] = index[groups[r] - lo]
    labels_arr = np.empty(n_groups, dtype=np.int64)
    cdef int64_t[::1] labels = labels_arr
    with nogil:
        for k in range(span):
            if index[k] >= 0:
                labels[index[k]] = lo + k
    return codes_arr, labels_arr


def group_blocks(const intp_t[::1] codes, Py_ssize_t n_groups):
    """Sizes, offsets and row order of the group blocks, in two passes over the codes.

    Parameters
    ----------
    codes : (n,) intp, group codes in 0..n_groups - 1 (checked)
    n_groups : int

    Returns
    -------
    sizes (n_groups,) intp; offsets (n_groups + 1,) intp, from 0 to n;
    order (n,) intp, the rows group by group, in their original order within
    a group (``np.argsort(codes, kind="stable")``)
    """
    if n_groups < 0:
        raise ValueError(f"n_groups must be >= 0, got {n_groups}")
    return _group_blocks(codes, n_groups)


cdef tuple _group_blocks(const intp_t[::1] codes, Py_ssize_t n_groups):
    # (`group_blocks`, callable from C without re-reading its arguments)
    cdef Py_ssize_t n = codes.shape[0], r, g
    sizes_arr = np.zeros(n_groups, dtype=np.intp)
    offsets_arr = np.empty(n_groups + 1, dtype=np.intp)
    order_arr = np.empty(n, dtype=np.intp)
    pos_arr = np.empty(max(n_groups, 1), dtype=np.intp)
    cdef intp_t[::1] sizes = sizes_arr
    cdef intp_t[::1] offsets = offsets_arr
    cdef intp_t[::1] order = order_arr
    cdef intp_t[::1] pos = pos_arr
    cdef bint bad = False
    with nogil:
        for r in range(n):
            g = codes[r]
            if g < 0 or g >= n_groups:
                bad = True
                break
            sizes[g] += 1
        if not bad:
            offsets[0] = 0
            for g in range(n_groups):
                pos[g] = offsets[g]
                offsets[g + 1] = offsets[g] + sizes[g]
            for r in range(n):
                g = codes[r]
                order[pos[g]] = r
                pos[g] += 1
    if bad:
        raise ValueError("group codes must lie in 0..n_groups - 1")
    return sizes_arr, offsets_arr, order_arr


# ---------------------------------------------------------------------------
# Cross-products: the only pass over the rows
# ---------------------------------------------------------------------------

def cross_products(const double[:, ::1] X, const double[:, ::1] Z, const double[::1] y,
                   const intp_t[::1] order, const intp_t[::1] group_offsets):
    """Per-group and global cross-products in one pass over the rows.

    Parameters
    ----------
    X : (n, p) float64, C-contiguous
    Z : (n, q) float64, C-contiguous
    y : (n,) float64
    order : (n,) intp, a permutation of range(n) listing the rows group by group
    group_offsets : (n_groups + 1,) intp, increasing, from 0 to n; the rows of
        group g are order[group_offsets[g]:group_offsets[g + 1]]

    Returns
    -------
    ztz (n_groups, q, q), ztx (n_groups, q, p), zty (n_groups, q),
    xtx (p, p), xty (p,), yty (float)
    """
    if Z.shape[0] != X.shape[0] or y.shape[0] != X.shape[0]:
        raise ValueError(f"X, Z and y must have the same number of rows, got "
                         f"{X.shape[0]}, {Z.shape[0]}, {y.shape[0]}")
    _check_row_blocks(X.shape[0], order, group_offsets)
    return _cross_products(X, Z, y, order, group_offsets)


cdef tuple _cross_products(const double[:, ::1] X, const double[:, ::1] Z, const double[::1] y,
                           const intp_t[::1] order, const intp_t[::1] group_offsets):
    # (`cross_products`, callable from C without re-reading its arguments)
    return _shifted_cross_products(X, Z, y, order, group_offsets, None, None, 0.0, None)[:6]


def shifted_cross_products(const double[:, ::1] X, const double[:, ::1] Z,
                           const double[::1] y, const intp_t[::1] order,
                           const intp_t[::1] group_offsets, x_shift, z_shift, double y_shift,
                           weights=None):
    """`cross_products` of X - 1 x_shift', Z - 1 z_shift' and y - y_shift, with
    the per-group sums of the shifted columns.

    Each row is shifted before its products are summed (see
    `_shifted_cross_products`): the statistics keep every digit of the data
    whatever their offset, when the shifts are near the columns' means.
    With `weights` (n,) every product and sum is weighted:
    sum_i w_i (x_i - x_shift)(z_i - z_shift)', sum_i w_i (x_i - x_shift), ...

    Returns
    -------
    ztz, ztx, zty, xtx, xty, yty (as `cross_products`), x_sum (n_groups, p),
    z_sum (n_groups, q), y_sum (n_groups,)
    """
    cdef Py_ssize_t n = X.shape[0]
    if Z.shape[0] != n or y.shape[0] != n:
        raise ValueError("X, Z and y must have the same number of rows")
    xs = np.ascontiguousarray(x_shift, dtype=float)
    zs = np.ascontiguousarray(z_shift, dtype=float)
    if xs.shape != (X.shape[1],) or zs.shape != (Z.shape[1],):
        raise ValueError("x_shift and z_shift need one entry per column of X and of Z")
    _check_row_blocks(n, order, group_offsets)
    w = None
    if weights is not None:
        w = np.ascontiguousarray(weights, dtype=float)
        if w.shape != (n,):
            raise ValueError(f"weights must have one entry per row ({n}), got shape {w.shape}")
    return _shifted_cross_products(X, Z, y, order, group_offsets, xs, zs, y_shift, w)


cdef tuple _shifted_cross_products(const double[:, ::1] X, const double[:, ::1] Z,
                                   const double[::1] y, const intp_t[::1] order,
                                   const intp_t[::1] group_offsets, const double[::1] x_shift,
                                   const double[::1] z_shift, double y_shift,
                                   const double[::1] w):
    """The cross-products of X - 1 x_shift', Z - 1 z_shift' and y - y_shift
    (no shift where x_shift / z_shift is None), each row weighted by w[row]
    (unweighted where w is None).

    Each row is shifted before it is multiplied: products of raw data and a
    correction afterwards (y'y - n ybar^2) would cancel every digit of an
    offset.  With the shift equal to a column's mean (or anything within a
    factor of two of its values), each shifted value is exact (Sterbenz), so
    the shifted design is exactly the reparametrized one the caller maps back.
    """
    cdef Py_ssize_t p = X.shape[1], q = Z.shape[1]
    cdef Py_ssize_t n_groups = group_offsets.shape[0] - 1
    ztz_arr = np.zeros((n_groups, q, q))
    ztx_arr = np.zeros((n_groups, q, p))
    zty_arr = np.zeros((n_groups, q))
    xtx_arr = np.zeros((p, p))
    xty_arr = np.zeros(p)
    xs_arr = np.zeros(p) if x_shift is None else np.asarray(x_shift)
    zs_arr = np.zeros(q) if z_shift is None else np.asarray(z_shift)
    cdef const double[::1] xs = xs_arr
    cdef const double[::1] zs = zs_arr
    cdef double[:, :, ::1] ztz = ztz_arr
    cdef double[:, :, ::1] ztx = ztx_arr
    cdef double[:, ::1] zty = zty_arr
    cdef double[:, ::1] xtx = xtx_arr
    cdef double[::1] xty = xty_arr
    x_sum_arr = np.zeros((n_groups, p))
    z_sum_arr = np.zeros((n_groups, q))
    y_sum_arr = np.zeros(n_groups)
    cdef double[:, ::1] x_sum = x_sum_arr
    cdef double[:, ::1] z_sum = z_sum_arr
    cdef double[::1] y_sum = y_sum_arr
    cdef double yty = 0.0, zj, xa, yr, yl, wr
    cdef Py_ssize_t g, r, row, j, k, a, b
    cdef bint weighted = w is not None
    # one shifted row of X and of Z, and (weighted) the same times the row's
    # weight: the left factor of each product (allocated once, outside the
    # loops; unweighted, the left factors are the shifted rows themselves, so
    # that path does no extra work)
    cdef double* xr = <double*>malloc(2 * (p + q + 1) * sizeof(double))
    if xr == NULL:
        raise MemoryError()
    cdef double* zr = xr + p
    cdef double* xl = xr
    cdef double* zl = zr
    if weighted:
        xl = xr + p + q + 1
        zl = xl + p
    with nogil:
        for g in range(n_groups):
            for r in range(group_offsets[g], group_offsets[g + 1]):
                row = order[r]
                yr = y[row] - y_shift
                for a in range(p):
                    xr[a] = X[row, a] - xs[a]
                for j in range(q):
                    zr[j] = Z[row, j] - zs[j]
                yl = yr
                if weighted:
                    wr = w[row]
                    yl = wr * yr
                    for a in range(p):
                        xl[a] = wr * xr[a]
                    for j in range(q):
                        zl[j] = wr * zr[j]
                y_sum[g] += yl
                for a in range(p):
                    x_sum[g, a] += xl[a]
                for j in range(q):
                    z_sum[g, j] += zl[j]
                for j in range(q):
                    zj = zl[j]
                    for k in range(j + 1):
                        ztz[g, j, k] += zj * zr[k]
                    for a in range(p):
                        ztx[g, j, a] += zj * xr[a]
                    zty[g, j] += zj * yr
                for a in range(p):
                    xa = xl[a]
                    for b in range(a + 1):
                        xtx[a, b] += xa * xr[b]
                    xty[a] += xa * yr
                yty += yl * yr
            for j in range(q):
                for k in range(j):
                    ztz[g, k, j] = ztz[g, j, k]
        for a in range(p):
            for b in range(a):
                xtx[b, a] = xtx[a, b]
    free(xr)
    return ztz_arr, ztx_arr, zty_arr, xtx_arr, xty_arr, yty, x_sum_arr, z_sum_arr, y_sum_arr


cdef bint _gershgorin_clear(const double[:, ::1] g) noexcept:
    """Whether every diagonal entry of the Gram matrix g is positive and the
    Gershgorin bound on the smallest eigenvalue of its correlation matrix,
    min_i (|c_ii| - sum_j |c_ij| + |c_ii|), exceeds 1e-6: the first test of
    lmm.model._dependent_columns, with the same arithmetic in the same order."""
    cdef Py_ssize_t k = g.shape[0], i, j
    cdef double bound = INFINITY, off, di, b
    for i in range(k):
        if not g[i, i] > 0:
            return False
    for i in range(k):
        di = sqrt(g[i, i])
        off = 0.0
        for j in range(k):
            off += fabs(g[i, j] / (di * sqrt(g[j, j])))
        b = 2.0 * fabs(g[i, i] / (di * di)) - off
        if b < bound:
            bound = b
    return bound > 1e-6


def model_products(const double[:, ::1] X, const double[:, ::1] Z, const double[::1] y,
                   const intp_t[::1] codes, Py_ssize_t n_groups, weights=None):
    """Everything the one-factor model needs from its rows, in one call.

    The group blocks (`group_blocks`), the cross-products of the centred
    design (below), Z'Z summed over the groups, whether y'y + tr X'X + tr Z'Z
    is finite, and which columns of X and of Z are all ones.

    Centring: when X has a column of ones (the first such is `x_intercept`),
    every other column of X and the response are centred at their means
    (x_shift, y_shift); when Z has one (`z_intercept`), every other column of
    Z is (z_shift).  The products are those of X - 1 x_shift', Z - 1 z_shift'
    and y - y_shift, summed after shifting (`_shifted_cross_products`), so an
    offset in the data costs no digits.  The centred design is an exact
    reparametrization (X - 1 x_shift' = X A with det A = 1: the intercept
    absorbs the shift); the caller maps the estimates back.  Shifts are zero
    where there is no intercept.

    With `weights` (n,) (prior weights, positive and finite: the caller
    checks), the means are weighted means and every product and sum is
    weighted (sum_i w_i (x_i - x_shift)(z_i - z_shift)', ...); `weight_sums`
    (n_groups,) then holds each group's sum of weights (it is None unweighted).

    Returns
    -------
    dict with sizes, offsets, order, ztz, ztx, zty, xtx, xty, yty (of the
    centred design), x_sum, z_sum, y_sum (per-group sums of the centred
    columns, see `shifted_cross_products`), ztz_all (q, q), x_shift (p,), z_shift (q,), y_shift,
    x_intercept and z_intercept (column index or -1), finite (bool), ones (q,)
    bool (Z's columns of ones), x_ones (p,) bool, x_clear and z_clear (bool:
    the centred X'X and Z'Z summed over the groups pass the Gershgorin test of
    full rank, see `_gershgorin_clear`)
    """
    return _model_products(X, Z, y, codes, n_groups, _row_weights(weights, X.shape[0]))


cdef object _row_weights(weights, Py_ssize_t n):
    """`weights` as a contiguous float64 (n,) array (None stays None)."""
    if weights is None:
        return None
    w = np.ascontiguousarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"weights must have one entry per row ({n}), got shape {w.shape}")
    return w


def integer_model_products(const double[:, ::1] X, const double[:, ::1] Z,
                           const double[::1] y, const int64_t[:] groups, Py_ssize_t max_span,
                           weights=None):
    """`code_integer_groups` of the int64 group labels, then `model_products`, in one call.

    Returns
    -------
    model_products' dict with codes (n,) intp and labels (n_groups,) int64
    added, or None when the labels' range exceeds max_span (or there are no
    rows): code them otherwise.
    """
    coded = _code_integer_groups(groups, max_span)
    if coded is None:
        return None
    codes, labels = coded
    pr = _model_products(X, Z, y, codes, labels.shape[0], _row_weights(weights, X.shape[0]))
    pr["codes"] = codes
    pr["labels"] = labels
    return pr


cdef Py_ssize_t _column_means(const double[:, ::1] A, double[::1] mean,
                              unsigned char[::1] ones) noexcept nogil:
    """Column means of A into `mean`, whether each column is all ones into
    `ones`; returns the first column of ones, or -1."""
    cdef Py_ssize_t n = A.shape[0], m = A.shape[1], r, j
    cdef double v
    for j in range(m):
        mean[j] = 0.0
        ones[j] = 1 if n > 0 else 0
    for r in range(n):
        for j in range(m):
            v = A[r, j]
            mean[j] += v
            if v != 1.0:
                ones[j] = 0
    for j in range(m):
        if n > 0:
            mean[j] /= n
    for j in range(m):
        if ones[j]:
            return j
    return -1


cdef void _weighted_means(const double[:, ::1] A, const double[::1] w, double w_total,
                          double[::1] mean) noexcept nogil:
    """Weighted column means of A, sum_i w_i A_ij / w_total, into `mean`."""
    cdef Py_ssize_t n = A.shape[0], m = A.shape[1], r, j
    for j in range(m):
        mean[j] = 0.0
    for r in range(n):
        for j in range(m):
            mean[j] += w[r] * A[r, j]
    for j in range(m):
        mean[j] /= w_total


cdef dict _model_products(const double[:, ::1] X, const double[:, ::1] Z, const double[::1] y,
                          const intp_t[::1] codes, Py_ssize_t n_groups, const double[::1] w):
    # (`model_products`, callable from C without re-reading its arguments)
    cdef Py_ssize_t n = X.shape[0], p = X.shape[1], q = Z.shape[1], r, j, k
    if Z.shape[0] != n or y.shape[0] != n or codes.shape[0] != n:
        raise ValueError("X, Z, y and codes must have the same number of rows")
    sizes, offsets, order = _group_blocks(codes, n_groups)
    # -- the shifts: column means, where an intercept absorbs them -----------
    x_shift_arr = np.empty(p)
    z_shift_arr = np.empty(q)
    x_ones_arr = np.empty(p, dtype=np.uint8)
    ones_arr = np.empty(q, dtype=np.uint8)
    cdef double[::1] x_shift = x_shift_arr
    cdef double[::1] z_shift = z_shift_arr
    cdef unsigned char[::1] x_ones = x_ones_arr
    cdef unsigned char[::1] ones = ones_arr
    cdef Py_ssize_t x_icpt, z_icpt
    cdef double y_shift = 0.0, w_total = 0.0
    cdef bint weighted = w is not None
    weight_sums_arr = None
    cdef double[::1] weight_sums
    if weighted:
        weight_sums_arr = np.zeros(n_groups)
        weight_sums = weight_sums_arr
    with nogil:
        x_icpt = _column_means(X, x_shift, x_ones)
        z_icpt = _column_means(Z, z_shift, ones)
        if weighted:
            # (codes were checked by _group_blocks above)
            for r in range(n):
                w_total += w[r]
                weight_sums[codes[r]] += w[r]
            if n > 0:
                _weighted_means(X, w, w_total, x_shift)
                _weighted_means(Z, w, w_total, z_shift)
        if x_icpt >= 0:
            if weighted:
                for r in range(n):
                    y_shift += w[r] * y[r]
                y_shift /= w_total
            else:
                for r in range(n):
                    y_shift += y[r]
                y_shift /= n
        for j in range(p):
            if x_icpt < 0 or x_ones[j]:
                x_shift[j] = 0.0
        for j in range(q):
            if z_icpt < 0 or ones[j]:
                z_shift[j] = 0.0
    ztz, ztx, zty, xtx, xty, yty, x_sum, z_sum, y_sum = _shifted_cross_products(
        X, Z, y, order, offsets, x_shift, z_shift, y_shift, w)
    cdef double[:, :, ::1] ztz_v = ztz
    cdef const double[:, ::1] xtx_v = xtx
    ztz_all_arr = np.zeros((q, q))
    cdef double[:, ::1] ztz_all = ztz_all_arr
    cdef Py_ssize_t g
    cdef double total = yty
    with nogil:
        for g in range(n_groups):
            for j in range(q):
                for k in range(q):
                    ztz_all[j, k] += ztz_v[g, j, k]
        for j in range(q):
            total += ztz_all[j, j]
        for j in range(p):
            total += xtx_v[j, j]
        # (a NaN or infinite shift makes every product non-finite too)
        total += y_shift
    return dict(sizes=sizes, offsets=offsets, order=order, ztz=ztz, ztx=ztx, zty=zty,
                xtx=xtx, xty=xty, yty=yty, x_sum=x_sum, z_sum=z_sum, y_sum=y_sum,
                ztz_all=ztz_all_arr, x_shift=x_shift_arr,
                z_shift=z_shift_arr, y_shift=y_shift, x_intercept=x_icpt, z_intercept=z_icpt,
                finite=bool(total - total == 0.0), ones=ones_arr.astype(bool),
                x_ones=x_ones_arr.astype(bool),
                x_clear=_gershgorin_clear(xtx_v), z_clear=_gershgorin_clear(ztz_all),
                weight_sums=weight_sums_arr)


# ---------------------------------------------------------------------------
# Pass one: the generalized-least-squares system
# ---------------------------------------------------------------------------

cdef int _pass_one(
    const double* lam, const double[:, :, ::1] ztz, const double[:, :, ::1] ztx,
    const double[:, ::1] zty, const double[:, ::1] xtx, const double[::1] xty, double yty,
    int q, int p, double* work,
    double* xvx, double* xvy, double* yvy, double* logdet,
) noexcept nogil:
    """Accumulate X'V^{-1}X, X'V^{-1}y, y'V^{-1}y and log|V| over the groups.

    `work` holds at least q*q*2 + q*(p+1) doubles.
    """
    cdef double* al = work
    cdef double* chol = work + q * q
    cdef double* cc = work + 2 * q * q
    cdef Py_ssize_t g, n_groups = ztz.shape[0]
    cdef int a, b, j
    cdef double s, ld = 0.0
    for a in range(p):
        for b in range(p):
            xvx[a + b * p] = xtx[a, b]
        xvy[a] = xty[a]
    yvy[0] = yty
    for g in range(n_groups):
        _factor_group(&ztz[g, 0, 0], &ztx[g, 0, 0], &zty[g, 0], lam, q, p, al, chol, cc)
        for j in range(q):
            ld += log(chol[j + j * q])
        for b in range(p + 1):
            for a in range(b + 1):
                s = 0.0
                for j in range(q):
                    s += cc[j + a * q] * cc[j + b * q]
                if b < p:
                    xvx[a + b * p] -= s
                elif a < p:
                    xvy[a] -= s
                else:
                    yvy[0] -= s
    for b in range(p):
        for a in range(b):
            xvx[b + a * p] = xvx[a + b * p]
    logdet[0] = 2.0 * ld
    return 0


cdef int _solve_gls(double* xvx, double* xvy, double yvy, int p,
                    double* beta, double* logdet_xvx, double* rss) noexcept nogil:
    """Cholesky-factor X'V^{-1}X in place (lower), solve for beta.

    Returns LAPACK's info: non-zero when X'V^{-1}X is not positive definite.
    """
    cdef int info, a
    cdef double ld = 0.0, s
    info = _cholesky_lower(xvx, p)
    if info != 0:
        return info
    for a in range(p):
        beta[a] = xvy[a]
        ld += log(xvx[a + a * p])
    _solve_lower(xvx, p, beta, 1, False)
    _solve_lower(xvx, p, beta, 1, True)
    s = yvy
    for a in range(p):
        s -= beta[a] * xvy[a]
    logdet_xvx[0] = 2.0 * ld
    rss[0] = s
    return 0


cdef double _criterion(double logdet, double logdet_xvx, double rss, double nobs,
                       int p, bint reml) noexcept nogil:
    """-2 log-likelihood (ML) or -2 REML log-likelihood, profiled."""
    cdef double nu = nobs - p if reml else nobs
    cdef double dev = logdet + nu * (1.0 + log(2.0 * M_PI * rss / nu))
    if reml:
        dev += logdet_xvx
    return dev


cdef object _lower_fortran(const double[:, ::1] lam):
    """The lower triangle of lam, column-major (np.tril(lam).copy(order="F"))."""
    cdef Py_ssize_t q = lam.shape[0], j, k
    out = np.zeros((q, lam.shape[1]), order="F")
    cdef double[::1, :] o = out
    for k in range(lam.shape[1]):
        for j in range(k, q):
            o[j, k] = lam[j, k]
    return out


cdef int _check_lam(const double[:, ::1] lam, Py_ssize_t q, str name="lam") except -1:
    if lam.shape[0] != q or lam.shape[1] != q:
        raise ValueError(f"{name} must be ({q}, {q}), got {tuple(lam.shape)[:2]}")
    return 0


def deviance(const double[:, ::1] lam, const double[:, :, ::1] ztz,
             const double[:, :, ::1] ztx, const double[:, ::1] zty,
             const double[:, ::1] xtx, const double[::1] xty, double yty,
             double nobs, bint reml, double[:, ::1] grad=None,
             double[:, :, ::1] pieces=None):
    """Profiled deviance (-2 log-likelihood, ML or REML) at a relative factor.

    Parameters
    ----------
    lam : (q, q) float64, lower-triangular relative covariance factor Lambda
    ztz, ztx, zty, xtx, xty, yty : the cross-products (see `cross_products`)
    nobs : number of observations n
    reml : REML criterion if true, ML otherwise
    grad : (q, q) float64 or None
        If given, receives d deviance / d Lambda_jk in its lower triangle
        (the upper triangle is the derivative for a full matrix and is to be
        ignored).
    pieces : (2, q, q) float64 or None
        If given, receives the gradients with respect to G = Lambda Lambda'
        (as symmetric S with derivative tr(S dG)) of log|V| (+ log|X'V^-1 X|
        under REML) in pieces[0] and of rss in pieces[1], for criteria other
        than the profiled one (profiles over a variance on the cov_re scale).

    Returns
    -------
    (deviance, rss) : the criterion and y'V^{-1}y - beta'X'V^{-1}y.
        The deviance is +inf when X'V^{-1}X is not positive definite.
    """
    _check_products(ztz, ztx, zty, xtx, xty)
    cdef int q = ztz.shape[1], p = ztx.shape[2]
    cdef Py_ssize_t n_groups = ztz.shape[0], g
    _check_lam(lam, q)
    if grad is not None:
        _check_lam(grad, q, "grad")
    if pieces is not None and (pieces.shape[0] != 2 or pieces.shape[1] != q
                               or pieces.shape[2] != q):
        raise ValueError(f"pieces must be (2, {q}, {q})")
    cdef int nwork = 2 * q * q + q * (p + 1)          # pass one
    nwork += p * p + p + p                             # xvx, xvy, beta
    nwork += q * q + q                                 # lam, u
    nwork += 2 * q * q + q * (p + 1)                   # f, w, hv
    nwork += 3 * q * q + q * p                         # sw, sk, suu, y
    cdef double* work = <double*>malloc(nwork * sizeof(double))
    if work == NULL:
        raise MemoryError()
    cdef double* pass_work = work
    cdef double* xvx = pass_work + 2 * q * q + q * (p + 1)
    cdef double* xvy = xvx + p * p
    cdef double* beta = xvy + p
    cdef double* lam_c = beta + p
    cdef double* u = lam_c + q * q
    cdef double* f = u + q
    cdef double* w = f + q * q
    cdef double* hv = w + q * q
    cdef double* sw = hv + q * (p + 1)
    cdef double* sk = sw + q * q
    cdef double* suu = sk + q * q
    cdef double* yk = suu + q * q
    cdef double yvy = 0.0, logdet = 0.0, logdet_xvx = 0.0, rss = 0.0, dev, nu, s
    cdef int info, j, k, m, c
    cdef double* al = pass_work
    cdef double* chol = pass_work + q * q
    cdef double* cc = pass_work + 2 * q * q
    cdef bint want_grad = grad is not None or pieces is not None
    cdef bint want_grad_lam = grad is not None
    cdef bint want_pieces = pieces is not None
    try:
        with nogil:
            for k in range(q):
                for j in range(q):
                    lam_c[j + k * q] = lam[j, k] if j >= k else 0.0
            _pass_one(lam_c, ztz, ztx, zty, xtx, xty, yty, q, p, pass_work,
                      xvx, xvy, &yvy, &logdet)
            info = _solve_gls(xvx, xvy, yvy, p, beta, &logdet_xvx, &rss)
            if info != 0 or rss <= 0.0:
                dev = INFINITY
            else:
                dev = _criterion(logdet, logdet_xvx, rss, nobs, p, reml)
            if want_grad and info == 0 and rss > 0.0:
                for j in range(q * q):
                    sw[j] = 0.0
                    sk[j] = 0.0
                    suu[j] = 0.0
                for g in range(n_groups):
                    _factor_group(&ztz[g, 0, 0], &ztx[g, 0, 0], &zty[g, 0], lam_c, q, p,
                                  al, chol, cc)
                    _group_second_pass(&ztz[g, 0, 0], &ztx[g, 0, 0], &zty[g, 0], q, p,
                                       al, chol, cc, beta, f, w, hv, u)
                    # yk (p x q) = Lp^{-1} H', so H P^{-1} H' = yk' yk
                    for j in range(q):
                        for c in range(p):
                            yk[c + j * p] = hv[j + c * q]
                    _solve_lower(xvx, p, yk, q, False)
                    for k in range(q):
                        for j in range(q):
                            sw[j + k * q] += w[j + k * q]
                            suu[j + k * q] += u[j] * u[k]
                            s = 0.0
                            for c in range(p):
                                s += yk[c + j * p] * yk[c + k * p]
                            sk[j + k * q] += s
                # S = d deviance / dG (as tr(S dG)); d/dLambda = 2 S Lambda
                nu = nobs - p if reml else nobs
                if want_pieces:
                    for k in range(q):
                        for j in range(q):
                            pieces[0, j, k] = sw[j + k * q] - (sk[j + k * q] if reml else 0.0)
                            pieces[1, j, k] = -suu[j + k * q]
                for j in range(q * q):
                    sw[j] = sw[j] - nu / rss * suu[j] - (sk[j] if reml else 0.0)
                if want_grad_lam:
                    for k in range(q):
                        for j in range(q):
                            s = 0.0
                            for m in range(k, q):
                                s += sw[j + m * q] * lam_c[m + k * q]
                            grad[j, k] = 2.0 * s
    finally:
        free(work)
    return dev, rss


def solve(const double[:, ::1] lam, const double[:, :, ::1] ztz,
          const double[:, :, ::1] ztx, const double[:, ::1] zty,
          const double[:, ::1] xtx, const double[::1] xty, double yty):
    """The generalized-least-squares solution at a relative factor.

    Returns
    -------
    dict with beta (p,), xvx (p, p) = X'V^{-1}X, logdet_v = log|V|,
    logdet_xvx = log|X'V^{-1}X|, rss = (y - X beta)'V^{-1}(y - X beta),
    info (0, or LAPACK's code when X'V^{-1}X is not positive definite).
    """
    _check_products(ztz, ztx, zty, xtx, xty)
    cdef int q = ztz.shape[1], p = ztx.shape[2]
    _check_lam(lam, q)
    lam_arr = _lower_fortran(lam)
    cdef double[::1, :] lam_c = lam_arr
    work_arr = np.empty(2 * q * q + q * (p + 1))
    xvx_arr = np.empty((p, p), order="F")
    xvy_arr = np.empty(p)
    beta_arr = np.zeros(p)
    cdef double[::1] work = work_arr
    cdef double[::1, :] xvx = xvx_arr
    cdef double[::1] xvy = xvy_arr
    cdef double[::1] beta = beta_arr
    cdef double yvy = 0.0, logdet = 0.0, logdet_xvx = float('nan'), rss = float('nan')
    cdef int info
    with nogil:
        _pass_one(&lam_c[0, 0], ztz, ztx, zty, xtx, xty, yty, q, p, &work[0],
                  &xvx[0, 0], &xvy[0], &yvy, &logdet)
    xvx_full = np.array(xvx_arr)
    with nogil:
        info = _solve_gls(&xvx[0, 0], &xvy[0], yvy, p, &beta[0], &logdet_xvx, &rss)
    return dict(beta=beta_arr, xvx=xvx_full, logdet_v=logdet, logdet_xvx=logdet_xvx,
                rss=rss, info=info)


# ---------------------------------------------------------------------------
# Second derivatives
# ---------------------------------------------------------------------------

cdef void _accumulate_second_order(
    const double* lam, const double[:, :, ::1] ztz, const double[:, :, ::1] ztx,
    const double[:, ::1] zty, int q, int p, const double* beta, const double* xvx_chol,
    const double* dirs, int nd, double* work,
    double* sw, double* sk, double* suu, double* hld, double* hk, double* hq,
    double* dxvx, double* gvec,
) noexcept nogil:
    """Per-group sums behind the second derivatives along directions D_a in G.

    dirs holds nd column-major q x q symmetric matrices.  Outputs (zeroed
    here; column-major):
      sw = sum W, sk = sum K (K = H P^-1 H'), suu = sum u u'       (q x q)
      hld[a, b] = -sum tr(W D_a W D_b)                              (lower part)
      hk[a, b]  =  sum tr(K D_a W D_b)                              (full)
      hq[a, b]  = 2 sum u' D_a W D_b u                              (lower part)
      dxvx[a]   = -sum H' D_a H   (p x p, lower part)   gvec[a] = sum H' D_a u
    `work` holds at least 5q^2 + 2q(p+1) + q + pq + nd(2q^2 + q + qp) doubles.
    """
    cdef Py_ssize_t g, n_groups = ztz.shape[0]
    cdef int a, b, j, k, c, d, i
    cdef double s
    cdef double* al = work
    cdef double* chol = al + q * q
    cdef double* cc = chol + q * q
    cdef double* f = cc + q * (p + 1)
    cdef double* w = f + q * q
    cdef double* kmat = w + q * q
    cdef double* hv = kmat + q * q
    cdef double* u = hv + q * (p + 1)
    cdef double* yk = u + q
    cdef double* wd = yk + p * q          # nd blocks of q*q: W D_a
    cdef double* kd = wd + nd * q * q     # K D_a
    cdef double* du = kd + nd * q * q     # D_a u
    cdef double* dh = du + nd * q         # D_a H (q x p)
    for i in range(q * q):
        sw[i] = 0.0
        sk[i] = 0.0
        suu[i] = 0.0
    for i in range(nd * nd):
        hld[i] = 0.0
        hk[i] = 0.0
        hq[i] = 0.0
    for i in range(nd * p * p):
        dxvx[i] = 0.0
    for i in range(nd * p):
        gvec[i] = 0.0
    for g in range(n_groups):
        _factor_group(&ztz[g, 0, 0], &ztx[g, 0, 0], &zty[g, 0], lam, q, p, al, chol, cc)
        _group_second_pass(&ztz[g, 0, 0], &ztx[g, 0, 0], &zty[g, 0], q, p,
                           al, chol, cc, beta, f, w, hv, u)
        for j in range(q):
            for c in range(p):
                yk[c + j * p] = hv[j + c * q]
        _solve_lower(xvx_chol, p, yk, q, False)
        for k in range(q):
            for j in range(q):
                s = 0.0
                for c in range(p):
                    s += yk[c + j * p] * yk[c + k * p]
                kmat[j + k * q] = s
                sw[j + k * q] += w[j + k * q]
                sk[j + k * q] += s
                suu[j + k * q] += u[j] * u[k]
        for a in range(nd):
            _matmul(w, dirs + a * q * q, wd + a * q * q, q, q, q)
            _matmul(kmat, dirs + a * q * q, kd + a * q * q, q, q, q)
            _matmul(dirs + a * q * q, u, du + a * q, q, q, 1)
            _matmul(dirs + a * q * q, hv, dh + a * q * p, q, q, p)
            for c in range(p):
                s = 0.0
                for j in range(q):
                    s += hv[j + c * q] * du[a * q + j]
                gvec[a * p + c] += s
                for d in range(c + 1):
                    s = 0.0
                    for j in range(q):
                        s += hv[j + c * q] * dh[a * q * p + j + d * q]
                    dxvx[a * p * p + c + d * p] -= s
        for a in range(nd):
            for b in range(a + 1):
                hld[a + b * nd] -= _trace_product(wd + a * q * q, wd + b * q * q, q)
                s = 0.0
                for j in range(q):
                    for k in range(q):
                        s += du[a * q + j] * w[j + k * q] * du[b * q + k]
                hq[a + b * nd] += 2.0 * s
            for b in range(nd):
                hk[a + b * nd] += _trace_product(kd + a * q * q, wd + b * q * q, q)
    # complete the symmetric lower parts
    for a in range(nd):
        for b in range(a):
            hld[b + a * nd] = hld[a + b * nd]
            hq[b + a * nd] = hq[a + b * nd]
        for c in range(p):
            for d in range(c):
                dxvx[a * p * p + d + c * p] = dxvx[a * p * p + c + d * p]


cdef inline int _second_order_work(int q, int p, int nd) noexcept nogil:
    return 5 * q * q + 2 * q * (p + 1) + q + p * q + nd * (2 * q * q + q + q * p)


def second_derivatives(const double[:, ::1] lam, const double[:, :, ::1] ztz,
                       const double[:, :, ::1] ztx, const double[:, ::1] zty,
                       const double[:, ::1] xtx, const double[::1] xty, double yty,
                       const double[:, :, ::1] directions):
    """Derivatives of the three parts of the profiled criterion along directions in G.

    With G = Lambda Lambda' the relative covariance, the profiled criteria are
    built from three functions of G:

        logdet_v(G)   = log|V|
        logdet_xvx(G) = log|X'V^{-1}X|
        rss(G)        = min_beta (y - X beta)'V^{-1}(y - X beta)

    This kernel returns their gradients as symmetric matrices S (so that the
    derivative along a symmetric direction D is tr(S D)) and their second
    derivatives along each pair of the given symmetric directions D_a, D_b.
    The Python layer combines them into the Hessian of any parametrization
    (cov_re and scale for standard errors; `deviance_hessian` does theta).

    Parameters
    ----------
    lam : (q, q) lower-triangular factor
    directions : (n_dir, q, q) symmetric matrices

    Returns
    -------
    dict with beta, xvx (p, p), logdet_v, logdet_xvx, rss, info and
      grad_logdet_v, grad_logdet_xvx, grad_rss : (q, q)
      hess_logdet_v, hess_logdet_xvx, hess_rss : (n_dir, n_dir)
    """
    _check_products(ztz, ztx, zty, xtx, xty)
    cdef int q = ztz.shape[1], p = ztx.shape[2], nd = directions.shape[0]
    _check_lam(lam, q)
    if directions.shape[1] != q or directions.shape[2] != q:
        raise ValueError("directions must be (n_dir, q, q)")
    base = solve(lam, ztz, ztx, zty, xtx, xty, yty)
    if base["info"] != 0:
        raise np.linalg.LinAlgError("X'V^{-1}X is not positive definite")
    lam_arr = _lower_fortran(lam)
    cdef double[::1, :] lam_c = lam_arr
    xvx_chol_arr = np.linalg.cholesky(base["xvx"]).copy(order="F")
    xvx_inv = np.linalg.inv(base["xvx"])
    cdef double[::1, :] xvx_chol = xvx_chol_arr
    cdef double[::1] beta = base["beta"]
    dirs_arr = np.asarray(directions).transpose(0, 2, 1).copy()   # column-major blocks
    cdef double[:, :, ::1] dirs = dirs_arr
    work_arr = np.zeros(_second_order_work(q, p, nd))
    cdef double[::1] work = work_arr
    sw_arr = np.zeros((q, q), order="F")
    sk_arr = np.zeros((q, q), order="F")
    suu_arr = np.zeros((q, q), order="F")
    hld_arr = np.zeros((nd, nd), order="F")
    hk_arr = np.zeros((nd, nd), order="F")
    hq_arr = np.zeros((nd, nd), order="F")
    dxvx_arr = np.zeros((nd, p, p))     # each block column-major
    gvec_arr = np.zeros((nd, p))
    cdef double[::1, :] sw = sw_arr
    cdef double[::1, :] sk = sk_arr
    cdef double[::1, :] suu = suu_arr
    cdef double[::1, :] hld = hld_arr
    cdef double[::1, :] hk = hk_arr
    cdef double[::1, :] hq = hq_arr
    cdef double[:, :, ::1] dxvx = dxvx_arr
    cdef double[:, ::1] gvec = gvec_arr
    if nd > 0:
        with nogil:
            _accumulate_second_order(
                &lam_c[0, 0], ztz, ztx, zty, q, p, &beta[0], &xvx_chol[0, 0],
                &dirs[0, 0, 0], nd, &work[0], &sw[0, 0], &sk[0, 0], &suu[0, 0],
                &hld[0, 0], &hk[0, 0], &hq[0, 0], &dxvx[0, 0, 0], &gvec[0, 0])
    dxvx_arr = dxvx_arr.transpose(0, 2, 1)    # blocks back to row-major (symmetric anyway)
    # d2 log|P| = -tr(P^-1 dP_a P^-1 dP_b) + tr(P^-1 d2P_ab),
    # with tr(P^-1 d2P_ab) = sum_g tr(K D_a W D_b) + tr(K D_b W D_a).
    pd = np.einsum("ij,ajk->aik", xvx_inv, dxvx_arr)
    hess_logdet_xvx = -np.einsum("aij,bji->ab", pd, pd) + hk_arr + hk_arr.T
    # d2 rss = 2 sum_g u'D_a W D_b u - 2 g_a' P^-1 g_b
    hess_rss = hq_arr - 2.0 * gvec_arr @ xvx_inv @ gvec_arr.T
    out = dict(base)
    out.update(
        grad_logdet_v=np.ascontiguousarray(sw_arr),
        grad_logdet_xvx=-np.ascontiguousarray(sk_arr),
        grad_rss=-np.ascontiguousarray(suu_arr),
        hess_logdet_v=np.ascontiguousarray(hld_arr),
        hess_logdet_xvx=hess_logdet_xvx,
        hess_rss=hess_rss,
    )
    return out


cdef inline int _deviance_hessian_work(int q, int p, int nd) noexcept nogil:
    cdef int nwork = 2 * q * q + q * (p + 1) + 2 * p * p + 3 * p + q * q
    nwork += nd * q * q + 3 * q * q + 3 * nd * nd + nd * p * p + nd * p + p * p * nd
    nwork += _second_order_work(q, p, nd) + q * q
    return nwork


cdef double _deviance_hessian_core(
    const double* lam_c, const double[:, :, ::1] ztz, const double[:, :, ::1] ztx,
    const double[:, ::1] zty, const double[:, ::1] xtx, const double[::1] xty, double yty,
    double nobs, bint reml, const intp_t* rows, const intp_t* cols, int nd, int q, int p,
    double* work, bint want_deriv, double* grad, double* hess,
    double* piece_grad, double* piece_hess, double* rss_out,
) noexcept nogil:
    """The profiled deviance at Lambda (column-major lam_c); with want_deriv its
    gradient (nd) and Hessian (nd x nd, column-major) in theta, and if
    piece_grad / piece_hess are not NULL those of L and rss (2 x nd, 2 blocks
    of nd x nd).  `work` holds _deviance_hessian_work(q, p, nd) doubles.
    Returns +inf when X'V^-1 X is not positive definite (outputs untouched).
    """
    cdef bint want_pieces = piece_grad != NULL and piece_hess != NULL
    cdef double* pass_work = work
    cdef double* xvx = pass_work + 2 * q * q + q * (p + 1)
    cdef double* xvy = xvx + p * p
    cdef double* beta = xvy + p
    cdef double* dirs = beta + p + q * q
    cdef double* sw = dirs + nd * q * q
    cdef double* sk = sw + q * q
    cdef double* suu = sk + q * q
    cdef double* hld = suu + q * q
    cdef double* hk = hld + nd * nd
    cdef double* hq = hk + nd * nd
    cdef double* dxvx = hq + nd * nd
    cdef double* gvec = dxvx + nd * p * p
    cdef double* pinv_dp = gvec + nd * p        # P^-1 dP_a, nd blocks of p x p
    cdef double* ginv = pinv_dp + nd * p * p     # P^-1 g_a, reuses p per a (nd * p fits)
    cdef double* second_work = ginv + p
    cdef double* stot = second_work + _second_order_work(q, p, nd)
    cdef double yvy = 0.0, logdet = 0.0, logdet_xvx = 0.0, rss = 0.0, dev, nu, s, s2
    cdef double d_rss_a, d_rss_b
    cdef int info, a, b, i, m, ja, ka, jb, kb
    _pass_one(lam_c, ztz, ztx, zty, xtx, xty, yty, q, p, pass_work,
              xvx, xvy, &yvy, &logdet)
    info = _solve_gls(xvx, xvy, yvy, p, beta, &logdet_xvx, &rss)
    if info != 0 or not rss > 0.0:
        dev = INFINITY
    else:
        dev = _criterion(logdet, logdet_xvx, rss, nobs, p, reml)
    if want_deriv and dev < INFINITY:
        nu = nobs - p if reml else nobs
        # directions D_a = E_a Lambda' + Lambda E_a', E_a = e_j e_k'
        for a in range(nd):
            ja = rows[a]
            ka = cols[a]
            for i in range(q * q):
                dirs[a * q * q + i] = 0.0
            for m in range(q):
                # (E_a Lambda')[ja, m] = Lambda[m, ka]; (Lambda E_a')[m, ja] = Lambda[m, ka]
                dirs[a * q * q + ja + m * q] += lam_c[m + ka * q]
                dirs[a * q * q + m + ja * q] += lam_c[m + ka * q]
        _accumulate_second_order(lam_c, ztz, ztx, zty, q, p, beta, xvx, dirs, nd,
                                 second_work, sw, sk, suu, hld, hk, hq, dxvx, gvec)
        # gradient matrix of the criterion in G
        for i in range(q * q):
            stot[i] = sw[i] - nu / rss * suu[i] - (sk[i] if reml else 0.0)
        for a in range(nd):
            # P^-1 dP_a by two triangular solves on the Cholesky factor
            for i in range(p * p):
                pinv_dp[a * p * p + i] = dxvx[a * p * p + i]
            _solve_lower(xvx, p, pinv_dp + a * p * p, p, False)
            _solve_lower(xvx, p, pinv_dp + a * p * p, p, True)
        for a in range(nd):
            grad[a] = _trace_product(stot, dirs + a * q * q, q)
            for i in range(p):
                ginv[i] = gvec[a * p + i]
            _solve_lower(xvx, p, ginv, 1, False)
            _solve_lower(xvx, p, ginv, 1, True)
            d_rss_a = -_trace_product(suu, dirs + a * q * q, q)
            ja = rows[a]
            ka = cols[a]
            if want_pieces:
                piece_grad[a] = grad[a] - nu / rss * d_rss_a
                piece_grad[nd + a] = d_rss_a
            for b in range(a + 1):
                jb = rows[b]
                kb = cols[b]
                d_rss_b = -_trace_product(suu, dirs + b * q * q, q)
                s2 = 0.0
                for i in range(p):
                    s2 += gvec[b * p + i] * ginv[i]
                # second derivatives of L and of rss; the terms
                # 2 S[j_a, j_b] come from G(theta) = Lambda Lambda' being
                # quadratic (nonzero when theta_a, theta_b share a column)
                h_l = hld[a + b * nd]
                if reml:
                    h_l += hk[a + b * nd] + hk[b + a * nd]
                    h_l -= _trace_product(pinv_dp + a * p * p, pinv_dp + b * p * p, p)
                h_r = hq[a + b * nd] - 2.0 * s2
                if ka == kb:
                    h_l += 2.0 * (sw[ja + jb * q] - (sk[ja + jb * q] if reml else 0.0))
                    h_r -= 2.0 * suu[ja + jb * q]
                s = h_l + nu / rss * h_r - nu * d_rss_a * d_rss_b / (rss * rss)
                hess[a + b * nd] = s
                hess[b + a * nd] = s
                if want_pieces:
                    piece_hess[a + b * nd] = h_l
                    piece_hess[b + a * nd] = h_l
                    piece_hess[nd * nd + a + b * nd] = h_r
                    piece_hess[nd * nd + b + a * nd] = h_r
    rss_out[0] = rss
    return dev


def deviance_hessian(const double[:, ::1] lam, const double[:, :, ::1] ztz,
                     const double[:, :, ::1] ztx, const double[:, ::1] zty,
                     const double[:, ::1] xtx, const double[::1] xty, double yty,
                     double nobs, bint reml, const intp_t[::1] theta_rows,
                     const intp_t[::1] theta_cols, double[::1] grad, double[:, ::1] hess,
                     double[:, ::1] piece_grad=None, double[:, :, ::1] piece_hess=None):
    """Profiled deviance with its gradient and Hessian in theta, in one call.

    theta_a is the entry (theta_rows[a], theta_cols[a]) of Lambda; the
    gradient and Hessian are written into `grad` (n_theta,) and `hess`
    (n_theta, n_theta).  (`Criterion` does the same without re-reading its
    arguments each call.)

    If `piece_grad` (2, n_theta) and `piece_hess` (2, n_theta, n_theta) are
    given, they receive the gradient and Hessian in theta of the two parts
    the criterion is made of, L = log|V| (+ log|X'V^-1 X| under REML) and
    rss, for criteria built differently from them (profiles).  Then
    deviance = L + nu (1 + log(2 pi rss / nu)).

    Returns
    -------
    (deviance, rss) : the criterion (+inf when X'V^{-1}X is not positive
        definite, and then the outputs are left untouched) and
        rss = y'V^{-1}y - beta'X'V^{-1}y.
    """
    _check_products(ztz, ztx, zty, xtx, xty)
    cdef int q = ztz.shape[1], p = ztx.shape[2], nd = theta_rows.shape[0]
    _check_lam(lam, q)
    if theta_cols.shape[0] != nd or grad.shape[0] != nd or hess.shape[0] != nd \
            or hess.shape[1] != nd:
        raise ValueError("theta_rows, theta_cols, grad and hess must agree in length")
    cdef bint want_pieces = piece_grad is not None and piece_hess is not None
    if want_pieces and (piece_grad.shape[0] != 2 or piece_grad.shape[1] != nd
                        or piece_hess.shape[0] != 2 or piece_hess.shape[1] != nd
                        or piece_hess.shape[2] != nd):
        raise ValueError("piece_grad must be (2, n_theta) and piece_hess (2, n_theta, n_theta)")
    cdef Py_ssize_t t
    for t in range(nd):
        if not (0 <= theta_cols[t] <= theta_rows[t] < q):
            raise ValueError("theta indices must address the lower triangle of Lambda")
    lam_arr = _lower_fortran(lam)
    cdef double[::1, :] lam_c = lam_arr
    work_arr = np.empty(_deviance_hessian_work(q, p, nd))
    cdef double[::1] work = work_arr
    hess_c_arr = np.empty((nd, nd), order="F")
    cdef double[::1, :] hess_c = hess_c_arr
    pg_arr = np.empty((2, nd))
    ph_arr = np.empty((2, nd, nd))       # blocks column-major; symmetric anyway
    cdef double[:, ::1] pg = pg_arr
    cdef double[:, :, ::1] ph = ph_arr
    cdef double rss = 0.0, dev
    cdef double* pg_ptr = &pg[0, 0] if want_pieces and nd > 0 else NULL
    cdef double* ph_ptr = &ph[0, 0, 0] if want_pieces and nd > 0 else NULL
    cdef double* grad_ptr = &grad[0] if nd > 0 else NULL
    cdef double* hess_ptr = &hess_c[0, 0] if nd > 0 else NULL
    with nogil:
        dev = _deviance_hessian_core(&lam_c[0, 0], ztz, ztx, zty, xtx, xty, yty, nobs, reml,
                                     &theta_rows[0] if nd > 0 else NULL,
                                     &theta_cols[0] if nd > 0 else NULL, nd, q, p,
                                     &work[0], True, grad_ptr, hess_ptr, pg_ptr, ph_ptr, &rss)
    if dev != INFINITY:
        np.asarray(hess)[...] = hess_c_arr
        if want_pieces:
            np.asarray(piece_grad)[...] = pg_arr
            np.asarray(piece_hess)[...] = ph_arr
    return dev, rss


# ---------------------------------------------------------------------------
# Conditional modes of the random effects
# ---------------------------------------------------------------------------

def conditional_modes(const double[:, ::1] lam, const double[:, :, ::1] ztz,
                      const double[:, :, ::1] ztx, const double[:, ::1] zty,
                      const double[::1] beta):
    """Conditional modes (BLUPs) b_g and their relative conditional covariances.

    Returns
    -------
    modes : (n_groups, q), b_g = Lambda L_g'^{-1} (c_g - C_g beta)
    cond_cov : (n_groups, q, q), Lambda M_g^{-1} Lambda' (multiply by the scale
        for the conditional covariance of b_g given the data)
    """
    _check_products(ztz, ztx, zty, None, None)
    cdef int q = ztz.shape[1], p = ztx.shape[2]
    cdef Py_ssize_t n_groups = ztz.shape[0], g
    _check_lam(lam, q)
    if beta.shape[0] != p:
        raise ValueError(f"beta must have length {p}")
    lam_arr = _lower_fortran(lam)
    cdef double[::1, :] lam_c = lam_arr
    modes_arr = np.zeros((n_groups, q))
    cov_arr = np.zeros((n_groups, q, q))
    cdef double[:, ::1] modes = modes_arr
    cdef double[:, :, ::1] cov = cov_arr
    work_arr = np.zeros(2 * q * q + q * (p + 1) + q + q * q)
    cdef double[::1] work = work_arr
    cdef double* al = &work[0]
    cdef double* chol = al + q * q
    cdef double* cc = chol + q * q
    cdef double* u = cc + q * (p + 1)
    cdef double* x = u + q
    cdef int j, k, m, c
    cdef double s
    with nogil:
        for g in range(n_groups):
            _factor_group(&ztz[g, 0, 0], &ztx[g, 0, 0], &zty[g, 0], &lam_c[0, 0], q, p,
                          al, chol, cc)
            for j in range(q):
                s = cc[j + p * q]
                for c in range(p):
                    s -= cc[j + c * q] * beta[c]
                u[j] = s
            _solve_lower(chol, q, u, 1, True)
            # x = L^{-1} Lambda'  so that Lambda M^{-1} Lambda' = x'x
            for k in range(q):
                for j in range(q):
                    x[j + k * q] = lam_c[k, j]
            _solve_lower(chol, q, x, q, False)
            for j in range(q):
                s = 0.0
                for m in range(j + 1):
                    s += lam_c[j, m] * u[m]
                modes[g, j] = s
                for k in range(q):
                    s = 0.0
                    for m in range(q):
                        s += x[m + j * q] * x[m + k * q]
                    cov[g, j, k] = s
    return modes_arr, cov_arr


# ---------------------------------------------------------------------------
# The optimizer: trust-region Newton over theta, in C
# ---------------------------------------------------------------------------

cdef class Criterion:
    """The criterion the optimizer minimizes, bound to one set of cross-products.

    By default the profiled deviance (-2 log-likelihood, ML or REML) in theta.
    After `set_profile(v, t_row)` it is the criterion of a variance profile:
    -2 l(theta, scale) with scale = v / g(theta), g = |t_row' Lambda|^2 the
    variance's relative value (see lmm/profile.py).  `minimize` runs the
    trust-region Newton iterations in C; `value` and `value_grad_hessian` are
    the same evaluations for Python.

    Parameters
    ----------
    ztz, ztx, zty, xtx, xty, yty : cross-products (see `cross_products`)
    nobs : number of observations
    reml : REML or ML
    theta_rows, theta_cols : (n_theta,) the Lambda entries that theta holds
    lower : (n_theta,) lower bounds (0 or -inf)
    shift : added to every value (the REML constant of a rescaled X)
    """

    # (attributes and C methods declared in _core.pxd, for the many-responses
    # fitter, which drives this criterion from lmm/_many_responses.pyx)

    def __init__(self, ztz, ztx, zty, xtx, xty, double yty, double nobs, bint reml,
                 theta_rows, theta_cols, lower, double shift=0.0):
        self.ztz = ztz
        self.ztx = ztx
        self.zty = zty
        self.xtx = xtx
        self.xty = xty
        self.yty = yty
        self.nobs = nobs
        self.reml = reml
        self.shift = shift
        self.q = self.ztz.shape[1]
        self.p = self.ztx.shape[2]
        self.rows = np.ascontiguousarray(theta_rows, dtype=np.intp)
        self.cols = np.ascontiguousarray(theta_cols, dtype=np.intp)
        self.lower = np.ascontiguousarray(lower, dtype=float)
        self.nd = self.rows.shape[0]
        if self.cols.shape[0] != self.nd or self.lower.shape[0] != self.nd:
            raise ValueError("theta_rows, theta_cols and lower must have the same length")
        _check_products(self.ztz, self.ztx, self.zty, self.xtx, self.xty)
        _check_theta_indices(self.rows, self.cols, self.q, "theta")
        self.nu = nobs - self.p if reml else nobs
        cdef int nd = self.nd
        self.work = np.empty(_deviance_hessian_work(self.q, self.p, nd))
        # lam, grad, hess, pieces (2 nd + 2 nd^2), optimizer state (theta, g, h,
        # cand, step, free-space copies, eigen), profile helpers
        self.buf = np.empty(self.q * self.q + 8 * nd + 6 * nd * nd + 2 * nd + 8 * nd + 16)
        self.profile = 0
        self.prof_v = 0.0
        self.t_row = np.zeros(self.q)
        self.n_evaluations = 0
        self._end = None

    def set_profile(self, double v, t_row):
        """Switch to the profile criterion of a variance held at v (> 0)."""
        if not v > 0:
            raise ValueError("the profiled variance must be positive")
        t_row = np.ascontiguousarray(t_row, dtype=float)
        if t_row.shape[0] != self.q:
            raise ValueError(f"t_row must have length {self.q}")
        self.t_row = t_row
        self.prof_v = v
        self.profile = 1
        self._end = None

    def set_scale_profile(self, double scale):
        """Switch to -2 l(theta, scale) with the residual variance held at `scale`."""
        if not scale > 0:
            raise ValueError("the residual variance must be positive")
        self.prof_v = scale
        self.profile = 2
        self._end = None

    def clear_profile(self):
        self.profile = 0
        self._end = None

    cdef double _eval(self, const double* theta, bint want_deriv, double* grad,
                      double* hess) noexcept nogil:
        cdef int q = self.q, nd = self.nd, a, b, j, k
        cdef double* lam = &self.buf[0]
        cdef double* pg = lam + q * q
        cdef double* ph = pg + 2 * nd
        cdef double* dg = ph + 2 * nd * nd
        cdef double* r = dg + nd
        cdef double rss = 0.0, dev, g, v, nu, logdets, f, c1
        self.n_evaluations += 1
        for k in range(q * q):
            lam[k] = 0.0
        for a in range(nd):
            lam[self.rows[a] + self.cols[a] * q] = theta[a]
        if not self.profile:
            dev = _deviance_hessian_core(lam, self.ztz, self.ztx, self.zty, self.xtx, self.xty,
                                         self.yty, self.nobs, self.reml, &self.rows[0],
                                         &self.cols[0], nd, q, self.p, &self.work[0],
                                         want_deriv, grad, hess, NULL, NULL, &rss)
            return dev + self.shift
        dev = _deviance_hessian_core(lam, self.ztz, self.ztx, self.zty, self.xtx, self.xty,
                                     self.yty, self.nobs, self.reml, &self.rows[0],
                                     &self.cols[0], nd, q, self.p, &self.work[0],
                                     want_deriv, grad, hess, pg if want_deriv else NULL,
                                     ph if want_deriv else NULL, &rss)
        nu = self.nu
        if self.profile == 2:
            # scale s held: -2 l = L + nu log(2 pi s) + rss / s
            if dev == INFINITY:
                return INFINITY
            v = self.prof_v
            logdets = dev - nu * (1.0 + log(2.0 * M_PI * rss / nu))
            if want_deriv:
                for a in range(nd):
                    grad[a] = pg[a] + pg[nd + a] / v
                    for b in range(nd):
                        hess[a + b * nd] = ph[a + b * nd] + ph[nd * nd + a + b * nd] / v
            return logdets + nu * log(2.0 * M_PI * v) + rss / v + self.shift
        # g = |row of T Lambda|^2 and its derivatives in theta
        for k in range(q):
            r[k] = 0.0
            for j in range(q):
                r[k] += self.t_row[j] * lam[j + k * q]
        g = 0.0
        for k in range(q):
            g += r[k] * r[k]
        if dev == INFINITY or not g > 0:
            return INFINITY
        v = self.prof_v
        logdets = dev - nu * (1.0 + log(2.0 * M_PI * rss / nu))
        f = logdets + nu * log(2.0 * M_PI * v / g) + rss * g / v
        if want_deriv:
            for a in range(nd):
                dg[a] = 2.0 * self.t_row[self.rows[a]] * r[self.cols[a]]
            c1 = rss / v - nu / g
            for a in range(nd):
                grad[a] = pg[a] + (g / v) * pg[nd + a] + c1 * dg[a]
                for b in range(nd):
                    hess[a + b * nd] = (
                        ph[a + b * nd] + (g / v) * ph[nd * nd + a + b * nd]
                        + (pg[nd + a] * dg[b] + dg[a] * pg[nd + b]) / v
                        + (nu / (g * g)) * dg[a] * dg[b])
                    if self.cols[a] == self.cols[b]:
                        hess[a + b * nd] += c1 * 2.0 * self.t_row[self.rows[a]] \
                            * self.t_row[self.rows[b]]
        return f + self.shift

    def value(self, theta):
        cdef double[::1] th = np.ascontiguousarray(theta, dtype=float)
        if th.shape[0] != self.nd:
            raise ValueError(f"theta must have length {self.nd}")
        return self._eval(&th[0] if self.nd else NULL, False, NULL, NULL)

    def value_grad_hessian(self, theta):
        """(value, gradient (n_theta,), Hessian (n_theta, n_theta)) at theta."""
        cdef double[::1] th = np.ascontiguousarray(theta, dtype=float)
        if th.shape[0] != self.nd:
            raise ValueError(f"theta must have length {self.nd}")
        grad_arr = np.zeros(self.nd)
        hess_arr = np.zeros((self.nd, self.nd), order="F")
        cdef double[::1] grad = grad_arr
        cdef double[::1, :] hess = hess_arr
        cdef double f
        if self.nd == 0:
            return self._eval(NULL, False, NULL, NULL), grad_arr, np.ascontiguousarray(hess_arr)
        end = self._end
        self._end = None
        cdef double[::1] end_theta
        if end is not None:
            end_theta = end[0]
            if memcmp(&th[0], &end_theta[0], self.nd * sizeof(double)) == 0:
                # minimize's last evaluation with derivatives was at this theta
                # (bit for bit): the same numbers, counted as an evaluation
                self.n_evaluations += 1
                return end[1], end[2], end[3]
        f = self._eval(&th[0], True, &grad[0], &hess[0, 0])
        return f, grad_arr, np.ascontiguousarray(hess_arr)

    def minimize(self, theta0, int max_iter=200, double tol=1e-9, double radius=1.0):
        """Trust-region Newton iterations from theta0, within the bounds.

        Parameters at their bound whose gradient points outward are held
        (the active set); the others take the exact trust-region step.  Stops
        when the projected gradient is below `tol` with no negative
        curvature left among the free parameters, or when the predicted
        decrease is below what double precision resolves.

        Returns
        -------
        (theta, value, n_iterations)
        """
        cdef int nd = self.nd, i
        # (a copy of theta0 raised to the bounds: np.maximum(theta0, lower),
        # whose first call on a cold cache costs more than the loop)
        theta_arr = np.array(theta0, dtype=float, ndmin=1)
        if theta_arr.ndim != 1 or theta_arr.shape[0] != nd:
            raise ValueError(f"theta0 must have length {nd}")
        if nd == 0:
            return theta_arr, self.value(theta_arr), 0
        state_arr = np.zeros(8 * nd + 3 * nd * nd)
        cdef double[::1] theta = theta_arr
        for i in range(nd):
            if self.lower[i] > theta[i]:
                theta[i] = self.lower[i]
        cdef double[::1] state = state_arr
        cdef int n_iter = 0
        cdef double f
        self._end = None
        with nogil:
            f = self._minimize(&theta[0], &state[0], max_iter, tol, radius, &n_iter)
        if f < INFINITY:
            # the state holds the gradient (first nd) and the column-major
            # Hessian (from 8 nd) of the last evaluation, which was at theta
            self._end = (theta_arr.copy(), f, state_arr[:nd].copy(),
                         np.ascontiguousarray(
                             state_arr[8 * nd:8 * nd + nd * nd].reshape((nd, nd), order="F")))
        return theta_arr, f, n_iter

    cdef double _minimize(self, double* theta, double* state, int max_iter, double tol,
                          double radius, int* n_iter_out) noexcept nogil:
        """The trust-region loop (`lmm._trust_region`) on this criterion's analytic
        derivatives; `state` (tr_work_size(nd) doubles) ends with the gradient
        (first nd) and the column-major Hessian (from 8 nd) of the end point."""
        cdef TrustRegion tr
        cdef int request = TR_DERIVATIVES
        cdef int* free_ix = <int*>malloc(self.nd * sizeof(int))
        if free_ix == NULL:
            return INFINITY
        tr_init(&tr, self.nd, theta, &self.lower[0], state, free_ix, TR_EXACT, max_iter, tol,
                radius)
        while request != TR_DONE:
            if request == TR_DERIVATIVES:
                tr.f = self._eval(tr.theta, True, tr.g, tr.h)
            else:
                tr.fc = self._eval(tr.cand, False, NULL, NULL)
            request = tr_next(&tr)
        free(free_ix)
        n_iter_out[0] = tr.iterations
        return tr.f


def judge(theta, double f, g, h, lower, noise, double gradient_tolerance,
          double decrement_tolerance, double flat_tolerance):
    """The optimum check's verdict (`lmm._optimum.judge_optimum_flags`), for
    `lmm.optimize.judge_optimum`, which words its messages.

    Returns
    -------
    (flags, projected_gradient, at_bound (bool array), flat (list of entries),
     gmax, smallest eigenvalue of the movable entries' Hessian (NaN if not computed))
    """
    th = np.ascontiguousarray(theta, dtype=float)
    cdef int n = th.shape[0]
    g_arr = np.ascontiguousarray(g, dtype=float)
    h_arr = np.asfortranarray(h, dtype=float)
    lo_arr = np.ascontiguousarray(lower, dtype=float)
    if g_arr.shape != (n,) or lo_arr.shape != (n,) or h_arr.shape != (n, n):
        raise ValueError(f"theta, g and lower must have {n} entries and h be ({n}, {n})")
    noise_arr = None if noise is None else np.asfortranarray(noise, dtype=float)
    if noise_arr is not None and noise_arr.shape != (n, n):
        raise ValueError(f"noise must be ({n}, {n})")
    pg_arr = np.zeros(max(n, 1))
    at_arr = np.zeros(max(n, 1), dtype=np.uint8)
    flat_arr = np.zeros(max(n, 1), dtype=np.intc)
    work_arr = np.zeros(max(optimum_work_size(n), 1))
    ix_arr = np.zeros(max(2 * n, 1), dtype=np.intc)
    cdef double[::1] thv = th if n else pg_arr
    cdef double[::1] gv = g_arr if n else pg_arr
    cdef double[::1, :] hv = h_arr if n else np.zeros((1, 1), order="F")
    cdef double[::1] lov = lo_arr if n else pg_arr
    cdef double[::1, :] nv
    cdef const double* noise_ptr = NULL
    if noise_arr is not None and n:
        nv = noise_arr
        noise_ptr = &nv[0, 0]
    cdef double[::1] pgv = pg_arr
    cdef unsigned char[::1] atv = at_arr
    cdef int[::1] flatv = flat_arr
    cdef double[::1] workv = work_arr
    cdef int[::1] ixv = ix_arr
    cdef int n_flat = 0, flags
    cdef double gmax = 0.0, smallest = NAN
    with nogil:
        flags = judge_optimum_flags(n, &thv[0], f, &gv[0], &hv[0, 0], &lov[0], noise_ptr,
                                    gradient_tolerance, decrement_tolerance, flat_tolerance,
                                    &pgv[0], &atv[0], &flatv[0], &n_flat, &gmax, &smallest,
                                    &workv[0], &ixv[0])
    return (flags, pg_arr[:n].copy(), at_arr[:n].astype(bool), flat_arr[:n_flat].tolist(),
            gmax, smallest)


def trust_region_step(h, g, double radius, prefer):
    """The optimizer's trust-region step for a small problem (exposed for the
    several-factor engine, whose derivatives are finite differences):
    argmin g'p + p'Hp/2 over |p| <= radius."""
    _check_square(h, "h")
    if np.ndim(g) != 1 or np.ndim(prefer) != 1:
        raise ValueError("g and prefer must be vectors")
    h_arr = np.array(h, dtype=float, order="F", copy=True)
    cdef int n = h_arr.shape[0]
    g_arr = np.ascontiguousarray(g, dtype=float)
    pref_arr = np.ascontiguousarray(prefer, dtype=float)
    if h_arr.ndim != 2 or h_arr.shape[1] != n or g_arr.shape[0] != n or pref_arr.shape[0] != n:
        raise ValueError("h must be (n, n), g and prefer (n,)")
    step_arr = np.zeros(n)
    if n == 0:
        return step_arr
    w_arr = np.zeros(n)
    v_arr = np.zeros((n, n), order="F")
    gv_arr = np.zeros(n)
    cdef double[::1, :] hv = h_arr
    cdef double[::1] w = w_arr
    cdef double[::1, :] v = v_arr
    cdef double[::1] gg = g_arr
    cdef double[::1] pref = pref_arr
    cdef double[::1] gv = gv_arr
    cdef double[::1] step = step_arr
    _symmetric_eigen(&hv[0, 0], n, &w[0], &v[0, 0])
    _trust_region_step(&w[0], &v[0, 0], &gg[0], n, radius, &pref[0], &gv[0], &step[0])
    return step_arr


def spd_solve(a, b):
    """x with a x = b for a symmetric positive definite `a` (n x n) by Cholesky,
    or None when `a` is not positive definite (then use a general solver).

    A compiled call for the small systems of the set-up (numpy.linalg's Python
    wrapper costs more than the arithmetic there)."""
    _check_square(a, "a")
    arr = np.array(a, dtype=float, order="F", copy=True)
    x_arr = np.array(b, dtype=float, copy=True)
    cdef int n = arr.shape[0]
    if arr.ndim != 2 or arr.shape[1] != n or x_arr.ndim != 1 or x_arr.shape[0] != n:
        raise ValueError("a must be n x n and b of length n")
    if n == 0:
        return x_arr
    cdef double[::1, :] a_v = arr
    cdef double[::1] x = x_arr
    cdef int info
    with nogil:
        info = _cholesky_lower(&a_v[0, 0], n)
        if info == 0:
            _solve_lower(&a_v[0, 0], n, &x[0], 1, False)
            _solve_lower(&a_v[0, 0], n, &x[0], 1, True)
    if info != 0:
        return None
    return x_arr


def condition_products(ztz, ztx, zty, xtx, xty, double yty, x_scale, t, beta=None):
    """Cross-products of the conditioned design, in one call.

    X D (D = diag(x_scale)), Z T and the response y - X D beta, with beta the
    least-squares coefficients of y on X D unless given: the arrays that
    `CrossProducts.transformed(x_scale, t, beta)` makes with numpy, made
    here without a numpy call per product.  When T = I, Z'Z is returned
    itself (not copied).

    Returns
    -------
    (beta, ztz, ztx, zty, xtx, xty, yty), or None when beta is not given and
    (X D)'(X D) is not positive definite.
    """
    cdef const double[:, :, ::1] zz = ztz
    cdef const double[:, :, ::1] zx = ztx
    cdef const double[:, ::1] zy = zty
    cdef const double[:, ::1] xx = xtx
    cdef const double[::1] xy = xty
    cdef const double[::1] xs = np.ascontiguousarray(x_scale, dtype=float)
    cdef const double[:, ::1] tt = np.ascontiguousarray(t, dtype=float)
    cdef Py_ssize_t n_groups = zz.shape[0], q = zz.shape[1], p = xx.shape[0]
    cdef Py_ssize_t g, i, j, k, a, c
    if (zx.shape[0] != n_groups or zy.shape[0] != n_groups or zz.shape[2] != q
            or zx.shape[1] != q or zy.shape[1] != q or zx.shape[2] != p
            or xx.shape[1] != p or xy.shape[0] != p or xs.shape[0] != p
            or tt.shape[0] != q or tt.shape[1] != q):
        raise ValueError("the cross-products, x_scale and t do not agree in shape")
    xtx_arr = np.empty((p, p))
    xty_arr = np.empty(p)
    cdef double[:, ::1] xtx_s = xtx_arr
    cdef double[::1] xty_s = xty_arr
    for a in range(p):
        for c in range(p):
            xtx_s[a, c] = xx[a, c] * (xs[a] * xs[c])
        xty_s[a] = xy[a] * xs[a]
    if beta is None:
        beta = spd_solve(xtx_arr, xty_arr)
        if beta is None:
            return None
    beta_arr = np.ascontiguousarray(beta, dtype=float)
    cdef const double[::1] b = beta_arr
    if b.shape[0] != p:
        raise ValueError("beta must have one entry per column of X")
    cdef bint identity = True
    for i in range(q):
        for j in range(q):
            if tt[i, j] != (1.0 if i == j else 0.0):
                identity = False
    ztx_arr = np.empty((n_groups, q, p))
    zty_arr = np.empty((n_groups, q))
    cdef double[:, :, ::1] zx_t = ztx_arr
    cdef double[:, ::1] zy_t = zty_arr
    cdef double[:, :, ::1] zz_t
    cdef double tmp[16]
    cdef double* work = NULL
    cdef double s
    if identity:
        ztz_out = ztz
    else:
        ztz_out = np.empty((n_groups, q, q))
        zz_t = ztz_out
        work = <double*>malloc(q * q * sizeof(double)) if q * q > 16 else tmp
        if work == NULL:
            raise MemoryError()
    with nogil:
        for g in range(n_groups):
            if not identity:
                # (T' Z'Z) T, in the order numpy's products take
                for i in range(q):
                    for j in range(q):
                        s = 0.0
                        for k in range(q):
                            s = s + tt[k, i] * zz[g, k, j]
                        work[i * q + j] = s
                for i in range(q):
                    for j in range(q):
                        s = 0.0
                        for k in range(q):
                            s = s + work[i * q + k] * tt[k, j]
                        zz_t[g, i, j] = s
            for i in range(q):
                for c in range(p):
                    s = 0.0
                    for k in range(q):
                        s = s + tt[k, i] * zx[g, k, c]
                    zx_t[g, i, c] = s * xs[c]
                s = 0.0
                for k in range(q):
                    s = s + zy[g, k] * tt[k, i]
                zy_t[g, i] = s
            for i in range(q):
                s = 0.0
                for c in range(p):
                    s = s + zx_t[g, i, c] * b[c]
                zy_t[g, i] = zy_t[g, i] - s
    if not identity and work != tmp:
        free(work)
    # y'y - 2 b'X'y + b'X'X b, X'y - X'X b (scaled X)
    cdef double bxy = 0.0, bxxb = 0.0
    xty_out = np.empty(p)
    cdef double[::1] xy_t = xty_out
    for a in range(p):
        bxy += b[a] * xty_s[a]
    for c in range(p):
        s = 0.0
        for a in range(p):
            s += b[a] * xtx_s[a, c]
        bxxb += s * b[c]
    for a in range(p):
        s = 0.0
        for c in range(p):
            s += xtx_s[a, c] * b[c]
        xy_t[a] = xty_s[a] - s
    return (beta_arr, ztz_out, ztx_arr, zty_arr, xtx_arr, xty_out,
            yty - 2.0 * bxy + bxxb)


def symmetric_eigen(a):
    """Eigenvalues (ascending) and eigenvectors of a small symmetric matrix, by
    the optimizer's Jacobi routine (exposed for tests)."""
    _check_square(a, "a")
    arr = np.array(a, dtype=float, order="F", copy=True)
    cdef int n = arr.shape[0]
    if arr.ndim != 2 or arr.shape[1] != n:
        raise ValueError("a must be square")
    w_arr = np.zeros(n)
    v_arr = np.zeros((n, n), order="F")
    cdef double[::1, :] a_v = arr
    cdef double[::1] w = w_arr
    cdef double[::1, :] v = v_arr
    if n > 0:
        _symmetric_eigen(&a_v[0, 0], n, &w[0], &v[0, 0])
    return w_arr, v_arr
