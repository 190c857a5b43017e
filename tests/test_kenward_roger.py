"""Kenward-Roger adjusted covariance, t and F tests, against pbkrtest and lmerTest.

References: tests/data/pbkrtest.json, made by tests/data/pbkrtest_ref.R (lmerTest's
summary(ddf = "Kenward-Roger"), pbkrtest's vcovAdj and KRmodcomp; lme4's bobyqa
optimizer). Each case first checks that lme4 and lmm reach the same optimum. The
balanced fits' adjustment is zero (sleepstudy) or tiny, so an unbalanced sleepstudy
(rows dropped by a fixed rule, the same in R) checks that the adjustment is made; a
brute-force dense computation of pbkrtest's formulas checks it too.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmm
from lmm import kenward_roger
from lmm.exceptions import SingularFitWarning
from lmm.kenward_roger import KenwardRoger

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "pbkrtest.json").read_text())
CASES = [k for k in REF if k != "versions"]

FORMULAS = {
    "sleepstudy_slope": "Reaction ~ Days + (Days | Subject)",
    "unbalanced_slope": "Reaction ~ Days + (Days | Subject)",
    "sleepstudy_ri": "Reaction ~ Days + (1 | Subject)",
    "sleepstudy_diag": "Reaction ~ Days + (Days || Subject)",
    "dietox_evit": "Weight ~ Time + C(Evit) + (1 | Pig)",
    "dietox_slope": "Weight ~ Time + (1 + Time | Pig)",
    "penicillin_crossed": "diameter ~ 1 + (1 | plate) + (1 | sample)",
    "boundary_crossed": "diameter ~ x + (1 | plate) + (1 + x || sample)",
}


def _sleepstudy():
    return pd.read_csv(DATA / "sleepstudy.csv")


def _unbalanced():
    """pbkrtest_ref.R's rule: drop rows 1, 5, 9, ... (R's numbering) and days 7-9 of
    five subjects."""
    d = _sleepstudy()
    i = np.arange(len(d))
    drop_days = d["Subject"].isin([308, 309, 310, 330, 331]) & (d["Days"] >= 7)
    return d[(i % 4 != 0) & ~drop_days].reset_index(drop=True)


def _boundary():
    """pbkrtest_ref.R's crossed data whose fit is singular: every second row of
    penicillin, the first 67, with x = 0, 1, 2, 3, 4, 0, 1, ..."""
    d = pd.read_csv(DATA / "penicillin.csv").iloc[::2].iloc[:67].reset_index(drop=True)
    d["x"] = np.arange(len(d)) % 5
    return d


def _data(case):
    if case == "boundary_crossed":
        return _boundary()
    if case == "unbalanced_slope":
        return _unbalanced()
    if case.startswith("sleepstudy"):
        return _sleepstudy()
    if case.startswith("penicillin"):
        return pd.read_csv(DATA / "penicillin.csv")
    return lmm.datasets.get_rdataset("dietox", "geepack").data


def _r_name(name):
    """lmm's name of a fixed effect in R's spelling: lme4-style fits carry R's names,
    C(Evit) is R's factor column Evit."""
    return name.replace("C(Evit)", "Evit")


def _r_positions(res, ref):
    """For each of lmm's fixed effects, its position in R's order."""
    return [ref["names"].index(_r_name(n)) for n in res.fe_params.index]


def _one_row_tests(kr, p):
    return [kr.test(np.eye(p)[j]) for j in range(p)]


@pytest.fixture(scope="module", params=CASES)
def fitted(request):
    case = request.param
    if case == "boundary_crossed":
        with pytest.warns(SingularFitWarning):
            res = lmm.lmer(FORMULAS[case], _data(case))
    else:
        res = lmm.lmer(FORMULAS[case], _data(case))
    return case, REF[case], res, KenwardRoger(res)


def test_same_optimum_as_lme4(fitted):
    case, ref, res, _ = fitted
    assert res.llf == pytest.approx(ref["loglik"], abs=1e-5)


