"""Peak extra memory of one lmm fit, measured in a fresh Python process.

Method (Linux): after generating the data and one small warm-up fit (so that
lazily imported modules are not counted), free what can be freed
(``gc.collect`` and glibc's ``malloc_trim``), reset the RSS high-water mark by
writing "5" to /proc/self/clear_refs, read VmRSS, fit (formula + DataFrame to
results, as timed), read VmHWM.  Peak extra = VmHWM - VmRSS before.  This
counts every allocation (numpy, Cython, BLAS, patsy) while resident.  Where
clear_refs cannot be written the fallback is tracemalloc's peak, which sees
Python and numpy allocations only; the JSON names the method used.

Run as ``python -m bench.memory N`` it prints one JSON object; `measure_in_subprocess`
runs it that way from the benchmark.
"""

import ctypes
import gc
import json
import subprocess
import sys
import tracemalloc
import warnings
from pathlib import Path

from .cases import input_bytes, load_data, make_scale_data, scale_case


def boot_command(module, function, *args):
    """The argv of a fresh interpreter that runs ``bench.<module>.<function>(args)`` and
    exits with its return value.  The bench package is loaded from its path, without
    putting the source tree (which holds an uncompiled lmm/) on sys.path, so the
    installed lmm is the one measured."""
    pkg = Path(__file__).resolve().parent
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('bench', sys.argv[1],"
        " submodule_search_locations=[sys.argv[2]])\n"
        "mod = importlib.util.module_from_spec(spec); sys.modules['bench'] = mod\n"
        "spec.loader.exec_module(mod)\n"
        f"from bench.{module} import {function}\n"
        f"raise SystemExit({function}(sys.argv[3:]))\n"
    )
    return [sys.executable, "-c", code, str(pkg / "__init__.py"), str(pkg), *map(str, args)]


def _status_bytes(*keys):
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in keys:
                out[key] = int(value.split()[0]) * 1024
    return out


def _release_free_memory():
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_high_water_mark():
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _fit(case, data):
    import lmm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lmm.mixedlm(case.formula, data, groups=case.groups,
                           re_formula=case.re_formula).fit(reml=True)


def measure(n):
    """Peak extra memory (bytes) of the lmm fit of the scale case with `n` rows."""
    case = scale_case(n)
    data = load_data(case)
    warm = scale_case(1000)
    _fit(warm, make_scale_data(1000))
    _release_free_memory()
    if _reset_high_water_mark():
        method = "VmHWM after clear_refs=5, minus VmRSS before the fit"
        before = _status_bytes("VmRSS")["VmRSS"]
        _fit(case, data)
        peak = _status_bytes("VmHWM")["VmHWM"]
    else:
        method = "tracemalloc peak minus traced memory before the fit"
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        _fit(case, data)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return {"n": n, "method": method, "extra_bytes": peak - before,
            "input_bytes": input_bytes(case, data)}


def measure_in_subprocess(n, cwd):
    """`measure(n)` in a fresh interpreter (a clean baseline); None with a reason on failure."""
    proc = subprocess.run(boot_command("memory", "main", n), capture_output=True, text=True,
                          cwd=cwd)
    if proc.returncode != 0:
        return {"n": n, "error": proc.stderr.strip()[-1000:]}
    return json.loads(proc.stdout)


def main(argv=None):
    """Print `measure(N)` as JSON for ``python -m bench.memory N``."""
    argv = sys.argv[1:] if argv is None else argv
    print(json.dumps(measure(int(argv[0]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
