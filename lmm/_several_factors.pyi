# Type stubs of the several-factor kernels (lmm/_several_factors.pyx). Shapes: n rows, p fixed
# effects, n1 levels of the first (largest) term with q1 effects, m effects of the
# other terms; float64 and intp arrays, C-contiguous.
import numpy as np
from numpy.typing import NDArray

def pair_sums(
    order_a: NDArray[np.intp], offsets_a: NDArray[np.intp], codes_b: NDArray[np.intp],
    n_b: int, za: NDArray[np.float64], zb: NDArray[np.float64],
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]: ...
def first_term_modes(
    lam1: NDArray[np.float64], ztz1: NDArray[np.float64], ztx1: NDArray[np.float64],
    zty1: NDArray[np.float64], pair_offsets: NDArray[np.intp], pair_col: NDArray[np.intp],
    pair_term: NDArray[np.intp], pair_valoff: NDArray[np.intp],
    pair_values: NDArray[np.float64], lam_rest: NDArray[np.float64],
    q_rest: NDArray[np.intp], max_width: int, beta: NDArray[np.float64],
    u_rest: NDArray[np.float64],
) -> NDArray[np.float64]: ...
def first_term_condvar(
    lam1: NDArray[np.float64], ztz1: NDArray[np.float64], pair_offsets: NDArray[np.intp],
    pair_col: NDArray[np.intp], pair_term: NDArray[np.intp], pair_valoff: NDArray[np.intp],
    pair_values: NDArray[np.float64], lam_rest: NDArray[np.float64],
    q_rest: NDArray[np.intp], max_width: int, s_inv: NDArray[np.float64],
) -> NDArray[np.float64]: ...

class MultiCriterion:
    n1: int
    m: int
    p: int
    dim: int
    nobs: int
    n_theta: int
    n_terms: int
    qmax: int
    q1: int
    width: int
    n_evaluations: int
    logdet1: float
    rss: float
    matrix: NDArray[np.float64]      # (dim, dim): M, its Cholesky factor after an evaluation
    def __init__(
        self, ztz1: NDArray[np.float64], ztx1: NDArray[np.float64], zty1: NDArray[np.float64],
        pair_offsets: NDArray[np.intp], pair_col: NDArray[np.intp],
        pair_term: NDArray[np.intp], pair_valoff: NDArray[np.intp],
        pair_values: NDArray[np.float64], q_rest: NDArray[np.intp], max_width: int,
        rest_levels: NDArray[np.intp], rr_row: NDArray[np.intp], rr_col: NDArray[np.intp],
        rr_tr: NDArray[np.intp], rr_tc: NDArray[np.intp], rr_valoff: NDArray[np.intp],
        rr_values: NDArray[np.float64], zrx: NDArray[np.float64], zry: NDArray[np.float64],
        xtx: NDArray[np.float64], xty: NDArray[np.float64], yty: float,
        theta_term: NDArray[np.intp], theta_row: NDArray[np.intp],
        theta_col: NDArray[np.intp], qs: NDArray[np.intp], nobs: int, log_x_scale: float,
        log_weights: float = ...,
    ) -> None: ...
    def deviance(self, theta: NDArray[np.float64], reml: bool = ...) -> float: ...
    def estimates(
        self,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float]: ...
    def derivatives(
        self, theta: NDArray[np.float64], reml: bool = ..., step: float = ...,
    ) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]: ...
    def minimize(
        self, theta: NDArray[np.float64], lower: NDArray[np.float64], reml: bool = ...,
        max_iter: int = ..., radius: float = ...,
    ) -> tuple[NDArray[np.float64], float, bool, int]: ...
