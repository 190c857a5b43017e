"""The examples run on an installed lmm, offline, with no warnings."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(script, *args, cwd):
    return subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / script), *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=300,
    )


def test_walkthrough_example(tmp_path):
    pytest.importorskip("matplotlib")
    proc = _run("walkthrough.py", tmp_path, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Warning" not in proc.stderr
    out = proc.stdout
    assert out.count("Mixed Linear Model Regression Results") == 5
    assert out.count("Linear mixed model fit by REML") == 4
    assert "-62.4834" in out and "-2217.0475" in out
    assert "statistic: 0.60" in out and "statistic: 0.62" in out
    for png in ("profile_intercept.png", "profile_slope.png"):
        assert (tmp_path / png).stat().st_size > 1000


def test_seed_example(tmp_path):
    proc = _run("dietox.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Log-Likelihood:      -2217.0475" in proc.stdout
