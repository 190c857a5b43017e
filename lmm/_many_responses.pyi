# Type stubs of the compiled many-responses fitter (lmm/_many_responses.pyx).
import numpy as np
from numpy.typing import NDArray

def response_cross_products(
    X: NDArray[np.float64], Z: NDArray[np.float64], Y: NDArray[np.float64],
    order: NDArray[np.intp], group_offsets: NDArray[np.intp],
) -> tuple: ...

class ManyFitter:
    # Fits many responses on one design in C (see lmm/many_responses.py for the arguments).
    def __init__(self, *args, **kwargs) -> None: ...
    def set_intercept_contrast(self, index: int, contrast: NDArray[np.float64]) -> None: ...
    def fit(
        self, Y: NDArray[np.float64], miss_ptr: NDArray[np.intp], miss_rows: NDArray[np.intp],
        out: NDArray[np.float64], flags: NDArray[np.intp],
    ) -> int: ...
