"""The seed walkthrough's Python cells, with lmm's imports in statsmodels' place.

The cells below are those of shared/seed/walkthrough.txt for the model fits
(the profile-likelihood cells belong to the profiling work), unchanged but for
the two imports; they must run without any warning and reach lme4's best
optima.
"""

import warnings

import pytest

CELLS = '''
import numpy as np
import lmm.api as sm
import lmm.formula.api as smf

data = sm.datasets.get_rdataset('dietox', 'geepack').data
md = smf.mixedlm("Weight ~ Time", data, groups=data["Pig"])
mdf = md.fit()
print(mdf.summary())
llf_dietox_ri = mdf.llf

md = smf.mixedlm("Weight ~ Time", data, groups=data["Pig"], re_formula="~Time")
mdf = md.fit()
print(mdf.summary())
llf_dietox_rs = mdf.llf

.294 / (19.493 * .416)**.5

md = smf.mixedlm("Weight ~ Time", data, groups=data["Pig"],
re_formula="~Time")
free = sm.regression.mixed_linear_model.MixedLMParams.from_components(np.ones(2),
np.eye(2))
mdf = md.fit(free=free)
print(mdf.summary())
llf_dietox_diag = mdf.llf

data = sm.datasets.get_rdataset("Sitka", "MASS").data
endog = data["size"]
data["Intercept"] = 1
exog = data[["Intercept", "Time"]]

md = sm.MixedLM(endog, exog, groups=data["tree"], exog_re=exog["Intercept"])
mdf = md.fit()
print(mdf.summary())
llf_sitka_ri = mdf.llf

exog_re = exog.copy()
md = sm.MixedLM(endog, exog, data["tree"], exog_re)
mdf = md.fit()
print(mdf.summary())
llf_sitka_rs = mdf.llf
re = mdf.cov_re.iloc[1, 1]
'''


def test_walkthrough_cells_run_without_warnings(lme4_seed, capsys):
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(compile(CELLS, "walkthrough", "exec"), namespace)
    best = {k: v["best"]["loglik"] for k, v in lme4_seed.items()}
    assert namespace["llf_dietox_ri"] == pytest.approx(best["dietox_ri_reml"], abs=1e-6)
    assert namespace["llf_dietox_rs"] == pytest.approx(best["dietox_rs_reml"], abs=1e-6)
    assert namespace["llf_dietox_diag"] == pytest.approx(best["dietox_diag_reml"], abs=1e-6)
    assert namespace["llf_sitka_ri"] == pytest.approx(best["sitka_ri_reml"], abs=1e-6)
    assert namespace["llf_sitka_rs"] == pytest.approx(best["sitka_rs_reml"], abs=1e-6)
    # the random-slope variance of Sitka, read as the walkthrough reads it
    assert namespace["re"] == pytest.approx(
        lme4_seed["sitka_rs_reml"]["best"]["varcorr"][0]["cov"][1][1], rel=1e-4)
    out = capsys.readouterr().out
    assert out.count("Mixed Linear Model Regression Results") == 5
    assert "Converged:          Yes" in out
