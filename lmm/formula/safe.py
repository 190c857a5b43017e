"""Formula strings that never run arbitrary code, and R's ``^`` as a power.

patsy evaluates each factor of a formula (``np.log(x)``, ``I(x**2)``) as
Python in a namespace captured from the stack, so a formula string can run
anything (``__import__('os').system(...)``).  Here every factor expression is
parsed with Python's ``ast`` and checked against a whitelist before patsy
sees it; what may appear is

- names of the data's columns (``Q("odd name")`` for names that are not
  Python identifiers) and of the registered formula functions (`FUNCTIONS`);
- numbers, strings, True/False/None, tuples and lists of those (arguments
  such as ``C(g, levels=["b", "a"])`` or ``bs(x, knots=[1, 2])``);
- arithmetic ``+ - * / // % ** ^``, elementwise ``& | ~``, comparisons
  ``== != < <= > >=``;
- calls of registered functions, with keyword arguments (numpy's output
  arrays, positional or ``out=``, and ufuncs' keywords excepted: they write
  in place or leave entries unset);
- ``np.f`` / ``numpy.f`` for the numpy elementwise functions and constants
  listed in `NUMPY_FUNCTIONS` (``np`` itself is a namespace holding only
  those, not the numpy module).

The registered functions: numpy's elementwise functions under their own
names too (``log``, ``exp``, ``sqrt``, ``abs``, ``floor``, ...), R's names
(``log(x, base)``, ``ceiling``, ``round(x, digits)``, ``asin``, ...,
``pmin``, ``pmax``, ``factor`` as ``C``, ``poly(x, degree, raw=False)``: R's
orthogonal polynomials, a stateful transform), and patsy's ``I``, ``Q``, ``C``,
the contrasts (``Treatment``, ``Sum``, ``Helmert``, ``Poly``, ``Diff``,
``ContrastMatrix``), the stateful transforms ``center``, ``standardize``,
``scale`` (patsy's, divided by the standard deviation with ddof=0, in
statsmodels-style formulas; R's, ddof=1, in lme4-style ones: `lme4_environment`)
and the splines ``bs``, ``cr``, ``cc``, ``te``.

Anything else (other names, such as variables of the calling frame, other
attributes, dunder names other than columns, subscripts, lambdas,
comprehensions, f-strings, ``:=``, ``if``-expressions, ``and``/``or``,
``*args``/``**kwargs``, powers of constants such as ``9**9**9`` that Python
would compute for ever, arithmetic on strings or lists) raises a ValueError
naming the offending part.  Evaluation runs without Python's builtins, a
second wall behind the check.  The check is about code, not size: a formula may
still ask for a large design (``bs(x, df=100000)``); a service should bound
the formulas' length and the sizes it accepts.

This is a break with statsmodels, where formulas are
evaluated as Python in the caller's namespace: a formula naming a variable
that is not a column (``y ~ x + offset_array``) now raises; pass
``eval_env=0`` to keep statsmodels' behaviour.  A caller who wants formulas evaluated
as Python, in its own namespace as statsmodels does, passes ``eval_env=``: an
int (0 is the frame that called lmm, 1 its caller, ...; -1 an empty
namespace), a dict, or a ``patsy.EvalEnvironment``.  The registered
functions stay visible behind that namespace.

``^`` inside an expression (``I(x^2)``, ``log(x^2)``) is the power, as in R,
in both formula styles and also with ``eval_env`` (Python's meaning, bitwise
XOR, is what patsy and statsmodels compute, and nobody means it; write
``np.bitwise_xor`` for that).  At the formula level ``(a + b)^2`` is R's
interaction expansion, patsy's ``(a + b)**2``.

The registry `FUNCTIONS` maps a name to a stateless elementwise function or
to a patsy stateful transform (``center``, ``standardize``, ``scale``,
``bs``, ``cr``, ``cc``, ``te``: their statistics are memorized on the
model's rows and reused for new data); `register` adds one.

Examples
--------
>>> import pandas as pd, patsy
>>> d = pd.DataFrame({"y": [1.0, 2.0, 4.0], "x": [0.0, 1.0, 2.0]})
>>> desc = model_desc("y ~ I(x^2)", d.columns)
>>> x = patsy.dmatrix(patsy.ModelDesc([], desc.rhs_termlist), d, eval_env=environment(None))
>>> x.design_info.column_names, x[:, 1].tolist()
(['Intercept', 'I(x ^ 2)'], [0.0, 1.0, 4.0])
"""

import ast
import math
import numbers
import re
import sys
import types
from collections.abc import Mapping
from functools import lru_cache

import numpy as np
import patsy
import patsy.builtins
from patsy.eval import VarLookupDict

from .fast import caret_as_power

__all__ = ["FUNCTIONS", "NUMPY_FUNCTIONS", "environment", "model_desc", "register"]

