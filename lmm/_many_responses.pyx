# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False, cpow=True
"""The many-responses fitter: one model's design fitted to many responses in C.

`ManyFitter` holds a design's cross-products and, for each response, adds its
own Z_g'y_g, X'y and y'y (`response_cross_products`: one compiled pass over the
rows for a block of responses), then minimizes the one-term criterion
(`lmm._core.Criterion`, its response parts overwritten in place) with the one
trust-region loop and judges the end point with the one optimum check
(`lmm._optimum`), without the GIL.  The Python layer is lmm/many_responses.py.
"""

import numpy as np

from libc.math cimport log, sqrt, fabs, M_PI, INFINITY, NAN
from lmm._optimum cimport judge_optimum_flags, optimum_work_size
from lmm._linalg cimport _cholesky_lower, _solve_lower, _symmetric_eigen
from lmm._core cimport (
    Criterion, intp_t, _check_row_blocks, _check_theta_indices, _pass_one, _solve_gls,
)


cdef inline int _many_scratch(int q, int p, int nd) noexcept nogil:
    """Doubles of work space `ManyFitter._fit_one` lays out (after the 2 nd ints of
    `ix`, the optimum check's work, its flat entries and its at-bound flags)."""
    return (6 * q * q + 5 * p + 2 * p * p + 13 * nd + 6 * nd * nd + q * (p + 1)
            + 2 * (p + q) * (p + q) + 2 * (p + q) + nd + 8
            + optimum_work_size(nd) + 2 * nd)


cdef void _response_sums(const double[:, ::1] X, const double[:, ::1] Z,
                         const double[:, ::1] Y, const intp_t[::1] order,
                         const intp_t[::1] group_offsets, double[:, :, ::1] zty,
                         double[:, ::1] xty, double[::1] yty) noexcept nogil:
    """Accumulate Z_g'Y_g (n_groups, q, m), X'Y (p, m) and the columns' sums of
    squares (m,) over the rows, group by group (the order of `cross_products`).
    The outputs must be zeroed by the caller."""
    cdef Py_ssize_t p = X.shape[1], q = Z.shape[1], m = Y.shape[1]
    cdef Py_ssize_t n_groups = group_offsets.shape[0] - 1
    cdef Py_ssize_t g, r, row, j, a, c
    cdef double v, yc
    cdef const double* yrow
    cdef double* acc
    for g in range(n_groups):
        for r in range(group_offsets[g], group_offsets[g + 1]):
            row = order[r]
            yrow = &Y[row, 0]
            for j in range(q):
                v = Z[row, j]
                if v != 0.0:
                    acc = &zty[g, j, 0]
                    for c in range(m):
                        acc[c] += v * yrow[c]
            for a in range(p):
                v = X[row, a]
                if v != 0.0:
                    acc = &xty[a, 0]
                    for c in range(m):
                        acc[c] += v * yrow[c]
            for c in range(m):
                yc = yrow[c]
                yty[c] += yc * yc


def response_cross_products(const double[:, ::1] X, const double[:, ::1] Z,
                            const double[:, ::1] Y, const intp_t[::1] order,
                            const intp_t[::1] group_offsets):
    """The response parts of the cross-products of many responses, one pass over the rows.

    Parameters
    ----------
    X (n, p), Z (n, q), order, group_offsets : as in `cross_products`
    Y : (n, m) float64, C-contiguous, one column per response (no NaN)

    Returns
    -------
    zty (n_groups, q, m), xty (p, m), yty (m,)
    """
    cdef Py_ssize_t n_groups = group_offsets.shape[0] - 1
    if Y.shape[0] != X.shape[0] or Z.shape[0] != X.shape[0]:
        raise ValueError("X, Z and Y must have the same number of rows")
    _check_row_blocks(X.shape[0], order, group_offsets)
    if n_groups < 1:
        raise ValueError("there must be at least one group")
    zty_arr = np.zeros((n_groups, Z.shape[1], Y.shape[1]))
    xty_arr = np.zeros((X.shape[1], Y.shape[1]))
    yty_arr = np.zeros(Y.shape[1])
    cdef double[:, :, ::1] zty = zty_arr
    cdef double[:, ::1] xty = xty_arr
    cdef double[::1] yty = yty_arr
    with nogil:
        _response_sums(X, Z, Y, order, group_offsets, zty, xty, yty)
    return zty_arr, xty_arr, yty_arr


