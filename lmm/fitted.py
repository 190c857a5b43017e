"""MixedModelResults: what every fitted model offers, written once.

The two engines (one grouping factor: `lmm.results.MixedLMResults`; several:
`lmm.several_factors.MultiTermResults`) and both front ends (statsmodels-style
`mixedlm`/`MixedLM`, lme4-style `lmer`) return subclasses of this class, so
lme4's accessors (`fixef`, `ranef`, `vcov`, `sigma`, `deviance`, ...), the
optimization record, the notebook display, the plots and pickling behave the
same whatever built the fit.

An engine's results class provides a few primitives, and everything here is
built on them:

- ``model``, ``reml``, ``llf``, ``scale``, ``theta``, ``nobs``, ``n_params``
  and ``fe_params`` (Series);
- ``solution["vcov_fe"]``: the covariance matrix of the fixed effects (the
  ``solution`` dict holds the arrays of the optimum the results are built from);
- ``_ranef_parts()``: per grouping factor, its name, level labels, effect
  names, conditional modes (levels, q) and a function returning their
  conditional covariances (levels, q, q);
- ``optimum_check``: the `lmm.optimize.OptimumCheck` of the optimum (its
  theta on the optimizer's scale, gradient, Hessian, verdict and attempts).
"""

import warnings
from functools import cached_property

import numpy as np
import pandas as pd

from . import inference, influence
from .optimize import optimization_record


class RandomEffects(dict):
    """statsmodels' ``random_effects``: a dict of one pandas Series per group (the
    conditional modes), with a readable display (the first and last groups as a
    table) instead of a dict's repr of every Series.  ``to_frame()`` (or the results'
    ``ranef()``, which is faster) gives the DataFrame.

    Examples
    --------
    >>> import lmm
    >>> d = lmm.datasets.get_rdataset("sleepstudy", "lme4").data
    >>> re = lmm.lmer("Reaction ~ Days + (Days | Subject)", d).random_effects
    >>> isinstance(re, dict), len(re)
    (True, 18)
    """

    _SHOWN = 5      # groups shown at each end

    def to_frame(self):
        """One row per group, one column per random effect."""
        return pd.DataFrame(list(self.values()), index=pd.Index(list(self.keys())))

    def _preview(self):
        keys = list(self.keys())
        if len(keys) <= 2 * self._SHOWN:
            return self.to_frame(), False
        ends = keys[:self._SHOWN] + keys[-self._SHOWN:]
        return pd.DataFrame([self[k] for k in ends], index=pd.Index(ends)), True

    def _caption(self):
        first = next(iter(self.values()), None)
        effects = 0 if first is None else len(first)
        return (f"RandomEffects: {len(self)} groups x {effects} effects (a dict of "
                "Series; .to_frame() for the table)")

    def __repr__(self):
        frame, cut = self._preview()
        if not cut:
            return f"{self._caption()}\n{frame.to_string()}"
        lines = frame.to_string().splitlines()
        head = lines[:1 + self._SHOWN]
        return "\n".join([self._caption(), *head, "...", *lines[1 + self._SHOWN:]])

    def _repr_html_(self):
        import html

        frame, cut = self._preview()
        note = f" (the first and last {self._SHOWN})" if cut else ""
        return f"<p>{html.escape(self._caption())}{note}</p>{frame.to_html()}"