# numpy's elementwise functions (ufuncs and elementwise helpers) and constants a
# formula may use as np.f / numpy.f and, the functions, as f
NUMPY_FUNCTIONS = (
    "add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "negative",
    "positive", "equal", "not_equal", "greater", "greater_equal", "less", "less_equal",
    "abs", "absolute", "fabs", "sign", "sqrt", "cbrt", "square", "reciprocal",
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "logaddexp",
    "power", "float_power", "mod", "fmod", "remainder", "hypot",
    "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2",
    "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "deg2rad", "rad2deg",
    "floor", "ceil", "trunc", "rint", "round", "fix", "clip",
    "maximum", "minimum", "fmax", "fmin", "where",
    "isnan", "isfinite", "isinf", "logical_and", "logical_or", "logical_not",
    "bitwise_xor",
)
NUMPY_CONSTANTS = ("pi", "e", "inf", "nan")


# The response given to a right-hand-side-only formula (fit_many's "~ x") so that patsy
# builds its design: never shown in a message.
PLACEHOLDER_RESPONSE = "__lmm_response__"


def _r_log(x, base=None):
    """R's ``log(x, base)``: the natural logarithm unless `base` is given."""
    if base is None:
        return np.log(x)
    return np.log(x) / np.log(base)


def _r_round(x, digits=0):
    """R's ``round(x, digits)`` (halves to even, as R and numpy do)."""
    return np.round(x, digits)


def _observed(x):
    """The values of x that are not missing: R's ``ns`` and ``scale`` compute their
    statistics from those (R's ``poly`` refuses missing values; lmm's ignores them, so
    that ``missing='drop'`` drops the rows instead of failing)."""
    return x[~np.isnan(x)]


class _Poly:
    """R's ``poly(x, degree, raw=FALSE)``: `degree` columns of orthonormal
    polynomials of x (``raw=True``: x, x**2, ...).

    A stateful transform: the three-term recurrence's coefficients (R's
    ``attr(, "coefs")``: alpha and norm2) are memorized on the model's rows,
    so new data get the same polynomials.  The recurrence (Stieltjes') gives
    the monic orthogonal polynomials R gets from the QR decomposition of the
    centred Vandermonde matrix, each divided by its norm.
    """

    def __init__(self):
        self._chunks = []
        self._degree = None
        self._alpha = self._norm2 = None

    @staticmethod
    def _check(x, degree, raw):
        if isinstance(degree, bool) or not isinstance(degree, numbers.Integral) or degree < 1:
            raise ValueError(f"poly(): degree must be a whole number of 1 or more, got {degree!r}")
        if not isinstance(raw, bool):
            raise ValueError(f"poly(): raw must be True or False, got {raw!r}")
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"poly() needs a numeric column, got {x.dtype}")
        return np.asarray(x, dtype=float).ravel()

    def memorize_chunk(self, x, degree=1, raw=False):
        self._chunks.append(self._check(x, degree, raw))
        self._degree, self._raw = int(degree), raw

    def memorize_finish(self):
        x = _observed(np.concatenate(self._chunks))
        self._chunks = []
        if self._raw:
            return
        if self._degree >= len(np.unique(x)):
            raise ValueError(f"poly(): degree {self._degree} must be less than the number of "
                             f"distinct values of x ({len(np.unique(x))})")
        # p_0 = 1, p_(k+1) = (x - alpha_k) p_k - (N_k / N_(k-1)) p_(k-1), N_k = |p_k|^2
        alpha, norm2 = [], [1.0, float(len(x))]
        p_prev, p = np.zeros_like(x), np.ones_like(x)
        for _ in range(self._degree):
            alpha.append(float(np.sum(x * p * p) / norm2[-1]))
            p_prev, p = p, (x - alpha[-1]) * p - (norm2[-1] / norm2[-2]) * p_prev
            norm2.append(float(np.sum(p * p)))
        self._alpha, self._norm2 = alpha, norm2

    def transform(self, x, degree=1, raw=False):
        values = self._check(x, degree, raw)
        if raw:
            out = np.column_stack([values ** k for k in range(1, self._degree + 1)])
        else:
            alpha, norm2 = self._alpha, self._norm2
            out = np.empty((len(values), self._degree))
            p_prev, p = np.zeros_like(values), np.ones_like(values)
            for k in range(self._degree):
                p_prev, p = p, (values - alpha[k]) * p - (norm2[k + 1] / norm2[k]) * p_prev
                out[:, k] = p / np.sqrt(norm2[k + 2])
        return out


def _linpack_qty(a, y):
    """Q' y for the Householder QR of `a` (m x k, full column rank) as R's ``qr()``
    makes it (LINPACK's dqrdc2, no pivoting, and dqrsl): the columns of Q beyond the
    first k are not unique, and R's ``ns`` keeps them, so its reflectors are followed."""
    a = np.array(a, dtype=float)
    y = np.array(y, dtype=float)
    m, k = a.shape
    for j in range(k):
        norm = float(np.linalg.norm(a[j:, j]))
        if norm == 0.0:
            continue
        if a[j, j] != 0.0:
            norm = math.copysign(norm, a[j, j])
        a[j:, j] /= norm
        a[j, j] += 1.0
        u = a[j:, j]
        for c in range(j + 1, k):
            a[j:, c] -= (u @ a[j:, c]) / u[0] * u
        y[j:] -= np.outer(u, u @ y[j:]) / u[0]
    return y


