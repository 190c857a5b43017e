"""fit_many: many responses on one design, equal to one-by-one MixedLM fits."""

import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import lmm
from lmm import _core, _many_responses

FORMULA = "~ cond + c1"


def _design(seed=1, donors=12, per=4):
    rng = np.random.default_rng(seed)
    n = donors * per
    data = pd.DataFrame({
        "donor": np.repeat([f"d{i:02d}" for i in range(donors)], per),
        "cond": np.tile(["ctrl", "ctrl", "treat", "treat"], donors)[:n],
        "c1": rng.normal(size=n),
        "x": rng.uniform(0, 3, size=n),
    })
    return data, rng


def _responses(data, rng, m=8):
    """Responses with donor effects, one without (a boundary fit), and missing values."""
    n = len(data)
    codes = pd.factorize(data["donor"])[0]
    n_donors = codes.max() + 1
    x = data["c1"].to_numpy()
    Y = np.empty((n, m))
    for j in range(m):
        sd = 0.0 if j == 1 else 0.4 + 0.2 * j
        b = rng.normal(size=n_donors) * sd
        Y[:, j] = 2.0 + 0.5 * (data["cond"] == "treat") + 0.3 * x + b[codes] \
            + rng.normal(size=n)
    Y[[3, 10, 11, 40], 2] = np.nan                 # a few rows missing
    Y[:4, 3] = np.nan                              # all the rows of one donor
    Y[rng.permutation(n)[: n // 2 + 5], 4] = np.nan  # most rows missing
    return pd.DataFrame(Y, columns=[f"gene{j}" for j in range(m)])


@pytest.fixture(scope="module")
def case():
    data, rng = _design()
    return data, _responses(data, rng)


def _quiet(call, *args, **kwargs):
    """call(*args, **kwargs) without the SingularFitWarning of a boundary fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmm.SingularFitWarning)
        return call(*args, **kwargs)


def _one_by_one(data, Y, name, reml=True, lmer=None):
    d = data.assign(resp=Y[name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if lmer is not None:
            md = lmm.MixedLM.from_lmer("resp ~ " + lmer, d, missing="drop")
        else:
            md = lmm.mixedlm("resp " + FORMULA, d, groups="donor", missing="drop")
        return md.fit(reml=reml)


def _assert_row_equal(row, res, cov_names):
    assert row["llf"] == pytest.approx(res.llf, abs=1e-6)
    np.testing.assert_allclose(row[list(res.model.exog_names)].to_numpy(float),
                               res.fe_params.to_numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        row[[f"{c}_se" for c in res.model.exog_names]].to_numpy(float),
        res.bse_fe.to_numpy(), rtol=1e-5, atol=1e-7)
    z = res.fe_params.to_numpy() / res.bse_fe.to_numpy()
    np.testing.assert_allclose(
        row[[f"{c}_pvalue" for c in res.model.exog_names]].to_numpy(float),
        2 * stats.norm.sf(np.abs(z)), rtol=1e-4, atol=1e-9)
    s = res.structure
    np.testing.assert_allclose(row[cov_names].to_numpy(float),
                               res.cov_re.to_numpy()[s.cov_rows, s.cov_cols],
                               rtol=1e-4, atol=1e-6)
    assert row["scale"] == pytest.approx(res.scale, rel=1e-5)
    assert row["nobs"] == res.nobs
    assert bool(row["converged"]) == res.converged
    assert bool(row["singular"]) == res.is_singular


def test_equals_one_by_one(case):
    data, Y = case
    res = lmm.fit_many(FORMULA, data, Y, groups="donor", progress=False)
    assert list(res.table.index) == list(Y.columns)
    assert res.table.loc["gene1", "singular"]          # the boundary response
    assert res.table.loc["gene1", "donor Var"] < 1e-20
    assert res.table.loc["gene2", "nobs"] == len(data) - 4
    assert res.table.loc["gene4", "nobs"] == len(data) // 2 - 5
    assert res.python_path == []                       # all settled by the compiled path
    for name in Y.columns:
        _assert_row_equal(res.table.loc[name], _one_by_one(data, Y, name), ["donor Var"])
    # the accessor: the full results of one response, through MixedLM.fit
    one = _quiet(res.results, "gene2")
    assert isinstance(one, lmm.MixedLMResults)
    assert one.model.endog_names == "gene2" and one.nobs == len(data) - 4
    assert one.llf == pytest.approx(res.table.loc["gene2", "llf"], abs=1e-6)
    assert _quiet(res.results, 0).llf == pytest.approx(res.llf["gene0"], abs=1e-6)
    assert list(res.fe_params.columns) == ["Intercept", "cond[T.treat]", "c1"]
    assert list(res.pvalues.columns) == list(res.bse_fe.columns) == list(res.fe_params.columns)


def test_lme4_start_gives_the_same_fits(case):
    """The compiled path from lme4's start (no moment warm start) agrees too."""
    from lmm import many_responses as many

    data, Y = case
    md = lmm.mixedlm("x " + FORMULA, data, groups="donor")
    Yc = Y.to_numpy()
    warm = many._fit_block(many._Design(md, True), Yc)
    cold = many._fit_block(many._Design(md, True, warm_start=False), Yc)
    assert len(warm[2]) == len(cold[2]) == 0
    llf = 2 * md.k_fe + 2                  # column of llf: fe, se, one variance, scale
    np.testing.assert_allclose(warm[0][:, llf], cold[0][:, llf], atol=1e-9)
    np.testing.assert_array_equal(warm[1][:, 1:3], cold[1][:, 1:3])


def test_random_slope_lme4_syntax_ml(case):
    """Two random effects (centred slope), ML, missing values; a two-sided formula warns."""
    data, Y = case
    Y = Y.drop(columns="gene4")       # too few rows left for two effects per donor
    with pytest.warns(UserWarning, match="left-hand side 'y' of the formula is ignored"):
        res = lmm.fit_many("y ~ cond + (1 + x | donor)", data, Y, reml=False, progress=False)
    assert res.python_path == []
    cov_names = ["(Intercept) Var", "(Intercept) x x Cov", "x Var"]
    assert [c for c in res.table.columns if c.endswith(("Var", "Cov"))] == cov_names
    for name in Y.columns:
        one = _one_by_one(data, Y, name, reml=False, lmer="cond + (1 + x | donor)")
        _assert_row_equal(res.table.loc[name], one, cov_names)
    # uncorrelated effects: one block per column
    res = lmm.fit_many("~ cond + (x || donor)", data, Y.iloc[:, :3], progress=False)
    assert [c for c in res.table.columns if c.endswith(("Var", "Cov"))] == \
        ["(Intercept) Var", "x Var"]
    one = _one_by_one(data, Y, "gene2", lmer="cond + (x || donor)")
    _assert_row_equal(res.table.loc["gene2"], one, ["(Intercept) Var", "x Var"])


def test_threads_and_model_method(case):
    data, Y = case
    serial = lmm.fit_many(FORMULA, data, Y, groups="donor", progress=False)
    threads = lmm.fit_many(FORMULA, data, Y, groups="donor", n_jobs=2, chunk_size=3,
                           progress=False)
    pd.testing.assert_frame_equal(serial.table, threads.table)
    md = lmm.mixedlm("c1 ~ cond + c1", data.assign(c1=data["c1"]), groups="donor")
    md = lmm.mixedlm("x " + FORMULA, data, groups="donor")
    via_model = md.fit_many(Y.to_numpy(), progress=False)
    assert list(via_model.table.index) == [f"y{j}" for j in range(Y.shape[1])]
    np.testing.assert_array_equal(via_model.table.to_numpy(), serial.table.to_numpy())


def test_process_pool(case):
    data, Y = case
    serial = lmm.fit_many(FORMULA, data, Y, groups="donor", progress=False)
    with ProcessPoolExecutor(max_workers=2) as pool:
        pooled = lmm.fit_many(FORMULA, data, Y, groups="donor", executor=pool, chunk_size=3,
                              progress=False)
    pd.testing.assert_frame_equal(serial.table, pooled.table)
    own = lmm.fit_many(FORMULA, data, Y, groups="donor", executor="processes", n_jobs=2,
                       chunk_size=4, progress=False)
    pd.testing.assert_frame_equal(serial.table, own.table)


def test_dask_local_cluster(case):
    distributed = pytest.importorskip("distributed")
    data, Y = case
    serial = lmm.fit_many(FORMULA, data, Y, groups="donor", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # the cluster's own start-up chatter
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None)
    try:
        with distributed.Client(cluster) as client:
            scattered = lmm.fit_many(FORMULA, data, Y, groups="donor", client=client,
                                     chunk_size=3, progress=False)
            pd.testing.assert_frame_equal(serial.table, scattered.table)
            executor = lmm.fit_many(FORMULA, data, Y, groups="donor",
                                    executor=client.get_executor(), chunk_size=3,
                                    progress=False)
            pd.testing.assert_frame_equal(serial.table, executor.table)
    finally:
        cluster.close()


def test_row_count_mismatch_is_a_clear_error(case):
    data, Y = case
    with pytest.raises(ValueError, match="responses has 47 rows but data has 48"):
        lmm.fit_many(FORMULA, data, Y.iloc[:-1], groups="donor", progress=False)
    with pytest.raises(ValueError, match="pass its transpose"):
        lmm.fit_many(FORMULA, data, Y.to_numpy().T, groups="donor", progress=False)
    md = lmm.mixedlm("x " + FORMULA, data, groups="donor")
    with pytest.raises(ValueError, match="responses has 10 rows but the model has 48"):
        md.fit_many(np.zeros((10, 2)))


def test_names_and_inputs(case):
    data, Y = case
    arr = lmm.fit_many(FORMULA, data, Y.to_numpy()[:, :3], groups="donor", progress=False)
    assert list(arr.table.index) == ["y0", "y1", "y2"]
    assert _quiet(arr.results, "y1").model.endog_names == "y1"
    one = lmm.fit_many(FORMULA, data, Y["gene0"], groups="donor", progress=False)
    assert list(one.table.index) == ["gene0"]
    with pytest.raises(ValueError, match="names must be unique"):
        lmm.fit_many(FORMULA, data, Y.iloc[:, [0, 0]], groups="donor", progress=False)
    with pytest.raises(KeyError, match="no response named 'nope'"):
        arr.results("nope")
    with pytest.raises(TypeError, match="groups="):
        lmm.fit_many(FORMULA, data, Y, progress=False)
    # responses indexed like the data but in another order are aligned by label
    shuffled = Y.set_axis(data.index).iloc[::-1]
    aligned = lmm.fit_many(FORMULA, data, shuffled, groups="donor", progress=False)
    base = lmm.fit_many(FORMULA, data, Y, groups="donor", progress=False)
    pd.testing.assert_frame_equal(aligned.table, base.table)
    bad = Y.copy()
    bad.iloc[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        lmm.fit_many(FORMULA, data, bad, groups="donor", progress=False)
    with pytest.raises(ValueError, match="no columns"):
        lmm.fit_many(FORMULA, data, Y.iloc[:, :0], groups="donor", progress=False)
    with pytest.raises(NotImplementedError, match="one grouping factor"):
        lmm.fit_many("~ c1 + (1 | donor) + (1 | cond)", data, Y, progress=False)
    with pytest.raises(ValueError, match="either as"):
        lmm.fit_many("~ c1 + (1 | donor)", data, Y, re_formula="~x", progress=False)


def test_missing_covariates_dropped_for_all(case):
    data, Y = case
    d = data.copy()
    d.loc[5, "c1"] = np.nan
    res = lmm.fit_many(FORMULA, d, Y.iloc[:, :2], groups="donor", missing="drop",
                       progress=False)
    assert res.table["nobs"].tolist() == [len(d) - 1, len(d) - 1]
    ref = _quiet(lmm.mixedlm("resp " + FORMULA, d.assign(resp=Y["gene0"]), groups="donor",
                             missing="drop").fit)
    assert res.llf["gene0"] == pytest.approx(ref.llf, abs=1e-6)
    assert _quiet(res.results, "gene0").llf == pytest.approx(ref.llf, abs=1e-6)


def test_unfittable_response_is_reported(case):
    data, Y = case
    Y = Y.iloc[:, :2].copy()
    Y.iloc[4:, 1] = np.nan                         # one donor left
    with pytest.warns(lmm.ConvergenceWarning, match="1 of 2 responses"):
        res = lmm.fit_many(FORMULA, data, Y, groups="donor", progress=False)
    assert not res.table.loc["gene1", "converged"]
    assert np.isnan(res.llf["gene1"])
    assert "not fitted" in res.messages["gene1"][0]
    assert res.table.loc["gene0", "converged"]


def test_progress_bar(case, capsys):
    pytest.importorskip("tqdm")
    data, Y = case
    lmm.fit_many(FORMULA, data, Y, groups="donor", progress=True, chunk_size=2)
    assert "responses" in capsys.readouterr().err
    lmm.fit_many(FORMULA, data, Y, groups="donor", progress=False)
    assert capsys.readouterr().err == ""


def test_response_cross_products_kernel(case):
    data, Y = case
    md = lmm.mixedlm("x " + FORMULA, data, groups="donor")
    Yc = np.ascontiguousarray(np.nan_to_num(Y.to_numpy()))
    zty, xty, yty = _many_responses.response_cross_products(md.exog, md.exog_re, Yc, md.row_order,
                                                  md.group_offsets)
    for j in (0, 5):
        ref = _core.cross_products(md.exog, md.exog_re, Yc[:, j].copy(), md.row_order,
                                   md.group_offsets)
        np.testing.assert_allclose(zty[:, :, j], ref[2], rtol=1e-13)
        np.testing.assert_allclose(xty[:, j], ref[4], rtol=1e-13)
        assert yty[j] == pytest.approx(ref[5], rel=1e-13)


def test_bench_quick_run(tmp_path):
    """bench/many.py's quickest run (lmm only) completes and writes its JSON."""
    import json

    from bench_loader import load_bench

    many = load_bench("many")
    out = tmp_path / "many.json"
    assert many.main(["--quick", "--no-r", "--no-statsmodels", "--out", str(out)]) == 0
    run = json.loads(out.read_text())
    assert run["lmm"]["200_jobs1"]["converged"] == 200
    assert run["agreement_one_by_one"]["max_abs_llf_diff"] < 1e-6
