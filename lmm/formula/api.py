"""statsmodels-compatible formula namespace: ``import lmm.formula.api as smf``."""

from ..model import MixedLM

mixedlm = MixedLM.from_formula

__all__ = ["mixedlm"]
