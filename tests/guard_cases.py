"""The deterministic speed guards of the tests (tests/test_guards.py) and of
tools/update_guard_baselines.py, which writes tests/data/guard_baselines.json.

- Python-level calls: `call` events under ``sys.setprofile`` whose code lives
  inside the lmm package, while fitting dietox's random-slope model from its
  formula (statsmodels-style and lme4-style).  Small fits cost Python
  overhead, not arithmetic: this count is what grows when they get slower.
- Criterion evaluations of the reference fits (the ten seed cases, one grouping
  factor, and the several-factor reference cases): a change in the optimizer's
  path shows here before it shows in a benchmark.
"""

import json
import os
import sys
import warnings
from pathlib import Path

import pandas as pd

import lmm

DATA = Path(__file__).parent / "data"
PACKAGE_DIR = os.path.dirname(os.path.abspath(lmm.__file__))


def count_lmm_calls(fn):
    """The number of Python function calls inside lmm/ made by fn()."""
    count = 0

    def profiler(frame, event, arg):
        nonlocal count
        if event == "call" and frame.f_code.co_filename.startswith(PACKAGE_DIR):
            count += 1

    sys.setprofile(profiler)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


def call_counts(dietox):
    """Python-level calls of the dietox random-slope fit from formula, each entry
    point measured after a warm-up fit (imports and first-use caches excluded)."""
    entries = {
        "mixedlm_dietox_slope": lambda: lmm.mixedlm(
            "Weight ~ Time", dietox, groups="Pig", re_formula="~Time").fit(),
        "lmer_dietox_slope": lambda: lmm.lmer("Weight ~ Time + (Time | Pig)", dietox),
    }
    out = {}
    for name, fn in entries.items():
        fn()
        out[name] = count_lmm_calls(fn)
    return out


def evaluation_counts():
    """Criterion evaluations (``optinfo["n_evaluations"]``) of the reference fits."""
    from seedcases import fit_seed_case

    dietox = lmm.datasets.get_rdataset("dietox", "geepack").data
    sitka = lmm.datasets.get_rdataset("Sitka", "MASS").data
    seed = json.loads((DATA / "lme4_seed.json").read_text())
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for case in seed:
            res = fit_seed_case(case.rsplit("_", 1)[0], case.endswith("_reml"), dietox, sitka)
            out[case] = res.optinfo["n_evaluations"]
        multi = json.loads((DATA / "lme4_multi.json").read_text())
        for case, ref in multi.items():
            data = pd.read_csv(DATA / f"{ref['data']}.csv")
            formula = ref["formula"]
            if ref["data"] == "cake":
                formula = formula.replace("temperature", "C(temperature)")
            res = lmm.lmer(formula, data, REML=ref["reml"])
            out[case] = res.optinfo["n_evaluations"]
    return out
