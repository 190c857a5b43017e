"""The fast formula path gives exactly patsy's design matrices and names."""

import warnings

import numpy as np
import pandas as pd
import patsy
import pytest

import lmm
from lmm.formula import fast


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    n = 40
    return pd.DataFrame({
        "y": rng.normal(size=n),
        "x": rng.normal(size=n),
        "t": rng.integers(0, 10, n),
        "w": rng.uniform(1, 2, n),
        "f": rng.choice(["b", "a", "c"], n),
        "b": rng.integers(0, 2, n).astype(bool),
        "k": pd.Categorical(rng.choice(["lo", "mid", "hi"], n), categories=["lo", "mid", "hi"]),
        "g": rng.integers(0, 8, n),
    })


FAST = [
    "x", "x + t", "t + x", "x*t", "t:x + x", "x + x", "x:t:w", "x*t*w", "0 + x",
    "x - 1", "-1 + x + t", "x + 0", "1", "f", "C(f)", "x + f", "f + x", "0 + f",
    "f - 1 + x", "b", "k", "C(t)", "x + f + k", "0 + f + k", "C(g) + x:t",
    "x + 1", "x * w + f",
]
# (the fast path must not read ^ itself: patsy's path gives it R's meanings)
PATSY_ONLY = ["np.log(w)", "I(x**2)", "x:f", "f*x", "f:k", "x - t", "center(x)", "Q('x')",
              "I(x^2)", "(x + t)^2", "x^2", "poly(x, 2)", "log(w)"]


@pytest.mark.parametrize("rhs", FAST)
def test_fast_path_matches_patsy(frame, rhs):
    design = fast.plan(rhs, frame)
    assert design is not None, f"{rhs} should take the fast path"
    expected = patsy.dmatrix(rhs, frame, return_type="dataframe")
    assert design.column_names == list(expected.columns)
    np.testing.assert_array_equal(design.matrix(frame), expected.to_numpy())


@pytest.mark.parametrize("rhs", PATSY_ONLY)
def test_other_formulas_fall_back_to_patsy(frame, rhs):
    assert fast.plan(rhs, frame) is None


@pytest.mark.parametrize("rhs", ["x + f", "x*t + k"])
def test_new_data_uses_the_fitted_coding(frame, rhs):
    design = fast.plan(rhs, frame)
    info = patsy.dmatrix(rhs, frame).design_info
    new = frame.iloc[[3, 1, 7]]
    (expected,) = patsy.build_design_matrices([info], new)
    np.testing.assert_array_equal(design.matrix(new), np.asarray(expected))


def test_unseen_level_in_new_data(frame):
    design = fast.plan("x + f", frame)
    with pytest.raises(ValueError, match="levels not seen"):
        design.matrix(frame.assign(f="zzz"))


@pytest.mark.parametrize("formula,re_formula", [
    ("y ~ x + f", "~x"), ("y ~ x*t", None), ("y ~ np.log(w) + x", "~x"), ("y ~ x", "~f"),
])
def test_models_from_both_paths_agree(frame, formula, re_formula, monkeypatch):
    a = lmm.mixedlm(formula, frame, groups="g", re_formula=re_formula)
    monkeypatch.setattr(fast, "plan", lambda rhs, data: None)
    b = lmm.mixedlm(formula, frame, groups="g", re_formula=re_formula)
    assert a.exog_names == b.exog_names
    assert a.exog_re_names == b.exog_re_names
    np.testing.assert_array_equal(a.exog, b.exog)
    np.testing.assert_array_equal(a.exog_re, b.exog_re)
    np.testing.assert_array_equal(a.endog, b.endog)


def test_missing_values_in_fast_path(frame):
    df = frame.copy()
    df.loc[[1, 4], "x"] = np.nan
    df.loc[6, "f"] = None
    with pytest.raises(ValueError, match=r"missing values.*\['x', 'f'\]|missing values.*'f'"):
        lmm.mixedlm("y ~ x + f", df, groups="g")
    md = lmm.mixedlm("y ~ x + f", df, groups="g", missing="drop")
    assert md.nobs == len(df) - 3
    ref = df.dropna(subset=["x", "f"])
    np.testing.assert_array_equal(md.exog, patsy.dmatrix("x + f", ref))


@pytest.mark.parametrize("rhs, read", [
    ("center(x)", ["x"]), ("standardize(w) + f", ["w"]), ("bs(w, df=4)", ["w"]),
    ("center(x):C(f)", ["x"]), ("np.log(x + 1)", ["x"])])
def test_patsys_stateful_transforms_with_missing_drop(frame, rhs, read):
    # patsy's center/standardize/bs memorize NaN statistics on a column with missing
    # values, which turned every row missing ("the data have no rows"): the rows
    # with missing values go first, and the transforms see the complete rows, on
    # each path (statsmodels style, lme4 style with one and with several factors)
    df = frame.copy()
    df.loc[[1, 4, 9], "x"] = np.nan
    df.loc[[2, 4], "w"] = np.nan
    df["g2"] = np.arange(len(df)) % 5
    complete = df.dropna(subset=read)
    if "log" in rhs:            # (an expression's own NaN: those rows go too)
        complete = complete[complete["x"] > -1]
    expected = patsy.dmatrix(rhs, complete, return_type="dataframe")
    with warnings.catch_warnings():     # (noise data: the fits may be singular)
        warnings.simplefilter("ignore")
        models = [lmm.mixedlm(f"y ~ {rhs}", df, groups="g", missing="drop")] + [
            lmm.lmer(f"y ~ {rhs} + {bars}", df, missing="drop").model
            for bars in ["(1 | g)", "(1 | g) + (1 | g2)"]]
    for md in models:
        assert md.nobs == len(complete)
        # (same columns in the same order; lme4-style models name them as R does)
        np.testing.assert_allclose(np.asarray(md.exog), expected.to_numpy(),
                                   rtol=1e-12, atol=1e-12)


def test_model_keeps_its_own_response(frame):
    # the design is read from the DataFrame once: later changes to it do not
    # reach the model
    df = frame.copy()
    md = lmm.mixedlm("y ~ x", df, groups="g", re_formula="~x")
    y = md.endog.copy()
    df.loc[0, "y"] = 1e6
    np.testing.assert_array_equal(md.endog, y)
    # parsed formulas are cached on the string alone: other data, other columns
    other = frame.assign(x=frame["x"] * 2.0)
    np.testing.assert_array_equal(lmm.mixedlm("y ~ x", other, groups="g").exog[:, 1],
                                  2.0 * frame["x"].to_numpy())
