# cython: language_level=3
"""The one trust-region loop of lmm's optimizers, by reverse communication.

Every compiled optimizer (the one-term criterion, `_core.Criterion.minimize`,
which the many-responses fitter runs too, and the several-term criterion,
`_several_factors.MultiCriterion.minimize`) drives this loop; it never calls the
criterion itself.  It asks for what it needs, and the caller evaluates:

    tr_init(&tr, ...)               # theta projected onto the bounds
    request = TR_DERIVATIVES
    while request != TR_DONE:
        if request == TR_DERIVATIVES:   # f (optional), g and h at tr.theta
            ...
        else:                           # TR_VALUE: tr.fc, the criterion at tr.cand
            ...
        request = tr_next(&tr)

so each engine keeps its own evaluation (analytic derivatives, or finite
differences of values it already has: the loop passes the value at theta in
tr.f) without callbacks through the GIL, as scipy's L-BFGS-B (setulb) and
ARPACK do.  Derivatives are asked for only at a new point: after a rejected
step the loop re-solves the subproblem on a smaller radius.

One step: the entries held at their lower bound by the gradient are fixed (the
active set); over the others the exact trust-region step of the quadratic model
(`_linalg._trust_region_step`); the step projected onto the bounds; accepted if
it lowers the criterion; the radius follows the ratio rho of actual to predicted
decrease (x 1/4 below 0.25, x 2 above 0.75 at the boundary of the region).

The stopping rule is an option, fitted to the derivative source:

- TR_EXACT (analytic derivatives): the projected gradient below `tol` with no
  negative curvature among the free entries; or a predicted decrease below what
  double precision resolves; a convex step predicted to gain less than 1e-11
  relative is taken without a value comparison (the values are rounding noise
  there, the exact quadratic model is not).
- TR_DIFFERENCED (finite-difference derivatives, noisy at 1e-8): a Newton
  decrement g'H^-1 g / 2 below 1e-9; or Newton's quadratic convergence measured
  over two confirmed full Newton steps; a collapsed radius counts as converged
  only when the last predicted decrease was below 1e-8.

The caller's Python layer judges the end point in any case
(`lmm.optimize.judge_optimum`): this loop's status is its own stopping reason.
"""

from libc.math cimport INFINITY, fabs, isfinite, sqrt

from lmm._linalg cimport _symmetric_eigen, _trust_region_step

cdef enum:
    TR_DONE = 0
    TR_DERIVATIVES = 1      # write g and h (column-major) at theta; f may be rewritten
    TR_VALUE = 2            # write fc, the criterion at cand

cdef enum:
    TR_RUNNING = 0
    TR_CONVERGED = 1        # the stopping rule holds
    TR_STOPPED = 2          # no further progress possible (not a verdict)
    TR_MAX_ITER = 3
    TR_FAILED = 4           # a non-finite value or derivative at theta

cdef enum:
    TR_EXACT = 0
    TR_DIFFERENCED = 1

cdef struct TrustRegion:
    int n, nf, rule, max_iter, iterations, status, phase
    bint moved, newton_step
    double tol, radius, f, fc, predicted, previous, dnorm, snorm, tmax
    double* theta
    const double* lower
    # the work block (tr_work_size doubles), in this order: the gradient first
    # and the Hessian at 8 n, so callers can read the end point's derivatives
    double* g
    double* cand
    double* step
    double* gf
    double* prefer
    double* stepf
    double* w
    double* gv
    double* h
    double* hf
    double* vecs
    int* free_ix


cdef inline Py_ssize_t tr_work_size(Py_ssize_t n) noexcept nogil:
    return 8 * n + 3 * n * n