def test_vcov_matches_pbkrtest_vcovadj(fitted):
    case, ref, res, kr = fitted
    pos = _r_positions(res, ref)
    expected = np.atleast_2d(ref["vcov_adj"])[np.ix_(pos, pos)]
    unadjusted = np.atleast_2d(ref["vcov"])[np.ix_(pos, pos)]
    scale = np.sqrt(np.outer(np.diag(expected), np.diag(expected)))
    np.testing.assert_allclose(kr.vcov() / scale, expected / scale, rtol=0, atol=1e-5)
    np.testing.assert_allclose(kr.vcov_unadjusted() / scale, unadjusted / scale, rtol=0,
                               atol=1e-5)


def test_t_tests_match_lmertest_summary(fitted):
    case, ref, res, kr = fitted
    pos = _r_positions(res, ref)
    rows = _one_row_tests(kr, len(pos))
    assert all(list(r) == ["estimate", "std_error", "df", "t", "p_value", "ci_lower",
                           "ci_upper"] for r in rows)
    pick = np.atleast_1d

    def col(key):
        return np.array([r[key] for r in rows])

    np.testing.assert_allclose(col("estimate"), pick(ref["estimate"])[pos], rtol=1e-6)
    np.testing.assert_allclose(col("std_error"), pick(ref["std_error"])[pos], rtol=1e-5)
    np.testing.assert_allclose(col("df"), pick(ref["df"])[pos], rtol=1e-4)
    np.testing.assert_allclose(col("t"), pick(ref["t"])[pos], rtol=1e-5)
    np.testing.assert_allclose(col("p_value"), pick(ref["p_value"])[pos], rtol=1e-3)


def test_confidence_interval_uses_adjusted_se_and_kr_df(fitted):
    case, ref, res, kr = fitted
    from scipy import stats
    r = kr.test(np.eye(len(res.fe_params))[0], alpha=0.1)
    half = stats.t.ppf(0.95, r["df"]) * r["std_error"]
    assert r["ci_lower"] == pytest.approx(r["estimate"] - half, rel=1e-12)
    assert r["ci_upper"] == pytest.approx(r["estimate"] + half, rel=1e-12)


@pytest.mark.parametrize("case", [c for c in CASES if "contrast" in REF[c]])
def test_f_test_matches_krmodcomp(case):
    ref = REF[case]
    res = lmm.lmer(FORMULAS[case], _data(case))
    c = ref["contrast"]
    L = np.asarray(c["L"], dtype=float)[:, _r_positions(res, ref)]
    out = KenwardRoger(res).test(L)
    assert list(out) == ["num_df", "den_df", "F", "p_value"]
    assert out["num_df"] == c["num_df"]
    assert out["den_df"] == pytest.approx(c["den_df"], rel=1e-4)
    assert out["F"] == pytest.approx(c["F"], rel=1e-5)            # the scaled F
    assert out["F"] == pytest.approx(c["contest_F"], rel=1e-5)    # lmerTest's contest
    assert out["p_value"] == pytest.approx(c["p_value"], rel=1e-3)
    # the scaling is visible here: the unscaled F would fail
    assert abs(c["F_scaling"] - 1.0) < 1e-6 or abs(c["F_unscaled"] / c["F"] - 1.0) > 1e-3


def test_unbalanced_adjustment_is_larger_than_the_tolerance():
    """Skipping the adjustment (Phi_A = Phi) would fail the reference tests."""
    ref = REF["unbalanced_slope"]
    adjusted, plain = np.array(ref["std_error"]), np.sqrt(np.diag(ref["vcov"]))
    assert np.all(np.abs(adjusted / plain - 1.0) > 100 * 1e-5)
    res = lmm.lmer(FORMULAS["unbalanced_slope"], _unbalanced())
    kr = KenwardRoger(res)
    se = np.sqrt(np.diag(kr.vcov()))
    assert np.all(se / np.sqrt(np.diag(kr.vcov_unadjusted())) - 1.0 > 1e-3)


