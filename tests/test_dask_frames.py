"""One model from a Dask DataFrame (issue 21): the partitions reduce their rows to
statistics, merged on the cluster; the fit equals the in-memory fit of the same rows.

The expected numbers are the in-memory fits of the same rows (themselves checked
against lme4 elsewhere); the partitions are uneven, split groups and miss levels.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

import lmm

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")


def uneven(data, sizes, seed=0):
    """A Dask frame of `data`'s rows shuffled, in partitions of the given sizes (the
    last takes the rest; a size of 0 makes an empty partition)."""
    shuffled = data.sample(frac=1.0, random_state=seed)
    cuts = [0, *np.cumsum(sizes), len(data)]
    chunks = [shuffled.iloc[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    return dd.concat([dd.from_pandas(c, npartitions=1, sort=False) for c in chunks])


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # the cluster's own start-up chatter
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def sleep():
    return lmm.datasets.get_rdataset("sleepstudy", "lme4").data


@pytest.fixture(scope="module")
def diet():
    d = lmm.datasets.get_rdataset("dietox", "geepack").data.copy()
    d["Evit"] = d["Evit"].astype(str)
    i = np.arange(len(d))
    d["w"] = 1.0 + (i % 3)
    d["o"] = 0.1 * (i % 5)
    return d


def _same_fit(got, want):
    assert got.llf == pytest.approx(want.llf, rel=1e-9)
    np.testing.assert_allclose(got.fe_params.to_numpy(), want.fe_params.to_numpy(), rtol=1e-8)
    assert list(got.fe_params.index) == list(want.fe_params.index)
    np.testing.assert_allclose(got.bse_fe.to_numpy(), want.bse_fe.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(np.asarray(got.cov_re), np.asarray(want.cov_re), rtol=1e-7)
    assert got.scale == pytest.approx(want.scale, rel=1e-8)
    np.testing.assert_allclose(got.random_effects_array, want.random_effects_array,
                               rtol=1e-7, atol=1e-9)
    assert got.nobs == want.nobs and got.converged


def test_random_slopes_on_a_local_cluster_equal_the_in_memory_fit(client, sleep):
    f = "Reaction ~ Days + (Days | Subject)"
    want = lmm.lmer(f, sleep)
    # 7 partitions: one row, an empty one, large and small ones; every subject's rows
    # are spread over several, and most partitions lack some subjects
    dask_df = uneven(sleep, [1, 0, 60, 7, 3, 80])
    assert dask_df.npartitions == 7
    got = lmm.lmer(f, dask_df)
    _same_fit(got, want)
    # what needs the rows comes back lazily, as Dask series
    fitted = got.fittedvalues
    assert isinstance(fitted, dd.Series)
    pd.testing.assert_series_equal(fitted.compute().sort_index(),
                                   want.fittedvalues.sort_index(), check_names=False,
                                   rtol=1e-8)
    np.testing.assert_allclose(got.resid.compute().sort_index(),
                               want.resid.sort_index(), rtol=1e-6, atol=1e-8)
    # inference and intervals from the statistics alone (the fixed effects' profile
    # moves the column into the response's products)
    np.testing.assert_allclose(got.coef_table().to_numpy(dtype=float),
                               want.coef_table().to_numpy(dtype=float), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(got.conf_int(method="profile"))[:2],
                               np.asarray(want.conf_int(method="profile"))[:2], rtol=1e-7)
    # the template's covariance blocks travel with the statistics: uncorrelated effects
    f = "Reaction ~ Days + (Days || Subject)"
    _same_fit(lmm.lmer(f, dask_df), lmm.lmer(f, sleep))
    # new data predict through the same design
    np.testing.assert_allclose(got.predict(sleep.iloc[:5]), want.predict(sleep.iloc[:5]),
                               rtol=1e-9)


def test_statsmodels_api_with_factors_weights_and_offset(client, diet):
    f = "Weight ~ Time + C(Evit)"
    want = lmm.mixedlm(f, diet, groups="Pig", re_formula="~Time", weights="w",
                       offset="o").fit()
    dask_df = uneven(diet, [5, 300, 2, 100, 11], seed=3)
    got = lmm.mixedlm(f, dask_df, groups="Pig", re_formula="~Time", weights="w",
                      offset="o").fit()
    _same_fit(got, want)
    lme4_style = lmm.lmer("Weight ~ Time + C(Evit) + (Time | Pig)", dask_df, weights="w",
                          offset="o")
    assert lme4_style.llf == pytest.approx(want.llf, rel=1e-9)
    # residuals: lazy, scaled as asked; Pearson's need the rows' weights: refused
    scaled = got.residuals(scaled=True).compute().sort_index()
    np.testing.assert_allclose(scaled, want.residuals(scaled=True).sort_index(), rtol=1e-6,
                               atol=1e-8)
    with pytest.raises(NotImplementedError, match="Pearson"):
        got.resid_pearson()


def test_missing_values_are_refused_or_dropped_as_in_memory(sleep):
    f = "Reaction ~ Days + (Days | Subject)"
    holes = sleep.copy()
    holes.loc[[3, 50, 51], "Reaction"] = np.nan
    holes.loc[7, "Days"] = np.nan
    dask_df = uneven(holes, [40, 40, 40])
    with pytest.raises(ValueError, match="missing values"):
        lmm.lmer(f, dask_df)
    got = lmm.lmer(f, dask_df, missing="drop")
    want = lmm.lmer(f, holes.dropna())
    _same_fit(got, want)
    # the fitted values are those of the complete rows, by their labels
    fitted = got.fittedvalues.compute().sort_index()
    pd.testing.assert_index_equal(fitted.index, want.fittedvalues.sort_index().index)
    np.testing.assert_allclose(fitted, want.fittedvalues.sort_index(), rtol=1e-8)


def test_shifted_and_rescaled_data_keep_their_digits(sleep):
    """The partitions' statistics are centred before they are summed and moved
    exactly when merged: a response offset by 1e8 changes only the intercept."""
    f = "Reaction ~ Days + (Days | Subject)"
    base = lmm.lmer(f, uneven(sleep, [20, 70]))
    shifted = lmm.lmer(f, uneven(sleep.assign(Reaction=sleep["Reaction"] + 1e8), [20, 70]))
    assert shifted.llf == pytest.approx(base.llf, abs=1e-6)
    assert shifted.fe_params["(Intercept)"] - 1e8 == pytest.approx(base.fe_params["(Intercept)"],
                                                                 abs=1e-5)
    assert shifted.fe_params["Days"] == pytest.approx(base.fe_params["Days"], rel=1e-8)


def _nbytes(obj):
    """Bytes of what the client received: arrays, and containers of them."""
    from lmm.statistics import GroupedStatistics

    if isinstance(obj, GroupedStatistics):
        return sum(_nbytes(v) for v in vars(obj).values())
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, list | tuple | set):
        return sum(_nbytes(v) for v in obj) + 8 * len(obj)
    if isinstance(obj, np.ndarray | pd.Index | pd.Series):
        return int(np.asarray(obj).nbytes)
    return 8


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x + (1 + x | g) + (1 | h)"])
def test_the_client_receives_statistics_not_rows(monkeypatch, formula):
    """Everything computed back to the client (labels, moments, Gram matrices, merged
    statistics) is of the size of the levels and the design, not of the rows."""
    from lmm import dask_frames

    rng = np.random.default_rng(5)
    n, groups = 40_000, 40
    g = rng.integers(0, groups, n)
    h = rng.integers(0, 25, n)
    x = rng.standard_normal(n)
    data = pd.DataFrame({"y": 1 + x + rng.standard_normal(groups)[g] + rng.standard_normal(25)[h]
                         + rng.standard_normal(n), "x": x, "g": g, "h": h})
    received = []
    real = dask_frames._compute

    def watched(*collections):
        out = real(*collections)
        received.extend(out)
        return out

    monkeypatch.setattr(dask_frames, "_compute", watched)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # (a slope variance near zero: singular)
        res = lmm.lmer(formula, dd.from_pandas(data, npartitions=8))
    assert res.nobs == n
    assert received
    # (crossed: the 40 x 25 level pairs' products are the largest part)
    assert _nbytes(received) < data.memory_usage(deep=True).sum() / 20


def test_what_cannot_be_done_on_a_dask_frame_says_so(sleep):
    dask_df = dd.from_pandas(sleep, npartitions=3)
    with pytest.raises(NotImplementedError, match="whole column"):
        lmm.lmer("Reaction ~ bs(Days, df=3) + (1 | Subject)", dask_df)
    with pytest.raises(NotImplementedError, match="subset"):
        lmm.lmer("Reaction ~ Days + (1 | Subject)", dask_df, subset=sleep["Days"] > 1)
    with pytest.raises(TypeError, match="column name"):
        lmm.lmer("Reaction ~ Days + (1 | Subject)", dask_df, weights=np.ones(len(sleep)))
    with pytest.raises(ValueError, match="'nope'"):
        lmm.lmer("Reaction ~ Days + (1 | nope)", dask_df)
    res = lmm.lmer("Reaction ~ Days + (1 | Subject)", dask_df)
    for call in (res.simulate, res.predict, lambda: res.coef_table(ddf="Kenward-Roger")):
        with pytest.raises(NotImplementedError, match="rows"):
            call()


DATA = __import__("pathlib").Path(__file__).parent / "data"


def _same_multi_fit(got, want, theta_rtol=1e-6):
    assert got.llf == pytest.approx(want.llf, rel=1e-9)
    np.testing.assert_allclose(got.fe_params.to_numpy(), want.fe_params.to_numpy(), rtol=1e-8,
                               atol=1e-10)
    np.testing.assert_allclose(got.bse_fe.to_numpy(), want.bse_fe.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(got.theta, want.theta, rtol=theta_rtol, atol=1e-9)
    assert got.nobs == want.nobs
    for (g1, a), (g2, b) in zip(got.ranef().items(), want.ranef().items()):
        assert g1 == g2
        assert list(a.index) == list(b.index)
        np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("case", [
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", {}),
    ("multi_crossed_sim", "y ~ x + (1 + x | g1) + (1 | g2)", {"weights": "w2", "offset": "o"}),
    ("multi_nested_sim", "y ~ x + (1 + x | school) + (1 | school:class)", {}),
    ("pastes", "strength ~ 1 + (1 | batch/cask)", {}),
], ids=lambda c: c[0])
def test_crossed_and_nested_factors_on_a_local_cluster(client, case):
    name, formula, kwargs = case
    data = pd.read_csv(DATA / f"{name}.csv")
    if kwargs:
        i = np.arange(len(data))
        data = data.assign(w2=0.5 + (i % 4) / 2, o=0.1 * (i % 5))
    want = lmm.lmer(formula, data, **kwargs)
    dask_df = uneven(data, [2, 0, len(data) // 3, 5], seed=4)
    got = lmm.lmer(formula, dask_df, **kwargs)
    _same_multi_fit(got, want)
    fitted = got.fittedvalues.compute().sort_index()
    np.testing.assert_allclose(fitted, want.fittedvalues.sort_index(), rtol=1e-6)
    np.testing.assert_allclose(got.resid.compute().sort_index(), want.resid.sort_index(),
                               rtol=1e-4, atol=1e-6)
    # inference from the products: lmerTest's Satterthwaite table
    np.testing.assert_allclose(got.coef_table().to_numpy(dtype=float),
                               want.coef_table().to_numpy(dtype=float), rtol=1e-5)
    cv_got = got.model.conditional_covariances(got.theta)
    cv_want = want.model.conditional_covariances(want.theta)
    for a, b in zip(cv_got, cv_want):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_centring_and_scaling_in_the_formula_are_the_datas(sleep):
    """center(x), scale(x) (R's, in lme4-style formulas; patsy's in statsmodels-style
    ones) and standardize(x) on a Dask frame: the partitions' statistics give the
    whole column's mean and sd, as in memory."""
    shifted = sleep.assign(Days=sleep["Days"] + 1e6)      # (digits kept: centred moments)
    dask_df = uneven(shifted, [30, 1, 60])
    for f in ["Reaction ~ scale(Days) + (scale(Days) | Subject)",
              "Reaction ~ center(Days) + (1 | Subject) + (0 + center(Days) | Subject)"]:
        want = lmm.lmer(f, shifted)
        got = lmm.lmer(f, dask_df)
        _same_fit(got, want)
    want = lmm.mixedlm("Reaction ~ standardize(Days)", shifted, groups="Subject",
                       re_formula="~scale(Days)").fit()
    got = lmm.mixedlm("Reaction ~ standardize(Days)", dask_df, groups="Subject",
                      re_formula="~scale(Days)").fit()
    _same_fit(got, want)
    # missing='drop' with the response missing in some rows: R's scale() takes every
    # row's Days (model.frame, before na.omit), patsy's centre and standardize the
    # complete rows', on Dask as in memory
    holes = shifted.assign(Reaction=shifted["Reaction"].mask(
        (np.arange(len(shifted)) % 7 == 0) & (shifted["Days"] > 1e6 + 5)))
    holey_dask_df = uneven(holes, [30, 1, 60])
    for f in ["Reaction ~ scale(Days) + (1 | Subject)",
              "Reaction ~ center(Days) + (1 | Subject)"]:
        _same_fit(lmm.lmer(f, holey_dask_df, missing="drop"),
                  lmm.lmer(f, holes, missing="drop"))
    _same_fit(lmm.mixedlm("Reaction ~ standardize(Days)", holey_dask_df, groups="Subject",
                          missing="drop").fit(),
              lmm.mixedlm("Reaction ~ standardize(Days)", holes, groups="Subject",
                          missing="drop").fit())
    # several factors: the same pass
    d = pd.read_csv(DATA / "penicillin.csv").assign(z=lambda t: np.arange(len(t)) % 7)
    f = "diameter ~ scale(z) + (1 | plate) + (1 | sample)"
    _same_multi_fit(lmm.lmer(f, uneven(d, [10, 50])), lmm.lmer(f, d))
    for bad in ["Reaction ~ poly(Days, 2) + (1 | Subject)",
                "Reaction ~ scale(Days * 2) + (1 | Subject)"]:
        with pytest.raises(NotImplementedError, match="whole column"):
            lmm.lmer(bad, dask_df)