cdef inline void tr_init(TrustRegion* tr, int n, double* theta, const double* lower,
                         double* work, int* free_ix, int rule, int max_iter, double tol,
                         double radius) noexcept nogil:
    """Set up the loop on `work` (tr_work_size(n) doubles) and `free_ix` (n ints);
    theta is raised to its bounds in place.  The first request is TR_DERIVATIVES."""
    cdef int i
    tr.n = n
    tr.rule = rule
    tr.max_iter = max_iter
    tr.tol = tol
    tr.radius = radius
    tr.iterations = 0
    tr.status = TR_RUNNING
    tr.phase = TR_DERIVATIVES
    tr.moved = True
    tr.newton_step = False
    tr.previous = -1.0
    tr.predicted = 0.0
    tr.f = INFINITY
    tr.fc = INFINITY
    tr.theta = theta
    tr.lower = lower
    tr.g = work
    tr.cand = tr.g + n
    tr.step = tr.cand + n
    tr.gf = tr.step + n
    tr.prefer = tr.gf + n
    tr.stepf = tr.prefer + n
    tr.w = tr.stepf + n
    tr.gv = tr.w + n
    tr.h = tr.gv + n
    tr.hf = tr.h + n * n
    tr.vecs = tr.hf + n * n
    tr.free_ix = free_ix
    for i in range(n):
        if lower[i] > theta[i]:
            theta[i] = lower[i]


cdef inline int _tr_finish(TrustRegion* tr, int status) noexcept nogil:
    tr.status = status
    tr.phase = TR_DONE
    return TR_DONE


cdef inline int _tr_propose(TrustRegion* tr) noexcept nogil:
    """From the derivatives at theta: stop, or a candidate (TR_VALUE), or (a
    convex step within rounding noise, TR_EXACT) a new theta (TR_DERIVATIVES)."""
    cdef int n = tr.n, nf = 0, i, j, a, b
    cdef double pgmax = 0.0, pg, lin, quad, newton, acc
    cdef bint at_bound
    if tr.iterations >= tr.max_iter:
        return _tr_finish(tr, TR_MAX_ITER)
    for i in range(n):
        at_bound = isfinite(tr.lower[i]) and tr.theta[i] <= tr.lower[i]
        pg = tr.g[i]
        if at_bound and pg > 0:
            pg = 0.0
        else:
            tr.free_ix[nf] = i
            nf += 1
        if fabs(pg) > pgmax:
            pgmax = fabs(pg)
    tr.nf = nf
    for a in range(nf):
        tr.gf[a] = tr.g[tr.free_ix[a]]
        at_bound = isfinite(tr.lower[tr.free_ix[a]]) and \
            tr.theta[tr.free_ix[a]] <= tr.lower[tr.free_ix[a]]
        tr.prefer[a] = 1.0 if at_bound else -tr.gf[a]
        for b in range(nf):
            tr.hf[a + b * nf] = tr.h[tr.free_ix[a] + tr.free_ix[b] * n]
    if nf == 0:
        return _tr_finish(tr, TR_CONVERGED)
    _symmetric_eigen(tr.hf, nf, tr.w, tr.vecs)
    if tr.rule == TR_EXACT:
        if pgmax < tr.tol and tr.w[0] >= 0:
            return _tr_finish(tr, TR_CONVERGED)
    elif tr.w[0] > 0:
        newton = 0.0        # g' H^-1 g over the free entries
        for a in range(nf):
            acc = 0.0
            for b in range(nf):
                acc += tr.vecs[b + a * nf] * tr.gf[b]
            newton += acc * acc / tr.w[a]
        if 0.5 * newton < 1e-9:
            return _tr_finish(tr, TR_CONVERGED)
    _trust_region_step(tr.w, tr.vecs, tr.gf, nf, tr.radius, tr.prefer, tr.gv, tr.stepf)
    for i in range(n):
        tr.step[i] = 0.0
    tr.snorm = 0.0
    for a in range(nf):
        tr.step[tr.free_ix[a]] = tr.stepf[a]
        tr.snorm += tr.stepf[a] * tr.stepf[a]
    tr.snorm = sqrt(tr.snorm)
    # a full Newton step: positive curvature, inside the region, nothing held or clipped
    tr.newton_step = tr.w[0] > 0 and tr.snorm < 0.99 * tr.radius and nf == n
    tr.dnorm = 0.0
    tr.tmax = 0.0
    lin = 0.0
    for i in range(n):
        tr.cand[i] = tr.theta[i] + tr.step[i]
        if tr.cand[i] < tr.lower[i]:
            tr.cand[i] = tr.lower[i]
            tr.newton_step = False
        tr.step[i] = tr.cand[i] - tr.theta[i]       # the projected step d
        tr.dnorm += tr.step[i] * tr.step[i]
        lin += tr.g[i] * tr.step[i]
        if fabs(tr.theta[i]) > tr.tmax:
            tr.tmax = fabs(tr.theta[i])
    tr.dnorm = sqrt(tr.dnorm)
    quad = 0.0
    for i in range(n):
        for j in range(n):
            quad += tr.step[i] * tr.h[i + j * n] * tr.step[j]
    tr.predicted = -(lin + 0.5 * quad)
    if tr.rule == TR_EXACT:
        if 0 <= tr.predicted < 1e-15 * (1.0 + fabs(tr.f)):
            return _tr_finish(tr, TR_STOPPED)   # nothing left that double precision resolves
        if 0 <= tr.predicted < 1e-11 * (1.0 + fabs(tr.f)) and tr.w[0] > 0:
            # within rounding noise of the criterion its values cannot judge the
            # step; the convex quadratic model (exact derivatives) can
            tr.iterations += 1
            for i in range(n):
                tr.theta[i] = tr.cand[i]
            tr.moved = True
            tr.phase = TR_DERIVATIVES
            return TR_DERIVATIVES
    tr.phase = TR_VALUE
    return TR_VALUE


