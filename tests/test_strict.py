"""No silent wrong answers from usage: unknown keywords, threads, the caller's arrays
edited afterwards, strings where numbers are expected."""

import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import lmm
from lmm import _arguments


@pytest.fixture(scope="module")
def dietox():
    return lmm.datasets.get_rdataset("dietox", "geepack").data


# -- keywords ------------------------------------------------------------------

def test_unknown_fit_keyword_is_an_error_naming_it(dietox):
    md = lmm.mixedlm("Weight ~ Time", dietox, groups="Pig")
    with pytest.raises(TypeError, match="'foo'"):
        md.fit(foo=1)
    with pytest.raises(TypeError, match="'REMl'.*did you mean 'reml'"):
        md.fit(REMl=False)


def test_lmer_misspelt_keyword_is_an_error(dietox):
    with pytest.raises(TypeError, match="REMl"):
        lmm.lmer("Weight ~ Time + (1 | Pig)", dietox, REMl=False)
    with pytest.raises(TypeError, match="REML must be True or False"):
        lmm.lmer("Weight ~ Time + (1 | Pig)", dietox, REML=None)


@pytest.mark.parametrize("name", ["control", "na_action"])
def test_lme4_keywords_not_built_yet_say_so(dietox, name):
    with pytest.raises(NotImplementedError, match=name):
        lmm.lmer("Weight ~ Time + (1 | Pig)", dietox, **{name: "x"})
    with pytest.raises(NotImplementedError, match=name):
        lmm.mixedlm("Weight ~ Time", dietox, groups="Pig", **{name: "x"})


@pytest.mark.parametrize("name", ["weights", "offset"])
def test_weights_and_offset_reach_the_several_factor_engine(dietox, name):
    """weights= and offset= are taken by every entry point (issue 19): lmer and mixedlm
    with variance components build the same weighted model; never swallowed."""
    import pandas as pd

    d = pd.read_csv(Path(__file__).parent / "data" / "pastes.csv")
    value = 1.0 + (np.arange(len(d)) % 3)
    a = lmm.lmer("strength ~ 1 + (1 | batch) + (1 | batch:cask)", d, **{name: value})
    b = lmm.mixedlm("strength ~ 1", d, groups="batch", re_formula="1",
                    vc_formula={"cask": "0 + C(cask)"}, **{name: value}).fit()
    plain = lmm.lmer("strength ~ 1 + (1 | batch) + (1 | batch:cask)", d)
    assert b.llf == pytest.approx(a.llf, abs=1e-7)
    assert abs(a.llf - plain.llf) > 1.0
    np.testing.assert_allclose(getattr(a.model, name), value)


def test_several_factor_fit_rejects_unknown_keywords(dietox):
    d = dietox.assign(Litter=dietox["Litter"] % 4)
    with pytest.raises(TypeError, match="'foo'"):
        lmm.lmer("Weight ~ Time + (1 | Pig) + (1 | Litter)", d, foo=1)


def test_statsmodels_ignored_keywords_warn_once(dietox, monkeypatch):
    monkeypatch.setattr(_arguments, "_WARNED", set())
    md = lmm.mixedlm("Weight ~ Time", dietox, groups="Pig")
    ref = md.fit()
    with pytest.warns(UserWarning, match="niter_sa"):
        res = md.fit(niter_sa=5)
    assert res.llf == ref.llf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        md.fit(niter_sa=5)                 # once per process
    with pytest.warns(UserWarning, match="disp"):
        md.fit(disp=True)
    assert md.fit(maxiter=500).llf == ref.llf


def test_lmer_subset_equals_the_subset_data(dietox):
    keep = dietox["Pig"].to_numpy() % 2 == 0
    res = lmm.lmer("Weight ~ Time + (1 | Pig)", dietox, subset=keep)
    ref = lmm.lmer("Weight ~ Time + (1 | Pig)", dietox[keep].reset_index(drop=True))
    assert res.nobs == keep.sum()
    assert res.llf == pytest.approx(ref.llf, rel=1e-12)


# -- threads -------------------------------------------------------------------

