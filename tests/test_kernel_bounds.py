"""The compiled entry points refuse inconsistent arguments with a ValueError.

The kernels of lmm._core run without bounds checks, so each public entry
point checks shapes and index ranges on entry.  The cases (one changed
argument each, tests/kernel_bound_cases.py) run in one subprocess: an
unchecked kernel may crash the interpreter rather than raise, and then the
case running at the crash is named.
"""

import subprocess
import sys
from pathlib import Path

import kernel_bound_cases
import pytest

HERE = Path(__file__).parent
NAMES = kernel_bound_cases.case_names()


@pytest.fixture(scope="module")
def outcomes():
    proc = subprocess.run([sys.executable, str(HERE / "kernel_bound_cases.py")],
                          capture_output=True, text=True, timeout=300, cwd=HERE)
    lines = proc.stdout.splitlines()
    assert lines and lines[0] == "baseline ok", proc.stdout + proc.stderr
    found, running = {}, None
    for line in lines[1:]:
        name, _, outcome = line.partition(" ")
        if name == "start":
            running = outcome
        else:
            found[name] = outcome
            running = None
    if proc.returncode != 0:
        found[running] = f"crashed the interpreter (exit {proc.returncode})"
    return found


@pytest.mark.parametrize("name", NAMES)
def test_entry_point_refuses(outcomes, name):
    outcome = outcomes.get(name, "not run: an earlier case crashed the interpreter")
    assert outcome.startswith("ValueError"), f"{name}: {outcome}"


def test_every_public_entry_point_is_covered():
    from lmm import _core

    public = {n for n in dir(_core) if not n.startswith("_") and callable(getattr(_core, n))}
    # the lead's (model_products, integer_model_products) and ones without index
    # arguments to get wrong are not here
    exempt = {"model_products", "integer_model_products", "np"}
    covered = {n.split("/")[0].split(".")[0] for n in NAMES}
    assert public - exempt - covered == set()
