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

import numpy as np

from . import datasets
from ._arguments import NOT_YET, check_keywords
from .exceptions import ConvergenceWarning, IllConditionedWarning, SingularFitWarning
from .fitted import MixedModelResults
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


def lmer(formula, data, REML=True, missing="none", subset=None, eval_env=None,
         weights=None, offset=None, **fit_kwargs):
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
    subset : array_like, optional
        The rows of `data` to use (a boolean mask or index labels, as
        ``data.loc[subset]`` reads them), lme4's ``subset=``.
    eval_env : int, dict or patsy.EvalEnvironment, optional
        Where formula names that are not columns are looked up; without it,
        formulas see only the data's columns and lmm's formula functions.
    weights : str or array_like, optional
        Prior weights (lme4's ``weights=``): a column name of `data` or an
        array of its length; row i has residual variance sigma^2 / w_i.
        One grouping factor only (several: NotImplementedError).
    offset : str or array_like, optional
        lme4's ``offset=``: a known term added to the linear predictor.
    **fit_kwargs : passed to `MixedLM.fit` (one grouping factor) or
        `MultiTermModel.fit` (several); unknown keywords raise TypeError, and
        lme4's ``control`` and ``na_action``, not supported yet,
        NotImplementedError.

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
    if fit_kwargs:
        for name in list(fit_kwargs):
            if name in NOT_YET:
                check_keywords("lmer", {name: fit_kwargs[name]})
    if not isinstance(REML, bool | np.bool_):
        raise TypeError(f"REML must be True or False, got {REML!r}")
    extra = {} if eval_env is None else {"eval_env": eval_env}
    for name, values in (("weights", weights), ("offset", offset)):
        if values is not None:
            # (resolved on all the rows: `subset` applies to them as to the data)
            from .formula.design import row_values

            extra[name] = row_values(values, data, name)
            if subset is not None:
                extra[name] = extra[name].loc[subset]
            extra[name] = extra[name].to_numpy()
    if subset is not None:
        data = data.loc[subset]
    model = MixedLM.from_lmer(formula, data, missing=missing, **extra)
    return model.fit(reml=bool(REML), **fit_kwargs)


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
    "LRTestResult",
    "ManyResults",
    "mixedlm",
    "__version__",
]
