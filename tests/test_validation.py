"""Bad input gets a clear error naming the problem, never a crash or a wrong answer."""

import numpy as np
import pandas as pd
import pytest

import lmm

from seedcases import simulated


@pytest.fixture
def frame():
    y, x, z, g = simulated(n_groups=30, q=2, p=2, seed=1)
    return pd.DataFrame({"y": y, "x": x[:, 1], "t": z[:, 1], "g": g})


def test_nan_in_response_array_interface(frame):
    y = frame["y"].to_numpy().copy()
    y[3] = np.nan
    x = np.column_stack([np.ones(len(y)), frame["x"]])
    with pytest.raises(ValueError, match=r"missing values.*endog.*missing='drop'"):
        lmm.MixedLM(y, x, frame["g"])


def test_missing_drop_equals_fit_on_complete_rows(frame):
    df = frame.copy()
    df.loc[[2, 5], "y"] = np.nan
    df.loc[7, "t"] = np.nan
    res = lmm.mixedlm("y ~ x", df, groups=df["g"], re_formula="~t", missing="drop").fit()
    keep = df.dropna()
    ref = lmm.mixedlm("y ~ x", keep, groups=keep["g"], re_formula="~t").fit()
    assert res.nobs == len(df) - 3
    assert res.llf == pytest.approx(ref.llf, rel=1e-12)
    # fitted values keep the user's row labels
    assert list(res.fittedvalues.index) == list(keep.index)


def test_nan_in_formula_variable_without_drop(frame):
    df = frame.copy()
    df.loc[4, "x"] = np.nan
    with pytest.raises(ValueError, match="missing values"):
        lmm.mixedlm("y ~ x", df, groups=df["g"])


def test_nan_in_unused_column_is_fine(frame):
    df = frame.assign(unused=np.nan)
    res = lmm.mixedlm("y ~ x", df, groups=df["g"]).fit()
    assert np.isfinite(res.llf)


def test_infinite_values(frame):
    x = np.column_stack([np.ones(len(frame)), frame["x"]])
    x[0, 1] = np.inf
    with pytest.raises(ValueError, match="exog contain infinite"):
        lmm.MixedLM(frame["y"], x, frame["g"])


def test_nan_in_groups(frame):
    g = frame["g"].astype(float).to_numpy(copy=True)
    g[0] = np.nan
    x = np.column_stack([np.ones(len(frame)), frame["x"]])
    with pytest.raises(ValueError, match="groups"):
        lmm.MixedLM(frame["y"], x, g)
    res = lmm.MixedLM(frame["y"], x, g, missing="drop").fit()
    assert res.nobs == len(frame) - 1


def test_single_group(frame):
    with pytest.raises(ValueError, match="at least two groups"):
        lmm.mixedlm("y ~ x", frame, groups=np.zeros(len(frame)))


def test_unknown_column_in_formula(frame):
    with pytest.raises(ValueError, match="nope"):
        lmm.mixedlm("y ~ nope", frame, groups=frame["g"])
    with pytest.raises(ValueError, match="nope"):
        lmm.mixedlm("y ~ x", frame, groups=frame["g"], re_formula="~nope")


def test_unknown_groups_column(frame):
    with pytest.raises(ValueError, match="'grp' is not in the data"):
        lmm.mixedlm("y ~ x", frame, groups="grp")


