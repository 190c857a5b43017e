"""Hat values, Cook's distances, studentized and Pearson residuals, against lme4
(tests/data/lme4_influence.json, made by tests/data/lme4_influence_ref.R), and the
one-factor blockwise computation against the dense hat matrix A (A'A + P)^-1 A'."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmm
from lmm.influence import hat_values_dense

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "lme4_influence.json").read_text())
CASES = {
    "sleepstudy_slope": ("Reaction ~ Days + (Days | Subject)", "sleepstudy.csv"),
    "sleepstudy_diag": ("Reaction ~ Days + (Days || Subject)", "sleepstudy.csv"),
    "dietox_slope": ("Weight ~ Time + (1 + Time | Pig)", None),
    "penicillin_crossed": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin.csv"),
    "sleepstudy_weighted": ("Reaction ~ Days + (Days | Subject)", "sleepstudy.csv"),
}


@pytest.fixture(scope="module", params=list(CASES))
def fitted(request):
    formula, file = CASES[request.param]
    data = lmm.datasets.get_rdataset("dietox", "geepack").data if file is None else \
        pd.read_csv(DATA / file)
    if request.param.endswith("weighted"):      # (the R script's weights)
        return request.param, lmm.lmer(formula, data, weights=1 + data["Days"] % 3)
    return request.param, lmm.lmer(formula, data)


def _normwise(got, want, rtol):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert np.max(np.abs(got - want)) <= rtol * np.max(np.abs(want))


def test_matches_lme4(fitted):
    case, res = fitted
    ref = REF[case]
    assert res.llf == pytest.approx(ref["loglik"], abs=1e-6)
    np.testing.assert_allclose(res.hat_values(), ref["hat"], rtol=1e-6)
    _normwise(res.cooks_distance(), ref["cooks"], 1e-6)
    _normwise(res.resid_studentized(), ref["rstudent"], 1e-6)
    _normwise(res.resid_pearson(), ref["pearson"], 1e-6)
    _normwise(res.residuals(scaled=True), ref["scaled"], 1e-6)
    assert list(res.hat_values().index) == list(res.resid.index)


def test_blockwise_equals_dense_hat_matrix():
    rng = np.random.default_rng(2)
    g = np.repeat(np.arange(15), rng.integers(2, 7, 15))
    n = g.size
    x = np.column_stack([np.ones(n), rng.normal(size=n) + 1e3])
    z = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = x @ [1.0, 0.5] + np.einsum("ij,ij->i", z, rng.normal(size=(15, 2))[g]) + \
        rng.normal(size=n)
    res = lmm.MixedLM(y, x, g, exog_re=z).fit()
    m = res.model
    dense = hat_values_dense(x, [(z, m.group_codes, m.n_groups)], [res.cov_re.to_numpy()],
                             res.scale)
    np.testing.assert_allclose(res.hat_values(), dense, rtol=1e-9)
    # the trace of H: the effective number of parameters, between p and p + q G
    assert 2 < dense.sum() < 2 + 2 * 15


def test_residual_type_is_checked(fitted):
    _, res = fitted
    with pytest.raises(ValueError, match="type"):
        res.residuals(type="deviance2")
