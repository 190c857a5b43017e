"""Deterministic speed guards (tests/guard_cases.py says what they count).

A change that adds Python-level calls to a small fit, or alters the optimizer's
path on a reference fit, fails here; when it is meant to, rerun
``python tools/update_guard_baselines.py`` and commit the new baselines with the
change and the reason.
"""

import json
from pathlib import Path

import pytest
from guard_cases import call_counts, evaluation_counts

BASELINES = json.loads((Path(__file__).parent / "data" / "guard_baselines.json").read_text())


def test_python_calls_of_a_small_fit_do_not_grow(dietox):
    counts = call_counts(dietox)
    for name, baseline in BASELINES["calls"].items():
        assert counts[name] <= baseline, (
            f"{name}: {counts[name]} Python calls inside lmm, baseline {baseline}")


@pytest.fixture(scope="module")
def evaluations():
    return evaluation_counts()


@pytest.mark.parametrize("case", sorted(BASELINES["evaluations"]))
def test_criterion_evaluations_of_reference_fits_are_unchanged(evaluations, case):
    assert evaluations[case] == BASELINES["evaluations"][case], case
