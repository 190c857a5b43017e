"""Several grouping factors: lmm.lmer vs lme4::lmer on nested and crossed models.

``python -m bench.crossed`` (see bench/README.md, "Several grouping factors").
All fits are REML, from the formula and the DataFrame to the results.

* lmm: ``lmm.lmer(formula, data)`` in-process, ``time.perf_counter()``; one
  untimed warm-up fit per case, then the median of `--reps` runs (small cases)
  or of 2 runs (large cases).
* lme4: one persistent ``Rscript`` session (the R code is in this module);
  for each case R reads the same CSV file, makes the grouping columns factors,
  fits once untimed (warm-up), and then times only ``lmer(...)`` with
  ``system.time()`` (elapsed).  R start-up, package loading, the read and the
  warm-up are never counted.  Large cases are timed once.
* The timed runs alternate between the tools, swapping the order each round.
* Agreement: lmm's log-likelihood minus lme4's (both REML); lmm should be no
  lower than lme4's minus 1e-6.
* Memory (large cases, lmm only): in a fresh process, the rise of the RSS
  high-water mark during one fit (see bench/memory.py), and the input size.
* Under load (large cases, lmm only; skipped by --quick and --no-load): while a
  second process fits the same model with lmm in a loop (started after this
  process's idle runs, stopped after its loaded runs), the median of
  LOADED_REPS fits; the target is at most LOAD_TARGET times the idle median of
  the same run (issue 16: BLAS threads waiting for cores held by others).
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "crossed.json"
LLF_SLACK = 1e-6
# targets of issue 11: lmm's time at most this fraction of lme4's
TARGET = {"small": 1 / 10, "large": 1 / 20}
LARGE_LMM_REPS = 2
# the run under load: lmm's fits while another process fits the same model
LOADED_REPS = 3
LOAD_TARGET = 1.5


@dataclass(frozen=True)
class Case:
    id: str
    size: str            # "small" or "large"
    path: str            # relative to the repository root
    formula: str         # the same formula for lmm.lmer and lme4::lmer
    groups: tuple        # grouping columns (read as strings / R factors)
    structure: str
    factors: tuple = ()  # the grouping factors of the terms, "a:b" for an interaction


CASES = (
    Case("penicillin", "small", "tests/data/penicillin.csv",
         "diameter ~ 1 + (1 | plate) + (1 | sample)", ("plate", "sample"), "crossed",
         ("plate", "sample")),
    Case("pastes", "small", "tests/data/pastes.csv",
         "strength ~ 1 + (1 | batch/cask)", ("batch", "cask"), "nested",
         ("batch", "batch:cask")),
    Case("multi_crossed_sim", "small", "tests/data/multi_crossed_sim.csv",
         "y ~ x + (1 + x | g1) + (1 | g2)", ("g1", "g2"),
         "crossed, vector + scalar", ("g1", "g2")),
    Case("multi_nested_sim", "small", "tests/data/multi_nested_sim.csv",
         "y ~ x + (1 + x | school) + (1 | school:class)", ("school", "class"),
         "nested, vector + scalar", ("school", "school:class")),
    Case("crossed_large", "large", "bench/data/crossed_large.csv.gz",
         "y ~ x + (1 | s) + (1 | d)", ("s", "d"), "crossed", ("s", "d")),
    Case("insteval", "large", "bench/data/insteval.csv.gz",
         "y ~ 1 + (1 | s) + (1 | d)", ("s", "d"), "crossed", ("s", "d")),
)


def load_data(case):
    """The case's CSV: grouping columns as strings, every other column float."""
    data = pd.read_csv(ROOT / case.path, dtype={g: str for g in case.groups})
    for col in model_columns(case, data):
        if col not in case.groups:
            data[col] = data[col].astype(float)
    return data


def model_columns(case, data):
    """The columns the formula uses (pastes.csv also has an unused text column)."""
    return [c for c in data.columns if re.search(rf"\b{re.escape(c)}\b", case.formula)]


def input_sizes(case, data):
    """Bytes of the model's columns: as the DataFrame holds them (deep) and as arrays
    (float64 per numeric column, int64 codes per grouping column)."""
    cols = model_columns(case, data)
    return {"dataframe_deep_bytes": int(data[cols].memory_usage(index=False, deep=True).sum()),
            "array_bytes": int(len(data) * 8 * len(cols))}


