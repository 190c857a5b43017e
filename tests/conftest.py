"""Shared fixtures: the shipped data sets and the lme4 reference fits.

tests/data/lme4_seed.json is a copy of the project's reference file
(shared/reference/lme4_seed.json, made by tests/data/lme4_ref.R with lme4
1.1-31): lme4 fits of the ten seed models, `best` being the best optimum over
four optimizers.
"""

import json
from pathlib import Path

import pytest

import lmm

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def lme4_seed():
    with open(DATA / "lme4_seed.json") as fh:
        return json.load(fh)


@pytest.fixture(scope="session")
def dietox():
    return lmm.datasets.get_rdataset("dietox", "geepack").data


@pytest.fixture(scope="session")
def sitka():
    return lmm.datasets.get_rdataset("Sitka", "MASS").data
