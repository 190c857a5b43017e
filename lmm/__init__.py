"""lmm: linear mixed models with a Cython core.

statsmodels' MixedLM API (``lmm.mixedlm``, ``lmm.MixedLM``), lme4's answers
(the profiled REML/ML criterion, converged), and speed from kernels that work
on per-group cross-products.

Examples
--------
>>> import lmm
>>> data = lmm.datasets.get_rdataset("dietox", "geepack").data
>>> mdf = lmm.mixedlm("Weight ~ Time", data, groups=data["Pig"], re_formula="~Time").fit()
>>> print(mdf.summary())  # doctest: +SKIP
"""

from ._version import __version__

try:
    from . import _core  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on how lmm was installed
    raise ImportError(
        "lmm's compiled core (lmm._core) could not be imported. If you are running "
        "from the source tree, install the package instead (pip install .) and run "
        f"from another directory. Original error: {exc}"
    ) from exc

from . import datasets
from .exceptions import ConvergenceWarning, IllConditionedWarning, SingularFitWarning
from .fitted import MixedModelResults
from .front import fit_many, lmer
from .lrt import LRTestResult, lrtest
from .many_responses import ManyResults
from .model import MixedLM
from .params import MixedLMParams
from .pb_test import PBTestResult, pb_test
from .results import MixedLMResults

mixedlm = MixedLM.from_formula


def __getattr__(name):
    # lmm.plotting imports matplotlib lazily: only when asked for
    if name == "plotting":
        import importlib

        return importlib.import_module(".plotting", __name__)
    raise AttributeError(f"module 'lmm' has no attribute {name!r}")


__all__ = [
    "ConvergenceWarning",
    "IllConditionedWarning",
    "MixedLM",
    "MixedLMParams",
    "MixedLMResults",
    "MixedModelResults",
    "SingularFitWarning",
    "datasets",
    "fit_many",
    "lmer",
    "lrtest",
    "pb_test",
    "PBTestResult",
    "LRTestResult",
    "ManyResults",
    "mixedlm",
    "__version__",
]
