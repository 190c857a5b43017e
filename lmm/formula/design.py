"""Design matrices from patsy formulas, with statsmodels' missing-value rules.

The fixed-effects formula, the random-effects formula and the groups are
evaluated on the same rows: with ``missing='drop'`` every row with a missing
value in any variable they use is dropped first, then the matrices are built
(so stateful transforms see the kept rows only, as in statsmodels).

Every formula patsy evaluates goes through `safe.model_desc`: its factors are
checked against a whitelist (columns, registered functions, no other Python)
unless the caller passed ``eval_env=``, and ``^`` inside them is the power.
The fast path (fast.py) reads only columns by name, so it needs no check.
"""

import re

import numpy as np
import pandas as pd
import patsy

from ..covariance import default_structure
from ..prior_weights import row_vector, rows_to_drop
from ..terms import Term
from . import fast, safe
from .lme4 import r_column_name


def _desc(formula, data, what, env):
    """The formula's patsy ModelDesc, its factors checked (safe.model_desc)."""
    return safe.model_desc(formula, data.columns, env, what)


def _dmatrices(desc, data, env, NA_action, memorize=None):
    """(response or None, design) DataFrames of a ModelDesc.

    `memorize`: the frame the numeric stateful transforms (``scale``, ``poly``,
    ``ns``, ...) take their statistics from, when not `data` itself: the rows before
    those with missing values were dropped, as R's model.frame does (its factors'
    levels are still those of `data`: R drops the unused levels)."""
    if memorize is not None:
        lists = [desc.lhs_termlist, desc.rhs_termlist] if desc.lhs_termlist else \
            [desc.rhs_termlist]
        infos = [_numeric_states_from(kept, full) for kept, full in zip(
            patsy.design_matrix_builders(lists, lambda: iter([data]), env, NA_action="drop"),
            patsy.design_matrix_builders(lists, lambda: iter([memorize]), env,
                                         NA_action="drop"))]
        mats = patsy.build_design_matrices(infos, data, NA_action=NA_action,
                                           return_type="dataframe")
        return tuple(mats) if desc.lhs_termlist else (None, mats[0])
    if desc.lhs_termlist:
        return patsy.dmatrices(desc, data, eval_env=env, NA_action=NA_action,
                               return_type="dataframe")
    rhs = patsy.ModelDesc([], desc.rhs_termlist)
    return None, patsy.dmatrix(rhs, data, eval_env=env, NA_action=NA_action,
                               return_type="dataframe")


def _numeric_states_from(kept, full):
    """The DesignInfo `kept` with its numeric factors' memorized states (a stateful
    transform's statistics) taken from `full`, built on more rows, where the
    transforms ignore missing values (R's poly, ns, scale; patsy's keep `kept`'s)."""
    factor_infos = dict(kept.factor_infos)
    for factor, info in kept.factor_infos.items():
        other = full.factor_infos.get(factor)
        if info.type == "numerical" and other is not None \
                and other.num_columns == info.num_columns \
                and safe.memorizes_around_missing(other.state):
            factor_infos[factor] = other
    return patsy.DesignInfo(kept.column_names, factor_infos=factor_infos,
                            term_codings=kept.term_codings)


def _check_column_names(data, texts):
    """Column names formulas can read: flat, and those the `texts` (formulas,
    group names) use not duplicated."""
    columns = data.columns
    if isinstance(columns, pd.MultiIndex):
        raise ValueError(
            "the data's columns are a MultiIndex; formulas name flat columns: flatten them "
            "first (e.g. data.columns = ['_'.join(map(str, c)) for c in data.columns])")
    if columns.is_unique:
        return
    duplicated = [c for c in columns[columns.duplicated()].unique() if isinstance(c, str)]
    texts = [t for t in texts if isinstance(t, str)]
    used = [c for c in duplicated
            if any(re.search(rf"(?<![\w.]){re.escape(c)}(?![\w.])", t) for t in texts)]
    if used:
        raise ValueError(f"the data has several columns named {used}; rename them (formulas "
                         "read a column by its name)")


def _missing_rows(data, formulas, env):
    """Rows with a missing value in a variable used by any of the formulas.

    First the columns the formulas read (so that a stateful transform such as
    patsy's ``center`` does not take NaN statistics from them and turn every row
    missing), then the formulas evaluated on the other rows (an expression may make
    a missing value of its own, e.g. ``np.log(x)`` of a negative x)."""
    bad = np.zeros(len(data), dtype=bool)
    formulas = [f for f in formulas if f is not None]
    descs = [_desc(f, data, "formula", env) for f in formulas]
    for column in sorted(set().union(*(_columns_read(d, data.columns) for d in descs)),
                         key=str):
        bad |= np.asarray(pd.isna(data[column]), dtype=bool)
    if bad.all():
        return bad
    rows = np.flatnonzero(~bad)
    complete = data.iloc[rows].reset_index(drop=True) if bad.any() else data
    for f, desc in zip(formulas, descs):
        try:
            mats = _dmatrices(desc, complete, env, "drop")
        except patsy.PatsyError as exc:
            raise ValueError(f"cannot evaluate formula {f!r}: {exc}") from None
        mats = [m for m in mats if m is not None]
        kept = np.zeros(len(rows), dtype=bool)
        kept[mats[0].index.to_numpy()] = True
        bad[rows[~kept]] = True
    return bad


