"""What surrounds the fit of a large model: its random effects and profile intervals.

``python -m bench.around_fit`` (see bench/README.md, "Around the fit of large models").

Two models (issue 21's), each fitted once, then each operation timed once
(``time.perf_counter()``) and reported with its ratio to the fit's time:

* one factor, 2 x 10^5 groups of 5 rows, ``y ~ x + (x | g)``;
* crossed, 20,000 x 500 levels met at random by 10^6 rows, ``y ~ x + (1 | a) + (1 | b)``.

Operations: ``ranef()`` (the modes as DataFrames), ``ranef(condvar=True)`` (with
their conditional covariances), ``random_effects`` (statsmodels' dict of one Series
per group), ``conf_int_re()`` (lme4's profile intervals of the variance parameters).
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "around_fit.json"


def one_factor(groups=200_000, per_group=5, seed=0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x = rng.standard_normal(len(g))
    y = (1 + x + rng.standard_normal(groups)[g] + 0.3 * x * rng.standard_normal(groups)[g]
         + rng.standard_normal(len(g)))
    return "y ~ x + (x | g)", pd.DataFrame({"y": y, "x": x, "g": g})


def crossed(n_a=20_000, n_b=500, rows=1_000_000, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, n_a, rows), rng.integers(0, n_b, rows)
    x = rng.standard_normal(rows)
    y = (1 + 0.5 * x + 0.7 * rng.standard_normal(n_a)[a] + 0.4 * rng.standard_normal(n_b)[b]
         + rng.standard_normal(rows))
    return "y ~ x + (1 | a) + (1 | b)", pd.DataFrame({"y": y, "x": x, "a": a, "b": b})


def _timed(fun):
    t0 = time.perf_counter()
    fun()
    return time.perf_counter() - t0


def measure(name, formula, data):
    import lmm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        res = lmm.lmer(formula, data)
        fit = time.perf_counter() - t0
        ops = {
            "ranef()": lambda: res.ranef(),
            "random_effects": lambda: res.random_effects,
            "ranef(condvar=True)": lambda: res.ranef(condvar=True),
            "conf_int_re()": lambda: res.conf_int_re(),
        }
        times = {op: _timed(f) for op, f in ops.items()}
    return {"case": name, "formula": formula, "nobs": len(data), "fit": fit, **times}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.around_fit",
                                description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    rows = [measure("one factor, 2 x 10^5 groups", *one_factor()),
            measure("crossed 20,000 x 500", *crossed())]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    ops = ["ranef()", "ranef(condvar=True)", "random_effects", "conf_int_re()"]
    print("| model | rows | fit s | " + " | ".join(f"{op} s (x fit)" for op in ops) + " |")
    print("|---|---|---|" + "---|" * len(ops))
    for r in rows:
        cells = " | ".join(f"{r[op]:.2f} ({r[op] / r['fit']:.1f}x)" for op in ops)
        print(f"| {r['case']} | {r['nobs']:,} | {r['fit']:.2f} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