cdef bint _full_rank(const double* m, int n, double* work) noexcept nogil:
    """MixedLM's rank test of a Gram matrix (n x n, symmetric): no zero column and
    the smallest eigenvalue of the correlation matrix above 1e-10 of the largest.
    `work` holds 2 n^2 + 2 n doubles."""
    cdef double* corr = work
    cdef double* vecs = work + n * n
    cdef double* d = vecs + n * n
    cdef double* w = d + n
    cdef int i, j
    for i in range(n):
        if not m[i + i * n] > 0.0:
            return False
        d[i] = sqrt(m[i + i * n])
    for j in range(n):
        for i in range(n):
            corr[i + j * n] = m[i + j * n] / (d[i] * d[j])
    _symmetric_eigen(corr, n, w, vecs)
    return w[0] > 1e-10 * (w[n - 1] if w[n - 1] > 1.0 else 1.0)


# why a response is left to the Python path (lmm/many_responses.py reads these codes)
cdef enum:
    MANY_OK = 0
    MANY_RESEARCH_DIFFERS = 1    # the boundary re-search found a better point
    MANY_NOT_CONVERGED = 2       # the optimum check failed
    MANY_DEGENERATE = 3          # the response's own design is degenerate (missing values)
    MANY_SOLVE_FAILED = 4        # X'V^-1X not positive definite, or rss <= 0 at the end


