# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False, cpow=True
"""Compiled kernels for models with several random-effect terms.

The random-effect terms are ordered by number of levels, largest first (as
MixedModels.jl and lme4 do).  The first term's block of
A = Lambda'Z'Z Lambda + I is block-diagonal (one q1 x q1 block per level)
and is eliminated level by level here; what it leaves is a dense matrix over
the other terms' effects, the fixed effects and the response,

    M = [Lambda_R'Z_R'Z_R Lambda_R + I, Lambda_R'Z_R'X, Lambda_R'Z_R'y;
         ...,                           X'X,           X'y;
         ...,                           ...,           y'y]
        - sum_l C_l' C_l,   C_l = L_l^{-1} [A21_l' | Lambda_1'Z_1l'X | Lambda_1'Z_1l'y]

whose Cholesky factor (`MultiCriterion`, which fills and factors M at each
evaluation) gives log|S| (S the Schur complement over the other terms),
log|X'V^-1 X|, and sqrt(rss).  The
coupling A21 = Lambda_R'Z_R'Z_1 Lambda_1 is sparse: level l of the first term
meets only the levels of the other terms it shares rows with, listed in CSR
form (`pair_offsets`, sorted by column within each level).

Small matrices are column-major; the arrays passed in are C-ordered numpy
arrays (symmetric ones read the same either way).  The Python layer
(lmm/several_factors.py) validates every shape and index before the call.
"""

import numpy as np

from libc.math cimport INFINITY, M_PI, NAN, fabs, isfinite, isnan, log, sqrt
from libc.stdlib cimport qsort
from libc.string cimport memset
from scipy.linalg.cython_lapack cimport dpotrf
from lmm._trust_region cimport (
    TR_CONVERGED, TR_DERIVATIVES, TR_DIFFERENCED, TR_DONE, TrustRegion, tr_init, tr_next,
    tr_work_size,
)
from lmm._linalg cimport _level_factor, _solve_lower

ctypedef Py_ssize_t intp_t

# M (the other terms, the fixed effects and the response after the first term
# is eliminated) is factored by the envelope loops below under this order, or
# when its envelope holds less than 1/16 of a dense factorization's work, and by
# LAPACK otherwise: OpenBLAS's dpotrf wakes its threads even for small matrices.
cdef enum:
    LOOP_CHOLESKY_ORDER = 160


cdef inline double _dot(const double* a, const double* b, Py_ssize_t n) noexcept nogil:
    """a . b with four partial sums (the compiler keeps a single sum's
    dependency chain otherwise: one multiply-add per cycle at best)."""
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    cdef Py_ssize_t k = 0
    while k + 4 <= n:
        s0 += a[k] * b[k]
        s1 += a[k + 1] * b[k + 1]
        s2 += a[k + 2] * b[k + 2]
        s3 += a[k + 3] * b[k + 3]
        k += 4
    while k < n:
        s0 += a[k] * b[k]
        k += 1
    return (s0 + s1) + (s2 + s3)


cdef double _envelope(const double* a, Py_ssize_t n, intp_t* first) noexcept nogil:
    """first[i]: the column of row i's first nonzero in the lower triangle
    (row-major) of `a`.  Returns the work of an envelope Cholesky factorization,
    sum_i (i - first[i])^2 / 2 multiply-adds at most."""
    cdef Py_ssize_t i, f
    cdef double work = 0.0
    for i in range(n):
        f = 0
        while f < i and a[i * n + f] == 0.0:
            f += 1
        first[i] = f
        work += 0.5 * <double>(i - f) * <double>(i - f)
    return work


cdef int _cholesky_rows(double* a, const intp_t* row_base, Py_ssize_t n,
                        const intp_t* first) noexcept nogil:
    """In-place lower Cholesky factor of the n x n matrix whose lower triangle is
    stored by rows in `a` (row i's entry in column j at a[row_base[i] + j], for
    first[i] <= j <= i), within its envelope (dot-product form, rows
    contiguous).  L has M's envelope: row i of L is zero before first[i], so
    nested terms, whose part of M is block-diagonal but for the fixed-effects
    rows, cost O(m) rather than O(m^3).  Returns 0, or k > 0 if the leading minor
    of order k is not positive definite."""
    cdef Py_ssize_t i, j, k0, fi
    cdef double s
    cdef double* ri
    cdef double* rj
    for i in range(n):
        ri = a + row_base[i]
        fi = first[i]
        for j in range(fi, i):
            rj = a + row_base[j]
            k0 = fi if fi > first[j] else first[j]
            ri[j] = (ri[j] - _dot(ri + k0, rj + k0, j - k0)) / rj[j]
        s = ri[i] - _dot(ri + fi, ri + fi, i - fi)
        if not s > 0.0:
            return <int>(i + 1)
        ri[i] = sqrt(s)
    return 0


cdef inline int _coupling_rows(
    Py_ssize_t lev, const intp_t[::1] pair_offsets, const intp_t[::1] pair_col,
    const intp_t[::1] pair_term, const intp_t[::1] pair_valoff, const double[::1] pair_values,
    const double[:, :, ::1] lam_rest, const intp_t[::1] q_rest, const double* lam1, int q1,
    double* tmp, double* kmat, intp_t* idx,
) noexcept nogil:
    """The coupling blocks Lambda_1' V' Lambda_k (q1 x q_k) of level `lev` with the
    other terms' levels it meets, side by side in kmat (q1 x w, column-major),
    their columns of M in idx.  Returns w."""
    cdef Py_ssize_t b
    cdef int j, t, c, qk, kterm, w = 0
    cdef double s, lk
    cdef const double* vb
    for b in range(pair_offsets[lev], pair_offsets[lev + 1]):
        kterm = <int>pair_term[b]
        qk = <int>q_rest[kterm]
        vb = &pair_values[pair_valoff[b]]            # q_k x q1, row-major
        if qk == 1:
            # a scalar term (the usual crossed or nested intercept): Lambda_1' V' lambda_k
            lk = lam_rest[kterm, 0, 0]
            if q1 == 1:
                kmat[w] = lam1[0] * vb[0] * lk
            elif q1 == 2:
                kmat[2 * w] = (lam1[0] * vb[0] + lam1[1] * vb[1]) * lk
                kmat[2 * w + 1] = lam1[3] * vb[1] * lk
            else:
                for j in range(q1):
                    s = 0.0
                    for t in range(j, q1):
                        s += lam1[t + j * q1] * vb[t]
                    kmat[j + w * q1] = s * lk
            idx[w] = pair_col[b]
            w += 1
            continue
        # tmp (q1 x q_k) = V' Lambda_k : tmp[i, c] = sum_t V[t, i] Lambda_k[t, c]
        for c in range(qk):
            for j in range(q1):
                s = 0.0
                for t in range(c, qk):
                    s += vb[t * q1 + j] * lam_rest[kterm, t, c]
                tmp[j + c * q1] = s
        for c in range(qk):
            for j in range(q1):
                s = 0.0
                for t in range(j, q1):
                    s += lam1[t + j * q1] * tmp[t + c * q1]
                kmat[j + (w + c) * q1] = s
            idx[w + c] = pair_col[b] + c
        w += qk
    return w


