"""pb_test: the parametric-bootstrap likelihood-ratio test, against pbkrtest's PBmodcomp.

References: tests/data/pbkrtest_pbmodcomp.json, made by
tests/data/pbkrtest_pbmodcomp_ref.R (2,000 samples; a fixed-effects term, dietox's
Evit, and a variance component, Penicillin's sample).  The observed statistic and its
chi-square p-value are deterministic (1e-6); the bootstrap p-value and the share of
positive reference statistics are Monte Carlo estimates from different streams: with
2,000 samples on each side a proportion near 0.2-0.4 has standard error at most 0.011,
a difference of two 0.016; the bound is 0.08, five of those.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmm

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "pbkrtest_pbmodcomp.json").read_text())


def _data(case):
    if case == "dietox_evit":
        return lmm.datasets.get_rdataset("dietox", "geepack").data
    return pd.read_csv(DATA / "penicillin.csv")


@pytest.fixture(scope="module", params=["dietox_evit", "penicillin_sample"])
def tested(request):
    ref = REF[request.param]
    d = _data(request.param)
    small, large = lmm.lmer(ref["small"], d), lmm.lmer(ref["large"], d)
    return ref, small, large, lmm.pb_test(small, large, nboot=ref["nsim"], seed=1, n_jobs=2)


def test_observed_statistic_is_pbkrtests(tested):
    ref, _, _, t = tested
    assert t.table.loc["LRT", "stat"] == pytest.approx(ref["stat"], rel=1e-6)
    assert t.table.loc["LRT", "df"] == ref["df"]
    if ref["p_chisq"] == 0:          # (R's 1 - pchisq underflows; lmm's tail does not)
        assert t.table.loc["LRT", "p_value"] < 1e-15
    else:
        assert t.table.loc["LRT", "p_value"] == pytest.approx(ref["p_chisq"], rel=1e-5)


def test_bootstrap_p_value_and_reference_agree_with_pbkrtest(tested):
    ref, _, _, t = tested
    assert len(t.reference) == ref["nsim"]
    assert abs(t.pvalue - ref["p_pb"]) < 0.08
    assert abs(t.n_positive / len(t.reference) - ref["npos"] / ref["nsim"]) < 0.08
    # pbkrtest's formula on the counts
    assert t.pvalue == (1 + t.n_extreme) / (1 + t.n_positive)


def test_reference_statistics_are_direct_refits():
    """Each reference statistic is 2 (llf_large - llf_small) of ML fits of the
    simulated response, fitted afresh (another path than the shared-design refits)."""
    d = _data("penicillin_sample")
    small = lmm.lmer("diameter ~ 1 + (1 | plate)", d)
    large = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", d)
    t = lmm.pb_test(small, large, nboot=4, seed=3)
    y = lmm.bootstrap.simulate(small.model.fit(reml=False), 4, 3)
    for r in range(4):
        dr = d.assign(diameter=y[:, r])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = lmm.lmer("diameter ~ 1 + (1 | plate)", dr, REML=False)
            b = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", dr, REML=False)
        assert t.reference[r] == pytest.approx(2 * (b.llf - a.llf), abs=1e-6)


def test_pb_test_checks_its_arguments():
    d = _data("dietox_evit")
    small = lmm.lmer("Weight ~ Time + (1 | Pig)", d)
    large = lmm.lmer("Weight ~ Time + Evit + (1 | Pig)", d)
    with pytest.raises(ValueError, match="nboot"):
        lmm.pb_test(small, large, nboot=0)
    other = lmm.lmer("Feed ~ Time + Evit + (1 | Pig)", d, missing="drop")
    with pytest.raises(ValueError):
        lmm.pb_test(small, other, nboot=5)
    a = lmm.pb_test(small, large, nboot=20, seed=7)
    b = lmm.pb_test(small, large, nboot=20, seed=7, n_jobs=2)
    np.testing.assert_allclose(a.reference, b.reference, rtol=1e-10)
