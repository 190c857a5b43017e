"""Grouping factors with many levels: nested and crossed, lmm vs lme4.

``python -m bench.large_factors`` (see bench/README.md, "Factors with many levels").

The cases:

* nested (`nested_schools`): ``y ~ x + (1 | school/class)``, S schools, 5 classes in
  each, 10 pupils in each class (S = 2,000: 10^5 rows; S = 20,000: 10^6 rows, an
  ordinary national education data set), y = 1 + x / 2 + school effect (sd 0.8) +
  class effect (sd 0.5) + noise (sd 1), rows shuffled;
* crossed (`crossed_factors`): ``y ~ x + (1 | a) + (1 | b)`` with 10,000 and 2,000
  levels met at random by 10^6 rows (effects sd 0.7 and 0.4, noise sd 1).

Both tools fit the same REML model from the same rows.

* lmm: ``lmm.lmer(formula, data)`` in a fresh process per size (so that its peak
  memory is its own): one untimed warm-up fit of a small case, then `--reps`
  timed fits (``time.perf_counter()``, formula and DataFrame to results), and the
  RSS high-water mark of one more fit (VmHWM after clear_refs, as bench/memory.py)
  against the input's size (``memory_usage(deep=True)`` of the model's columns).
* lme4: the persistent Rscript session of bench/crossed.py reads the same rows
  from a CSV file (grouping columns as factors) and times ``lmer(...)`` once with
  ``system.time()`` after an untimed warm-up fit at the smaller size only (at
  20,000 schools one fit takes lme4 most of a minute).
* Agreement: lmm's REML log-likelihood minus lme4's.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "large_factors.json"
FORMULA = "y ~ x + (1 | school/class)"
CROSSED_FORMULA = "y ~ x + (1 | a) + (1 | b)"
SIZES = (2_000, 20_000)
# issue 21's targets: at most this fraction of lme4's time, peak at most this
# multiple of the input
TIME_TARGET = 1 / 10
MEMORY_TARGET = 3.0


def nested_schools(n_schools, classes_per_school=5, rows_per_class=10, seed=2026):
    """The benchmark's data: integer school and class labels (class labels unique
    across schools), x standard normal, y as in the module's docstring.

    >>> d = nested_schools(3)
    >>> len(d), d["school"].nunique(), d["class"].nunique()
    (150, 3, 15)
    """
    rng = np.random.default_rng(seed)
    n_classes = n_schools * classes_per_school
    n = n_classes * rows_per_class
    klass = np.repeat(np.arange(n_classes), rows_per_class)
    school = klass // classes_per_school
    x = rng.standard_normal(n)
    y = (1.0 + 0.5 * x + 0.8 * rng.standard_normal(n_schools)[school]
         + 0.5 * rng.standard_normal(n_classes)[klass] + rng.standard_normal(n))
    order = rng.permutation(n)
    return pd.DataFrame({"y": y[order], "x": x[order], "school": school[order],
                         "class": klass[order]})


def crossed_factors(n_a=10_000, n_b=2_000, rows=1_000_000, seed=2026):
    """The crossed case's data: integer labels a and b drawn at random per row.

    >>> d = crossed_factors(30, 20, 600)
    >>> len(d), d["a"].nunique() <= 30
    (600, True)
    """
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_a, rows)
    b = rng.integers(0, n_b, rows)
    x = rng.standard_normal(rows)
    y = (1.0 + 0.5 * x + 0.7 * rng.standard_normal(n_a)[a] + 0.4 * rng.standard_normal(n_b)[b]
         + rng.standard_normal(rows))
    return pd.DataFrame({"y": y, "x": x, "a": a, "b": b})


def case_data(case):
    """(formula, data, grouping columns) of a case: a number of schools, or "crossed"."""
    if case == "crossed":
        return CROSSED_FORMULA, crossed_factors(), ("a", "b")
    return FORMULA, nested_schools(int(case)), ("school", "class")


def input_bytes(data):
    return int(data.memory_usage(index=False, deep=True).sum())


# ---------------------------------------------------------------------------
# lmm, in a fresh process per size
# ---------------------------------------------------------------------------



def _fit(data, formula=FORMULA):
    import lmm

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        res = lmm.lmer(formula, data)
        seconds = time.perf_counter() - t0
    return seconds, res, sorted({str(w.message) for w in caught})


def lmm_main(argv):
    """Print one JSON object: lmm's timed fits of case argv[0], argv[1] reps, and the
    peak memory of one more fit."""
    from .memory import _release_free_memory, _reset_high_water_mark, _status_bytes

    case, reps = argv[0], int(argv[1])
    _fit(nested_schools(50))                              # warm-up: imports, kernels
    formula, data, _ = case_data(case)
    times, res = [], None
    for _ in range(reps):
        seconds, res, messages = _fit(data, formula)
        times.append(seconds)
    out = {"case": case, "nobs": len(data), "seconds": times,
           "median": statistics.median(times), "llf": float(res.llf),
           "converged": bool(res.converged), "messages": messages,
           "packed": bool(res.model._criterion.packed),
           "input_bytes": input_bytes(data)}
    # around the fit: the modes as DataFrames, and their conditional variances
    t0 = time.perf_counter()
    res.ranef()
    out["ranef_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    res.model.conditional_covariances(res.theta)
    out["condvar_seconds"] = time.perf_counter() - t0
    del res
    _release_free_memory()
    if _reset_high_water_mark():
        before = _status_bytes("VmRSS")["VmRSS"]
        _fit(data, formula)
        peak = _status_bytes("VmHWM")["VmHWM"]
        out.update(peak_extra_bytes=peak - before,
                   memory_method="VmHWM after clear_refs=5 minus VmRSS before the fit")
    print(json.dumps(out))
    return 0


def run_lmm(case, reps):
    from .memory import boot_command

    proc = subprocess.run(boot_command("large_factors", "lmm_main", case, reps),
                          capture_output=True, text=True, cwd=tempfile.gettempdir())
    if proc.returncode != 0:
        return {"case": case, "error": proc.stderr.strip()[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# lme4
# ---------------------------------------------------------------------------

def run_lme4(session, case, workdir):
    from .crossed import Case

    formula, data, groups = case_data(case)
    path = Path(workdir) / f"case_{case}.csv"
    data.to_csv(path, index=False)
    session.load(Case(f"case_{case}", "large", str(path), formula, groups, "large"),
                 warmup=case == str(SIZES[0]))
    return session.fit()


# ---------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.large_factors",
                                description="lmm.lmer vs lme4::lmer, factors with many levels.")
    p.add_argument("--cases", nargs="+", default=[*map(str, SIZES), "crossed"],
                   help="numbers of schools of the nested case, or 'crossed' "
                        "(default: 2000 20000 crossed)")
    p.add_argument("--reps", type=int, default=3, help="lmm's timed fits per size")
    p.add_argument("--no-r", action="store_true", help="lmm only")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return p.parse_args(argv)


def format_report(result):
    lines = ["| case | rows | lmm s | lme4 s | lmm / lme4 | lmm llf - lme4 llf "
             "| lmm peak / input | ranef s | condVar s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        mine, r = row["lmm"], row.get("lme4") or {}
        if "error" in mine:
            lines.append(f"| {row['case']} | | error: {mine['error'][-200:]} |")
            continue
        ratio = f"1/{r['seconds'] / mine['median']:.0f}" if r.get("seconds") else "-"
        diff = f"{mine['llf'] - r['llf']:+.2e}" if "llf" in r else "-"
        peak = (f"{mine['peak_extra_bytes'] / mine['input_bytes']:.1f}"
                if "peak_extra_bytes" in mine else "-")
        name = "crossed 10,000 x 2,000" if row["case"] == "crossed" else \
            f"nested, {int(row['case']):,} schools"
        lines.append(f"| {name} | {mine['nobs']:,} | {mine['median']:.2f} | "
                     f"{r.get('seconds', float('nan')):.1f} | {ratio} | {diff} | {peak} | "
                     f"{mine['ranef_seconds']:.2f} | {mine['condvar_seconds']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    rows = []
    session = None
    with tempfile.TemporaryDirectory() as workdir:
        if not args.no_r:
            from .crossed import Lme4Session

            session = Lme4Session(workdir)
            if not session.available:
                print(f"lme4 skipped: {session.reason}", file=sys.stderr)
                session = None
        try:
            for case in args.cases:
                row = {"case": case, "lmm": run_lmm(case, args.reps)}
                if session is not None:
                    row["lme4"] = run_lme4(session, case, workdir)
                rows.append(row)
        finally:
            if session is not None:
                session.close()
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "formulas": {"nested": FORMULA, "crossed": CROSSED_FORMULA}, "rows": rows,
              "versions": session.versions if session is not None else {}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(format_report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
