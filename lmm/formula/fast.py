"""A fast path for simple formulas, giving exactly patsy's design matrices.

patsy takes milliseconds to build even a two-column design (about 3 ms for
dietox's two formulas), more than the whole fit.  Most mixed-model formulas
are simple: an intercept, numeric columns, products of numeric columns,
categorical main effects.  For those this module builds the matrix directly
from the DataFrame's columns, with patsy's column names and order; anything
else (functions, I(), categorical interactions, `-` other than `- 1`, names
that are not columns) returns None and the caller uses patsy.

patsy's conventions reproduced here:
- terms are deduplicated (a:b is b:a) and grouped by their set of numeric
  factors, groups in order of first appearance (the intercept's group first);
- a categorical variable (string, bool or pandas Categorical column, or any
  column inside C(...)) is coded by treatment contrasts against its first
  level when the intercept is in the model, otherwise the first categorical
  term gets one column per level;
- levels are the sorted distinct values (a Categorical's own order), column
  names ``f[T.level]`` (``f[level]`` for full coding), ``C(f)[T.level]``.
"""

import io
import re
import tokenize
from functools import lru_cache

import numpy as np
import pandas as pd

_NAME = r"[A-Za-z_][A-Za-z0-9_.]*"
_FACTOR = re.compile(rf"^(?:C\(\s*({_NAME})\s*\)|({_NAME}))$")


def _column_values(frame, name):
    """The numpy values of column `name`, and whether they are the column's own
    numpy array (a numpy dtype) rather than a conversion of an extension array.

    Reads the column's array without building a Series where pandas allows it
    (Series construction costs more than the arithmetic on small data); the
    array is returned read-only, as pandas' copy-on-write ``to_numpy`` does.
    """
    try:
        columns = frame.columns
        # (a plain Index: its hash table's lookup, which Index.get_loc wraps)
        loc = columns._engine.get_loc(name) if type(columns) is pd.Index else \
            columns.get_loc(name)
        if isinstance(loc, int | np.integer):
            values = frame._get_column_array(int(loc))
            if isinstance(values, np.ndarray) and values.ndim == 1:
                values = values.view()
                values.flags.writeable = False
                return values, True
    except (AttributeError, TypeError, KeyError, ValueError):
        pass
    series = frame[name]
    return series.to_numpy(), not isinstance(series.dtype, pd.api.extensions.ExtensionDtype)


class Columns:
    """Column access for the fast path: each column of a DataFrame read once.

    Parameters
    ----------
    frame : DataFrame
    """

    __slots__ = ("frame", "_values", "_numpy")

    def __init__(self, frame):
        self.frame = frame
        self._values = {}
        self._numpy = {}

    def __contains__(self, name):
        # (the column is read and kept: whatever asks is about to read it)
        if name in self._values:
            return True
        try:
            self.values(name)
        except KeyError:
            return False
        return True

    def __len__(self):
        return len(self.frame)

    def values(self, name):
        """The column's values as a numpy array (as ``frame[name].to_numpy()``)."""
        v = self._values.get(name)
        if v is None:
            v, self._numpy[name] = _column_values(self.frame, name)
            self._values[name] = v
        return v

    def series(self, name):
        return self.frame[name]

    def is_numeric(self, name):
        """pandas' is_numeric_dtype and not bool, read from the numpy dtype if possible."""
        v = self.values(name)
        if self._numpy[name]:
            return v.dtype.kind in "iufc"
        s = self.frame[name]
        return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