def _columns_read(desc, columns):
    """The columns of the data that a ModelDesc's factors name (bare or by Q("..."))."""
    names = set(columns)
    read = set()
    for term in desc.lhs_termlist + desc.rhs_termlist:
        for factor in term.factors:
            read |= safe.names_in(factor.code) & names
    return read


def _refuse_implicit_factors(design, data):
    """patsy's factors that are bare columns of dates or numbers written as
    strings: refused (fast.refuse_implicit_factor)."""
    for factor, info in design.design_info.factor_infos.items():
        name = factor.name()
        if info.type == "categorical" and name in data.columns:
            fast.refuse_implicit_factor(name, data[name], list(info.categories))


def _build(formula, data, what, env, memorize=None):
    """(response or None, design) of a formula through patsy, as DataFrames
    (`memorize`: see `_dmatrices`)."""
    desc = _desc(formula, data, what, env)
    try:
        y, x = _dmatrices(desc, data, env, "raise", memorize)
        _refuse_implicit_factors(x, data)
        return y, x
    except patsy.PatsyError as exc:
        msg = str(exc).split("\n")[0]
        if "missing values" in msg:
            raise ValueError(
                f"missing values (NaN) in a variable of the {what} {formula!r}; pass "
                "missing='drop' to drop those rows"
            ) from None
        raise ValueError(f"cannot build the {what} {formula!r}: {msg}") from None
    except NameError as exc:
        raise ValueError(f"unknown column in the {what} {formula!r}: {exc}") from None


def _split(formula):
    if "~" not in formula:
        return None, formula
    lhs, rhs = formula.split("~", 1)
    return lhs.strip() or None, rhs


def _fast_designs(formula, re_formula, frame):
    """Fast-path designs of both formulas, or None if either needs patsy.

    `frame` is a DataFrame or a `fast.Columns` of one."""
    lhs, rhs = _split(formula)
    if lhs is None or lhs not in frame:
        return None
    fe = fast.plan(rhs, frame)
    if fe is None:
        return None
    re = None
    if re_formula is not None:
        re = fast.plan(_split(re_formula)[1], frame)
        if re is None:
            return None
    return lhs, fe, re


def _missing_mask(values):
    """Missing entries of a column's values, or None when its dtype has none."""
    kind = values.dtype.kind
    if kind == "f":
        return np.isnan(values)
    if kind in "biu":
        return None
    return pd.isna(values)


def _fast_model(cls, lhs, fe, re, source, arrays, groups, formula, group_name,
                re_intercept_name, row_labels, kwargs):
    """The model of fast-path designs (`_fast_designs`) on the columns `arrays`."""
    if arrays[lhs].dtype.kind not in "iuf":
        raise TypeError(f"the response {lhs!r} must be numeric, got {arrays[lhs].dtype}")
    x = fe.matrix(source, arrays)
    if re is not None:
        z = re.matrix(source, arrays)
        re_names = [c.replace("Intercept", re_intercept_name or group_name)
                    for c in re.column_names]
    else:
        z, re_names = None, [re_intercept_name or group_name]
    # (a copy, as before: a view would follow later in-place changes of the
    # DataFrame, and model.endog with it)
    endog = arrays[lhs].astype(float)
    # (_checked: the arrays above are float64, 1-D and C-ordered 2-D, with as
    # many rows as the 1-D ndarray groups; the model does not convert them)
    return cls(
        endog, x, groups, exog_re=z, missing="none",
        formula=formula, design_info=fe, design_info_re=re, group_name=group_name,
        exog_re_names=re_names, exog_names=fe.column_names, endog_names=lhs,
        row_labels=row_labels, _checked=True, **kwargs,
    )


def row_values(values, data, name):
    """Prior weights or an offset given as a column name of `data` or an array
    of its length, as a float Series on data's index (None stays None)."""
    if values is None:
        return None
    if isinstance(values, str):
        if values not in data.columns:
            raise ValueError(f"{name}={values!r} is not a column of the data")
        values = data[values]
    if isinstance(values, pd.Series):
        if not pd.api.types.is_numeric_dtype(values):
            raise TypeError(f"{name} must be numeric, got dtype {values.dtype}")
        values = values.to_numpy(dtype=float, na_value=np.nan)
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.ndim != 1 or len(arr) != len(data):
        raise ValueError(f"{name} must have one value per row of the data ({len(data)}), "
                         f"got shape {arr.shape}")
    return pd.Series(arr.astype(float), index=data.index)


