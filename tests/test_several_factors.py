"""Several grouping factors (crossed, nested, interaction groupings) against lme4
and against a dense brute-force likelihood.

References: tests/data/lme4_multi.json, made by tests/data/lme4_multi_ref.R
(lme4 1.1-31, best of five optimizers) on the CSV files beside it.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmm
from lmm.covariance import CovarianceStructure
from lmm.several_factors import MultiTermModel
from lmm.terms import Term

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "lme4_multi.json").read_text())
CASES = sorted(k for k, v in REF.items() if isinstance(v, dict))


def _key(group):
    """lme4 names (1 | batch/cask)'s second term cask:batch, lmm batch:cask."""
    return tuple(sorted(group.split(":")))


def _fit(case):
    import warnings

    from lmm.exceptions import SingularFitWarning

    ref = REF[case]
    data = pd.read_csv(DATA / f"{ref['data']}.csv")
    formula = ref["formula"]
    if ref["data"] == "cake":   # temperature is a factor in the reference
        formula = formula.replace("temperature", "C(temperature)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SingularFitWarning)
        res = lmm.lmer(formula, data, REML=ref["reml"])
    singular = any(issubclass(w.category, SingularFitWarning) for w in caught)
    # the singular-fit warning exactly when lme4 finds the fit singular
    assert singular == bool(ref["best"]["singular"]) == res.is_singular, case
    return res, ref["best"]


@pytest.fixture(scope="module")
def fits():
    return {case: _fit(case) for case in CASES}


@pytest.mark.parametrize("case", CASES)
def test_loglik_and_fixed_effects(case, fits):
    res, best = fits[case]
    assert res.llf >= best["loglik"] - 1e-6
    assert res.llf <= best["loglik"] + 1e-3
    expected = np.array(list(best["fixef"].values()))
    np.testing.assert_allclose(res.fe_params.to_numpy(), expected, rtol=1e-5,
                               atol=1e-8 * np.abs(expected).max())
    np.testing.assert_allclose(res.bse_fe.to_numpy(), list(best["se"].values()), rtol=1e-4)


@pytest.mark.parametrize("case", CASES)
def test_variance_components(case, fits):
    res, best = fits[case]
    vc = res.varcorr()
    ref = pd.DataFrame(best["varcorr"])
    assert len(vc) == len(ref)
    for _, row in ref.iterrows():
        if row["grp"] == "Residual":
            got = vc[vc["grp"] == "Residual"]["vcov"].iloc[0]
        else:
            base = row["grp"].split(".")[0]
            sel = vc[[_key(g.split(".")[0]) == _key(base) for g in vc["grp"]]]
            sel = sel[(sel["var1"] == row["var1"]) & (
                sel["var2"].isna() if pd.isna(row["var2"]) else sel["var2"] == row["var2"])]
            assert len(sel) == 1, row.to_dict()
            got = sel["vcov"].iloc[0]
        assert got == pytest.approx(row["vcov"], rel=1e-3, abs=1e-6 * ref["vcov"].abs().max())


@pytest.mark.parametrize("case", CASES)
def test_conditional_modes(case, fits):
    res, best = fits[case]
    ranef = res.ranef()
    for block in best["ranef"]:
        mine = next(v for g, v in ranef.items() if _key(g) == _key(block["group"]))
        labels = {_key(str(lab)): i for i, lab in enumerate(mine.index)}
        expected = np.array(block["values"], dtype=float).reshape(len(block["levels"]), -1)
        rows = [labels[_key(str(lev))] for lev in block["levels"]]
        got = mine.iloc[rows][block["names"]].to_numpy()
        scale = np.abs(expected).max(axis=0)
        np.testing.assert_allclose(got / scale, expected / scale, atol=1e-3)


def _dense_deviance(y, x, terms, lams, reml):
    """The profiled criterion from V = I + sum_k Z_k Lambda_k Lambda_k' Z_k' (dense)."""
    n, p = x.shape
    v = np.eye(n)
    for term, lam in zip(terms, lams):
        g = lam @ lam.T
        for lev in range(term.n_levels):
            rows = np.flatnonzero(term.codes == lev)
            zl = term.z[rows]
            v[np.ix_(rows, rows)] += zl @ g @ zl.T
    vi = np.linalg.inv(v)
    xvx = x.T @ vi @ x
    beta = np.linalg.solve(xvx, x.T @ vi @ y)
    r = y - x @ beta
    rss = r @ vi @ r
    nu = n - p if reml else n
    dev = np.linalg.slogdet(v)[1] + nu * (1 + np.log(2 * np.pi * rss / nu))
    return dev + (np.linalg.slogdet(xvx)[1] if reml else 0.0)


@pytest.fixture(params=["auto", "packed", "square"])
def storage(request, monkeypatch):
    """M's storage: as the engine chooses (packed when its envelope is narrow), or
    forced packed or dense square; every layout must give the same numbers."""
    from lmm import several_factors

    if request.param != "auto":
        monkeypatch.setattr(several_factors, "PACKED_MAX_FRACTION",
                            1.0 if request.param == "packed" else 0.0)
    return request.param


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
@pytest.mark.parametrize("layout", ["crossed", "nested", "vector_and_scalar", "three"])
def test_engine_matches_dense_brute_force(layout, reml, storage):
    rng = np.random.default_rng(4)
    n = 240
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = rng.normal(size=n) + x[:, 1]
    a = rng.integers(0, 15, n)
    if layout == "nested":
        b = a * 3 + rng.integers(0, 3, n)          # b within a
    else:
        b = rng.integers(0, 9, n)
    one = np.ones((n, 1))
    terms = [Term("a", a, list(range(15)), one, ["(Intercept)"], CovarianceStructure(1)),
             Term("b", np.unique(b, return_inverse=True)[1], list(np.unique(b)), one,
                  ["(Intercept)"], CovarianceStructure(1))]
    if layout == "vector_and_scalar":
        terms[0] = Term("a", a, list(range(15)), x.copy(), ["(Intercept)", "x"],
                        CovarianceStructure(2))
    if layout == "three":
        c = rng.integers(0, 5, n)
        terms.append(Term("c", c, list(range(5)), x.copy(), ["(Intercept)", "x"],
                          CovarianceStructure(2, [[0], [1]])))
    _check_against_dense(MultiTermModel(y, x, terms, ["Intercept", "x"]), y, x, reml, rng)


def _check_against_dense(model, y, x, reml, rng):
    theta = rng.uniform(0.2, 1.5, model.n_theta)
    for t, sl in zip(model.terms, model.theta_slices):
        off = t.structure.theta_rows != t.structure.theta_cols
        theta[sl][off] = rng.normal(size=off.sum()) * 0.3
    lams = model._lams(theta)
    expected = _dense_deviance(y, x, model.terms, lams, reml)
    assert model.deviance(theta, reml) == pytest.approx(expected, rel=1e-10)
    # the fit's estimates from the factor left in place: beta by generalized least squares
    sol = model.solution(theta, reml)
    v = np.eye(len(y))
    for term, lam in zip(model.terms, lams):
        zg = term.z @ lam
        for lev in range(term.n_levels):
            rows = np.flatnonzero(term.codes == lev)
            v[np.ix_(rows, rows)] += zg[rows] @ zg[rows].T
    vi = np.linalg.inv(v)
    beta = np.linalg.solve(x.T @ vi @ x, x.T @ vi @ y)
    np.testing.assert_allclose(sol["fe_params"], beta, rtol=1e-9)
    # modes: b = G Z' V^-1 (y - X beta) per term
    r = vi @ (y - x @ beta)
    for term, lam, modes in zip(model.terms, lams, sol["modes"]):
        g = lam @ lam.T
        expected_modes = np.array([g @ term.z[term.codes == lev].T @ r[term.codes == lev]
                                   for lev in range(term.n_levels)])
        np.testing.assert_allclose(modes, expected_modes, rtol=1e-7, atol=1e-10)
    # conditional covariances (lme4's condVar): scale Lambda (A^-1)_ll Lambda' with
    # A = Lambda'Z'Z Lambda + I over every term's effects, from the dense Z
    blocks, columns = [], 0
    for term, lam in zip(model.terms, lams):
        q = term.z.shape[1]
        zk = np.zeros((len(y), term.n_levels * q))
        for j in range(q):
            zk[np.arange(len(y)), term.codes * q + j] = term.z[:, j]
        blocks.append((zk @ np.kron(np.eye(term.n_levels), lam), columns, q, lam))
        columns += term.n_levels * q
    zl = np.hstack([b[0] for b in blocks])
    a_inv = np.linalg.inv(zl.T @ zl + np.eye(columns))
    condvar = model.conditional_covariances(theta, reml)
    for (_, start, q, lam), term, got in zip(blocks, model.terms, condvar):
        want = np.array([sol["scale"] * lam @ a_inv[start + lev * q:start + (lev + 1) * q,
                                                      start + lev * q:start + (lev + 1) * q]
                         @ lam.T for lev in range(term.n_levels)])
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
@pytest.mark.parametrize("layout", ["crossed", "nested"])
def test_large_other_terms_match_dense_brute_force(layout, reml, storage):
    # more than LOOP_CHOLESKY_ORDER other effects: crossed, M is dense and goes to
    # LAPACK; nested, M is block-diagonal but for the fixed-effects rows and the
    # envelope loops factor it
    rng = np.random.default_rng(7)
    n = 900
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = rng.normal(size=n) + x[:, 1]
    if layout == "crossed":
        a = rng.integers(0, 220, n)
        b = rng.integers(0, 180, n)
    else:
        b = rng.integers(0, 180, n)                 # 180 schools
        a = b * 2 + rng.integers(0, 2, n)           # 360 classes within them
    one = np.ones((n, 1))
    codes_a, codes_b = np.unique(a, return_inverse=True)[1], np.unique(b, return_inverse=True)[1]
    terms = [Term("a", codes_a, list(range(codes_a.max() + 1)), one, ["(Intercept)"],
                  CovarianceStructure(1)),
             Term("b", codes_b, list(range(codes_b.max() + 1)), x.copy(), ["(Intercept)", "x"],
                  CovarianceStructure(2))]
    model = MultiTermModel(y, x, terms, ["Intercept", "x"])
    assert model.m > 160
    packed = model._criterion.packed
    assert packed == (storage == "packed" or (storage == "auto" and layout == "nested"))
    _check_against_dense(model, y, x, reml, rng)


def test_one_factor_through_the_multi_engine_equals_the_core(dietox):
    codes, labels = pd.factorize(dietox["Pig"], sort=True)
    x = np.column_stack([np.ones(len(dietox)), dietox["Time"]])
    term = Term("Pig", codes, list(labels), x.copy(), ["(Intercept)", "Time"],
                CovarianceStructure(2))
    model = MultiTermModel(dietox["Weight"].to_numpy(float), x, [term], ["Intercept", "Time"])
    core = lmm.lmer("Weight ~ Time + (1 + Time | Pig)", dietox)
    assert model.deviance(core.theta) == pytest.approx(-2 * core.llf, rel=1e-12)
    res = model.fit()
    assert res.llf == pytest.approx(core.llf, abs=1e-6)


def test_errors(dietox):
    df = dietox.assign(one="x", row=np.arange(len(dietox)))
    with pytest.raises(ValueError, match="only one level"):
        lmm.lmer("Weight ~ Time + (1 | Pig) + (1 | one)", df)
    with pytest.raises(ValueError, match="unidentifiable"):
        lmm.lmer("Weight ~ Time + (1 | Pig) + (1 | row)", df)
    bad = dietox.assign(Litter=dietox["Litter"].astype(float))
    bad.loc[3, "Litter"] = np.nan
    with pytest.raises(ValueError, match=r"missing values .*'Litter'.*\(1 \| Litter\)"):
        lmm.lmer("Weight ~ Time + (1 | Pig) + (1 | Litter)", bad)
    bad = dietox.assign(Time=dietox["Time"].astype(float))
    bad.loc[5, "Time"] = np.nan
    with pytest.raises(ValueError, match=r"missing values .*\['Time'\]"):
        lmm.lmer("Weight ~ Time + (1 | Pig) + (1 | Litter)", bad)


def test_lrtest_between_one_and_two_factors():
    data = pd.read_csv(DATA / "penicillin.csv")
    full = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", data)
    small = lmm.lmer("diameter ~ 1 + (1 | plate)", data)
    r = lmm.lrtest(small, full)
    assert r.df == 1
    assert full.llf == pytest.approx(REF["penicillin_crossed_reml"]["best"]["loglik"], abs=1e-6)
    assert r.statistic == pytest.approx(2 * (full.llf - small.llf))
    assert np.isfinite(r.pvalue_mixture)


def test_summary_lists_every_term(fits):
    res, best = fits["pastes_nested_reml"]
    text = str(res.summary())
    assert f"REML criterion at convergence: {best['criterion']:.1f}" in text
    assert "batch:cask" in text and "Residual" in text and "None" not in text
    assert "Number of obs: 60, groups:  batch:cask, 30; batch, 10" in text


def test_predict_new_data_and_new_levels():
    data = pd.read_csv(DATA / "multi_crossed_sim.csv", dtype={"g1": str, "g2": str})
    res = lmm.lmer("y ~ x + (1 + x | g1) + (1 | g2)", data)
    own = res.predict(include_re=True)
    np.testing.assert_allclose(res.predict(data, include_re=True), own, rtol=1e-12)
    np.testing.assert_allclose(res.predict(data), res.predict(), rtol=1e-12)
    # a new level of g1 gets no g1 effect; g2's effect stays
    new = data.iloc[:5].assign(g1="never-seen")
    got = res.predict(new, include_re=True)
    fe = res.fe_params.to_numpy()
    b2 = res.ranef()["g2"]
    expected = fe[0] + fe[1] * new["x"].to_numpy() + b2.loc[new["g2"], "(Intercept)"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_statsmodels_vc_formula_nested_equals_lme4_syntax():
    import lmm.formula.api as smf

    data = pd.read_csv(DATA / "pastes.csv", dtype={"batch": str, "cask": str})
    vc = smf.mixedlm("strength ~ 1", data, groups="batch", re_formula="1",
                     vc_formula={"cask": "0 + C(cask)"}).fit()
    lme4_syntax = lmm.lmer("strength ~ 1 + (1 | batch/cask)", data)
    assert vc.llf == pytest.approx(lme4_syntax.llf, abs=1e-8)
    assert vc.llf >= REF["pastes_nested_reml"]["best"]["loglik"] - 1e-6
    assert vc.vcomp[0] == pytest.approx(lme4_syntax.cov_re["batch:cask"].iloc[0, 0], rel=1e-6)


def test_statsmodels_crossed_idiom_is_fitted_as_crossed_factors():
    """statsmodels' documentation fits crossed effects as variance components of
    one all-rows group; lmm recognizes it and fits (1 | plate) + (1 | sample)."""
    import lmm.formula.api as smf

    data = pd.read_csv(DATA / "penicillin.csv", dtype={"plate": str, "sample": str})
    data["group"] = 1
    vc = smf.mixedlm("diameter ~ 1", data, groups="group", re_formula="0",
                     vc_formula={"plate": "0 + C(plate)", "sample": "0 + C(sample)"}).fit()
    assert sorted(t.n_levels for t in vc.model.terms) == [6, 24]   # not one giant group
    lme4_syntax = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", data)
    assert vc.llf == pytest.approx(lme4_syntax.llf, abs=1e-8)
    ref = REF["penicillin_crossed_reml"]["best"]
    assert vc.llf >= ref["loglik"] - 1e-6
    np.testing.assert_allclose(vc.vcomp, ref["varcorr"]["vcov"][:2], rtol=1e-4)


def test_unsupported_vc_formula_is_a_clear_error():
    import lmm.formula.api as smf

    data = pd.read_csv(DATA / "pastes.csv", dtype={"batch": str, "cask": str})
    with pytest.raises(NotImplementedError, match="not of the form"):
        smf.mixedlm("strength ~ 1", data, groups="batch",
                    vc_formula={"cask": "0 + C(cask):strength"})


@pytest.mark.parametrize("case", [c for c in CASES if c.endswith("_reml")])
def test_conditional_sds_match_lme4(case, fits):
    """lme4's ranef(condVar = TRUE) conditional standard deviations (ranef_df.condsd)."""
    res, best = fits[case]
    cov = res.random_effects_cov
    table = pd.DataFrame(best["ranef_df"])
    for grpvar, term_name, level, sd in zip(table["grpvar"], table["term"], table["grp"],
                                            table["condsd"]):
        group = next(g for g in cov if _key(g.split(".")[0]) == _key(grpvar))
        term = next(t for t in res.model.terms if t.group == group)
        row = [_key(str(lab)) for lab in term.labels].index(_key(str(level)))
        j = term.names.index(term_name)
        assert np.sqrt(cov[group][row, j, j]) == pytest.approx(sd, rel=1e-4)


@pytest.mark.parametrize("column", ["x", "y", "g2"])
def test_missing_drop_equals_the_fit_on_the_kept_rows(column):
    data = pd.read_csv(DATA / "multi_crossed_sim.csv", dtype={"g1": str, "g2": str})
    formula = "y ~ x + (1 + x | g1) + (1 | g2)"
    holed = data.copy()
    holed.loc[[3, 50, 777], column] = None
    with pytest.raises(ValueError, match="missing"):
        lmm.lmer(formula, holed)
    dropped = lmm.lmer(formula, holed, missing="drop")
    kept = lmm.lmer(formula, data.drop(index=[3, 50, 777]))
    assert dropped.nobs == len(data) - 3
    assert dropped.llf == pytest.approx(kept.llf, abs=1e-9)
    np.testing.assert_allclose(dropped.fe_params, kept.fe_params, rtol=1e-8)
    # a formula that needs patsy (a function of a column) drops the same rows
    patsy_fit = lmm.lmer("y ~ np.multiply(x, 1) + (1 + x | g1) + (1 | g2)", holed,
                         missing="drop")
    assert patsy_fit.llf == pytest.approx(kept.llf, abs=1e-9)


def test_interaction_grouping_codes_match_the_string_definition():
    # "a:b" means the distinct strings f"{a}:{b}", sorted as strings
    from lmm.formula.design import factor_codes

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.choice(["a1", "a10", "a2", "b"], 300),
                       "b": rng.integers(0, 12, 300), "c": rng.choice([1.5, 2.0, 10.0], 300)})
    for group in ["a:b", "b:a", "a:b:c"]:
        strings = [":".join(str(row[c]) for c in group.split(":")) for _, row in df.iterrows()]
        labels = sorted(set(strings))
        codes, got = factor_codes(df, group)
        assert got == labels
        np.testing.assert_array_equal(codes, [labels.index(s) for s in strings])


