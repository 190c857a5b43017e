"""predict() against lme4's predict(): every term, none, some terms, new levels; one
grouping factor with a random slope (sleepstudy) and a crossed model (Penicillin).

References: tests/data/lme4_predict.json, made by tests/data/lme4_predict_ref.R.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmm

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "lme4_predict.json").read_text())


def _fit(case):
    ref = REF[case]
    if case == "sleepstudy":
        d = pd.read_csv(DATA / "sleepstudy.csv", dtype={"Subject": str})
    else:
        d = pd.read_csv(DATA / "penicillin.csv", dtype={"plate": str, "sample": str})
    res = lmm.lmer(ref["formula"], d)
    assert res.llf == pytest.approx(ref["loglik"], abs=1e-6)
    new = pd.DataFrame(ref["newdata"])
    if case == "sleepstudy":
        new["Subject"] = new["Subject"].astype(str)
    return res, d, new, ref


# lme4 ends its fits within about 1e-6 of the optimum: predictions agree to ~1e-6
RTOL = 2e-6


@pytest.mark.parametrize("case", ["sleepstudy", "penicillin"])
def test_predict_matches_lme4(case):
    res, d, new, ref = _fit(case)
    np.testing.assert_allclose(res.predict(new, allow_new_levels=True), ref["all"],
                               rtol=RTOL)
    np.testing.assert_allclose(res.predict(new, re_form="~0"), ref["none"], rtol=RTOL)
    np.testing.assert_allclose(res.predict(new, re_form=False), ref["none"], rtol=RTOL)
    known = new.iloc[ref["known_rows"]]
    np.testing.assert_allclose(res.predict(known), ref["all_known"], rtol=RTOL)
    np.testing.assert_allclose(res.fittedvalues.to_numpy()[:5], ref["fitted_head"],
                               rtol=RTOL)
    # in-sample: predict(data) is fittedvalues
    np.testing.assert_allclose(res.predict(d).to_numpy(), res.fittedvalues.to_numpy(),
                               rtol=0, atol=1e-12 * np.abs(res.fittedvalues).max())
    # a new level is an error naming it, unless allowed
    with pytest.raises(ValueError, match="was not in the fit"):
        res.predict(new)


def test_predict_chosen_terms_of_a_crossed_model_matches_lme4():
    res, _, new, ref = _fit("penicillin")
    np.testing.assert_allclose(res.predict(new, re_form="~(1 | plate)",
                                           allow_new_levels=True),
                               ref["plate_only"], rtol=RTOL)
    np.testing.assert_allclose(res.predict(new, re_form="~(1 | sample)",
                                           allow_new_levels=True),
                               ref["sample_only"], rtol=RTOL)
