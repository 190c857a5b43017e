"""simulate() and the parametric bootstrap.

Oracles: the moments of the model the responses are drawn from (a closed form,
checked on many draws), and, for the bootstrap, a direct MixedLM fit of the same
simulated response (another code path than the many-responses fitter's).
"""

import numpy as np
import pytest

import lmm
from lmm.bootstrap import shortest_interval


@pytest.fixture(scope="module")
def fitted():
    d = lmm.datasets.get_rdataset("dietox", "geepack").data
    return lmm.lmer("Weight ~ Time + (1 + Time | Pig)", d)


def test_simulated_responses_have_the_models_moments(fitted):
    m = fitted.model
    y = fitted.simulate(4000, seed=11)
    assert y.shape == (m.nobs, 4000)
    mean = m.exog @ fitted.fe_params.to_numpy()
    # the mean: X beta, to a few standard errors of a 4000-draw average
    sd_y = y.std(axis=1)
    assert np.all(np.abs(y.mean(axis=1) - mean) < 5 * sd_y / np.sqrt(4000))
    # the covariance of two rows of one group: z_i' cov_re z_j (+ scale on the diagonal)
    rows = np.flatnonzero(m.group_codes == 0)[:3]
    z = m.exog_re[rows]
    want = z @ fitted.cov_re.to_numpy() @ z.T + fitted.scale * np.eye(3)
    got = np.cov(y[rows])
    np.testing.assert_allclose(got, want, rtol=0.08)
    # rows of different groups: uncorrelated
    other = np.flatnonzero(m.group_codes == 1)[0]
    r = np.corrcoef(y[rows[0]], y[other])[0, 1]
    assert abs(r) < 5 / np.sqrt(4000)


def test_simulate_is_reproducible_and_prefix_stable(fitted):
    a = fitted.simulate(5, seed=3)
    np.testing.assert_array_equal(a, fitted.simulate(5, seed=3))
    np.testing.assert_array_equal(a[:, :2], fitted.simulate(2, seed=3))
    assert not np.array_equal(a, fitted.simulate(5, seed=4))
    with pytest.raises(ValueError, match="nsim"):
        fitted.simulate(0)


def test_each_replicate_is_the_direct_fit_of_its_response(fitted):
    boot = fitted.bootstrap(6, seed=5)
    y = fitted.simulate(6, seed=5)
    m = fitted.model
    assert len(boot) == 6 and boot.n_not_converged == 0
    for r in range(6):
        one = lmm.MixedLM(y[:, r], m.exog, m.groups, exog_re=m.exog_re).fit()
        row = boot.replicates.iloc[r]
        np.testing.assert_allclose(row[["(Intercept)", "Time"]].to_numpy(float),
                                   one.fe_params.to_numpy(), rtol=1e-7)
        assert row["sigma"] == pytest.approx(np.sqrt(one.scale), rel=1e-7)
        cov = one.cov_re.to_numpy()
        assert row["sd_(Intercept)|Pig"] == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-6)
        assert row["sd_Time|Pig"] == pytest.approx(np.sqrt(cov[1, 1]), rel=1e-6)
        assert row["cor_Time.(Intercept)|Pig"] == pytest.approx(
            cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]), rel=1e-5, abs=1e-7)


def test_bootstrap_does_not_depend_on_n_jobs(fitted):
    a = fitted.bootstrap(40, seed=9, n_jobs=1).replicates
    b = fitted.bootstrap(40, seed=9, n_jobs=2).replicates
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())


def test_intervals_and_sd(fitted):
    boot = fitted.bootstrap(200, seed=1)
    v = boot.replicates["Time"].to_numpy()
    ci = boot.conf_int(0.9)
    assert tuple(ci.loc["Time"]) == pytest.approx(tuple(np.quantile(v, [0.05, 0.95])))
    assert boot.sd()["Time"] == pytest.approx(v.std(ddof=1))
    # the bootstrap sd of a slope is near its standard error (200 draws: within 15%)
    assert boot.sd()["Time"] == pytest.approx(fitted.bse_fe["Time"], rel=0.15)
    short = boot.conf_int(0.9, method="shortest").loc["Time"]
    assert short["upper"] - short["lower"] <= ci.loc["Time", "upper"] - ci.loc["Time", "lower"]
    with pytest.raises(ValueError, match="level"):
        boot.conf_int(1.5)
    with pytest.raises(ValueError, match="method"):
        boot.conf_int(method="bca")