def test_one_model_fitted_from_four_threads_gives_the_serial_fits(dietox):
    """4 threads x 50 fits of one model object (REML and ML mixed): every fit is
    bitwise the serial one (the compiled criterion's scratch is per thread)."""
    md = lmm.mixedlm("Weight ~ Time", dietox, groups="Pig", re_formula="~Time")

    def one(i):
        r = md.fit(reml=(i % 3 != 0))
        return (r.reml, r.llf, tuple(r.fe_params), tuple(r.cov_re.to_numpy().ravel()),
                r.converged, tuple(r.bse_fe))

    serial = {True: one(1), False: one(0)}
    with ThreadPoolExecutor(4) as pool:
        out = list(pool.map(one, range(50 * 4)))
    assert all(o == serial[o[0]] for o in out)


# -- the caller's arrays ---------------------------------------------------------

def test_editing_the_callers_arrays_afterwards_changes_nothing(dietox):
    n = len(dietox)
    y = dietox["Weight"].to_numpy(dtype=float).copy()
    x = np.column_stack([np.ones(n), dietox["Time"].to_numpy(float)])
    z = x.copy()
    g = dietox["Pig"].to_numpy().copy()
    md = lmm.MixedLM(y, x, g, exog_re=z)
    res = md.fit()
    llf, resid = res.llf, np.asarray(res.resid).copy()
    y[:] = 0.0
    x[:, 1] = 1.0
    z[:, 1] = -3.0
    g[:] = g[0]
    assert md.fit().llf == llf
    np.testing.assert_array_equal(np.asarray(res.resid), resid)


# -- strings where numbers are expected -------------------------------------------

def test_numeric_strings_in_exog_are_refused(dietox):
    n = len(dietox)
    x = np.column_stack([np.ones(n), dietox["Time"].to_numpy(float)]).astype(str)
    with pytest.raises(TypeError, match="strings"):
        lmm.MixedLM(dietox["Weight"], x, dietox["Pig"])
    with pytest.raises(TypeError, match="strings"):
        lmm.MixedLM(dietox["Weight"].astype(str).to_numpy(), x.astype(float), dietox["Pig"])


# -- small cases named, not crashed ---------------------------------------------

def test_empty_data_is_named(dietox):
    with pytest.raises(ValueError, match="no rows"):
        lmm.mixedlm("Weight ~ Time", dietox.iloc[:0], groups="Pig")
    with pytest.raises(ValueError, match="no rows"):
        lmm.MixedLM(np.zeros(0), np.zeros((0, 1)), np.zeros(0))


@pytest.mark.parametrize("response", ["constant", "linear"])
def test_response_fitted_exactly_by_the_fixed_effects_is_named(dietox, response):
    d = dietox.copy()
    d["Weight"] = 5.0 if response == "constant" else 2.0 + 0.5 * d["Time"]
    with pytest.raises(ValueError, match="fitted exactly by the fixed effects"):
        lmm.mixedlm("Weight ~ Time", d, groups="Pig").fit()
    with pytest.raises(ValueError, match="fitted exactly"):
        lmm.lmer("Weight ~ Time + (1 | Pig)", d)


def test_misaligned_pandas_inputs_are_refused(dietox):
    y = dietox["Weight"].copy()
    y.index = y.index[::-1]
    x = dietox[["Time"]].assign(const=1.0)
    with pytest.raises(ValueError, match="not aligned"):
        lmm.MixedLM(y, x, dietox["Pig"])
    # the same labels, the same rows: fine
    lmm.MixedLM(dietox["Weight"], x, dietox["Pig"])


def test_refits_on_threads_silence_warnings_without_losing_the_users_filters():
    """Bootstrap and pb_test refits on threads silence their warnings with
    lmm._threads.quiet_warnings: entered and left by many threads at once, the
    process's filters afterwards are the ones before (catch_warnings per thread would
    restore them out of order), and no warning escapes the refits under 'error'."""
    import threading

    from lmm._threads import quiet_warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message="a user's own filter")
        before = list(warnings.filters)
        barrier = threading.Barrier(8)
        escaped = []

        def work():
            barrier.wait()
            for _ in range(200):
                with quiet_warnings():
                    try:
                        warnings.warn("inside a refit", RuntimeWarning, stacklevel=1)
                    except RuntimeWarning as exc:
                        escaped.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert escaped == []
        assert warnings.filters == before
