"""t and F tests with Satterthwaite's degrees of freedom, against lmerTest.

References: tests/data/lmertest.json, made by tests/data/lmertest_ref.R (lmerTest's
summary() and contest(); lme4's bobyqa optimizer). Each case first checks that lme4 and
lmm reach the same optimum (log-likelihood), then the table.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmm

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "lmertest.json").read_text())
for _ref in [REF[k] for k in REF if k not in ("versions", "anova")]:
    # (R's JSON writer unboxes length-one vectors)
    for _key in ("names", "estimate", "std_error", "df", "t", "p_value"):
        if _key in _ref and not isinstance(_ref[_key], list):
            _ref[_key] = [_ref[_key]]
CASES = [k for k in REF if k not in ("versions", "anova")]
ANOVA = REF["anova"]


FILES = {"sleepstudy": "sleepstudy.csv", "penicillin": "penicillin.csv",
         "pastes": "pastes.csv", "crossedsim": "multi_crossed_sim.csv",
         "nestedsim": "multi_nested_sim.csv"}


def _data(case):
    if case.split("_")[0] in FILES:
        return pd.read_csv(DATA / FILES[case.split("_")[0]])
    name = "dietox" if case.startswith("dietox") else "Sitka"
    pkg = "geepack" if name == "dietox" else "MASS"
    return lmm.datasets.get_rdataset(name, pkg).data


def _formula(case):
    return {
        "sleepstudy_slope": "Reaction ~ Days + (Days | Subject)",
        "sleepstudy_diag": "Reaction ~ Days + (Days || Subject)",
        "sleepstudy_ri": "Reaction ~ Days + (1 | Subject)",
        "dietox_slope": "Weight ~ Time + (1 + Time | Pig)",
        "dietox_evit": "Weight ~ Time + C(Evit) + (1 | Pig)",
        "sitka_slope": "size ~ Time + (1 + Time | tree)",
        "penicillin_crossed": "diameter ~ 1 + (1 | plate) + (1 | sample)",
        "pastes_nested": "strength ~ 1 + (1 | batch/cask)",
        "crossedsim_slope": "y ~ x + (1 + x | g1) + (1 | g2)",
        "nestedsim": "y ~ x + (1 | school/class)",
    }[case.rsplit("_", 1)[0]]


def _r_name(name):
    """lmm's name of a fixed effect in R's spelling: lme4-style fits carry R's names,
    C(Evit) is R's factor column Evit."""
    return name.replace("C(Evit)", "Evit")


def _in_r_order(tab, ref):
    """The rows of lmm's table in R's order (patsy puts factors before covariates)."""
    return tab.loc[[{_r_name(n): n for n in tab.index}[r] for r in ref["names"]]]


def _r_contrast(res, ref, L):
    """R's contrast matrix with its columns in lmm's order."""
    names = [_r_name(n) for n in res.model.exog_names]
    return np.asarray(L, dtype=float)[:, [ref["names"].index(n) for n in names]]


@pytest.fixture(scope="module", params=CASES)
def fitted(request):
    case = request.param
    ref = REF[case]
    res = lmm.lmer(_formula(case), _data(case), REML=ref["reml"])
    return case, ref, res


def test_same_optimum_as_lme4(fitted):
    case, ref, res = fitted
    assert res.llf == pytest.approx(ref["loglik"], abs=1e-5)


def test_coef_table_matches_lmertest(fitted):
    case, ref, res = fitted
    tab = _in_r_order(res.coef_table(), ref)
    assert list(tab.columns) == ["estimate", "std_error", "df", "t", "p_value", "ci_lower",
                                 "ci_upper"]
    assert len(tab) == len(ref["names"])
    np.testing.assert_allclose(tab["estimate"], ref["estimate"], rtol=1e-6)
    np.testing.assert_allclose(tab["std_error"], ref["std_error"], rtol=1e-5)
    np.testing.assert_allclose(tab["df"], ref["df"], rtol=2e-5)
    np.testing.assert_allclose(tab["t"], ref["t"], rtol=1e-5)
    np.testing.assert_allclose(tab["p_value"], ref["p_value"], rtol=1e-3, atol=1e-300)


def test_contrast_f_test_matches_lmertest(fitted):
    case, ref, res = fitted
    if "contrast" not in ref:
        pytest.skip("no contrast in this case")
    c = ref["contrast"]
    out = res.contrast(_r_contrast(res, ref, c["L"]))
    assert list(out.columns) == ["num_df", "den_df", "F", "p_value"]
    row = out.iloc[0]
    assert row["num_df"] == c["num_df"]
    assert row["den_df"] == pytest.approx(c["den_df"], rel=2e-5)
    assert row["F"] == pytest.approx(c["F"], rel=1e-5)
    assert row["p_value"] == pytest.approx(c["p_value"], rel=1e-3)


def test_residual_and_z_tests():
    d = pd.read_csv(DATA / "sleepstudy.csv")
    res = lmm.lmer("Reaction ~ Days + (Days | Subject)", d)
    z = res.coef_table(ddf=None)
    assert np.all(np.isinf(z["df"]))
    np.testing.assert_allclose(z["p_value"], res.pvalues.iloc[:2], rtol=1e-10)
    r = res.coef_table(ddf="residual")
    assert np.all(r["df"] == len(d) - 2)
    with pytest.raises(ValueError, match="ddf"):
        res.coef_table(ddf="bogus")
    with pytest.raises(ValueError, match="REML"):
        lmm.lmer("Reaction ~ Days + (Days | Subject)", d, REML=False).coef_table(
            ddf="kenward-roger")
    with pytest.raises(ValueError, match="alpha"):
        res.coef_table(alpha=1.5)
    with pytest.raises(ValueError, match="columns"):
        res.contrast([1.0, 0.0, 0.0])


