"""Prior weights and offsets in the one-grouping-factor engine (issue 19).

References: lme4 1.1.31 fits in tests/data/lme4_weights.json (made by
tests/data/lme4_weights.R), MixedModels.jl's weights test (theta 0.2952), a
dense numpy evaluation of the weighted likelihood (V = Z G Z' + s2 W^-1), and
closed forms for constant and integer weights.
"""

import json
import math
import pathlib

import numpy as np
import pandas as pd
import pytest

import lmm
from lmm.statistics import GroupedStatistics

DATA = pathlib.Path(__file__).parent / "data"
REF = json.loads((DATA / "lme4_weights.json").read_text())
for _case in REF.values():           # (R's NULL is written as {})
    for _name in ("weights", "offset"):
        if _name in _case:
            _case[_name] = _case[_name] or None


@pytest.fixture(scope="module")
def sleep():
    s = pd.read_csv(DATA / "sleepstudy.csv")
    return s.assign(w=1 + s["Days"] % 3, o=0.5 * s["Days"])


@pytest.fixture(scope="module")
def diet():
    d = lmm.datasets.get_rdataset("dietox", "geepack").data
    return d.assign(w=1 + (d["Time"] % 4) / 2, o=(2 * d["Feed"]).fillna(0.0))


MMJL = pd.DataFrame({
    "a": [1.55945122, 0.004391538, 0.005554163, -0.173029772, 4.586284429, 0.259493671,
          -0.091735715, 5.546487603, 0.457734831, -0.030169602],
    "b": [0.24520519, 0.080624178, 0.228083467, 0.2471453, 0.398994279, 0.037213859,
          0.102144973, 0.241380251, 0.206570975, 0.15980803],
    "c": ["H", "F", "K", "P", "P", "P", "D", "M", "I", "D"],
    "w1": [20, 40, 35, 12, 29, 25, 65, 105, 30, 75]})


