"""Sphinx configuration of lmm's documentation (built by .ci/run with -W)."""

import sys
from pathlib import Path

# the installed lmm, never the source tree beside this file (it has no compiled core):
# drop the checkout from the path that `python -m sphinx` run from it puts first
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT]

import lmm  # noqa: E402

project = "lmm"
author = "lmm's developers"
release = version = lmm.__version__
extensions = ["sphinx.ext.autodoc", "numpydoc"]
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
autodoc_default_options = {"members": False}
html_theme = "pydata_sphinx_theme"
html_theme_options = {"navigation_with_keys": False}
exclude_patterns = ["_build"]
