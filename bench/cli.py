"""Command line and run loop of ``python -m bench``.

For each case: load the data once, let every tool prepare (R receives a CSV;
small cases get one untimed warm-up fit per tool), then run the repetitions
alternating tools, rotating their order each repetition.  Then the agreement
check, the lmm memory measurement (scale cases), targets, the table, the JSON
and the chart.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from . import report
from .cases import LARGE_N, load_data, select_cases
from .measurement import Measurement, Unavailable, median
from .memory import measure_in_subprocess
from .run_python import lmm_runner, statsmodels_runner
from .run_r import Lme4Runner

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"
DEFAULT_REPS = 5


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Time lmm against statsmodels' MixedLM and R's lme4 on the same data.",
    )
    p.add_argument("--quick", action="store_true",
                   help="smallest cases only (seed models, 1e4 rows, profile), 1 repetition")
    p.add_argument("--full", action="store_true",
                   help="also run statsmodels at 1e6 rows (slow)")
    p.add_argument("--reps", type=int, default=None,
                   help=f"timed repetitions per case (default {DEFAULT_REPS}; 1 with --quick)")
    p.add_argument("--no-r", action="store_true", help="skip lme4 (no Rscript needed)")
    p.add_argument("--no-statsmodels", action="store_true", help="skip statsmodels")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="JSON results path; the chart goes next to it as .png "
                        "(default bench/results/latest.json)")
    args = p.parse_args(argv)
    if args.reps is None:
        args.reps = 1 if args.quick else DEFAULT_REPS
    if args.reps < 1:
        p.error("--reps must be at least 1")
    return args


def planned_reps(case, tool, args):
    """How many timed runs `tool` gets on `case`, and a note for the table."""
    if tool == "lmm":
        return args.reps, ""
    if tool == "statsmodels":
        if case.kind == "seed":
            return args.reps, ""
        if case.kind == "scale" and case.n > LARGE_N and not args.full:
            return 0, "not run above 1e5 rows by default (--full runs it)"
        return 1, "timed once (slow)" if args.reps > 1 else ""
    if case.kind == "profile":
        return 0, "not run: lme4's profile() profiles every parameter, a different computation"
    if case.large:
        return 1, "timed once at large sizes" if args.reps > 1 else ""
    return args.reps, ""


def _safe(call, *args):
    try:
        return call(*args)
    except Exception as exc:  # noqa: BLE001 - a failing tool is reported, not fatal
        return Measurement(None, None, status=f"error: {type(exc).__name__}: {exc}"[:300])


def _lme4_check(lme4):
    try:
        return lme4.check_llf()[0]
    except Exception:  # noqa: BLE001 - the check is optional
        return None


def _summary(measurements, note):
    ok = [m for m in measurements if m.status == "ok"]
    out = {"status": measurements[-1].status if measurements else "not run",
           "reps": len(ok), "times": [m.seconds for m in ok],
           "median": median([m.seconds for m in ok]), "note": note}
    if ok:
        out.update(llf=ok[0].llf, converged=all(m.converged is not False for m in ok),
                   messages=sorted({s for m in ok for s in m.messages}), **ok[0].extra)
    return out


def run_case(case, runners, args):
    """Time every available tool on `case`; returns the case's JSON-ready dict."""
    data = load_data(case)
    plan = {r.name: planned_reps(case, r.name, args) for r in runners}
    active = [r for r in runners if r.available and plan[r.name][0] > 0]
    runs = {r.name: [] for r in runners}
    for r in list(active):
        m = _safe(r.prepare, case, data, not case.large)
        if isinstance(m, Measurement):
            runs[r.name].append(m)
            active.remove(r)
    for rep in range(max((plan[r.name][0] for r in active), default=0)):
        k = rep % len(active)
        for r in active[k:] + active[:k]:
            if len(runs[r.name]) < plan[r.name][0] and (
                    not runs[r.name] or runs[r.name][-1].status == "ok"):
                call = r.profile if case.kind == "profile" else r.fit
                runs[r.name].append(_safe(call, case, data))
    tools = {}
    for r in runners:
        note = plan[r.name][1]
        if not r.available:
            tools[r.name] = {"status": "skipped", "note": r.reason}
        elif plan[r.name][0] == 0:
            tools[r.name] = {"status": "not run", "note": note}
        else:
            tools[r.name] = _summary(runs[r.name], note)
    result = {"id": case.id, "kind": case.kind, "n": len(data), "description": case.description,
              "formula": case.formula, "re_formula": case.re_formula,
              "lme4_formula": case.lme4_formula, "uncorrelated": case.uncorrelated,
              "tools": tools}
    lme4 = next((r for r in active if r.name == "lme4"), None)
    if lme4 is not None and tools["lme4"].get("converged") is False and not case.large:
        # untimed: lets the agreement check see lme4's answer when its default stops short
        result["lme4_check_llf"] = _lme4_check(lme4)
    if case.kind == "scale":
        result["memory"] = measure_in_subprocess(case.n, args.workdir)
    lmm_t = tools["lmm"].get("median")
    result["ratios"] = {name: lmm_t / t["median"] for name, t in tools.items()
                        if name != "lmm" and lmm_t and t.get("median")}
    lmm_llf = tools["lmm"].get("llf")
    result["llf_diff"] = {name: lmm_llf - t["llf"] for name, t in tools.items()
                          if name != "lmm" and lmm_llf is not None and t.get("llf") is not None}
    result["agreement"] = report.agreement(result)
    return result


