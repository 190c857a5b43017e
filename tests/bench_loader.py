"""Load a module of the benchmark suite (bench/) for the smoke tests.

The bench package is loaded from its path, without putting the source tree (whose
lmm/ has no compiled core) on sys.path, so the installed lmm is the one benchmarked.
"""

import importlib
import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def load_bench(module):
    """``bench.<module>``, importing the bench package from its path once."""
    if "bench" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "bench", BENCH / "__init__.py", submodule_search_locations=[str(BENCH)]
        )
        package = importlib.util.module_from_spec(spec)
        sys.modules["bench"] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"bench.{module}")