class _RNaturalSpline:
    """R's ``splines::ns(x, df, knots, intercept=FALSE)``: the natural cubic spline
    basis (cubic B-splines on the boundary knots repeated four times and the
    interior knots, constrained to zero second derivatives at the boundary knots
    through the QR decomposition R uses), linear beyond the boundary.  Without
    `knots`, df - 1 - intercept interior knots at the quantiles of x.  A stateful
    transform: the knots are the model's rows', reused for new data."""

    def __init__(self):
        self._chunks = []
        self._knots = self._boundary = None
        self._intercept = False

    @staticmethod
    def _values(x):
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"ns() needs a numeric column, got {x.dtype}")
        return np.asarray(x, dtype=float).ravel()

    def memorize_chunk(self, x, df=None, knots=None, intercept=False):
        self._chunks.append(self._values(x))
        self._args = (df, knots, intercept)

    def memorize_finish(self):
        x = _observed(np.concatenate(self._chunks))
        self._chunks = []
        if len(x) == 0:
            raise ValueError("ns(): x has no values that are not missing")
        self._setup(x, *self._args)

    def _setup(self, x, df, knots, intercept):
        boundary = np.array([x.min(), x.max()])
        if knots is None:
            if df is None:
                raise ValueError("ns() needs df= or knots=")
            n_interior = int(df) - 1 - int(bool(intercept))
            if n_interior < 0:
                raise ValueError(f"ns(): df={df} is too small")
            probs = np.linspace(0.0, 1.0, n_interior + 2)[1:-1]
            knots = np.quantile(x, probs) if n_interior else np.zeros(0)
        self._knots = np.sort(np.asarray(knots, dtype=float).ravel())
        self._boundary = boundary
        self._intercept = bool(intercept)
        from scipy.interpolate import BSpline

        self._t = np.sort(np.concatenate([np.repeat(boundary, 4), self._knots]))
        n_basis = len(self._t) - 4
        self._spline = BSpline(self._t, np.eye(n_basis), 3, extrapolate=True)
        const = self._spline(boundary, nu=2)                  # (2, n_basis)
        if not self._intercept:
            const = const[:, 1:]
        self._const = const

    def _basis(self, x):
        lo, hi = self._boundary
        inside = np.clip(x, lo, hi)
        basis = self._spline(inside)
        # (R: beyond the boundary, the tangent at the boundary knot)
        for edge, mask in ((lo, x < lo), (hi, x > hi)):
            if mask.any():
                slope = self._spline(np.array([edge]), nu=1)[0]
                basis[mask] = self._spline(np.array([edge]))[0] + \
                    np.outer(x[mask] - edge, slope)
        if not self._intercept:
            basis = basis[:, 1:]
        return _linpack_qty(self._const.T, basis.T).T[:, 2:]

    def transform(self, x, df=None, knots=None, intercept=False):
        return self._basis(self._values(x))


class _RScale:
    """R's ``scale(x, center=TRUE, scale=TRUE)`` for lme4-style formulas: each column
    minus its mean, divided by its standard deviation with R's n - 1 (patsy's
    ``scale``, which statsmodels-style formulas keep, divides by the n version).  A
    stateful transform: the statistics are those of the model's rows, reused for new
    data."""

    def __init__(self):
        self._chunks = []
        self._mean = self._sd = self._rms = None

    @staticmethod
    def _values(x):
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"scale() needs a numeric column, got {x.dtype}")
        x = np.asarray(x, dtype=float)
        return x[:, None] if x.ndim == 1 else x

    def memorize_chunk(self, x, center=True, scale=True):
        self._chunks.append(self._values(x))

    def memorize_finish(self):
        x = np.concatenate(self._chunks)
        self._chunks = []
        # (R: each column's statistics over its values that are not missing)
        observed = ~np.isnan(x)
        n = np.maximum(observed.sum(axis=0) - 1, 1)
        with np.errstate(invalid="ignore"):
            self._mean = np.nansum(x, axis=0) / np.maximum(observed.sum(axis=0), 1)
        # R: the sd (n - 1) when centring; the root mean square (n - 1) when not
        self._sd = np.sqrt(np.nansum((x - self._mean) ** 2, axis=0) / n)
        self._rms = np.sqrt(np.nansum(x * x, axis=0) / n)

    def transform(self, x, center=True, scale=True):
        out = self._values(x).copy()
        if center:
            out -= self._mean
        if scale:
            out /= self._sd if center else self._rms
        return out[:, 0] if np.ndim(x) == 1 else out


