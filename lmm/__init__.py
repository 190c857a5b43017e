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
from .exceptions import ConvergenceWarning, SingularFitWarning
from .lrt import LRTestResult, lrtest
from .many import ManyResults, fit_many
from .model import MixedLM
from .params import MixedLMParams
from .results import MixedLMResults

mixedlm = MixedLM.from_formula


def __getattr__(name):
    # lmm.plotting imports matplotlib lazily: only when asked for
    if name == "plotting":
        import importlib

        return importlib.import_module(".plotting", __name__)
    raise AttributeError(f"module 'lmm' has no attribute {name!r}")


def lmer(formula, data, REML=True, missing="none", **fit_kwargs):
    """Fit a linear mixed model written in lme4's syntax.

    Parameters
    ----------
    formula : str
        e.g. ``"Weight ~ Time + (1 + Time | Pig)"``, ``"(1 | Pig) + (0 + Time | Pig)"``
        or ``"(Time || Pig)"`` for uncorrelated effects.
    data : DataFrame
    REML : bool
        REML (default, as lme4) or maximum likelihood.
    missing : {'none', 'drop'}
    **fit_kwargs : passed to `MixedLM.fit`.

    Returns
    -------
    MixedLMResults for one grouping factor (its ``model`` is the MixedLM built
    from the formula); MultiTermResults for several (crossed, nested).

    Examples
    --------
    >>> import lmm
    >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
    >>> res = lmm.lmer("Weight ~ Time + (1 + Time | Pig)", d)
    >>> round(res.llf, 4)
    -2217.0475
    """
    model = MixedLM.from_lmer(formula, data, missing=missing)
    return model.fit(reml=REML, **fit_kwargs)

__all__ = [
    "ConvergenceWarning",
    "MixedLM",
    "MixedLMParams",
    "MixedLMResults",
    "SingularFitWarning",
    "datasets",
    "fit_many",
    "lmer",
    "lrtest",
    "LRTestResult",
    "ManyResults",
    "mixedlm",
    "__version__",
]
