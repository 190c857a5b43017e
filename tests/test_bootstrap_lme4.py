"""The parametric bootstrap against lme4's bootMer, 2,000 replicates on each side.

References: tests/data/lme4_bootmer.json, made by tests/data/lme4_bootmer_ref.R
(sleepstudy's random slope, Penicillin's crossed model; REML; fixed effects and sigma).
The two runs use different random streams, so they agree to Monte Carlo error only.
Bounds, for n = 2,000 replicates on each side and near-normal replicates:
- a standard deviation's relative standard error is 1 / sqrt(2 (n - 1)) = 1.6%, so
  two independent ones differ by 2.2% (one sd of the difference); the bound is 12%,
  five of those and a little more;
- a 2.5% quantile's standard error is sqrt(p (1 - p) / n) / phi(1.96) = 0.060 bootstrap
  standard deviations, a difference of two 0.085; the bound is 0.45, five of those.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmm

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "lme4_bootmer.json").read_text())


@pytest.mark.parametrize("case", ["sleepstudy", "penicillin"])
def test_bootstrap_sd_and_percentile_intervals_match_bootmer(case):
    ref = REF[case]
    csv = "sleepstudy.csv" if case == "sleepstudy" else "penicillin.csv"
    res = lmm.lmer(ref["formula"], pd.read_csv(DATA / csv))
    boot = res.bootstrap(ref["nsim"], seed=20261202, n_jobs=2)
    names = list(ref["names"])          # (lme4-style fits carry R's names)
    est = boot.estimates[names].to_numpy()
    np.testing.assert_allclose(est, ref["estimate"], rtol=1e-5)
    sd = boot.sd()[names].to_numpy()
    np.testing.assert_allclose(sd, ref["sd"], rtol=0.12)
    ci = boot.conf_int(0.95).loc[names]
    ref_sd = np.asarray(ref["sd"])
    assert np.all(np.abs(ci["lower"].to_numpy() - ref["lower"]) < 0.45 * ref_sd)
    assert np.all(np.abs(ci["upper"].to_numpy() - ref["upper"]) < 0.45 * ref_sd)