class FastDesign:
    """A design planned by the fast path (see `plan`).

    Attributes
    ----------
    column_names : list of str, patsy's names of the design's columns
    variables : set of str, the data columns the design reads
    """

    def __init__(self, terms, intercept, levels, column_names, categorical, numeric,
                 full_coding):
        self.terms = terms                  # list of tuples of factor labels
        self.intercept = intercept
        self.levels = levels                # factor label -> levels (categoricals)
        self.column_names = column_names
        self.categorical = categorical      # factor label -> column name
        self.numeric = numeric              # factor label -> column name
        self.full_coding = full_coding      # categorical label -> one column per level?
        self.variables = set(categorical.values()) | set(numeric.values())

    @property
    def term_name_slices(self):
        """Term name -> slice of its columns, as patsy's DesignInfo gives them."""
        out, start = {}, 0
        if self.intercept:
            out["Intercept"] = slice(0, 1)
            start = 1
        for term in self.terms:
            width = 1
            if len(term) == 1 and term[0] in self.categorical:
                n_levels = len(self.levels[term[0]])
                width = n_levels if self.full_coding.get(term[0]) else n_levels - 1
            out[":".join(term)] = slice(start, start + width)
            start += width
        return out

    def matrix(self, data, arrays=None):
        """The design matrix of `data` (float64, C-ordered).

        `data` may be a `Columns` of the DataFrame, whose columns already read
        are reused (pandas column access costs more than the arithmetic here);
        `arrays` may map column names to their numpy arrays.
        Raises ValueError if a categorical value is missing or not among the
        design's levels.
        """
        source = data if isinstance(data, Columns) else Columns(data)
        arrays = {} if arrays is None else arrays
        for name in self.variables:
            if name not in arrays:
                arrays[name] = source.values(name)
        column = arrays.__getitem__

        n = len(arrays[next(iter(self.variables))]) if self.variables else len(source)
        x = np.empty((n, len(self.column_names)))
        j = 0
        if self.intercept:
            x[:, 0] = 1.0
            j = 1
        for term in self.terms:
            if len(term) == 1 and term[0] in self.categorical:
                label = term[0]
                lev = self.levels[label]
                values = np.asarray(column(self.categorical[label]), dtype=object)
                codes = pd.Index(lev).get_indexer(values)
                if (codes < 0).any():
                    raise ValueError(
                        f"{label} has missing values or levels not seen in the fit"
                    )
                start = 0 if self.full_coding[label] else 1
                for k in range(start, len(lev)):
                    x[:, j] = codes == k
                    j += 1
            else:
                for k, label in enumerate(term):
                    values = column(self.numeric[label])
                    if values.dtype.kind not in "biuf":
                        # (numpy would read strings such as "1.5" as numbers)
                        raise TypeError(
                            f"the column {self.numeric[label]!r} must be numeric, as in the "
                            f"fit; got {values.dtype}")
                    if k == 0:
                        x[:, j] = values
                    else:
                        x[:, j] *= values
                j += 1
        return x

    transform = matrix


def caret_as_power(code):
    """`code` with each ``^`` operator (outside strings) spelled ``**``, and
    whether there was one.

    R's ``^`` is a power that binds tighter than unary minus and is right
    associative: exactly Python's ``**``, whereas Python parses ``^`` as a
    bitwise xor below ``+`` (``I(Time + Time^2)`` would be ``(Time + Time)^2``).
    Replacing the token, not rewriting the parsed tree, gets R's grouping.

    Examples
    --------
    >>> caret_as_power("I(Time + Time^2)")
    ('I(Time + Time**2)', True)
    """
    if "^" not in code:
        return code, False
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError):
        return code, False
    line_starts = [0]
    for line in code.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    carets = [line_starts[t.start[0] - 1] + t.start[1] for t in tokens
              if t.type == tokenize.OP and t.string == "^"]
    for offset in reversed(carets):
        code = code[:offset] + "**" + code[offset + 1:]
    return code, bool(carets)


def split_top(expr, seps):
    """Split at the separators `seps` outside parentheses, keeping them."""
    parts, depth, cur = [], 0, ""
    for ch in expr:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if depth == 0 and ch in seps:
            parts.append(cur)
            parts.append(ch)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


@lru_cache(maxsize=512)
def _parse_rhs(rhs):
    """Terms (a tuple of tuples of factor strings) and the intercept flag, or None.

    Cached on the formula string alone (the parse does not look at data).
    """
    tokens = split_top(rhs, "+-")
    intercept = True
    terms = []
    sign = "+"
    for tok in tokens:
        if tok in "+-" and len(tok) == 1:
            sign = tok
            continue
        tok = tok.strip()
        if not tok:
            if sign == "-":
                return None
            continue
        if tok in ("0", "1"):
            if (tok == "0") == (sign == "+"):
                intercept = False
            else:
                intercept = True
            sign = "+"
            continue
        if sign == "-":
            return None          # removing terms other than the intercept: patsy
        # a*b*c -> all products; a:b -> one product
        star = [s.strip() for s in split_top(tok, "*") if s != "*"]
        groups = []
        for s in star:
            factors = [f.strip() for f in split_top(s, ":") if f != ":"]
            if any(not _FACTOR.match(f) for f in factors):
                return None
            groups.append(factors)
        for mask in range(1, 2 ** len(groups)):
            chosen = [g for i, g in enumerate(groups) if mask >> i & 1]
            term = tuple(f for g in chosen for f in g)
            terms.append(term)
        sign = "+"
    # deduplicate: a:b is b:a, a:a is a
    seen, unique = set(), []
    for t in terms:
        key = frozenset(t)
        if len(key) != len(t) or key in seen:
            if len(key) != len(t):
                return None
            continue
        seen.add(key)
        unique.append(t)
    return tuple(unique), intercept


