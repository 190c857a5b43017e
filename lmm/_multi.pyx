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

whose Cholesky factor (taken by the caller) gives log|S| (S the Schur
complement over the other terms), log|X'V^-1 X|, and sqrt(rss).  The
coupling A21 = Lambda_R'Z_R'Z_1 Lambda_1 is sparse: level l of the first term
meets only the levels of the other terms it shares rows with, listed in CSR
form (`pair_offsets`, sorted by column within each level).

Small matrices are column-major; the arrays passed in are C-ordered numpy
arrays (symmetric ones read the same either way).  The Python layer
(lmm/multi.py) validates every shape and index before the call.
"""

import numpy as np

from libc.math cimport log
from lmm._linalg cimport _level_factor, _solve_lower

ctypedef Py_ssize_t intp_t


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
    cdef double s
    cdef const double* vb
    for b in range(pair_offsets[lev], pair_offsets[lev + 1]):
        kterm = <int>pair_term[b]
        qk = <int>q_rest[kterm]
        vb = &pair_values[pair_valoff[b]]            # q_k x q1, row-major
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


def eliminate_first_term(
    const double[:, ::1] lam1, const double[:, :, ::1] ztz1,
    const double[:, :, ::1] ztx1, const double[:, ::1] zty1,
    const intp_t[::1] pair_offsets, const intp_t[::1] pair_col,
    const intp_t[::1] pair_term, const intp_t[::1] pair_valoff,
    const double[::1] pair_values, const double[:, :, ::1] lam_rest,
    const intp_t[::1] q_rest, Py_ssize_t max_width, double[:, ::1] M,
):
    """Subtract the first term's contributions from M (its lower triangle).

    Parameters
    ----------
    lam1 : (q1, q1) lower-triangular factor of the first term
    ztz1, ztx1, zty1 : (n1, q1, q1), (n1, q1, p), (n1, q1) per-level cross-products
    pair_offsets : (n1 + 1,) CSR offsets of the coupling blocks per level
    pair_col : (nnz,) first column (in M) of each coupling block, increasing
        within a level
    pair_term : (nnz,) which other term the block belongs to (index into lam_rest)
    pair_valoff : (nnz,) offset in pair_values of the block Z_k'Z_1 for that
        pair of levels, (q_k x q1) row-major
    lam_rest : (K - 1, qmax, qmax) factors of the other terms (lower-triangular)
    q_rest : (K - 1,) their sizes
    max_width : the widest compact row block: max over levels of the sum of
        the q_k of its blocks, plus p + 1 (so also more than any q_k)
    M : (m + p + 1, m + p + 1), initialized by the caller; its lower triangle
        (row >= column) is updated

    Returns
    -------
    sum over levels of log|Lambda_1'Z_1l'Z_1l Lambda_1 + I|
    """
    cdef int q1 = ztz1.shape[1], p = ztx1.shape[2]
    cdef Py_ssize_t n1 = ztz1.shape[0], dim = M.shape[0], m = dim - p - 1
    cdef int width = <int>max_width
    work_arr = np.zeros(2 * q1 * q1 + 2 * q1 * width + 8)
    idx_arr = np.zeros(width, dtype=np.intp)
    cdef double[::1] work = work_arr
    cdef intp_t[::1] idx = idx_arr
    lam1_c_arr = np.tril(np.asarray(lam1)).copy(order="F")
    cdef double[::1, :] lam1_c = lam1_c_arr
    cdef double logdet = 0.0
    with nogil:
        logdet = _eliminate(&lam1_c[0, 0], q1, p, n1, m, ztz1, ztx1, zty1, pair_offsets,
                            pair_col, pair_term, pair_valoff, pair_values, lam_rest, q_rest,
                            width, &work[0], &idx[0], M)
    return logdet


cdef double _eliminate(
    const double* lam1, int q1, int p, Py_ssize_t n1, Py_ssize_t m,
    const double[:, :, ::1] ztz1, const double[:, :, ::1] ztx1, const double[:, ::1] zty1,
    const intp_t[::1] pair_offsets, const intp_t[::1] pair_col, const intp_t[::1] pair_term,
    const intp_t[::1] pair_valoff, const double[::1] pair_values,
    const double[:, :, ::1] lam_rest, const intp_t[::1] q_rest, int width,
    double* work, intp_t* idx, double[:, ::1] M,
) noexcept nogil:
    cdef double* al = work                  # Z'Z Lambda_1 (q1 x q1)
    cdef double* chol = al + q1 * q1         # L_l
    cdef double* tmp = chol + q1 * q1        # q1 x q_k scratch (q_k < width)
    cdef double* kmat = tmp + q1 * width     # compact rows, q1 x width
    cdef Py_ssize_t lev
    cdef int j, t, a, c, w
    cdef double s, logdet = 0.0
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
        # M[idx[a], idx[c]] -= (K'K)[a, c] for a >= c (idx increasing)
        for a in range(w):
            for c in range(a + 1):
                s = 0.0
                for j in range(q1):
                    s += kmat[j + a * q1] * kmat[j + c * q1]
                M[idx[a], idx[c]] -= s
    return logdet


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
    rows of `eliminate_first_term`.

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
    const intp_t[::1] q_rest, Py_ssize_t max_width, const double[:, ::1] s_inv,
):
    """Diagonal blocks of A^{-1} for the first term's levels (lme4's condVar, over scale).

    (A^{-1})_ll = L_l^{-T} (I + C_l S^{-1} C_l') L_l^{-1}, with C_l = L_l^{-1} A21_l'
    over the columns of the other terms level l meets, and S^{-1} the inverse
    of the other terms' Schur complement (m x m).

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
    cdef Py_ssize_t lev
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
                        s += s_inv[idx[a], idx[c]] * kmat[j + c * q1]
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