@pytest.mark.parametrize("name, formula, weighted", [
    ("multi_crossed_sim", "y ~ x + (1 + x | g1) + (1 | g2)", True),
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", False),
    ("multi_nested_sim", "y ~ x + (1 + x | school) + (1 | school:class)", False),
])
def test_fixed_effect_profile_from_the_products_is_the_rows(name, formula, weighted):
    """The several-factor profile of a fixed effect built from the products (what a
    fit from a Dask frame uses) is the model built from the rows: intercept and slope
    columns, at the estimate and two standard errors away, weighted too."""
    data = pd.read_csv(DATA / f"{name}.csv")
    kwargs = {"weights": 0.5 + (np.arange(len(data)) % 4) / 2} if weighted else {}
    md = lmm.lmer(formula, data, **kwargs).model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ml = md.fit(reml=False)
        for c in range(md.k_fe):
            for v in (ml.fe_params.iloc[c], ml.fe_params.iloc[c] + 2 * ml.bse_fe.iloc[c]):
                rows = md.fixed_effect_profile_deviance(c, v)[0]
                products = -2.0 * md.profile_submodel(c, v).fit(reml=False).llf
                assert products == pytest.approx(rows, abs=1e-8)


def test_several_factor_profile_intervals_on_a_dask_frame(client):
    data = pd.read_csv(DATA / "multi_crossed_sim.csv")
    f = "y ~ x + (1 + x | g1) + (1 | g2)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = lmm.lmer(f, data).conf_int(method="profile")
        got = lmm.lmer(f, uneven(data, [100, 7, 500])).conf_int(method="profile")
    np.testing.assert_allclose(np.asarray(got)[:2], np.asarray(want)[:2], rtol=1e-6)


def test_fits_from_a_dask_frame_pickle(sleep):
    import pickle

    one = lmm.lmer("Reaction ~ Days + (Days | Subject)", uneven(sleep, [50, 60]))
    pen = pd.read_csv(DATA / "penicillin.csv")
    several = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", uneven(pen, [40, 40]))
    for res in (one, several):
        back = pickle.loads(pickle.dumps(res))
        assert back.llf == res.llf
        np.testing.assert_allclose(back.fe_params, res.fe_params)
        # the model still fits (its compiled criterion is rebuilt)
        assert back.model.fit().llf == pytest.approx(res.llf, abs=1e-9)
        np.testing.assert_allclose(back.fittedvalues.compute(), res.fittedvalues.compute())
