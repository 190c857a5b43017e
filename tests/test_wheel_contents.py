"""What the built distributions hold: the wheel ships the package and nothing else, the
sdist everything needed to build and nothing generated.

Builds nothing itself: tools/check_wheel.sh builds the sdist and the (repaired) wheel and
runs this file with LMM_WHEEL and LMM_SDIST pointing at them. Without those variables
(a plain ``pytest`` run) the tests are skipped. Imports nothing from lmm.
"""

import ast
import email.parser
import os
import re
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WHEEL = os.environ.get("LMM_WHEEL")
SDIST = os.environ.get("LMM_SDIST")

# Build leftovers and files that have no business in a distribution.
LEFTOVER = re.compile(
    r"(\.(c|cpp|o|obj|so\.p|pyc|html|log)$)|(^|/)(build|builddir|\.mesonpy[^/]*|meson-private|"
    r"meson-logs|meson-info|__pycache__|\.pytest_cache|\.hypothesis|\.ruff_cache|\.venv[^/]*|"
    r"dist|results)(/|$)"
)


def _version():
    tree = ast.parse((ROOT / "lmm" / "_version.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "__version__":
            return node.value.value
    raise AssertionError("no __version__ in lmm/_version.py")


def _source_modules():
    """The lmm package's Python files and data files in the committed source tree."""
    out = subprocess.run(["git", "ls-files", "lmm"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():
        pytest.skip("not a git checkout")
    return {p for p in out.stdout.split() if p.endswith((".py", ".pyi", ".csv"))}


@pytest.fixture(scope="module")
def wheel_names():
    if not WHEEL:
        pytest.skip("LMM_WHEEL not set (tools/check_wheel.sh sets it to the built wheel)")
    with zipfile.ZipFile(WHEEL) as zf:
        return zf.namelist()


@pytest.fixture(scope="module")
def sdist_names():
    if not SDIST:
        pytest.skip("LMM_SDIST not set (tools/check_wheel.sh sets it to the built sdist)")
    with tarfile.open(SDIST) as tf:
        names = [m.name for m in tf.getmembers() if m.isfile()]
    prefix = f"lmm-{_version()}/"
    assert all(n.startswith(prefix) for n in names), "sdist files outside lmm-<version>/"
    return [n[len(prefix):] for n in names]


def test_wheel_has_the_package(wheel_names):
    names = set(wheel_names)
    cores = [n for n in names if re.fullmatch(r"lmm/_core\..*\.(so|pyd)", n)]
    assert len(cores) == 1, cores
    for needed in ["lmm/__init__.py", "lmm/_version.py", "lmm/_core.pyi",
                   "lmm/datasets/dietox.csv", "lmm/datasets/Sitka.csv"]:
        assert needed in names, needed
    # every module, stub and data set of the source tree is installed (a file missing
    # from lmm/meson.build's install_sources would be an ImportError for users only)
    missing = _source_modules() - names
    assert not missing, f"in the source tree but not in the wheel: {sorted(missing)}"


def test_wheel_has_no_leftovers(wheel_names):
    bad = [n for n in wheel_names if LEFTOVER.search(n)]
    assert not bad, bad
    outside = [n for n in wheel_names if not n.startswith(("lmm/", f"lmm-{_version()}.dist-info/"))]
    assert not outside, f"files outside the package: {outside}"
    assert not [n for n in wheel_names if n.endswith(".pyx")], "the .pyx is not needed at run time"
    assert not [n for n in wheel_names if "tests/" in n or n.endswith(".json")], "tests data"


def test_wheel_metadata(wheel_names):
    dist_info = f"lmm-{_version()}.dist-info"
    with zipfile.ZipFile(WHEEL) as zf:
        meta = email.parser.Parser().parsestr(zf.read(f"{dist_info}/METADATA").decode())
    assert meta["Name"] == "lmm"
    assert meta["Version"] == _version()
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert meta["Requires-Python"] == ">=3.10"
    assert f"{dist_info}/licenses/LICENSE" in wheel_names
    requires = meta.get_all("Requires-Dist")
    for dep in ("numpy", "scipy", "pandas", "patsy"):
        assert any(r.startswith(dep) and "extra ==" not in r for r in requires), dep
    # the README is the long description
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().lstrip().startswith("# lmm")


def test_sdist_has_what_the_build_needs(sdist_names):
    names = set(sdist_names)
    for needed in ["pyproject.toml", "meson.build", "lmm/meson.build", "lmm/_core.pyx",
                   "lmm/_core.pyi", "lmm/_version.py", "README.md", "LICENSE", "PKG-INFO"]:
        assert needed in names, needed
    missing = _source_modules() - names
    assert not missing, f"in the source tree but not in the sdist: {sorted(missing)}"


def test_sdist_has_nothing_generated(sdist_names):
    bad = [n for n in sdist_names if LEFTOVER.search(n) or n.endswith((".so", ".pyd", ".whl"))]
    assert not bad, bad