def test_shortest_interval_is_the_brute_force_one():
    rng = np.random.default_rng(0)
    v = rng.gamma(2.0, size=101)
    k = int(np.ceil(0.8 * 101))
    s = np.sort(v)
    best = min((s[i + k - 1] - s[i], i) for i in range(101 - k + 1))
    assert shortest_interval(v, 0.8) == (s[best[1]], s[best[1] + k - 1])


def test_simulate_with_weights_and_offset():
    """Residual variance scale / w_i and the offset in the mean (closed forms)."""
    import pandas as pd

    d = pd.read_csv(__import__("pathlib").Path(__file__).parent / "data" / "sleepstudy.csv")
    w = 1.0 + d["Days"].to_numpy() % 3
    res = lmm.lmer("Reaction ~ Days + (1 | Subject)", d, weights=w, offset=0.5 * d["Days"])
    y = res.simulate(6000, seed=2)
    m = res.model
    mean = m.exog @ res.fe_params.to_numpy() + 0.5 * d["Days"].to_numpy()
    assert np.all(np.abs(y.mean(axis=1) - mean) < 5 * y.std(axis=1) / np.sqrt(6000))
    # within a subject, the difference of two rows removes the random effect:
    # var(y_i - y_j) = scale (1 / w_i + 1 / w_j)
    i, j = 0, 1
    want = res.scale * (1 / w[i] + 1 / w[j])
    assert np.var(y[i] - y[j]) == pytest.approx(want, rel=0.06)
    with pytest.raises(NotImplementedError, match="offset"):
        res.bootstrap(5)


def test_simulate_several_factors_has_the_models_covariance():
    """Crossed plate x sample: two rows sharing a plate (not a sample) covary by the
    plate variance, sharing both by the sum, neither by zero (Monte Carlo, 6,000 draws;
    tolerances a few standard errors of a covariance estimate)."""
    import pandas as pd

    pen = pd.read_csv(__import__("pathlib").Path(__file__).parent / "data" /
                      "penicillin.csv")
    res = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
    y = res.simulate(6000, seed=4)
    v_plate = res.cov_re["plate"].iloc[0, 0]
    v_sample = res.cov_re["sample"].iloc[0, 0]
    same_plate = np.flatnonzero((pen["plate"] == "a").to_numpy())[:2]   # two samples
    c = np.cov(y[same_plate[0]], y[same_plate[1]])[0, 1]
    assert c == pytest.approx(v_plate, abs=0.1 * (v_plate + v_sample + res.scale))
    total = np.var(y[0])
    assert total == pytest.approx(v_plate + v_sample + res.scale, rel=0.06)
    np.testing.assert_allclose(y.mean(axis=1), res.fe_params.iloc[0],
                               atol=5 * np.sqrt(total / 6000))


def test_several_factor_bootstrap_replicates_are_fits_of_their_responses():
    import pandas as pd

    pen = pd.read_csv(__import__("pathlib").Path(__file__).parent / "data" /
                      "penicillin.csv")
    formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"
    res = lmm.lmer(formula, pen)
    boot = res.bootstrap(4, seed=6)
    y = res.simulate(4, seed=6)
    for r in range(4):
        one = lmm.lmer(formula, pen.assign(diameter=y[:, r]))
        row = boot.replicates.iloc[r]
        assert row["(Intercept)"] == pytest.approx(one.fe_params.iloc[0], rel=1e-8)
        assert row["sigma"] == pytest.approx(np.sqrt(one.scale), rel=1e-7)
        for g in ("plate", "sample"):
            assert row[f"sd_(Intercept)|{g}"] == pytest.approx(
                np.sqrt(one.cov_re[g].iloc[0, 0]), rel=1e-6)
    a = res.bootstrap(12, seed=3).replicates.to_numpy()
    b = res.bootstrap(12, seed=3, n_jobs=2).replicates.to_numpy()
    np.testing.assert_array_equal(a, b)


