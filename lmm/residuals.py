"""Residuals of a fitted one-factor model with prior weights, lme4's definitions.

A weighted model's rows have residual variance scale / w_i, so the residuals
comparable across rows are the weighted ones, sqrt(w_i) (y_i - fitted_i):
lme4's ``residuals(m, type = "pearson")`` and R's ``weighted.residuals(m)``.
The fitted values include the model's offset (`MixedLMResults.fittedvalues`).
Unweighted models have w_i = 1.
"""

import numpy as np
import pandas as pd

_TYPES = ("response", "working", "pearson")


def residuals(results, type="response", scaled=False):
    """lme4's ``residuals(m, type, scaled)`` of a `MixedLMResults`.

    Parameters
    ----------
    results : MixedLMResults
    type : {'response', 'working', 'pearson'}
        'response' and 'working': y - fitted (offset included in fitted);
        'pearson': sqrt(w) (y - fitted), w the prior weights.
    scaled : bool
        Divide by the residual standard deviation sqrt(scale) (lme4's
        ``scaled = TRUE``).

    Returns
    -------
    Series on the model's row labels.

    Examples
    --------
    >>> import lmm
    >>> from lmm.residuals import residuals
    >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
    >>> res = lmm.lmer("Weight ~ Time + (1 | Pig)", d, weights=1 + (d["Time"] % 2))
    >>> r = residuals(res, "pearson")
    >>> len(r) == res.nobs
    True
    """
    if type not in _TYPES:
        raise ValueError(f"type must be one of {_TYPES}, got {type!r}")
    model = results.model
    source = getattr(model, "dask_source", None)
    if source is not None:
        # (a fit from a Dask frame: the residuals as its lazy Dask series)
        if type == "pearson" and source.weights is not None:
            from .dask_frames import requires_rows

            requires_rows(model, "Pearson residuals of a weighted fit")
        r = results.resid
        return r / np.sqrt(results.scale) if scaled else r
    r = np.asarray(model.endog, dtype=float) - np.asarray(results.fittedvalues, dtype=float)
    weights = getattr(model, "weights", None)
    if type == "pearson" and weights is not None:
        r = r * np.sqrt(weights)
    if scaled:
        r = r / np.sqrt(results.scale)
    return pd.Series(r, index=model.row_labels)


def weighted_residuals(results):
    """R's ``weighted.residuals(m)``: sqrt(w) (y - fitted) (rows of zero weight are
    not in the model: lmm drops them).

    Examples
    --------
    >>> import lmm
    >>> from lmm.residuals import weighted_residuals
    >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
    >>> res = lmm.lmer("Weight ~ Time + (1 | Pig)", d)
    >>> bool((weighted_residuals(res) == res.resid).all())
    True
    """
    return residuals(results, "pearson")