@lru_cache(maxsize=512)
def _factor_column(label):
    m = _FACTOR.match(label)
    return m.group(1) or m.group(2), m.group(1) is not None


def _levels_of(series):
    if isinstance(series.dtype, pd.CategoricalDtype):
        return list(series.cat.categories)
    values = pd.unique(series.dropna())
    try:
        return sorted(values)
    except TypeError:
        return None


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def refuse_implicit_factor(column, values, levels):
    """Refuse a bare column that would silently be coded as a factor although it
    holds dates, times or numbers written as strings (``C(column)`` says a
    factor is meant; a pandas Categorical is one already).

    Parameters
    ----------
    column : str
        The column's name, for the message.
    values : Series or array
        The column (its dtype is what is looked at).
    levels : list or None
        The factor's levels, as coded.

    Examples
    --------
    >>> import pandas as pd
    >>> refuse_implicit_factor("dose", pd.Series(["1.5", "2"]), ["1.5", "2"])
    Traceback (most recent call last):
    ...
    TypeError: the column 'dose' holds numbers written as strings (e.g. '1.5'): ...
    """
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return
    if dtype.kind in "mM" or isinstance(dtype, pd.DatetimeTZDtype | pd.PeriodDtype):
        raise TypeError(
            f"the column {column!r} holds dates or times ({dtype}); as a covariate convert "
            f"it to a number first (e.g. days since the first: (d[{column!r}] - "
            f"d[{column!r}].min()).dt.days), or write C({column}) to make it a factor")
    if levels and all(isinstance(v, str) for v in levels) and all(map(_is_number, levels)):
        raise TypeError(
            f"the column {column!r} holds numbers written as strings (e.g. {levels[0]!r}): "
            f"convert it with pd.to_numeric for a numeric covariate, or write C({column}) to "
            "make it a factor")


def _level_name(value):
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def plan(formula_rhs, data):
    """A FastDesign for a right-hand side on `data`, or None if it needs patsy.

    Categorical levels are read from `data`, so plan on the rows that will be
    used (after dropping missing values), as patsy does.  `data` is a
    DataFrame or a `Columns` of one.
    """
    parsed = _parse_rhs(formula_rhs)
    if parsed is None:
        return None
    source = data if isinstance(data, Columns) else Columns(data)
    terms, intercept = parsed
    categorical, numeric, levels = {}, {}, {}
    for term in terms:
        for label in term:
            if label in numeric or label in categorical:
                continue
            col, wrapped = _factor_column(label)
            if col not in source:
                return None      # patsy may know it (e.g. a variable in the environment)
            if wrapped or not source.is_numeric(col):
                series = source.series(col)
                lev = _levels_of(series)
                if not wrapped:
                    refuse_implicit_factor(col, series, lev)
                if lev is None or len(lev) == 0:
                    return None
                categorical[label] = col
                levels[label] = lev
            else:
                numeric[label] = col
    if not categorical:
        # numeric terms only: each is its own group of numeric factors (they are
        # deduplicated), so patsy's order below is the formula's
        names = ["Intercept"] if intercept else []
        for term in terms:
            names.append(":".join(term))
        return FastDesign(list(terms), intercept, levels, names, categorical, numeric, {})
    for term in terms:
        if len(term) > 1 and any(label in categorical for label in term):
            return None          # categorical interactions: patsy's coding rules
    # order: group by the set of numeric factors, groups by first appearance
    groups = {frozenset(): []}
    for term in terms:
        key = frozenset(f for f in term if f in numeric)
        groups.setdefault(key, []).append(term)
    ordered = []
    for members in groups.values():
        ordered.extend(sorted(members, key=lambda t: sum(f in categorical for f in t)))
    names = ["Intercept"] if intercept else []
    full_used = intercept
    full_coding = {}
    for term in ordered:
        if len(term) == 1 and term[0] in categorical:
            label = term[0]
            full_coding[label] = not full_used
            full_used = True
            lev = levels[label] if full_coding[label] else levels[label][1:]
            fmt = "{}[{}]" if full_coding[label] else "{}[T.{}]"
            names.extend(fmt.format(label, _level_name(v)) for v in lev)
        else:
            names.append(":".join(term))
    return FastDesign(ordered, intercept, levels, names, categorical, numeric, full_coding)