def test_simulate_conditioned_on_the_modes(fitted):
    """re_form=None (lme4's re.form = NULL): y = X beta + Z b_hat + e, so the mean is
    the fitted values and the covariance scale I (rows of one group uncorrelated);
    5 standard errors of 4,000 draws."""
    nsim = 4000
    y = fitted.simulate(nsim, seed=12, re_form=None)
    sd = np.sqrt(fitted.scale)
    assert np.all(np.abs(y.mean(axis=1) - fitted.fittedvalues.to_numpy())
                  < 5 * sd / np.sqrt(nsim))
    assert np.all(np.abs(y.var(axis=1, ddof=1) / fitted.scale - 1) < 5 * np.sqrt(2 / nsim))
    rows = np.flatnonzero(fitted.model.group_codes == 0)[:2]
    assert abs(np.corrcoef(y[rows])[0, 1]) < 5 / np.sqrt(nsim)
    # the default draws new effects: its spread is the marginal one
    assert y.var(axis=1).mean() < 0.5 * fitted.simulate(500, seed=1).var(axis=1).mean()


def test_simulate_several_factors_holds_the_chosen_terms():
    """Penicillin: re_form='~(1 | plate)' holds the plates' modes and draws the samples'
    effects: per row, mean X beta + b_plate, variance sigma^2 + var(sample)."""
    import pandas as pd

    d = pd.read_csv(__import__("pathlib").Path(__file__).parent / "data" / "penicillin.csv")
    res = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", d)
    nsim = 4000
    y = res.simulate(nsim, seed=3, re_form="~(1 | plate)")
    m = res.model
    k = [t.group for t in m.terms].index("plate")
    plate_modes = res.solution["modes"][k][m.terms[k].codes, 0]
    mean = res.fe_params["(Intercept)"] + plate_modes
    var = res.scale + float(res.cov_re["sample"].iloc[0, 0])
    assert np.all(np.abs(y.mean(axis=1) - mean) < 5 * np.sqrt(var / nsim))
    assert np.all(np.abs(y.var(axis=1, ddof=1) / var - 1) < 5 * np.sqrt(2 / nsim))
    held = res.simulate(50, seed=3, re_form=None)
    np.testing.assert_allclose(held.mean(axis=1), res.fittedvalues.to_numpy(),
                               atol=5 * np.sqrt(res.scale / 50))
    with pytest.raises(ValueError, match="grouping factor"):
        res.simulate(2, re_form="~(1 | batch)")


def test_bootstrap_takes_fit_manys_parallel_keywords(fitted):
    """n_jobs, executor (threads or processes) and chunk_size change where the refits
    run, not the replicates (drawn before any fitting)."""
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    import pandas as pd

    serial = fitted.bootstrap(8, seed=4).replicates
    with ThreadPoolExecutor(2) as pool:
        threaded = fitted.bootstrap(8, seed=4, executor=pool, chunk_size=3).replicates
    pd.testing.assert_frame_equal(threaded, serial, rtol=1e-9)
    d = pd.read_csv(__import__("pathlib").Path(__file__).parent / "data" / "penicillin.csv")
    res = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", d)
    serial = res.bootstrap(6, seed=9).replicates
    with ProcessPoolExecutor(2) as pool:
        processes = res.bootstrap(6, seed=9, executor=pool, chunk_size=2).replicates
    pd.testing.assert_frame_equal(processes, serial, rtol=1e-12)
    pd.testing.assert_frame_equal(res.bootstrap(6, seed=9, n_jobs=2).replicates, serial,
                                  rtol=1e-12)
    with pytest.raises(ValueError, match="chunk_size"):
        res.bootstrap(6, seed=9, n_jobs=2, chunk_size=0)


