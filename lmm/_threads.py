"""The number of BLAS threads inside lmm's own dense factorizations.

The several-factor engine factors its dense Schur complement by LAPACK (scipy's
OpenBLAS) at every evaluation.  OpenBLAS then wakes a thread per core; when
other processes hold the cores, those threads wait for each other at every call
and a fit runs several times slower than single-threaded (InstEval with a second
fit running beside it: 3.1 s instead of 0.74 s).  `blas_threads` sets the
thread count of every OpenBLAS loaded in the process for the duration of a
block, and restores it after.

OpenBLAS is found through its own interface (``openblas_set_num_threads`` and
its ``scipy_openblas`` variants, in the libraries mapped into the process);
where there is none (MKL, Accelerate, another platform) threadpoolctl is used if
installed, else nothing is changed.  ``LMM_BLAS_THREADS`` sets the count used
inside lmm (default 1).
"""

import contextlib
import ctypes
import os
import threading
import warnings

_NAMES = ("openblas", "scipy_openblas")
_SUFFIXES = ("", "64_")
_controls = None


def _mapped_libraries():
    """Paths of the shared libraries mapped into this process whose name says
    OpenBLAS (Linux: /proc/self/maps; elsewhere none)."""
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "openblas" in line.lower()}
    except OSError:
        return []
    return sorted(p for p in paths if p.startswith("/"))


def _find_controls():
    """[(get, set)] of each OpenBLAS's thread count."""
    found = []
    for path in _mapped_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _NAMES:
            for suffix in _SUFFIXES:
                getter = getattr(lib, f"{name}_get_num_threads{suffix}", None)
                setter = getattr(lib, f"{name}_set_num_threads{suffix}", None)
                if getter is not None and setter is not None:
                    getter.restype = ctypes.c_int
                    setter.argtypes = [ctypes.c_int]
                    setter.restype = None
                    found.append((getter, setter))
    return found


def _controls_once():
    global _controls
    if _controls is None:
        _controls = _find_controls()
    return _controls


def default_threads():
    """BLAS threads inside lmm: LMM_BLAS_THREADS, else 1."""
    value = os.environ.get("LMM_BLAS_THREADS", "")
    try:
        return max(1, int(value))
    except ValueError:
        return 1


@contextlib.contextmanager
def blas_threads(n=None):
    """Run the block with n BLAS threads (default: `default_threads`).

    Examples
    --------
    >>> import numpy as np
    >>> with blas_threads(1):
    ...     _ = np.linalg.cholesky(np.eye(3))
    """
    n = default_threads() if n is None else int(n)
    controls = _controls_once()
    if not controls:
        with _threadpoolctl_limit(n):
            yield
        return
    previous = [get() for get, _ in controls]
    for (_, set_threads), before in zip(controls, previous):
        if before != n:
            set_threads(n)
    try:
        yield
    finally:
        for (get, set_threads), before in zip(controls, previous):
            if get() != before:
                set_threads(before)


def _threadpoolctl_limit(n):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


# -- warnings silenced around fits that may run on several threads -------------------
# warnings.catch_warnings saves and restores the process's filters: entered and left
# from several threads at once it restores them in the wrong order (and a warning can
# escape, or a user's filters be lost).  `quiet_warnings` enters it once for every
# thread inside lmm's refits, and leaves it when the last one is done.
_QUIET_LOCK = threading.Lock()
_QUIET = {"depth": 0, "context": None}


@contextlib.contextmanager
def quiet_warnings():
    """Ignore warnings for the duration of a block, thread-safely: while any thread is
    inside, the process's filters say "ignore" (warnings' filters are per process);
    the first thread in saves them, the last one out restores them."""
    with _QUIET_LOCK:
        if _QUIET["depth"] == 0:
            context = warnings.catch_warnings()
            context.__enter__()
            warnings.simplefilter("ignore")
            _QUIET["context"] = context
        _QUIET["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET["depth"] -= 1
            if _QUIET["depth"] == 0:
                _QUIET["context"].__exit__(None, None, None)
                _QUIET["context"] = None
