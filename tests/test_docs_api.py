"""The API reference (docs/api.rst) documents every public name (issue 22)."""

import re
from pathlib import Path

import lmm

API = (Path(__file__).resolve().parents[1] / "docs" / "api.rst").read_text()


def test_every_public_name_is_in_the_api_reference():
    missing = [name for name in lmm.__all__
               if not re.search(rf"lmm\.{re.escape(name)}\b", API)]
    assert not missing, f"docs/api.rst does not document {missing}"


def test_every_plotting_function_is_in_the_api_reference():
    from lmm import plotting

    public = [n for n in dir(plotting) if n.startswith("plot_")]
    assert public and all(f"lmm.plotting.{n}" in API for n in public)
