"""Data frames other than pandas, and pandas' nullable and categorical dtypes, give the
pandas fit (lmm.dataframes converts at the boundary)."""

import numpy as np
import pandas as pd
import pytest

import lmm
from lmm.dataframes import to_pandas

FORMULA = "Weight ~ Time + Evit + (1 + Time | Pig)"


@pytest.fixture(scope="module")
def dietox():
    return lmm.datasets.get_rdataset("dietox", "geepack").data


@pytest.fixture(scope="module")
def reference(dietox):
    return lmm.lmer(FORMULA, dietox)


def _polars(d):
    pl = pytest.importorskip("polars")
    return pl.DataFrame({c: d[c].to_numpy() for c in d.columns})


def test_polars_frame_every_entry_point(dietox, reference):
    p = _polars(dietox)
    assert lmm.lmer(FORMULA, p).llf == pytest.approx(reference.llf, abs=1e-10)
    sm = lmm.mixedlm("Weight ~ Time", dietox, groups="Pig", re_formula="~Time").fit()
    for groups in ("Pig", p["Pig"]):
        got = lmm.mixedlm("Weight ~ Time", p, groups=groups, re_formula="~Time").fit()
        assert got.llf == pytest.approx(sm.llf, abs=1e-10)
    many = lmm.fit_many("~ Time", p, responses=p.select(["Weight", "Feed"]).fill_null(0.0),
                        groups="Pig", progress=False)
    one = lmm.lmer("Weight ~ Time + (1 | Pig)", dietox)
    assert many.table.loc["Weight", "llf"] == pytest.approx(one.llf, abs=1e-7)
    crossed = lmm.lmer("Weight ~ Time + (1 | Pig) + (1 | Litter)", p)
    assert crossed.llf == pytest.approx(
        lmm.lmer("Weight ~ Time + (1 | Pig) + (1 | Litter)", dietox).llf, abs=1e-10)


def test_polars_nulls_are_missing_values(dietox):
    pl = pytest.importorskip("polars")
    p = _polars(dietox).with_columns(
        pl.when(pl.col("Time") == 3).then(None).otherwise(pl.col("Feed")).alias("Feed"))
    got = lmm.lmer("Weight ~ Feed + (1 | Pig)", p, missing="drop")
    d = dietox.assign(Feed=np.where(dietox["Time"] == 3, np.nan, dietox["Feed"]))
    want = lmm.lmer("Weight ~ Feed + (1 | Pig)", d, missing="drop")
    assert got.nobs == want.nobs
    assert got.llf == pytest.approx(want.llf, abs=1e-10)


def test_pyarrow_table(dietox, reference):
    pa = pytest.importorskip("pyarrow")
    t = pa.table({c: dietox[c].to_numpy() for c in dietox.columns})
    assert lmm.lmer(FORMULA, t).llf == pytest.approx(reference.llf, abs=1e-10)


@pytest.mark.parametrize("column,dtype", [("Time", "Int64"), ("Weight", "Float64"),
                                          ("Evit", "string"), ("Evit", "category"),
                                          ("Pig", "category")])
def test_pandas_nullable_and_categorical_dtypes(dietox, reference, column, dtype):
    d = dietox.assign(**{column: dietox[column].astype(dtype)})
    assert lmm.lmer(FORMULA, d).llf == pytest.approx(reference.llf, abs=1e-10)


def test_pandas_na_in_a_nullable_column_is_missing(dietox):
    d = dietox.assign(Time=dietox["Time"].astype("Int64"))
    d.loc[3, "Time"] = pd.NA
    res = lmm.lmer("Weight ~ Time + (1 | Pig)", d, missing="drop")
    assert res.nobs == len(d) - 1
    with pytest.raises(ValueError, match="missing"):
        lmm.lmer("Weight ~ Time + (1 | Pig)", d)


def test_to_pandas_leaves_pandas_and_arrays_alone(dietox):
    assert to_pandas(dietox) is dietox
    a = np.ones(3)
    assert to_pandas(a) is a
    assert to_pandas(None) is None
