"""One results API: every fitted model, whichever engine and front end built it,
offers the same methods with the same return types, pickles and deep-copies.

The kinds checked: a statsmodels-style fit (mixedlm), an lme4-style fit with one
grouping factor, a crossed fit (Penicillin) and a nested fit (Pastes).
"""

import copy
import pickle
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import optimize

import lmm

matplotlib.use("Agg")

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def fits(dietox):
    penicillin = pd.read_csv(DATA / "penicillin.csv")
    pastes = pd.read_csv(DATA / "pastes.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "statsmodels": lmm.mixedlm("Weight ~ Time", dietox, groups="Pig",
                                       re_formula="~Time").fit(),
            "lmer": lmm.lmer("Weight ~ Time + (Time | Pig)", dietox),
            "lmer_ml": lmm.lmer("Weight ~ Time + (1 | Pig)", dietox, REML=False),
            "crossed": lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", penicillin),
            "nested": lmm.lmer("strength ~ 1 + (1 | batch/cask)", pastes, REML=False),
        }


KINDS = ["statsmodels", "lmer", "lmer_ml", "crossed", "nested"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_accessor_exists_with_its_type(fits, kind):
    res = fits[kind]
    assert isinstance(res, lmm.MixedModelResults)
    names = list(res.fe_params.index)
    fe = res.fixef()
    assert isinstance(fe, pd.Series) and list(fe.index) == names
    vc = res.vcov()
    assert isinstance(vc, pd.DataFrame) and list(vc.index) == names == list(vc.columns)
    np.testing.assert_allclose(np.sqrt(np.diag(vc.to_numpy())), res.bse_fe.to_numpy(),
                               rtol=1e-12)
    modes = res.ranef()
    assert isinstance(modes, dict) and modes
    for factor, table in modes.items():
        assert isinstance(table, pd.DataFrame) and table.index.name == factor
        assert table.shape[0] == len(set(table.index))
    modes2, condvar = res.ranef(condvar=True)
    assert set(condvar) == set(modes2) == set(modes)
    for factor, table in modes2.items():
        cv = condvar[factor]
        assert isinstance(cv, np.ndarray) and cv.shape == (len(table), table.shape[1],
                                                          table.shape[1])
        # conditional covariances are symmetric positive semi-definite
        np.testing.assert_allclose(cv, np.transpose(cv, (0, 2, 1)), atol=1e-12)
        assert np.linalg.eigvalsh(cv).min() > -1e-10
    assert isinstance(res.varcorr(), pd.DataFrame)
    assert isinstance(res.theta, np.ndarray)
    assert res.sigma == pytest.approx(np.sqrt(res.scale), rel=1e-15)
    for name in ("llf", "aic", "bic", "REMLcrit"):
        assert isinstance(getattr(res, name), float)
    assert isinstance(res.conf_int(), pd.DataFrame)
    ci_re = res.conf_int_re()
    assert isinstance(ci_re, pd.DataFrame) and ci_re.index[-1] == "sigma"
    assert {"estimate", "lower", "upper", "var_estimate"} <= set(ci_re.columns)
    assert (ci_re["lower"] <= ci_re["estimate"]).all()
    assert (ci_re["estimate"] <= ci_re["upper"]).all()
    assert callable(res.profile_re) and callable(res.plot_profile)
    assert isinstance(res.summary().as_text(), str)
    assert isinstance(res.summary(style="lme4").as_text(), str)
    html = res._repr_html_()
    assert isinstance(html, str) and "<" in html
    rec = res.optinfo
    assert rec["converged"] is res.converged is True
    assert rec["method"] and rec["attempts"] and rec["n_evaluations"] > 0
    assert rec["projected_gradient"].shape == rec["theta"].shape
    assert isinstance(res.plot_caterpillar(), matplotlib.axes.Axes)
    assert isinstance(res.plot_resid_fitted(), matplotlib.axes.Axes)
    matplotlib.pyplot.close("all")


def test_ranef_equals_the_statsmodels_views(fits):
    res = fits["lmer"]
    modes, condvar = res.ranef(condvar=True)
    table = modes["Pig"]
    assert list(table.columns) == ["(Intercept)", "Time"]
    for label in list(res.random_effects)[:5]:
        np.testing.assert_array_equal(table.loc[label].to_numpy(),
                                      res.random_effects[label].to_numpy())
        g = list(table.index).index(label)
        np.testing.assert_array_equal(condvar["Pig"][g],
                                      res.random_effects_cov[label].to_numpy())
    crossed = fits["crossed"]
    for factor, frame in crossed.random_effects.items():
        pd.testing.assert_frame_equal(crossed.ranef()[factor], frame, check_names=False)


def test_predict_types(fits, dietox):
    # statsmodels' types for statsmodels-style fits, Series for lme4-style ones
    assert isinstance(fits["statsmodels"].predict(), np.ndarray)
    assert isinstance(fits["statsmodels"].predict(dietox.iloc[:3]), pd.Series)
    for kind in ("lmer", "crossed", "nested"):
        assert isinstance(fits[kind].predict(), pd.Series)


def test_deviance_follows_lme4(fits):
    ml = fits["lmer_ml"]
    assert ml.deviance == -2 * ml.llf
    reml = fits["lmer"]
    # lme4: deviance() of a REML fit is the REML criterion, with a deprecation warning
    with pytest.warns(FutureWarning, match="REMLcrit"):
        assert reml.deviance == reml.REMLcrit == -2 * reml.llf
    assert np.isnan(ml.REMLcrit)


@pytest.mark.parametrize("kind", KINDS)
def test_pickle_and_deepcopy_round_trip(fits, kind, dietox):
    res = fits[kind]
    res.coef_table()                     # caches (closures over the criterion) made first
    text = res.summary().as_text()
    for clone in (pickle.loads(pickle.dumps(res)), copy.deepcopy(res)):
        assert type(clone) is type(res)
        assert clone.llf == res.llf
        assert clone.summary().as_text() == text
        pd.testing.assert_frame_equal(clone.coef_table(), res.coef_table())
        pd.testing.assert_series_equal(clone.fittedvalues, res.fittedvalues)
        # the rebuilt compiled criterion gives the same deviance
        refit = clone.model.fit(reml=res.reml)
        assert refit.llf == pytest.approx(res.llf, rel=1e-12, abs=1e-9)
    model = pickle.loads(pickle.dumps(res.model))
    assert model.fit(reml=res.reml).llf == pytest.approx(res.llf, rel=1e-12, abs=1e-9)
    if kind in ("statsmodels", "lmer"):
        new = dietox.iloc[:4]
        clone = pickle.loads(pickle.dumps(res))
        np.testing.assert_array_equal(np.asarray(clone.predict(new)),
                                      np.asarray(res.predict(new)))


def _dense_reml_crossed(log_params, y, za, zb, x):
    """-2 REML log-likelihood of y ~ x + (1|a) + (1|b) with V = sa Za Za' + sb Zb Zb'
    + s I, brute force (dense V)."""
    sa, sb, s = np.exp(log_params)
    v = sa * za @ za.T + sb * zb @ zb.T + s * np.eye(len(y))
    cv = np.linalg.cholesky(v)
    vi_x = np.linalg.solve(v, x)
    xvx = x.T @ vi_x
    beta = np.linalg.solve(xvx, vi_x.T @ y)
    r = y - x @ beta
    n, p = x.shape
    return (2 * np.log(np.diag(cv)).sum() + r @ np.linalg.solve(v, r)
            + np.linalg.slogdet(xvx)[1] + (n - p) * np.log(2 * np.pi))


def test_profile_re_of_several_factors_against_a_dense_likelihood(fits):
    res = fits["crossed"]
    penicillin = pd.read_csv(DATA / "penicillin.csv")
    y = penicillin["diameter"].to_numpy(float)
    za = pd.get_dummies(penicillin["plate"]).to_numpy(float)
    zb = pd.get_dummies(penicillin["sample"]).to_numpy(float)
    x = np.ones((len(y), 1))
    vc = res.varcorr()
    row = int(np.flatnonzero(vc["grp"].to_numpy() == "plate")[0])
    v = float(vc["vcov"].iloc[row])
    prof = res.profile_re(row, dist_low=0.5 * v, dist_high=v, num_low=2, num_high=2)
    assert prof.shape == (5, 2)
    # at the estimate the profile is the log-likelihood
    at = int(np.argmin(np.abs(prof[:, 0] - v)))
    assert prof[at, 1] == pytest.approx(res.llf, abs=1e-7)
    s_b, s = float(vc["vcov"].iloc[1 - row]), res.scale
    for value, profile in prof:
        # maximize the dense REML likelihood over the other two variances
        best = optimize.minimize(
            lambda u, value=value: _dense_reml_crossed(np.r_[np.log(value), u], y, za, zb, x),
            np.log([s_b, s]), method="Nelder-Mead",
            options=dict(xatol=1e-10, fatol=1e-12, maxiter=4000))
        assert profile == pytest.approx(-0.5 * best.fun, abs=1e-6)
    with pytest.raises(ValueError, match="varcorr"):
        res.profile_re(len(vc) - 1)         # the residual row is not a random effect
