"""Prior weights and offsets with several grouping factors (issue 19).

References: lme4 fits in tests/data/lme4_multi_weights.json (made by
tests/data/lme4_multi_weights.R: crossed intercepts, nested, crossed with a correlated
slope; REML and ML), a dense numpy evaluation of the weighted likelihood
(V = Z G Z' + s2 W^-1), closed forms for constant weights, and the same model with its
rows scaled by sqrt(w) fitted without weights.
"""

import json
import math
import pathlib

import numpy as np
import pandas as pd
import pytest

import lmm

DATA = pathlib.Path(__file__).parent / "data"
REF = json.loads((DATA / "lme4_multi_weights.json").read_text())
CASES = [k for k in REF if k != "versions"]
FACTORS = {"penicillin": ["plate", "sample"], "pastes": ["batch", "cask", "sample"],
           "multi_crossed_sim": ["g1", "g2"]}


def _data(name):
    d = pd.read_csv(DATA / f"{name}.csv", dtype={f: str for f in FACTORS[name]})
    i = np.arange(len(d))
    return d.assign(w=1.0 + i % 3, w2=0.5 + (i % 4) / 2, o=0.1 * (i % 5))


def _theta_order(ref):
    """lme4's theta names -> lmm's order (terms by number of levels, as lme4)."""
    return [n.replace("cask:batch", "batch:cask") for n in ref["theta_names"]]


@pytest.mark.parametrize("case", CASES)
def test_weights_and_offsets_match_lme4(case):
    ref = REF[case]
    d = _data(ref["data"])
    kwargs = {"weights": ref["weights"]}
    if ref["offset"]:
        kwargs["offset"] = ref["offset"]
    res = lmm.lmer(ref["formula"], d, REML=ref["reml"], **kwargs)
    assert res.llf == pytest.approx(ref["loglik"], abs=1e-6)
    np.testing.assert_allclose(res.fe_params.to_numpy(), ref["fixef"], rtol=1e-5)
    np.testing.assert_allclose(np.sqrt(np.diag(res.vcov())), ref["se"], rtol=1e-4)
    np.testing.assert_allclose(res.theta, ref["theta"], rtol=1e-4, atol=1e-6)
    assert res.scale == pytest.approx(ref["sigma2"], rel=1e-4)
    np.testing.assert_allclose(res.fittedvalues.to_numpy()[:5], ref["fitted_head"],
                               rtol=1e-5)
    np.testing.assert_allclose(res.residuals(type="pearson").to_numpy()[:5],
                               ref["resid_pearson_head"], rtol=1e-4, atol=1e-6)


def _dense_loglik(y, x, zs, covs, scale, w, reml):
    n = len(y)
    v = scale * np.diag(1.0 / w)
    for z, cov in zip(zs, covs):
        v = v + z @ cov @ z.T
    vi = np.linalg.inv(v)
    xvx = x.T @ vi @ x
    beta = np.linalg.solve(xvx, x.T @ vi @ y)
    r = y - x @ beta
    ll = -0.5 * (np.linalg.slogdet(v)[1] + r @ vi @ r + n * math.log(2 * math.pi))
    if reml:
        ll += -0.5 * np.linalg.slogdet(xvx)[1] + 0.5 * x.shape[1] * math.log(2 * math.pi)
    return ll, beta


@pytest.mark.parametrize("reml", [True, False])
def test_weighted_llf_is_the_dense_gaussian_likelihood(reml):
    """At lmm's estimates, the dense likelihood with V = Z G Z' + s2 W^-1 (random
    weights, a crossed model with a correlated slope) equals lmm's llf, and its GLS
    beta lmm's fixed effects."""
    d = _data("multi_crossed_sim").iloc[:400]
    w = np.random.default_rng(3).uniform(0.2, 5.0, len(d))
    res = lmm.lmer("y ~ x + (1 + x | g1) + (1 | g2)", d, REML=reml, weights=w)
    y = d["y"].to_numpy(float)
    x = np.column_stack([np.ones(len(d)), d["x"]])
    zs, covs = [], []
    for term in res.model.terms:
        z = np.zeros((len(d), term.n_levels * term.q))
        for j in range(term.q):
            z[np.arange(len(d)), term.codes * term.q + j] = term.z[:, j]
        zs.append(z)
        covs.append(np.kron(np.eye(term.n_levels), res.cov_re[term.group].to_numpy()))
    ll, beta = _dense_loglik(y, x, zs, covs, res.scale, w, reml)
    assert res.llf == pytest.approx(ll, abs=1e-8)
    np.testing.assert_allclose(res.fe_params.to_numpy(), beta, rtol=1e-9)


