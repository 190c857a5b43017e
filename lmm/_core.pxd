# Declarations of lmm/_core.pyx that the other compiled modules cimport: the
# one-term criterion (its buffers and C methods: lmm/_many_responses.pyx drives it
# with each response's products) and the kernels and checks it is built from.

ctypedef Py_ssize_t intp_t


cdef int _check_row_blocks(Py_ssize_t n, const intp_t[::1] order,
                           const intp_t[::1] group_offsets) except -1
cdef int _check_theta_indices(const intp_t[::1] rows, const intp_t[::1] cols,
                              Py_ssize_t q, str what) except -1
cdef int _pass_one(
    const double* lam, const double[:, :, ::1] ztz, const double[:, :, ::1] ztx,
    const double[:, ::1] zty, const double[:, ::1] xtx, const double[::1] xty, double yty,
    int q, int p, double* work,
    double* xvx, double* xvy, double* yvy, double* logdet,
) noexcept nogil
cdef int _solve_gls(double* xvx, double* xvy, double yvy, int p,
                    double* beta, double* logdet_xvx, double* rss) noexcept nogil


cdef class Criterion:
    cdef const double[:, :, ::1] ztz
    cdef const double[:, :, ::1] ztx
    cdef const double[:, ::1] zty
    cdef const double[:, ::1] xtx
    cdef const double[::1] xty
    cdef double yty, nobs, shift, nu
    cdef bint reml
    cdef int q, p, nd
    cdef intp_t[::1] rows
    cdef intp_t[::1] cols
    cdef double[::1] lower
    cdef double[::1] work
    cdef double[::1] buf
    cdef int profile          # 0: profiled deviance, 1: variance held, 2: scale held
    cdef double prof_v
    cdef double[::1] t_row
    cdef public long n_evaluations
    # (theta, value, gradient, Hessian) of minimize's end point, handed once
    # to value_grad_hessian at that same theta (the optimum check asks for it)
    cdef object _end

    cdef double _eval(self, const double* theta, bint want_deriv, double* grad,
                      double* hess) noexcept nogil
    cdef double _minimize(self, double* theta, double* state, int max_iter, double tol,
                          double radius, int* n_iter_out) noexcept nogil