cdef double _eliminate(
    const double* lam1, int q1, int p, Py_ssize_t n1, Py_ssize_t m,
    const double[:, :, ::1] ztz1, const double[:, :, ::1] ztx1, const double[:, ::1] zty1,
    const intp_t[::1] pair_offsets, const intp_t[::1] pair_col, const intp_t[::1] pair_term,
    const intp_t[::1] pair_valoff, const double[::1] pair_values,
    const double[:, :, ::1] lam_rest, const intp_t[::1] q_rest, int width,
    double* work, intp_t* idx, double* data, const intp_t* row_base,
) noexcept nogil:
    cdef double* al = work                  # Z'Z Lambda_1 (q1 x q1)
    cdef double* chol = al + q1 * q1         # L_l
    cdef double* tmp = chol + q1 * q1        # q1 x q_k scratch (q_k < width)
    cdef double* kmat = tmp + q1 * width     # compact rows, q1 x width
    cdef Py_ssize_t lev
    cdef int j, t, c, w
    cdef double s, logdet = 0.0
    if q1 == 1:
        return _eliminate_scalar(lam1[0], p, n1, m, ztz1, ztx1, zty1, pair_offsets, pair_col,
                                 pair_term, pair_valoff, pair_values, lam_rest, q_rest,
                                 kmat, idx, data, row_base)
    for lev in range(n1):
        _level_factor(&ztz1[lev, 0, 0], lam1, q1, al, chol)
        for j in range(q1):
            logdet += 2.0 * log(chol[j + j * q1])
        # compact block row: coupling blocks Lambda_1' V' Lambda_k (q1 x q_k) ...
        w = _coupling_rows(lev, pair_offsets, pair_col, pair_term, pair_valoff, pair_values,
                           lam_rest, q_rest, lam1, q1, tmp, kmat, idx)
        # ... then Lambda_1' Z'X and Lambda_1' Z'y
        for c in range(p):
            for j in range(q1):
                s = 0.0
                for t in range(j, q1):
                    s += lam1[t + j * q1] * ztx1[lev, t, c]
                kmat[j + (w + c) * q1] = s
            idx[w + c] = m + c
        w += p
        for j in range(q1):
            s = 0.0
            for t in range(j, q1):
                s += lam1[t + j * q1] * zty1[lev, t]
            kmat[j + w * q1] = s
        idx[w] = m + p
        w += 1
        _solve_lower(chol, q1, kmat, w, False)
        _subtract_gram(kmat, q1, w, idx, data, row_base)
    return logdet


cdef double _eliminate_scalar(
    double lam1, int p, Py_ssize_t n1, Py_ssize_t m,
    const double[:, :, ::1] ztz1, const double[:, :, ::1] ztx1, const double[:, ::1] zty1,
    const intp_t[::1] pair_offsets, const intp_t[::1] pair_col, const intp_t[::1] pair_term,
    const intp_t[::1] pair_valoff, const double[::1] pair_values,
    const double[:, :, ::1] lam_rest, const intp_t[::1] q_rest,
    double* kmat, intp_t* idx, double* data, const intp_t* row_base,
) noexcept nogil:
    """`_eliminate` for a first term with one effect (a random intercept, the usual
    case): each level's factor is the scalar sqrt(1 + lambda^2 z'z), and its row
    of coupling, X and y entries is scaled by lambda / that."""
    cdef Py_ssize_t lev, b
    cdef int c, t, w, qk, kterm
    cdef double pivot, scale, acc, logdet = 0.0
    cdef const double* vb
    for lev in range(n1):
        pivot = sqrt(1.0 + lam1 * lam1 * ztz1[lev, 0, 0])
        logdet += 2.0 * log(pivot)
        scale = lam1 / pivot
        w = 0
        for b in range(pair_offsets[lev], pair_offsets[lev + 1]):
            kterm = <int>pair_term[b]
            qk = <int>q_rest[kterm]
            vb = &pair_values[pair_valoff[b]]        # q_k x 1
            for c in range(qk):
                acc = 0.0
                for t in range(c, qk):
                    acc += vb[t] * lam_rest[kterm, t, c]
                kmat[w + c] = scale * acc
                idx[w + c] = pair_col[b] + c
            w += qk
        for c in range(p):
            kmat[w + c] = scale * ztx1[lev, 0, c]
            idx[w + c] = m + c
        w += p
        kmat[w] = scale * zty1[lev, 0]
        idx[w] = m + p
        w += 1
        _subtract_gram(kmat, 1, w, idx, data, row_base)
    return logdet


cdef inline void _subtract_gram(const double* kmat, int q1, int w, const intp_t* idx,
                                double* data, const intp_t* row_base) noexcept nogil:
    """M[idx[a], idx[c]] -= (K'K)[a, c] for a >= c (idx increasing), K q1 x w
    column-major, M's row i at data + row_base[i].  The first term is
    nearly always one or two effects: those get their own loops (a general
    loop over q1 costs several times the arithmetic there)."""
    cdef int a, c, j
    cdef double s, k0, k1
    cdef double* row
    if q1 == 1:
        for a in range(w):
            row = data + row_base[idx[a]]
            k0 = kmat[a]
            for c in range(a + 1):
                row[idx[c]] -= k0 * kmat[c]
    elif q1 == 2:
        for a in range(w):
            row = data + row_base[idx[a]]
            k0, k1 = kmat[2 * a], kmat[2 * a + 1]
            for c in range(a + 1):
                row[idx[c]] -= k0 * kmat[2 * c] + k1 * kmat[2 * c + 1]
    else:
        for a in range(w):
            row = data + row_base[idx[a]]
            for c in range(a + 1):
                s = 0.0
                for j in range(q1):
                    s += kmat[j + a * q1] * kmat[j + c * q1]
                row[idx[c]] -= s


