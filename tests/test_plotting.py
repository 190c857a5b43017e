"""Plots render (Agg) and show what they claim: line data, intervals, labels."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy import stats  # noqa: E402

import lmm  # noqa: E402


@pytest.fixture(scope="module")
def sitka_rs(sitka):
    return lmm.mixedlm("size ~ Time", sitka, groups="tree", re_formula="~Time").fit()


def test_profile_plot(sitka_rs, tmp_path):
    v = sitka_rs.cov_re.iloc[1, 1]
    ax = sitka_rs.plot_profile(1, dist_low=0.5 * v, dist_high=0.8 * v)
    prof = sitka_rs.profile_re(1, "re", dist_low=0.5 * v, dist_high=0.8 * v)
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), prof[:, 0])
    np.testing.assert_allclose(line.get_ydata(), 2 * prof[:, 1])
    cut = ax.get_lines()[1].get_ydata()[0]
    assert cut == pytest.approx(2 * sitka_rs.llf - stats.chi2.ppf(0.95, 1))
    assert "Variance" in ax.get_xlabel() and "profile" in ax.get_ylabel()
    ax.figure.savefig(tmp_path / "profile.png")
    assert (tmp_path / "profile.png").stat().st_size > 1000
    plt.close(ax.figure)


def test_caterpillar_plot(sitka_rs, tmp_path):
    ax = sitka_rs.plot_caterpillar(0)
    modes = sitka_rs.random_effects_array[:, 0]
    container = ax.containers[0]
    xs = container.lines[0].get_xdata()
    np.testing.assert_allclose(xs, np.sort(modes))
    assert len(ax.get_yticklabels()) == sitka_rs.n_groups
    ax.figure.savefig(tmp_path / "cat.png")
    plt.close(ax.figure)


def test_resid_fitted_plot(sitka_rs, tmp_path):
    fig, ax = plt.subplots()
    out = sitka_rs.plot_resid_fitted(ax=ax)
    assert out is ax
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(offsets[:, 0], sitka_rs.fittedvalues)
    np.testing.assert_allclose(offsets[:, 1], sitka_rs.resid)
    assert ax.get_xlabel() == "Fitted values" and ax.get_ylabel() == "Residuals"
    fig.savefig(tmp_path / "resid.png")
    plt.close(fig)


def _groups_fit(n_groups, seed=0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), 4)
    y = rng.standard_normal(n_groups)[g] + rng.standard_normal(len(g))
    return lmm.lmer("y ~ 1 + (1 | g)", pd.DataFrame({"y": y, "g": [f"level{i}" for i in g]}))


@pytest.mark.parametrize("n_levels", [10, 72, 1000])
def test_caterpillar_labels_fit_at_any_number_of_levels(n_levels, dietox):
    """Every level labelled at 10 and 72 levels; at 1,000 at least
    floor(axis height / (1.2 font heights)) evenly spaced labels; none overlapping, all
    inside the axes' height (issue 22)."""
    res = lmm.lmer("Weight ~ Time + (1 | Pig)", dietox) if n_levels == 72 else \
        _groups_fit(n_levels)
    ax = res.plot_caterpillar()
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.get_yticklabels() if t.get_text()]
    boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.y0)
    frame = ax.get_window_extent(renderer)
    assert all(frame.y0 - 1 <= (b.y0 + b.y1) / 2 <= frame.y1 + 1 for b in boxes)
    assert all(lower.y1 <= upper.y0 + 1e-6 for lower, upper in zip(boxes, boxes[1:]))
    fontsize = labels[0].get_fontsize()
    if n_levels <= 72:
        assert len(labels) == n_levels
        # sorted by effect, each label its level's
        modes = res.ranef()[next(iter(res.ranef()))].iloc[:, 0]
        assert [t.get_text() for t in labels] == [str(i) for i in modes.sort_values(
            kind="stable").index]
    else:
        axis_points = frame.height * 72.0 / fig.dpi
        assert len(labels) >= np.floor(axis_points / (1.2 * fontsize))
        ticks = ax.get_yticks()
        gaps = np.diff(ticks)
        assert gaps.max() - gaps.min() <= 1        # evenly spaced
    plt.close(fig)


def test_ranef_panels_and_qq_plots():
    from pathlib import Path

    import pandas as pd

    d = pd.read_csv(Path(__file__).parent / "data" / "multi_nested_sim.csv")
    res = lmm.lmer("y ~ x + (1 + x | school) + (1 | school:class)", d)
    axes = res.plot_ranef()
    # one panel per factor and effect, in ranef()'s order
    modes = res.ranef()
    want = [(f, c) for f, t in modes.items() for c in t.columns]
    assert len(axes) == len(want)
    for ax, (factor, column) in zip(axes, want):
        assert ax.get_ylabel() == factor and ax.get_xlabel().startswith(column)
        xs = ax.containers[0].lines[0].get_xdata()
        np.testing.assert_allclose(xs, np.sort(modes[factor][column].to_numpy()))
    plt.close(axes[0].figure)
    # QQ: the sorted values against the normal quantiles (i - 0.5) / n
    ax = res.plot_qq(factor="school", re_ix=1)
    values = np.sort(modes["school"]["x"].to_numpy())
    n = len(values)
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), values)
    np.testing.assert_allclose(line.get_xdata(), stats.norm.ppf((np.arange(1, n + 1) - 0.5) / n))
    plt.close(ax.figure)
    ax = res.plot_qq("residuals")
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(),
                               np.sort(res.resid.to_numpy() / np.sqrt(res.scale)))
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="which"):
        res.plot_qq("fitted")
