"""Smoke test of ``python -m bench.weights``: one repetition, a few evaluations.

The bench package is loaded from its path, as in tests/test_bench_smoke.py, so the
installed lmm is the one benchmarked.
"""


import pytest
from bench_loader import load_bench


def test_weighted_and_unweighted_rows_for_each_case():
    weights = load_bench("weights")
    rows = weights.run(reps=1, evals=2)
    assert [(r["case"], r["weights"]) for r in rows] == [
        ("one_factor_1e5", "no"), ("one_factor_1e5", "yes"),
        ("crossed_penicillin_x40", "no"), ("crossed_penicillin_x40", "yes")]
    for r in rows:
        assert r["setup"] > 0 and r["fit"] > 0 and r["per_eval_us"] > 0
    # the weighted and unweighted models are different fits of the same data
    by = {(r["case"], r["weights"]): r for r in rows}
    assert by["one_factor_1e5", "no"]["llf"] != pytest.approx(by["one_factor_1e5", "yes"]["llf"])
