"""R's spline bases in formulas (issue 22): ``ns`` (lmm's, R's construction) and ``bs``
(patsy's), against R's splines package.

Reference: tests/data/r_splines.json, made by tests/data/r_splines_ref.R (R 4.2.2,
splines, lme4 1.1-31) on lmm's copy of sleepstudy.
"""

import json
from pathlib import Path

import numpy as np
import patsy
import pytest

import lmm

REF = json.loads((Path(__file__).parent / "data" / "r_splines.json").read_text())
X = np.array(REF["x"], dtype=float)
NEW = np.array(REF["new_x"], dtype=float)


def _basis(formula, new):
    """The design of `formula` built on X (its knots memorized there), then on `new`."""
    data = {"x": X}
    design = patsy.dmatrix(formula, data, eval_env=lmm.formula.safe.environment({}))
    again = patsy.build_design_matrices([design.design_info], {"x": new})[0]
    return np.asarray(design), np.asarray(again)


@pytest.mark.parametrize("key, call", [
    ("ns_df3", "ns(x, df=3)"),
    ("ns_knots", "ns(x, knots=[3, 6])"),
    ("ns_df4_intercept", "ns(x, df=4, intercept=True)"),
])
def test_natural_splines_are_rs(key, call):
    values, new = _basis(f"0 + {call}", NEW)
    np.testing.assert_allclose(values, REF[key]["values"], atol=1e-13)
    # new data: the same knots; linear beyond the boundary knots, as R's predict
    np.testing.assert_allclose(new, REF[key]["new"], atol=1e-12)


@pytest.mark.parametrize("key, call", [
    ("bs_df4", "bs(x, df=4)"),
    ("bs_df5_degree2", "bs(x, df=5, degree=2)"),
])
def test_b_splines_are_rs_within_the_boundary(key, call):
    inside = (NEW >= 0) & (NEW <= 9)
    values, new = _basis(f"0 + {call}", NEW[inside])
    np.testing.assert_allclose(values, REF[key]["values"], atol=1e-13)
    np.testing.assert_allclose(new, np.array(REF[key]["new"])[inside], atol=1e-12)


def test_lmer_with_a_natural_spline_matches_lme4():
    ref = REF["lmer_ns"]
    d = lmm.datasets.get_rdataset("sleepstudy", "lme4").data
    res = lmm.lmer(ref["formula"][0], d)
    assert res.llf == pytest.approx(ref["loglik"][0], abs=1e-8)
    np.testing.assert_allclose(res.fe_params.to_numpy(), ref["fixef"], rtol=1e-8)
    # the knots are the fit's: predictions on the model's own rows are its fitted values
    np.testing.assert_allclose(res.predict(d), res.fittedvalues, rtol=1e-12)


def test_natural_spline_arguments_are_checked():
    with pytest.raises(Exception, match="df= or knots="):
        _basis("0 + ns(x)", NEW)
    with pytest.raises(Exception, match="numeric"):
        patsy.dmatrix("0 + ns(x, df=3)", {"x": np.array(["a", "b", "c"] * 3)},
                      eval_env=lmm.formula.safe.environment({}))
