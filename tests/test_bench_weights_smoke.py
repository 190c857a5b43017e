"""Smoke test of ``python -m bench.weights``: one repetition, a few evaluations.

The bench package is loaded from its path, as in tests/test_bench_smoke.py, so the
installed lmm is the one benchmarked.
"""

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load_weights():
    if "bench" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "bench", BENCH / "__init__.py", submodule_search_locations=[str(BENCH)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench"] = module
        spec.loader.exec_module(module)
    return importlib.import_module("bench.weights")


def test_weighted_and_unweighted_rows_for_each_case():
    weights = _load_weights()
    rows = weights.run(reps=1, evals=2)
    assert [(r["case"], r["weights"]) for r in rows] == [
        ("one_factor_1e5", "no"), ("one_factor_1e5", "yes"),
        ("crossed_penicillin_x40", "no"), ("crossed_penicillin_x40", "yes")]
    for r in rows:
        assert r["setup"] > 0 and r["fit"] > 0 and r["per_eval_us"] > 0
    # the weighted and unweighted models are different fits of the same data
    by = {(r["case"], r["weights"]): r for r in rows}
    assert by["one_factor_1e5", "no"]["llf"] != pytest.approx(by["one_factor_1e5", "yes"]["llf"])
