"""The parametric-bootstrap likelihood-ratio test of nested models (pbkrtest's
``PBmodcomp``).

Both models are fitted by maximum likelihood (REML fits are refitted, as pbkrtest
does); `nboot` responses are simulated from the small model's ML fit; both models
are refitted to each (one grouping factor: the compiled many-responses fitter on the
shared design; several: the blocked engine, on threads with `n_jobs`); the reference
distribution is the refits' likelihood-ratio statistics.  pbkrtest's p-value:
(1 + #{reference > observed}) / (1 + #{reference > 0}).
"""

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from scipy import special

from ._threads import quiet_warnings
from .bootstrap import positive_count, simulate
from .lrt import lrtest, refit_ml
from .many_responses import progress_bar


class PBTestResult:
    """A parametric-bootstrap likelihood-ratio test.

    Attributes
    ----------
    table : DataFrame
        Rows ``LRT`` (the chi-square test) and ``PBtest`` (the bootstrap one), columns
        stat, df, p_value (pbkrtest's ``PBmodcomp`` table).
    reference : ndarray
        The likelihood-ratio statistic of each simulated response.
    n_extreme : int
        Reference statistics above the observed one.
    n_positive : int
        Positive reference statistics (pbkrtest's npos; the p-value's denominator).
    """

    def __init__(self, stat, df, reference):
        self.reference = reference
        self.n_extreme = int(np.sum(reference > stat))
        self.n_positive = int(np.sum(reference > 0))
        p_chi = float(special.chdtrc(df, stat)) if stat > 0 else 1.0
        p_pb = (1 + self.n_extreme) / (1 + self.n_positive)
        self.table = pd.DataFrame(
            {"stat": [stat, stat], "df": [df, np.nan], "p_value": [p_chi, p_pb]},
            index=["LRT", "PBtest"])

    @property
    def pvalue(self):
        """The bootstrap p-value."""
        return float(self.table.loc["PBtest", "p_value"])

    def _repr_html_(self):
        caption = (f"Parametric-bootstrap likelihood-ratio test: {len(self.reference)} "
                   f"samples, {self.n_positive} positive, {self.n_extreme} above the "
                   "observed statistic")
        table = self.table.to_html(float_format=lambda v: f"{v:.4g}", na_rep="")
        return f"<p>{caption}</p>{table}"

    def __repr__(self):
        return (f"<PBTestResult: LRT {self.table.loc['LRT', 'stat']:.4g} on "
                f"{int(self.table.loc['LRT', 'df'])} df, bootstrap p = {self.pvalue:.4g} "
                f"({len(self.reference)} samples)>")


def _refit_loglik(res_ml, y, n_jobs, bar=None):
    """The ML log-likelihood of the model of `res_ml` refitted to each column of y
    (a progress `bar`, if given, advanced per refit)."""
    m = res_ml.model
    if not hasattr(m, "terms"):
        if res_ml.structure.blocks != m.covariance_structure().blocks:
            raise NotImplementedError(
                "pb_test of a fit with free= is not supported; write the uncorrelated "
                "effects in lme4's syntax, lmm.lmer('y ~ x + (x || g)', data)")
        table = m.fit_many(y, reml=False, n_jobs=n_jobs, progress=False).table
        if bar is not None:
            bar.update(y.shape[1])
        return table["llf"].to_numpy(dtype=float)

    def refit(r):
        llf = m.with_response(y[:, r]).fit(reml=False).llf   # (the design's products shared)
        if bar is not None:
            bar.update(1)       # (tqdm's update is thread-safe)
        return llf

    with quiet_warnings():        # (thread-safe: catch_warnings is not)
        if n_jobs == 1:
            return np.array([refit(r) for r in range(y.shape[1])])
        with ThreadPoolExecutor(max_workers=int(n_jobs)) as pool:
            return np.array(list(pool.map(refit, range(y.shape[1]))))


def pb_test(small, large, nboot=1000, seed=None, n_jobs=1, progress=None):
    """Parametric-bootstrap likelihood-ratio test of `small` within `large`.

    Parameters
    ----------
    small, large : fitted results (one or several grouping factors) of nested models
        on the same rows, in `lmm.lrtest`'s order (pbkrtest's ``PBmodcomp`` takes
        the large model first).
    nboot : int
        Simulated responses.
    seed : int, optional
        Reproducible whatever `n_jobs` is (the responses are drawn first).
    n_jobs : int
        Threads for the refits.
    progress : bool, optional
        A progress bar of the 2 x nboot refits (tqdm.auto: a widget in notebooks); by
        default on in interactive sessions when tqdm is installed.

    Returns
    -------
    PBTestResult

    Examples
    --------
    >>> import lmm
    >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
    >>> small = lmm.lmer("Weight ~ Time + (1 | Pig)", d)
    >>> large = lmm.lmer("Weight ~ Time + Evit + (1 | Pig)", d)
    >>> t = lmm.pb_test(small, large, nboot=50, seed=1)
    >>> list(t.table.index)
    ['LRT', 'PBtest']
    """
    nboot = positive_count(nboot, "nboot")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        observed = lrtest(small, large, refit=True)
    if small.model.nobs != large.model.nobs or not np.array_equal(
            np.asarray(small.model.endog), np.asarray(large.model.endog)):
        raise ValueError("the two fits must be of the same response on the same rows")
    small_ml = small if not small.reml else refit_ml(small)
    large_ml = large if not large.reml else refit_ml(large)
    y = simulate(small_ml, nboot, seed)
    bar = progress_bar(progress, 2 * nboot, unit="refits", desc="pb_test")
    try:
        stats = 2.0 * (_refit_loglik(large_ml, y, n_jobs, bar)
                       - _refit_loglik(small_ml, y, n_jobs, bar))
    finally:
        if bar is not None:
            bar.close()
    return PBTestResult(float(observed.statistic), int(observed.df), stats)