def first_term_modes(
    const double[:, ::1] lam1, const double[:, :, ::1] ztz1,
    const double[:, :, ::1] ztx1, const double[:, ::1] zty1,
    const intp_t[::1] pair_offsets, const intp_t[::1] pair_col,
    const intp_t[::1] pair_term, const intp_t[::1] pair_valoff,
    const double[::1] pair_values, const double[:, :, ::1] lam_rest,
    const intp_t[::1] q_rest, Py_ssize_t max_width, const double[::1] beta,
    const double[::1] u_rest,
):
    """Spherical modes u_1 of the first term, given beta and the other terms' u.

    u_1l = L_l^{-T} (c_l - C_lX beta - C_l u_R[cols of l]), with the compact
    rows of `_eliminate`.

    Returns
    -------
    (n1, q1) array
    """
    cdef int q1 = ztz1.shape[1], p = ztx1.shape[2]
    cdef Py_ssize_t n1 = ztz1.shape[0]
    cdef int width = <int>max_width
    out_arr = np.zeros((n1, q1))
    cdef double[:, ::1] out = out_arr
    work_arr = np.zeros(2 * q1 * q1 + 2 * q1 * width + q1 + 8)
    cdef double[::1] work = work_arr
    lam1_c_arr = np.tril(np.asarray(lam1)).copy(order="F")
    cdef double[::1, :] lam1_c = lam1_c_arr
    cdef double* lam1p = &lam1_c[0, 0]
    cdef double* al = &work[0]
    cdef double* chol = al + q1 * q1
    cdef double* tmp = chol + q1 * q1        # q1 x q_k scratch (q_k < width)
    cdef double* kmat = tmp + q1 * width
    cdef double* rhs = kmat + q1 * width
    idx_arr = np.zeros(width, dtype=np.intp)
    cdef intp_t[::1] idx = idx_arr
    cdef Py_ssize_t lev
    cdef int j, t, c, w
    cdef double s
    with nogil:
        for lev in range(n1):
            _level_factor(&ztz1[lev, 0, 0], lam1p, q1, al, chol)
            # rhs = Lambda_1'(Z'y - Z'X beta) - sum_b (coupling_b) u_R[b]
            for j in range(q1):
                s = 0.0
                for t in range(j, q1):
                    s += lam1p[t + j * q1] * zty1[lev, t]
                    for c in range(p):
                        s -= lam1p[t + j * q1] * ztx1[lev, t, c] * beta[c]
                rhs[j] = s
            w = _coupling_rows(lev, pair_offsets, pair_col, pair_term, pair_valoff, pair_values,
                               lam_rest, q_rest, lam1p, q1, tmp, kmat, &idx[0])
            for c in range(w):
                for j in range(q1):
                    rhs[j] -= kmat[j + c * q1] * u_rest[idx[c]]
            # u_1l = A11_l^{-1} rhs
            _solve_lower(chol, q1, rhs, 1, False)
            _solve_lower(chol, q1, rhs, 1, True)
            for j in range(q1):
                out[lev, j] = rhs[j]
    return out_arr


def first_term_condvar(
    const double[:, ::1] lam1, const double[:, :, ::1] ztz1,
    const intp_t[::1] pair_offsets, const intp_t[::1] pair_col,
    const intp_t[::1] pair_term, const intp_t[::1] pair_valoff,
    const double[::1] pair_values, const double[:, :, ::1] lam_rest,
    const intp_t[::1] q_rest, Py_ssize_t max_width, const double[::1] s_inv,
    const intp_t[::1] s_inv_base,
):
    """Diagonal blocks of A^{-1} for the first term's levels (lme4's condVar, over scale).

    (A^{-1})_ll = L_l^{-T} (I + C_l S^{-1} C_l') L_l^{-1}, with C_l = L_l^{-1} A21_l'
    over the columns of the other terms level l meets, and S^{-1} the inverse
    of the other terms' Schur complement: its entry (i, j), j <= i, at
    s_inv[s_inv_base[i] + j] (`MultiCriterion.rest_inverse`; the entries read,
    the pairs of columns one level meets, lie in S's envelope).

    Returns
    -------
    (n1, q1, q1) array
    """
    cdef int q1 = ztz1.shape[1]
    cdef Py_ssize_t n1 = ztz1.shape[0]
    cdef int width = <int>max_width
    out_arr = np.zeros((n1, q1, q1))
    cdef double[:, :, ::1] out = out_arr
    work_arr = np.zeros(3 * q1 * q1 + 2 * q1 * width + width * q1 + 8)
    idx_arr = np.zeros(width, dtype=np.intp)
    cdef double[::1] work = work_arr
    cdef intp_t[::1] idx = idx_arr
    lam1_c_arr = np.tril(np.asarray(lam1)).copy(order="F")
    cdef double[::1, :] lam1_c = lam1_c_arr
    cdef double* lam1p = &lam1_c[0, 0]
    cdef double* al = &work[0]
    cdef double* chol = al + q1 * q1
    cdef double* tmp = chol + q1 * q1
    cdef double* kmat = tmp + q1 * width
    cdef double* ks = kmat + q1 * width            # (S^-1 C')  w x q1
    cdef double* mid = ks + width * q1             # q1 x q1
    cdef Py_ssize_t lev, ia, ic
    cdef int j, k, c, a, w
    cdef double s
    with nogil:
        for lev in range(n1):
            _level_factor(&ztz1[lev, 0, 0], lam1p, q1, al, chol)
            w = _coupling_rows(lev, pair_offsets, pair_col, pair_term, pair_valoff, pair_values,
                               lam_rest, q_rest, lam1p, q1, tmp, kmat, &idx[0])
            if w > 0:
                _solve_lower(chol, q1, kmat, w, False)       # C_l (q1 x w)
            # mid = I + C S^-1 C'
            for a in range(w):
                for j in range(q1):
                    s = 0.0
                    for c in range(w):
                        ia, ic = idx[a], idx[c]
                        if ia >= ic:
                            s += s_inv[s_inv_base[ia] + ic] * kmat[j + c * q1]
                        else:
                            s += s_inv[s_inv_base[ic] + ia] * kmat[j + c * q1]
                    ks[a + j * width] = s
            for k in range(q1):
                for j in range(q1):
                    s = 1.0 if j == k else 0.0
                    for a in range(w):
                        s += kmat[j + a * q1] * ks[a + k * width]
                    mid[j + k * q1] = s
            # out = L^-T mid L^-1: solve L' X = mid, then L' Y = X'
            _solve_lower(chol, q1, mid, q1, True)
            for k in range(q1):
                for j in range(k):
                    s = mid[j + k * q1]
                    mid[j + k * q1] = mid[k + j * q1]
                    mid[k + j * q1] = s
            _solve_lower(chol, q1, mid, q1, True)
            for j in range(q1):
                for k in range(q1):
                    out[lev, j, k] = mid[j + k * q1]
    return out_arr


