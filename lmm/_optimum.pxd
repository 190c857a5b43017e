# cython: language_level=3
"""The optimum check's verdict, once, in compiled code.

`lmm.optimize.judge_optimum` (every engine's check, through `_core.judge`) and
the many-responses fitter (`_core.ManyFitter`, per response, without the GIL)
both call `judge_optimum_flags`; the Python side only words the messages.

Is theta a minimum of the criterion whose value f, gradient g and Hessian h
(column-major) are given, within the lower bounds?  Four rules, each a flag of
the result (0: verified):

- OPT_NONFINITE: f is not finite;
- OPT_GRADIENT: the projected gradient exceeds grad_tol and a Newton step (on
  the entries not held at a bound, positive curvature) would gain at least
  decrement_tol in log-likelihood (g'H^-1 g / 4);
- OPT_SADDLE: over the entries that can still move (interior ones, and those at
  a bound with no gradient holding them there) the Hessian has a negative
  eigenvalue below -1e-6 max(1, |largest|), less the rounding `noise` of a
  finite-difference Hessian (its Frobenius norm) when given; entries at a bound
  are judged by their own curvature;
- OPT_FLAT: the diagonally scaled Hessian of the interior entries has a
  curvature below flat_tol times its largest (or within the scaled noise): the
  likelihood is flat along a direction, the model not identified.  `flat`
  receives the entries spanning it (those of the eigenvector above 0.1 of its
  largest component), or the interior entries with no curvature at all.
"""

from libc.math cimport NAN, fabs, isfinite, isnan, sqrt

from lmm._linalg cimport _symmetric_eigen

cdef enum:
    OPT_NONFINITE = 1
    OPT_GRADIENT = 2
    OPT_SADDLE = 4
    OPT_FLAT = 8


cdef inline Py_ssize_t optimum_work_size(Py_ssize_t n) noexcept nogil:
    """Doubles of scratch `judge_optimum_flags` needs (its `work`)."""
    return 3 * n * n + 2 * n


cdef inline double _noise_norm(const double* noise, int n, const int* ix, int m,
                               const double* scale) noexcept nogil:
    """Frobenius norm of noise[ix, ix] (scaled by scale[a] scale[b] if given)."""
    cdef int a, b
    cdef double acc = 0.0, v
    for a in range(m):
        for b in range(m):
            v = noise[ix[a] + ix[b] * n]
            if scale != NULL:
                v *= scale[a] * scale[b]
            acc += v * v
    return sqrt(acc)