def _dense_pbkrtest(x, z_blocks, covs, scale, units_per_term):
    """pbkrtest's vcovAdj and Lb_ddf literally, on dense n x n matrices: an oracle
    independent of the module's low-rank, blockwise algebra."""
    n = x.shape[0]
    g_list = []
    v = scale * np.eye(n)
    for z, cov, units in zip(z_blocks, covs, units_per_term):
        v += z @ cov @ z.T
        g_list += [z @ e @ z.T for e in units]
    g_list.append(np.eye(n))
    vinv = np.linalg.inv(v)
    phi = np.linalg.inv(x.T @ vinv @ x)
    pm = vinv - vinv @ x @ phi @ x.T @ vinv
    k = len(g_list)
    info = np.array([[0.5 * np.trace(pm @ g_list[i] @ pm @ g_list[j]) for j in range(k)]
                     for i in range(k)])
    w = np.linalg.inv(info)
    p_mats = [-x.T @ vinv @ g @ vinv @ x for g in g_list]
    u = sum(w[i, j] * (x.T @ vinv @ g_list[i] @ vinv @ g_list[j] @ vinv @ x
                       - p_mats[i] @ phi @ p_mats[j]) for i in range(k) for j in range(k))
    return phi, phi + 2 * phi @ u @ phi, p_mats, w


def _full_design(codes, z, n_levels):
    """n x (levels * q) design, level by level."""
    n, q = z.shape
    out = np.zeros((n, n_levels * q))
    for r in range(n):
        out[r, codes[r] * q:(codes[r] + 1) * q] = z[r]
    return out


def _kron_cov(cov, n_levels):
    return np.kron(np.eye(n_levels), cov)


def _kron_units(structure, n_levels):
    units = []
    for j, k in zip(structure.cov_rows, structure.cov_cols):
        e = np.zeros((structure.q, structure.q))
        e[j, k] = e[k, j] = 1.0
        units.append(np.kron(np.eye(n_levels), e))
    return units


def test_blockwise_matches_dense_oracle_uncorrelated_unbalanced():
    """(Days || Subject) on the unbalanced data: no R number, the dense oracle instead."""
    d = _unbalanced()
    res = lmm.lmer("Reaction ~ Days + (Days || Subject)", d)
    codes = pd.factorize(d["Subject"], sort=True)[0]
    levels = codes.max() + 1
    z = _full_design(codes, res.model.exog_re, levels)
    # the model's rows are the data's rows (no reordering of exog)
    np.testing.assert_array_equal(res.model.exog[:, 1], d["Days"].to_numpy(float))
    phi, phi_a, p_mats, w = _dense_pbkrtest(
        res.model.exog, [z], [_kron_cov(res.cov_re.to_numpy(), levels)], res.scale,
        [_kron_units(res.structure, levels)])
    kr = KenwardRoger(res)
    np.testing.assert_allclose(kr.vcov_unadjusted(), phi, rtol=1e-10)
    np.testing.assert_allclose(kr.vcov(), phi_a, rtol=1e-10)
    assert np.abs(phi_a / phi - 1).max() > 1e-4
    for j in range(2):
        L = np.eye(2)[[j]]
        expected = kenward_roger.kr_ddf(L, phi, p_mats, w)[0]
        assert kr.test(L[0])["df"] == pytest.approx(expected, rel=1e-10)


def test_several_factor_path_matches_dense_oracle_on_unbalanced_crossed_data():
    d = _boundary()
    # a slope varying by sample (fixed draws), so that no variance is on the boundary
    slopes = np.random.default_rng(7).normal(scale=0.8, size=d["sample"].nunique())
    d["diameter"] += slopes[pd.factorize(d["sample"], sort=True)[0]] * d["x"]
    res = lmm.lmer("diameter ~ x + (1 | plate) + (1 + x || sample)", d)
    z_blocks, covs, units = [], [], []
    for term in res.model.terms:
        z_blocks.append(_full_design(term.codes, term.z, term.n_levels))
        covs.append(_kron_cov(res.cov_re[term.group].to_numpy(), term.n_levels))
        units.append(_kron_units(term.structure, term.n_levels))
    phi, phi_a, _, _ = _dense_pbkrtest(res.model.exog, z_blocks, covs, res.scale, units)
    kr = KenwardRoger(res)
    np.testing.assert_allclose(kr.vcov(), phi_a, rtol=1e-8)
    assert np.abs(phi_a / phi - 1).max() > 1e-4