@pytest.mark.parametrize("reml", [True, False])
def test_constant_weights_give_the_unweighted_model(reml):
    """Weights all c: V = Z G Z' + (scale / c) I is the unweighted model's, so the same
    fixed effects, cov_re and log-likelihood (the sum(log w) / 2 term cancels the
    scale's change), scale times c and theta / sqrt(c) (lme4 agrees: the one-factor
    references sleep_w3_* in tests/data/lme4_weights.json)."""
    d = _data("penicillin")
    f = "diameter ~ 1 + (1 | plate) + (1 | sample)"
    base = lmm.lmer(f, d, REML=reml)
    for c in (3.5, 1e-3):
        res = lmm.lmer(f, d, REML=reml, weights=np.full(len(d), c))
        # (two optimizations, each ending within its tolerance of the optimum)
        np.testing.assert_allclose(res.theta * math.sqrt(c), base.theta, rtol=3e-5)
        np.testing.assert_allclose(res.fe_params, base.fe_params, rtol=1e-8)
        for group in ("plate", "sample"):
            np.testing.assert_allclose(res.cov_re[group], base.cov_re[group], rtol=1e-4)
        assert res.scale == pytest.approx(base.scale * c, rel=1e-5)
        assert res.llf == pytest.approx(base.llf, abs=1e-7)


def test_zero_weights_drop_their_rows():
    d = _data("penicillin")
    w = d["w"].to_numpy().copy()
    w[[3, 17, 40]] = 0.0
    f = "diameter ~ 1 + (1 | plate) + (1 | sample)"
    res = lmm.lmer(f, d, weights=w)
    kept = lmm.lmer(f, d[w > 0], weights=w[w > 0])
    assert res.nobs == kept.nobs == len(d) - 3
    assert res.llf == pytest.approx(kept.llf, abs=1e-9)
    assert list(res.model.row_labels) == list(d.index[w > 0])


def test_weights_and_offsets_are_checked():
    d = _data("penicillin")
    f = "diameter ~ 1 + (1 | plate) + (1 | sample)"
    w = d["w"].to_numpy().copy()
    w[2] = -1
    with pytest.raises(ValueError, match="weights must be positive"):
        lmm.lmer(f, d, weights=w)
    w[2] = np.nan
    with pytest.raises(ValueError, match="missing values .* weights"):
        lmm.lmer(f, d, weights=w)
    res = lmm.lmer(f, d, weights=w, missing="drop")
    assert res.nobs == len(d) - 1
    with pytest.raises(ValueError, match="offset must have one value per row"):
        lmm.lmer(f, d, offset=np.ones(3))


def test_offset_terms_and_offset_keyword_agree_and_shift_the_response():
    """offset(o) in the formula is offset=o, and both are the fit of y - o."""
    d = _data("multi_crossed_sim")
    f = "y ~ x + (1 + x | g1) + (1 | g2)"
    a = lmm.lmer(f, d, offset="o", weights="w2")
    b = lmm.lmer("y ~ x + offset(o) + (1 + x | g1) + (1 | g2)", d, weights="w2")
    c = lmm.lmer(f, d.assign(y=d["y"] - d["o"]), weights="w2")
    for res in (b, c):
        assert res.llf == pytest.approx(a.llf, abs=1e-9)
        np.testing.assert_allclose(res.fe_params, a.fe_params, rtol=1e-9)
    np.testing.assert_allclose(a.fittedvalues - d["o"], c.fittedvalues, atol=1e-9)
    np.testing.assert_allclose(a.resid, c.resid, atol=1e-9)
    # new data: an offset given by name (or as offset() terms) is read from the new
    # rows; one given as values must be passed
    new = d.iloc[:4]
    for res in (a, b):
        np.testing.assert_allclose(res.predict(new), c.predict(new) + new["o"], atol=1e-9)
    by_values = lmm.lmer(f, d, offset=d["o"].to_numpy(), weights="w2")
    with pytest.raises(ValueError, match="offset="):
        by_values.predict(new)
    np.testing.assert_allclose(by_values.predict(new, offset=new["o"]),
                               c.predict(new) + new["o"], atol=1e-9)
    np.testing.assert_allclose(by_values.predict(), by_values.fittedvalues, atol=1e-9)
    with pytest.raises(TypeError, match="newdata"):
        by_values.predict(offset=d["o"])


