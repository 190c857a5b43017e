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
    name = results.cov_re.index[re_ix]
    ax.set_xlabel(f"Variance of random effect {name}")
    ax.set_ylabel("2 x profile log-likelihood")
    ax.legend()
    return ax


def plot_caterpillar(results, re_ix=0, ax=None, level=0.95):
    """Caterpillar plot: each group's conditional mode with its interval.

    Groups are sorted by their mode; intervals are mode +- z sqrt(conditional
    variance).

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    modes = results.random_effects_array[:, re_ix]
    cond = results._modes[1][:, re_ix, re_ix]
    z = stats.norm.ppf(0.5 + level / 2)
    order = np.argsort(modes)
    pos = np.arange(len(order))
    half = z * np.sqrt(cond[order])
    ax.errorbar(modes[order], pos, xerr=half, fmt="o", markersize=3, capsize=0)
    ax.axvline(0.0, color="grey", linewidth=0.8)
    labels = [str(results.model.group_labels[i]) for i in order]
    if len(labels) <= 80:
        ax.set_yticks(pos)
        ax.set_yticklabels(labels, fontsize=6)
    ax.set_xlabel(f"Random effect {results.cov_re.index[re_ix]} ({level:.0%} interval)")
    ax.set_ylabel(results.model.group_name)
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
