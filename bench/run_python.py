"""In-process timing of lmm and of statsmodels' MixedLM.

Both expose the same formula API (``mixedlm(formula, data, groups=...,
re_formula=...).fit(reml=True, free=...)``), so one runner serves both.  The
clock runs from the formula and the in-memory DataFrame to the results
object; imports, data loading and the construction of ``free`` are outside.
"""

import gc
import time
import warnings

import numpy as np

from .cases import PROFILE_POINTS
from .measurement import Measurement, Unavailable


def _warning_texts(caught):
    return sorted({f"{w.category.__name__}: {w.message}" for w in caught})


class PythonRunner:
    """Times ``mixedlm(...).fit()`` (and ``profile_re``) of one Python library.

    Parameters
    ----------
    name : str
        "lmm" or "statsmodels".
    mixedlm : callable
        The library's ``mixedlm`` (``MixedLM.from_formula``).
    params_cls : type
        The library's ``MixedLMParams`` (for uncorrelated random effects).
    version : str
    """

    def __init__(self, name, mixedlm, params_cls, version):
        self.name = name
        self.version = version
        self._mixedlm = mixedlm
        self._params_cls = params_cls
        self.available = True
        self.reason = ""

    def _fit_kwargs(self, case):
        kwargs = {"reml": True}
        if case.uncorrelated:
            kwargs["free"] = self._params_cls.from_components(np.ones(2), np.eye(2))
        return kwargs

    def _fit(self, case, data, kwargs):
        model = self._mixedlm(case.formula, data, groups=case.groups,
                              re_formula=case.re_formula)
        return model.fit(**kwargs)

    def prepare(self, case, data, warmup):
        """One untimed fit of `case` if `warmup` (the Python tools need no data transfer)."""
        if warmup:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._fit(case, data, self._fit_kwargs(case))

    def fit(self, case, data):
        """Time one fit; warnings are recorded, not shown."""
        kwargs = self._fit_kwargs(case)
        gc.collect()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            results = self._fit(case, data, kwargs)
            seconds = time.perf_counter() - t0
        return Measurement(seconds, float(results.llf), bool(results.converged),
                           messages=_warning_texts(caught))

    def profile(self, case, data):
        """Time ``profile_re`` of the random-slope variance at PROFILE_POINTS points.

        The grid runs from 0.5 to 2 times the fitted variance (statsmodels'
        ``num_low``/``num_high``/``dist_low``/``dist_high``); the fit before it
        is not timed.
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = self._fit(case, data, self._fit_kwargs(case))
        if not hasattr(results, "profile_re"):
            return Measurement(None, None, status="not implemented")
        var = float(np.asarray(results.cov_re)[1, 1])
        half = (PROFILE_POINTS - 1) // 2
        gc.collect()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            prof = results.profile_re(1, "re", num_low=half, dist_low=0.5 * var,
                                      num_high=half, dist_high=var)
            seconds = time.perf_counter() - t0
        prof = np.asarray(prof, dtype=float)
        return Measurement(seconds, float(np.max(prof[:, 1])), None,
                           messages=_warning_texts(caught),
                           extra={"profile": prof.tolist()})

    def close(self):
        """Nothing to release."""


def lmm_runner():
    """The runner of lmm (always available: the benchmark is about it)."""
    import lmm

    return PythonRunner("lmm", lmm.mixedlm, lmm.MixedLMParams, lmm.__version__)


def statsmodels_runner():
    """The runner of statsmodels, or an unavailable stub if it is not installed."""
    try:
        import statsmodels
        import statsmodels.formula.api as smf
        from statsmodels.regression.mixed_linear_model import MixedLMParams
    except ImportError as exc:
        return Unavailable("statsmodels", f"not installed ({exc})")
    return PythonRunner("statsmodels", smf.mixedlm, MixedLMParams, statsmodels.__version__)
