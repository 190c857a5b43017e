"""Type II and III analysis-of-variance tables of models with interactions, against
lmerTest; and the invariances the type III table must have.

References: tests/data/lmertest_anova.json, made by tests/data/lmertest_anova_ref.R
(lmerTest's anova(), Satterthwaite's and Kenward-Roger's degrees of freedom).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import lmm
from lmm import anova_contrasts

REF = json.loads((Path(__file__).parent / "data" / "lmertest_anova.json").read_text())
CASES = [k for k in REF if k != "versions"]


@pytest.fixture(scope="module")
def dietox():
    return lmm.datasets.get_rdataset("dietox", "geepack").data


def _fit(formula, data, reml):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmm.SingularFitWarning)
        return lmm.lmer(formula, data, REML=reml)


@pytest.mark.parametrize("case", CASES)
def test_anova_matches_lmertest(case, dietox):
    ref = REF[case]
    formula = ref["formula"]
    if case.endswith("_sum"):
        # R ran with options(contrasts = contr.sum): patsy's Sum is R's contr.sum (the
        # REML likelihood depends on the coding, the table must not)
        formula = formula.replace("Evit", "C(Evit, Sum)")
    res = _fit(formula, dietox, ref["reml"])
    assert res.llf == pytest.approx(ref["loglik"], abs=1e-5)
    ddf = "kenward-roger" if ref["ddf"] == "Kenward-Roger" else "satterthwaite"
    tab = res.anova(type=ref["type"], ddf=ddf)
    tab.index = [n.replace("C(Evit, Sum)", "Evit") for n in tab.index]
    assert sorted(tab.index) == sorted(ref["terms"])
    tab = tab.loc[ref["terms"]]
    np.testing.assert_array_equal(tab["num_df"], ref["num_df"])
    np.testing.assert_allclose(tab["den_df"], ref["den_df"], rtol=2e-5)
    np.testing.assert_allclose(tab["F"], ref["F"], rtol=1e-5)
    np.testing.assert_allclose(tab["p_value"], ref["p_value"], rtol=1e-3, atol=1e-300)


def test_type3_table_does_not_depend_on_the_coding(dietox):
    """SAS's type III hypotheses are about the model, not its parametrization: sum,
    Helmert and treatment coding give one table (lmerTest maps its contrasts the same
    way; R's own check is the case interaction_reml_3_sum)."""
    base = _fit("Weight ~ Time * Evit * Cu + (1 | Pig)", dietox, True).anova()
    other = _fit("Weight ~ Time * C(Evit, Sum) * C(Cu, Helmert) + (1 | Pig)", dietox,
                 True).anova()
    other.index = [n.replace("C(Evit, Sum)", "Evit").replace("C(Cu, Helmert)", "Cu")
                   for n in other.index]
    other = other.loc[base.index]
    np.testing.assert_array_equal(other["num_df"], base["num_df"])
    np.testing.assert_allclose(other[["den_df", "F"]], base[["den_df", "F"]], rtol=1e-6)


def test_type3_contrasts_are_sas_type3_hypotheses(dietox):
    """A closed form: in a two-way layout A * B with every cell, the type III test of A
    is that the cell means averaged over B's levels are equal (unweighted marginal
    means), whatever the cell counts; the rows lmm builds span exactly that."""
    d = dietox.iloc[::3]                       # unbalanced cells
    res = _fit("Weight ~ Evit * Cu + (1 | Pig)", d, True)
    L = dict(anova_contrasts.type3_contrasts(
        res.model.design_info, anova_contrasts.model_terms(res.model.design_info),
        len(res.fe_params)))["Evit"]
    # the cell-mean of (Evit level a, Cu level b) as a row over the coefficients
    names = list(res.model.exog_names)

    def cell(a, b):
        row = np.zeros(len(names))
        row[names.index("(Intercept)")] = 1       # (R's names: lme4-style formula)
        if a:
            row[names.index(f"Evit{['Evit000', 'Evit100', 'Evit200'][a]}")] = 1
        if b:
            row[names.index(f"Cu{['Cu000', 'Cu035', 'Cu175'][b]}")] = 1
        if a and b:
            row[names.index(f"Evit{['Evit000', 'Evit100', 'Evit200'][a]}:"
                            f"Cu{['Cu000', 'Cu035', 'Cu175'][b]}")] = 1
        return row

    marginal = [np.mean([cell(a, b) for b in range(3)], axis=0) for a in range(3)]
    want = np.array([marginal[1] - marginal[0], marginal[2] - marginal[0]])
    # same row space: each set of rows is a combination of the other
    both = np.vstack([L, want])
    assert np.linalg.matrix_rank(L) == 2
    assert np.linalg.matrix_rank(both, tol=1e-8) == 2


def test_containment_follows_r_and_sas():
    d = lmm.datasets.get_rdataset("dietox", "geepack").data
    res = _fit("Weight ~ Time * Evit + Evit * Cu + (1 | Pig)", d, True)
    got = anova_contrasts.containment(anova_contrasts.model_terms(res.model.design_info))
    assert got == {"Evit": ["Evit:Cu"], "Cu": ["Evit:Cu"], "Evit:Cu": [],
                   "Time": ["Time:Evit"], "Time:Evit": []}


def test_anova_refuses_what_it_does_not_compute(dietox):
    res = _fit("Weight ~ Time * Evit + (1 | Pig)", dietox, True)
    with pytest.raises(ValueError, match="type"):
        res.anova(type=4)
    n = len(dietox)
    x = np.column_stack([np.ones(n), dietox["Time"].to_numpy(float)])
    arr = lmm.MixedLM(dietox["Weight"].to_numpy(), x, dietox["Pig"].to_numpy()).fit()
    with pytest.raises(ValueError, match="formula"):
        arr.anova()