cdef class ManyFitter:
    """One model fitted to many responses that share its design (lmm/many_responses.py).

    Holds what depends only on the design: the rows (X, Z, their group order),
    the user-space cross-products Z_g'Z_g, Z_g'X_g, X'X, and the conditioned
    ones of `ProfiledDeviance` (X scaled by x_scale, Z by T) with the bounds of
    theta.  `fit` takes a block of responses and, without the GIL, computes
    their own cross-products in one pass over the rows, then for each response
    runs the steps of `optimize.minimize_deviance` and `optimize.check_optimum`
    in C on a `Criterion` whose response parts are overwritten in place:
    trust-region Newton from lme4's start (with one variance parameter, from
    its moment estimate when `warm_start`); at a boundary end point a second
    search from lme4's start with short first steps (`research_radius`, or
    `research_radius_1d` with one parameter), where minimize_deviance runs
    scipy's L-BFGS-B; the optimum check (projected gradient or Newton
    decrement, curvature); then the estimates of `ProfiledDeviance.solution`.
    A response whose re-search finds a better point, whose check fails, or
    whose own design (after its missing values are dropped) is degenerate gets
    a non-zero status: the caller fits it through the Python path.

    A response with missing values drops its own rows: the shared user-space
    cross-products are corrected by subtracting those rows' contributions (or
    rebuilt from the kept rows when most are missing) and conditioned afresh,
    as `MixedLM` would for that response alone.

    The object is read-only after construction: threads may call `fit`
    concurrently.
    """

    cdef const double[:, ::1] X
    cdef const double[:, ::1] Z
    cdef const intp_t[::1] order
    cdef const intp_t[::1] offsets
    cdef const intp_t[::1] group_of_row
    cdef const double[:, :, ::1] ztz_u
    cdef const double[:, :, ::1] ztx_u
    cdef const double[:, ::1] xtx_u
    cdef const double[:, :, ::1] ztz_s
    cdef const double[:, :, ::1] ztx_s
    cdef const double[:, ::1] xtx_s
    cdef double[::1] t_s              # T, column-major
    cdef const double[::1] xs_s
    cdef double[::1] xchol_s
    cdef bint xchol_ok
    cdef double shift_s, nobs
    cdef bint reml
    cdef object theta_rows_arr, theta_cols_arr, lower_arr
    cdef const intp_t[::1] rows
    cdef const intp_t[::1] cols
    cdef const double[::1] lower
    cdef const intp_t[::1] cov_rows
    cdef const intp_t[::1] cov_cols
    cdef const intp_t[::1] t_mode
    cdef const intp_t[::1] t_icpt
    cdef double grad_tol, decrement_tol, flat_tol, singular_tol, research_radius
    cdef double research_radius_1d
    cdef bint warm_start
    cdef int q, p, nd, n_groups, ncov
    cdef public int n_columns
    # the intercept of a centred design reported at the user's origin (see
    # set_intercept_contrast); se_index -1: none
    cdef int se_index
    cdef double[::1] se_contrast

    def set_intercept_contrast(self, int index, contrast):
        """Report fixed effect `index` as contrast' beta (and its standard error):
        with X centred, X - 1 m' = X A, the user's intercept is e_i'beta - m'beta
        (contrast = e_i - m), the others unchanged.  Call before any `fit`."""
        c = np.ascontiguousarray(contrast, dtype=float)
        if not 0 <= index < self.p or c.shape != (self.p,):
            raise ValueError("the contrast needs an index below p and p entries")
        self.se_contrast = c
        self.se_index = index

    def __init__(self, X, Z, order, group_offsets, ztz, ztx, xtx, ztz_s, ztx_s, xtx_s,
                 t, x_scale, double shift, bint reml, theta_rows, theta_cols, lower,
                 cov_rows, cov_cols, t_mode, t_icpt, double gradient_tolerance,
                 double decrement_tolerance, double singular_tolerance,
                 double research_radius=0.1, double research_radius_1d=0.5,
                 bint warm_start=True, double flat_tolerance=1e-8):
        cdef Py_ssize_t g, r
        self.se_index = -1
        self.X = X
        self.Z = Z
        self.order = order
        self.offsets = group_offsets
        self.ztz_u = ztz
        self.ztx_u = ztx
        self.xtx_u = xtx
        self.ztz_s = ztz_s
        self.ztx_s = ztx_s
        self.xtx_s = xtx_s
        self.t_s = np.asarray(t, dtype=float).ravel(order="F").copy()
        self.xs_s = x_scale
        self.shift_s = shift
        self.reml = reml
        self.q = self.Z.shape[1]
        self.p = self.X.shape[1]
        self.n_groups = self.offsets.shape[0] - 1
        self.nobs = self.X.shape[0]
        self.theta_rows_arr = np.ascontiguousarray(theta_rows, dtype=np.intp)
        self.theta_cols_arr = np.ascontiguousarray(theta_cols, dtype=np.intp)
        self.lower_arr = np.ascontiguousarray(lower, dtype=float)
        self.rows = self.theta_rows_arr
        self.cols = self.theta_cols_arr
        self.lower = self.lower_arr
        self.nd = self.rows.shape[0]
        self.cov_rows = np.ascontiguousarray(cov_rows, dtype=np.intp)
        self.cov_cols = np.ascontiguousarray(cov_cols, dtype=np.intp)
        self.ncov = self.cov_rows.shape[0]
        self.t_mode = np.ascontiguousarray(t_mode, dtype=np.intp)
        self.t_icpt = np.ascontiguousarray(t_icpt, dtype=np.intp)
        self.grad_tol = gradient_tolerance
        self.decrement_tol = decrement_tolerance
        self.flat_tol = flat_tolerance
        self.singular_tol = singular_tolerance
        self.research_radius = research_radius
        self.research_radius_1d = research_radius_1d
        self.warm_start = warm_start
        cdef int q = self.q, p = self.p
        cdef Py_ssize_t G = self.n_groups
        if self.Z.shape[0] != self.X.shape[0]:
            raise ValueError("X and Z must have the same number of rows")
        _check_row_blocks(self.X.shape[0], self.order, self.offsets)
        if (G < 1 or tuple(np.shape(ztz)) != (G, q, q) or tuple(np.shape(ztz_s)) != (G, q, q)
                or tuple(np.shape(ztx)) != (G, q, p) or tuple(np.shape(ztx_s)) != (G, q, p)
                or tuple(np.shape(xtx)) != (p, p) or tuple(np.shape(xtx_s)) != (p, p)
                or self.t_s.shape[0] != q * q or self.xs_s.shape[0] != p
                or self.t_mode.shape[0] != q or self.t_icpt.shape[0] != q
                or self.cov_cols.shape[0] != self.ncov
                or self.lower.shape[0] != self.nd or self.cols.shape[0] != self.nd):
            raise ValueError("the design pieces do not agree in shape")
        _check_theta_indices(self.rows, self.cols, q, "theta")
        for r in range(q):
            if not 0 <= self.t_icpt[r] < q:
                raise ValueError("t_icpt must index the random effects")
        for r in range(self.ncov):
            if not (0 <= self.cov_cols[r] <= self.cov_rows[r] < q):
                raise ValueError("cov_rows, cov_cols must address the lower triangle")
        gor = np.empty(self.X.shape[0], dtype=np.intp)
        cdef intp_t[::1] gv = gor
        for g in range(self.n_groups):
            for r in range(self.offsets[g], self.offsets[g + 1]):
                gv[self.order[r]] = g
        self.group_of_row = gor
        chol = np.asfortranarray(np.array(xtx_s, dtype=float))
        self.xchol_s = chol.ravel(order="F")
        self.xchol_ok = _cholesky_lower(&self.xchol_s[0], p) == 0 if p > 0 else True
        # per response: fe (p), bse_fe (p), cov_re free entries, scale, llf, nobs
        self.n_columns = 2 * p + self.ncov + 3

    def fit(self, const double[:, ::1] Y, const intp_t[::1] miss_ptr,
            const intp_t[::1] miss_rows, double[:, ::1] out, intp_t[:, ::1] flags):
        """Fit the model to the responses in the columns of Y.

        Parameters
        ----------
        Y : (n, m) float64, C-contiguous, rows in the model's order; missing
            values replaced by 0 (their rows are listed in miss_rows)
        miss_ptr : (m + 1,) intp; the rows response c lacks are
            miss_rows[miss_ptr[c]:miss_ptr[c + 1]] (distinct row indices)
        out : (m, n_columns) float64: fe, bse_fe, cov_re free entries, scale,
            llf, nobs
        flags : (m, 4) intp: status (0 = fitted here), converged, singular,
            Newton iterations

        Returns
        -------
        The number of criterion evaluations.
        """
        cdef int q = self.q, p = self.p, nd = self.nd
        cdef Py_ssize_t G = self.n_groups, n = self.X.shape[0], m = Y.shape[1]
        if Y.shape[0] != n:
            raise ValueError(f"Y has {Y.shape[0]} rows, the design {n}")
        if miss_ptr.shape[0] != m + 1 or out.shape[0] != m or flags.shape[0] != m \
                or out.shape[1] != self.n_columns or flags.shape[1] != 4:
            raise ValueError("the output arrays do not match Y")
        if miss_ptr[0] < 0 or miss_ptr[m] > miss_rows.shape[0]:
            raise ValueError("miss_ptr points outside miss_rows")
        cdef Py_ssize_t c, i
        # (all of miss_ptr before any of it is followed)
        for c in range(m):
            if miss_ptr[c + 1] < miss_ptr[c]:
                raise ValueError("miss_ptr must be increasing")
        seen_arr = np.zeros(n, dtype=np.uint8)
        cdef unsigned char[::1] seen = seen_arr
        for c in range(m):
            for i in range(miss_ptr[c], miss_ptr[c + 1]):
                if not 0 <= miss_rows[i] < n:
                    raise ValueError("miss_rows must index the rows")
                if seen[miss_rows[i]]:
                    raise ValueError(f"miss_rows lists row {miss_rows[i]} twice for response {c}")
                seen[miss_rows[i]] = 1
            for i in range(miss_ptr[c], miss_ptr[c + 1]):
                seen[miss_rows[i]] = 0
        # the responses' own cross-products, all at once
        zty_all_arr = np.zeros((G, q, m))
        xty_all_arr = np.zeros((p, m))
        yty_all_arr = np.zeros(m)
        cdef double[:, :, ::1] zty_all = zty_all_arr
        cdef double[:, ::1] xty_all = xty_all_arr
        cdef double[::1] yty_all = yty_all_arr
        # buffers the Criterion reads: the current response's conditioned design
        ztz_b_arr = np.array(self.ztz_s, dtype=float)
        ztx_b_arr = np.array(self.ztx_s, dtype=float)
        xtx_b_arr = np.array(self.xtx_s, dtype=float)
        zty_b_arr = np.zeros((G, q))
        xty_b_arr = np.zeros(p)
        cdef double[:, :, ::1] ztz_b = ztz_b_arr
        cdef double[:, :, ::1] ztx_b = ztx_b_arr
        cdef double[:, ::1] xtx_b = xtx_b_arr
        cdef double[:, ::1] zty_b = zty_b_arr
        cdef double[::1] xty_b = xty_b_arr
        cdef Criterion crit = Criterion(ztz_b_arr, ztx_b_arr, zty_b_arr, xtx_b_arr, xty_b_arr,
                                        0.0, self.nobs, self.reml, self.theta_rows_arr,
                                        self.theta_cols_arr, self.lower_arr, self.shift_s)
        # a response's own user-space design (missing values)
        ztz_o_arr = np.zeros((G, q, q))
        ztx_o_arr = np.zeros((G, q, p))
        xtx_o_arr = np.zeros((p, p))
        count_arr = np.zeros(G, dtype=np.intp)
        dropped_arr = np.zeros(n, dtype=np.uint8)
        cdef double[:, :, ::1] ztz_o = ztz_o_arr
        cdef double[:, :, ::1] ztx_o = ztx_o_arr
        cdef double[:, ::1] xtx_o = xtx_o_arr
        cdef intp_t[::1] count = count_arr
        cdef unsigned char[::1] dropped = dropped_arr
        # small work space
        scratch_arr = np.zeros(_many_scratch(q, p, nd))
        cdef double[::1] scratch = scratch_arr
        cdef bint loaded = True
        cdef int reuse = -1          # Newton's end-point derivatives: -1 unverified, 1 reuse, 0 not
        with nogil:
            _response_sums(self.X, self.Z, Y, self.order, self.offsets, zty_all, xty_all,
                           yty_all)
            for c in range(m):
                self._fit_one(c, crit, zty_all, xty_all, yty_all, miss_ptr, miss_rows,
                              ztz_b, ztx_b, xtx_b, zty_b, xty_b, ztz_o, ztx_o, xtx_o, count,
                              dropped, &scratch[0], &loaded, &reuse, out,
                              flags)
        return crit.n_evaluations

    cdef void _load_shared(self, double[:, :, ::1] ztz_b, double[:, :, ::1] ztx_b,
                           double[:, ::1] xtx_b) noexcept nogil:
        cdef Py_ssize_t g
        cdef int j, k, a, b
        for g in range(self.n_groups):
            for j in range(self.q):
                for k in range(self.q):
                    ztz_b[g, j, k] = self.ztz_s[g, j, k]
                for a in range(self.p):
                    ztx_b[g, j, a] = self.ztx_s[g, j, a]
        for a in range(self.p):
            for b in range(self.p):
                xtx_b[a, b] = self.xtx_s[a, b]

    cdef int _own_design(self, Py_ssize_t c, const intp_t[::1] miss_ptr,
                         const intp_t[::1] miss_rows, double[:, :, ::1] ztz_b,
                         double[:, :, ::1] ztx_b, double[:, ::1] xtx_b,
                         double[:, :, ::1] ztz_o, double[:, :, ::1] ztx_o,
                         double[:, ::1] xtx_o, intp_t[::1] count, unsigned char[::1] dropped,
                         double* t, double* xs, double* xchol, double* shift,
                         double* nobs, double* work) noexcept nogil:
        """The conditioned design of response c alone (its missing rows dropped).

        Returns 0, or MANY_DEGENERATE where MixedLM would reject that design."""
        cdef int q = self.q, p = self.p, j, k, a, b, icpt
        cdef Py_ssize_t G = self.n_groups, n = self.X.shape[0], g, r, i, row
        cdef Py_ssize_t n_miss = miss_ptr[c + 1] - miss_ptr[c], n_groups_kept = 0
        cdef double zj, xa, mean, rms, sd, s
        cdef double* ztz_all = work
        cdef double* rank_work = work + q * q
        for g in range(G):
            count[g] = self.offsets[g + 1] - self.offsets[g]
        if 2 * n_miss <= n:
            # subtract the dropped rows' contributions from the shared sums
            for g in range(G):
                for j in range(q):
                    for k in range(q):
                        ztz_o[g, j, k] = self.ztz_u[g, j, k]
                    for a in range(p):
                        ztx_o[g, j, a] = self.ztx_u[g, j, a]
            for a in range(p):
                for b in range(p):
                    xtx_o[a, b] = self.xtx_u[a, b]
            for i in range(miss_ptr[c], miss_ptr[c + 1]):
                row = miss_rows[i]
                g = self.group_of_row[row]
                count[g] -= 1
                for j in range(q):
                    zj = self.Z[row, j]
                    for k in range(q):
                        ztz_o[g, j, k] -= zj * self.Z[row, k]
                    for a in range(p):
                        ztx_o[g, j, a] -= zj * self.X[row, a]
                for a in range(p):
                    xa = self.X[row, a]
                    for b in range(p):
                        xtx_o[a, b] -= xa * self.X[row, b]
        else:
            # most rows are missing: sum the kept ones
            for i in range(miss_ptr[c], miss_ptr[c + 1]):
                dropped[miss_rows[i]] = 1
            for g in range(G):
                for j in range(q):
                    for k in range(q):
                        ztz_o[g, j, k] = 0.0
                    for a in range(p):
                        ztx_o[g, j, a] = 0.0
            for a in range(p):
                for b in range(p):
                    xtx_o[a, b] = 0.0
            for g in range(G):
                for r in range(self.offsets[g], self.offsets[g + 1]):
                    row = self.order[r]
                    if dropped[row]:
                        count[g] -= 1
                        continue
                    for j in range(q):
                        zj = self.Z[row, j]
                        for k in range(q):
                            ztz_o[g, j, k] += zj * self.Z[row, k]
                        for a in range(p):
                            ztx_o[g, j, a] += zj * self.X[row, a]
                    for a in range(p):
                        xa = self.X[row, a]
                        for b in range(p):
                            xtx_o[a, b] += xa * self.X[row, b]
            for i in range(miss_ptr[c], miss_ptr[c + 1]):
                dropped[miss_rows[i]] = 0
        nobs[0] = <double>(n - n_miss)
        for g in range(G):
            if count[g] > 0:
                n_groups_kept += 1
        if n_groups_kept < 2 or n - n_miss <= n_groups_kept * q:
            return MANY_DEGENERATE
        for j in range(q * q):
            ztz_all[j] = 0.0
        for g in range(G):
            for j in range(q):
                for k in range(q):
                    ztz_all[j + k * q] += ztz_o[g, j, k]
        if not _full_rank(&xtx_o[0, 0], p, rank_work) or not _full_rank(ztz_all, q, rank_work):
            return MANY_DEGENERATE
        # conditioning, as MixedLM._deviance / Reparametrization
        shift[0] = 0.0
        for a in range(p):
            s = xtx_o[a, a]
            xs[a] = 1.0 / sqrt(s / nobs[0]) if s > 0 else 1.0
            if self.reml:
                shift[0] -= 2.0 * log(xs[a])
        for j in range(q * q):
            t[j] = 0.0
        for j in range(q):
            t[j + j * q] = 1.0
        for j in range(q):
            rms = sqrt(ztz_all[j + j * q] / nobs[0])
            if self.t_mode[j] == 1:
                icpt = self.t_icpt[j]
                mean = ztz_all[icpt + j * q] / nobs[0]
                sd = rms * rms - mean * mean
                sd = sqrt(sd) if sd > 0 else 0.0
                if sd > 0:
                    t[j + j * q] = 1.0 / sd
                    t[icpt + j * q] = -mean / sd
                elif rms > 0:
                    t[j + j * q] = 1.0 / rms
            elif self.t_mode[j] == 2 and rms > 0:
                t[j + j * q] = 1.0 / rms
        # T' ztz T, (T' ztx) diag(xs), diag(xs) xtx diag(xs)
        for g in range(G):
            for j in range(q):
                for k in range(q):
                    s = 0.0
                    for a in range(q):
                        for b in range(q):
                            s += t[a + j * q] * ztz_o[g, a, b] * t[b + k * q]
                    ztz_b[g, j, k] = s
                for a in range(p):
                    s = 0.0
                    for k in range(q):
                        s += t[k + j * q] * ztx_o[g, k, a]
                    ztx_b[g, j, a] = s * xs[a]
        for a in range(p):
            for b in range(p):
                xtx_b[a, b] = xtx_o[a, b] * xs[a] * xs[b]
                xchol[a + b * p] = xtx_b[a, b]
        if p > 0 and _cholesky_lower(xchol, p) != 0:
            return MANY_DEGENERATE
        return MANY_OK

    cdef bint _check(self, const double* theta, double f, const double* g, const double* h,
                     double* pg, int* ix, double* opt_work) noexcept nogil:
        """The optimum check (`lmm._optimum`, what `optimize.judge_optimum` decides)
        at theta, given the criterion f, its gradient g and Hessian h (column-major)
        there: True when verified.  opt_work: optimum_work_size(nd) doubles, then nd
        for the flat entries' indices and nd for the at-bound flags."""
        cdef int n_flat = 0
        cdef double gmax, smallest
        cdef int* flat = <int*>(opt_work + optimum_work_size(self.nd))
        cdef unsigned char* at_b = <unsigned char*>(opt_work + optimum_work_size(self.nd)
                                                    + self.nd)
        return judge_optimum_flags(self.nd, theta, f, g, h, &self.lower[0], NULL,
                                   self.grad_tol, self.decrement_tol, self.flat_tol, pg, at_b,
                                   flat, &n_flat, &gmax, &smallest, opt_work, ix) == 0

    cdef void _fit_one(self, Py_ssize_t c, Criterion crit, const double[:, :, ::1] zty_all,
                       const double[:, ::1] xty_all, const double[::1] yty_all,
                       const intp_t[::1] miss_ptr, const intp_t[::1] miss_rows,
                       double[:, :, ::1] ztz_b, double[:, :, ::1] ztx_b, double[:, ::1] xtx_b,
                       double[:, ::1] zty_b, double[::1] xty_b, double[:, :, ::1] ztz_o,
                       double[:, :, ::1] ztx_o, double[:, ::1] xtx_o, intp_t[::1] count,
                       unsigned char[::1] dropped, double* scratch, bint* loaded,
                       int* reuse, double[:, ::1] out, intp_t[:, ::1] flags) noexcept nogil:
        cdef int q = self.q, p = self.p, nd = self.nd, j, k, a, b, it = 0, it2 = 0, status
        cdef Py_ssize_t G = self.n_groups, g
        # scratch layout
        cdef double* t_o = scratch
        cdef double* xs_o = t_o + q * q
        cdef double* xchol_o = xs_o + p
        cdef double* xty_s = xchol_o + p * p
        cdef double* bols = xty_s + p
        cdef double* theta = bols + p
        cdef double* theta2 = theta + nd
        cdef double* grad = theta2 + nd
        cdef double* hess = grad + nd
        cdef double* pg = hess + nd * nd
        cdef double* sub = pg + nd
        cdef double* w = sub + nd * nd
        cdef double* vecs = w + nd
        cdef double* state = vecs + nd * nd
        cdef double* lam = state + 8 * nd + 3 * nd * nd
        cdef double* tl = lam + q * q
        cdef double* xvx = tl + q * q
        cdef double* xvy = xvx + p * p
        cdef double* beta = xvy + p
        cdef double* pass_work = beta + p
        cdef double* own_work = pass_work + 2 * q * q + q * (p + 1)
        cdef int* ix = <int*>(own_work + q * q + 2 * (p + q) ** 2 + 2 * (p + q))
        cdef double* opt_work = own_work + q * q + 2 * (p + q) ** 2 + 2 * (p + q) + nd
        cdef const double* t
        cdef const double* xs
        cdef const double* xchol
        cdef double shift, nobs, nu, yty, f, f2, yvy = 0.0, logdet = 0.0, logdet_xvx = 0.0
        cdef double rss = 0.0, scale, s, dev, s_z, s_z2, s_a, det, u, v
        cdef bint converged, singular, boundary
        cdef double* o = &out[c, 0]
        cdef Py_ssize_t n_miss = miss_ptr[c + 1] - miss_ptr[c]
        for j in range(self.n_columns):
            o[j] = NAN
        flags[c, 0] = MANY_OK
        flags[c, 1] = 0
        flags[c, 2] = 0
        flags[c, 3] = 0
        # -- the response's design: shared, or its own (missing values) -------------
        if n_miss == 0:
            if not loaded[0]:
                self._load_shared(ztz_b, ztx_b, xtx_b)
                loaded[0] = True
            t = &self.t_s[0]
            xs = &self.xs_s[0]
            xchol = &self.xchol_s[0]
            shift = self.shift_s
            nobs = self.nobs
            if not self.xchol_ok:
                flags[c, 0] = MANY_DEGENERATE
                return
        else:
            loaded[0] = False
            status = self._own_design(c, miss_ptr, miss_rows, ztz_b, ztx_b, xtx_b, ztz_o,
                                      ztx_o, xtx_o, count, dropped, t_o, xs_o, xchol_o,
                                      &shift, &nobs, own_work)
            if status != MANY_OK:
                flags[c, 0] = status
                o[self.n_columns - 1] = <double>(self.X.shape[0] - n_miss)
                return
            t = t_o
            xs = xs_o
            xchol = xchol_o
        nu = nobs - p if self.reml else nobs
        crit.nobs = nobs
        crit.nu = nu
        crit.shift = shift
        # -- the response: scaled, offset by its OLS fit (ProfiledDeviance) ------------
        for a in range(p):
            xty_s[a] = xty_all[a, c] * xs[a]
            bols[a] = xty_s[a]
        if p > 0:
            _solve_lower(xchol, p, bols, 1, False)
            _solve_lower(xchol, p, bols, 1, True)
        yty = yty_all[c]
        for a in range(p):
            yty -= 2.0 * bols[a] * xty_s[a]
            for b in range(p):
                yty += bols[a] * xtx_b[a, b] * bols[b]
        for g in range(G):
            for k in range(q):
                s = 0.0
                for j in range(q):
                    s += zty_all[g, j, c] * t[j + k * q]
                for a in range(p):
                    s -= ztx_b[g, k, a] * bols[a]
                zty_b[g, k] = s
        for a in range(p):
            s = xty_s[a]
            for b in range(p):
                s -= xtx_b[a, b] * bols[b]
            xty_b[a] = s
        crit.yty = yty
        # -- minimize_deviance: Newton from lme4's start ---------------------------------
        for a in range(nd):
            theta[a] = 1.0 if self.rows[a] == self.cols[a] else 0.0
            if theta[a] < self.lower[a]:
                theta[a] = self.lower[a]
        if self.warm_start and nd == 1 and q == 1:
            # ... or, with one variance, from its moment estimate: with e the OLS
            # residuals and a_g = Z_g'e, E sum a_g^2 ~ s2 sum Z_g'Z_g + v sum (Z_g'Z_g)^2
            # and E e'e ~ s2 (n - p) + v sum Z_g'Z_g give s2 and v, theta = sqrt(v / s2)
            # (the boundary re-search below still starts from lme4's start)
            s_z = 0.0
            s_z2 = 0.0
            s_a = 0.0
            for g in range(G):
                s_z += ztz_b[g, 0, 0]
                s_z2 += ztz_b[g, 0, 0] * ztz_b[g, 0, 0]
                s_a += zty_b[g, 0] * zty_b[g, 0]
            det = s_z * s_z - s_z2 * (nobs - p)
            if det != 0.0:
                u = (s_a * s_z - s_z2 * yty) / det
                v = (s_z * yty - (nobs - p) * s_a) / det
                if u > 0.0 and v == v and fabs(v) < INFINITY:
                    theta[0] = sqrt(v / u) if v > 0.0 else 0.0
        f = crit._minimize(theta, state, 200, 1e-9, 1.0, &it)
        # Criterion._minimize leaves the gradient and Hessian of its end point in
        # its state (g at 0, h at 8 nd: see its layout), evaluated by the same
        # `_eval` that check_optimum's value_grad_hessian calls.  The first
        # response of a block verifies that against a fresh evaluation; should
        # the layout ever change, every response is evaluated afresh.
        if reuse[0] != 0 and f < INFINITY:
            for a in range(nd):
                grad[a] = state[a]
            for a in range(nd * nd):
                hess[a] = state[8 * nd + a]
        if reuse[0] != 1 and f < INFINITY:
            f2 = crit._eval(theta, True, pg, sub)
            if reuse[0] == -1:
                reuse[0] = 1 if f2 == f else 0
                for a in range(nd):
                    if pg[a] != grad[a]:
                        reuse[0] = 0
                for a in range(nd * nd):
                    if sub[a] != hess[a]:
                        reuse[0] = 0
            f = f2
            for a in range(nd):
                grad[a] = pg[a]
            for a in range(nd * nd):
                hess[a] = sub[a]
        boundary = False
        for a in range(nd):
            if self.rows[a] == self.cols[a] and theta[a] < self.singular_tol:
                boundary = True
        if boundary:
            # search again from the start along another path (small first steps)
            for a in range(nd):
                theta2[a] = 1.0 if self.rows[a] == self.cols[a] else 0.0
                if theta2[a] < self.lower[a]:
                    theta2[a] = self.lower[a]
            f2 = crit._minimize(theta2, state, 200, 1e-9, self.research_radius if nd > 1
                                else self.research_radius_1d, &it2)
            if f2 < f - 1e-10 * (1.0 + fabs(f2)):
                flags[c, 0] = MANY_RESEARCH_DIFFERS
                return
        flags[c, 3] = it
        # -- check_optimum ---------------------------------------------------------------
        converged = self._check(theta, f, grad, hess, pg, ix, opt_work)
        if not converged:
            flags[c, 0] = MANY_NOT_CONVERGED
            return
        # -- ProfiledDeviance.solution ---------------------------------------------------
        for j in range(q * q):
            lam[j] = 0.0
        for a in range(nd):
            lam[self.rows[a] + self.cols[a] * q] = theta[a]
        _pass_one(lam, ztz_b, ztx_b, zty_b, xtx_b, xty_b, yty, q, p, pass_work,
                  xvx, xvy, &yvy, &logdet)
        if _solve_gls(xvx, xvy, yvy, p, beta, &logdet_xvx, &rss) != 0 or not rss > 0.0:
            flags[c, 0] = MANY_SOLVE_FAILED
            return
        scale = rss / nu
        for a in range(p):
            o[a] = (beta[a] + bols[a]) * xs[a]
            # diag of (X'V^-1X)^-1 = |L^-1 e_a|^2; for the contrast c of
            # set_intercept_contrast, var(c'beta) = scale |L^-1 (xs * c)|^2
            for b in range(p):
                if a == self.se_index:
                    xvy[b] = self.se_contrast[b] * xs[b]
                else:
                    xvy[b] = 1.0 if a == b else 0.0
            _solve_lower(xvx, p, xvy, 1, False)
            s = 0.0
            for b in range(p):
                s += xvy[b] * xvy[b]
            o[p + a] = sqrt(scale * s) * (1.0 if a == self.se_index else xs[a])
        if self.se_index >= 0:
            s = 0.0
            for b in range(p):
                s += self.se_contrast[b] * o[b]
            o[self.se_index] = s
        # cov_re = scale (T Lambda)(T Lambda)'
        for j in range(q):
            for k in range(q):
                s = 0.0
                for a in range(q):
                    s += t[j + a * q] * lam[a + k * q]
                tl[j + k * q] = s
        for a in range(self.ncov):
            j = self.cov_rows[a]
            k = self.cov_cols[a]
            s = 0.0
            for b in range(q):
                s += tl[j + b * q] * tl[k + b * q]
            o[2 * p + a] = scale * s
        dev = logdet + nu * (1.0 + log(2.0 * M_PI * rss / nu))
        if self.reml:
            dev += logdet_xvx
        dev += shift
        o[2 * p + self.ncov] = scale
        o[2 * p + self.ncov + 1] = -0.5 * dev
        o[2 * p + self.ncov + 2] = nobs
        singular = False
        for j in range(q):
            if lam[j + j * q] < self.singular_tol:
                singular = True
        flags[c, 1] = 1
        flags[c, 2] = 1 if singular else 0
