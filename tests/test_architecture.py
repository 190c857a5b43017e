"""The shape of the source tree, checked from the source with `ast` (imports nothing of
lmm): no import cycle among lmm's modules (imports inside functions counted), no
module reading another module's private names, meson.build installing every file,
and README's Layout naming every module.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lmm"

pytestmark = pytest.mark.skipif(not PACKAGE.is_dir(), reason="needs the source tree")


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules():
    """{module name: path} of lmm's Python and Cython modules."""
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*"))
            if p.suffix in (".py", ".pyx") and "__pycache__" not in p.parts}


def _python_tree(path):
    """The module's ast; for Cython, the ast of its Python-level import lines."""
    text = path.read_text()
    if path.suffix == ".pyx":
        lines = [ln.strip() for ln in text.splitlines()]
        text = "\n".join(ln for ln in lines if re.match(r"(from\s+\S+\s+import|import)\s", ln)
                         and " cimport " not in ln)
    return ast.parse(text)


def _imported(module, path, node, modules):
    """The lmm modules one import statement binds, resolved from `module`."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in modules}
    base = _resolve(module, path, node) if node.level else node.module or ""
    out = set()
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        # `from . import x` binds the submodule x; `from .m import name`, the module m
        out.add(sub if sub in modules else base)
    return {m for m in out if m in modules and m != module}


def _import_graph():
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(_python_tree(path)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges |= _imported(name, path, node, modules)
        graph[name] = edges
    return graph


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_builder_sees_imports_inside_functions():
    graph = _import_graph()
    # (lmm.model imports lmm.devfun inside deviance_function only)
    assert "lmm.devfun" in graph["lmm.model"]
    assert "lmm._core" in graph["lmm.model"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle():
    graph = _import_graph()
    cycles = _cycles(graph)
    detail = [{m: sorted(graph[m] & set(c)) for m in c} for c in cycles]
    assert not cycles, f"import cycles among lmm's modules: {detail}"


def _private(name):
    return name.startswith("_") and not name.startswith("__") and not name.endswith("_")


def _defined_private_names(tree):
    """Private names a module defines: functions, classes, assigned names and
    attributes it stores (``obj._x = ...``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return {n for n in names if _private(n)}


def _private_reads(trees):
    """(module, line, text) of reads of another lmm module's private names: an
    attribute ``obj._x`` (obj not self or cls: a class and its mixins share one
    object's state) where only other modules define ``_x``, or ``from .m import _x``
    of a name that is not a module."""
    modules = _modules()
    defined = {name: _defined_private_names(tree) for name, tree in trees.items()}
    out = []
    for name, tree in trees.items():
        elsewhere = set().union(*(d for m, d in defined.items() if m != name))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                if node.attr in elsewhere and node.attr not in defined[name]:
                    out.append((name, node.lineno, ast.unparse(node)))
            elif isinstance(node, ast.ImportFrom) and node.level:
                base = _resolve(name, modules[name], node)
                for alias in node.names:
                    if _private(alias.name) and f"{base}.{alias.name}" not in modules:
                        # (a private submodule, _core or _threads, may be imported)
                        out.append((name, node.lineno, f"from {node.module} import {alias.name}"))
    return out


def _resolve(module, path, node):
    """The absolute name a relative import's ``from`` part names."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _python_trees():
    return {name: ast.parse(path.read_text()) for name, path in _modules().items()
            if path.suffix == ".py"}


def test_the_private_check_finds_a_read():
    trees = {
        "lmm.a": ast.parse("class A:\n    def __init__(self):\n        self._state = 1\n"),
        "lmm.b": ast.parse("def f(a):\n    return a._state + a._own\n\n"
                           "def g(b):\n    b._own = 2\n"),
    }
    assert [(m, text) for m, _, text in _private_reads(trees)] == [("lmm.b", "a._state")]


def test_no_module_reads_another_modules_private_names():
    reads = _private_reads(_python_trees())
    assert not reads, "private names read across modules: " + "; ".join(
        f"{m}:{line} {text}" for m, line, text in reads)


def test_meson_installs_every_package_file():
    listed = set()
    for build in PACKAGE.rglob("meson.build"):
        listed |= {str((build.parent / f).relative_to(PACKAGE))
                   for f in re.findall(r"'([^']+\.(?:py|pyi|pxd|pyx|csv))'", build.read_text())}
    present = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*")
               if p.suffix in (".py", ".pyi", ".pxd", ".pyx", ".csv")
               and "__pycache__" not in p.parts}
    assert present - listed == set(), "files meson.build does not install"
    assert listed - present == set(), "files meson.build names that do not exist"


def _layout_entries():
    """The paths README's Layout block names (``a.py, b.py`` share a's folder)."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"## Layout\s*\n+```\w*\n(.*?)```", text, re.S)
    assert match, "README.md has no Layout block"
    paths = set()
    for line in match.group(1).splitlines():
        if not line.strip() or line.startswith(" "):
            continue                                   # a description's continuation
        names = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        first, *rest = [n.strip() for n in names.split(",")]
        paths.add(first)
        folder = first.rsplit("/", 1)[0] + "/" if "/" in first.rstrip("/") else ""
        paths |= {folder + n for n in rest}
    return paths


def test_readme_layout_matches_the_tree():
    named = _layout_entries()
    missing = sorted(p for p in named if not (ROOT / p.rstrip("/")).exists())
    assert not missing, f"README's Layout names what does not exist: {missing}"
    modules = {str(p.relative_to(ROOT)) for p in PACKAGE.iterdir()
               if p.suffix in (".py", ".pyx", ".pxd")
               and p.name not in ("__init__.py", "__main__.py", "_version.py")}
    folders = {str(p.relative_to(ROOT)) + "/" for p in PACKAGE.iterdir()
               if p.is_dir() and p.name != "__pycache__"}
    unnamed = sorted((modules | folders) - named)
    assert not unnamed, f"README's Layout does not name: {unnamed}"
