"""Smoke check of an installed lmm: what a user who ran ``pip install lmm`` gets.

Run it with the environment's Python from a directory outside the checkout (so the
installed package is imported, not the source tree)::

    python path/to/tools/smoke.py

It prints the versions (``lmm.__version__``, the distribution's, numpy/scipy/pandas/patsy),
checks that the compiled core is loaded and that ``lmm.__version__`` is the installed
distribution's version, then fits statsmodels' documentation example (dietox, random
intercept and slope, REML) from the shipped data and checks its log-likelihood against
lme4's best optimum to 1e-6. Exit status 0 when everything holds. Needs only lmm and its
dependencies (no pytest, no network, no ../shared).

Used by tools/check_wheel.sh (wheel, sdist and oldest-dependency environments) and by
cibuildwheel's test-command (pyproject.toml).
"""

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

# lme4's best REML log-likelihood for Weight ~ Time + (1 + Time | Pig) on dietox: key
# "dietox_rs_reml", field "best" of shared/reference/lme4_seed.json (copied into
# tests/data/lme4_seed.json). Hard-coded so that this check needs nothing but the package.
LME4_BEST_LLF = -2217.04745914549
TOL = 1e-6


def main():
    import numpy
    import pandas
    import patsy
    import scipy

    import lmm
    import lmm.formula.api as smf

    pkg_dir = Path(lmm.__file__).resolve().parent
    source_dir = Path(__file__).resolve().parents[1] / "lmm"
    dist_version = importlib.metadata.version("lmm")
    print(f"lmm {lmm.__version__} (distribution {dist_version}) from {pkg_dir}")
    print(f"python {sys.version.split()[0]}, numpy {numpy.__version__}, scipy {scipy.__version__}, "
          f"pandas {pandas.__version__}, patsy {patsy.__version__}")
    failures = []
    if pkg_dir == source_dir:
        failures.append(f"imported the source tree ({pkg_dir}), not the installed package")
    if lmm.__version__ != dist_version:
        failures.append(f"lmm.__version__ {lmm.__version__!r} != distribution {dist_version!r}")
    core = Path(lmm._core.__file__).name
    print(f"compiled core: {core}")

    # python -m lmm --version: the one-line report users paste into bug reports
    out = subprocess.run([sys.executable, "-m", "lmm", "--version"], capture_output=True,
                         text=True, cwd=os.getcwd())
    print(f"python -m lmm --version: {out.stdout.strip()}")
    if out.returncode != 0 or "compiled core loaded" not in out.stdout:
        failures.append(f"python -m lmm --version failed: {out.stdout}{out.stderr}")

    d = lmm.datasets.get_rdataset("dietox", "geepack").data
    res = smf.mixedlm("Weight ~ Time", d, groups=d["Pig"], re_formula="~Time").fit()
    diff = res.llf - LME4_BEST_LLF
    print(f"dietox random slope (REML): llf {res.llf:.10f}, lme4 best {LME4_BEST_LLF:.10f}, "
          f"difference {diff:.2e} (tolerance {TOL:g})")
    if not abs(diff) <= TOL:
        failures.append(f"dietox llf {res.llf!r} differs from lme4's best by {diff:.3g}")

    for f in failures:
        print(f"SMOKE FAIL: {f}", file=sys.stderr)
    print("smoke check:", "FAILED" if failures else "ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
