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
