"""conf_int_re against lme4's confint(method = "profile").

References: tests/data/lme4_profile.json, made by tests/data/lme4_profile_ref.R
(lme4 1.1-31).  lme4 profiles the ML deviance for REML fits too (its notes
field quotes profile.merMod), which is lmm's default.  lme4 interpolates its
profile with splines; lmm finds the endpoints by root finding, so they agree
to about 1e-7.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, stats

import lmm

from seedcases import batched_loglik, dense_loglik

REF = json.loads((Path(__file__).parent / "data" / "lme4_profile.json").read_text())
CASES = [k for k in REF if k != "notes"]


def _fit(case, dietox, sitka):
    ref = REF[case]
    data = dietox if ref["data"] == "dietox" else sitka
    return lmm.lmer(ref["formula"], data, REML=ref["reml"])


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("level", [0.95, 0.90])
def test_profile_intervals_match_lme4(case, level, dietox, sitka):
    ref = REF[case]
    res = _fit(case, dietox, sitka)
    ci = res.conf_int_re(level=level)
    rows = {r["name"]: r for r in ref["confint_95" if level == 0.95 else "confint_90"]}
    checked = 0
    for name in ci.index:
        r = rows[name]
        for end in ("lower", "upper"):
            expected = r[end]
            # lme4 reports NA (failed inner fits) or a bound it did not reach
            # (Sitka's random slope, see the reference's notes): nothing to compare
            if expected is None or (end == "lower" and expected == 0):
                continue
            assert ci.loc[name, end] == pytest.approx(expected, rel=1e-5, abs=1e-6), \
                (name, end)
            checked += 1
    assert checked >= (1 if case == "sitka_rs_reml" else 2 * len(ci))
    # the rows lme4 lists, in lme4's order (fixed effects aside)
    assert list(ci.index) == [n for n in rows if "|" in n or n == "sigma"]


def test_variance_scale_columns(dietox):
    ci = lmm.lmer("Weight ~ Time + (1 + Time | Pig)", dietox).conf_int_re()
    sd_rows = ~ci.index.str.startswith("cor_")
    np.testing.assert_allclose(ci.loc[sd_rows, "var_lower"], ci.loc[sd_rows, "lower"] ** 2)
    assert ci.loc[~sd_rows, "var_lower"].isna().all()


def test_reml_criterion_option_brute_force(sitka):
    """criterion='REML': at each end of the interval for the tree sd, the REML
    deviance minimized over sigma (brute force, dense blocks) sits exactly at
    the cut-off above its minimum."""
    res = lmm.lmer("size ~ Time + (1 | tree)", sitka)
    ci = res.conf_int_re(criterion="REML")
    md = res.model
    y, x, z, g = md.endog, md.exog, md.exog_re, md.group_codes

    def profile_dev(sd):
        r = optimize.minimize_scalar(
            lambda log_s: -2 * dense_loglik(y, x, z, g, None, np.array([[sd**2]]),
                                            np.exp(2 * log_s), True),
            bracket=(np.log(0.15), np.log(0.25)), tol=1e-12)
        return r.fun

    dev_min = -2 * res.llf
    cut = stats.chi2.ppf(0.95, 1)
    for end in ("lower", "upper"):
        sd = ci.loc["sd_(Intercept)|tree", end]
        assert profile_dev(sd) - dev_min == pytest.approx(cut, abs=1e-6)
    assert ci.loc["sd_(Intercept)|tree", "estimate"] == pytest.approx(
        np.sqrt(res.cov_re.iloc[0, 0]))


def test_sitka_random_slope_where_lme4_fails(sitka):
    """lme4's profile of this fit fails (NA; see the reference notes).  lmm's
    intervals contain the estimates, the ends lme4 does find agree, and at the
    lower end of the correlation (where lme4's separate profile, -0.704, went
    astray) a brute-force constrained fit sits at the cut-off."""
    res = lmm.lmer("size ~ Time + (1 + Time | tree)", sitka)
    ci = res.conf_int_re()
    assert np.all(ci["lower"] < ci["estimate"]) and np.all(ci["estimate"] < ci["upper"])
    ref = REF["sitka_rs_reml"]
    upper = {r["name"]: r["upper"] for r in ref["confint_95"]}
    assert ci.loc["sd_(Intercept)|tree", "upper"] == pytest.approx(
        upper["sd_(Intercept)|tree"], rel=1e-5)
    separate = {r["name"]: r for r in ref["confint_95_separate"]}
    for name in ("sd_Time|tree", "sigma"):
        for end in ("lower", "upper"):
            assert ci.loc[name, end] == pytest.approx(separate[name][end], rel=1e-4)
    assert ci.loc["cor_Time.(Intercept)|tree", "upper"] == pytest.approx(
        separate["cor_Time.(Intercept)|tree"]["upper"], rel=1e-4)
    # brute force at the correlation's lower end: maximize the ML likelihood
    # over (sd_0, sd_1, sigma) with the correlation held there
    ml = res.model.fit(reml=False)
    loglik = batched_loglik(ml.model, reml=False)
    rho = ci.loc["cor_Time.(Intercept)|tree", "lower"]

    def neg2ll(log_params, rho=rho):
        sd0, sd1, sigma = np.exp(log_params)
        cov = np.array([[sd0**2, rho * sd0 * sd1], [rho * sd0 * sd1, sd1**2]])
        return -2 * loglik(cov, sigma**2)

    start = np.log([np.sqrt(ml.cov_re.iloc[0, 0]), np.sqrt(ml.cov_re.iloc[1, 1]),
                    np.sqrt(ml.scale)])
    best = optimize.minimize(neg2ll, start, method="Powell",
                             options=dict(xtol=1e-10, ftol=1e-13, maxfev=20000)).fun
    assert best - (-2 * ml.llf) == pytest.approx(stats.chi2.ppf(0.95, 1), abs=1e-4)


@pytest.fixture(scope="module")
def one_and_two_factor_fits(dietox):
    one = lmm.lmer("Weight ~ Time + (1 | Pig)", dietox)
    two = lmm.lmer("Weight ~ Time + (1 | Pig) + (1 | Litter)", dietox)
    return one, two


@pytest.mark.parametrize("level", [1.5, 1.0, 0.0, -0.2, float("nan"), 95, "high", True, None])
def test_level_outside_unit_interval_is_refused(one_and_two_factor_fits, level):
    """Was a scipy NaN error (one factor) or NaN bounds (several)."""
    for res in one_and_two_factor_fits:
        with pytest.raises(ValueError, match="level"):
            res.conf_int_re(level=level)
        with pytest.raises(ValueError, match="level"):
            res.conf_int_re(level=level, criterion="REML")


def test_level_check_passes_valid_levels_through():
    from lmm.confint import check_level

    assert check_level(0.5) == 0.5
    assert check_level(np.float32(0.9)) == pytest.approx(0.9)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("level", [0.95, 0.90])
def test_fixed_effect_profile_intervals_match_lme4(case, level, dietox, sitka):
    """conf_int(method='profile'): lme4's fixed-effect rows of the same confint call
    (the ML deviance profiled, a REML fit refitted by ML, as lme4 does)."""
    ref = REF[case]
    if case == "sitka_rs_reml":
        pytest.skip("lme4's profile of this fit breaks down (the reference's notes); its "
                    "intercept end is 0.0047 short of the cut-off in deviance, lmm's is "
                    "on it (a dense Nelder-Mead check, run by hand)")
    res = _fit(case, dietox, sitka)
    alpha = 1 - level
    ci = res.conf_int(alpha=alpha, method="profile")
    rows = {r["name"]: r for r in ref["confint_95" if level == 0.95 else "confint_90"]}
    names = {"Intercept": "(Intercept)"}
    for name in res.fe_params.index:
        r = rows[names.get(name, name)]
        assert ci.loc[name, 0] == pytest.approx(r["lower"], rel=1e-5), name
        assert ci.loc[name, 1] == pytest.approx(r["upper"], rel=1e-5), name
    # the same rows as the Wald call; covariance rows left to conf_int_re
    wald = res.conf_int(alpha=alpha)
    assert list(ci.index) == list(wald.index)
    assert ci.drop(index=list(res.fe_params.index)).isna().all().all()


def test_fixed_effect_profile_ends_sit_at_the_cutoff(dietox):
    """At each end, the ML deviance with the coefficient held there, minimized over
    the rest by an independent optimizer (the dense likelihood with the other
    coefficient at its GLS value, Nelder-Mead on the log variances), exceeds the
    ML minimum by the chi-square quantile."""
    res = lmm.lmer("Weight ~ Time + (1 | Pig)", dietox)
    ci = res.conf_int(method="profile")
    md = res.model
    y, x, z, g = md.endog, md.exog, md.exog_re, md.group_codes
    ml = md.fit(reml=False)
    cut = stats.chi2.ppf(0.95, 1)

    blocks = [np.flatnonzero(g == k) for k in np.unique(g)]

    def held_dev(j, value):
        keep = [k for k in range(x.shape[1]) if k != j]
        yy, xx = y - value * x[:, j], x[:, keep]

        def f(log_v):
            cov, scale = np.array([[np.exp(log_v[0])]]), np.exp(log_v[1])
            # (the GLS beta, then the ML likelihood at it: beta profiled out)
            xvx = sum(xx[i].T @ np.linalg.solve(scale * np.eye(len(i)) + z[i] @ cov @ z[i].T,
                                                xx[i]) for i in blocks)
            xvy = sum(xx[i].T @ np.linalg.solve(scale * np.eye(len(i)) + z[i] @ cov @ z[i].T,
                                                yy[i]) for i in blocks)
            beta = np.linalg.solve(xvx, xvy)
            return -2 * dense_loglik(yy, xx, z, g, beta, cov, scale, False)

        start = np.log([float(ml.cov_re.iloc[0, 0]), ml.scale])
        return optimize.minimize(f, start, method="Nelder-Mead",
                                 options={"xatol": 1e-10, "fatol": 1e-10}).fun

    for j, name in enumerate(res.fe_params.index):
        for end in (0, 1):
            assert held_dev(j, ci.loc[name, end]) + 2 * ml.llf == pytest.approx(cut, abs=2e-5)