# ---------------------------------------------------------------------------
# lmm
# ---------------------------------------------------------------------------

def fit_lmm(case, data):
    """One timed lmm.lmer fit: (seconds, llf, converged, warnings)."""
    import lmm

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0, c0 = time.perf_counter(), time.process_time()
        res = lmm.lmer(case.formula, data)
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - c0
    return {"seconds": seconds, "cpu_seconds": cpu, "llf": float(res.llf),
            "converged": bool(getattr(res, "converged", True)),
            "messages": sorted({str(w.message) for w in caught})}


# ---------------------------------------------------------------------------
# lme4: a persistent R session
# ---------------------------------------------------------------------------

_R_SESSION = r"""
if (!suppressMessages(requireNamespace("jsonlite", quietly = TRUE) &&
                      requireNamespace("lme4", quietly = TRUE))) {
  cat('{"error": "the R packages lme4 and jsonlite are required (bench/install_r.sh)"}\n')
  quit(status = 0)
}
suppressMessages(library(lme4))
reply <- function(x) {
  cat(jsonlite::toJSON(x, auto_unbox = TRUE, digits = NA, null = "null"), "\n", sep = "")
  flush(stdout())
}
fit_once <- function(st) {
  msgs <- character()
  record <- function(cond) msgs <<- c(msgs, conditionMessage(cond))
  m <- NULL
  secs <- system.time(
    m <- withCallingHandlers(
      lmer(st$formula, data = st$data, REML = TRUE),
      warning = function(w) { record(w); invokeRestart("muffleWarning") },
      message = function(w) { record(w); invokeRestart("muffleMessage") }
    )
  )[["elapsed"]]
  msgs <- unique(trimws(c(msgs, m@optinfo$conv$lme4$messages)))
  failures <- msgs[!grepl("singular", msgs)]
  list(seconds = secs, llf = as.numeric(logLik(m)), converged = length(failures) == 0,
       messages = as.list(msgs))
}
con <- file("stdin")
open(con)
state <- NULL
reply(list(ready = TRUE, r_version = paste(R.version$major, R.version$minor, sep = "."),
           lme4_version = as.character(packageVersion("lme4"))))
repeat {
  line <- readLines(con, n = 1)
  if (length(line) == 0) break
  cmd <- jsonlite::fromJSON(line)
  if (cmd$cmd == "quit") break
  res <- tryCatch(switch(cmd$cmd,
    load = {
      state <- NULL
      gc()
      cls <- setNames(rep("character", length(cmd$factors)), cmd$factors)
      d <- read.csv(cmd$csv, colClasses = cls)
      for (f in cmd$factors) d[[f]] <- factor(d[[f]])
      state <- list(data = d, formula = as.formula(cmd$formula))
      if (isTRUE(cmd$warmup)) fit_once(state)
      list(ok = TRUE, nobs = nrow(d))
    },
    fit = fit_once(state),
    list(error = paste("unknown command", cmd$cmd))
  ), error = function(e) list(error = conditionMessage(e)))
  reply(res)
}
"""


