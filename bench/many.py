"""Many responses on one design: lmm's fit_many vs a statsmodels loop vs lme4's refit().

``python -m bench.many`` (see bench/README.md, "Many responses").  The design:
50 donors x 4 samples (200 rows), two conditions within each donor, three
covariates, ``y ~ cond + c1 + c2 + c3 + (1 | donor)`` (REML), and 20,000
simulated responses (`make_data`, fixed seed); the 1,000-response case is the
first 1,000 of them.

Measured in one run:

* lmm: ``lmm.fit_many(formula, data, responses)`` from the formula, the
  DataFrame and the response matrix to the result table, with 1 thread and
  with 2 (``n_jobs=2``); median of the repetitions;
* statsmodels: a loop of ``smf.mixedlm(...).fit(reml=True)`` over the first
  50 responses (its rate is models per second of that loop);
* lme4: ``refit(m, y)`` over the first 200 responses, timed inside R by
  ``system.time`` (R's start-up, the CSV read and the first ``lmer`` outside);
* agreement: lmm's log-likelihoods minus those of the other tools on the same
  responses, and minus lmm's own one-by-one ``MixedLM.fit`` on the first
  1,000 (untimed);
* memory: the 20,000-response fit in a fresh process, peak resident memory
  (VmHWM) of the whole process and its rise during the fit.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20240611
DONORS, PER_DONOR = 50, 4
FORMULA = "~ cond + c1 + c2 + c3 + (1 | donor)"
SIZES = (1_000, 20_000)
STATSMODELS_N = 50
LME4_N = 200
AGREEMENT_N = 1_000
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "many.json"
# targets of the issue
LME4_FACTOR, STATSMODELS_FACTOR = 100, 1000
MAX_SECONDS_20K, MAX_PEAK_BYTES = 10.0, 2 * 1024**3
LLF_SLACK = 1e-6


def make_data(n_responses, seed=SEED):
    """The design (DataFrame) and `n_responses` responses (DataFrame, 200 rows).

    Responses differ in their fixed effects (a condition effect in one of five),
    donor standard deviation (zero, i.e. a boundary fit, for 30 %, otherwise
    uniform on 0.2-1.5) and residual standard deviation (uniform on 0.3-1.5).
    The first k responses are the same whatever n_responses >= k.
    """
    rng = np.random.default_rng(seed)
    n = DONORS * PER_DONOR
    codes = np.repeat(np.arange(DONORS), PER_DONOR)
    cond = np.tile(["ctrl", "ctrl", "treat", "treat"], DONORS)
    data = pd.DataFrame({
        "donor": [f"D{c:02d}" for c in codes], "cond": cond,
        "c1": rng.normal(size=n), "c2": rng.normal(size=n), "c3": rng.uniform(size=n),
    })
    x = np.column_stack([np.ones(n), cond == "treat", data["c1"], data["c2"], data["c3"]])
    Y = np.empty((n, n_responses))
    block = 1000
    for a in range(0, n_responses, block):
        k = min(block, n_responses - a)
        r = np.random.default_rng([seed, a // block])
        beta = np.vstack([r.normal(5, 1, k), r.normal(0, 1, k) * (r.uniform(size=k) < 0.2),
                          r.normal(0, 0.2, (3, k))])
        sd_donor = np.where(r.uniform(size=k) < 0.3, 0.0, r.uniform(0.2, 1.5, k))
        sd_resid = r.uniform(0.3, 1.5, k)
        Y[:, a:a + k] = (x @ beta + r.normal(size=(DONORS, k))[codes] * sd_donor
                         + r.normal(size=(n, k)) * sd_resid)
    names = [f"gene{j}" for j in range(n_responses)]
    return data, pd.DataFrame(Y, columns=names)


# ---------------------------------------------------------------------------
# lmm
# ---------------------------------------------------------------------------

def time_lmm(data, Y, n_jobs, reps):
    """Median wall time (and all times) of fit_many, and its table."""
    import lmm

    times, res = [], None
    for _ in range(reps):
        res = None
        t0 = time.perf_counter()
        res = lmm.fit_many(FORMULA, data, Y, n_jobs=n_jobs, progress=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, res


def lmm_one_by_one(data, Y):
    """llf of lmm's own MixedLM.fit on each response (untimed, for agreement)."""
    import lmm

    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in Y.columns:
            md = lmm.MixedLM.from_lmer("y " + FORMULA, data.assign(y=Y[name]))
            out.append(md.fit(reml=True).llf)
    return np.array(out)


# ---------------------------------------------------------------------------
# statsmodels
# ---------------------------------------------------------------------------