cdef inline int tr_next(TrustRegion* tr) noexcept nogil:
    """The loop's next request, after the caller answered the last one."""
    cdef int n = tr.n, i, j
    cdef double rho
    cdef bint finite
    if tr.phase == TR_DERIVATIVES:
        if not tr.f < INFINITY:
            return _tr_finish(tr, TR_FAILED)
        if tr.rule == TR_DIFFERENCED:
            finite = True
            for i in range(n):
                finite = finite and isfinite(tr.g[i])
                for j in range(n):
                    finite = finite and isfinite(tr.h[i + j * n])
            if not finite:
                return _tr_finish(tr, TR_FAILED)
        if not tr.moved:
            return _tr_finish(tr, TR_STOPPED)
        return _tr_propose(tr)
    if tr.phase != TR_VALUE:
        return TR_DONE
    # the candidate's value is in tr.fc
    tr.iterations += 1
    rho = (tr.f - tr.fc) / tr.predicted if tr.predicted > 0 else -1.0
    if not isfinite(tr.fc) or rho < 0.25:
        tr.radius = 0.25 * (tr.dnorm if tr.dnorm > 1e-3 * tr.radius else 1e-3 * tr.radius)
    elif rho > 0.75 and tr.snorm > 0.99 * tr.radius:
        tr.radius *= 2.0
    if isfinite(tr.fc) and tr.fc < tr.f:
        tr.moved = tr.dnorm > 1e-15 * (1.0 + tr.tmax)
        for i in range(n):
            tr.theta[i] = tr.cand[i]
        tr.f = tr.fc
        if tr.rule == TR_DIFFERENCED:
            # Newton's quadratic convergence, measured: after two full Newton
            # steps confirmed by the criterion to 10 %, with predicted gains d1
            # then d2, the next gains about d2^2 d2/d1^2; below 1e-11 (the
            # decrement test asks 1e-9) another set of differences is not worth
            # its evaluations
            if tr.newton_step and 0.9 < rho < 1.1:
                if tr.previous > 0 and tr.predicted < 1e-4 and \
                        tr.predicted * tr.predicted * tr.predicted < \
                        1e-11 * tr.previous * tr.previous:
                    return _tr_finish(tr, TR_CONVERGED)
                tr.previous = tr.predicted
            else:
                tr.previous = -1.0
        tr.phase = TR_DERIVATIVES
        return TR_DERIVATIVES
    if tr.rule == TR_EXACT:
        if tr.radius < 1e-12 * (1.0 + tr.tmax):
            return _tr_finish(tr, TR_STOPPED)
    else:
        if tr.radius < 1e-10:
            return _tr_finish(tr, TR_CONVERGED if tr.predicted < 1e-8 else TR_STOPPED)
        tr.previous = -1.0
    return _tr_propose(tr)