def test_pair_sums_against_numpy():
    from lmm import _core, _several_factors

    rng = np.random.default_rng(1)
    for n, na, nb, qa, qb in [(1000, 30, 50, 1, 1), (5000, 7, 400, 2, 1), (300, 100, 20, 1, 2)]:
        ca = rng.integers(0, na, n).astype(np.intp)
        cb = rng.integers(0, nb, n).astype(np.intp)
        za, zb = rng.normal(size=(n, qa)), rng.normal(size=(n, qb))
        _, offsets, order = _core.group_blocks(ca, na)
        pair_offsets, level_b, values = _several_factors.pair_sums(order, offsets, cb, nb, za, zb)
        pairs = sorted(set(zip(ca, cb)))
        np.testing.assert_array_equal(np.repeat(np.arange(na), np.diff(pair_offsets)),
                                      [p[0] for p in pairs])
        np.testing.assert_array_equal(level_b, [p[1] for p in pairs])
        for k, (i, j) in enumerate(pairs):
            rows = (ca == i) & (cb == j)
            np.testing.assert_allclose(values[k], zb[rows].T @ za[rows], rtol=1e-12)
    _, offsets, order = _core.group_blocks(np.array([0, 1], dtype=np.intp), 2)
    with pytest.raises(ValueError, match="codes_b"):
        _several_factors.pair_sums(order, offsets, np.array([0, -1], dtype=np.intp), 2,
                         np.ones((2, 1)), np.ones((2, 1)))


