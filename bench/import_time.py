"""The cost of ``import lmm`` beyond numpy and pandas.

    python -m bench.import_time [--runs 5]

Each run is a fresh interpreter (warm file cache: one untimed run first) that
imports numpy and pandas, then lmm, timing each with ``time.perf_counter``; the
median over the runs is printed, with the modules that cost the most
(``python -X importtime``, cumulative microseconds) of the last run.
"""

import argparse
import statistics
import subprocess
import sys

CODE = ("import time; t0 = time.perf_counter(); import numpy, pandas; "
        "t1 = time.perf_counter(); import lmm; t2 = time.perf_counter(); "
        "print(t1 - t0, t2 - t1)")


def measure(runs=5):
    subprocess.run([sys.executable, "-c", CODE], check=True, capture_output=True)
    base, extra = [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", CODE], check=True, capture_output=True,
                             text=True).stdout.split()
        base.append(float(out[0]))
        extra.append(float(out[1]))
    return statistics.median(base), statistics.median(extra)


def heaviest(limit=8):
    err = subprocess.run([sys.executable, "-X", "importtime", "-c",
                          "import numpy, pandas; import lmm"], check=True,
                         capture_output=True, text=True).stderr
    rows = []
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    lmm_rows = [r for r in rows if r[1].strip().startswith(("lmm", "scipy", "patsy"))]
    return sorted(lmm_rows, reverse=True)[:limit]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    base, extra = measure(args.runs)
    print(f"numpy + pandas: {base:.3f} s; import lmm beyond them: {extra:.3f} s "
          f"(median of {args.runs})")
    for us, name in heaviest():
        print(f"  {us / 1e6:.3f} s  {name.strip()}")


if __name__ == "__main__":
    main()