class Lme4Session:
    """lme4::lmer timed inside one Rscript process; `available`/`reason` say if it runs."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.available, self.reason, self.versions = False, "", {}
        self._proc = None
        rscript = shutil.which("Rscript")
        if rscript is None:
            self.reason = "Rscript not found on PATH (bench/install_r.sh installs R and lme4)"
            return
        script = self.workdir / "crossed_session.R"
        script.write_text(_R_SESSION)
        self._log = open(self.workdir / "lme4_stderr.log", "w+")  # noqa: SIM115
        self._proc = subprocess.Popen([rscript, "--vanilla", str(script)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._log, text=True,
                                      bufsize=1)
        hello = self._read()
        if "error" in hello:
            self.reason = hello["error"]
            self.close()
            return
        self.available = True
        self.versions = {"r": hello["r_version"], "lme4": hello["lme4_version"]}

    def _read(self):
        line = self._proc.stdout.readline()
        if not line:
            self._log.seek(0)
            raise RuntimeError("the R session ended unexpectedly; its stderr:\n"
                               + self._log.read()[-2000:])
        return json.loads(line)

    def _call(self, **cmd):
        self._proc.stdin.write(json.dumps(cmd) + "\n")
        self._proc.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(f"lme4 {cmd['cmd']} failed: {answer['error']}")
        return answer

    def load(self, case, warmup=True):
        self._call(cmd="load", csv=str(ROOT / case.path), factors=list(case.groups),
                   formula=case.formula, warmup=warmup)

    def fit(self):
        r = self._call(cmd="fit")
        return {"seconds": float(r["seconds"]), "llf": float(r["llf"]),
                "converged": bool(r["converged"]), "messages": list(r["messages"])}

    def close(self):
        if self._proc is None:
            return
        if self._proc.poll() is None:
            try:
                self._proc.stdin.write('{"cmd": "quit"}\n')
                self._proc.stdin.close()
                self._proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        self._log.close()
        self._proc = None


# ---------------------------------------------------------------------------
# memory (large cases, lmm only, in a fresh process)
# ---------------------------------------------------------------------------



def memory_main(argv):
    """Print the memory JSON of one lmm fit of case argv[0] (run in a fresh process)."""
    from .memory import _release_free_memory, _reset_high_water_mark, _status_bytes

    case = {c.id: c for c in CASES}[argv[0]]
    data = load_data(case)
    warm = {c.id: c for c in CASES}["multi_crossed_sim"]
    fit_lmm(warm, load_data(warm))                    # warm-up: imports, compiled code
    _release_free_memory()
    if not _reset_high_water_mark():
        print(json.dumps({"error": "cannot write /proc/self/clear_refs"}))
        return 0
    before = _status_bytes("VmRSS")["VmRSS"]
    fit = fit_lmm(case, data)
    peak = _status_bytes("VmHWM")["VmHWM"]
    print(json.dumps({"case": case.id, "rss_before": before, "peak_rss": peak,
                      "extra_bytes": peak - before, "seconds": fit["seconds"],
                      **input_sizes(case, data),
                      "method": "VmHWM after clear_refs=5 minus VmRSS before the fit"}))
    return 0




def load_main(argv):
    """Fit case argv[0] with lmm in a loop until killed (the competing process of
    the run under load); prints "ready" after the first fit."""
    case = {c.id: c for c in CASES}[argv[0]]
    data = load_data(case)
    fit_lmm(case, data)
    print("ready", flush=True)
    while True:
        fit_lmm(case, data)


def measure_under_load(case, data, cwd, reps=LOADED_REPS):
    """lmm's fits of case while a second process fits it in a loop: their times,
    and the competitor's start-up (it is started and stopped here)."""
    from .memory import boot_command

    proc = subprocess.Popen(boot_command("crossed", "load_main", case.id),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=cwd)
    try:
        line = proc.stdout.readline()     # after its data load and first fit
        if line.strip() != "ready":
            return {"error": "the competing process did not start"}
        runs = [fit_lmm(case, data) for _ in range(reps)]
        load = round(os.getloadavg()[0], 2)
    finally:
        proc.kill()
        proc.wait()
    return {**_summary(runs), "load_average": load}