CONFINT = json.loads((DATA / "lme4_multi_confint.json").read_text())


@pytest.mark.parametrize("case", sorted(CONFINT))
def test_profile_intervals_match_lme4(case):
    """lme4's confint(method = "profile") (tests/data/lme4_multi_confint.R): lme4
    interpolates its profile by splines, so agreement is to about 1e-5."""
    ref = CONFINT[case]
    data = pd.read_csv(DATA / f"{ref['data']}.csv", dtype={f: str for f in ref["factors"]})
    ci = lmm.lmer(ref["formula"], data).conf_int_re()
    assert len(ci) == len(ref["names"])
    for name, lower, upper in zip(ref["names"], ref["lower"], ref["upper"]):
        ours = name.replace("cask:batch", "batch:cask")       # lme4 names a/b as b:a
        assert ci.loc[ours, "lower"] == pytest.approx(lower, rel=1e-4, abs=1e-6), name
        assert ci.loc[ours, "upper"] == pytest.approx(upper, rel=1e-4, abs=1e-6), name
    assert np.all(ci["lower"] <= ci["estimate"]) and np.all(ci["estimate"] <= ci["upper"])


def test_profile_interval_ends_are_where_the_ml_profile_crosses_the_cutoff():
    # independent of the interval code: at each end of sd(sample), maximize the ML
    # likelihood over the other sd and sigma with scipy (Powell) and compare the
    # rise of the deviance with the chi-square quantile
    from scipy import optimize, stats

    data = pd.read_csv(DATA / "penicillin.csv", dtype={"plate": str, "sample": str})
    fit = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", data)
    ci = fit.conf_int_re()
    ml = fit.model.fit(reml=False)
    crit = fit.model.criterion
    n = fit.nobs
    order = [t.group for t in fit.model.terms]

    def deviance(sd_plate, sd_sample, sigma):
        sds = {"plate": sd_plate, "sample": sd_sample}
        theta = np.array([sds[g] / sigma for g in order])
        dev = crit.deviance(theta, False)
        logdet = dev - n * (1 + np.log(2 * np.pi * crit.rss / n))
        return logdet + n * np.log(2 * np.pi * sigma ** 2) + crit.rss / sigma ** 2

    dev_min = -2 * ml.llf
    for end in ("lower", "upper"):
        sd = ci.loc["sd_(Intercept)|sample", end]
        best = optimize.minimize(lambda u, sd=sd: deviance(np.exp(u[0]), sd, np.exp(u[1])),
                                 np.log([0.85, 0.55]), method="Powell",
                                 options=dict(xtol=1e-10, ftol=1e-14))
        assert best.fun - dev_min == pytest.approx(stats.chi2.ppf(0.95, 1), abs=1e-6)


