# Type stubs of the compiled kernels (lmm/_core.pyx). Shapes: n rows, p fixed
# effects, q random effects, G groups; all arrays float64 and C-contiguous
# unless said otherwise.
import numpy as np
from numpy.typing import NDArray

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
