"""Smoke test of the benchmark suite (bench/): the quickest run, lmm only.

Needs neither R nor statsmodels nor matplotlib.  The bench package is loaded
from its path, without putting the source tree (whose lmm/ has no compiled
core) on sys.path, so the installed lmm is the one benchmarked.
"""

import json
import math

from bench_loader import load_bench


def test_quick_run_writes_lmm_timings(tmp_path, capsys):
    cli = load_bench("cli")
    out = tmp_path / "latest.json"
    assert cli.main(["--quick", "--no-r", "--no-statsmodels", "--out", str(out)]) == 0
    run = json.loads(out.read_text())
    cases = {c["id"]: c for c in run["cases"]}
    assert "dietox_ri" in cases and "scale_1e4" in cases
    for case in run["cases"]:
        lmm = case["tools"]["lmm"]
        if case["kind"] == "profile" and lmm["status"] == "not implemented":
            continue
        assert lmm["status"] == "ok", (case["id"], lmm)
        assert lmm["reps"] == 1 and lmm["median"] > 0
        assert math.isfinite(lmm["llf"])
        assert case["tools"]["lme4"]["status"] == "skipped"
        assert case["tools"]["statsmodels"]["status"] == "skipped"
    memory = cases["scale_1e4"]["memory"]
    assert memory["extra_bytes"] > 0 and memory["input_bytes"] == 10_000 * 6 * 8
    assert "lmm s (reps)" in capsys.readouterr().out
