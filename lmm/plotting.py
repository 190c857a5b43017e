"""Figures of a fitted model (matplotlib, imported only when a plot is made).

Each function draws on the given Axes (or a new figure's) and returns the
Axes, so plots compose in notebooks and can be checked in tests.
"""

import numpy as np
from scipy import stats


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(7, 5))
    return ax


def plot_profile(results, re_ix, ax=None, level=0.95, **profile_kwargs):
    """The seed's profile-likelihood plot of a random-effect variance.

    Draws 2 x the profile log-likelihood (as the walkthrough plots it)
    against the variance, with a dashed line at the cut-off of the
    `level` profile confidence interval (2 x max - chi2_1 quantile).
    A grid point whose constrained maximum was not verified is NaN in
    `profile_re` (with a ConvergenceWarning) and is not drawn: the line
    breaks there rather than pass through a wrong value.

    Parameters
    ----------
    results : MixedLMResults
    re_ix : int, which random effect's variance
    ax : matplotlib Axes, optional
    level : float, confidence level of the cut-off line (None: no line)
    **profile_kwargs : passed to `results.profile_re` (num_low, dist_low, ...)

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import lmm
    >>> d = lmm.datasets.get_rdataset("Sitka", "MASS").data
    >>> res = lmm.mixedlm("size ~ Time", d, groups="tree", re_formula="~Time").fit()
    >>> v = res.cov_re.iloc[1, 1]
    >>> ax = lmm.plotting.plot_profile(res, 1, dist_low=0.5 * v, dist_high=0.8 * v)
    """
    prof = results.profile_re(re_ix, "re", **profile_kwargs)
    ax = _axes(ax)
    # NaN (unverified) points stay in the data: matplotlib draws no marker
    # there and breaks the line
    ax.plot(prof[:, 0], 2 * prof[:, 1], "-o", label="profile")
    if level is not None:
        cut = 2 * results.llf - stats.chi2.ppf(level, 1)
        ax.axhline(cut, linestyle="--", color="grey", label=f"{level:.0%} cut-off")
    if isinstance(results.cov_re, dict):    # several factors: re_ix is a varcorr() row
        row = results.varcorr().iloc[re_ix]
        name = f"{row['var1']} | {row['grp']}"
    else:
        name = results.cov_re.index[re_ix]
    ax.set_xlabel(f"Variance of random effect {name}")
    ax.set_ylabel("2 x profile log-likelihood")
    ax.legend()
    return ax


def plot_caterpillar(results, re_ix=0, ax=None, level=0.95, factor=None):
    """Caterpillar plot: each level's conditional mode with its interval.

    Levels are sorted by their mode; intervals are mode +- z sqrt(conditional
    variance), from ``results.ranef(condvar=True)``, so every fitted model
    (one or several grouping factors) draws alike.

    Parameters
    ----------
    results : MixedModelResults
    re_ix : int or str, which random effect of the factor (position or name)
    ax : matplotlib Axes, optional
    level : float, coverage of the intervals
    factor : str, optional, which grouping factor (default: the first)

    Returns
    -------
    matplotlib Axes
    """
    modes, condvar = results.ranef(condvar=True)
    if factor is None:
        factor = next(iter(modes))
    if factor not in modes:
        raise ValueError(f"factor must be one of {list(modes)}, got {factor!r}")
    table = modes[factor]
    if isinstance(re_ix, str):
        if re_ix not in table.columns:
            raise ValueError(f"{factor!r} has no random effect {re_ix!r}; it has "
                             f"{list(table.columns)}")
        re_ix = list(table.columns).index(re_ix)
    if not 0 <= int(re_ix) < table.shape[1]:
        raise ValueError(f"re_ix must be in 0..{table.shape[1] - 1}, got {re_ix}")
    ax = _axes(ax)
    values = table.iloc[:, re_ix].to_numpy()
    cond = condvar[factor][:, re_ix, re_ix]
    z = stats.norm.ppf(0.5 + level / 2)
    order = np.argsort(values)
    pos = np.arange(len(order))
    half = z * np.sqrt(np.clip(cond[order], 0, None))
    ax.errorbar(values[order], pos, xerr=half, fmt="o", markersize=3, capsize=0)
    ax.axvline(0.0, color="grey", linewidth=0.8)
    labels = [str(table.index[i]) for i in order]
    if len(labels) <= 80:
        ax.set_yticks(pos)
        ax.set_yticklabels(labels, fontsize=6)
    ax.set_xlabel(f"Random effect {table.columns[re_ix]} ({level:.0%} interval)")
    ax.set_ylabel(factor)
    return ax


def plot_resid_fitted(results, ax=None):
    """Residuals against fitted values (both including the random effects).

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    ax.scatter(results.fittedvalues, results.resid, s=8, alpha=0.6)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("Fitted values")
    ax.set_ylabel("Residuals")
    return ax
