"""Data frames of any library, converted once at the boundary to pandas.

lmm's formula layer reads pandas DataFrames.  `to_pandas` turns what users pass
(polars, pyarrow tables, and anything narwhals reads) into one, column by column
through numpy, with the column names kept, so that ``lmm.lmer(formula,
polars_frame)`` fits the same model as with the pandas frame.  narwhals (the
``dataframes`` extra) is used when installed; without it, frames with a
``to_pandas`` method or the dataframe interchange protocol are converted by those.
"""

import numpy as np
import pandas as pd

__all__ = ["to_pandas"]


def _columns_via_narwhals(data):
    try:
        import narwhals as nw
    except ImportError:
        return None
    try:
        frame = nw.from_native(data, eager_only=True)
    except TypeError:
        return None
    return {name: np.asarray(frame[name].to_numpy()) for name in frame.columns}


def to_pandas(data):
    """`data` as a pandas DataFrame (a polars Series as a pandas Series; pandas objects,
    arrays and None pass through, and lazy frames such as Dask's are left to their own
    entry points).

    Examples
    --------
    >>> import lmm.dataframes as df
    >>> import pandas as pd
    >>> df.to_pandas(pd.DataFrame({"y": [1.0]})).shape
    (1, 1)
    """
    if data is None or isinstance(data, pd.DataFrame | pd.Series | dict | np.ndarray):
        return data
    module = type(data).__module__.split(".")[0]
    if module == "polars" and type(data).__name__ == "Series":
        return pd.Series(data.to_numpy(), name=data.name)
    if module in ("polars", "pyarrow", "modin", "cudf"):
        columns = _columns_via_narwhals(data)
        if columns is not None:
            return pd.DataFrame(columns)
    if module == "polars":
        # (no narwhals: column by column, which needs no pyarrow)
        return pd.DataFrame({name: data[name].to_numpy() for name in data.columns})
    if hasattr(data, "to_pandas"):
        return data.to_pandas()
    if hasattr(data, "__dataframe__"):
        return pd.api.interchange.from_dataframe(data)
    return data
