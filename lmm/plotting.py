"""Figures of a fitted model (matplotlib, imported only when a plot is made).

Each function draws on the given Axes (or a new figure's) and returns the
Axes, so plots compose in notebooks and can be checked in tests.
"""

import numpy as np
from scipy import stats

# label font of the caterpillar plots (points), and the line height per label, as a
# multiple of it, below which labels would touch
LABEL_FONTSIZE = 7.0
LABEL_SPACING = 1.2
# the height of a caterpillar figure: room for every label up to this many levels,
# then a fixed height whose axis shows evenly spaced labels only
MAX_FIGURE_HEIGHT = 12.0


def _axes(ax, figsize=(7, 5)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def _figure_height(n_levels):
    """Inches for n_levels labels at LABEL_FONTSIZE (plus margins), within [3, 12]."""
    needed = n_levels * LABEL_SPACING * LABEL_FONTSIZE / 72.0 / 0.8 + 0.9
    return float(np.clip(needed, 3.0, MAX_FIGURE_HEIGHT))


def thinned_labels(n_levels, axis_height_points, fontsize=LABEL_FONTSIZE):
    """Positions (0..n_levels-1) to label on an axis of the given height: all of them
    when they fit at LABEL_SPACING x the font height, else as many as fit, evenly
    spaced (the first and the last among them)."""
    room = int(np.floor(axis_height_points / (LABEL_SPACING * fontsize)))
    if n_levels <= room:
        return np.arange(n_levels)
    if room < 2:
        return np.array([0]) if room == 1 else np.zeros(0, dtype=int)
    # (a spacing of at least n_levels / room positions keeps labels apart)
    step = (n_levels - 1) / (room - 1)
    return np.unique(np.round(np.arange(room) * step).astype(int))


def _axis_height_points(ax):
    fig = ax.figure
    return ax.get_position().height * fig.get_figheight() * 72.0


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
    ax = _axes(ax, figsize=(7, _figure_height(len(table))))
    _draw_caterpillar(ax, table, condvar[factor], re_ix, level)
    ax.set_ylabel(factor)
    return ax


def _draw_caterpillar(ax, table, condvar, re_ix, level):
    """One factor's effect `re_ix`: modes sorted, intervals, labels that fit."""
    values = table.iloc[:, re_ix].to_numpy()
    cond = condvar[:, re_ix, re_ix]
    z = stats.norm.ppf(0.5 + level / 2)
    order = np.argsort(values, kind="stable")
    pos = np.arange(len(order))
    half = z * np.sqrt(np.clip(cond[order], 0, None))
    ax.errorbar(values[order], pos, xerr=half, fmt="o", markersize=3, capsize=0)
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_ylim(-0.5, len(order) - 0.5)
    shown = thinned_labels(len(order), _axis_height_points(ax))
    ax.set_yticks(shown)
    ax.set_yticklabels([str(table.index[order[i]]) for i in shown], fontsize=LABEL_FONTSIZE)
    ax.set_xlabel(f"{table.columns[re_ix]} ({level:.0%} interval)")


def plot_ranef(results, level=0.95):
    """lme4's ``dotplot(ranef(fit, condVar = TRUE))``: a caterpillar panel for every
    grouping factor and effect, side by side in one figure sized to the levels.

    Returns
    -------
    list of matplotlib Axes, one per (factor, effect), in `ranef()`'s order

    Examples
    --------
    >>> import lmm
    >>> d = lmm.datasets.get_rdataset("Penicillin", "lme4").data
    >>> res = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", d)
    >>> [ax.get_ylabel() for ax in lmm.plotting.plot_ranef(res)]
    ['plate', 'sample']
    """
    import matplotlib.pyplot as plt

    modes, condvar = results.ranef(condvar=True)
    panels = [(factor, j) for factor, table in modes.items() for j in range(table.shape[1])]
    most = max(len(modes[f]) for f, _ in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels) + 0.8,
                                                      _figure_height(most)), squeeze=False)
    fig.subplots_adjust(wspace=0.6)
    out = []
    for ax, (factor, j) in zip(axes[0], panels):
        _draw_caterpillar(ax, modes[factor], condvar[factor], j, level)
        ax.set_ylabel(factor)
        out.append(ax)
    return out


def plot_qq(results, which="random effects", factor=None, re_ix=0, ax=None):
    """Normal quantile-quantile plot of the conditional modes of one random effect
    (``which="random effects"``; `factor` and `re_ix` choose it) or of the residuals
    (``which="residuals"``, scaled by sigma), with the line y = x scaled by the
    values' standard deviation (random effects) or y = x (residuals).

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import lmm
    >>> d = lmm.datasets.get_rdataset("sleepstudy", "lme4").data
    >>> res = lmm.lmer("Reaction ~ Days + (Days | Subject)", d)
    >>> ax = lmm.plotting.plot_qq(res, "residuals")
    """
    if which == "residuals":
        values = np.asarray(results.resid, dtype=float) / np.sqrt(results.scale)
        label, slope = "Scaled residuals", 1.0
    elif which == "random effects":
        modes = results.ranef()
        factor = next(iter(modes)) if factor is None else factor
        if factor not in modes:
            raise ValueError(f"factor must be one of {list(modes)}, got {factor!r}")
        table = modes[factor]
        values = table.iloc[:, int(re_ix)].to_numpy()
        label = f"{table.columns[int(re_ix)]} | {factor}"
        slope = float(np.std(values)) if len(values) > 1 else 1.0
    else:
        raise ValueError(f"which must be 'random effects' or 'residuals', got {which!r}")
    n = len(values)
    theoretical = stats.norm.ppf((np.arange(1, n + 1) - 0.5) / n)
    ax = _axes(ax, figsize=(5, 5))
    ax.plot(theoretical, np.sort(values), "o", markersize=3)
    ends = np.array([theoretical[0], theoretical[-1]])
    ax.plot(ends, slope * ends, "--", color="grey", linewidth=0.8)
    ax.set_xlabel("Normal quantiles")
    ax.set_ylabel(label)
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