def test_statsmodels_style_summary_lists_every_term():
    data = pd.read_csv(DATA / "multi_crossed_sim.csv", dtype={"g1": str, "g2": str})
    res = lmm.lmer("y ~ x + (1 + x | g1) + (1 | g2)", data)
    text = str(res.summary(style="statsmodels"))
    cov_g1 = res.cov_re["g1"].to_numpy()
    rows = {r.split("  ")[0].strip(): r for r in text.splitlines()}
    assert rows["g1 Var"].split()[2] == f"{cov_g1[0, 0]:.3f}"
    assert rows["g1 x x Cov"].split()[4] == f"{cov_g1[1, 0]:.3f}"
    assert rows["g1 x Var"].split()[3] == f"{cov_g1[1, 1]:.3f}"
    assert rows["g2 Var"].split()[2] == f"{res.cov_re['g2'].iloc[0, 0]:.3f}"
    assert "No. Groups (g1):" in text and "No. Groups (g2):" in text
    assert rows["x"].split()[1] == f"{res.fe_params['x']:.3f}"
    with pytest.raises(ValueError, match="style"):
        res.summary(style="R")


def test_model_built_directly_checks_its_arrays():
    rng = np.random.default_rng(0)
    n = 100
    a, b, one = rng.integers(0, 10, n), rng.integers(0, 5, n), np.ones((n, 1))
    x = np.ones((n, 1))
    y = rng.normal(size=n) + rng.normal(size=10)[a] + 2 * rng.normal(size=5)[b]

    def build(y=y, ca=a, za=one):
        terms = [Term("a", ca, list(range(10)), za, ["(Intercept)"], CovarianceStructure(1)),
                 Term("b", b, list(range(5)), one, ["(Intercept)"], CovarianceStructure(1))]
        return MultiTermModel(y, x, terms, ["Intercept"])

    for kwargs, message in [
        (dict(za=np.ones((50, 1))), "one code and one row"),
        (dict(ca=a[:50]), "one code and one row"),
        (dict(ca=np.where(a == 0, 12, a)), r"codes of 'a' must lie in \[0, 10\)"),
        (dict(ca=np.where(a == 0, -1, a)), r"codes of 'a' must lie in \[0, 10\)"),
        (dict(y=y[:50]), "one row per observation"),
        (dict(y=np.where(np.arange(n) == 3, np.nan, y)), "finite"),
        (dict(za=np.ones((n, 2))), "2 design columns"),
    ]:
        with pytest.raises(ValueError, match=message):
            build(**kwargs)
    assert np.isfinite(build().fit().llf)