@pytest.mark.parametrize("case", list(ANOVA))
def test_anova_matches_lmertest(case):
    ref = ANOVA[case]
    d = lmm.datasets.get_rdataset("dietox", "geepack").data
    formula = "Weight ~ Time + Evit + Cu + (1 | Pig)"
    if "crossed" in case:
        formula += " + (1 | Litter)"
    if "interaction" in case:
        formula = "Weight ~ Time * Evit + (1 | Pig)"
    res = lmm.lmer(formula, d, REML=ref["reml"])
    assert res.llf == pytest.approx(ref["loglik"], abs=1e-5)
    tab = res.anova(type=ref["type"])
    assert list(tab.columns) == ["num_df", "den_df", "F", "p_value"]
    # (patsy orders the factors first; R writes the interaction Time:Evit as lmm does)
    tab = tab.loc[ref["terms"]]
    np.testing.assert_array_equal(tab["num_df"], ref["num_df"])
    np.testing.assert_allclose(tab["den_df"], ref["den_df"], rtol=2e-5)
    np.testing.assert_allclose(tab["F"], ref["F"], rtol=1e-5)
    np.testing.assert_allclose(tab["p_value"], ref["p_value"], rtol=1e-3, atol=1e-300)


# (type II/III tables with interactions, and what anova refuses: tests/test_anova.py)


def test_kenward_roger_through_the_results_methods():
    """coef_table/contrast/anova with ddf='kenward-roger' are KenwardRoger's tests
    (checked against pbkrtest in tests/test_kenward_roger.py)."""
    from lmm.kenward_roger import KenwardRoger

    d = lmm.datasets.get_rdataset("dietox", "geepack").data
    res = lmm.lmer("Weight ~ Time + Evit + (1 | Pig)", d)
    kr = KenwardRoger(res)
    tab = res.coef_table(ddf="kenward-roger")
    for i, name in enumerate(tab.index):
        want = kr.test(np.eye(len(tab))[i])
        assert tab.loc[name, "std_error"] == pytest.approx(want["std_error"], rel=1e-12)
        assert tab.loc[name, "df"] == pytest.approx(want["df"], rel=1e-12)
    L = np.zeros((2, 4))
    L[0, 1] = L[1, 2] = 1.0
    out = res.contrast(L, ddf="kr").iloc[0]
    want = kr.test(L)
    assert out["F"] == pytest.approx(want["F"], rel=1e-12)
    assert res.anova(ddf="kenward-roger").loc["Evit", "F"] == pytest.approx(want["F"], rel=1e-12)


@pytest.mark.parametrize("groups,size", [(12, 5), (30, 3)])
def test_balanced_between_group_effects_have_the_exact_df(groups, size):
    """A random intercept with equal group sizes: the Satterthwaite df of effects that
    are constant within groups is the number of groups minus the between-group
    parameters (here 2: the intercept and xg), exactly (a closed form: the test reduces
    to the one on the group means)."""
    rng = np.random.default_rng(groups)
    g = np.repeat(np.arange(groups), size)
    xg = rng.normal(size=groups)
    y = 1 + 0.5 * xg[g] + 1.5 * rng.normal(size=groups)[g] + rng.normal(size=g.size)
    res = lmm.lmer("y ~ xg + (1 | g)", pd.DataFrame(dict(y=y, xg=xg[g], g=g)))
    assert not res.is_singular
    np.testing.assert_allclose(res.coef_table()["df"], groups - 2, rtol=1e-8)


def test_lme4_style_summary_shows_lmertests_table():
    """summary() of an lmer fit prints lmerTest's coefficient table: its df and p
    (lmerTest's summary for sleepstudy: df 17.000, p 3.26e-06 for Days)."""
    d = pd.read_csv(DATA / "sleepstudy.csv")
    res = lmm.lmer("Reaction ~ Days + (Days | Subject)", d)
    text = str(res.summary())
    assert "t-tests use Satterthwaite's method" in text
    ref = REF["sleepstudy_slope_reml"]
    days = next(ln for ln in text.splitlines() if ln.startswith("Days "))
    assert f"{ref['df'][1]:.3f}" in days and f"{ref['p_value'][1]:.3g}" in days
    assert days.rstrip().endswith("***")
    plain = str(res.summary(ddf=None))
    assert "Pr(>|t|)" not in plain and "Satterthwaite" not in plain
    kr = str(res.summary(ddf="kenward-roger"))
    assert "Kenward-Roger's method" in kr
    # statsmodels-style fits keep statsmodels' layout unless ddf is asked for
    sm = lmm.mixedlm("Reaction ~ Days", d, groups="Subject", re_formula="~Days").fit()
    assert "Mixed Linear Model Regression Results" in str(sm.summary())
    assert "Pr(>|t|)" in str(sm.summary(ddf="satterthwaite"))
    pen = pd.read_csv(DATA / "penicillin.csv")
    multi = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
    assert "Pr(>|t|)" in str(multi.summary())
