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

__version__ = "0.1.0"

try:
    from . import _core  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on how lmm was installed
    raise ImportError(
        "lmm's compiled core (lmm._core) could not be imported. If you are running "
        "from the source tree, install the package instead (pip install .) and run "
        f"from another directory. Original error: {exc}"
    ) from exc

from . import datasets
from .exceptions import ConvergenceWarning, SingularFitWarning
from .model import MixedLM
from .params import MixedLMParams
from .results import MixedLMResults

mixedlm = MixedLM.from_formula

__all__ = [
    "ConvergenceWarning",
    "MixedLM",
    "MixedLMParams",
    "MixedLMResults",
    "SingularFitWarning",
    "datasets",
    "mixedlm",
    "__version__",
]