def pair_sums(const intp_t[::1] order_a, const intp_t[::1] offsets_a,
              const intp_t[::1] codes_b, Py_ssize_t n_b, const double[:, ::1] za,
              const double[:, ::1] zb):
    """sum over rows of zb[r] za[r]' for every pair of levels (a, b) that shares
    rows, in one pass over the rows (O(n q_a q_b), scratch O(n_b)).

    Parameters
    ----------
    order_a, offsets_a : the rows level by level of factor a (`_core.group_blocks`)
    codes_b : (n,) levels of factor b, in [0, n_b) (checked)
    za, zb : (n, q_a), (n, q_b) the terms' designs

    Returns
    -------
    pair_offsets (n_a + 1,): the pairs of level a are pair_offsets[a]:pair_offsets[a + 1];
    pair_b (nnz,): their levels of b, increasing within each level of a;
    values (nnz, q_b, q_a): sum zb za' over the pair's rows
    """
    cdef Py_ssize_t n = codes_b.shape[0], n_a = offsets_a.shape[0] - 1
    cdef Py_ssize_t qa = za.shape[1], qb = zb.shape[1]
    cdef Py_ssize_t a, r, row, b, k, i, j, nnz = 0, start
    if order_a.shape[0] != n or za.shape[0] != n or zb.shape[0] != n:
        raise ValueError("order_a, codes_b, za and zb must have one entry per row")
    if offsets_a[0] != 0 or offsets_a[n_a] != n:
        raise ValueError("offsets_a must run from 0 to the number of rows")
    for r in range(n):
        if codes_b[r] < 0 or codes_b[r] >= n_b:
            raise ValueError(f"codes_b must lie in [0, {n_b})")
    # first pass: the number of distinct b per level of a
    slot_arr = np.full(n_b, -1, dtype=np.intp)
    cdef intp_t[::1] slot = slot_arr
    pair_offsets_arr = np.zeros(n_a + 1, dtype=np.intp)
    cdef intp_t[::1] pair_offsets = pair_offsets_arr
    with nogil:
        for a in range(n_a):
            for r in range(offsets_a[a], offsets_a[a + 1]):
                b = codes_b[order_a[r]]
                if slot[b] != a:
                    slot[b] = a
                    nnz += 1
            pair_offsets[a + 1] = nnz
    pair_b_arr = np.empty(nnz, dtype=np.intp)
    values_arr = np.zeros((nnz, qb, qa))
    cdef intp_t[::1] pair_b = pair_b_arr
    cdef double[:, :, ::1] values = values_arr
    cdef intp_t[::1] where = np.full(n_b, -1, dtype=np.intp)
    with nogil:
        for a in range(n_a):
            # the level's distinct b, increasing: mark, then collect in order of b
            # would cost O(n_b) per level; instead collect, then insertion-sort
            start = pair_offsets[a]
            k = start
            for r in range(offsets_a[a], offsets_a[a + 1]):
                b = codes_b[order_a[r]]
                if where[b] < start:
                    where[b] = k
                    pair_b[k] = b
                    k += 1
            _sort_small(&pair_b[start], k - start)
            for i in range(start, k):
                where[pair_b[i]] = i
            for r in range(offsets_a[a], offsets_a[a + 1]):
                row = order_a[r]
                k = where[codes_b[row]]
                for i in range(qb):
                    for j in range(qa):
                        values[k, i, j] += zb[row, i] * za[row, j]
    return pair_offsets_arr, pair_b_arr, values_arr


cdef int _compare_intp(const void* a, const void* b) noexcept nogil:
    cdef intp_t x = (<const intp_t*>a)[0], y = (<const intp_t*>b)[0]
    return (x > y) - (x < y)


cdef void _sort_small(intp_t* v, Py_ssize_t n) noexcept nogil:
    """Sort in place: insertion sort for the usual few levels of one factor met
    within a level of another, qsort above 32."""
    cdef Py_ssize_t i, j
    cdef intp_t x
    if n > 32:
        qsort(v, n, sizeof(intp_t), _compare_intp)
        return
    for i in range(1, n):
        x = v[i]
        j = i - 1
        while j >= 0 and v[j] > x:
            v[j + 1] = v[j]
            j -= 1
        v[j + 1] = x