def _check_against_lme4(res, ref, theta_atol=2e-4):
    assert res.llf == pytest.approx(ref["loglik"], abs=1e-6)
    np.testing.assert_allclose(res.fe_params.to_numpy(), ref["fixef"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(res.bse_fe.to_numpy(), ref["se"], rtol=1e-4)
    np.testing.assert_allclose(res.theta, ref["theta"], atol=theta_atol)
    assert res.scale == pytest.approx(ref["sigma2"], rel=1e-5)


@pytest.mark.parametrize("key", [k for k in REF if k.startswith("sleep_") and "w3" not in k
                                 and "unweighted" not in k and "features" not in k])
def test_sleepstudy_weights_and_offsets_match_lme4(sleep, key):
    ref = REF[key]
    res = lmm.lmer(ref["formula"], sleep, REML=ref["reml"], weights=ref["weights"],
                   offset=ref["offset"])
    _check_against_lme4(res, ref)
    # the fitted values include the offset; residuals are y - fitted (lme4's)
    np.testing.assert_allclose(res.fittedvalues.to_numpy()[:5], ref["fitted_head"],
                               rtol=1e-6)
    np.testing.assert_allclose(res.resid.to_numpy()[:5], ref["resid_response_head"],
                               atol=1e-4)


@pytest.mark.parametrize("key", [k for k in REF if k.startswith("dietox_")])
def test_dietox_weights_and_offsets_match_lme4(diet, key):
    ref = REF[key]
    # (as arrays, through mixedlm: the other entry point)
    res = lmm.mixedlm("Weight ~ Time", diet, groups="Pig", re_formula="~Time",
                      weights=diet[ref["weights"]].to_numpy(),
                      offset=None if ref["offset"] is None else diet[ref["offset"]]
                      ).fit(reml=ref["reml"])
    _check_against_lme4(res, ref, theta_atol=1e-3)


@pytest.mark.parametrize("reml", [False, True])
def test_mixedmodels_jl_weights_case(reml):
    """MixedModels.jl's test/pls.jl: theta 0.295181729258352 (ML), SEs 0.9640167,
    3.6309696; lme4 agrees (both fits in the JSON)."""
    ref = REF["mmjl_w1_" + ("reml" if reml else "ml")]
    res = lmm.lmer("a ~ 1 + b + (1 | c)", MMJL, REML=reml, weights="w1")
    _check_against_lme4(res, ref, theta_atol=1e-4)
    if not reml:
        assert res.theta[0] == pytest.approx(0.295181729258352, abs=1e-4)
        np.testing.assert_allclose(res.bse_fe, [0.9640167, 3.6309696], atol=1e-4)


def test_weighted_llf_is_the_dense_gaussian_likelihood(sleep):
    """At the ML optimum the log-likelihood is that of y - o ~ N(X beta, Z G Z' + s2 W^-1)."""
    res = lmm.lmer("Reaction ~ Days + (Days | Subject)", sleep, REML=False, weights="w",
                   offset="o")
    x = np.column_stack([np.ones(len(sleep)), sleep["Days"]])
    codes = pd.factorize(sleep["Subject"], sort=True)[0]
    z = np.zeros((len(sleep), 2 * codes.max() + 2))
    for j in range(2):
        z[np.arange(len(sleep)), 2 * codes + j] = x[:, j]
    g = np.kron(np.eye(codes.max() + 1), res.cov_re.to_numpy())
    v = z @ g @ z.T + res.scale * np.diag(1.0 / sleep["w"].to_numpy())
    r = sleep["Reaction"].to_numpy() - sleep["o"].to_numpy() - x @ res.fe_params.to_numpy()
    sign, logdet = np.linalg.slogdet(v)
    llf = -0.5 * (logdet + r @ np.linalg.solve(v, r) + len(r) * math.log(2 * math.pi))
    assert sign > 0
    assert res.llf == pytest.approx(llf, abs=1e-8)


def test_constant_weights_give_the_unweighted_estimates(sleep):
    """Weights all c: the same fixed effects, cov_re and log-likelihood, ML and
    REML (the sum(log w) / 2 term cancels the scale's change; lme4's logLik
    agrees, JSON sleep_w3_* vs sleep_unweighted_*), scale times c, theta / sqrt(c)."""
    f = "Reaction ~ Days + (Days | Subject)"
    for c in (3.0, 1e-3):
        for reml in (False, True):
            ref = lmm.lmer(f, sleep, REML=reml)
            res = lmm.lmer(f, sleep, REML=reml, weights=np.full(len(sleep), c))
            np.testing.assert_allclose(res.fe_params, ref.fe_params, rtol=1e-9)
            np.testing.assert_allclose(res.cov_re, ref.cov_re, rtol=1e-5)
            assert res.scale == pytest.approx(c * ref.scale, rel=1e-6)
            np.testing.assert_allclose(res.theta * math.sqrt(c), ref.theta, atol=1e-5)
            assert res.llf == pytest.approx(ref.llf, abs=1e-7)
    for tag in ("ml", "reml"):
        w3, w1 = REF["sleep_w3_" + tag], REF["sleep_unweighted_" + tag]
        assert w3["loglik"] == pytest.approx(w1["loglik"], abs=1e-6)


def test_integer_weights_are_repeated_rows_in_the_products_not_in_n(sleep):
    """Weights k_i give the products of the data with row i repeated k_i times,
    so beta(theta) is the same; the criterion differs in n (rows, not sum k)
    and by sum(log k), which moves the optimum: the fits differ (lme4's too)."""
    k = (1 + sleep["Days"] % 2).to_numpy()
    rep = sleep.loc[np.repeat(sleep.index.to_numpy(), k)].reset_index(drop=True)
    f = "Reaction ~ Days + (Days | Subject)"
    mw = lmm.MixedLM.from_lmer(f, sleep.assign(k=k), weights="k")
    mr = lmm.MixedLM.from_lmer(f, rep)
    for a, b in zip(mw.cross_products.__dict__.values(), mr.cross_products.__dict__.values()):
        if isinstance(a, np.ndarray):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-7)
    dw, dr = mw.profiled_deviance(reml=False), mr.profiled_deviance(reml=False)
    theta_user = np.array([0.9, 0.02, 0.2])
    sw = dw.solution(dw.structure.theta(dw.reparam.lam_to_scaled(
        dw.structure.lam(theta_user))))
    sr = dr.solution(dr.structure.theta(dr.reparam.lam_to_scaled(
        dr.structure.lam(theta_user))))
    np.testing.assert_allclose(sw["fe_params"], sr["fe_params"], rtol=1e-10)
    n, big_n = len(sleep), int(k.sum())
    rss = sw["scale"] * n
    # -2 llf = log|V| + n (1 + log(2 pi rss / n)) - sum log k, against N for the repeats
    expected = (n * (1 + math.log(2 * math.pi * rss / n)) - np.log(k).sum()
                - big_n * (1 + math.log(2 * math.pi * rss / big_n)))
    assert sw["deviance"] - sr["deviance"] == pytest.approx(expected, abs=1e-8)


def test_zero_weights_drop_their_rows(sleep):
    """(lme4 1.1.31 returns logLik -Inf with a zero weight; lmm drops the row.)"""
    w = sleep["w"].to_numpy(float).copy()
    w[[2, 49]] = 0.0
    f = "Reaction ~ Days + (Days | Subject)"
    res = lmm.lmer(f, sleep, REML=False, weights=w)
    sub = sleep.drop(index=[2, 49])
    ref = lmm.lmer(f, sub, REML=False, weights=w[w > 0])
    assert res.nobs == len(sleep) - 2
    assert res.llf == pytest.approx(ref.llf, abs=1e-9)
    np.testing.assert_allclose(res.fe_params, ref.fe_params, rtol=1e-10)


def test_missing_weights_and_offsets_drop_with_missing_drop(sleep):
    w = sleep["w"].to_numpy(float).copy()
    o = sleep["o"].to_numpy(float).copy()
    w[5], o[7] = np.nan, np.nan
    f = "Reaction ~ Days + (Days | Subject)"
    with pytest.raises(ValueError, match="weights"):
        lmm.lmer(f, sleep, weights=w)
    with pytest.raises(ValueError, match="offset"):
        lmm.lmer(f, sleep, offset=o)
    res = lmm.lmer(f, sleep, weights=w, offset=o, missing="drop")
    keep = np.isfinite(w) & np.isfinite(o)
    ref = lmm.lmer(f, sleep[keep], weights=w[keep], offset=o[keep])
    assert res.nobs == keep.sum()
    assert res.llf == pytest.approx(ref.llf, abs=1e-9)
    x = np.column_stack([np.ones(len(sleep)), sleep["Days"]])
    md = lmm.MixedLM(sleep["Reaction"], x, sleep["Subject"], exog_re=x, weights=w,
                     offset=o, missing="drop")
    assert md.fit().llf == pytest.approx(ref.llf, abs=1e-9)


@pytest.mark.parametrize("bad, match", [
    (-1.0, "weights must be positive"), (np.inf, "weights has infinite"),
    (np.nan, "missing values.*weights")])
def test_bad_weights_raise_value_error_naming_weights(sleep, bad, match):
    w = sleep["w"].to_numpy(float).copy()
    w[3] = bad
    x = np.column_stack([np.ones(len(sleep)), sleep["Days"]])
    with pytest.raises(ValueError, match=match):
        lmm.MixedLM(sleep["Reaction"], x, sleep["Subject"], weights=w)
    with pytest.raises(ValueError, match=match):
        lmm.mixedlm("Reaction ~ Days", sleep, groups="Subject", weights=w)


def test_bad_weight_and_offset_shapes_and_names(sleep):
    f = "Reaction ~ Days + (1 | Subject)"
    with pytest.raises(ValueError, match="weights.*one value per row"):
        lmm.lmer(f, sleep, weights=np.ones(3))
    with pytest.raises(ValueError, match="'nope' is not a column"):
        lmm.lmer(f, sleep, offset="nope")
    with pytest.raises(ValueError, match="offset has infinite"):
        lmm.lmer(f, sleep, offset=np.where(sleep["Days"] == 3, np.inf, 0.0))
    with pytest.raises(TypeError, match="weights must be numeric"):
        lmm.lmer(f, sleep, weights="Subject" if sleep["Subject"].dtype == object else
                 sleep["Subject"].astype(str))


def test_weights_keep_their_digits_with_a_shifted_response(sleep):
    f = "Reaction ~ Days + (Days | Subject)"
    ref = lmm.lmer(f, sleep, weights="w", offset="o")
    res = lmm.lmer(f, sleep.assign(Reaction=sleep["Reaction"] + 1e6), weights="w",
                   offset="o")
    assert res.fe_params.iloc[0] - 1e6 == pytest.approx(ref.fe_params.iloc[0], abs=1e-7)
    assert res.fe_params.iloc[1] == pytest.approx(ref.fe_params.iloc[1], rel=1e-9)
    np.testing.assert_allclose(res.cov_re, ref.cov_re, rtol=1e-6)
    assert res.llf == pytest.approx(ref.llf, abs=1e-8)


def test_offset_is_a_shift_of_the_response(sleep):
    """An offset equal to c * Days moves the Days coefficient by -c, nothing else."""
    f = "Reaction ~ Days + (Days | Subject)"
    ref = lmm.lmer(f, sleep, weights="w")
    res = lmm.lmer(f, sleep, weights="w", offset="o")
    assert res.fe_params["Days"] == pytest.approx(ref.fe_params["Days"] - 0.5, abs=1e-9)
    assert res.llf == pytest.approx(ref.llf, abs=1e-8)
    np.testing.assert_allclose(res.fittedvalues, ref.fittedvalues, rtol=1e-9)
    assert res.model.offset is not None and res.model.weights is not None


def test_weighted_statistics_merge_exactly():
    rng = np.random.default_rng(1)
    n = 60
    x = np.column_stack([np.ones(n), rng.normal(size=n) + 1e8])
    z = x[:, :1].copy()
    y = rng.normal(size=n) + 1e6
    codes = np.arange(n) % 4
    w = rng.uniform(0.2, 5.0, n)
    whole = GroupedStatistics.from_rows(x, z, y, codes, 4, weights=w)
    a = GroupedStatistics.from_rows(x[:25], z[:25], y[:25], codes[:25], 4, weights=w[:25])
    b = GroupedStatistics.from_rows(x[25:], z[25:], y[25:], codes[25:], 4, weights=w[25:])
    merged = a.merge(b).recentred(whole.x_shift, whole.z_shift, whole.y_shift)
    for name in ("ztz", "ztx", "zty", "xtx", "xty", "weight_sums"):
        np.testing.assert_allclose(getattr(merged, name), getattr(whole, name),
                                   rtol=1e-9, atol=1e-9)
    assert merged.yty == pytest.approx(whole.yty, rel=1e-9)
    # the weighted products, from a dense computation about the weighted means
    m = np.average(x, 0, w)
    xc, yc = x - m, y - np.average(y, weights=w)
    np.testing.assert_allclose(whole.xtx, (xc * w[:, None]).T @ xc, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(whole.xty, (xc * w[:, None]).T @ yc, rtol=1e-9, atol=1e-6)
    with pytest.raises(ValueError, match="weighted and unweighted"):
        a.merge(GroupedStatistics.from_rows(x[25:], z[25:], y[25:], codes[25:], 4))


def test_fit_many_with_shared_weights_matches_one_fit_per_response(sleep):
    """The fitter on sqrt(w)-scaled rows, responses with missing values through
    MixedLM: each row of the table equals lmer(..., weights=) of that response."""
    rng = np.random.default_rng(0)
    y = pd.DataFrame({"a": sleep["Reaction"],
                      "b": 2 * sleep["Reaction"] + 10 * rng.normal(size=len(sleep)) + 1e6,
                      "c": sleep["Reaction"] + 30 * rng.normal(size=len(sleep))})
    y.loc[3, "c"] = np.nan
    for rhs in ("Days + (Days | Subject)", "Days + (1 | Subject)"):
        res = lmm.fit_many("~ " + rhs, sleep, y, weights="w", progress=False)
        assert res.python_path == ["c"]           # (the complete ones by the fitter)
        for name in y:
            keep = y[name].notna().to_numpy()
            ref = lmm.lmer(f"{name} ~ {rhs}", sleep.assign(**{name: y[name]})[keep],
                           weights="w")
            row = res.table.loc[name]
            assert row["llf"] == pytest.approx(ref.llf, abs=1e-7)
            assert row["scale"] == pytest.approx(ref.scale, rel=1e-7)
            assert row["nobs"] == keep.sum()
            for j, fe in enumerate(["(Intercept)", "Days"]):
                assert row[fe] == pytest.approx(ref.fe_params.iloc[j], rel=1e-9)
                assert row[fe + "_se"] == pytest.approx(ref.bse_fe.iloc[j], rel=1e-6)
            assert row["(Intercept) Var"] == pytest.approx(ref.cov_re.iloc[0, 0], rel=1e-5)


def test_fit_many_refuses_what_it_does_not_have(sleep):
    y = pd.DataFrame({"a": sleep["Reaction"], "b": sleep["Reaction"] * 2})
    for bad, match in ((-1.0, "weights must be positive"), (np.inf, "weights has infinite")):
        w = np.ones((len(sleep), 2))
        w[4, 1] = bad
        with pytest.raises(ValueError, match=match):
            lmm.fit_many("~ Days + (1 | Subject)", sleep, y, progress=False, weights=w)
    with pytest.raises(ValueError, match="weights has shape"):
        lmm.fit_many("~ Days + (1 | Subject)", sleep, y, progress=False,
                     weights=np.ones((len(sleep), 3)))
    md = lmm.MixedLM.from_lmer("Reaction ~ Days + (1 | Subject)", sleep, offset="o")
    with pytest.raises(NotImplementedError, match="offset"):
        md.fit_many(y, progress=False)
    md = lmm.MixedLM.from_lmer("Reaction ~ Days + (1 | Subject)", sleep, weights="w")
    with pytest.raises(ValueError, match="give the weights to the MixedLM"):
        lmm.fit_many(md, responses=y, weights="w", progress=False)
    # a weighted MixedLM carries its weights into fit_many
    res = md.fit_many(y, progress=False)
    assert res.table.loc["a", "llf"] == pytest.approx(md.fit().llf, abs=1e-7)


def test_weights_follow_subset_and_group_arrays(sleep):
    """Arrays of the data's length are cut by `subset` as the data are."""
    f = "Reaction ~ Days + (Days | Subject)"
    sub = (sleep["Days"] < 8).to_numpy()
    ref = lmm.lmer(f, sleep[sub], weights="w")
    a = lmm.lmer(f, sleep, weights=sleep["w"].to_numpy(), subset=sub)
    b = lmm.mixedlm("Reaction ~ Days", sleep, groups=sleep["Subject"].to_numpy(),
                    re_formula="~Days", weights="w", subset=sub).fit()
    assert a.nobs == b.nobs == sub.sum()
    assert a.llf == pytest.approx(ref.llf, abs=1e-9)
    assert b.llf == pytest.approx(ref.llf, abs=1e-9)


def test_offset_terms_in_formulas_are_offsets(sleep):
    """lme4's offset(x) term: the same fit as offset=x; terms and offset= add up."""
    f = "Reaction ~ Days + (Days | Subject)"
    ref = lmm.lmer(f, sleep, weights="w", offset="o")
    a = lmm.lmer("Reaction ~ Days + offset(o) + (Days | Subject)", sleep, weights="w")
    b = lmm.lmer("Reaction ~ offset(0.25 * Days) + Days + (Days | Subject)", sleep,
                 weights="w", offset=0.25 * sleep["Days"])
    c = lmm.mixedlm("Reaction ~ Days + offset(o)", sleep, groups="Subject",
                    re_formula="~Days", weights="w").fit()
    for res in (a, b, c):
        assert res.llf == pytest.approx(ref.llf, abs=1e-9)
        np.testing.assert_allclose(res.fe_params.to_numpy(), ref.fe_params.to_numpy(),
                                   rtol=1e-10)
        # (the statsmodels-style fit keeps patsy's names, the lme4-style ones R's)
        names = [n.replace("Intercept", "(Intercept)") for n in res.fe_params.index] \
            if res is c else list(res.fe_params.index)
        assert names == list(ref.fe_params.index)
        np.testing.assert_allclose(res.model.offset, sleep["o"], rtol=1e-12)
    with pytest.raises(ValueError, match="subtracts an offset"):
        lmm.lmer("Reaction ~ Days - offset(o) + (1 | Subject)", sleep)
    # (several grouping factors: tests/test_several_factors_weights.py)


def test_missing_offset_term_values_drop_with_missing_drop(sleep):
    o = sleep["o"].copy()
    o.iloc[4] = np.nan
    d = sleep.assign(o=o)
    f = "Reaction ~ Days + offset(o) + (Days | Subject)"
    with pytest.raises(ValueError, match="offset"):
        lmm.lmer(f, d)
    res = lmm.lmer(f, d, missing="drop")
    ref = lmm.lmer(f, d.drop(index=4))
    assert res.nobs == len(sleep) - 1
    assert res.llf == pytest.approx(ref.llf, abs=1e-9)


def test_inference_intervals_and_lrt_of_a_weighted_fit_match_lme4(sleep):
    """Features on top of the products work unchanged: lmerTest's Satterthwaite
    table, lme4's profile intervals of the variance parameters (ML profile of
    the REML fit) and anova()'s LRT, all with weights (and an offset).
    (lme4 1.1.31's profile intervals of the fixed effects with weights and an
    offset are not centred at the estimates, so they are not compared.)"""
    ref = REF["sleep_wo_features"]
    res = lmm.lmer("Reaction ~ Days + (Days | Subject)", sleep, weights="w", offset="o")
    table = res.coef_table()
    np.testing.assert_allclose(table["df"], ref["satterthwaite_df"], rtol=1e-4)
    np.testing.assert_allclose(table["t"], ref["t"], rtol=1e-5)
    np.testing.assert_allclose(table["p_value"], ref["p"], rtol=1e-3)
    ci = res.conf_int_re()
    assert list(ci.index) == ref["confint_names"][:4]
    np.testing.assert_allclose(ci["lower"], ref["confint_lower"][:4], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ci["upper"], ref["confint_upper"][:4], rtol=1e-4, atol=1e-4)
    f = "Reaction ~ {} + (Days | Subject)"
    test = lmm.lrtest(lmm.lmer(f.format("1"), sleep, weights="w", REML=False),
                      lmm.lmer(f.format("Days"), sleep, weights="w", REML=False))
    assert test.statistic == pytest.approx(ref["lrt_chisq"], rel=1e-6)
    assert test.pvalue == pytest.approx(ref["lrt_p"], rel=1e-5)
    assert [test.llf_restricted, test.llf_full] == pytest.approx(ref["lrt_loglik"], abs=1e-6)


@pytest.mark.parametrize("key", ["sleep_w_reml", "sleep_wo_ml", "sleep_o_reml"])
def test_residual_types_match_lme4(sleep, key):
    from lmm.residuals import residuals, weighted_residuals

    ref = REF[key]
    res = lmm.lmer(ref["formula"], sleep, REML=ref["reml"], weights=ref["weights"],
                   offset=ref["offset"])
    np.testing.assert_allclose(residuals(res)[:5], ref["resid_response_head"], atol=1e-4)
    np.testing.assert_allclose(residuals(res, "pearson")[:5], ref["resid_pearson_head"],
                               atol=1e-4)
    np.testing.assert_allclose(weighted_residuals(res)[:5], ref["weighted_resid_head"],
                               atol=1e-4)
    scaled = residuals(res, "pearson", scaled=True)
    np.testing.assert_allclose(scaled * math.sqrt(res.scale), residuals(res, "pearson"),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="type must be one of"):
        residuals(res, "deviance!")


def test_weighted_fit_is_invariant_to_covariate_shifts_and_units(sleep):
    """Centring at the weighted means is an exact reparametrization: Days + 1e6
    (and Days in minutes) give the same slope, cov_re (mapped) and llf."""
    f = "Reaction ~ Days + (Days | Subject)"
    ref = lmm.lmer(f, sleep, weights="w", offset="o")
    shifted = lmm.lmer(f, sleep.assign(Days=sleep["Days"] + 1e6), weights="w", offset="o")
    assert shifted.llf == pytest.approx(ref.llf, abs=1e-7)
    assert shifted.fe_params["Days"] == pytest.approx(ref.fe_params["Days"], rel=1e-8)
    assert shifted.cov_re.iloc[1, 1] == pytest.approx(ref.cov_re.iloc[1, 1], rel=1e-6)
    minutes = lmm.lmer(f, sleep.assign(Days=sleep["Days"] * 1440.0), weights="w",
                       offset="o")
    assert minutes.fe_params["Days"] * 1440.0 == pytest.approx(ref.fe_params["Days"],
                                                               rel=1e-8)
    # (REML: log|X'V^-1 X| grows by 2 log(1440) with the units of one column)
    assert minutes.llf == pytest.approx(ref.llf - math.log(1440.0), abs=1e-6)


def test_fit_many_with_per_response_weights_matches_one_fit_per_response(sleep):
    """A weight matrix (limma's voom weights): each response with its own weights,
    zeros and missing values dropped per response, as lmer(..., weights=) does."""
    rng = np.random.default_rng(2)
    y = pd.DataFrame(sleep["Reaction"].to_numpy()[:, None]
                     + 20 * rng.normal(size=(len(sleep), 3)), columns=list("abc"))
    w = rng.uniform(0.2, 3.0, size=(len(sleep), 3))
    w[5, 1] = 0.0
    y.iloc[7, 2] = np.nan
    f = "Days + (Days | Subject)"
    res = lmm.fit_many("~ " + f, sleep, y, weights=w, progress=False)
    assert res.python_path == ["a", "b", "c"]
    for j, name in enumerate(y):
        keep = y[name].notna().to_numpy() & (w[:, j] > 0)
        ref = lmm.lmer(f"{name} ~ {f}", sleep.assign(**{name: y[name]})[keep],
                       weights=w[keep, j])
        row = res.table.loc[name]
        assert row["llf"] == pytest.approx(ref.llf, abs=1e-8)
        assert row["nobs"] == keep.sum()
        assert row["Days"] == pytest.approx(ref.fe_params["Days"], rel=1e-10)
        assert row["(Intercept)_se"] == pytest.approx(ref.bse_fe.iloc[0], rel=1e-8)
        assert res.results(name).llf == pytest.approx(ref.llf, abs=1e-8)


def test_kenward_roger_of_a_weighted_fit_is_that_of_the_rows_scaled_by_root_w(sleep):
    """V = Z G Z' + s2 W^-1 is W^-1/2 (Z* G Z*' + s2 I) W^-1/2 with Z* = W^1/2 Z:
    Kenward-Roger's adjusted covariance and df of the weighted fit are those of the
    unweighted model of the scaled rows (whose random effects are slopes on sqrt(w)).
    (pbkrtest itself ignores prior weights.)"""
    res = lmm.lmer("Reaction ~ Days + (Days | Subject)", sleep, weights="w")
    root = np.sqrt(sleep["w"].to_numpy(float))[:, None]
    x = np.column_stack([np.ones(len(sleep)), sleep["Days"]]) * root
    scaled = lmm.MixedLM(sleep["Reaction"].to_numpy() * root[:, 0], x,
                         sleep["Subject"].to_numpy(), exog_re=x).fit()
    assert scaled.llf + 0.5 * np.log(sleep["w"]).sum() == pytest.approx(res.llf, abs=1e-8)
    got = res.coef_table(ddf="kenward-roger")
    want = scaled.coef_table(ddf="kenward-roger")
    np.testing.assert_allclose(got[["std_error", "df"]].to_numpy(),
                               want[["std_error", "df"]].to_numpy(), rtol=1e-6)


def test_predict_on_new_data_reads_an_offset_given_by_name(sleep):
    """lme4: an offset named in the call or written as offset() is part of the model
    frame, so predict(newdata) evaluates it on the new rows; given as values it must
    be passed."""
    f = "Reaction ~ Days + (Days | Subject)"
    shifted = lmm.lmer(f, sleep.assign(Reaction=sleep["Reaction"] - sleep["o"]))
    new = sleep.iloc[[0, 15, 70]].assign(o=[1.0, -2.0, 3.5])
    want = shifted.predict(new) + new["o"]
    for res in (lmm.lmer(f, sleep, offset="o"),
                lmm.lmer("Reaction ~ Days + offset(o) + (Days | Subject)", sleep),
                lmm.mixedlm("Reaction ~ Days", sleep, groups="Subject", re_formula="~Days",
                            offset="o").fit()):
        got = res.predict(new, re_form=None) if res.model.lmer_formula is None \
            else res.predict(new)
        np.testing.assert_allclose(got, want, rtol=1e-7)
    res = lmm.lmer(f, sleep, offset=sleep["o"].to_numpy())
    with pytest.raises(ValueError, match="offset="):
        res.predict(new)
    np.testing.assert_allclose(res.predict(new, offset=new["o"]), want, rtol=1e-7)
    # the model's own rows have their offset: one passed without new rows is refused,
    # not silently ignored
    np.testing.assert_allclose(res.predict(), res.fittedvalues, rtol=1e-12)
    with pytest.raises(TypeError, match="newdata"):
        res.predict(offset=sleep["o"])