# R's names for the same elementwise functions
_R_FUNCTIONS = {
    "log": _r_log, "round": _r_round, "ceiling": np.ceil, "asin": np.arcsin,
    "acos": np.arccos, "atan": np.arctan, "asinh": np.arcsinh, "acosh": np.arccosh,
    "atanh": np.arctanh, "pmin": np.minimum, "pmax": np.maximum,
    "factor": patsy.builtins.C, "poly": patsy.stateful_transform(_Poly),
    "ns": patsy.stateful_transform(_RNaturalSpline),
}

# patsy's functions: I (identity), Q (a column by name), C (a categorical with
# its contrasts), the contrasts, the stateful transforms and the splines
_PATSY_FUNCTIONS = ("I", "Q", "C", "ContrastMatrix", "Treatment", "Poly", "Sum", "Helmert",
                    "Diff", "center", "standardize", "scale", "bs", "cr", "cc", "te")

FUNCTIONS = {}
"""Formula functions by name: stateless elementwise functions, or patsy stateful
transforms (objects with ``__patsy_stateful_transform__``)."""


def _numpy_namespace():
    return types.SimpleNamespace(**{name: getattr(np, name)
                                    for name in NUMPY_FUNCTIONS + NUMPY_CONSTANTS})


# what formulas see besides the data: FUNCTIONS plus np / numpy
_NAMESPACE = {}


def register(name, function, numpy=False):
    """Make `function` callable in formulas as ``name(...)``.

    Parameters
    ----------
    name : str
        A Python identifier without double underscores.
    function : callable
        An elementwise function of columns, or a patsy stateful transform
        (``patsy.stateful_transform(cls)``: its statistics are memorized on
        the model's rows, chunk by chunk, and reused for new data).
    numpy : bool
        Also as ``np.name`` / ``numpy.name`` (numpy's own functions).

    Examples
    --------
    >>> import numpy as np
    >>> register("logit", lambda p: np.log(p / (1 - p)))  # doctest: +SKIP
    >>> # then: lmm.lmer("y ~ logit(p) + (1 | g)", data)
    """
    if not name.isidentifier() or "__" in name or name in ("np", "numpy"):
        raise ValueError(f"{name!r} cannot be a formula function name")
    if not callable(function):
        raise TypeError(f"the formula function {name!r} must be callable")
    FUNCTIONS[name] = function
    _NAMESPACE[name] = function
    if numpy:
        setattr(_NAMESPACE["np"], name, function)
        _NUMPY_NAMES.add(name)


_NUMPY_NAMES = set(NUMPY_FUNCTIONS + NUMPY_CONSTANTS)
# numpy's and R's elementwise functions: numbers in, numbers out
_ELEMENTWISE = {getattr(np, name) for name in NUMPY_FUNCTIONS} | {
    f for name, f in _R_FUNCTIONS.items() if name not in ("factor", "poly", "ns")}
_NAMESPACE["np"] = _NAMESPACE["numpy"] = _numpy_namespace()
# what R's ^ inside an expression evaluates as (`_FloatPower`)
R_POWER = "_lmm_r_power"
_NAMESPACE[R_POWER] = np.float_power
for _name in NUMPY_FUNCTIONS:
    register(_name, getattr(np, _name))
for _name, _function in _R_FUNCTIONS.items():
    register(_name, _function)
for _name in _PATSY_FUNCTIONS:
    register(_name, getattr(patsy.builtins, _name))
del _name, _function


# -- the whitelist ------------------------------------------------------------

class _Refused(Exception):
    """A part of a factor expression outside the whitelist: (reason, source)."""


_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
           ast.BitAnd, ast.BitOr)
_UNARY = (ast.UAdd, ast.USub, ast.Invert, ast.Not)
_COMPARE = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_CONSTANT_TYPES = (int, float, complex, str, bool, type(None))

# what to call the node types refused, for the message
_REFUSED_KINDS = {
    ast.Subscript: "a subscript", ast.Lambda: "a lambda", ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension", ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression", ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string", ast.NamedExpr: "an assignment expression (:=)",
    ast.IfExp: "an if-expression", ast.BoolOp: "'and'/'or'", ast.Dict: "a dict",
    ast.Set: "a set", ast.Starred: "a starred argument", ast.Await: "await",
    ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "a slice",
}


def _source(node):
    try:
        return ast.unparse(node)
    except Exception:      # (unparse of a fragment: the message only)
        return type(node).__name__


def _check_name(name, node, data_name=False):
    """Refuse names that cannot be meant: dunders (unless `data_name`: a free
    name, which must be a column, checked later), patsy's, bare np."""
    if "__" in name and not data_name:
        raise _Refused(f"the name {name!r}: double underscores", _source(node))
    if name.startswith("_patsy"):
        raise _Refused(f"the name {name!r} is reserved by patsy", _source(node))
    if name in ("np", "numpy"):
        raise _Refused(f"{name!r} is allowed only as {name}.<elementwise function>",
                       _source(node))