def _offset_terms(formula):
    """The formula without its top-level ``offset(expr)`` terms, and the exprs.

    lme4 adds such terms to the linear predictor with coefficient 1 (they are
    not fitted); each is evaluated on the data (`offset_values`)."""
    lhs, rhs = _split(formula)
    if "offset(" not in rhs.replace(" ", ""):
        return formula, []
    pieces = fast.split_top(rhs, "+-")
    kept, exprs, sign = [], [], "+"
    for piece in pieces:
        if piece in "+-":
            sign = piece
            continue
        text = piece.strip()
        if text.replace(" ", "").startswith("offset(") and text.endswith(")"):
            if sign == "-":
                raise ValueError(f"the formula {formula!r} subtracts an offset term: write "
                                 "offset(-(...)) instead")
            exprs.append(text[text.index("(") + 1:-1].strip())
        else:
            kept.append(f"{sign} {text}" if kept else (text if sign == "+" else f"- {text}"))
    rhs_kept = " ".join(kept) if kept else "1"
    return (f"{lhs} ~ {rhs_kept}" if lhs is not None else f"~ {rhs_kept}"), exprs


def offset_values(exprs, data, eval_env=None):
    """The sum of the offset terms' values on the rows of `data` (a float array;
    NaN where a value is missing): column names or expressions, as in ``offset(x)``
    (predictions on new data evaluate a model's `offset_terms` here)."""
    total = np.zeros(len(data))
    env = safe.environment(eval_env)
    for expr in exprs:
        if expr in data.columns:
            col = data[expr]
            if not pd.api.types.is_numeric_dtype(col):
                raise TypeError(f"offset({expr}) must be numeric, got dtype {col.dtype}")
            total += col.to_numpy(dtype=float, na_value=np.nan)
            continue
        formula = f"~ 0 + I({expr})"
        try:
            _, mat = _dmatrices(_desc(formula, data, "offset term", env), data, env, "drop")
        except patsy.PatsyError as exc:
            raise ValueError(f"cannot evaluate offset({expr}): "
                             f"{str(exc).splitlines()[0]}") from None
        except NameError as exc:
            raise ValueError(f"unknown column in offset({expr}): {exc}") from None
        if mat.shape[1] != 1:
            raise ValueError(f"offset({expr}) must be one numeric column")
        values = np.full(len(data), np.nan)
        values[data.index.get_indexer(mat.index)] = mat.iloc[:, 0].to_numpy()
        total += values
    return total


def _offset_source(exprs, given):
    """What an offset is made of, to evaluate it on new data: the offset terms'
    expressions and the name of the offset= column; None where an array was given
    (its values for new rows are unknown)."""
    if given is not None and not isinstance(given, str):
        return None
    out = tuple(exprs) + ((given,) if given is not None else ())
    return out or None


def _weights_offset(data, kwargs, subset, missing):
    """Pop `weights` and `offset` from kwargs (column names or arrays of the
    data's length), apply `subset` to them and the data, and with
    missing='drop' drop the rows where they are NaN.  Returns the data and
    the two as arrays (or None) aligned with its rows."""
    weights = row_values(kwargs.pop("weights", None), data, "weights")
    offset = row_values(kwargs.pop("offset", None), data, "offset")
    if subset is not None:
        data = data.loc[subset]
        weights = None if weights is None else weights.loc[subset]
        offset = None if offset is None else offset.loc[subset]
    if missing == "drop":
        bad = np.zeros(len(data), dtype=bool)
        for v in (weights, offset):
            if v is not None:
                bad |= np.isnan(v.to_numpy())
        if bad.any():
            keep = ~bad
            data, weights = data.loc[keep], None if weights is None else weights[keep]
            offset = None if offset is None else offset[keep]
    return (data, None if weights is None else weights.to_numpy(),
            None if offset is None else offset.to_numpy())