def test_fixed_effects_inference_from_the_reference_covariance(fits):
    # lme4's vcov(m) of the best fit is the oracle for cov_params and the standard errors
    for case in ["penicillin_crossed_reml", "sim_crossed_corr_ml"]:
        res, best = fits[case]
        vcov = np.array(best["vcov"], dtype=float).reshape(len(res.fe_params), -1)
        np.testing.assert_allclose(res.cov_params().to_numpy(), vcov, rtol=2e-4)
        se = np.sqrt(np.diag(vcov))
        np.testing.assert_allclose(res.bse.to_numpy(), se, rtol=2e-4)
        np.testing.assert_allclose(res.tvalues.to_numpy(), res.fe_params.to_numpy() / se,
                                   rtol=2e-4)
        ci = res.conf_int(alpha=0.1)
        np.testing.assert_allclose(ci[1] - ci[0], 2 * 1.6448536269514722 * res.bse_fe,
                                   rtol=1e-12)
        z = np.abs(res.tvalues.to_numpy())
        from scipy import stats
        np.testing.assert_allclose(res.pvalues.to_numpy(), 2 * stats.norm.sf(z), rtol=1e-12)
        assert res.fixef().equals(res.fe_params) and res.params is res.fe_params


def test_no_fixed_effects_matches_lme4():
    # lme4: lmer(diameter ~ 0 + (1|plate) + (1|sample), Penicillin) gives logLik -181.4758
    # (df = 3) and theta (1.539741, 41.882941) (R 4.2.2, lme4 1.1-31)
    data = pd.read_csv(DATA / "penicillin.csv", dtype={"plate": str, "sample": str})
    res = lmm.lmer("diameter ~ 0 + (1 | plate) + (1 | sample)", data)
    assert res.llf == pytest.approx(-181.4758, abs=5e-5)
    order = [t.group for t in res.model.terms]
    theta = dict(zip(order, res.theta))
    assert theta["plate"] == pytest.approx(1.539741, rel=1e-4)
    assert theta["sample"] == pytest.approx(41.882941, rel=1e-4)
    assert len(res.fe_params) == 0 and "No fixed effect coefficients" in str(res.summary())
    # one grouping factor (the core): lmer(diameter ~ 0 + (1|plate)) gives logLik
    # -384.743419801 and theta 11.43923351, by REML and by ML alike (nothing to restrict)
    one = lmm.lmer("diameter ~ 0 + (1 | plate)", data)
    assert one.llf == pytest.approx(-384.743419801, abs=1e-6)
    assert one.cov_re.iloc[0, 0] / one.scale == pytest.approx(11.43923351 ** 2, rel=1e-6)
    assert lmm.lmer("diameter ~ 0 + (1 | plate)", data, REML=False).llf == pytest.approx(
        -384.743419801, abs=1e-6)
    zero = data.assign(z=0.0)
    with pytest.raises(ValueError, match=r"rank deficient: columns \['z'\] are all zero"):
        lmm.lmer("diameter ~ z + (1 | plate) + (1 | sample)", zero)