def _check_attribute(node):
    """``np.f`` / ``numpy.f`` for a whitelisted f; nothing else."""
    value = node.value
    if not (isinstance(value, ast.Name) and value.id in ("np", "numpy")):
        raise _Refused(f"the attribute {node.attr!r}", _source(node))
    if node.attr not in _NUMPY_NAMES:
        raise _Refused(f"{value.id}.{node.attr} is not one of numpy's elementwise functions "
                       "that formulas may use", _source(node))


def _data_free(node):
    """Whether the expression reads no column: its names are all formula functions
    (or np / numpy), so Python computes it on constants (ints of any size)."""
    for n in ast.walk(node):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "Q":
            return False
        if isinstance(n, ast.Name) and n.id not in FUNCTIONS and n.id not in ("np", "numpy"):
            return False
    return True


def _python_number(node):
    """Whether Python itself computes the expression, on numbers written in the
    formula (its ints are exact, of any size: 9**9**9 would never end)."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.BinOp):
        return _python_number(node.left) and _python_number(node.right)
    if isinstance(node, ast.UnaryOp):
        return _python_number(node.operand)
    return False


def _check_operands(node):
    """Arithmetic on columns, numbers and registered functions' values only, and
    no power of constants that Python would compute for ever (``9**9**9``)."""
    for side in (node.left, node.right):
        if isinstance(side, ast.List | ast.Tuple) or (
                isinstance(side, ast.Constant) and not isinstance(side.value, numbers.Number)):
            raise _Refused("arithmetic on a string, list or tuple", _source(node))
    if isinstance(node.op, ast.Pow) and _python_number(node.left) \
            and _python_number(node.right):
        small = all(isinstance(side, ast.Constant) for side in (node.left, node.right)) \
            and abs(node.right.value) <= _MAX_CONSTANT_EXPONENT
        if not small:
            raise _Refused("a power of constants other than number ** small number",
                           _source(node))


# (a power of two constants is computed exactly by Python: 10**64 is instant)
_MAX_CONSTANT_EXPONENT = 64


def _positional_limit(function):
    """How many positional arguments a call may pass: a ufunc's inputs only (the
    next ones are its outputs, written in place), the arguments before numpy's
    ``out``; None for no limit."""
    if isinstance(function, np.ufunc):
        return function.nin
    return _POSITIONAL_LIMITS.get(function)


_POSITIONAL_LIMITS = {np.round: 2, np.clip: 3, np.where: 3, np.fix: 1, _r_log: 2,
                      _r_round: 2}


class _Checker:
    """Walks a factor's AST: collects the names and Q("...") columns it reads
    and the names it calls, refuses any node outside the whitelist (raises
    _Refused)."""

    def __init__(self):
        self.names = set()
        self.quoted = set()
        self.called = set()         # function names and np / numpy: not columns

    def visit(self, node):
        if isinstance(node, ast.Expression):
            return self.visit(node.body)
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, _CONSTANT_TYPES):
                raise _Refused(f"the constant {node.value!r}", _source(node))
            return
        if isinstance(node, ast.Name):
            # (a dunder name is only ever looked up among the columns: fit_many's
            # placeholder response is __lmm_response__)
            _check_name(node.id, node, data_name=True)
            self.names.add(node.id)
            return
        if isinstance(node, ast.Attribute):
            return self.visit_attribute(node)
        if isinstance(node, ast.Call):
            return self.visit_call(node)
        if isinstance(node, ast.BinOp):
            if not isinstance(node.op, _BINARY):
                raise _Refused(f"the operator {type(node.op).__name__}", _source(node))
            _check_operands(node)
            self.visit(node.left)
            return self.visit(node.right)
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, _UNARY):
                raise _Refused(f"the operator {type(node.op).__name__}", _source(node))
            return self.visit(node.operand)
        if isinstance(node, ast.Compare):
            for op in node.ops:
                if not isinstance(op, _COMPARE):
                    raise _Refused(f"the comparison {type(op).__name__}", _source(node))
            self.visit(node.left)
            for c in node.comparators:
                self.visit(c)
            return
        if isinstance(node, ast.Tuple | ast.List):
            for e in node.elts:
                self.visit(e)
            return
        kind = _REFUSED_KINDS.get(type(node), type(node).__name__)
        raise _Refused(kind, _source(node))

    def visit_attribute(self, node):
        value = node.value
        if not (isinstance(value, ast.Name) and value.id in ("np", "numpy")):
            self.visit(value)       # (the innermost refused part is named first)
        _check_attribute(node)
        self.called.add(value.id)

    def visit_call(self, node):
        func = node.func
        if isinstance(func, ast.Name):
            _check_name(func.id, func)
            if func.id not in FUNCTIONS:
                raise _Refused(f"a call of {func.id!r}, not a formula function",
                               _source(node))
            self.called.add(func.id)
            function = FUNCTIONS[func.id]
        elif isinstance(func, ast.Attribute):
            self.visit_attribute(func)
            function = getattr(_NAMESPACE["np"], func.attr)
        else:
            raise _Refused("a call of something other than a formula function",
                           _source(node))
        if function in _ELEMENTWISE:
            for arg in [*node.args, *(kw.value for kw in node.keywords)]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    raise _Refused("a string argument of a numeric function", _source(node))
        limit = _positional_limit(function)
        if limit is not None and len(node.args) > limit:
            raise _Refused(f"more than {limit} positional argument(s) (numpy's next one "
                           "is the output array)", _source(node))
        for kw in node.keywords:
            if kw.arg is None:
                raise _Refused("**keyword arguments", _source(node))
            if "__" in kw.arg:
                raise _Refused(f"the keyword {kw.arg!r}: double underscores", _source(node))
            if kw.arg == "out" or isinstance(function, np.ufunc):
                # (out= writes in place; a ufunc's where= leaves entries unset)
                raise _Refused(f"the keyword {kw.arg}=", _source(node))
            self.visit(kw.value)
        for arg in node.args:
            self.visit(arg)
        if function is FUNCTIONS.get("I") and len(node.args) == 1 and _data_free(node.args[0]):
            # (I() of a constant is a Python object: I(9)**I(9)**I(9), I('a') * 10**9)
            raise _Refused("I() of a constant", _source(node))
        if isinstance(func, ast.Name) and func.id == "Q":
            if len(node.args) != 1 or node.keywords or not (
                    isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                raise _Refused("Q(...) other than Q(\"column name\")", _source(node))
            self.quoted.add(node.args[0].value)


class _FloatPower(ast.NodeTransformer):
    """``a ** b`` -> ``_lmm_r_power(a, b)``: R's ^ (read as ``**``, see
    `caret_as_power`) is a power in floating point (``Time^-1`` of an integer
    column is 1/Time, where numpy's ``**`` refuses negative powers of integers)."""

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.Pow):
            call = ast.Call(ast.Name(R_POWER, ast.Load()), [node.left, node.right], [])
            return ast.copy_location(call, node)
        return node