def model_from_formula(cls, formula, data, groups, re_formula=None, subset=None,
                       missing="none", re_intercept_name=None, eval_env=None,
                       memorize_all_rows=False, **kwargs):
    """Build a MixedLM (or subclass `cls`) from formulas, statsmodels' way.

    The random-effects intercept is named after the group (statsmodels'
    "Group" or the groups column's name), or `re_intercept_name`.  Formulas
    are checked against lmm.formula.safe's whitelist unless `eval_env` is
    given (see `safe.environment`).  `weights` and `offset` (keywords): a
    column name of `data` or an array of its length.
    """
    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(data)
    if type(data.columns) is not pd.Index or not data.columns.is_unique:
        _check_column_names(data, (formula, re_formula, groups))
    if missing not in ("none", "drop", "raise"):
        raise ValueError(f"missing must be 'none', 'drop' or 'raise', got {missing!r}")
    weights = offset = None
    # (a substring test first: no extra call for formulas without offsets)
    formula, offset_exprs = _offset_terms(formula) if "offset" in formula else (formula, ())
    offset_terms = _offset_source(offset_exprs, kwargs.get("offset"))
    if offset_exprs:
        # (lme4: offset(x) terms and offset= add up)
        if not data.index.is_unique:
            data = data.reset_index(drop=True)
        terms = offset_values(offset_exprs, data, eval_env)
        given = row_values(kwargs.get("offset"), data, "offset")
        kwargs["offset"] = terms if given is None else terms + given.to_numpy()
    if "weights" in kwargs or "offset" in kwargs:
        if isinstance(groups, str):
            data, weights, offset = _weights_offset(data, kwargs, subset, missing)
        else:
            # (groups given as an array travel with the rows: of the data's
            # length, or of the subset's)
            groups = groups.to_numpy() if isinstance(groups, pd.Series | pd.Index) else \
                np.asarray(groups)
            rows = data.index if subset is None or len(groups) == len(data) else \
                data.loc[subset].index
            if len(groups) != len(rows):
                raise ValueError(f"groups has {len(groups)} entries but data has "
                                 f"{len(rows)} rows")
            groups = pd.Series(groups, index=rows)
            data, weights, offset = _weights_offset(data, kwargs, subset, missing)
            groups = groups.loc[data.index].to_numpy()
        subset = None
    if subset is not None:
        data = data.loc[subset]
    group_name = "Group"
    row_labels = data.index
    # (the range's own start and step: RangeIndex's properties cost more)
    rng = getattr(row_labels, "_range", None) if type(row_labels) is pd.RangeIndex else None
    if isinstance(rng, range):
        default_index = rng.start == 0 and rng.step == 1
    else:
        default_index = isinstance(row_labels, pd.RangeIndex) and row_labels.start == 0 \
            and row_labels.step == 1
    frame = data if default_index else data.reset_index(drop=True)
    if weights is not None or offset is not None:
        kwargs = dict(kwargs, weights=weights, offset=offset)
        if offset_terms is not None:
            kwargs["offset_terms"] = offset_terms
    source = fast.Columns(frame)
    if isinstance(groups, str):
        if groups not in source:
            raise ValueError(f"groups column {groups!r} is not in the data")
        group_name = groups
        groups = source.values(groups)
    else:
        groups = groups.to_numpy() if isinstance(groups, pd.Series | pd.Index) else \
            np.asarray(groups)
        if groups.ndim != 1 or len(groups) != len(data):
            raise ValueError(
                f"groups has {len(groups)} entries but data has {len(data)} rows"
            )
    if _split(formula)[0] is None:
        raise ValueError(f"the formula {formula!r} needs a response on the left of '~'")
    if re_formula is not None and re_formula.strip().lstrip("~").strip() == "1":
        re_formula = None

    planned = _fast_designs(formula, re_formula, source)
    if planned is not None:
        lhs, fe, re = planned
        used = [lhs, *sorted(fe.variables | (re.variables if re else set()))]
        # (loops rather than comprehensions: each is one more function to run)
        arrays = {}
        numeric = True
        for c in used:
            arrays[c] = a = source.values(c)
            if a.dtype.kind not in "fiub":
                numeric = False
        group_missing = None if groups.dtype.kind in "biu" else _missing_mask(groups)
        if group_missing is not None and not group_missing.any():
            group_missing = None
        if group_missing is None and numeric:
            # numeric columns: a NaN (or an infinite value) shows in the column's
            # sum, one pass in C; only then are the columns searched, below (a
            # sum that overflows sends finite data there too, and nothing is found)
            finite = True
            for c in used:
                a = arrays[c]
                if a.dtype.kind == "f" and not np.isfinite(np.add.reduce(a)):
                    finite = False
                    break
            if finite:
                return _fast_model(cls, lhs, fe, re, source, arrays, groups, formula,
                                   group_name, re_intercept_name, row_labels, kwargs)
        masks = [(c, _missing_mask(arrays[c])) for c in used]
        masks = [(c, m) for c, m in masks if m is not None and m.any()]
        if masks or group_missing is not None:
            if missing != "drop":
                cols = [c for c, _ in masks]
                cols += ["groups"] if group_missing is not None else []
                raise ValueError(
                    f"missing values (NaN) in {cols}; pass missing='drop' to drop those rows"
                )
            bad = np.zeros(len(frame), dtype=bool)
            for _, m in masks:
                bad |= m
            if group_missing is not None:
                bad |= group_missing
            keep = ~bad
            frame = frame.loc[keep].reset_index(drop=True)
            groups, row_labels = groups[keep], row_labels[keep]
            kwargs = _kept_rows(kwargs, keep)
            source = fast.Columns(frame)
            planned = _fast_designs(formula, re_formula, source)
            lhs, fe, re = planned
            arrays = {c: source.values(c) for c in used}
        del masks, group_missing
        return _fast_model(cls, lhs, fe, re, source, arrays, groups, formula, group_name,
                           re_intercept_name, row_labels, kwargs)

    env = safe.environment(eval_env)
    _desc(formula, frame, "formula", env)       # (refused or unparsable: before any work)
    if re_formula is not None:
        _desc(re_formula, frame, "re_formula", env)
    memorize = None
    if missing == "drop":
        bad = _missing_rows(frame, [formula, re_formula], env) | pd.isna(groups)
        if bad.any():
            keep = ~bad
            # (lme4-style models: R's scale(), poly(), ns() keep the statistics of
            # every row, missing='drop' or not, as R's model.frame does)
            memorize = frame if memorize_all_rows else None
            frame = frame.loc[keep].reset_index(drop=True)
            groups = groups[keep]
            row_labels = row_labels[keep]
            kwargs = _kept_rows(kwargs, keep)
    if pd.isna(groups).any():
        raise ValueError("missing values in groups; pass missing='drop' to drop those rows")

    y, x = _build(formula, frame, "formula", env, memorize)
    if y.shape[1] != 1:
        raise ValueError(f"the response of {formula!r} must be a single numeric column")
    if re_formula is not None:
        _, z = _build(re_formula, frame, "re_formula", env, memorize)
        re_names = [c.replace("Intercept", re_intercept_name or group_name) for c in z.columns]
        z_info = z.design_info
    else:
        z = None
        re_names = [re_intercept_name or group_name]
        z_info = None
    endog = y.iloc[:, 0]
    endog.name = y.columns[0]
    return cls(
        endog, x, groups, exog_re=z, missing="none", formula=formula,
        design_info=x.design_info, design_info_re=z_info, group_name=group_name,
        exog_re_names=re_names, row_labels=row_labels, **kwargs,
    )


