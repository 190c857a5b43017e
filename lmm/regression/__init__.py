"""statsmodels-compatible `sm.regression` namespace."""

from . import mixed_linear_model

__all__ = ["mixed_linear_model"]
