# Small dense linear algebra shared by the compiled modules (column-major).
#
# Inline definitions in a .pxd are compiled into each module that cimports
# them.  Below SMALL_ORDER the Cholesky factorization and triangular solves
# are plain loops, above it LAPACK (see the note below).
cimport cython
from libc.math cimport fabs, sqrt
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


@cython.cdivision(True)
cdef inline void _symmetric_eigen(double* a, int n, double* w, double* v) noexcept nogil:
    """Eigenvalues (ascending, in w) and eigenvectors (columns of v) of the
    symmetric n x n column-major `a` (destroyed), by cyclic Jacobi rotations.

    n is the number of free theta entries: small, where Jacobi is exact to
    rounding and a LAPACK call would cost more than the arithmetic.
    """
    cdef int i, j, k, _sweep, imin
    cdef double off, scale, apq, tau, t, c, s, akp, akq, tmp
    for i in range(n * n):
        v[i] = 0.0
    for i in range(n):
        v[i + i * n] = 1.0
    for _sweep in range(100):
        off = 0.0
        scale = 0.0
        for j in range(n):
            scale += a[j + j * n] * a[j + j * n]
            for i in range(j):
                off += a[i + j * n] * a[i + j * n]
        if off <= 1e-32 * scale or off == 0.0:
            break
        for i in range(n - 1):
            for j in range(i + 1, n):
                apq = a[i + j * n]
                if apq == 0.0:
                    continue
                tau = (a[j + j * n] - a[i + i * n]) / (2.0 * apq)
                t = (1.0 if tau >= 0 else -1.0) / (fabs(tau) + sqrt(tau * tau + 1.0))
                c = 1.0 / sqrt(t * t + 1.0)
                s = t * c
                for k in range(n):          # columns i, j of A J
                    akp = a[k + i * n]
                    akq = a[k + j * n]
                    a[k + i * n] = c * akp - s * akq
                    a[k + j * n] = s * akp + c * akq
                for k in range(n):          # rows i, j of J' (A J)
                    akp = a[i + k * n]
                    akq = a[j + k * n]
                    a[i + k * n] = c * akp - s * akq
                    a[j + k * n] = s * akp + c * akq
                for k in range(n):
                    akp = v[k + i * n]
                    akq = v[k + j * n]
                    v[k + i * n] = c * akp - s * akq
                    v[k + j * n] = s * akp + c * akq
    for i in range(n):
        w[i] = a[i + i * n]
    for i in range(n):                      # selection sort, ascending
        imin = i
        for j in range(i + 1, n):
            if w[j] < w[imin]:
                imin = j
        if imin != i:
            tmp = w[i]
            w[i] = w[imin]
            w[imin] = tmp
            for k in range(n):
                tmp = v[k + i * n]
                v[k + i * n] = v[k + imin * n]
                v[k + imin * n] = tmp


@cython.cdivision(True)
cdef inline void _trust_region_step(const double* w, const double* v, const double* g, int n,
                                    double radius, const double* prefer, double* gv,
                                    double* step) noexcept nogil:
    """Minimizer of g'p + p'Hp/2 subject to |p| <= radius, H = V diag(w) V'.

    The secular equation |p(lam)| = radius is solved by Newton steps on
    1/|p(lam)| - 1/radius (concave, increasing: monotone from the left; More
    and Sorensen).  In the 'hard case' the lowest-curvature eigenvector is
    added with the sign that points along `prefer` (into the feasible region
    when a zero gradient at a bound leaves the choice to rounding).
    """
    cdef int i, k, _it
    cdef double norm2, lam, lo, d, extra, sgn, wl, acc, dnorm
    for i in range(n):
        acc = 0.0
        for k in range(n):
            acc += v[k + i * n] * g[k]
        gv[i] = acc
    if w[0] > 0:
        norm2 = 0.0
        for i in range(n):
            norm2 += (gv[i] / w[i]) * (gv[i] / w[i])
        if norm2 <= radius * radius:
            lam = 0.0
            for k in range(n):
                acc = 0.0
                for i in range(n):
                    acc += v[k + i * n] * gv[i] / w[i]
                step[k] = -acc
            return
    wl = fabs(w[n - 1])
    lo = (-w[0] if w[0] < 0 else 0.0) + 1e-14 * (wl if wl > 1.0 else 1.0)
    norm2 = 0.0
    for i in range(n):
        norm2 += (gv[i] / (w[i] + lo)) * (gv[i] / (w[i] + lo))
    if norm2 < radius * radius:
        extra = sqrt(radius * radius - norm2)
        acc = 0.0
        for k in range(n):
            acc += v[k] * prefer[k]
        sgn = 1.0 if acc >= 0 else -1.0
        for k in range(n):
            acc = 0.0
            for i in range(n):
                acc += v[k + i * n] * gv[i] / (w[i] + lo)
            step[k] = -acc + extra * sgn * v[k]
        return
    lam = lo
    for _it in range(50):
        norm2 = 0.0
        dnorm = 0.0
        for i in range(n):
            d = w[i] + lam
            norm2 += gv[i] * gv[i] / (d * d)
            dnorm += gv[i] * gv[i] / (d * d * d)
        if fabs(sqrt(norm2) - radius) <= 1e-3 * radius:
            break
        dnorm /= norm2 * sqrt(norm2)
        lam -= (1.0 / sqrt(norm2) - 1.0 / radius) / dnorm
    for k in range(n):
        acc = 0.0
        for i in range(n):
            acc += v[k + i * n] * gv[i] / (w[i] + lam)
        step[k] = -acc