def test_weighted_fit_keeps_its_digits_when_the_response_is_shifted():
    d = _data("multi_crossed_sim")
    f = "y ~ x + (1 + x | g1) + (1 | g2)"
    a = lmm.lmer(f, d, weights="w2")
    b = lmm.lmer(f, d.assign(y=d["y"] + 1e8), weights="w2")
    np.testing.assert_allclose(b.theta, a.theta, rtol=1e-6)
    assert b.fe_params["(Intercept)"] - 1e8 == pytest.approx(a.fe_params["(Intercept)"],
                                                          abs=1e-6)
    assert b.llf == pytest.approx(a.llf, abs=1e-6)


def test_kenward_roger_and_hat_values_are_those_of_the_rows_scaled_by_root_w():
    """With prior weights, V = Z G Z' + s2 W^-1 is W^-1/2 (Z* G Z*' + s2 I) W^-1/2 for
    Z* = W^1/2 Z: Kenward-Roger's adjusted covariance and df and the hat values are
    those of the unweighted model of the scaled rows (here built directly: its random
    effects are then slopes on sqrt(w))."""
    from lmm.several_factors import MultiTermModel
    from lmm.terms import Term

    d = _data("penicillin")
    res = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", d, weights="w")
    m = res.model
    root = np.sqrt(d["w"].to_numpy())
    terms = [Term(t.group, t.codes, t.labels, t.z * root[:, None], t.names, t.structure)
             for t in m.terms]
    scaled = MultiTermModel(m.endog * root, m.exog * root[:, None], terms,
                            m.exog_names).fit()
    np.testing.assert_allclose(scaled.theta, res.theta, rtol=1e-5)  # (two optimizations)
    want = scaled.coef_table(ddf="kenward-roger")
    got = res.coef_table(ddf="kenward-roger")
    np.testing.assert_allclose(got[["std_error", "df"]].to_numpy(),
                               want[["std_error", "df"]].to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(res.hat_values(), scaled.hat_values(), rtol=1e-5)


def test_satterthwaite_and_profile_run_on_weighted_crossed_fits():
    d = _data("penicillin")
    res = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", d, weights="w", offset="o")
    tab = res.coef_table()
    assert np.isfinite(tab["df"]).all()
    ci = res.conf_int(method="profile")
    est = res.fe_params["(Intercept)"]
    assert ci.loc["(Intercept)", 0] < est < ci.loc["(Intercept)", 1]


def test_simulate_draws_from_the_weighted_model_with_its_offset():
    """Simulated responses: mean X beta + offset, covariance Z G Z' + s2 W^-1, row by
    row (the residual variance of row i is s2 / w_i), to Monte Carlo error: with 4,000
    draws a variance's relative standard error is sqrt(2 / 4000) = 2.2%, a mean's
    sd / sqrt(4000); the bounds are 5 of those."""
    d = _data("penicillin")
    o = 3.0 * (np.arange(len(d)) % 2)             # an offset the mean must show
    res = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", d, weights="w", offset=o)
    nsim = 4000
    sims = res.simulate(nsim, seed=5)
    m = res.model
    var = res.scale / m.weights
    for term in m.terms:
        var = var + float(res.cov_re[term.group].iloc[0, 0])
    mean = res.fe_params["(Intercept)"] + o
    se_mean = np.sqrt(var / nsim)
    assert np.all(np.abs(sims.mean(axis=1) - mean) < 5 * se_mean)
    rel = sims.var(axis=1, ddof=1) / var - 1
    assert np.all(np.abs(rel) < 5 * np.sqrt(2 / nsim))
    # two rows on the same plate, other samples: covariance the plate variance
    same_plate = np.flatnonzero(m.terms[0].codes == m.terms[0].codes[0])[:2]
    cov = np.cov(sims[same_plate])[0, 1]
    v_plate = float(res.cov_re[m.terms[0].group].iloc[0, 0])
    assert abs(cov - v_plate) < 5 * np.sqrt(var[same_plate].prod() / nsim)


def test_bootstrap_of_a_weighted_crossed_fit_refits_the_weighted_model():
    """Each replicate is the weighted fit (with the offset) of its simulated response."""
    d = _data("penicillin")
    f = "diameter ~ 1 + (1 | plate) + (1 | sample)"
    res = lmm.lmer(f, d, weights="w", offset="o")
    boot = res.bootstrap(3, seed=2)
    y = res.simulate(3, seed=2)
    for r in range(3):
        direct = lmm.lmer(f, d.assign(diameter=y[:, r]), weights="w", offset="o")
        assert boot.replicates["(Intercept)"].iloc[r] == pytest.approx(
            direct.fe_params["(Intercept)"], rel=1e-7)
        assert boot.replicates["sigma"].iloc[r] == pytest.approx(
            math.sqrt(direct.scale), rel=1e-5)
