"""statsmodels' `regression.mixed_linear_model` names, re-exported."""

from ..exceptions import ConvergenceWarning, SingularFitWarning
from ..model import MixedLM
from ..params import MixedLMParams
from ..results import MixedLMResults

__all__ = ["MixedLM", "MixedLMParams", "MixedLMResults", "ConvergenceWarning",
           "SingularFitWarning"]
