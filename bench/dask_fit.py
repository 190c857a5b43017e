"""One model from rows that no process holds: Parquet -> Dask -> lmm, on a LocalCluster.

``python -m bench.dask_fit`` (see bench/README.md, "One model from a Dask DataFrame").

* Data: `--rows` rows (default 5 x 10^7) of ``y ~ x + (1 + x | g)`` with `--groups`
  groups (default 10^5), written once as Parquet files of 10^6 rows each (numpy's
  default_rng, seed 2026 per file) under `--data-dir` (default a directory in the
  system's temporary directory, reused by later runs).
* The fit: ``lmm.lmer(formula, dask.dataframe.read_parquet(dir))`` with a
  ``distributed.Client`` on a ``LocalCluster`` of 2 workers, 1 thread each, each
  limited to `--worker-memory` (default 1 GB: less than the data's size in memory,
  so no worker can hold the rows), run in a fresh process.  Reported: the wall
  time, the client process's peak RSS (VmHWM), each worker's peak RSS (read on the
  workers at the end), the data's in-memory size.
* Agreement: the first `--subset-files` files (default 10: 10^7 rows) fitted both
  ways, in memory (pandas) and through the cluster: the differences of the
  log-likelihood and the estimates.
"""

import argparse
import json
import resource
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "dask_fit.json"
FORMULA = "y ~ x + (1 + x | g)"
ROWS_PER_FILE = 1_000_000


def write_data(directory, rows, groups, seed=2026):
    """Parquet files of ROWS_PER_FILE rows: y, x, g (int64); group effects from one
    generator so that every file's rows share them.  Files already there are kept."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    effects = np.random.default_rng(seed).standard_normal((groups, 2)) * [0.8, 0.3]
    n_files = -(-rows // ROWS_PER_FILE)
    for i in range(n_files):
        path = directory / f"part-{i:04d}.parquet"
        if path.exists():
            continue
        rng = np.random.default_rng([seed, i])
        n = min(ROWS_PER_FILE, rows - i * ROWS_PER_FILE)
        g = rng.integers(0, groups, n)
        x = rng.standard_normal(n)
        y = 1.0 + 0.5 * x + effects[g, 0] + effects[g, 1] * x + rng.standard_normal(n)
        pd.DataFrame({"y": y, "x": x, "g": g}).to_parquet(path, index=False)
    return sorted(directory.glob("part-*.parquet"))[:n_files]


def _peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _estimates(res):
    return {"llf": float(res.llf), "fe_params": [float(v) for v in res.fe_params],
            "cov_re": np.asarray(res.cov_re, dtype=float).ravel().tolist(),
            "scale": float(res.scale), "nobs": int(res.nobs),
            "converged": bool(res.converged)}


def client_main(argv):
    """In a fresh process: the cluster, the fit of the files argv[1:], the peaks."""
    import dask.dataframe as dd
    import distributed

    import lmm

    worker_memory, files = argv[0], argv[1:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                           memory_limit=worker_memory, processes=True,
                                           host="127.0.0.1", dashboard_address=None)
    try:
        with distributed.Client(cluster) as client:
            dask_df = dd.read_parquet(files)
            t0 = time.perf_counter()
            res = lmm.lmer(FORMULA, dask_df)
            seconds = time.perf_counter() - t0
            # (a lambda travels by value: the workers cannot import bench)
            workers = client.run(lambda: __import__("resource").getrusage(
                __import__("resource").RUSAGE_SELF).ru_maxrss * 1024)
    finally:
        cluster.close()
    print(json.dumps({"seconds": seconds, "client_peak_rss": _peak_rss(),
                      "worker_peak_rss": sorted(workers.values()),
                      "npartitions": dask_df.npartitions, **_estimates(res)}))
    return 0




def run_client(files, worker_memory):
    from .memory import boot_command

    proc = subprocess.run(boot_command("dask_fit", "client_main", worker_memory, *files),
                          capture_output=True, text=True, cwd=tempfile.gettempdir())
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-3000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def in_memory(files):
    import lmm

    data = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    t0 = time.perf_counter()
    res = lmm.lmer(FORMULA, data)
    return {"seconds": time.perf_counter() - t0, **_estimates(res)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.dask_fit",
                                description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=50_000_000)
    p.add_argument("--groups", type=int, default=100_000)
    p.add_argument("--subset-files", type=int, default=10)
    p.add_argument("--worker-memory", default="1GB")
    p.add_argument("--data-dir", type=Path,
                   default=Path(tempfile.gettempdir()) / "lmm_bench_dask_fit")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    files = write_data(args.data_dir / f"{args.rows}_{args.groups}", args.rows, args.groups)
    write_seconds = time.perf_counter() - t0
    data_bytes = args.rows * 3 * 8
    full = run_client(files, args.worker_memory)
    subset = files[:args.subset_files]
    sub_dask = run_client(subset, args.worker_memory)
    sub_memory = in_memory(subset)
    agreement = {}
    if "error" not in sub_dask:
        agreement = {
            "llf_diff": sub_dask["llf"] - sub_memory["llf"],
            "llf_rel_diff": abs(sub_dask["llf"] - sub_memory["llf"]) / abs(sub_memory["llf"]),
            "fe_max_rel_diff": float(np.max(np.abs(np.subtract(sub_dask["fe_params"],
                                                               sub_memory["fe_params"]))
                                            / np.abs(sub_memory["fe_params"]))),
            "cov_re_max_abs_diff": float(np.max(np.abs(np.subtract(sub_dask["cov_re"],
                                                                   sub_memory["cov_re"])))),
        }
    result = {"formula": FORMULA, "rows": args.rows, "groups": args.groups,
              "data_bytes_in_memory": data_bytes, "worker_memory_limit": args.worker_memory,
              "write_seconds": write_seconds, "full": full,
              "subset": {"files": len(subset), "dask": sub_dask, "in_memory": sub_memory,
                         "agreement": agreement}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    gb = 1e9
    if "error" in full:
        print("full run failed:", full["error"][-1500:])
    else:
        print(f"{args.rows:,} rows ({data_bytes / gb:.1f} GB in memory), {args.groups:,} groups, "
              f"{full['npartitions']} partitions: {full['seconds']:.1f} s; client peak "
              f"{full['client_peak_rss'] / gb:.2f} GB; worker peaks "
              f"{', '.join(f'{w / gb:.2f}' for w in full['worker_peak_rss'])} GB "
              f"(limit {args.worker_memory})")
    print(f"subset of {len(subset)} files: dask - in memory: {agreement}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