def _kept_rows(kwargs, keep):
    """kwargs with its `weights` and `offset` arrays cut to the rows kept."""
    out = dict(kwargs)
    for name in ("weights", "offset"):
        if out.get(name) is not None:
            out[name] = out[name][np.asarray(keep)]
    return out


def _term_columns(expr, frame, eval_env):
    """Column names of one random-effect term's design (patsy's names)."""
    planned = fast.plan(expr, frame)
    if planned is not None:
        return planned.column_names
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(frame)
    env = safe.environment(eval_env)
    # (the names only: a few rows do, unless the caller's namespace holds
    # arrays of all of them)
    head = frame.head(50) if len(frame) > 50 and safe.is_restricted(env) else frame
    _, mat = _dmatrices(_desc("~" + expr, frame, "random-effect term", env), head, env,
                        "drop")
    return list(mat.design_info.column_names)


def model_from_lmer(cls, parsed, formula, data, missing="none", eval_env=None, **kwargs):
    """Build a one-grouping-factor model (`cls`, a MixedLM) from the lme4 formula
    `formula` (`parsed` by `lmm.formula.lme4.parse`): one block of covariance per
    bar term.  Formulas are checked against lmm.formula.safe's whitelist unless
    `eval_env` is given.
    """
    # (eval_env is resolved where patsy needs it: an int counts frames from the
    # first caller outside lmm, wherever it is resolved)
    md = model_from_formula(
        cls, parsed.fixed_formula, data, parsed.group, re_formula=parsed.re_formula(),
        missing=missing, re_intercept_name="(Intercept)", eval_env=eval_env,
        memorize_all_rows=True, **kwargs,
    )
    # (lme4-style models name their fixed effects as R's model.matrix does)
    # (and their random effects: (Intercept), I(Time^2), EvitEvit100)
    md.exog_names = [r_column_name(n) for n in md.exog_names]
    md.exog_re_names = names = [r_column_name(n) for n in md.exog_re_names]
    blocks, used, term_columns = [], set(), []
    for term in parsed.terms:
        cols = [r_column_name(c) for c in _term_columns(term.expr, data, eval_env)]
        missing_cols = [c for c in cols if c not in names]
        if missing_cols:
            raise NotImplementedError(
                f"the columns {missing_cols} of ({term.expr} | {term.group}) are coded "
                "differently when the terms are combined (a factor without an intercept); "
                "write the random effects as one term"
            )
        idx = [names.index(c) for c in cols]
        if used & set(idx):
            raise ValueError(
                f"random effects {[names[i] for i in used & set(idx)]} appear in more than "
                "one term of the formula"
            )
        used |= set(idx)
        blocks.extend([[i] for i in idx] if term.uncorrelated else [idx])
        term_columns.append((term.expr, idx))
    md.set_lmer_terms(formula, parsed, term_columns, blocks)
    return md


def _design_of(rhs, frame, what, env, planned=None, memorize=None):
    """(matrix, column names, design) of a right-hand side: fast path, else patsy.

    `planned`: the fast path's plan for `rhs` on `frame`, if already made;
    `memorize`: see `_dmatrices`.
    The design (a FastDesign or patsy's DesignInfo) rebuilds the matrix for
    new data with the same coding (`transform_exog`)."""
    if planned is None:
        planned = fast.plan(rhs, frame)
    if planned is not None:
        return planned.matrix(frame), list(planned.column_names), planned
    _, mat = _build("~" + rhs, frame, what, env, memorize)
    return mat.to_numpy(dtype=float), list(mat.columns), mat.design_info


def _column_array(frame, name):
    """Column `name`'s array (numpy or pandas extension array), without building a
    Series where pandas allows it."""
    try:
        loc = frame.columns.get_loc(name)
        if isinstance(loc, int | np.integer):
            return frame._get_column_array(int(loc))
    except (AttributeError, TypeError, KeyError, ValueError):
        pass
    return frame[name].array


