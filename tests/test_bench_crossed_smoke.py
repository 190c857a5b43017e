"""Smoke test of ``python -m bench.crossed``: small cases, lmm only (no R needed).

The bench package is loaded from its path, as in tests/test_bench_smoke.py, so the
installed lmm is the one benchmarked.
"""

import json
import math

from bench_loader import load_bench


def test_quick_run_times_small_cases(tmp_path, capsys):
    crossed = load_bench("crossed")
    out = tmp_path / "crossed.json"
    assert crossed.main(["--quick", "--no-r", "--out", str(out)]) == 0
    run = json.loads(out.read_text())
    ids = [c["id"] for c in run["cases"]]
    assert ids == ["penicillin", "pastes", "multi_crossed_sim", "multi_nested_sim"]
    for case in run["cases"]:
        assert case["size"] == "small" and "lme4" not in case
        lmm = case["lmm"]
        assert lmm["reps"] == 2 and lmm["median"] > 0
        assert math.isfinite(lmm["llf"]) and lmm["converged"]
    assert run["cases"][1]["levels"] == {"batch": 10, "batch:cask": 30}
    assert "| penicillin |" in capsys.readouterr().out
