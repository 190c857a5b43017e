"""Prior weights and offsets as the models take them: one float vector per argument,
checked once (the one-factor and the several-factor engines share these).

Prior weights w_i > 0 give row i the residual variance sigma^2 / w_i (lme4's and
MixedModels.jl's meaning); an offset is a known term of the linear predictor.
"""

import numpy as np
import pandas as pd

__all__ = ["row_vector", "rows_to_drop"]


def row_vector(values, name, n):
    """Prior weights or an offset as a float64 (n,) array (a copy), with errors
    naming `name` for a wrong length or type; NaN is kept (missing values)."""
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise ValueError(f"{name} must be a single column, got {values.shape[1]}")
        values = values.iloc[:, 0]
    if isinstance(values, pd.Series) and not pd.api.types.is_numeric_dtype(values):
        raise TypeError(f"{name} must be numeric, got dtype {values.dtype}")
    arr = values.to_numpy(dtype=float, na_value=np.nan) if isinstance(values, pd.Series) \
        else np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = np.array(arr, dtype=float).reshape(-1) if arr.ndim == 2 and 1 in arr.shape \
        else np.array(arr, dtype=float)
    if arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"{name} must have one value per row of the data ({n}), got "
                         f"shape {np.shape(values)}")
    return arr


def rows_to_drop(weights, offset, missing):
    """The rows to drop for `weights` and `offset` (a mask, or None), after
    checking their values: negative or infinite weights and infinite offsets
    are errors naming the argument; NaN is an error unless missing='drop'
    (then the row is dropped); a zero weight drops its row (it contributes
    nothing to the likelihood)."""
    drop = None
    for name, arr in (("weights", weights), ("offset", offset)):
        if arr is None:
            continue
        if np.isinf(arr).any():
            raise ValueError(f"{name} has infinite values (rows "
                             f"{np.flatnonzero(np.isinf(arr))[:5].tolist()}...)")
        nan = np.isnan(arr)
        if nan.any():
            if missing != "drop":
                raise ValueError(f"missing values (NaN) in {name}; pass missing='drop' to "
                                 "drop those rows")
            drop = nan if drop is None else drop | nan
        if name == "weights":
            negative = arr < 0
            if negative.any():
                raise ValueError(
                    f"weights must be positive (or zero, which drops the row); rows "
                    f"{np.flatnonzero(negative)[:5].tolist()} have negative weights")
            zero = arr == 0
            if zero.any():
                drop = zero if drop is None else drop | zero
    return drop
