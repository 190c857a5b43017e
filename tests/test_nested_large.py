"""Nested grouping factors past the old dense limit (issue 21): y ~ x + (1 | school/class)
with 2,000 and 20,000 schools (10^5 and 10^6 rows) against lme4.

Reference: tests/data/lme4_nested_large.json, made by tests/data/lme4_nested_large.R
(lme4 1.1-31, the better of nloptwrap and bobyqa) on bench/large_factors.py's data, which the
test regenerates (its sum of y is checked first, so a change of the generator is told
apart from a change of the fit).  The brute-force checks of the packed storage that
these fits use are in tests/test_several_factors.py.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from bench_loader import load_bench

import lmm

REF = json.loads((Path(__file__).parent / "data" / "lme4_nested_large.json").read_text())


@pytest.mark.parametrize("schools", [2000, 20000])
def test_nested_model_matches_lme4(schools):
    ref = REF[f"schools_{schools}"]
    data = load_bench("large_factors").nested_schools(schools)
    assert len(data) == ref["nobs"]
    assert data["y"].sum() == pytest.approx(ref["sum_y"], rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # converged, not singular
        res = lmm.lmer("y ~ x + (1 | school/class)", data)
    assert res.model._criterion.packed
    assert res.model.m == schools               # the old dense limit was 6000
    # (lme4's best; the criterion of 10^6 rows rounds at about 1e-9 relative)
    assert res.llf == pytest.approx(ref["loglik"], abs=1e-6)
    np.testing.assert_allclose(res.fe_params.to_numpy(), ref["fixef"], rtol=1e-5)
    np.testing.assert_allclose(res.bse_fe.to_numpy(), ref["se"], rtol=1e-4)
    np.testing.assert_allclose(np.sqrt(res.scale), ref["sigma"], rtol=1e-5)
    # lme4's theta: class:school first (more levels), then school
    np.testing.assert_allclose(res.theta, ref["theta"], rtol=1e-4)
    # around the fit: the modes and their conditional variances, one per level
    cv = res.model.conditional_covariances(res.theta)
    assert [c.shape for c in cv] == [(5 * schools, 1, 1), (schools, 1, 1)]
    assert np.all(np.isfinite(np.concatenate([c.ravel() for c in cv])))
    assert all(len(r) == n for r, n in zip(res.ranef().values(), (5 * schools, schools)))
