"""lme4-style formulas carry R's fixed-effects names and coding (issue 22): treatment
contrasts on the sorted levels, ``(Intercept)``, ``EvitEvit100``, interactions part by
part, against R's model.matrix and lme4's fixef.  statsmodels-style formulas keep
patsy's names.

Reference: tests/data/r_model_matrix.json, made by tests/data/r_model_matrix_ref.R,
and tests/data/r_formula_forms.json (R's functions and ^ in formulas, stateful transforms
with rows dropped for a missing Feed), made by tests/data/r_formula_forms_ref.R (R 4.2.2,
lme4 1.1-31) on lmm's copy of dietox.
"""

import json
from pathlib import Path

import numpy as np
import pytest

import lmm
from lmm.formula.lme4 import r_column_name

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "r_model_matrix.json").read_text())
FORMS = json.loads((DATA / "r_formula_forms.json").read_text())


def _check_against_r(res, case, exact=True):
    names = list(res.fe_params.index)
    assert sorted(names) == sorted(case["columns"])
    # column by column (R orders factor and numeric terms differently), the same values
    x = np.asarray(res.model.exog)[:30]
    r = np.array(case["first_rows"], dtype=float)
    for j, name in enumerate(names):
        want = r[:, case["columns"].index(name)]
        if exact:
            np.testing.assert_array_equal(x[:, j], want, name)
        else:   # (a transform's own arithmetic: R's and numpy's round apart)
            np.testing.assert_allclose(x[:, j], want, rtol=1e-12, atol=1e-12, err_msg=name)
    assert res.llf == pytest.approx(case["loglik"], abs=1e-6)
    want = dict(zip(case["fixef_names"], case["fixef"]))
    np.testing.assert_allclose(res.fe_params.to_numpy(), [want[n] for n in names],
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("case", REF, ids=lambda c: c["formula"])
def test_names_and_columns_are_rs(case, dietox):
    _check_against_r(lmm.lmer(case["formula"], dietox), case)


@pytest.mark.parametrize("case", FORMS, ids=lambda c: c["formula"])
def test_r_functions_and_operators_as_written(case, dietox):
    # (Feed is missing in 72 rows: R's na.omit drops them after poly() and scale() have
    # seen every row, and so must lmm)
    res = lmm.lmer(case["formula"], dietox, missing="drop")
    assert res.nobs == case["nobs"]
    _check_against_r(res, case, exact=False)
    # the random effects' names are R's too (ranef()'s columns, group by group)
    ranef = res.ranef()
    ranef = ranef if isinstance(ranef, dict) else {res.model.group_name: ranef}
    for group, names in case["re_names"].items():
        assert list(ranef[group].columns) == list(np.atleast_1d(names)), group


def test_statsmodels_style_models_keep_patsys_names(dietox):
    res = lmm.mixedlm("Weight ~ Time + Evit", dietox, groups="Pig").fit()
    assert list(res.fe_params.index) == ["Intercept", "Evit[T.Evit100]", "Evit[T.Evit200]",
                                         "Time"]


def test_r_column_names():
    assert r_column_name("Intercept") == "(Intercept)"
    assert r_column_name("Sex[T.Female]") == "SexFemale"
    assert r_column_name("Evit[Evit000]") == "EvitEvit000"
    assert r_column_name("Time:C(g)[T.b]") == "Time:C(g)b"
    assert r_column_name("np.log(x)") == "np.log(x)"
    assert r_column_name("poly(x, 2)[0]") == "poly(x, 2)1"
    assert r_column_name("C(g)[T.3]") == "C(g)3"
    assert r_column_name("C(g)[3]") == "C(g)3"