def time_statsmodels(data, Y):
    """Seconds of a loop of statsmodels fits over the columns of Y, and their llf."""
    import statsmodels
    import statsmodels.formula.api as smf

    llf, conv = [], []
    frame = data.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        for name in Y.columns:
            frame["y"] = Y[name].to_numpy()
            r = smf.mixedlm("y ~ cond + c1 + c2 + c3", frame, groups="donor").fit(reml=True)
            llf.append(r.llf)
            conv.append(bool(r.converged))
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "n": Y.shape[1], "llf": llf, "converged": conv,
            "version": statsmodels.__version__}


# ---------------------------------------------------------------------------
# lme4
# ---------------------------------------------------------------------------

_R_REFIT = r"""
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
d$donor <- factor(d$donor)
ys <- grep("^gene", names(d), value = TRUE)
d$y <- d[[ys[1]]]
f <- y ~ cond + c1 + c2 + c3 + (1 | donor)
m <- lmer(f, data = d, REML = TRUE)
llf <- numeric(length(ys))
msgs <- character()
quiet <- function(expr) withCallingHandlers(expr,
  warning = function(w) { msgs <<- c(msgs, conditionMessage(w)); invokeRestart("muffleWarning") },
  message = function(w) { msgs <<- c(msgs, conditionMessage(w)); invokeRestart("muffleMessage") })
secs <- system.time(for (i in seq_along(ys)) {
  r <- quiet(refit(m, d[[ys[i]]]))
  llf[i] <- as.numeric(logLik(r))
})[["elapsed"]]
refit_reml <- r@resp$REML
# untimed: a fresh lmer() per response, lme4's answer for the agreement check
llf_lmer <- numeric(length(ys))
for (i in seq_along(ys)) {
  d$y <- d[[ys[i]]]
  llf_lmer[i] <- as.numeric(logLik(quiet(lmer(f, data = d, REML = TRUE))))
}
cat(jsonlite::toJSON(list(seconds = secs, llf = llf, llf_lmer = llf_lmer,
                          messages = unique(msgs), reml_p_model = m@resp$REML,
                          reml_p_refit = refit_reml,
                          r_version = paste(R.version$major, R.version$minor, sep = "."),
                          lme4_version = as.character(packageVersion("lme4"))),
                     auto_unbox = TRUE, digits = NA), "\n")
"""