def test_rank_deficient_contrast_tests_its_row_space():
    res = lmm.lmer(FORMULAS["unbalanced_slope"], _unbalanced())
    kr = KenwardRoger(res)
    full = kr.test(np.eye(2))
    redundant = kr.test([[1, 0], [0, 1], [1, 1]])
    assert redundant["num_df"] == 2
    assert redundant["F"] == pytest.approx(full["F"], rel=1e-10)
    assert redundant["den_df"] == pytest.approx(full["den_df"], rel=1e-10)


def test_ml_fit_raises():
    res = lmm.lmer(FORMULAS["sleepstudy_slope"], _sleepstudy(), REML=False)
    with pytest.raises(ValueError, match="REML"):
        KenwardRoger(res)


def test_several_factors_above_the_dense_limit_raise(monkeypatch):
    res = lmm.lmer(FORMULAS["penicillin_crossed"], pd.read_csv(DATA / "penicillin.csv"))
    monkeypatch.setattr(kenward_roger, "MAX_DENSE_ROWS", 100)
    with pytest.raises(NotImplementedError, match="144 rows"):
        KenwardRoger(res).vcov()


@pytest.mark.parametrize("L, message", [
    ([1, 0, 0], "3 columns"),
    ([np.nan, 1], "NaN"),
    ([0, 0], "zero variance"),
    ([[0, 0], [0, 0]], "rank 0"),
    (np.zeros((0, 2)), "no rows"),
])
def test_bad_contrast_raises(L, message):
    res = lmm.lmer(FORMULAS["sleepstudy_ri"], _sleepstudy())
    with pytest.raises(ValueError, match=message):
        KenwardRoger(res).test(L)


def test_bad_alpha_raises():
    res = lmm.lmer(FORMULAS["sleepstudy_ri"], _sleepstudy())
    with pytest.raises(ValueError, match="alpha"):
        KenwardRoger(res).test([0, 1], alpha=1.5)


def test_batches_of_one_group_give_the_same_answer(monkeypatch):
    res = lmm.lmer(FORMULAS["dietox_evit"], _data("dietox_evit"))
    batched = KenwardRoger(res).vcov()
    monkeypatch.setattr(kenward_roger, "BATCH_ENTRIES", 1)
    # (the batches change the order of the sums: entries agree to rounding of
    # the matrix's scale, not each to its own digits)
    np.testing.assert_allclose(KenwardRoger(res).vcov(), batched, rtol=1e-12,
                               atol=1e-13 * np.abs(batched).max())


def test_group_above_the_dense_limit_raises(monkeypatch):
    res = lmm.lmer(FORMULAS["sleepstudy_ri"], _sleepstudy())
    monkeypatch.setattr(kenward_roger, "MAX_DENSE_ROWS", 5)
    with pytest.raises(NotImplementedError, match="10 rows"):
        KenwardRoger(res).vcov()


def test_shuffled_rows_and_mixedlm_match_pbkrtest():
    """Groups read through row_order (rows of a group need not be adjacent), and the
    statsmodels-style entry point gives the same fit."""
    ref = REF["unbalanced_slope"]
    shuffled = _unbalanced().sample(frac=1, random_state=3)
    fits = [lmm.lmer(FORMULAS["unbalanced_slope"], shuffled),
            lmm.mixedlm("Reaction ~ Days", shuffled, groups="Subject", re_formula="~Days").fit()]
    for res in fits:
        rows = _one_row_tests(KenwardRoger(res), 2)
        np.testing.assert_allclose([r["std_error"] for r in rows], ref["std_error"], rtol=1e-5)
        np.testing.assert_allclose([r["df"] for r in rows], ref["df"], rtol=1e-4)
