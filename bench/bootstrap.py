"""The parametric bootstrap: lmm's `results.bootstrap` against lme4's `bootMer`, side by side.

    python -m bench.bootstrap [--nboot 2000] [--no-r]

Both refit sleepstudy's random slope (`Reaction ~ Days + (Days | Subject)`), dietox's
(`Weight ~ Time + (1 + Time | Pig)`) and Penicillin's crossed model
(`diameter ~ 1 + (1 | plate) + (1 | sample)`), REML, to `nboot` responses simulated
from the fit, collecting the fixed effects and sigma. lme4 runs
in one Rscript call that times only `bootMer(...)`
(R's start-up, the data read and the first fit are not timed); lmm is timed in
process, after a warm-up. The bootstrap standard deviations of both are printed so
that the two can be seen to estimate the same thing (they are random: they agree to
sampling error, about 3% at 2,000 replicates).
"""

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import lmm

R_CODE = r"""
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); nboot <- as.integer(args[2]); f <- as.formula(args[3])
m <- lmer(f, data = d)
f <- function(m) c(fixef(m), sigma = sigma(m))
t <- system.time(b <- bootMer(m, f, nsim = nboot, seed = 1))[["elapsed"]]
cat(toJSON(list(seconds = t, sd = as.list(apply(b$t, 2, sd)),
                version = as.character(packageVersion("lme4"))), auto_unbox = TRUE, digits = NA))
"""


CASES = {
    "sleepstudy_slope": "Reaction ~ Days + (Days | Subject)",
    "dietox_slope": "Weight ~ Time + (1 + Time | Pig)",
    "penicillin_crossed": "diameter ~ 1 + (1 | plate) + (1 | sample)",
}


def _data(case):
    if case == "dietox_slope":
        return lmm.datasets.get_rdataset("dietox", "geepack").data
    name = "sleepstudy.csv" if case == "sleepstudy_slope" else "penicillin.csv"
    return pd.read_csv(Path(__file__).resolve().parent.parent / "tests" / "data" / name)


def run_lme4(case, nboot):
    if shutil.which("Rscript") is None:
        return None, "Rscript not found (bench/install_r.sh installs R and lme4)"
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "data.csv"
        _data(case).to_csv(csv, index=False)
        script = Path(tmp) / "boot.R"
        script.write_text(R_CODE)
        out = subprocess.run(["Rscript", str(script), str(csv), str(nboot), CASES[case]],
                             capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        return None, out.stderr.strip().splitlines()[-1:]
    return json.loads(out.stdout.strip().splitlines()[-1]), None


def run_lmm(case, nboot, reps=3):
    res = lmm.lmer(CASES[case], _data(case))
    res.bootstrap(10, seed=0)                       # warm-up
    times, boot = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        boot = res.bootstrap(nboot, seed=1)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), boot


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nboot", type=int, default=2000)
    parser.add_argument("--no-r", action="store_true", help="skip lme4")
    args = parser.parse_args(argv)
    for case in CASES:
        seconds, boot = run_lmm(case, args.nboot)
        print(f"{case}: lmm {lmm.__version__}: {args.nboot} replicates in {seconds:.3f} s "
              f"(median of 3; {boot.n_singular} singular, {boot.n_not_converged} not "
              "converged)")
        sd = boot.sd()
        print("     bootstrap sd: " + ", ".join(f"{k} {v:.4g}" for k, v in sd.items()
                                              if not k.startswith(("sd_", "cor_"))))
        if args.no_r:
            continue
        r, why = run_lme4(case, args.nboot)
        if r is None:
            print(f"     lme4 skipped: {why}")
            continue
        print(f"     lme4 {r['version']}: {r['seconds']:.3f} s (bootMer); lmm/lme4 = "
              f"1/{r['seconds'] / seconds:.0f}")
        print("     bootstrap sd: " + ", ".join(f"{k} {v:.4g}" for k, v in r["sd"].items()))


if __name__ == "__main__":
    main()