def time_lme4_refit(data, Y, workdir):
    """refit() over the columns of Y, timed inside R; None with a reason if R is missing."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return {"error": "Rscript not found on PATH (bench/install_r.sh installs R and lme4)"}
    csv = Path(workdir) / "many.csv"
    script = Path(workdir) / "refit.R"
    pd.concat([data, Y], axis=1).to_csv(csv, index=False)
    script.write_text(_R_REFIT)
    proc = subprocess.run([rscript, "--vanilla", str(script), str(csv)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-1000:]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["n"] = Y.shape[1]
    return out


# ---------------------------------------------------------------------------
# memory (in a fresh process)
# ---------------------------------------------------------------------------



def memory_main(argv):
    """Print the memory JSON of fitting argv[0] responses (n_jobs argv[1])."""
    from .memory import _release_free_memory, _reset_high_water_mark, _status_bytes

    n, n_jobs = int(argv[0]), int(argv[1])
    import lmm

    data, Y = make_data(n)
    lmm.fit_many(FORMULA, data, Y.iloc[:, :20], progress=False)      # warm-up (imports)
    _release_free_memory()
    reset = _reset_high_water_mark()
    before = _status_bytes("VmRSS")["VmRSS"]
    t0 = time.perf_counter()
    lmm.fit_many(FORMULA, data, Y, n_jobs=n_jobs, progress=False)
    seconds = time.perf_counter() - t0
    peak = _status_bytes("VmHWM")["VmHWM"]
    print(json.dumps({"n": n, "n_jobs": n_jobs, "seconds": seconds, "rss_before": before,
                      "peak_rss": peak, "peak_extra": peak - before if reset else None,
                      "responses_bytes": int(Y.memory_usage(index=False).sum()),
                      "method": "VmHWM (whole process); extra = VmHWM after clear_refs=5 "
                                "minus VmRSS before the fit"}))
    return 0


def measure_memory(n, n_jobs, cwd):
    from .memory import boot_command

    proc = subprocess.run(boot_command("many", "memory_main", n, n_jobs), capture_output=True,
                          text=True, cwd=cwd)
    if proc.returncode != 0:
        return {"n": n, "error": proc.stderr.strip()[-1000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# run and report
# ---------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m bench.many",
        description="Time lmm.fit_many against a statsmodels loop and lme4's refit().")
    p.add_argument("--quick", action="store_true",
                   help="200 responses only, 1 repetition, no memory run (the smoke test)")
    p.add_argument("--reps", type=int, default=5, help="lmm repetitions per size (default 5)")
    p.add_argument("--no-r", action="store_true", help="skip lme4")
    p.add_argument("--no-statsmodels", action="store_true", help="skip statsmodels")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="JSON results path (default bench/results/many.json)")
    args = p.parse_args(argv)
    if args.quick:
        args.reps = 1
    return args


def run(args):
    import lmm

    sizes = (200,) if args.quick else SIZES
    data, Y = make_data(max(sizes))
    load_start = os.getloadavg()
    result = {"design": {"formula": FORMULA, "donors": DONORS, "per_donor": PER_DONOR,
                         "rows": len(data), "seed": SEED},
              "lmm": {}, "versions": {"python": platform.python_version(),
                                      "numpy": np.__version__, "pandas": pd.__version__,
                                      "lmm": lmm.__version__}}
    lmm.fit_many(FORMULA, data, Y.iloc[:, :50], progress=False)       # warm-up
    tables = {}
    for m in sizes:
        for n_jobs in (1, 2):
            reps = args.reps if m <= 1000 else max(1, min(args.reps, 3))
            med, times, res = time_lmm(data, Y.iloc[:, :m], n_jobs, reps)
            tables[m] = res.table
            result["lmm"][f"{m}_jobs{n_jobs}"] = {
                "responses": m, "n_jobs": n_jobs, "median_seconds": med, "seconds": times,
                "models_per_second": m / med, "converged": int(res.table["converged"].sum()),
                "singular": int(res.table["singular"].sum()),
                "python_path": len(res.python_path)}
            print(f"[bench.many] lmm {m} responses, n_jobs={n_jobs}: {med:.3f} s "
                  f"({m / med:,.0f} models/s)", flush=True)
    small = min(sizes)
    lmm_llf = tables[small]["llf"].to_numpy()
    k = min(AGREEMENT_N, small)
    own = lmm_one_by_one(data, Y.iloc[:, :k])
    result["agreement_one_by_one"] = {"n": k,
                                      "max_abs_llf_diff": float(np.max(np.abs(lmm_llf[:k] - own)))}
    if not args.no_statsmodels:
        try:
            sm = time_statsmodels(data, Y.iloc[:, :STATSMODELS_N])
        except ImportError as exc:
            sm = {"error": f"statsmodels not installed ({exc})"}
        if "error" not in sm:
            sm["models_per_second"] = sm["n"] / sm["seconds"]
            d = lmm_llf[:sm["n"]] - np.array(sm["llf"])
            sm["llf_diff_lmm_minus"] = {"min": float(d.min()), "max": float(d.max())}
            print(f"[bench.many] statsmodels: {sm['n']} fits in {sm['seconds']:.2f} s "
                  f"({sm['models_per_second']:.1f} models/s)", flush=True)
        result["statsmodels"] = sm
    if not args.no_r:
        with tempfile.TemporaryDirectory(prefix="lmm-bench-many-") as workdir:
            r = time_lme4_refit(data, Y.iloc[:, :LME4_N], workdir)
        if "error" not in r:
            r["models_per_second"] = r["n"] / r["seconds"]
            # lme4's answer: a fresh lmer() per response (untimed).  refit()'s own
            # logLik is kept too: lme4 1.1-31's refit() resets the REML
            # denominator n - p to n - 1 (resp$REML = 1), so it maximizes another
            # criterion and reports it (see bench/README.md)
            d = lmm_llf[:r["n"]] - np.array(r["llf_lmer"])
            r["llf_diff_lmm_minus"] = {"min": float(d.min()), "max": float(d.max())}
            d = lmm_llf[:r["n"]] - np.array(r["llf"])
            r["llf_diff_lmm_minus_refit_reported"] = {"min": float(d.min()),
                                                      "max": float(d.max())}
            print(f"[bench.many] lme4 refit: {r['n']} fits in {r['seconds']:.2f} s "
                  f"({r['models_per_second']:.1f} models/s)", flush=True)
        result["lme4"] = r
    if not args.quick:
        with tempfile.TemporaryDirectory(prefix="lmm-bench-many-") as workdir:
            result["memory"] = measure_memory(max(sizes), 2, workdir)
    result["load_average_start_end"] = [round(load_start[0], 2),
                                        round(os.getloadavg()[0], 2)]
    result["cpu_count"] = os.cpu_count()
    result["targets"] = targets(result, small)
    return result


def _best(result, m):
    runs = [v for v in result["lmm"].values() if v["responses"] == m]
    return max(runs, key=lambda v: v["models_per_second"]) if runs else None


def targets(result, m):
    """The issue's targets, each with the measured figure and met / not met."""
    out = []
    best = _best(result, m)
    for tool, factor in (("lme4", LME4_FACTOR), ("statsmodels", STATSMODELS_FACTOR)):
        t = result.get(tool) or {}
        if best is None or "models_per_second" not in t:
            continue
        ratio = best["models_per_second"] / t["models_per_second"]
        agree = t["llf_diff_lmm_minus"]["min"] >= -LLF_SLACK
        out.append({"target": f"{m} responses: lmm >= {factor}x {tool}'s models/s, every llf "
                              f">= {tool}'s - {LLF_SLACK:g}",
                    "measured": f"{ratio:,.0f}x (n_jobs={best['n_jobs']}); "
                                f"min llf diff {t['llf_diff_lmm_minus']['min']:+.2g}",
                    "met": bool(ratio >= factor and agree)})
    big = _best(result, 20_000)
    if big is not None:
        out.append({"target": f"20000 responses under {MAX_SECONDS_20K:g} s",
                    "measured": f"{big['median_seconds']:.2f} s (n_jobs={big['n_jobs']})",
                    "met": big["median_seconds"] < MAX_SECONDS_20K})
    mem = result.get("memory") or {}
    if "peak_rss" in mem:
        out.append({"target": "20000 responses: peak memory under 2 GB",
                    "measured": f"{mem['peak_rss'] / 2**20:.0f} MB whole process "
                                f"({(mem['peak_extra'] or 0) / 2**20:.0f} MB during the fit)",
                    "met": mem["peak_rss"] < MAX_PEAK_BYTES})
    return out