def measure_memory(case, cwd):
    from .memory import boot_command

    proc = subprocess.run(boot_command("crossed", "memory_main", case.id),
                          capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        return {"case": case.id, "error": proc.stderr.strip()[-1000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m bench.crossed",
        description="Time lmm.lmer against lme4::lmer on nested and crossed models.")
    p.add_argument("--quick", action="store_true",
                   help="small cases only, lmm only, 2 repetitions (the smoke test)")
    p.add_argument("--reps", type=int, default=7,
                   help="timed repetitions per small case and tool (default 7)")
    p.add_argument("--no-r", action="store_true", help="skip lme4")
    p.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    p.add_argument("--no-load", action="store_true",
                   help="skip the run under load (a second process fitting the same model)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="JSON results path (default bench/results/crossed.json)")
    args = p.parse_args(argv)
    if args.quick:
        args.reps, args.no_r, args.no_memory, args.no_load = min(args.reps, 2), True, True, True
    return args


def _summary(runs):
    return {"median": statistics.median(r["seconds"] for r in runs), "reps": len(runs),
            "cpu_median": statistics.median(r.get("cpu_seconds", np.nan) for r in runs),
            "seconds": [r["seconds"] for r in runs], "llf": runs[-1]["llf"],
            "converged": all(r["converged"] for r in runs),
            "messages": sorted({m for r in runs for m in r["messages"]})}


def run_case(case, r_session, reps, under_load=False, workdir=None):
    data = load_data(case)
    out = {"id": case.id, "size": case.size, "structure": case.structure,
           "formula": case.formula, "data": case.path, "nobs": len(data),
           "levels": {f: int(data[f.split(":")].drop_duplicates().shape[0])
                      for f in case.factors}}
    use_r = r_session is not None and r_session.available
    fit_lmm(case, data)                                  # untimed warm-up
    if use_r:
        r_session.load(case, warmup=True)                # read + untimed warm-up in R
    n_lmm = reps if case.size == "small" else LARGE_LMM_REPS
    n_r = reps if case.size == "small" else 1
    lmm_runs, r_runs = [], []
    for i in range(max(n_lmm, n_r if use_r else 0)):
        order = ("lmm", "lme4") if i % 2 == 0 else ("lme4", "lmm")
        for tool in order:
            if tool == "lmm" and len(lmm_runs) < n_lmm:
                lmm_runs.append(fit_lmm(case, data))
            elif tool == "lme4" and use_r and len(r_runs) < n_r:
                r_runs.append(r_session.fit())
    out["lmm"] = _summary(lmm_runs)
    if use_r:
        out["lme4"] = _summary(r_runs)
        out["dllf"] = out["lmm"]["llf"] - out["lme4"]["llf"]
        out["ratio"] = out["lmm"]["median"] / out["lme4"]["median"]
        llf_ok = out["dllf"] >= -LLF_SLACK
        out["target"] = {"max_ratio": TARGET[case.size], "llf_ok": llf_ok,
                         "met": bool(llf_ok and out["ratio"] <= TARGET[case.size])}
    if under_load and case.size == "large":
        loaded = measure_under_load(case, data, workdir)
        if "median" in loaded:
            loaded["ratio_to_idle"] = loaded["median"] / out["lmm"]["median"]
            loaded["target"] = {"max_ratio": LOAD_TARGET,
                                "met": bool(loaded["ratio_to_idle"] <= LOAD_TARGET)}
        out["lmm_under_load"] = loaded
    msg = f"[bench.crossed] {case.id}: lmm {out['lmm']['median']:.4g} s"
    if "median" in out.get("lmm_under_load", {}):
        msg += (f" (under load {out['lmm_under_load']['median']:.4g} s, "
                f"{out['lmm_under_load']['ratio_to_idle']:.2f}x)")
    if use_r:
        msg += (f", lme4 {out['lme4']['median']:.4g} s ({_ratio(out)}), "
                f"dllf {out['dllf']:+.2g}")
    print(msg, flush=True)
    return out


def _machine():
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh
                        if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "platform": platform.platform()}


def run(args):
    import lmm

    cases = [c for c in CASES if not (args.quick and c.size == "large")]
    result = {"started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "load_average_start": [round(x, 2) for x in os.getloadavg()],
              "machine": _machine(),
              "versions": {"python": platform.python_version(), "numpy": np.__version__,
                           "pandas": pd.__version__, "lmm": lmm.__version__},
              "options": {"reps": args.reps, "quick": args.quick, "no_r": args.no_r,
                          "no_load": args.no_load},
              "cases": []}
    with tempfile.TemporaryDirectory(prefix="lmm-bench-crossed-") as workdir:
        session = None if args.no_r else Lme4Session(workdir)
        if session is not None:
            if session.available:
                result["versions"].update(session.versions)
            else:
                result["lme4_skipped"] = session.reason
                print(f"[bench.crossed] lme4 skipped: {session.reason}", flush=True)
        try:
            for case in cases:
                result["cases"].append(run_case(case, session, args.reps,
                                                under_load=not args.no_load,
                                                workdir=workdir))
        finally:
            if session is not None:
                session.close()
        if not args.no_memory:
            for case in cases:
                if case.size == "large":
                    mem = measure_memory(case, workdir)
                    next(c for c in result["cases"] if c["id"] == case.id)["memory"] = mem
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------

def _ratio(c):
    if "ratio" not in c:
        return "-"
    return f"1/{1 / c['ratio']:.3g}" if c["ratio"] <= 1 else f"{c['ratio']:.2g}x slower"


def format_report(result):
    lines = ["Median wall time in seconds (timed runs); dllf = lmm's REML log-likelihood "
             "minus lme4's.", "",
             "| case | structure | n | levels | lmm s (reps) | lme4 s (reps) | lmm/lme4 "
             "| dllf | target | status |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for c in result["cases"]:
        levels = ", ".join(f"{k} {v:,}" for k, v in c["levels"].items())
        lm = c["lmm"]
        lmm_s = f"{lm['median']:.3g}{'' if lm['converged'] else '*'} ({lm['reps']})"
        if "lme4" in c:
            r = c["lme4"]
            r_s = f"{r['median']:.3g}{'' if r['converged'] else '*'} ({r['reps']})"
            t = c["target"]
            status = "met" if t["met"] else ("not met (llf)" if not t["llf_ok"] else "not met")
            tail = (f"{r_s} | {_ratio(c)} | {c['dllf']:+.2g} | <= 1/{1 / t['max_ratio']:.0f} "
                    f"| {status}")
        else:
            tail = "not run | - | - | - | -"
        lines.append(f"| {c['id']} | {c['structure']} | {c['nobs']:,} | {levels} | {lmm_s} "
                     f"| {tail} |")
    mems = [c for c in result["cases"] if "memory" in c]
    if mems:
        lines += ["", "lmm peak extra memory of one fit (fresh process; VmHWM after "
                  "clear_refs=5 minus VmRSS before):", "",
                  "| case | input MB (DataFrame, deep) | input MB (as float64/int64 arrays) "
                  "| peak extra MB | extra / DataFrame | extra / arrays |",
                  "|---|---|---|---|---|---|"]
        for c in mems:
            m = c["memory"]
            if "extra_bytes" not in m:
                lines.append(f"| {c['id']} | - | - | {m.get('error', '?')[:80]} | - | - |")
                continue
            mb = 2 ** 20
            lines.append(f"| {c['id']} | {m['dataframe_deep_bytes'] / mb:.1f} "
                         f"| {m['array_bytes'] / mb:.1f} | {m['extra_bytes'] / mb:.1f} "
                         f"| {m['extra_bytes'] / m['dataframe_deep_bytes']:.2f}x "
                         f"| {m['extra_bytes'] / m['array_bytes']:.2f}x |")
    loaded = [c for c in result["cases"] if "lmm_under_load" in c]
    if loaded:
        lines += ["", "lmm while a second process fits the same model with lmm in a loop "
                  f"(median of {LOADED_REPS}; target at most {LOAD_TARGET}x the idle median "
                  "of this run):", "",
                  "| case | idle s (CPU s) | under load s (CPU s) | ratio | target "
                  "| load average |", "|---|---|---|---|---|---|"]
        for c in loaded:
            u = c["lmm_under_load"]
            if "median" not in u:
                lines.append(f"| {c['id']} | {c['lmm']['median']:.3g} | {u.get('error')} "
                             "| - | - |")
                continue
            lines.append(f"| {c['id']} | {c['lmm']['median']:.3g} ({c['lmm']['cpu_median']:.3g}) "
                         f"| {u['median']:.3g} ({u['cpu_median']:.3g}) "
                         f"| {u['ratio_to_idle']:.2f}x "
                         f"| {'met' if u['target']['met'] else 'not met'} "
                         f"| {u['load_average']} |")
        lines.append("(The target assumes a core free for the second process: with other "
                     "work on the machine, the load average says how many cores were "
                     "wanted.  CPU time near the idle run's means no thread spins.)")
    notes = [f"- {c['id']} {tool}: {msg}" for c in result["cases"] for tool in ("lmm", "lme4")
             if tool in c for msg in c[tool]["messages"]]
    if notes:
        lines += ["", "Messages (* = the tool reported non-convergence):"] + notes
    lines.append(f"\nStarted {result['started']}; load average at start / end: "
                 f"{result['load_average_start'][0]} / {result['load_average_end'][0]}; "
                 f"{result['machine']['cores']} cores ({result['machine']['cpu']})")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    result = run(args)
    print(format_report(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print(f"\n[bench.crossed] results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
