"""Tests with degrees of freedom: lmm's coef_table + anova against lmerTest's summary +
anova, side by side.

    python -m bench.inference [--reps 20] [--no-r]

The whole inference cost is compared (issue 18's rule): for lmerTest, (lmerTest's lmer
minus lme4's lmer: the Hessian and Jacobian it precomputes) + summary(ddf =
"Satterthwaite") + anova(type = 3); for lmm, coef_table() + anova() on a fresh fit
(nothing cached), fits not counted. R times each step with system.time over `reps`
repetitions (R's start-up and data reads are not timed); lmm is timed in process.
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

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"

CASES = {
    # name: (lmm formula, R formula, data loader)
    "sleepstudy_slope": ("Reaction ~ Days + (Days | Subject)",
                         "Reaction ~ Days + (Days | Subject)", "sleepstudy"),
    "dietox_slope_evit": ("Weight ~ Time + Evit + (1 + Time | Pig)",
                          "Weight ~ Time + Evit + (1 + Time | Pig)", "dietox"),
    "penicillin_crossed": ("diameter ~ 1 + (1 | plate) + (1 | sample)",
                           "diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin"),
    "crossed_sim_slope": ("y ~ x + (1 + x | g1) + (1 | g2)", "y ~ x + (1 + x | g1) + (1 | g2)",
                          "crossed"),
}

R_CODE = r"""
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); f <- as.formula(args[2]); reps <- as.integer(args[3])
if ("Evit" %in% names(d)) d$Evit <- factor(d$Evit)
t_lme4 <- system.time(for (i in 1:reps) m0 <- lme4::lmer(f, d))[["elapsed"]] / reps
t_lt <- system.time(for (i in 1:reps) m <- lmerTest::lmer(f, d))[["elapsed"]] / reps
t_sum <- system.time(for (i in 1:reps) s <- summary(m, ddf = "Satterthwaite"))[["elapsed"]] / reps
t_an <- system.time(for (i in 1:reps) a <- anova(m, type = 3))[["elapsed"]] / reps
cat(toJSON(list(lme4_fit = t_lme4, lmertest_fit = t_lt, summary = t_sum, anova = t_an,
                inference = max(t_lt - t_lme4, 0) + t_sum + t_an,
                version = as.character(packageVersion("lmerTest"))),
           auto_unbox = TRUE, digits = NA))
"""


def _data(name):
    if name == "dietox":
        return lmm.datasets.get_rdataset("dietox", "geepack").data
    file = {"sleepstudy": "sleepstudy.csv", "penicillin": "penicillin.csv",
            "crossed": "multi_crossed_sim.csv"}[name]
    return pd.read_csv(DATA / file)


def time_lmm(formula, data, reps):
    def fresh():
        return lmm.lmer(formula, data)

    fresh().coef_table()
    has_terms = True
    times = []
    for _ in range(reps):
        res = fresh()
        t0 = time.perf_counter()
        res.coef_table()
        try:
            res.anova()
        except (NotImplementedError, ValueError):
            has_terms = False
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), has_terms


def time_lmertest(formula, data, reps):
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = Path(tmp) / "d.csv", Path(tmp) / "t.R"
        data.to_csv(csv, index=False)
        script.write_text(R_CODE)
        out = subprocess.run(["Rscript", str(script), str(csv), formula, str(reps)],
                             capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--no-r", action="store_true")
    args = parser.parse_args(argv)
    print("| case | lmm coef_table + anova | lmerTest inference | lmm / lmerTest |")
    print("|---|---|---|---|")
    for name, (formula, r_formula, loader) in CASES.items():
        data = _data(loader)
        t_lmm, _ = time_lmm(formula, data, args.reps)
        r = None if args.no_r else time_lmertest(r_formula, data, args.reps)
        if r is None:
            print(f"| {name} | {t_lmm * 1e3:.2f} ms | - | - |")
        else:
            print(f"| {name} | {t_lmm * 1e3:.2f} ms | {r['inference'] * 1e3:.1f} ms | "
                  f"1/{r['inference'] / t_lmm:.0f} |")


if __name__ == "__main__":
    main()