def format_report(result):
    lines = ["", "| tool | responses | threads | seconds | models/s | lmm speed-up |",
             "|---|---|---|---|---|---|"]
    rates = {t: (result.get(t) or {}).get("models_per_second") for t in ("statsmodels", "lme4")}
    for v in result["lmm"].values():
        ups = ", ".join(f"{v['models_per_second'] / r:,.0f}x {t}" for t, r in rates.items() if r)
        lines.append(f"| lmm fit_many | {v['responses']:,} | {v['n_jobs']} | "
                     f"{v['median_seconds']:.3f} | {v['models_per_second']:,.0f} | {ups or '-'} |")
    for t, label in (("statsmodels", "statsmodels loop"), ("lme4", "lme4 refit()")):
        r = result.get(t) or {}
        if "seconds" in r:
            lines.append(f"| {label} | {r['n']} | 1 | {r['seconds']:.2f} | "
                         f"{r['models_per_second']:.1f} | - |")
        elif r:
            lines.append(f"| {label} | - | - | - | - | {r['error'][:60]} |")
    lines += ["", "| agreement (lmm llf minus) | responses | min | max |", "|---|---|---|---|"]
    a = result["agreement_one_by_one"]
    lines.append(f"| lmm MixedLM.fit one by one | {a['n']} | |max| {a['max_abs_llf_diff']:.2g} | |")
    for t, key, label in (("statsmodels", "llf_diff_lmm_minus", "statsmodels (the timed fits)"),
                          ("lme4", "llf_diff_lmm_minus", "lme4 lmer() per response (untimed)"),
                          ("lme4", "llf_diff_lmm_minus_refit_reported",
                           "lme4 refit() as reported (REML denominator n - "
                           f"{(result.get('lme4') or {}).get('reml_p_refit')})")):
        r = result.get(t) or {}
        if key in r:
            d = r[key]
            lines.append(f"| {label} | {r['n']} | {d['min']:+.2g} | {d['max']:+.2g} |")
    mem = result.get("memory")
    if mem and "peak_rss" in mem:
        lines += ["", f"Memory, {mem['n']:,} responses (n_jobs={mem['n_jobs']}, fresh process, "
                      f"{mem['seconds']:.2f} s): peak RSS {mem['peak_rss'] / 2**20:.0f} MB, "
                      f"rise during the fit {(mem['peak_extra'] or 0) / 2**20:.0f} MB "
                      f"(responses: {mem['responses_bytes'] / 2**20:.0f} MB)"]
    if result["targets"]:
        lines += ["", "| target | measured | status |", "|---|---|---|"]
        for t in result["targets"]:
            lines.append(f"| {t['target']} | {t['measured']} | "
                         f"{'met' if t['met'] else 'not met'} |")
    lines.append(f"\nLoad average at start / end: {result['load_average_start_end']}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    result = run(args)
    print(format_report(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print(f"\n[bench.many] results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