def test_non_numeric_response(frame):
    df = frame.assign(word=["a", "b"] * (len(frame) // 2) + ["a"] * (len(frame) % 2))
    with pytest.raises((TypeError, ValueError), match="(?i)numeric|response"):
        lmm.mixedlm("word ~ x", df, groups=df["g"])
    x = np.column_stack([np.ones(len(df)), df["x"]])
    with pytest.raises(TypeError, match="endog"):
        lmm.MixedLM(df["word"], x, df["g"])


def test_length_mismatch(frame):
    x = np.column_stack([np.ones(len(frame)), frame["x"]])
    with pytest.raises(ValueError, match="exog has .* rows but endog has"):
        lmm.MixedLM(frame["y"], x[:-1], frame["g"])
    with pytest.raises(ValueError, match="groups has .* rows but endog has"):
        lmm.MixedLM(frame["y"], x, frame["g"][:-2])
    with pytest.raises(ValueError, match="groups has"):
        lmm.mixedlm("y ~ x", frame, groups=frame["g"].to_numpy()[:-1])


def test_rank_deficient_fixed_effects(frame):
    df = frame.assign(x2=2 * frame["x"] + 1)
    with pytest.raises(ValueError, match=r"rank deficient.*'x'.*'x2'"):
        lmm.mixedlm("y ~ x + x2", df, groups=df["g"])


def test_rank_deficient_random_effects(frame):
    df = frame.assign(t2=3 * frame["t"])
    with pytest.raises(ValueError, match=r"random-effects design.*rank deficient"):
        lmm.mixedlm("y ~ x", df, groups=df["g"], re_formula="~t + t2")


def test_zero_column(frame):
    df = frame.assign(zero=0.0)
    with pytest.raises(ValueError, match="zero"):
        lmm.mixedlm("y ~ x + zero", df, groups=df["g"])


def test_as_many_groups_as_rows(frame):
    with pytest.raises(ValueError, match="unidentifiable"):
        lmm.mixedlm("y ~ x", frame, groups=np.arange(len(frame)))


def test_two_dimensional_endog(frame):
    x = np.column_stack([np.ones(len(frame)), frame["x"]])
    with pytest.raises(ValueError, match="endog"):
        lmm.MixedLM(np.column_stack([frame["y"], frame["y"]]), x, frame["g"])


def test_bad_free_pattern(frame):
    md = lmm.mixedlm("y ~ x", frame, groups=frame["g"], re_formula="~t")
    with pytest.raises(ValueError, match="free.cov_re must be"):
        md.fit(free=lmm.MixedLMParams.from_components(np.ones(2), np.ones((3, 3))))
    with pytest.raises(NotImplementedError, match="variance"):
        md.fit(free=lmm.MixedLMParams.from_components(np.ones(2), np.diag([1.0, 0.0])))


def test_bad_start_params(frame):
    md = lmm.mixedlm("y ~ x", frame, groups=frame["g"], re_formula="~t")
    with pytest.raises(ValueError, match="start_params has length"):
        md.fit(start_params=np.ones(7))


def test_string_group_labels_and_object_groups(frame):
    labels = np.array([f"g{int(v):02d}" for v in frame["g"]], dtype=object)
    res_s = lmm.mixedlm("y ~ x", frame, groups=labels).fit()
    res_i = lmm.mixedlm("y ~ x", frame, groups=frame["g"]).fit()
    assert res_s.llf == pytest.approx(res_i.llf, rel=1e-12)
    assert res_s.model.group_labels[0] == "g00"


def test_formula_path_names_the_column_with_missing_values(frame):
    df = frame.copy()
    df.loc[4, "t"] = np.nan
    with pytest.raises(ValueError, match=r"missing values \(NaN\) in \['t'\]; pass missing='drop'"):
        lmm.mixedlm("y ~ x", df, groups="g", re_formula="~t")
    df = frame.copy()
    df.loc[4, "y"] = np.inf
    with pytest.raises(ValueError, match="endog contain infinite"):
        lmm.mixedlm("y ~ x", df, groups="g")


def test_nan_in_numeric_groups_of_formula_path(frame):
    df = frame.assign(g=frame["g"].astype(float))
    df.loc[0, "g"] = np.nan
    with pytest.raises(ValueError, match=r"missing values \(NaN\) in \['groups'\]"):
        lmm.mixedlm("y ~ x", df, groups="g")
    assert lmm.mixedlm("y ~ x", df, groups="g", missing="drop").nobs == len(df) - 1


def test_huge_finite_values_are_not_missing(frame):
    # their squares overflow the cross-products' finiteness check: the rows are
    # then checked one by one, and none is missing
    x = np.column_stack([np.ones(len(frame)), frame["x"]])
    x[0, 1] = 1e200
    md = lmm.MixedLM(frame["y"], x, frame["g"])
    assert md.nobs == len(frame)


@pytest.mark.parametrize("response", ["constant", "linear in the fixed effects"])
def test_several_factors_response_fitted_exactly_is_a_clear_error(response):
    """A response the fixed effects fit exactly leaves no variance: a ValueError saying
    so (it was a TypeError from inside the optimizer), as with one factor."""
    d = lmm.datasets.get_rdataset("dietox", "geepack").data
    y = 5.0 if response == "constant" else 2.0 * d["Time"] + 1.0
    with pytest.raises(ValueError, match="fitted exactly by the fixed effects"):
        lmm.lmer("c ~ Time + (1 | Pig) + (1 | Litter)", d.assign(c=y))


def test_fit_many_messages_show_the_formula_as_written():
    d = lmm.datasets.get_rdataset("dietox", "geepack").data
    with pytest.raises(ValueError, match=r"the formula '~ Tme' uses 'Tme'") as info:
        lmm.fit_many("~ Tme", d, responses=d[["Weight"]], groups="Pig", progress=False)
    assert "__lmm" not in str(info.value)
