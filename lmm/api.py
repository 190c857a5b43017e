"""statsmodels-compatible namespace: ``import lmm.api as sm``.

Provides the names statsmodels code uses around MixedLM: ``sm.MixedLM``,
``sm.datasets.get_rdataset``, ``sm.regression.mixed_linear_model.MixedLMParams``.
"""

from . import datasets, regression
from .model import MixedLM
from .params import MixedLMParams

__all__ = ["MixedLM", "MixedLMParams", "datasets", "regression"]
