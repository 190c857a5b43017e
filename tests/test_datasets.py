"""The shipped data sets load offline with R's shapes and values."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmm

DATA = Path(__file__).parent / "data"

# (name, package): (rows, columns) as R reports dim() of the data set
SHAPES = {("dietox", "geepack"): (861, 8), ("Sitka", "MASS"): (395, 4),
          ("sleepstudy", "lme4"): (180, 3), ("Penicillin", "lme4"): (144, 3),
          ("Pastes", "lme4"): (60, 4), ("Dyestuff", "lme4"): (30, 2),
          ("Orthodont", "nlme"): (108, 4)}


@pytest.mark.parametrize("name,package", list(SHAPES))
def test_shipped_data_sets_load(name, package):
    ds = lmm.datasets.get_rdataset(name, package)
    assert ds.data.shape == SHAPES[name, package]
    assert package in repr(ds) and ds.__doc__


@pytest.mark.parametrize("name,csv", [("sleepstudy", "sleepstudy.csv"),
                                      ("Penicillin", "penicillin.csv"),
                                      ("Pastes", "pastes.csv")])
def test_shipped_copies_equal_the_test_references_data(name, csv):
    """The tests' references were computed on tests/data's copies (written by R from
    lme4): the shipped ones are the same data."""
    shipped = lmm.datasets.get_rdataset(name, "lme4").data
    ref = pd.read_csv(DATA / csv)
    assert list(shipped.columns) == list(ref.columns)
    for c in ref.columns:
        np.testing.assert_array_equal(shipped[c].astype(str), ref[c].astype(str))


def test_dyestuff_matches_lme4():
    """lme4's Dyestuff fit (its documentation's first example, lme4 1.1-31):
    REML criterion 319.6543, sigma 49.51, between-batch sd 42.00."""
    d = lmm.datasets.get_rdataset("Dyestuff", "lme4").data
    res = lmm.lmer("Yield ~ 1 | Batch", d)
    assert -2 * res.llf == pytest.approx(319.6543, abs=1e-4)
    assert np.sqrt(res.scale) == pytest.approx(49.51, abs=0.01)
    assert np.sqrt(float(res.cov_re.iloc[0, 0])) == pytest.approx(42.00, abs=0.01)


def test_unknown_data_set_names_what_is_shipped():
    with pytest.raises(ValueError, match="Penicillin"):
        lmm.datasets.get_rdataset("InstEval", "lme4")