cdef class MultiCriterion:
    """The profiled REML/ML criterion of a several-term model, in compiled code.

    Holds every cross-product the criterion needs (computed once by
    lmm.several_factors.MultiTermModel) and one work matrix M, so that an evaluation at
    theta builds the terms' factors Lambda_k, fills M's lower triangle,
    eliminates the first term level by level and factors M in place, with no
    Python in between and no allocation.

    Parameters
    ----------
    ztz1, ztx1, zty1 : (n1, q1, q1), (n1, q1, p), (n1, q1) the first term's
        per-level cross-products
    pair_offsets, pair_col, pair_term, pair_valoff, pair_values, q_rest, max_width :
        its coupling with the other terms (as for `_eliminate`)
    rest_levels : (K - 1,) the other terms' numbers of levels (their effects
        are M's first m rows, term by term, level by level)
    rr_row, rr_col, rr_tr, rr_tc, rr_valoff, rr_values : the blocks of Z_R'Z_R
        in M's lower triangle: the block at rows rr_row[b].. (a level of the
        other term rr_tr[b]) and columns rr_col[b].. (of term rr_tc[b]) is
        Lambda_r' V Lambda_c, V at rr_values[rr_valoff[b]:] (q_r x q_c,
        row-major); rr_row > rr_col, or equal for a level's own (symmetric) block
    zrx, zry : (m, p), (m,) the other terms' Z'X and Z'y
    xtx, xty, yty : the fixed effects' cross-products
    theta_term, theta_row, theta_col : the term (0 = first) and the row and
        column in its Lambda of each theta entry
    qs : (K,) the terms' numbers of effects
    nobs : number of rows
    log_x_scale : sum of the logs of the fixed-effects column scales (the REML
        criterion is reported for the user's columns)
    log_weights : sum of the logs of the prior weights (0 without): the products
        are those of rows scaled by sqrt(w), whose criterion is the weighted
        model's plus this sum
    envelope : (m + p + 1,) intp, optional
        M's structural envelope (row i's first column that any evaluation can make
        nonzero, `lmm.several_factors` computes it from the blocks and pairs).
        Given, M is stored packed, row i holding only its columns envelope[i]..i,
        so memory and work are linear in the levels when the envelope is narrow
        (nested terms: the other terms' part of M is block-diagonal but for the
        fixed-effects rows); without, M is a dense square, its envelope found
        from its values at each evaluation, and factored by LAPACK when wide.

    The Python layer (lmm.several_factors) builds and checks every array: offsets and
    indices within bounds, blocks inside M.
    """

    cdef readonly Py_ssize_t n1, m, p, dim, nobs, n_theta, n_terms, qmax
    cdef readonly int q1, width
    cdef readonly long n_evaluations
    cdef readonly double logdet1, rss
    cdef readonly bint packed
    cdef const double[:, :, ::1] ztz1
    cdef const double[:, :, ::1] ztx1
    cdef const double[:, ::1] zty1
    cdef const intp_t[::1] pair_offsets
    cdef const intp_t[::1] pair_col
    cdef const intp_t[::1] pair_term
    cdef const intp_t[::1] pair_valoff
    cdef const intp_t[::1] q_rest
    cdef const intp_t[::1] rest_levels
    cdef const double[::1] pair_values
    cdef const intp_t[::1] rr_row
    cdef const intp_t[::1] rr_col
    cdef const intp_t[::1] rr_tr
    cdef const intp_t[::1] rr_tc
    cdef const intp_t[::1] rr_valoff
    cdef const double[::1] rr_values
    cdef const double[:, ::1] zrx
    cdef const double[::1] zry
    cdef const double[:, ::1] xtx
    cdef const double[::1] xty
    cdef double yty, log_x_scale, log_weights
    cdef const intp_t[::1] theta_term
    cdef const intp_t[::1] theta_row
    cdef const intp_t[::1] theta_col
    cdef const intp_t[::1] qs
    cdef double[:, :, ::1] lam_rest
    cdef double[::1] lam1
    cdef double[::1] data            # M's lower triangle, row i from row_base[i] + first[i]
    cdef intp_t[::1] row_base        # M[i, j] is data[row_base[i] + j]
    cdef double[::1] work
    cdef double[::1] tmp
    cdef double[::1] point
    cdef intp_t[::1] idx
    cdef intp_t[::1] first

    def __init__(self, ztz1, ztx1, zty1, pair_offsets, pair_col, pair_term, pair_valoff,
                 pair_values, q_rest, Py_ssize_t max_width, rest_levels, rr_row, rr_col,
                 rr_tr, rr_tc, rr_valoff, rr_values, zrx, zry, xtx, xty, double yty,
                 theta_term, theta_row, theta_col, qs, Py_ssize_t nobs, double log_x_scale,
                 double log_weights=0.0, envelope=None):
        self.ztz1, self.ztx1, self.zty1 = ztz1, ztx1, zty1
        self.pair_offsets, self.pair_col, self.pair_term = pair_offsets, pair_col, pair_term
        self.pair_valoff, self.pair_values, self.q_rest = pair_valoff, pair_values, q_rest
        self.rest_levels = rest_levels
        self.rr_row, self.rr_col, self.rr_tr, self.rr_tc = rr_row, rr_col, rr_tr, rr_tc
        self.rr_valoff, self.rr_values = rr_valoff, rr_values
        self.zrx, self.zry, self.xtx, self.xty, self.yty = zrx, zry, xtx, xty, yty
        self.theta_term, self.theta_row, self.theta_col = theta_term, theta_row, theta_col
        self.qs = qs
        self.nobs, self.log_x_scale = nobs, log_x_scale
        self.log_weights = log_weights
        self.n1, self.q1 = self.ztz1.shape[0], <int>self.ztz1.shape[1]
        self.p = self.ztx1.shape[2]
        self.m = self.zrx.shape[0]
        self.dim = self.m + self.p + 1
        self.n_theta = self.theta_term.shape[0]
        self.n_terms = self.qs.shape[0]
        self.qmax = max(int(np.max(qs)), 1)
        self.width = <int>max_width
        self.lam_rest = np.zeros((max(self.n_terms - 1, 1), self.qmax, self.qmax))
        self.lam1 = np.zeros(self.q1 * self.q1)
        self.packed = envelope is not None
        if self.packed:
            first = np.ascontiguousarray(envelope, dtype=np.intp)
            rows = np.arange(self.dim, dtype=np.intp)
            if first.shape != (self.dim,) or np.any(first < 0) or np.any(first > rows):
                raise ValueError("envelope must hold, for each row i of M, a column in [0, i]")
            widths = rows - first + 1
            starts = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.intp)
            self.first = first.copy()
            self.row_base = starts - first
            self.data = np.zeros(int(widths.sum()))
        else:
            self.first = np.zeros(self.dim, dtype=np.intp)
            self.row_base = np.arange(self.dim, dtype=np.intp) * self.dim
            self.data = np.zeros(self.dim * self.dim)
        self.work = np.zeros(2 * self.q1 * self.q1 + 2 * self.q1 * self.width + 8)
        self.tmp = np.zeros(self.qmax * self.qmax)
        self.point = np.zeros(max(self.n_theta, 1))
        self.idx = np.zeros(self.width, dtype=np.intp)
        self.n_evaluations = 0

    cdef void _set_theta(self, const double* theta) noexcept nogil:
        cdef Py_ssize_t i, j, k
        cdef int t
        for i in range(self.q1 * self.q1):
            self.lam1[i] = 0.0
        for k in range(self.lam_rest.shape[0]):
            for i in range(self.qmax):
                for j in range(self.qmax):
                    self.lam_rest[k, i, j] = 0.0
        for i in range(self.n_theta):
            t = <int>self.theta_term[i]
            if t == 0:      # column-major, as _eliminate reads it
                self.lam1[self.theta_row[i] + self.theta_col[i] * self.q1] = theta[i]
            else:
                self.lam_rest[t - 1, self.theta_row[i], self.theta_col[i]] = theta[i]

    cdef int _fill_and_factor(self, const double* theta) noexcept nogil:
        """M's lower triangle at theta, the first term eliminated, then factored in
        place (its lower Cholesky factor in the lower triangle). Returns LAPACK's info."""
        cdef Py_ssize_t dim = self.dim, m = self.m, p = self.p, i, j, b, r0, c0
        cdef Py_ssize_t k, nl, lev, o
        cdef int qr, qc, tr, tc, s, t, info = 0, n = <int>dim
        cdef double acc, work
        cdef const double* v
        cdef double* tmp = &self.tmp[0]       # V Lambda_c (q_r x q_c)
        cdef char uplo = b'U'
        cdef double* d = &self.data[0]
        cdef const intp_t* base = &self.row_base[0]
        self._set_theta(theta)
        if self.packed:
            memset(d, 0, self.data.shape[0] * sizeof(double))
        else:
            for i in range(dim):
                memset(d + base[i], 0, (i + 1) * sizeof(double))
        # the other terms' blocks: Lambda_r' V Lambda_c (Lambdas lower-triangular)
        for b in range(self.rr_row.shape[0]):
            tr, tc = <int>self.rr_tr[b], <int>self.rr_tc[b]
            qr, qc = <int>self.qs[tr + 1], <int>self.qs[tc + 1]
            r0, c0 = self.rr_row[b], self.rr_col[b]
            v = &self.rr_values[self.rr_valoff[b]]
            for s in range(qr):
                for j in range(qc):
                    acc = 0.0
                    for t in range(j, qc):
                        acc += v[s * qc + t] * self.lam_rest[tc, t, j]
                    tmp[s * qc + j] = acc
            for i in range(qr):
                for j in range(qc):
                    if r0 == c0 and j > i:
                        break
                    acc = 0.0
                    for s in range(i, qr):
                        acc += self.lam_rest[tr, s, i] * tmp[s * qc + j]
                    d[base[r0 + i] + c0 + j] = acc
        # Lambda_k' Z_k'X and Lambda_k' Z_k'y in the rows below
        o = 0
        for k in range(self.n_terms - 1):
            qr = <int>self.qs[k + 1]
            nl = self.rest_levels[k]
            for lev in range(nl):
                r0 = o + lev * qr
                for i in range(qr):
                    for j in range(p):
                        acc = 0.0
                        for s in range(i, qr):
                            acc += self.lam_rest[k, s, i] * self.zrx[r0 + s, j]
                        d[base[m + j] + r0 + i] = acc
                    acc = 0.0
                    for s in range(i, qr):
                        acc += self.lam_rest[k, s, i] * self.zry[r0 + s]
                    d[base[m + p] + r0 + i] = acc
            o += nl * qr
        for i in range(m):
            d[base[i] + i] += 1.0
        for i in range(p):
            for j in range(i + 1):
                d[base[m + i] + m + j] = self.xtx[i, j]
            d[base[m + p] + m + i] = self.xty[i]
        d[base[m + p] + m + p] = self.yty
        self.logdet1 = _eliminate(&self.lam1[0], self.q1, <int>p, self.n1, m, self.ztz1,
                                  self.ztx1, self.zty1, self.pair_offsets, self.pair_col,
                                  self.pair_term, self.pair_valoff, self.pair_values,
                                  self.lam_rest, self.q_rest, self.width, &self.work[0],
                                  &self.idx[0], d, base)
        if self.packed:         # the structural envelope, narrow by construction
            return _cholesky_rows(d, base, dim, &self.first[0])
        # the envelope loops when M is small or sparse enough, else LAPACK
        work = _envelope(d, dim, &self.first[0])
        if dim < LOOP_CHOLESKY_ORDER or work < <double>dim * dim * dim / 48.0:
            return _cholesky_rows(d, base, dim, &self.first[0])
        # the row-major lower triangle is LAPACK's column-major upper one: dpotrf('U')
        # leaves U = L' there, i.e. L in the row-major lower triangle
        dpotrf(&uplo, &n, d, &n, &info)
        return info

    cdef inline double _at(self, Py_ssize_t i, Py_ssize_t j) noexcept nogil:
        """M[i, j] (or its factor's), j within row i's envelope."""
        return self.data[self.row_base[i] + j]

    cdef double _deviance(self, const double* theta, bint reml) noexcept nogil:
        cdef Py_ssize_t m = self.m, p = self.p, i
        cdef double logdet = 0.0, logdet_x = 0.0, rss, nu, dev
        self.n_evaluations += 1
        if self._fill_and_factor(theta) != 0:
            return INFINITY
        for i in range(m):
            logdet += log(self._at(i, i))
        logdet = self.logdet1 + 2.0 * logdet
        rss = self._at(m + p, m + p) * self._at(m + p, m + p)
        self.rss = rss
        if not rss > 0.0:
            return INFINITY
        nu = <double>(self.nobs - p) if reml else <double>self.nobs
        dev = logdet + nu * (1.0 + log(2.0 * M_PI * rss / nu))
        if reml:
            for i in range(p):
                logdet_x += log(self._at(m + i, m + i))
            dev += 2.0 * logdet_x - 2.0 * self.log_x_scale
        return dev - self.log_weights

    def _check(self, theta):
        th = np.ascontiguousarray(theta, dtype=np.float64)
        if th.ndim != 1 or th.shape[0] != self.n_theta:
            raise ValueError(f"theta must have {self.n_theta} entries, got shape {th.shape}")
        return th

    def deviance(self, theta, bint reml=True):
        """The profiled criterion (-2 log-likelihood, or the REML criterion) at theta;
        inf where M is not positive definite."""
        cdef double[::1] th = self._check(theta)
        cdef double out
        with nogil:
            out = self._deviance(&th[0] if self.n_theta else NULL, reml)
        return out

    def estimates(self):
        """The estimates at the last evaluation's theta, from the factor in place
        (no copy): with L's rows m..m+p (X) and m+p (y),

        beta (conditioned X) solves L_X' beta = l_yX; (X'V^-1 X)^-1 / scale is
        L_X^-T L_X^-1; the other terms' spherical modes solve
        L_R' u = l_yR - L_XR' beta.

        Returns
        -------
        (beta (p,), xvx_inv (p, p), u_rest (m,), rss)
        """
        cdef Py_ssize_t m = self.m, p = self.p, i, j, k
        beta_arr = np.zeros(p)
        inv_arr = np.zeros((p, p))
        w_arr = np.zeros((p, p))
        u_arr = np.zeros(m)
        cdef double[::1] beta = beta_arr
        cdef double[:, ::1] inv = inv_arr
        cdef double[:, ::1] w = w_arr
        cdef double[::1] u = u_arr
        cdef double acc
        cdef double* row
        with nogil:
            for i in range(p - 1, -1, -1):
                acc = self._at(m + p, m + i)
                for j in range(i + 1, p):
                    acc -= self._at(m + j, m + i) * beta[j]
                beta[i] = acc / self._at(m + i, m + i)
            # W = L_X^-1 (lower), then W'W
            for j in range(p):
                w[j, j] = 1.0 / self._at(m + j, m + j)
                for i in range(j + 1, p):
                    acc = 0.0
                    for k in range(j, i):
                        acc += self._at(m + i, m + k) * w[k, j]
                    w[i, j] = -acc / self._at(m + i, m + i)
            for i in range(p):
                for j in range(p):
                    acc = 0.0
                    for k in range(i if i > j else j, p):
                        acc += w[k, i] * w[k, j]
                    inv[i, j] = acc
            for j in range(m):
                acc = self._at(m + p, j)
                for i in range(p):
                    acc -= self._at(m + i, j) * beta[i]
                u[j] = acc
            # (row j of L is zero before first[j])
            for j in range(m - 1, -1, -1):
                row = &self.data[0] + self.row_base[j]
                u[j] = u[j] / row[j]
                for i in range(self.first[j], j):
                    u[i] -= row[i] * u[j]
        return beta_arr, inv_arr, u_arr, self._at(m + p, m + p) * self._at(m + p, m + p)

    def rest_inverse(self):
        """Entries of S^{-1} (S the other terms' Schur complement, M's leading m x m
        block) at the last evaluation's theta: within the envelope of S's factor when
        M is packed (Takahashi's recurrence: every entry the conditional variances
        need, the other terms' own blocks and the pairs a first-term level meets,
        lies there), the whole inverse otherwise (by LAPACK).

        Returns
        -------
        (values, row_base): S^{-1}[i, j] for j <= i is values[row_base[i] + j].
        """
        cdef Py_ssize_t m = self.m, i, j, k, a, b
        cdef double s, ljj
        if m == 0:
            return np.zeros(1), np.zeros(0, dtype=np.intp)
        if not self.packed:
            from scipy.linalg import cho_solve

            chol = np.asarray(self.data).reshape(self.dim, self.dim)[:m, :m]
            inverse = cho_solve((chol, True), np.eye(m))
            return inverse.reshape(-1), np.arange(m, dtype=np.intp) * m
        # the columns of L's envelope: rows k > j with first[k] <= j, increasing
        count_arr = np.zeros(m + 1, dtype=np.intp)
        cdef intp_t[::1] count = count_arr
        for k in range(m):
            for j in range(self.first[k], k):
                count[j + 1] += 1
        col_ptr_arr = np.cumsum(count_arr).astype(np.intp)
        cdef intp_t[::1] col_ptr = col_ptr_arr
        col_rows_arr = np.zeros(col_ptr[m], dtype=np.intp)
        cdef intp_t[::1] col_rows = col_rows_arr
        fill_arr = col_ptr_arr[:m].copy()
        cdef intp_t[::1] fill = fill_arr
        values_arr = np.zeros(self.data.shape[0])
        cdef double[::1] z = values_arr
        cdef const intp_t[::1] base = self.row_base
        with nogil:
            for k in range(m):
                for j in range(self.first[k], k):
                    col_rows[fill[j]] = k
                    fill[j] += 1
            # Z L = L^{-T}: for i >= j, Z_ij = (delta_ij / L_jj - sum_{k > j} Z_ik L_kj) / L_jj,
            # columns from the last; the Z_ik needed lie in the envelope already done
            for j in range(m - 1, -1, -1):
                ljj = self._at(j, j)
                for a in range(col_ptr[j], col_ptr[j + 1]):
                    i = col_rows[a]
                    s = 0.0
                    for b in range(col_ptr[j], col_ptr[j + 1]):
                        k = col_rows[b]
                        if i >= k:
                            s += z[base[i] + k] * self._at(k, j)
                        else:
                            s += z[base[k] + i] * self._at(k, j)
                    z[base[i] + j] = -s / ljj
                s = 0.0
                for b in range(col_ptr[j], col_ptr[j + 1]):
                    k = col_rows[b]
                    s += z[base[k] + j] * self._at(k, j)
                z[base[j] + j] = (1.0 / ljj - s) / ljj
        return values_arr, np.asarray(self.row_base[:m]).copy()

    cdef double _fd(self, const double* th, const double* hh, bint reml, double* g,
                    double* hess, double* plus, double f0) noexcept nogil:
        """Value, finite-difference gradient g (n) and Hessian hess (n x n) at th, steps
        hh, every evaluation in compiled code (the criterion is defined on both sides
        of theta's bounds: Lambda Lambda' stays positive semi-definite).  The gradient
        and the Hessian's diagonal are central differences; the off-diagonal entries
        forward differences reusing f(th + h_i),
        (f(th + h_i + h_j) - f(th + h_i) - f(th + h_j) + f) / (h_i h_j), whose O(h)
        error is harmless to the Newton steps they serve and which cost one
        evaluation per pair instead of four: 1 + 2n + n(n - 1)/2 in all.
        f0: the criterion at th if known (the optimizer has it), else NaN."""
        cdef Py_ssize_t n = self.n_theta, i, j
        cdef double* x = &self.point[0]
        cdef double fm, a
        for i in range(n):
            x[i] = th[i]
        if isnan(f0):
            f0 = self._deviance(x, reml)
        for i in range(n):
            x[i] = th[i] + hh[i]
            plus[i] = self._deviance(x, reml)
            x[i] = th[i] - hh[i]
            fm = self._deviance(x, reml)
            x[i] = th[i]
            g[i] = (plus[i] - fm) / (2.0 * hh[i])
            hess[i * n + i] = (plus[i] - 2.0 * f0 + fm) / (hh[i] * hh[i])
        for i in range(n):
            for j in range(i):
                x[i] = th[i] + hh[i]
                x[j] = th[j] + hh[j]
                a = self._deviance(x, reml)
                x[i] = th[i]
                x[j] = th[j]
                hess[i * n + j] = (a - plus[i] - plus[j] + f0) / (hh[i] * hh[j])
                hess[j * n + i] = hess[i * n + j]
        return f0

    def derivatives(self, theta, bint reml=True, double step=1e-4):
        """The criterion at theta and its finite-difference gradient and Hessian
        (`_fd`, the optimizer's differences: steps step * max(1, |theta_i|)), for
        the optimum check.

        Returns
        -------
        (value, gradient (n_theta,), hessian (n_theta, n_theta))
        """
        cdef Py_ssize_t n = self.n_theta
        theta_arr = np.array(self._check(theta), dtype=np.float64, copy=True)
        steps_arr = step * np.maximum(1.0, np.abs(theta_arr))
        g_arr = np.zeros(max(n, 1))
        h_arr = np.zeros((max(n, 1), max(n, 1)))
        plus_arr = np.zeros(max(n, 1))
        cdef double[::1] th = theta_arr
        cdef double[::1] hh = steps_arr
        cdef double[::1] g = g_arr
        cdef double[:, ::1] h = h_arr
        cdef double[::1] plus = plus_arr
        cdef double f
        if n == 0:
            return self.deviance(theta_arr, reml), np.zeros(0), np.zeros((0, 0))
        with nogil:
            f = self._fd(&th[0], &hh[0], reml, &g[0], &h[0, 0], &plus[0], NAN)
        return f, g_arr, h_arr

    def minimize(self, theta, lower, bint reml=True, int max_iter=100, double radius=1.0):
        """Trust-region Newton steps on finite-difference derivatives, within the
        bounds, all in compiled code.

        Each step: central-difference gradient and Hessian (`_fd`,
        steps 1e-4 max(1, |theta_i|)); theta entries held at their bound by the
        gradient are fixed (active set) and the exact trust-region step is taken
        on the others (the one-factor optimizer's step solver); the step is
        accepted if it lowers the criterion, and the radius follows the ratio of
        actual to predicted decrease.  Converged when a Newton step would lower
        the criterion by less than 1e-9, or when every entry is held at its bound.

        Parameters
        ----------
        theta : (n_theta,) start (projected onto the bounds)
        lower : (n_theta,) lower bounds (-inf where none)
        reml, max_iter, radius : criterion, step limit, initial trust radius

        Returns
        -------
        (theta, criterion at theta, converged, iterations)
        """
        cdef Py_ssize_t n = self.n_theta
        lower_arr = np.ascontiguousarray(lower, dtype=np.float64)
        if lower_arr.shape != (n,):
            raise ValueError(f"lower must have {n} entries")
        theta_arr = np.maximum(self._check(theta), lower_arr)
        work_arr = np.zeros(tr_work_size(n) + 2 * n + 1)
        free_arr = np.zeros(max(n, 1), dtype=np.intc)
        cdef double[::1] th = theta_arr
        cdef const double[::1] lo = lower_arr
        cdef double[::1] work = work_arr
        cdef int[::1] free_ix = free_arr
        cdef int status = 0, it = 0
        cdef double f = INFINITY
        if n == 0:
            return theta_arr, self.deviance(theta_arr, reml), True, 0
        with nogil:
            status = self._minimize(&th[0], &lo[0], reml, max_iter, radius, &work[0],
                                    &free_ix[0], &it, &f)
        return theta_arr, f, status == TR_CONVERGED, it

    cdef int _minimize(self, double* theta, const double* lower, bint reml, int max_iter,
                       double radius, double* work, int* free_ix,
                       int* iterations, double* f_out) noexcept nogil:
        """The trust-region loop (`lmm._trust_region`) on finite-difference
        derivatives (`_fd`, steps 1e-4 max(1, |theta_i|), from the value at theta
        the loop already holds); returns the loop's status and the criterion at
        the final theta in f_out."""
        cdef Py_ssize_t n = self.n_theta, i
        cdef TrustRegion tr
        cdef int request = TR_DERIVATIVES
        cdef double* steps = work + tr_work_size(n)
        cdef double* plus = steps + n
        tr_init(&tr, <int>n, theta, lower, work, free_ix, TR_DIFFERENCED, max_iter, 0.0,
                radius)
        tr.f = self._deviance(theta, reml)
        while request != TR_DONE:
            if request == TR_DERIVATIVES:
                if isfinite(tr.f):
                    for i in range(n):
                        steps[i] = 1e-4 * (fabs(theta[i]) if fabs(theta[i]) > 1.0 else 1.0)
                    self._fd(theta, steps, reml, tr.g, tr.h, plus, tr.f)
            else:
                tr.fc = self._deviance(tr.cand, reml)
            request = tr_next(&tr)
        iterations[0] = tr.iterations
        f_out[0] = tr.f
        return tr.status