def _now():
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _meta(runners, args, date, seconds):
    import numpy
    import pandas
    import patsy
    import scipy

    versions = {"python": platform.python_version(), "numpy": numpy.__version__,
                "scipy": scipy.__version__, "pandas": pandas.__version__,
                "patsy": patsy.__version__}
    for r in runners:
        versions[r.name] = r.version
        if getattr(r, "r_version", None):
            versions["R"] = r.r_version
    cpu = next((line.split(":", 1)[1].strip() for line in _read_lines("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    return {"date": date,
            "platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "versions": versions, "lmm_git": _lmm_source_state(),
            "argv": sys.argv[1:] if args.argv is None else args.argv,
            "options": {k: v for k, v in vars(args).items() if k not in ("argv", "workdir")},
            "total_seconds": round(seconds, 1),
            "load_average_1_5_15min_at_end": [round(x, 2) for x in os.getloadavg()],
            "skipped": {r.name: r.reason for r in runners if not r.available}}


def _lmm_source_state():
    """``git describe --always --dirty`` of the checkout lmm was imported from, if any."""
    import lmm

    try:
        proc = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                              text=True, cwd=Path(lmm.__file__).resolve().parent, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None


def _read_lines(path):
    try:
        with open(path) as fh:
            return fh.readlines()
    except OSError:
        return []


def make_runners(args, workdir):
    """One runner per tool in report.TOOLS; switched-off or missing tools are Unavailable."""
    runners = {"lmm": lmm_runner()}
    runners["statsmodels"] = (Unavailable("statsmodels", "--no-statsmodels")
                              if args.no_statsmodels else statsmodels_runner())
    runners["lme4"] = (Unavailable("lme4", "--no-r") if args.no_r
                       else Lme4Runner(workdir))
    return [runners[tool] for tool in report.TOOLS]


def write_outputs(run, out):
    """Print the report, write the JSON to `out` and the chart next to it."""
    meta = run["meta"]
    print(f"\nlmm benchmark, {meta['date']}, {meta['cpu_count']} cores ({meta['cpu']}), "
          + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
          + f", lmm source {meta['lmm_git'] or 'unknown'}")
    print(report.format_report(run))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(run, indent=1, default=str))
    print(f"\n[bench] results: {out}")
    chart = out.with_suffix(".png")
    problem = report.write_chart(run, chart)
    print(f"[bench] {problem}" if problem else f"[bench] chart: {chart}")


def main(argv=None):
    """Run the benchmark; returns the process exit code (0 when it completed)."""
    args = parse_args(argv)
    args.argv = argv
    start, date, load = time.perf_counter(), _now(), os.getloadavg()
    cases = select_cases(quick=args.quick)
    results = []
    with tempfile.TemporaryDirectory(prefix="lmm-bench-") as workdir:
        args.workdir = workdir
        if load[0] > 0.5:
            print(f"[bench] note: load average {load[0]:.2f} before the run: other processes "
                  "are using the CPU, timings will be noisy", flush=True)
        runners = make_runners(args, workdir)
        for r in runners:
            if not r.available:
                print(f"[bench] {r.name} skipped: {r.reason}", flush=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for i, case in enumerate(cases, 1):
                    print(f"[bench] {i}/{len(cases)} {case.id} ...", flush=True)
                    t0 = time.perf_counter()
                    results.append(run_case(case, runners, args))
                    results[-1]["load_average_1min_after"] = round(os.getloadavg()[0], 2)
                    print(f"[bench]     done in {time.perf_counter() - t0:.1f} s", flush=True)
        finally:
            for r in runners:
                r.close()
    run = {"meta": _meta(runners, args, date, time.perf_counter() - start), "cases": results}
    run["meta"]["load_average_1_5_15min_at_start"] = [round(x, 2) for x in load]
    run["targets"] = report.targets(run)
    run["growth"] = report.growth(run)
    write_outputs(run, args.out)
    return 0