cdef inline int judge_optimum_flags(
        int n, const double* theta, double f, const double* g, const double* h,
        const double* lower, const double* noise, double grad_tol, double decrement_tol,
        double flat_tol, double* pg, unsigned char* at_bound, int* flat, int* n_flat,
        double* gmax_out, double* saddle_eigenvalue, double* work, int* ix) noexcept nogil:
    """The verdict's flags (see the module docstring); pg, at_bound, flat,
    gmax_out and saddle_eigenvalue (the smallest eigenvalue of the movable
    entries' Hessian, NaN if not computed) are written; `work` holds
    optimum_work_size(n) doubles, `ix` 2 n ints."""
    cdef int i, a, b, nf, nm, ni, flags = 0
    cdef double gmax = 0.0, gain, acc, tiny, top, limit, vmax
    cdef bint saddle = False, weak
    cdef double* sub = work
    cdef double* w = sub + n * n
    cdef double* vecs = w + n
    cdef double* scale = vecs + n * n
    n_flat[0] = 0
    saddle_eigenvalue[0] = NAN
    for i in range(n):
        at_bound[i] = isfinite(lower[i]) and theta[i] <= lower[i]
        # (np.minimum(g, 0) at a bound: a NaN stays NaN)
        pg[i] = (0.0 if g[i] >= 0.0 else g[i]) if at_bound[i] else g[i]
    if not isfinite(f):
        flags |= OPT_NONFINITE
    for i in range(n):
        if isnan(pg[i]):
            gmax = NAN
            break
        if fabs(pg[i]) > gmax:
            gmax = fabs(pg[i])
    gmax_out[0] = gmax
    if gmax > grad_tol:
        # a Newton step's gain, over the entries not held at a bound
        nf = 0
        for i in range(n):
            if not (at_bound[i] and g[i] > 0):
                ix[nf] = i
                nf += 1
        if nf > 0:
            for a in range(nf):
                for b in range(nf):
                    sub[a + b * nf] = h[ix[a] + ix[b] * n]
            _symmetric_eigen(sub, nf, w, vecs)
            if w[0] <= 0:
                flags |= OPT_GRADIENT
            else:
                gain = 0.0
                for b in range(nf):
                    acc = 0.0
                    for a in range(nf):
                        acc += vecs[a + b * nf] * pg[ix[a]]
                    gain += acc * acc / w[b]
                if not 0.25 * gain < decrement_tol:
                    flags |= OPT_GRADIENT
    if flags == 0:
        # second order, over the movable entries
        nm = 0
        for i in range(n):
            if not at_bound[i] or g[i] <= grad_tol:
                ix[nm] = i
                nm += 1
        if nm > 0:
            for a in range(nm):
                for b in range(nm):
                    sub[a + b * nm] = h[ix[a] + ix[b] * n]
            _symmetric_eigen(sub, nm, w, vecs)
            saddle_eigenvalue[0] = w[0]
            top = fabs(w[nm - 1])
            tiny = -1e-6 * (top if top > 1.0 else 1.0)
            if noise != NULL:
                tiny -= _noise_norm(noise, n, ix, nm, NULL)
            weak = False
            for a in range(nm):
                weak = weak or at_bound[ix[a]]
            if not weak:
                saddle = w[0] < tiny
            else:
                # at a bound: the entry's own curvature; the interior ones together
                ni = 0
                for a in range(nm):
                    if at_bound[ix[a]]:
                        saddle = saddle or h[ix[a] + ix[a] * n] < tiny
                    else:
                        ix[nm + ni] = ix[a]
                        ni += 1
                if ni > 0:
                    for a in range(ni):
                        for b in range(ni):
                            sub[a + b * ni] = h[ix[nm + a] + ix[nm + b] * n]
                    _symmetric_eigen(sub, ni, w, vecs)
                    saddle = saddle or w[0] < tiny
            if saddle:
                flags |= OPT_SADDLE
    if isfinite(f) and not saddle:
        # a flat direction among the interior entries (also when the gradient
        # failed: along it a Newton step is unbounded, and it is the reason)
        nf = 0
        for i in range(n):
            if not at_bound[i]:
                ix[nf] = i
                nf += 1
        for a in range(nf):
            if not h[ix[a] + ix[a] * n] > 0:        # no curvature at all
                flat[n_flat[0]] = ix[a]
                n_flat[0] += 1
        if n_flat[0] == 0 and nf > 1:
            for a in range(nf):
                scale[a] = 1.0 / sqrt(h[ix[a] + ix[a] * n])
            for a in range(nf):
                for b in range(nf):
                    sub[a + b * nf] = h[ix[a] + ix[b] * n] * scale[a] * scale[b]
            _symmetric_eigen(sub, nf, w, vecs)
            limit = flat_tol * w[nf - 1]
            if noise != NULL:
                acc = _noise_norm(noise, n, ix, nf, scale)
                if acc > limit:
                    limit = acc
            if not w[0] >= limit:
                vmax = 0.0
                for a in range(nf):
                    if fabs(vecs[a]) > vmax:
                        vmax = fabs(vecs[a])
                for a in range(nf):
                    if fabs(vecs[a]) > 0.1 * vmax:
                        flat[n_flat[0]] = ix[a]
                        n_flat[0] += 1
        if n_flat[0] > 0:
            flags |= OPT_FLAT
    return flags
