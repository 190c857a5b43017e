# Type stubs of the compiled kernels (lmm/_core.pyx). Shapes: n rows, p fixed
# effects, q random effects, G groups; all arrays float64 and C-contiguous
# unless said otherwise.
import numpy as np
from numpy.typing import NDArray

def code_integer_groups(
    groups: NDArray[np.int64], max_span: int
) -> tuple[NDArray[np.intp], NDArray[np.int64]] | None: ...
def group_blocks(
    codes: NDArray[np.intp], n_groups: int
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]: ...
def model_products(
    X: NDArray[np.float64], Z: NDArray[np.float64], y: NDArray[np.float64],
    codes: NDArray[np.intp], n_groups: int, weights: NDArray[np.float64] | None = ...,
) -> dict[str, object]: ...
def integer_model_products(
    X: NDArray[np.float64], Z: NDArray[np.float64], y: NDArray[np.float64],
    groups: NDArray[np.int64], max_span: int, weights: NDArray[np.float64] | None = ...,
) -> dict[str, object] | None: ...
def shifted_cross_products(
    X: NDArray[np.float64], Z: NDArray[np.float64], y: NDArray[np.float64],
    order: NDArray[np.intp], group_offsets: NDArray[np.intp],
    x_shift: NDArray[np.float64], z_shift: NDArray[np.float64], y_shift: float,
    weights: NDArray[np.float64] | None = ...,
) -> tuple[NDArray[np.float64], ...]: ...
def cross_products(
    X: NDArray[np.float64], Z: NDArray[np.float64], y: NDArray[np.float64],
    order: NDArray[np.intp], group_offsets: NDArray[np.intp],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
           NDArray[np.float64], NDArray[np.float64], float]: ...
def deviance(
    lam: NDArray[np.float64], ztz: NDArray[np.float64], ztx: NDArray[np.float64],
    zty: NDArray[np.float64], xtx: NDArray[np.float64], xty: NDArray[np.float64],
    yty: float, nobs: float, reml: bool, grad: NDArray[np.float64] | None = ...,
    pieces: NDArray[np.float64] | None = ...,
) -> tuple[float, float]: ...
def solve(
    lam: NDArray[np.float64], ztz: NDArray[np.float64], ztx: NDArray[np.float64],
    zty: NDArray[np.float64], xtx: NDArray[np.float64], xty: NDArray[np.float64],
    yty: float,
) -> dict: ...
def second_derivatives(
    lam: NDArray[np.float64], ztz: NDArray[np.float64], ztx: NDArray[np.float64],
    zty: NDArray[np.float64], xtx: NDArray[np.float64], xty: NDArray[np.float64],
    yty: float, directions: NDArray[np.float64],
) -> dict: ...
def deviance_hessian(
    lam: NDArray[np.float64], ztz: NDArray[np.float64], ztx: NDArray[np.float64],
    zty: NDArray[np.float64], xtx: NDArray[np.float64], xty: NDArray[np.float64],
    yty: float, nobs: float, reml: bool, theta_rows: NDArray[np.intp],
    theta_cols: NDArray[np.intp], grad: NDArray[np.float64], hess: NDArray[np.float64],
    piece_grad: NDArray[np.float64] | None = ..., piece_hess: NDArray[np.float64] | None = ...,
) -> tuple[float, float]: ...
def conditional_modes(
    lam: NDArray[np.float64], ztz: NDArray[np.float64], ztx: NDArray[np.float64],
    zty: NDArray[np.float64], beta: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...
def symmetric_eigen(a: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...

class Criterion:
    n_evaluations: int
    def __init__(
        self, ztz: NDArray[np.float64], ztx: NDArray[np.float64], zty: NDArray[np.float64],
        xtx: NDArray[np.float64], xty: NDArray[np.float64], yty: float, nobs: float,
        reml: bool, theta_rows: NDArray[np.intp], theta_cols: NDArray[np.intp],
        lower: NDArray[np.float64], shift: float = ...,
    ) -> None: ...
    def set_profile(self, v: float, t_row: NDArray[np.float64]) -> None: ...
    def set_scale_profile(self, scale: float) -> None: ...
    def clear_profile(self) -> None: ...
    def value(self, theta: NDArray[np.float64]) -> float: ...
    def value_grad_hessian(
        self, theta: NDArray[np.float64],
    ) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]: ...
    def minimize(
        self, theta0: NDArray[np.float64], max_iter: int = ..., tol: float = ...,
        radius: float = ...,
    ) -> tuple[NDArray[np.float64], float, int]: ...

def spd_solve(
    a: NDArray[np.float64], b: NDArray[np.float64]
) -> NDArray[np.float64] | None: ...
def condition_products(
    ztz: NDArray[np.float64], ztx: NDArray[np.float64], zty: NDArray[np.float64],
    xtx: NDArray[np.float64], xty: NDArray[np.float64], yty: float,
    x_scale: NDArray[np.float64], t: NDArray[np.float64],
    beta: NDArray[np.float64] | None = ...,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
           NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float] | None: ...