FIXEF_CONFINT = json.loads((DATA / "lme4_multi_fixef_confint.json").read_text())


@pytest.mark.parametrize("case", sorted(k for k in FIXEF_CONFINT if k != "versions"))
@pytest.mark.parametrize("level", [0.95, 0.90])
def test_fixed_effect_profile_intervals_match_lme4(case, level):
    """conf_int(method='profile') of crossed and nested fits: lme4's confint(parm =
    "beta_", method = "profile") (tests/data/lme4_multi_fixef_confint.R; lme4 refits by
    ML and interpolates its profile by splines)."""
    ref = FIXEF_CONFINT[case]
    data = pd.read_csv(DATA / f"{ref['data']}.csv", dtype={f: str for f in ref["factors"]})
    res = lmm.lmer(ref["formula"], data)
    assert res.model.fit(reml=False).llf == pytest.approx(ref["ml_loglik"], abs=1e-6)
    rows = ref[f"confint_{round(100 * level)}"]
    names, lower, upper = (np.atleast_1d(rows[k]) for k in ("names", "lower", "upper"))
    ci = res.conf_int(alpha=1 - level, method="profile")
    ours = list(names)                  # (lme4-style fits carry R's names)
    np.testing.assert_allclose(ci.loc[ours].iloc[:, 0], lower, rtol=1e-5)
    np.testing.assert_allclose(ci.loc[ours].iloc[:, 1], upper, rtol=1e-5)


def test_summary_prints_lme4s_random_effects_table():
    """The random-effects block of summary() is lme4's, as R prints it
    (tests/data/lme4_summary_ranef.json, made by tests/data/lme4_summary_ranef_ref.R):
    the same rows and numbers; lmm names an interaction in the formula's order."""
    ref = json.loads((DATA / "lme4_summary_ranef.json").read_text())
    for name, case in ref.items():
        text = str(lmm.lmer(case["formula"], pd.read_csv(DATA / f"{name}.csv")).summary())
        lines = text.splitlines()
        start = lines.index("Random effects:") + 1
        stop = next(i for i, ln in enumerate(lines) if ln.startswith("Number of obs:"))

        def token(t):
            word = t.rstrip(",;")
            return (_key(word), t[len(word):]) if ":" in word.strip(":") else t

        def tokens(rows):
            return [[token(t) for t in row.split()] for row in rows]

        assert tokens(lines[start:stop]) == tokens(case["table"]), name
        assert tokens([lines[stop]]) == tokens([case["groups_line"]]), name
