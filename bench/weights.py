"""Prior weights: what they cost, weighted against unweighted in the same run.

    python -m bench.weights [--reps 7] [--evals 200]

Issue 19's rule: weights enter the sufficient statistics only, so one evaluation of
the criterion must cost the same with and without them (within noise); the set-up (the
weighted cross-products) and the whole fit are reported separately.  Two cases:

* one grouping factor, the scale case of 10^5 rows (`bench.cases.make_scale_data`,
  ``y ~ x1 + x2 + x3 + x4 + (1 + x1 | g)``), weights drawn uniform on (0.5, 2);
* crossed factors, Penicillin replicated 40 times with its plates relabelled per copy
  (960 plates, 6 samples, 5,760 rows), ``diameter ~ 1 + (1 | plate) + (1 | sample)``.

For each case and each of weighted / unweighted, alternating, `--reps` times: the model
is built from the formula (set-up), fitted (fit), and its deviance function is called
`--evals` times at the fitted theta (per evaluation).  Medians are printed as a Markdown
table (seconds; per evaluation in microseconds).
"""

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

import lmm

from .cases import make_scale_data


def _penicillin_copies(copies=40):
    d = pd.read_csv(Path(__file__).resolve().parent.parent / "tests" / "data" /
                    "penicillin.csv")
    parts = [d.assign(plate=d["plate"] + str(k)) for k in range(copies)]
    out = pd.concat(parts, ignore_index=True)
    rng = np.random.default_rng(7)
    return out.assign(diameter=out["diameter"] + rng.normal(0, 0.5, len(out)))


def _cases():
    one = make_scale_data(100_000)
    crossed = _penicillin_copies()
    for d in (one, crossed):
        d["w"] = np.random.default_rng(11).uniform(0.5, 2.0, len(d))
    return {
        "one_factor_1e5": ("y ~ x1 + x2 + x3 + x4 + (1 + x1 | g)", one),
        "crossed_penicillin_x40": ("diameter ~ 1 + (1 | plate) + (1 | sample)", crossed),
    }


def _time_once(formula, data, weighted, evals):
    kwargs = {"weights": "w"} if weighted else {}
    t0 = time.perf_counter()
    model = lmm.MixedLM.from_lmer(formula, data, **kwargs)
    t1 = time.perf_counter()
    res = model.fit()
    t2 = time.perf_counter()
    f = model.deviance_function(reml=True)
    theta = np.asarray(res.theta, dtype=float)
    f(theta)
    t3 = time.perf_counter()
    for _ in range(evals):
        f(theta)
    t4 = time.perf_counter()
    return dict(setup=t1 - t0, fit=t2 - t1, per_eval=(t4 - t3) / evals, llf=res.llf)


def run(reps=7, evals=200):
    rows = []
    for case, (formula, data) in _cases().items():
        got = {True: [], False: []}
        _time_once(formula, data, True, 5)          # warm-up, not timed
        for r in range(reps):
            for weighted in ((True, False) if r % 2 else (False, True)):
                got[weighted].append(_time_once(formula, data, weighted, evals))
        for weighted in (False, True):
            runs = got[weighted]
            rows.append(dict(
                case=case, weights="yes" if weighted else "no",
                setup=statistics.median(x["setup"] for x in runs),
                fit=statistics.median(x["fit"] for x in runs),
                per_eval_us=1e6 * statistics.median(x["per_eval"] for x in runs),
                llf=runs[0]["llf"]))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--evals", type=int, default=200)
    args = p.parse_args(argv)
    rows = run(args.reps, args.evals)
    print("| case | weights | set-up (s) | fit (s) | one evaluation (us) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['weights']} | {r['setup']:.4g} | {r['fit']:.4g} | "
              f"{r['per_eval_us']:.4g} |")


if __name__ == "__main__":
    main()