@lru_cache(maxsize=1024)
def _factor(code, restricted):
    """(code to evaluate, names read, Q columns, names called) of one factor expression.

    Raises _Refused when `restricted` and the expression leaves the whitelist.
    """
    code, r_power = caret_as_power(code.strip())
    try:
        tree = ast.parse(code, mode="eval")
    except SyntaxError as exc:
        if restricted:
            raise _Refused(f"Python syntax ({exc.msg})", code) from None
        return code, frozenset(), frozenset(), frozenset()
    names = quoted = called = frozenset()
    if restricted:
        checker = _Checker()
        checker.visit(tree)
        names, quoted = frozenset(checker.names), frozenset(checker.quoted)
        called = frozenset(checker.called)
    if r_power:
        code = ast.unparse(_FloatPower().visit(tree))
    return code, names, quoted, called


@lru_cache(maxsize=1024)
def names_in(code):
    """The names a factor expression reads: bare names and the strings of ``Q("...")``
    (columns among them; functions too, which callers filter out). Empty when it is
    not Python."""
    try:
        tree = ast.parse(caret_as_power(code.strip())[0], mode="eval")
    except SyntaxError:
        return frozenset()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "Q" and node.args \
                and isinstance(node.args[0], ast.Constant):
            names.add(node.args[0].value)
    return frozenset(names)


# -- patsy factors that evaluate the checked (and ^-rewritten) code ------------

class _RestrictedEnvironment(patsy.EvalEnvironment):
    """An EvalEnvironment whose evaluations see no Python builtins.

    (A second wall behind the whitelist: the checked code only names columns
    and registered functions, which need no builtins.)"""

    def eval(self, expr, source_name="<string>", inner_namespace={}):  # noqa: B006 (patsy's)
        code = compile(expr, source_name, "eval", self.flags, False)
        return eval(code, {"__builtins__": {}},
                    VarLookupDict([inner_namespace] + self._namespaces))


class FormulaFactor(patsy.EvalFactor):
    """patsy's EvalFactor, named by the formula's code, evaluating `eval_code`
    (``^`` as power), without builtins when `restricted`."""

    def __init__(self, code, origin, eval_code, restricted):
        super().__init__(code, origin)
        self.eval_code = eval_code
        self.restricted = restricted

    def memorize_passes_needed(self, state, eval_env):
        # patsy's stateful-transform bookkeeping, on the code that is evaluated
        passes = patsy.EvalFactor(self.eval_code).memorize_passes_needed(state, eval_env)
        if self.restricted:
            env = state["eval_env"]
            state["eval_env"] = _RestrictedEnvironment(env._namespaces, env.flags)
        return passes


