"""statsmodels API fidelity: names, layout, shapes and meanings of the results."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmm
import lmm.api as sm
import lmm.formula.api as smf

with open(Path(__file__).parent / "data" / "statsmodels_summaries.json") as _fh:
    SM_SUMMARIES = json.load(_fh)["summaries"]


@pytest.fixture(scope="module")
def rs_fit(dietox):
    return smf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"], re_formula="~Time").fit()


def _differing_lines(a, b):
    return [(x, y) for x, y in zip(a.splitlines(), b.splitlines()) if x != y]


def test_summary_layout_matches_statsmodels(dietox):
    """Same text as statsmodels' summary but the random-effect standard errors."""
    res = smf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"]).fit()
    text = str(res.summary())
    expected = SM_SUMMARIES["dietox_ri_reml"]
    assert len(text.splitlines()) == len(expected.splitlines())
    diff = _differing_lines(text, expected)
    # only the Group Var row differs: statsmodels' bse_re is mis-scaled (2.149)
    assert [d[0].split()[:2] for d in diff] == [["Group", "Var"]]
    assert "6.939" in diff[0][0]


def test_summary_layout_random_slope(rs_fit):
    text = str(rs_fit.summary())
    expected = SM_SUMMARIES["dietox_rs_reml"]
    lines, exp_lines = text.splitlines(), expected.splitlines()
    assert [len(x) for x in lines] == [len(x) for x in exp_lines]
    assert lines[:3] == exp_lines[:3]
    for name in ("Group Var", "Group x Time Cov", "Time Var"):
        assert any(line.startswith(name) for line in lines)


def test_result_names_and_types(rs_fit):
    res = rs_fit
    assert list(res.fe_params.index) == ["Intercept", "Time"]
    assert isinstance(res.cov_re, pd.DataFrame)
    assert list(res.cov_re.index) == ["Group", "Time"] == list(res.cov_re.columns)
    assert res.cov_re.iloc[1, 1] == pytest.approx(0.4161, abs=1e-3)
    assert list(res.params.index) == ["Intercept", "Time", "Group Var", "Group x Time Cov",
                                      "Time Var"]
    # params holds cov_re / scale, as in statsmodels
    assert res.params["Group Var"] == pytest.approx(res.cov_re.iloc[0, 0] / res.scale)
    assert list(res.bse.index) == list(res.params.index)
    assert list(res.bse_re.index) == ["Group Var", "Group x Time Cov", "Time Var"]
    assert res.cov_params().shape == (5, 5)
    assert res.conf_int().shape == (5, 2)
    assert np.all(res.conf_int()[0] < res.params) and np.all(res.params < res.conf_int()[1])
    assert res.tvalues["Time"] == pytest.approx(res.params["Time"] / res.bse["Time"])
    assert 0 <= res.pvalues["Group x Time Cov"] <= 1
    assert res.method == "REML" and res.converged and res.nobs == 861
    assert np.isnan(res.aic) and np.isnan(res.bic)  # REML, as statsmodels


def test_random_effects_and_fitted_values(rs_fit, dietox):
    res = rs_fit
    assert len(res.random_effects) == 72
    b = res.random_effects[4601]
    assert list(b.index) == ["Group", "Time"]
    c = res.random_effects_cov[4601]
    assert c.shape == (2, 2) and np.all(np.linalg.eigvalsh(c.to_numpy()) > 0)
    # fittedvalues include the random effects, predict() does not (statsmodels)
    row = dietox.index[0]
    pig, time = dietox.loc[row, "Pig"], dietox.loc[row, "Time"]
    fixed = res.fe_params["Intercept"] + res.fe_params["Time"] * time
    assert res.predict()[0] == pytest.approx(fixed)
    assert res.fittedvalues[row] == pytest.approx(fixed + b["Group"] + b["Time"] * time)
    np.testing.assert_allclose(res.resid + res.fittedvalues, dietox["Weight"])
    new = pd.DataFrame({"Time": [1.0, 5.0]})
    np.testing.assert_allclose(res.predict(new),
                               res.fe_params["Intercept"] + res.fe_params["Time"] * new["Time"])
    assert pig == 4601


def test_groups_given_as_column_name(dietox):
    res = smf.mixedlm("Weight ~ Time", dietox, groups="Pig").fit()
    assert list(res.cov_re.index) == ["Pig"]
    assert list(res.params.index)[-1] == "Pig Var"


def test_array_interface_names(sitka):
    y = sitka["size"].to_numpy()
    x = np.column_stack([np.ones(len(y)), sitka["Time"]])
    res = sm.MixedLM(y, x, sitka["tree"].to_numpy()).fit()
    assert list(res.fe_params.index) == ["const", "x1"]
    assert list(res.cov_re.index) == ["Group"]
    assert res.model.endog_names == "y"


def test_ml_information_criteria_count_free_parameters(dietox):
    md = smf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"], re_formula="~Time")
    full = md.fit(reml=False)
    diag = md.fit(reml=False, free=sm.regression.mixed_linear_model.MixedLMParams
                  .from_components(np.ones(2), np.eye(2)))
    assert full.aic == pytest.approx(-2 * full.llf + 2 * 6)
    assert diag.aic == pytest.approx(-2 * diag.llf + 2 * 5)
    assert diag.llf < full.llf
    assert diag.cov_re.iloc[0, 1] == 0.0


def test_start_params_forms_reach_the_same_optimum(dietox):
    md = smf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"], re_formula="~Time")
    ref = md.fit()
    start = lmm.MixedLMParams.from_components(np.zeros(2), np.array([[3.0, 0.1], [0.1, 0.1]]))
    a = md.fit(start_params=start)
    b = md.fit(start_params=start.get_packed(use_sqrt=True, has_fe=False))
    c = md.fit(start_params=ref.params_object.get_packed(use_sqrt=True, has_fe=True))
    for r in (a, b, c):
        assert r.llf == pytest.approx(ref.llf, abs=1e-8)


@pytest.mark.parametrize("method", ["lbfgs", "bfgs", "nm", "powell", "cg", "newton",
                                    ["lbfgs", "cg"]])
def test_methods_all_reach_the_optimum(dietox, method):
    md = smf.mixedlm("Weight ~ Time", dietox, groups=dietox["Pig"], re_formula="~Time")
    res = md.fit(method=method)
    assert res.llf == pytest.approx(-2217.04745914549, abs=1e-6)


def test_datasets_offline():
    d = sm.datasets.get_rdataset("dietox", "geepack")
    assert d.data.shape == (861, 8)
    assert {"Weight", "Time", "Pig"} <= set(d.data.columns)
    s = lmm.datasets.get_rdataset("Sitka", "MASS").data
    assert s.shape == (395, 4)
    with pytest.raises(ValueError, match="not shipped"):
        lmm.datasets.get_rdataset("InstEval", "lme4")


def test_version_entry_point(tmp_path):
    # run outside the checkout so the installed package is imported
    out = subprocess.run([sys.executable, "-m", "lmm", "--version"], capture_output=True,
                         text=True, check=True, cwd=tmp_path).stdout
    assert out.startswith(f"lmm {lmm.__version__}")
    assert "compiled core loaded" in out


def test_html_summaries_are_tables(rs_fit):
    html = rs_fit._repr_html_()
    assert html.count("<table") == 2
    assert "<td>Group x Time Cov</td>" in html and "<th>Coef.</th>" in html
    assert "-2217.0475" in html
    lme4_html = rs_fit.summary(style="lme4")._repr_html_()
    assert "<table" in lme4_html and "Random effects" in lme4_html
