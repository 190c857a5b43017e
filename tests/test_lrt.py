"""lrtest against twice the difference of independently fitted log-likelihoods
(lme4's fits in tests/data/lme4_seed.json)."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import lmm


@pytest.fixture(scope="module")
def fits(dietox):
    return {
        "rs": lmm.lmer("Weight ~ Time + (1 + Time | Pig)", dietox),
        "diag": lmm.lmer("Weight ~ Time + (Time || Pig)", dietox),
        "ri": lmm.lmer("Weight ~ Time + (1 | Pig)", dietox),
    }


def _lme4_stat(lme4_seed, restricted, full):
    return 2 * (lme4_seed[full]["best"]["loglik"] - lme4_seed[restricted]["best"]["loglik"])


def test_reml_statistic_by_default(fits, lme4_seed):
    r = lmm.lrtest(fits["diag"], fits["rs"])
    expected = _lme4_stat(lme4_seed, "dietox_diag_reml", "dietox_rs_reml")
    assert r.criterion == "REML" and not r.refitted
    assert r.statistic == pytest.approx(expected, abs=1e-5)
    assert r.statistic == pytest.approx(0.60, abs=0.01)      # the walkthrough's 2 x 0.3
    assert r.df == 1
    assert r.pvalue == pytest.approx(stats.chi2.sf(expected, 1), rel=1e-4)
    assert np.isnan(r.pvalue_mixture)   # a covariance at zero is not a boundary


def test_refit_with_ml_as_lme4_anova(fits, lme4_seed):
    r = lmm.lrtest(fits["diag"], fits["rs"], refit=True)
    expected = _lme4_stat(lme4_seed, "dietox_diag_ml", "dietox_rs_ml")
    assert r.criterion == "ML" and r.refitted
    assert r.statistic == pytest.approx(expected, abs=1e-5)
    assert r.statistic == pytest.approx(0.63, abs=0.01)


def test_variance_at_zero_gives_mixture_pvalue(fits, lme4_seed):
    r = lmm.lrtest(fits["ri"], fits["rs"])
    expected = _lme4_stat(lme4_seed, "dietox_ri_reml", "dietox_rs_reml")
    assert r.statistic == pytest.approx(expected, abs=1e-5)
    assert r.df == 2
    mix = 0.5 * stats.chi2.sf(expected, 1) + 0.5 * stats.chi2.sf(expected, 2)
    assert r.pvalue_mixture == pytest.approx(mix, rel=1e-4)
    assert any("conservative" in n for n in r.notes)


def test_different_fixed_effects_refit_by_ml(dietox):
    small = lmm.lmer("Weight ~ Time + (1 | Pig)", dietox)
    big = lmm.lmer("Weight ~ Time + Cu + (1 | Pig)", dietox)
    r = lmm.lrtest(small, big)
    assert r.refitted and r.criterion == "ML" and r.df == 2
    ml_small = lmm.lmer("Weight ~ Time + (1 | Pig)", dietox, REML=False)
    ml_big = lmm.lmer("Weight ~ Time + Cu + (1 | Pig)", dietox, REML=False)
    assert r.statistic == pytest.approx(2 * (ml_big.llf - ml_small.llf), abs=1e-8)
    assert any("refit by ML" in n for n in r.notes)


def test_wrong_order_and_different_data(fits, sitka):
    with pytest.raises(ValueError, match="more parameters"):
        lmm.lrtest(fits["rs"], fits["diag"])
    other = lmm.lmer("size ~ Time + (1 | tree)", sitka)
    with pytest.raises(ValueError, match="same response"):
        lmm.lrtest(other, fits["rs"])


LRT_REF = json.loads((Path(__file__).parent / "data" / "lme4_lrt.json").read_text())


@pytest.mark.parametrize("case", sorted(k for k in LRT_REF if k != "notes"))
@pytest.mark.parametrize("refit", [False, True], ids=["refit_false", "refit_true"])
def test_against_lme4_anova(case, refit, dietox, sitka):
    """tests/data/lme4_lrt.json: lme4's anova(m0, m1, refit = ...), made by
    tests/data/lme4_lrt_ref.R."""
    ref = LRT_REF[case]
    data = dietox if ref["data"] == "dietox" else sitka
    m0 = lmm.lmer(ref["m0"], data)
    m1 = lmm.lmer(ref["m1"], data)
    r = lmm.lrtest(m0, m1, refit=refit)
    expected = ref["refit_true" if refit else "refit_false"]
    assert r.df == expected["df"]
    # lmm's optima are at least as good as lme4's: the statistic may differ by
    # the optimizers' tolerance only
    assert r.statistic == pytest.approx(expected["chisq"], abs=1e-5)
    assert r.pvalue == pytest.approx(expected["p_value"], rel=1e-3, abs=1e-12)