class MixedModelResults(inference.FixedEffectTests, influence.InfluenceMeasures):
    """Base class of every fitted linear mixed model's results.

    Examples
    --------
    >>> import lmm
    >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
    >>> res = lmm.lmer("Weight ~ Time + (1 + Time | Pig)", d)
    >>> isinstance(res, lmm.MixedModelResults)
    True
    >>> sorted(res.ranef())
    ['Pig']
    >>> res.ranef()["Pig"].shape
    (72, 2)
    """

    # -- lme4's accessors -------------------------------------------------------
    def fixef(self):
        """The fixed effects (lme4's ``fixef``): a Series named by the coefficients."""
        return self.fe_params.copy()

    def vcov(self):
        """Covariance matrix of the fixed-effects estimates (lme4's ``vcov``):
        scale (X'V^-1 X)^-1 at the estimated covariance, a DataFrame."""
        names = list(self.fe_params.index)
        return pd.DataFrame(np.array(self.solution["vcov_fe"], dtype=float), index=names,
                            columns=names)

    def ranef(self, condvar=False):
        """Conditional modes of the random effects (lme4's ``ranef``).

        Parameters
        ----------
        condvar : bool
            Also return their conditional covariances given the data (lme4's
            ``condVar``, the fixed effects held at their estimates).

        Returns
        -------
        modes : dict
            Grouping factor -> DataFrame, one row per level (index: the
            levels), one column per random effect (lme4's names, e.g.
            ``(Intercept)``).
        condvar : dict, only with ``condvar=True``
            Grouping factor -> (levels, q, q) array, rows in the order of
            ``modes``' index.
        """
        modes, covs = {}, {}
        for factor, labels, names, values, cond in self._ranef_parts():
            index = pd.Index(labels, name=factor)
            modes[factor] = pd.DataFrame(np.array(values, dtype=float), index=index,
                                         columns=list(names))
            if condvar:
                covs[factor] = np.array(cond(), dtype=float)
        return (modes, covs) if condvar else modes

    @property
    def sigma(self):
        """The residual standard deviation (lme4's ``sigma``)."""
        return float(np.sqrt(self.scale))

    @property
    def REMLcrit(self):
        """lme4's REML criterion (-2 REML log-likelihood); NaN for an ML fit."""
        return -2.0 * self.llf if self.reml else np.nan

    @property
    def deviance(self):
        """-2 log-likelihood of an ML fit (lme4's ``deviance``).

        For a REML fit it is, as in lme4, the REML criterion (``REMLcrit``) with
        a FutureWarning: lme4 deprecates ``deviance()`` of REML fits.
        """
        if self.reml:
            warnings.warn("deviance of a REML fit is the REML criterion (lme4 deprecates it): "
                          "use REMLcrit, or refit with reml=False for the deviance",
                          FutureWarning, stacklevel=2)
        return -2.0 * self.llf

    @property
    def aic(self):
        """Akaike's criterion; NaN for a REML fit (as statsmodels)."""
        return np.nan if self.reml else -2.0 * self.llf + 2.0 * self.n_params

    @property
    def bic(self):
        """Bayesian information criterion; NaN for a REML fit (as statsmodels)."""
        if self.reml:
            return np.nan
        return -2.0 * self.llf + np.log(self.nobs) * self.n_params

    @cached_property
    def optinfo(self):
        """The record of the optimization (lme4's ``optinfo``, MixedModels.jl's
        ``optsum``): a dict with the method, iterations, criterion evaluations,
        the final gradient, projected gradient and Hessian (in the optimizer's
        coordinates), the optimum check's verdict and messages, and every search
        run (``attempts``).  See `lmm.optimize.optimization_record`."""
        return optimization_record(self.optimum_check)

    # -- display ----------------------------------------------------------------
    def _repr_html_(self):
        return self.summary()._repr_html_()

    # -- plots (matplotlib) -------------------------------------------------------
    def plot_caterpillar(self, re_ix=0, ax=None, level=0.95, factor=None):
        """Caterpillar plot of one random effect's conditional modes; see
        `lmm.plotting.plot_caterpillar`."""
        from .plotting import plot_caterpillar

        return plot_caterpillar(self, re_ix=re_ix, ax=ax, level=level, factor=factor)

    def plot_ranef(self, level=0.95):
        """Caterpillar panels of every factor and effect (lme4's dotplot of ranef);
        see `lmm.plotting.plot_ranef`."""
        from .plotting import plot_ranef

        return plot_ranef(self, level=level)

    def plot_qq(self, which="random effects", factor=None, re_ix=0, ax=None):
        """Normal QQ plot of random effects or residuals; see `lmm.plotting.plot_qq`."""
        from .plotting import plot_qq

        return plot_qq(self, which=which, factor=factor, re_ix=re_ix, ax=ax)

    def plot_resid_fitted(self, ax=None):
        """Residuals against fitted values; see `lmm.plotting.plot_resid_fitted`."""
        from .plotting import plot_resid_fitted

        return plot_resid_fitted(self, ax=ax)

    def plot_profile(self, re_ix, ax=None, level=0.95, **profile_kwargs):
        """Profile-likelihood plot of a variance; see `lmm.plotting.plot_profile`."""
        from .plotting import plot_profile

        return plot_profile(self, re_ix, ax=ax, level=level, **profile_kwargs)

    # -- pickling -----------------------------------------------------------------
    def __getstate__(self):
        # Cached derived values are dropped (they may hold closures over the
        # compiled criterion, and are recomputed on use); the estimates and the
        # model (which rebuilds its compiled objects) travel.
        cls = type(self)
        return {k: v for k, v in self.__dict__.items()
                if not isinstance(getattr(cls, k, None), cached_property)}

    def __setstate__(self, state):
        self.__dict__.update(state)
