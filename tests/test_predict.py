"""predict(newdata, re_form, allow_new_levels, se_fit), lme4's meanings.

Oracles: the fitted values (the model's own rows through the new-data path), the
fixed part plus the chosen terms' conditional modes computed here by hand, and the
closed form of the fixed part's standard error.
"""

import numpy as np
import pandas as pd
import pytest

import lmm

DATA = __import__("pathlib").Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def dietox():
    return lmm.datasets.get_rdataset("dietox", "geepack").data


@pytest.fixture(scope="module")
def two_terms(dietox):
    return lmm.lmer("Weight ~ Time + (1 | Pig) + (0 + Time | Pig)", dietox)


def test_new_data_with_the_fits_rows_gives_the_fitted_values(two_terms, dietox):
    new = dietox.iloc[[5, 0, 300]]
    pred = two_terms.predict(new)
    assert isinstance(pred, pd.Series) and list(pred.index) == [5, 0, 300]
    np.testing.assert_allclose(pred, two_terms.fittedvalues.loc[[5, 0, 300]], rtol=1e-12)
    np.testing.assert_allclose(two_terms.predict(), two_terms.fittedvalues, rtol=1e-12)


def test_re_form_chooses_terms(two_terms, dietox):
    new = dietox.iloc[:4]
    fe = two_terms.fe_params
    fixed = fe["(Intercept)"] + fe["Time"] * new["Time"].to_numpy()
    re = two_terms.random_effects
    b0 = np.array([re[p].iloc[0] for p in new["Pig"]])
    b1 = np.array([re[p].iloc[1] for p in new["Pig"]])
    np.testing.assert_allclose(two_terms.predict(new, re_form="~0"), fixed, rtol=1e-12)
    np.testing.assert_allclose(two_terms.predict(new, re_form=False), fixed, rtol=1e-12)
    np.testing.assert_allclose(two_terms.predict(new, re_form="~(1 | Pig)"), fixed + b0,
                               rtol=1e-12)
    np.testing.assert_allclose(two_terms.predict(new, re_form="~(0 + Time | Pig)"),
                               fixed + b1 * new["Time"].to_numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="not a term"):
        two_terms.predict(new, re_form="~(1 + Time | Pig)")
    with pytest.raises(ValueError, match="grouping factor"):
        two_terms.predict(new, re_form="~(1 | Litter)")


def test_new_levels(two_terms, dietox):
    new = dietox.iloc[:2].assign(Pig=[-1, dietox["Pig"].iloc[1]])
    with pytest.raises(ValueError, match="-1.*allow_new_levels"):
        two_terms.predict(new)
    pred = two_terms.predict(new, allow_new_levels=True)
    fixed = two_terms.predict(new, re_form="~0")
    assert pred.iloc[0] == pytest.approx(fixed.iloc[0], rel=1e-14)
    assert pred.iloc[1] == pytest.approx(two_terms.fittedvalues.iloc[1], rel=1e-12)
    # a missing group is a new level
    missing = dietox.iloc[:1].assign(Pig=np.nan)
    with pytest.raises(ValueError, match="allow_new_levels"):
        two_terms.predict(missing)


def test_se_fit_is_the_fixed_parts_standard_error(two_terms, dietox):
    new = dietox.iloc[:3]
    out = two_terms.predict(new, se_fit=True)
    assert list(out.columns) == ["fit", "se_fit"]
    x = np.column_stack([np.ones(3), new["Time"].to_numpy(float)])
    v = two_terms.cov_params().iloc[:2, :2].to_numpy()
    np.testing.assert_allclose(out["se_fit"], np.sqrt(np.diag(x @ v @ x.T)), rtol=1e-10)


def test_statsmodels_style_keeps_statsmodels_meaning(dietox):
    res = lmm.mixedlm("Weight ~ Time", dietox, groups="Pig", re_formula="~Time").fit()
    new = dietox.iloc[:3]
    fe = res.fe_params
    np.testing.assert_allclose(res.predict(new), fe.iloc[0] + fe.iloc[1] * new["Time"],
                               rtol=1e-12)
    assert isinstance(res.predict(), np.ndarray)
    np.testing.assert_allclose(res.predict(new, re_form=None), res.fittedvalues.iloc[:3],
                               rtol=1e-12)


def test_several_factors(dietox):
    pen = pd.read_csv(DATA / "penicillin.csv")
    res = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
    new = pen.iloc[[0, 7]]
    np.testing.assert_allclose(res.predict(new), res.fittedvalues.iloc[[0, 7]], rtol=1e-12)
    re = res.ranef()
    mu = res.fe_params.iloc[0]
    plate = np.array([re["plate"].loc[p].iloc[0] for p in new["plate"]])
    np.testing.assert_allclose(res.predict(new, re_form="~(1 | plate)"), mu + plate,
                               rtol=1e-12)
    np.testing.assert_allclose(res.predict(new, re_form="~0"), [mu, mu], rtol=1e-12)
    with pytest.raises(ValueError, match="allow_new_levels"):
        res.predict(new.assign(plate="zz"))
    with pytest.raises(TypeError, match="re_form"):
        res.predict(new, include_re=["plate"])


def test_offset_in_predictions():
    d = pd.read_csv(DATA / "sleepstudy.csv")
    off = 0.5 * d["Days"].to_numpy()
    res = lmm.lmer("Reaction ~ Days + (Days | Subject)", d, offset=off)
    np.testing.assert_allclose(res.predict(), res.fittedvalues, rtol=1e-12)
    new = d.iloc[:3]
    with pytest.raises(ValueError, match="offset"):
        res.predict(new)
    got = res.predict(new, offset=off[:3])
    np.testing.assert_allclose(got, res.fittedvalues.iloc[:3], rtol=1e-12)