def _formula_level_power(formula):
    """R's formula-level ``^`` (interaction expansion) as patsy's ``**``.

    A ``^`` outside every call's parentheses and outside strings is the
    formula operator; one inside a call (``I(x^2)``) is left for the factor's
    own rewrite (power)."""
    if "^" not in formula:
        return formula
    out, stack, quote, i = [], [], None, 0
    while i < len(formula):
        ch = formula[i]
        if quote:
            out.append(ch)
            if ch == "\\" and i + 1 < len(formula):
                out.append(formula[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch in "([":
            before = "".join(out).rstrip()
            call = ch == "[" or bool(before) and (before[-1].isalnum() or before[-1] in "_.)]")
            stack.append(call)
            out.append(ch)
        elif ch in ")]":
            if stack:
                stack.pop()
            out.append(ch)
        elif ch == "^" and not any(stack):
            out.append("**")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


@lru_cache(maxsize=512)
def _model_desc(formula, restricted):
    """(ModelDesc of FormulaFactors, names read, Q columns, names called); raises
    _Refused or ValueError (patsy cannot parse the formula)."""
    try:
        desc = patsy.ModelDesc.from_formula(_formula_level_power(formula))
    except patsy.PatsyError as exc:
        message = str(exc).split("\n")[0]
        origin = exc.origin
        if origin is not None and origin.end > origin.start:
            message = f"at {origin.code[origin.start:origin.end]!r}: {message}"
        raise ValueError(message) from None
    names, quoted, called = set(), set(), set()

    def convert(term):
        factors = []
        for f in term.factors:
            eval_code, n, q, c = _factor(f.code, restricted)
            names.update(n)
            quoted.update(q)
            called.update(c)
            factors.append(FormulaFactor(f.code, f.origin, eval_code, restricted))
        return patsy.Term(factors)

    lhs = [convert(t) for t in desc.lhs_termlist]
    rhs = [convert(t) for t in desc.rhs_termlist]
    return patsy.ModelDesc(lhs, rhs), frozenset(names), frozenset(quoted), frozenset(called)


_HOW = ("formulas may use the data's columns, numbers, arithmetic and comparison "
        "operators and the formula functions (lmm.formula.safe.FUNCTIONS: numpy's "
        "elementwise functions as np.log or log, patsy's C, I, Q, center, standardize, "
        "scale, bs, cr, ...); pass eval_env= (e.g. eval_env=0, the calling frame) to "
        "evaluate formulas as Python")


def model_desc(formula, columns, env=None, what="formula"):
    """The patsy ModelDesc of `formula`, every factor checked (unless `eval_env`).

    Parameters
    ----------
    formula : str
        A patsy formula (``"y ~ x + np.log(w)"``, ``"~ x"``).
    columns : container of str
        The data's column names: the only free names a checked formula may
        read besides the formula functions.
    env : patsy.EvalEnvironment or None
        The environment from `environment`: None or the default one checks
        every factor against the whitelist; any other evaluates as Python.
    what : str
        What the formula is, for messages ("formula", "re_formula", ...).

    Returns
    -------
    patsy.ModelDesc whose factors evaluate ``^`` as power.

    Raises
    ------
    ValueError naming the refused part, an unknown name, or a parse error.

    Examples
    --------
    >>> model_desc("y ~ __import__('os').getcwd()", ["y"])
    Traceback (most recent call last):
    ...
    ValueError: the formula "y ~ __import__('os').getcwd()": '__import__' is refused ...
    """
    restricted = env is None or isinstance(env, _RestrictedEnvironment)
    # (messages show the formula as the user wrote it: without the placeholder
    # response of formulas that have none, such as fit_many's "~ x")
    shown = formula.replace(PLACEHOLDER_RESPONSE + " ", "").replace(PLACEHOLDER_RESPONSE, "")
    try:
        desc, names, quoted, called = _model_desc(formula, restricted)
    except _Refused as exc:
        reason, part = exc.args
        raise ValueError(f"the {what} {shown!r}: {part!r} is refused ({reason}); "
                         f"{_HOW}") from None
    except ValueError as exc:
        raise ValueError(f"cannot parse the {what} {shown!r} {exc}") from None
    except RecursionError:
        raise ValueError(f"cannot parse the {what} {shown[:80]!r}...: nested too deeply"
                         ) from None
    if restricted:
        r_constants = _R_CONSTANTS if env is _R_RESTRICTED_ENV else {}
        unknown = sorted(n for n in names
                         if n not in FUNCTIONS and n not in columns and n not in r_constants)
        if unknown:
            raise ValueError(
                f"the {what} {shown!r} uses {', '.join(map(repr, unknown))}, not a column of "
                f"the data nor a formula function (Python variables are not visible to "
                f"formulas); {_HOW}")
        hidden = sorted(c for c in called if c in columns)
        if hidden:
            # (the data come first in patsy's lookup: the column would be called)
            raise ValueError(
                f"the {what} {shown!r} calls {', '.join(map(repr, hidden))}, which the "
                "data's column(s) of the same name hide; rename the column(s)")
    missing = sorted(q for q in quoted if q not in columns)
    if missing:
        raise ValueError(f"the {what} {shown!r} quotes {', '.join(map(repr, missing))}, "
                         "not a column of the data")
    return desc


# -- eval_env -------------------------------------------------------------------

class _CallerEnvironment(patsy.EvalEnvironment):
    """A namespace the caller chose (eval_env=), the formula functions behind it."""


_RESTRICTED_ENV = _RestrictedEnvironment([_NAMESPACE])
# lme4-style formulas read R's meaning where R and patsy differ (scale's sd)
# and R's logical constants (ns(x, df = 3, intercept = TRUE))
_R_CONSTANTS = {"TRUE": True, "FALSE": False}
_R_SEMANTICS = {"scale": patsy.stateful_transform(_RScale), **_R_CONSTANTS}
_R_RESTRICTED_ENV = _RestrictedEnvironment([_R_SEMANTICS, _NAMESPACE])
_R_SEMANTICS_NAMES = re.compile("|".join(map(re.escape, _R_SEMANTICS)))


def _outside_lmm(frame):
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name != "lmm" and not name.startswith("lmm."):
            return frame
        frame = frame.f_back
    return None


def environment(eval_env):
    """The patsy EvalEnvironment formulas are evaluated in.

    Parameters
    ----------
    eval_env : None, int, dict or patsy.EvalEnvironment
        None: the formula functions only, every factor checked (the default).
        An int: the namespace of the frame that many levels above the code
        that called lmm (0: that code's own frame; -1: an empty namespace),
        as statsmodels' and patsy's ``eval_env``; a dict (a mapping) or an
        EvalEnvironment: that namespace.  Except for None, formulas are then
        evaluated as Python: only pass one for formulas you trust.  The
        formula functions stay visible behind the namespace.

    Examples
    --------
    >>> env = environment({"k": 2.0})
    >>> env.namespace["k"], env.namespace["log"] is FUNCTIONS["log"]
    (2.0, True)
    """
    if eval_env is None:
        return _RESTRICTED_ENV
    if isinstance(eval_env, _RestrictedEnvironment) or type(eval_env) is _CallerEnvironment:
        return eval_env         # resolved already (by an outer lmm function)
    if isinstance(eval_env, patsy.EvalEnvironment):
        return _CallerEnvironment(eval_env._namespaces + [_NAMESPACE], eval_env.flags)
    if isinstance(eval_env, Mapping):
        return _CallerEnvironment([eval_env, _NAMESPACE])
    if isinstance(eval_env, numbers.Integral) and not isinstance(eval_env, bool):
        if eval_env == -1:
            return _CallerEnvironment([_NAMESPACE])
        if eval_env < -1:
            raise ValueError(f"eval_env must be -1 or more, got {eval_env}")
        frame = _outside_lmm(sys._getframe(1))
        try:
            for _ in range(int(eval_env)):
                frame = frame.f_back if frame is not None else None
            if frame is None:
                raise ValueError(f"eval_env={eval_env}: the call stack is not that deep")
            return _CallerEnvironment(
                [frame.f_locals, frame.f_globals, _NAMESPACE],
                frame.f_code.co_flags & patsy.eval._ALL_FUTURE_FLAGS)
        finally:
            del frame
    raise TypeError("eval_env must be None, an int (frames above the caller), a dict or a "
                    f"patsy.EvalEnvironment, got {type(eval_env).__name__}")


def is_restricted(env):
    """Whether formulas in `env` (from `environment`) are checked against the
    whitelist."""
    return isinstance(env, _RestrictedEnvironment)


def memorizes_around_missing(state):
    """Whether a numeric factor's memorized `state` comes only from lmm's own stateful
    transforms that ignore missing values (R's ``poly``, ``ns``, ``scale``): those may
    take their statistics from rows that are dropped later; patsy's (``center``,
    ``bs``, ...) would take NaN for their statistics."""
    transforms = state.get("transforms", {}).values()
    return bool(transforms) and all(
        isinstance(t, _Poly | _RNaturalSpline | _RScale) for t in transforms)


def uses_r_semantics(formula):
    """Whether `formula` may name something lme4-style formulas read differently
    (`lme4_environment`): a cheap test on the text, so that other formulas keep the
    default environment."""
    return _R_SEMANTICS_NAMES.search(formula) is not None


def lme4_environment(eval_env):
    """`environment(eval_env)` for lme4-style formulas: R's meaning of the functions
    where it differs from patsy's (``scale``: R's sd with n - 1), in front of the
    registry; a caller's namespace (eval_env=) still comes first."""
    env = environment(eval_env)
    if env is _RESTRICTED_ENV:
        return _R_RESTRICTED_ENV
    if type(env) is _CallerEnvironment and not any(ns is _R_SEMANTICS
                                                   for ns in env._namespaces):
        spaces = [ns for ns in env._namespaces if ns is not _NAMESPACE]
        return _CallerEnvironment(spaces + [_R_SEMANTICS, _NAMESPACE], env.flags)
    return env