def _column_codes(column):
    """Codes and sorted labels of one column (a Series or its array; a
    Categorical's own level order).

    A short column of strings is coded by a dictionary here (pandas' factorize
    runs a hundred Python functions around its hash table, more than the work on
    a few hundred rows); anything else, or a missing value, goes to pandas.
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        return pd.factorize(column, sort=True)
    values = column if isinstance(column, np.ndarray) else column.to_numpy()
    if values.dtype.kind == "O" and len(values) <= _SMALL_COLUMN:
        index = {}
        for v in values:
            if v.__class__ is not str:
                break
            index.setdefault(v, len(index))
        else:
            labels = sorted(index)
            rank = np.empty(len(labels), dtype=np.intp)
            for new_code, label in enumerate(labels):
                rank[index[label]] = new_code
            first = np.fromiter((index[v] for v in values), dtype=np.intp, count=len(values))
            return rank[first], np.array(labels, dtype=object)
    return pd.factorize(values, sort=True)


# columns up to this length are coded by _column_codes' own loop: measured on 100
# string levels, the loop takes 28 us at 150 rows (pandas 30), 141 us at 1,200
# (pandas 52) and 534 us at 5,000 (pandas 123), but pandas' first call after other
# work costs about 0.1-0.15 ms more (cold caches: ~100 Python functions)
_SMALL_COLUMN = 1000


def factor_codes(frame, group, column_codes=None):
    """Integer codes and labels of a grouping factor ("a" or an interaction "a:b").

    An interaction's levels are the combinations that occur, labelled "a:b" and
    sorted as strings; its codes come from the columns' integer codes, so only
    the distinct combinations are turned into strings.  `column_codes` may hold
    the columns' (codes, labels) already computed (`_column_codes`).
    """
    cols = group.split(":")
    for c in cols:
        if c not in frame.columns:
            raise ValueError(f"grouping factor column {c!r} is not in the data")
    column_codes = {} if column_codes is None else column_codes
    for c in cols:
        if c not in column_codes:
            column_codes[c] = _column_codes(frame[c])
    if len(cols) == 1:
        codes, labels = column_codes[cols[0]]
        return codes.astype(np.intp), [str(v) for v in labels]
    key = np.zeros(len(frame), dtype=np.int64)
    missing = np.zeros(len(frame), dtype=bool)
    names = []
    for c in cols:
        codes, labels = column_codes[c]
        missing |= codes < 0
        key = key * (len(labels) + 1) + codes + 1
        names.append([str(v) for v in labels])
    # (hashing, not np.unique's sort: a sort's copies are the peak memory of a large
    # nested model; the labels' order is set below)
    inverse, combos = pd.factorize(key[~missing] if missing.any() else key)
    parts = []
    rest = combos
    for labels in reversed(names):
        base = len(labels) + 1
        parts.append([labels[i - 1] for i in rest % base])
        rest = rest // base
    strings = [":".join(p) for p in zip(*reversed(parts))]
    order = sorted(range(len(strings)), key=strings.__getitem__)
    rank = np.empty(len(strings), dtype=np.intp)
    rank[order] = np.arange(len(strings))
    out = np.full(len(frame), -1, dtype=np.intp)
    out[~missing] = rank[inverse.reshape(-1)]
    return out, [strings[i] for i in order]


def multi_from_lmer(cls, parsed, formula, data, missing="none", eval_env=None,
                    group_names=None, vc_names=None, r_names=True, **kwargs):
    """A several-factor model (`cls`, a MultiTermModel) from a parsed lme4 formula.

    Bar terms on the same factor are merged into one term whose covariance is
    block-diagonal (one block per bar term, one per column for ||).  Formulas
    are checked against lmm.formula.safe's whitelist unless `eval_env` is given.
    `group_names` renames grouping factors in the model (statsmodels' variance
    components' names); `vc_names` is passed to the model.
    """
    weights, offset = kwargs.pop("weights", None), kwargs.pop("offset", None)
    if kwargs:
        raise TypeError(f"unexpected keyword arguments: {sorted(kwargs)}")
    group_names = group_names or {}
    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(data)
    if type(data.columns) is not pd.Index or not data.columns.is_unique:
        _check_column_names(data, (formula, parsed.fixed_formula,
                                   *(f"{t.expr} | {t.group}" for t in parsed.terms)))
    row_labels = data.index
    frame = data.reset_index(drop=True) if not isinstance(data.index, pd.RangeIndex) \
        or data.index.start != 0 or data.index.step != 1 else data
    group_cols = sorted({c for g in parsed.groups for c in g.split(":")})
    for c in group_cols + [parsed.response]:
        if c not in frame.columns:
            raise ValueError(f"column {c!r} is not in the data")
    env = safe.environment(eval_env)
    fixed_rhs = parsed.fixed
    offset_exprs = ()
    if "offset" in parsed.fixed_formula:
        stripped, offset_exprs = _offset_terms(parsed.fixed_formula)
        if offset_exprs:
            fixed_rhs = stripped.split("~", 1)[1].strip()
    offset_terms = _offset_source(offset_exprs, offset)
    if isinstance(offset, str):
        offset = row_values(offset, frame, "offset").to_numpy()
    if isinstance(weights, str):
        weights = row_values(weights, frame, "weights").to_numpy()
    if offset_exprs:
        # (lme4: offset(x) terms and offset= add up)
        terms_offset = offset_values(offset_exprs, frame, eval_env)
        offset = terms_offset if offset is None else terms_offset + offset
    n_rows = len(frame)
    weights = None if weights is None else row_vector(weights, "weights", n_rows)
    offset = None if offset is None else row_vector(offset, "offset", n_rows)
    # rows with a missing value in any variable the model uses: from the columns
    # themselves when every right-hand side takes the fast path, else from patsy
    rhs = [fixed_rhs] + [t.expr for t in parsed.terms]
    plans = [fast.plan(r, frame) for r in rhs]

    def column_missing(c):
        a = _column_array(frame, c)
        a = a if isinstance(a, np.ndarray) else a.to_numpy()
        if a.dtype.kind == "f":
            return np.isnan(a)
        return np.zeros(len(a), dtype=bool) if a.dtype.kind in "biu" else pd.isna(a)

    # the grouping columns' codes, once: a missing value is coded -1
    column_codes = {c: _column_codes(_column_array(frame, c)) for c in group_cols}
    group_missing = {c: column_codes[c][0] < 0 for c in group_cols}
    if all(pl is not None for pl in plans):
        used = {parsed.response}.union(*(pl.variables for pl in plans)) - set(group_cols)
        col_missing = {c: column_missing(c) for c in sorted(used)} | group_missing
        bad = np.zeros(len(frame), dtype=bool)
        for m in col_missing.values():
            bad |= m
    else:
        formulas = [f"{parsed.response} ~ {fixed_rhs}"] + ["~" + t.expr for t in parsed.terms]
        col_missing = group_missing
        bad = _missing_rows(frame, formulas, env)
        for m in group_missing.values():
            bad |= m
    # (zero weights, and NaN weights or offsets under missing='drop': rows dropped too)
    weight_drop = rows_to_drop(weights, offset, missing)
    if bad.any():
        if missing != "drop":
            cols = [c for c, m in col_missing.items() if m.any()]
            terms = [f"({t.expr} | {t.group})" for t in parsed.terms
                     if set(t.group.split(":")) & set(cols)]
            where = f" in {cols}" if cols else " in variables of the formula"
            where += f" (grouping factors of {', '.join(terms)})" if terms else ""
            raise ValueError(f"missing values (NaN){where}; pass missing='drop' to drop "
                             "those rows")
    if weight_drop is not None:
        bad = bad | weight_drop
    # (lme4-style models: R's scale(), poly(), ns() keep the statistics of every row,
    # as R's model.frame does; the variance-component formulas keep patsy's)
    memorize = None
    if bad.any():
        memorize = frame if r_names else None
        frame = frame.loc[~bad].reset_index(drop=True)
        row_labels = row_labels[~bad]
        weights = None if weights is None else weights[~bad]
        offset = None if offset is None else offset[~bad]
        plans = [fast.plan(r, frame) for r in rhs]     # levels of the kept rows
        column_codes = {}
    plans = dict(zip(rhs, plans))
    y = _column_array(frame, parsed.response)
    if y.dtype.kind not in "iuf":
        raise TypeError(f"the response {parsed.response!r} must be numeric, got {y.dtype}")
    x, x_names, x_design = _design_of(fixed_rhs, frame, "formula", env, plans[fixed_rhs],
                                      memorize)
    if r_names:     # (lme4-style models name their fixed effects as R does)
        x_names = [r_column_name(n) for n in x_names]
    terms = []
    for group in parsed.groups:
        bars = [t for t in parsed.terms if t.group == group]
        cols, names, blocks, designs = [], [], [], []
        for bar in bars:
            z, z_names, z_design = _design_of(bar.expr, frame, "random-effect term", env,
                                              plans[bar.expr], memorize)
            designs.append(z_design)
            z_names = ([r_column_name(n) for n in z_names] if r_names else
                       ["(Intercept)" if n == "Intercept" else n for n in z_names])
            clash = set(z_names) & set(names)
            if clash:
                raise ValueError(f"random effects {sorted(clash)} of {group!r} appear in more "
                                 "than one term of the formula")
            idx = list(range(len(names), len(names) + len(z_names)))
            blocks.extend([[i] for i in idx] if bar.uncorrelated else [idx])
            cols.append(z)
            names.extend(z_names)
        codes, labels = factor_codes(frame, group, column_codes)
        terms.append(Term(group_names.get(group, group), codes, labels,
                          cols[0] if len(cols) == 1 else np.column_stack(cols), names,
                          default_structure(len(names), tuple(map(tuple, blocks))), designs))
    return cls(np.array(y, dtype=float), x, terms, x_names, endog_name=parsed.response,
               formula=formula, row_labels=row_labels, lmer_formula=parsed,
               design_info=x_design, vc_names=vc_names, weights=weights, offset=offset,
               offset_terms=offset_terms if offset is not None else None)


_VC_FACTOR = re.compile(r"^\s*0\s*\+\s*(?:C\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\)|"
                        r"([A-Za-z_][A-Za-z0-9_.]*))\s*$")


def multi_from_vc_formula(cls, formula, data, groups, re_formula, vc_formula, missing="none",
                          eval_env=None, weights=None, offset=None):
    """statsmodels' variance components as lme4 terms for the several-factor engine
    (`cls`, a MultiTermModel).

    ``groups`` with ``vc_formula={"name": "0 + C(col)"}`` is ``(1 | groups:col)``
    (the component's levels nested in the groups), or ``(1 | col)`` when every
    row is in one group; `re_formula` adds ``(re | groups)``.
    """
    from . import lme4

    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(data)
    if type(data.columns) is not pd.Index or not data.columns.is_unique:
        _check_column_names(data, (formula, re_formula, groups, *vc_formula.values()))
    frame = data.copy()
    if isinstance(groups, str):
        if groups not in frame.columns:
            raise ValueError(f"groups column {groups!r} is not in the data")
        group_col = groups
    else:
        values = groups.to_numpy() if isinstance(groups, pd.Series | pd.Index) else \
            np.asarray(groups)
        if values.ndim != 1 or len(values) != len(frame):
            raise ValueError(f"groups has {len(values)} entries but data has {len(frame)} rows")
        group_col = "__lmm_groups__"
        frame[group_col] = values
    single_group = frame[group_col].nunique(dropna=True) == 1
    if "~" not in formula or not formula.split("~")[0].strip():
        raise ValueError(f"the formula {formula!r} needs a response on the left of '~'")
    response, fixed = (s.strip() for s in formula.split("~", 1))
    terms, names = [], {}
    env = safe.environment(eval_env)
    for name in sorted(vc_formula):
        # (refused before the supported forms are looked for: a clear ValueError)
        _desc(vc_formula[name], frame, f"vc_formula {name!r}", env)
        match = _VC_FACTOR.match(vc_formula[name].lstrip("~"))
        if match is None:
            raise NotImplementedError(
                f"vc_formula {name!r}: {vc_formula[name]!r} is not of the form '0 + C(column)'; "
                "other variance components are not supported yet (write the model in lme4's "
                "syntax with lmm.lmer)"
            )
        col = match.group(1) or match.group(2)
        if col not in frame.columns:
            raise ValueError(f"vc_formula {name!r}: column {col!r} is not in the data")
        grouping = col if single_group else f"{group_col}:{col}"
        terms.append(lme4.RandomTerm("1", grouping))
        names[grouping] = name
    if re_formula is not None and re_formula.strip().lstrip("~").strip() not in ("0", "-1"):
        if single_group:
            raise ValueError("re_formula with a single group: the random effects would be "
                             "one draw for all rows")
        terms.append(lme4.RandomTerm(re_formula.strip().lstrip("~").strip(), group_col))
        names[group_col] = "Group" if group_col == "__lmm_groups__" else group_col
    if not terms:
        raise ValueError("vc_formula is empty and there is no re_formula: no random effects")
    parsed = lme4.LmerFormula(response, fixed or "1", tuple(terms))
    return multi_from_lmer(cls, parsed, formula, frame, missing, eval_env=eval_env,
                           group_names=names, vc_names=sorted(vc_formula), weights=weights,
                           offset=offset, r_names=False)


def prediction_offset(model, data, offset, n):
    """The offset of a prediction's n rows (None when there is none): the model's own
    for its own rows (`data` None; an `offset` is then an error, not ignored); for new
    rows `offset` if given, else the model's `offset_terms` (an offset given by name or
    by offset() terms) evaluated on `data`, a DataFrame, else an error asking for it."""
    if data is None:
        if offset is not None:
            raise TypeError("offset= is the offset of new rows: pass it with newdata (the "
                            "model's own rows have their offset)")
        return getattr(model, "offset", None)
    if offset is not None:
        offset = np.asarray(offset, dtype=float)
        if offset.shape != (n,):
            raise ValueError(f"offset must have one value per row of the new data ({n}), "
                             f"got shape {offset.shape}")
        return offset
    if getattr(model, "offset", None) is None:
        return None
    terms = getattr(model, "offset_terms", None)
    if terms is None or not isinstance(data, pd.DataFrame):
        raise ValueError("the model was fitted with an offset given as values: pass the "
                         "new rows' offset= to predict")
    return offset_values(terms, data)


def transform_exog(design_info, data):
    """The fixed-effects design of new data, through the model's design_info."""
    if isinstance(design_info, fast.FastDesign):
        return design_info.matrix(data)
    try:
        (x,) = patsy.build_design_matrices([design_info], data, NA_action="raise")
    except patsy.PatsyError as exc:
        raise ValueError(f"cannot build the design of the new data: {str(exc).splitlines()[0]}"
                         ) from None
    return np.asarray(x)
