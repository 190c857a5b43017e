# Small dense linear algebra shared by the compiled modules (column-major).
#
# Inline definitions in a .pxd are compiled into each module that cimports
# them.  Below SMALL_ORDER the Cholesky factorization and triangular solves
# are plain loops, above it LAPACK (see the note below).
from libc.math cimport sqrt
from scipy.linalg.cython_lapack cimport dpotrf, dtrtrs

# Below this order the Cholesky factorization and triangular solves are done
# by the loops here, above it by LAPACK.  The per-group matrices are q x q
# with q typically 1-4: there a LAPACK call costs more than the arithmetic
# (measured on dietox, 72 groups, q = 2: 160 us per deviance evaluation
# through OpenBLAS's threaded dpotrf/dtrtrs, 13 us with one OpenBLAS thread,
# about 2 us with these loops).
cdef enum:
    SMALL_ORDER = 48


cdef inline int _cholesky_lower(double* a, int n) noexcept nogil:
    """In-place lower Cholesky factor of the n x n column-major `a`.

    Returns 0, or k > 0 if the leading minor of order k is not positive
    definite (LAPACK's convention).  Only the lower triangle is read.
    """
    cdef char uplo = b'L'
    cdef int info = 0, j, k, m
    cdef double s, t
    if n >= SMALL_ORDER:
        dpotrf(&uplo, &n, a, &n, &info)
        return info
    for j in range(n):
        s = a[j + j * n]
        for m in range(j):
            s -= a[j + m * n] * a[j + m * n]
        if not s > 0.0:
            return j + 1
        s = sqrt(s)
        a[j + j * n] = s
        for k in range(j + 1, n):
            t = a[k + j * n]
            for m in range(j):
                t -= a[k + m * n] * a[j + m * n]
            a[k + j * n] = t / s
    return 0


cdef inline int _solve_lower(const double* l, int n, double* b, int nrhs,
                             bint transpose) noexcept nogil:
    """b <- L^{-1} b (or L'^{-1} b), L lower-triangular n x n, b n x nrhs."""
    cdef char uplo = b'L'
    cdef char trans = b'T' if transpose else b'N'
    cdef char diag = b'N'
    cdef int info = 0, i, j, c
    cdef double s
    cdef double* col
    if nrhs == 0:
        return 0
    if n >= SMALL_ORDER:
        dtrtrs(&uplo, &trans, &diag, &n, &nrhs, <double*>l, &n, b, &n, &info)
        return info
    for c in range(nrhs):
        col = b + c * n
        if not transpose:
            for i in range(n):
                s = col[i]
                for j in range(i):
                    s -= l[i + j * n] * col[j]
                col[i] = s / l[i + i * n]
        else:
            for i in range(n - 1, -1, -1):
                s = col[i]
                for j in range(i + 1, n):
                    s -= l[j + i * n] * col[j]
                col[i] = s / l[i + i * n]
    return 0


cdef inline void _level_factor(const double* ztz_l, const double* lam1, int q1,
                               double* al, double* chol) noexcept nogil:
    """al = Z'Z Lambda; chol = lower Cholesky factor of Lambda' Z'Z Lambda + I.

    Z'Z row-major (symmetric), Lambda lower-triangular column-major, q x q.
    It cannot fail: the matrix is >= I, so every pivot is at least 1.
    """
    cdef int j, k, t
    cdef double s
    for k in range(q1):
        for j in range(q1):
            s = 0.0
            for t in range(k, q1):
                s += ztz_l[j * q1 + t] * lam1[t + k * q1]
            al[j + k * q1] = s
    for k in range(q1):
        for j in range(k, q1):
            s = 0.0
            for t in range(j, q1):
                s += lam1[t + j * q1] * al[t + k * q1]
            chol[j + k * q1] = s + (1.0 if j == k else 0.0)
    _cholesky_lower(chol, q1)