def test_replicates_hold_lme4s_theta(fitted):
    """theta_1..theta_k: each replicate's lme4 theta, the same as a direct fit's."""
    import pandas as pd

    boot = fitted.bootstrap(3, seed=8)
    cols = [c for c in boot.replicates.columns if c.startswith("theta_")]
    assert cols == ["theta_1", "theta_2", "theta_3"]
    np.testing.assert_allclose(boot.estimates[cols], fitted.theta, rtol=1e-12)
    y = fitted.simulate(3, seed=8)
    m = fitted.model
    for r in range(3):
        direct = lmm.MixedLM(y[:, r], m.exog, m.groups, exog_re=m.exog_re).fit()
        np.testing.assert_allclose(boot.replicates[cols].iloc[r], direct.theta, rtol=1e-5,
                                   atol=1e-7)
    d = pd.read_csv(__import__("pathlib").Path(__file__).parent / "data" / "penicillin.csv")
    res = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", d)
    boot = res.bootstrap(2, seed=8)
    y = res.simulate(2, seed=8)
    for r in range(2):
        direct = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", d.assign(diameter=y[:, r]))
        np.testing.assert_allclose(boot.replicates[["theta_1", "theta_2"]].iloc[r],
                                   direct.theta, rtol=1e-9)


@pytest.mark.parametrize("blocks", [None, ((0,), (1, 2))])
def test_vectorized_theta_of_replicates_is_the_one_at_a_time_factor(blocks):
    from lmm.covariance import CovarianceStructure

    rng = np.random.default_rng(4)
    s = CovarianceStructure(3, blocks)
    covs = []
    for r in range(40):
        a = rng.standard_normal((3, 3))
        c = a @ a.T if r % 4 else np.outer(a[0], a[0])       # every 4th: rank one
        if blocks:
            c[0, 1:] = c[1:, 0] = 0.0
        covs.append(c)
    covs = np.array(covs)
    got = s.thetas_from_covs(covs)
    want = np.array([s.theta_from_cov(c) for c in covs])
    pd_rows = np.arange(40) % 4 != 0
    np.testing.assert_allclose(got[pd_rows], want[pd_rows], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got, want, atol=1e-7)    # (singular: sqrt of rounding)


def test_bootstrap_of_a_weighted_one_factor_fit_refits_the_weighted_model():
    """Weighted one-factor fits: the replicates are drawn with residual variance
    scale / w and refitted with the weights (the many-responses fitter takes the
    model's weights); each equals a direct weighted MixedLM fit of its response."""
    import pandas as pd

    s = pd.read_csv(__import__("pathlib").Path(__file__).parent / "data" / "sleepstudy.csv")
    s["w"] = 1.0 + s["Days"] % 3
    res = lmm.lmer("Reaction ~ Days + (Days | Subject)", s, weights="w")
    boot = res.bootstrap(3, seed=2)
    y = res.simulate(3, seed=2)
    m = res.model
    for r in range(3):
        direct = lmm.MixedLM(y[:, r], m.exog, m.groups, exog_re=m.exog_re,
                             weights=m.weights).fit()
        assert boot.replicates["(Intercept)"].iloc[r] == pytest.approx(
            direct.fe_params.iloc[0], rel=1e-8)
        assert boot.replicates["sigma"].iloc[r] == pytest.approx(np.sqrt(direct.scale),
                                                                rel=1e-6)
    with pytest.raises(NotImplementedError, match="offset"):
        lmm.lmer("Reaction ~ Days + (Days | Subject)", s, offset=s["Days"]).bootstrap(2)


def test_progress_bars_of_the_bootstrap_and_pb_test(capsys):
    """tqdm.auto bars (issue 22) on request; the replicates do not depend on them."""
    import pandas as pd

    pytest.importorskip("tqdm")
    d = pd.read_csv(__import__("pathlib").Path(__file__).parent / "data" / "penicillin.csv")
    res = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", d)
    quiet = res.bootstrap(6, seed=3, progress=False)
    assert capsys.readouterr().err == ""
    for n_jobs in (1, 2):
        shown = res.bootstrap(6, seed=3, progress=True, n_jobs=n_jobs)
        assert "bootstrap" in capsys.readouterr().err
        pd.testing.assert_frame_equal(shown.replicates, quiet.replicates)
    small = lmm.lmer("diameter ~ 1 + (1 | plate)", d)
    a = lmm.pb_test(small, res, nboot=4, seed=1, progress=True)
    assert "pb_test" in capsys.readouterr().err
    b = lmm.pb_test(small, res, nboot=4, seed=1, progress=False)
    np.testing.assert_allclose(a.reference, b.reference)
