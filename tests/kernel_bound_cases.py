"""Inconsistent arguments for each public entry point of lmm._core.

Run as a script (by tests/test_kernel_bounds.py, in a subprocess, since an
unchecked kernel may crash the interpreter), it calls every case and prints
one line per case: "<name> <outcome>", outcome the exception's class name and
message, or "returned" when the call raised nothing.  "start <name>" is
printed (and flushed) before each call, so a crash names its case.
"""

import sys

import numpy as np

from lmm import _core, _many_responses

N, G, Q, P = 12, 3, 2, 2


def _design(seed=0):
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(N), rng.normal(size=N)])
    z = np.column_stack([np.ones(N), rng.uniform(size=N)])
    y = rng.normal(size=N)
    codes = np.repeat(np.arange(G), N // G).astype(np.intp)
    sizes, offsets, order = _core.group_blocks(codes, G)
    return x, z, y, order, offsets


X, Z, Y, ORDER, OFFSETS = _design()
PRODUCTS = _core.cross_products(X, Z, Y, ORDER, OFFSETS)   # ztz, ztx, zty, xtx, xty, yty
LAM = np.eye(Q)
ROWS = np.array([0, 1, 1], dtype=np.intp)
COLS = np.array([0, 0, 1], dtype=np.intp)
LOWER = np.array([0.0, -np.inf, 0.0])


def _with(products, **changes):
    names = ["ztz", "ztx", "zty", "xtx", "xty", "yty"]
    d = dict(zip(names, products))
    d.update(changes)
    return [d[k] for k in names]


def _bad_products():
    """(label, products) with one array inconsistent with the others."""
    ztz, ztx, zty, xtx, xty, yty = PRODUCTS
    return [
        ("ztz_groups", _with(PRODUCTS, ztz=np.ascontiguousarray(ztz[:-1]))),
        ("ztz_not_square", _with(PRODUCTS, ztz=np.zeros((G, Q, Q + 1)))),
        ("ztx_q", _with(PRODUCTS, ztx=np.zeros((G, Q + 1, P)))),
        ("ztx_groups", _with(PRODUCTS, ztx=np.ascontiguousarray(ztx[:1]))),
        ("zty_groups", _with(PRODUCTS, zty=np.zeros((G + 2, Q)))),
        ("zty_q", _with(PRODUCTS, zty=np.zeros((G, Q + 3)))),
        ("xtx_p", _with(PRODUCTS, xtx=np.eye(P + 2))),
        ("xtx_small", _with(PRODUCTS, xtx=np.eye(1))),
        ("xty_p", _with(PRODUCTS, xty=np.zeros(P + 3))),
    ]


def _row_cases(call):
    """Cases for an entry point taking (X, Z, y, order, offsets) via `call`."""
    n = N
    bad_order_perm = ORDER.copy()
    bad_order_perm[0] = bad_order_perm[1]
    return {
        "order_out_of_range": lambda: call(X, Z, Y, np.where(ORDER == 0, 10 ** 6, ORDER)
                                           .astype(np.intp), OFFSETS),
        "order_negative": lambda: call(X, Z, Y, np.where(ORDER == 0, -5, ORDER)
                                       .astype(np.intp), OFFSETS),
        "order_not_permutation": lambda: call(X, Z, Y, bad_order_perm, OFFSETS),
        "order_short": lambda: call(X, Z, Y, ORDER[:-1].copy(), OFFSETS),
        "offsets_decreasing": lambda: call(X, Z, Y, ORDER,
                                           np.array([0, 8, 4, n], dtype=np.intp)),
        "offsets_beyond_n": lambda: call(X, Z, Y, ORDER,
                                         np.array([0, 4, 10 * n, n], dtype=np.intp)),
        "offsets_not_ending_at_n": lambda: call(X, Z, Y, ORDER,
                                                np.array([0, 4, 8, n - 1], dtype=np.intp)),
        "offsets_past_n": lambda: call(X, Z, Y, ORDER,
                                       np.array([0, 4, 8, 100 * n], dtype=np.intp)),
        "offsets_not_from_0": lambda: call(X, Z, Y, ORDER,
                                           np.array([2, 4, 8, n], dtype=np.intp)),
        "offsets_empty": lambda: call(X, Z, Y, ORDER, np.zeros(0, dtype=np.intp)),
        "z_rows": lambda: call(X, np.ascontiguousarray(Z[:-2]), Y, ORDER, OFFSETS),
        "x_rows": lambda: call(np.ascontiguousarray(X[:-2]), Z, Y, ORDER, OFFSETS),
        "y_rows": lambda: call(X, Z, np.ascontiguousarray(Y[:-1]), ORDER, OFFSETS),
    }


def _cases():
    cases = {}
    # group_blocks and code_integer_groups
    codes = np.repeat(np.arange(G), N // G).astype(np.intp)
    cases["group_blocks/code_too_large"] = lambda: _core.group_blocks(
        np.where(codes == 2, 10 ** 6, codes).astype(np.intp), G)
    cases["group_blocks/code_negative"] = lambda: _core.group_blocks(
        np.where(codes == 0, -1, codes).astype(np.intp), G)
    cases["group_blocks/n_groups_negative"] = lambda: _core.group_blocks(codes, -3)
    cases["code_integer_groups/max_span_negative"] = lambda: _core.code_integer_groups(
        np.arange(5, dtype=np.int64), -1)
    # cross_products and response_cross_products: rows
    for name, fn in _row_cases(_core.cross_products).items():
        cases["cross_products/" + name] = fn

    def shifted(x, z, y, order, offsets):
        return _core.shifted_cross_products(x, z, y, order, offsets, np.zeros(x.shape[1]),
                                            np.zeros(z.shape[1]), 0.0)

    for name, fn in _row_cases(shifted).items():
        cases["shifted_cross_products/" + name] = fn
    cases["shifted_cross_products/shift_length"] = lambda: _core.shifted_cross_products(
        X, Z, Y, ORDER, OFFSETS, np.zeros(P + 1), np.zeros(Q), 0.0)

    def response(x, z, y, order, offsets):
        return _many_responses.response_cross_products(x, z, np.ascontiguousarray(
            np.column_stack([y, y])), order, offsets)

    for name, fn in _row_cases(response).items():
        cases["response_cross_products/" + name] = fn
    # the kernels on cross-products
    kernels = {
        "deviance": lambda pr: _core.deviance(LAM, *pr, float(N), True),
        "solve": lambda pr: _core.solve(LAM, *pr),
        "second_derivatives": lambda pr: _core.second_derivatives(
            LAM, *pr, np.ascontiguousarray(np.eye(Q)[None].repeat(2, 0))),
        "deviance_hessian": lambda pr: _core.deviance_hessian(
            LAM, *pr, float(N), True, ROWS, COLS, np.zeros(3), np.zeros((3, 3))),
        "conditional_modes": lambda pr: _core.conditional_modes(LAM, *pr[:3], np.zeros(P)),
        "Criterion": lambda pr: _core.Criterion(*pr, float(N), True, ROWS, COLS, LOWER),
        "condition_products": lambda pr: _core.condition_products(
            *pr, np.ones(P), np.eye(Q)),
    }
    for kname, kernel in kernels.items():
        for label, pr in _bad_products():
            if kname == "conditional_modes" and label.startswith(("xtx", "xty")):
                continue      # (it takes no xtx, xty)
            cases[f"{kname}/{label}"] = (lambda k=kernel, p=pr: k(p))
        if kname not in ("Criterion", "condition_products"):
            cases[f"{kname}/lam_shape"] = lambda k=kname: _run_with_lam(k, np.eye(Q + 1))
    # None for an array (a typed memoryview argument accepts it, as empty)
    cases["deviance/ztz_none"] = lambda: _core.deviance(LAM, None, *PRODUCTS[1:], float(N), True)
    cases["cross_products/order_none"] = lambda: _core.cross_products(X, Z, Y, None, OFFSETS)
    # theta indices
    cases["Criterion/theta_row_out_of_range"] = lambda: _core.Criterion(
        *PRODUCTS, float(N), True, np.array([0, 5, 1], dtype=np.intp), COLS, LOWER)
    cases["Criterion/theta_col_negative"] = lambda: _core.Criterion(
        *PRODUCTS, float(N), True, ROWS, np.array([0, -1, 1], dtype=np.intp), LOWER)
    cases["Criterion/theta_upper_triangle"] = lambda: _core.Criterion(
        *PRODUCTS, float(N), True, ROWS, np.array([0, 0, 2], dtype=np.intp), LOWER)
    cases["Criterion/lower_length"] = lambda: _core.Criterion(
        *PRODUCTS, float(N), True, ROWS, COLS, LOWER[:2])
    cases["Criterion/t_row_length"] = lambda: _criterion().set_profile(1.0, np.ones(Q + 1))
    cases["Criterion/theta_length"] = lambda: _criterion().value(np.ones(2))
    cases["Criterion/theta0_length"] = lambda: _criterion().minimize(np.ones(4))
    cases["deviance_hessian/theta_row_out_of_range"] = lambda: _core.deviance_hessian(
        LAM, *PRODUCTS, float(N), True, np.array([0, 7, 1], dtype=np.intp), COLS,
        np.zeros(3), np.zeros((3, 3)))
    cases["deviance_hessian/grad_length"] = lambda: _core.deviance_hessian(
        LAM, *PRODUCTS, float(N), True, ROWS, COLS, np.zeros(2), np.zeros((3, 3)))
    cases["deviance/grad_shape"] = lambda: _core.deviance(
        LAM, *PRODUCTS, float(N), True, np.zeros((Q + 1, Q + 1)))
    cases["second_derivatives/directions_shape"] = lambda: _core.second_derivatives(
        LAM, *PRODUCTS, np.zeros((2, Q + 1, Q + 1)))
    cases["conditional_modes/beta_length"] = lambda: _core.conditional_modes(
        LAM, *PRODUCTS[:3], np.zeros(P + 1))
    cases["condition_products/x_scale_length"] = lambda: _core.condition_products(
        *PRODUCTS, np.ones(P + 1), np.eye(Q))
    cases["condition_products/t_shape"] = lambda: _core.condition_products(
        *PRODUCTS, np.ones(P), np.eye(Q + 1))
    cases["condition_products/beta_length"] = lambda: _core.condition_products(
        *PRODUCTS, np.ones(P), np.eye(Q), np.zeros(P + 2))
    # small dense helpers
    cases["trust_region_step/g_length"] = lambda: _core.trust_region_step(
        np.eye(3), np.ones(2), 1.0, np.ones(3))
    cases["trust_region_step/scalar_h"] = lambda: _core.trust_region_step(
        1.0, np.ones(1), 1.0, np.ones(1))
    cases["judge/g_length"] = lambda: _core.judge(
        np.ones(3), 1.0, np.ones(2), np.eye(3), np.zeros(3), None, 1e-4, 1e-9, 1e-8)
    cases["judge/h_shape"] = lambda: _core.judge(
        np.ones(3), 1.0, np.ones(3), np.eye(2), np.zeros(3), None, 1e-4, 1e-9, 1e-8)
    cases["judge/lower_length"] = lambda: _core.judge(
        np.ones(3), 1.0, np.ones(3), np.eye(3), np.zeros(4), None, 1e-4, 1e-9, 1e-8)
    cases["judge/noise_shape"] = lambda: _core.judge(
        np.ones(3), 1.0, np.ones(3), np.eye(3), np.zeros(3), np.eye(2), 1e-4, 1e-9, 1e-8)
    cases["judge/scalar_h"] = lambda: _core.judge(
        np.ones(1), 1.0, np.ones(1), 1.0, np.zeros(1), None, 1e-4, 1e-9, 1e-8)
    cases["spd_solve/b_length"] = lambda: _core.spd_solve(np.eye(3), np.ones(4))
    cases["spd_solve/scalar_a"] = lambda: _core.spd_solve(2.0, np.ones(1))
    cases["symmetric_eigen/not_square"] = lambda: _core.symmetric_eigen(np.ones((2, 3)))
    cases["symmetric_eigen/scalar"] = lambda: _core.symmetric_eigen(1.0)
    # ManyFitter: its constructor's design pieces, and fit's arrays
    for name, fn in _row_cases(lambda x, z, y, o, off: _many(X=x, Z=z, order=o,
                                                             group_offsets=off)).items():
        if not name.startswith("y_"):
            cases["ManyFitter/" + name] = fn
    cases["ManyFitter/ztz_groups"] = lambda: _many(ztz=np.ascontiguousarray(PRODUCTS[0][:1]))
    cases["ManyFitter/theta_row_out_of_range"] = lambda: _many(
        theta_rows=np.array([0, 9, 1], dtype=np.intp))
    cases["ManyFitter/t_mode_length"] = lambda: _many(t_mode=np.zeros(Q + 1, dtype=np.intp))
    cases["ManyFitter/t_icpt_out_of_range"] = lambda: _many(
        t_icpt=np.array([0, 4], dtype=np.intp))
    cases["ManyFitter/cov_rows_out_of_range"] = lambda: _many(
        cov_rows=np.array([0, 1, 3], dtype=np.intp))
    cases["ManyFitter.fit/miss_rows_out_of_range"] = lambda: _many_fit(
        miss_ptr=np.array([0, 1], dtype=np.intp), miss_rows=np.array([N + 4], dtype=np.intp))
    cases["ManyFitter.fit/miss_ptr_past_end"] = lambda: _many_fit(
        miss_ptr=np.array([0, 5], dtype=np.intp), miss_rows=np.array([1], dtype=np.intp))
    cases["ManyFitter.fit/miss_ptr_decreasing"] = lambda: _many_fit(
        y=np.zeros((N, 2)), miss_ptr=np.array([0, 1000, 1], dtype=np.intp),
        miss_rows=np.array([1], dtype=np.intp))
    cases["ManyFitter.fit/miss_rows_repeated"] = lambda: _many_fit(
        miss_ptr=np.array([0, 2], dtype=np.intp), miss_rows=np.array([3, 3], dtype=np.intp))
    cases["ManyFitter.fit/y_rows"] = lambda: _many_fit(y=np.zeros((N - 1, 1)))
    return cases


def _run_with_lam(kname, lam):
    if kname == "deviance":
        return _core.deviance(lam, *PRODUCTS, float(N), True)
    if kname == "solve":
        return _core.solve(lam, *PRODUCTS)
    if kname == "second_derivatives":
        return _core.second_derivatives(lam, *PRODUCTS, np.zeros((1, Q, Q)))
    if kname == "deviance_hessian":
        return _core.deviance_hessian(lam, *PRODUCTS, float(N), True, ROWS, COLS,
                                      np.zeros(3), np.zeros((3, 3)))
    return _core.conditional_modes(lam, *PRODUCTS[:3], np.zeros(P))


def _criterion():
    return _core.Criterion(*PRODUCTS, float(N), True, ROWS, COLS, LOWER)


def _many_args(**changes):
    ztz, ztx, zty, xtx, xty, yty = PRODUCTS
    args = dict(X=X, Z=Z, order=ORDER, group_offsets=OFFSETS, ztz=ztz, ztx=ztx, xtx=xtx,
                ztz_s=ztz, ztx_s=ztx, xtx_s=xtx, t=np.eye(Q), x_scale=np.ones(P), shift=0.0,
                reml=True, theta_rows=ROWS, theta_cols=COLS, lower=LOWER,
                cov_rows=ROWS, cov_cols=COLS, t_mode=np.zeros(Q, dtype=np.intp),
                t_icpt=np.zeros(Q, dtype=np.intp), gradient_tolerance=1e-6,
                decrement_tolerance=1e-10, singular_tolerance=1e-4)
    args.update(changes)
    return args


def _many(**changes):
    return _many_responses.ManyFitter(**_many_args(**changes))


def _many_fit(y=None, miss_ptr=None, miss_rows=None):
    fitter = _many()
    y = np.ascontiguousarray(Y[ORDER][:, None]) if y is None else y
    m = y.shape[1]
    miss_ptr = np.zeros(m + 1, dtype=np.intp) if miss_ptr is None else miss_ptr
    miss_rows = np.zeros(0, dtype=np.intp) if miss_rows is None else miss_rows
    out = np.zeros((m, fitter.n_columns))
    flags = np.zeros((m, 4), dtype=np.intp)
    return fitter.fit(y, miss_ptr, miss_rows, out, flags)


def case_names():
    return sorted(_cases())


def main(names):
    cases = _cases()
    # the unmodified arguments work (so each case tests only its change)
    _core.deviance(LAM, *PRODUCTS, float(N), True)
    _criterion().minimize(np.array([1.0, 0.0, 1.0]))
    _many_fit()
    print("baseline ok", flush=True)
    for name in names or sorted(cases):
        print("start", name, flush=True)
        try:
            cases[name]()
            outcome = "returned"
        except Exception as exc:      # report every class: the test wants ValueError
            outcome = f"{type(exc).__name__} {exc}".replace("\n", " ")
        print(name, outcome, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
