"""Sphinx configuration of lmm's documentation (built by .ci/run with -W)."""

import lmm

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
