"""One model from a Dask DataFrame: rows reduced to statistics where they live.

A model with one grouping factor needs only its per-group cross-products
(lmm.statistics), and those of separate chunks of rows merge exactly.  So
``lmm.lmer(formula, dask_df)`` and ``lmm.mixedlm(formula, dask_df, groups=...)``
never bring the rows to the client:

1. one pass computes what coding the rows needs: the sorted labels of the
   grouping factor and the levels of every categorical column the formula uses;
2. a template model is built in memory on a *skeleton* frame holding those
   labels and levels (its designs, names, covariance blocks are the model's:
   the same front end as in-memory fits, so the columns are the same);
3. each partition builds its rows' designs through the template's
   (`transform_exog`), codes its groups against the labels, and reduces them to
   `GroupedStatistics` about its own means; the statistics of the partitions
   are merged in a tree on the cluster (a group split across partitions adds
   up); only the merged statistics are computed back;
4. the model is the template's with the merged statistics in place of its
   (`MixedLM.set_statistics`): fitting, summaries, inference and profiles use
   nothing else.  Fitted values and residuals come back as Dask series,
   computed partition by partition when asked for.

Formula functions whose values depend on the whole column: ``center(x)``,
``scale(x)`` and ``standardize(x)`` of a column by name are supported (a first pass
finds the column's mean and standard deviation, merged exactly across partitions,
and the skeleton's column is given them, so that the template memorizes the
data's); ``poly``, splines and such functions of expressions are refused with an
error that says so.  Several grouping factors take three passes
(`multi_model_from_dask`).

It uses the active ``dask.distributed`` client when there is one (Dask's
default), Dask's default scheduler otherwise; ``pip install lmm[dask]``.
"""

import re

import numpy as np
import pandas as pd

from .statistics import GroupedStatistics

# formula functions whose values need statistics of the whole column
_WHOLE_COLUMN = re.compile(r"\b(center|standardize|scale|poly|bs|ns|cr|cc|te)\s*\(")
# ... those of them supported on a Dask frame: applied to a column by name, they need
# only its mean and standard deviation, which combine exactly across partitions
_CENTRE_SCALE = re.compile(r"\b(center|standardize|scale)\s*\(\s*([A-Za-z_][\w.]*)\s*\)")


def _centred_columns(texts, lme4_style):
    """{column: ddof of the standard deviation its transform divides by (None: only
    centred)} for the formula texts' center(x), scale(x), standardize(x); a
    NotImplementedError for any other whole-column function (or one applied to
    an expression)."""
    out = {}
    for text in texts:
        if not text:
            continue
        supported = {m.start(): m for m in _CENTRE_SCALE.finditer(text)}
        for m in _WHOLE_COLUMN.finditer(text):
            if m.start() not in supported:
                raise NotImplementedError(
                    f"{m.group(1)}() needs statistics of the whole column, which a Dask "
                    "DataFrame's partitions cannot give the formula (center(), scale() "
                    "and standardize() of a column by name can be): compute the column "
                    "first (dask_df.assign(...)) or fit in memory")
        for m in supported.values():
            function, column = m.group(1), m.group(2)
            # (lme4-style formulas: R's scale, n - 1; patsy's scale and standardize: n)
            ddof = None if function == "center" else \
                (1 if function == "scale" and lme4_style else 0)
            if column in out and None not in (out[column], ddof) and out[column] != ddof:
                raise NotImplementedError(f"{column!r} is standardized two ways in the "
                                          "formula: compute the columns first")
            out[column] = ddof if out.get(column) is None else out[column]
    return out


def _column_moments(part, columns, used, missing, every_row=()):
    """Per partition: (rows, mean, sum of squares about it) of each column, over the
    complete rows under missing='drop' (patsy's transforms: the kept rows), or, for
    the columns of `every_row`, over all their non-missing values (R's scale in
    lme4-style models: model.frame computes it before na.omit)."""
    complete = part.loc[~part[used].isna().any(axis=1)] if missing == "drop" else part
    out = {}
    for c in columns:
        if c in every_row:
            v = part[c].to_numpy(dtype=float)
            v = v[~np.isnan(v)]
        else:
            v = complete[c].to_numpy(dtype=float)
        mean = float(v.mean()) if len(v) else 0.0
        out[c] = (len(v), mean, float(((v - mean) ** 2).sum()))
    return out


def _merge_column_moments(a, b):
    out = {}
    for c in a:
        (na, ma, sa), (nb, mb, sb) = a[c], b[c]
        n = na + nb
        if n == 0:
            out[c] = a[c]
            continue
        d = mb - ma
        out[c] = (n, ma + d * nb / n, sa + sb + d * d * na * nb / n)
    return out


def _skeleton_moments(dask_df, texts, lme4_style, used, missing):
    """{column: (mean, sd, ddof)} that the skeleton's column must have for its
    centring and scaling to be the data's (see `_centred_columns`)."""
    columns = _centred_columns(texts, lme4_style)
    if not columns:
        return {}
    for c in columns:
        if c not in dask_df.columns:
            raise ValueError(f"column {c!r} is not in the data")
    # (R's scale(): ddof 1, lme4-style formulas only)
    every_row = tuple(c for c, ddof in columns.items() if lme4_style and ddof == 1)
    moments = _reduce(dask_df, _column_moments, _merge_column_moments, list(columns), used,
                      missing, every_row)
    out = {}
    for c, ddof in columns.items():
        n, mean, ss = moments[c]
        d = 0 if ddof is None else ddof
        out[c] = (mean, np.sqrt(ss / max(n - d, 1)), d)
    return out


def is_dask_frame(obj):
    """True for a dask.dataframe.DataFrame (without importing Dask otherwise)."""
    module = type(obj).__module__
    return module.startswith("dask") and hasattr(obj, "to_delayed") and \
        hasattr(obj, "npartitions")


def _compute(*collections):
    """dask.compute, the only way results reach the client (the tests watch it)."""
    import dask

    return dask.compute(*collections)


def _used_columns(dask_df, texts):
    """The frame's columns that the formula texts name (as whole words)."""
    joined = " ".join(t for t in texts if isinstance(t, str))
    return [c for c in dask_df.columns
            if re.search(rf"(?<![\w.]){re.escape(str(c))}(?![\w.])", joined)]


def _is_categorical(dtype):
    return not (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))


def _skeleton(meta, levels, group, n_rows, seed=0, moments=None):
    """A frame of n_rows rows with the columns of `meta`: each categorical column
    (and the grouping column) cycles through all its levels in a shuffled order,
    numeric columns are standard normal (only the coding is taken from it), but
    for the columns of `moments` ({column: (mean, sd, ddof)}), which have exactly
    that mean and standard deviation: the formula's centring and scaling of them,
    memorized on the skeleton, are then the data's."""
    moments = moments or {}
    rng = np.random.default_rng(seed)
    columns = {}
    for c in meta.columns:
        if c in levels:
            values = np.asarray(levels[c], dtype=object)
            reps = np.resize(np.arange(len(values)), n_rows)
            if c != group:
                reps = rng.permutation(reps)
            col = pd.Series(values[reps])
            dtype = meta[c].dtype
            if isinstance(dtype, pd.CategoricalDtype):
                col = col.astype(pd.CategoricalDtype(sorted(levels[c])))
            elif pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
                col = col.astype(dtype)
            columns[c] = col
        else:
            values = rng.standard_normal(n_rows)
            if c in moments:
                mean, sd, ddof = moments[c]
                values = (values - values.mean()) / values.std(ddof=ddof)
                values = mean + sd * values
            columns[c] = pd.Series(values)
    return pd.DataFrame(columns)


def _group_placeholders(meta, group_cols, skeleton):
    """The skeleton's grouping columns: three values of the column's kind, cycled
    (the designs do not depend on them; the terms' levels are the data's)."""
    for c in group_cols:
        numeric = not _is_categorical(meta[c].dtype)
        values = np.array([0, 1, 2] if numeric else ["g0", "g1", "g2"], dtype=object)
        col = pd.Series(np.resize(values, len(skeleton)))
        skeleton[c] = col.astype(meta[c].dtype) if numeric else col
    return skeleton


def _build_template(cls, skeleton, lmer_formula=None, formula=None, re_formula=None,
                    group=None):
    """The in-memory model of the formula on the skeleton (its designs, names and
    covariance structures are the Dask model's)."""
    if lmer_formula is not None:
        return cls.from_lmer(lmer_formula, skeleton)
    return cls.from_formula(formula, skeleton, re_formula=re_formula, groups=group)


class _Template:
    """The template model, rebuilt from its recipe in each process that needs it:
    patsy's designs (the formula functions' ones) do not pickle, a small skeleton
    and the formula do."""

    def __init__(self, recipe, model=None):
        self._recipe = recipe          # a picklable callable: functools.partial(...)
        self._model = model

    @property
    def model(self):
        if self._model is None:
            self._model = self._recipe()
        return self._model

    def __getstate__(self):
        return {"_recipe": self._recipe, "_model": None}


def _complete_rows(part, used, missing):
    """The partition's model columns, its rows with a missing value dropped
    (missing='drop') or refused with the columns named."""
    part = part[used]
    bad = part.isna().any(axis=1).to_numpy()
    if bad.any():
        if missing != "drop":
            cols = [c for c in used if part[c].isna().any()]
            raise ValueError(f"missing values (NaN) in {cols}; pass missing='drop' to "
                             "drop those rows")
        part = part.loc[~bad]
    return part


def _weights_and_offset(part, weights, offset, y):
    """The partition's weights and offset columns (None when not given), checked with
    its response."""
    w = None if weights is None else part[weights].to_numpy(dtype=float)
    o = None if offset is None else part[offset].to_numpy(dtype=float)
    for name, v in (("weights", w), ("offset", o), ("the response", y)):
        if v is not None and not np.all(np.isfinite(v)):
            raise ValueError(f"{name} must be finite")
    if w is not None and np.any(w <= 0):
        raise ValueError("weights must be positive on a Dask frame (drop the rows with "
                         "zero weight first)")
    return w, o


def _unseen(codes, group):
    if np.any(codes < 0):
        raise ValueError(f"a partition has labels of {group!r} not seen in the first pass "
                         "(was the frame changed?)")


class DaskSource:
    """How a partition's rows become the model's arrays: the template's designs,
    the group labels, the response, weights and offset columns.

    Parameters
    ----------
    dask_df : dask.dataframe.DataFrame
    template : MixedLM built on the skeleton
    response, group : column names
    weights, offset : column names or None
    missing : 'none' or 'drop'
    used : the columns the model reads
    """

    def __init__(self, dask_df, template, labels, response, group, weights, offset, missing,
                 used):
        self.dask_df = dask_df
        self.template = template        # a _Template
        self.k_re = template.model.k_re
        self.labels = pd.Index(labels)
        self.response, self.group = response, group
        self.weights, self.offset = weights, offset
        self.missing = missing
        self.used = used

    def rows(self, part):
        """(y, X, Z, codes, weights, offset) of a partition (pandas DataFrame)."""
        from .formula.design import transform_exog

        part = _complete_rows(part, self.used, self.missing)
        y = part[self.response].to_numpy(dtype=float)
        template = self.template.model
        x = np.asarray(transform_exog(template.design_info, part), dtype=float)
        if template.design_info_re is None:
            z = np.ones((len(part), self.k_re))
        else:
            z = np.asarray(transform_exog(template.design_info_re, part), dtype=float)
        codes = self.labels.get_indexer(part[self.group])
        _unseen(codes, self.group)
        w, o = _weights_and_offset(part, self.weights, self.offset, y)
        return y, x, z, codes, w, o

    def fitted_and_response(self, part, fe_params, modes):
        """(fitted values with the random effects and the offset, response) of the
        partition's complete rows."""
        y, x, z, codes, _, o = self.rows(part)
        eta = x @ fe_params + np.einsum("ij,ij->i", z, modes[codes])
        return (eta if o is None else eta + o), y

    def statistics(self, part):
        """A partition's reduction: its statistics about its own means (columns of
        ones left unshifted), which columns are all ones, sum of log weights."""
        y, x, z, codes, w, o = self.rows(part)
        y_fit = y if o is None else y - o
        n = len(y)
        x_ones = np.all(x == 1.0, axis=0) if n else np.ones(x.shape[1], dtype=bool)
        z_ones = np.all(z == 1.0, axis=0) if n else np.ones(z.shape[1], dtype=bool)
        if n:
            x_shift = np.where(x_ones, 0.0, np.average(x, 0, w))
            z_shift = np.where(z_ones, 0.0, np.average(z, 0, w))
            y_shift = float(np.average(y_fit, weights=w))
        else:
            x_shift, z_shift, y_shift = np.zeros(x.shape[1]), np.zeros(z.shape[1]), 0.0
        st = GroupedStatistics.from_rows(x, z, y_fit, codes, len(self.labels), x_shift,
                                         z_shift, y_shift, w)
        if w is None and self.weights is not None:
            st = _with_weight_sums(st)
        return {"stats": st, "x_ones": x_ones, "z_ones": z_ones,
                "log_weights": 0.0 if w is None else float(np.log(w).sum())}


def _with_weight_sums(st):
    """(an empty weighted partition: zero weight sums, so that it merges)"""
    import dataclasses

    return dataclasses.replace(st, weight_sums=np.zeros(len(st.group_sizes)))


def _merge(a, b):
    return {"stats": a["stats"].merge(b["stats"]), "x_ones": a["x_ones"] & b["x_ones"],
            "z_ones": a["z_ones"] & b["z_ones"],
            "log_weights": a["log_weights"] + b["log_weights"]}


def _tree_reduce(source):
    """The partitions' statistics merged pairwise in a tree of delayed tasks."""
    import dask

    level = [dask.delayed(source.statistics)(p) for p in source.dask_df.to_delayed()]
    merge = dask.delayed(_merge)
    while len(level) > 1:
        level = [merge(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    (out,) = _compute(level[0])
    return out


def _products(st, x_ones, z_ones):
    """The dict `MixedLM.set_statistics` takes, from merged statistics `st` (and
    which columns of X and Z are all ones): centred as an in-memory model is (X and
    y about their means when X has a column of ones, Z when Z has one; otherwise
    unshifted: a shift without an intercept to absorb it would change the model)."""
    x_intercept = int(np.flatnonzero(x_ones)[0]) if x_ones.any() else -1
    z_intercept = int(np.flatnonzero(z_ones)[0]) if z_ones.any() else -1
    x_shift = st.x_shift if x_intercept >= 0 else np.zeros_like(st.x_shift)
    y_shift = st.y_shift if x_intercept >= 0 else 0.0
    z_shift = st.z_shift if z_intercept >= 0 else np.zeros_like(st.z_shift)
    if x_intercept >= 0:
        x_shift = x_shift.copy()
        x_shift[x_intercept] = 0.0
    if z_intercept >= 0:
        z_shift = z_shift.copy()
        z_shift[z_intercept] = 0.0
    st = st.recentred(x_shift, z_shift, y_shift)
    sizes = np.asarray(st.group_sizes, dtype=np.intp)
    return st, {
        "sizes": sizes, "offsets": np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp),
        "ztz": st.ztz, "ztx": st.ztx, "zty": st.zty, "xtx": st.xtx, "xty": st.xty,
        "yty": st.yty, "ztz_all": st.ztz.sum(axis=0), "x_sum": st.x_sum, "z_sum": st.z_sum,
        "y_sum": st.y_sum, "y_shift": st.y_shift, "x_shift": st.x_shift,
        "z_shift": st.z_shift, "x_intercept": x_intercept, "z_intercept": z_intercept,
        "weight_sums": st.weight_sums, "x_clear": False, "z_clear": False, "ones": z_ones,
    }


def _discover(dask_df, used, group):
    """One pass: the sorted labels of the grouping column and the levels of the
    categorical columns (with their row count)."""
    meta = dask_df._meta
    cats = [c for c in used if c == group or _is_categorical(meta[c].dtype)]
    tasks = [dask_df[c].dropna().unique() for c in cats]
    found = _compute(*tasks) if tasks else ()
    levels = {}
    for c, values in zip(cats, found):
        values = pd.unique(np.asarray(values, dtype=object))
        try:
            values = sorted(values)
        except TypeError:
            values = sorted(values, key=str)
        levels[c] = values
    return levels


def model_from_dask(cls, dask_df, lmer_formula=None, formula=None, groups=None,
                    re_formula=None, missing="none", weights=None, offset=None, **kwargs):
    """A MixedLM (`cls`) whose statistics are reduced from a Dask DataFrame.

    Either `lmer_formula` (lme4 syntax, one grouping factor) or statsmodels'
    `formula` with `groups` (a column name) and `re_formula`.  `weights` and
    `offset`: column names.  See the module's docstring.

    Examples
    --------
    >>> import dask.dataframe as dd, lmm  # doctest: +SKIP
    >>> d = lmm.datasets.get_rdataset("sleepstudy", "lme4").data  # doctest: +SKIP
    >>> dask_df = dd.from_pandas(d, npartitions=4)  # doctest: +SKIP
    >>> lmm.lmer("Reaction ~ Days + (Days | Subject)", dask_df).llf  # doctest: +SKIP
    """
    from .formula.lme4 import parse as parse_lmer

    if kwargs.pop("subset", None) is not None:
        raise NotImplementedError("subset= with a Dask DataFrame: filter the frame first "
                                  "(dask_df[mask])")
    if kwargs.get("vc_formula") is not None:
        raise NotImplementedError("variance components (vc_formula) from a Dask DataFrame "
                                  "are not supported yet")
    kwargs.pop("vc_formula", None)
    if kwargs.get("eval_env") is not None:
        raise NotImplementedError("eval_env with a Dask DataFrame: the formula may use only "
                                  "the frame's columns")
    kwargs.pop("eval_env", None)
    kwargs.pop("use_sparse", None)
    if kwargs:
        raise TypeError(f"unexpected keyword arguments: {sorted(kwargs)}")
    if missing not in ("none", "drop", "raise"):
        raise ValueError(f"missing must be 'none', 'drop' or 'raise', got {missing!r}")
    for name, value in (("weights", weights), ("offset", offset)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} of a Dask DataFrame model must be a column name, got "
                            f"{type(value).__name__}")
        if value is not None and value not in dask_df.columns:
            raise ValueError(f"{name} column {value!r} is not in the data")
    if lmer_formula is not None:
        parsed = parse_lmer(lmer_formula)
        if not parsed.single_factor:
            if "offset(" in lmer_formula:
                raise NotImplementedError("offset() terms with a Dask DataFrame: pass "
                                          "offset= the column's name")
            _centred_columns([lmer_formula], True)        # (the refusals, early)
            return multi_model_from_dask(cls, dask_df, parsed, lmer_formula, missing,
                                         weights, offset)
        texts = [lmer_formula]
        group = parsed.group
        response = parsed.response
    else:
        if not isinstance(groups, str):
            raise TypeError("groups of a Dask DataFrame model must be a column name")
        texts = [formula, re_formula]
        group = groups
        response = formula.split("~", 1)[0].strip()
    if "offset(" in " ".join(t for t in texts if t):
        raise NotImplementedError("offset() terms with a Dask DataFrame: pass offset= the "
                                  "column's name")
    _centred_columns(texts, lmer_formula is not None)     # (the refusals, early)
    if group not in dask_df.columns:
        raise ValueError(f"groups column {group!r} is not in the data")
    if response not in dask_df.columns:
        raise ValueError(f"the response {response!r} is not a column of the data (a Dask "
                         "frame's response must be a column)")
    used = _used_columns(dask_df, texts + [group])
    used += [c for c in (weights, offset) if c is not None and c not in used]
    levels = _discover(dask_df, used, group)
    if len(levels[group]) < 2:
        raise ValueError(f"a mixed model needs at least two groups; {group!r} has "
                         f"{len(levels[group])} distinct value(s)")
    import functools

    meta = dask_df._meta[used]
    moments = _skeleton_moments(dask_df, texts, lmer_formula is not None, used, missing)
    labels = levels.pop(group)
    n_levels = max([len(v) for v in levels.values()], default=1)
    # (the grouping column with three placeholder values: the designs need no more)
    skeleton = _group_placeholders(meta, [group], _skeleton(
        meta.drop(columns=[group]), levels, None, max(8 * n_levels, 400), moments=moments))
    template = _Template(functools.partial(_build_template, cls, skeleton, lmer_formula,
                                           formula, re_formula, group))
    if template.model.design_info is None:
        raise NotImplementedError("this formula's design cannot be rebuilt partition by "
                                  "partition")
    source = DaskSource(dask_df, template, labels, response, group, weights, offset,
                        "drop" if missing == "drop" else "none", used)
    reduced = _tree_reduce(source)
    md = object.__new__(type(template.model))
    md.__dict__.update(template.model.__dict__)
    md.__dict__.pop("group_labels", None)
    md._group_label_values = np.asarray(labels)
    for name in ("endog", "exog", "exog_re", "groups", "group_codes", "row_order",
                 "row_labels", "weights", "offset"):
        setattr(md, name, None)
    md.dask_source = source
    md.offset_terms = (offset,) if offset is not None else None
    _adopt(md, reduced["stats"], reduced["x_ones"], reduced["z_ones"],
           reduced["log_weights"], missing)
    return md


def _adopt(md, stats, x_ones, z_ones, log_weights, missing="none"):
    """Give `md` (a MixedLM without rows) the statistics `stats`."""
    stats, pr = _products(stats, x_ones, z_ones)
    md.__dict__.pop("statistics", None)
    md.__dict__.pop("cross_products", None)
    md.group_offsets = pr["offsets"]
    md._x_ones, md._log_weights_total = np.asarray(x_ones), log_weights
    md.set_statistics(pr, md._group_label_values, list(md.exog_re_names), stats.nobs,
                     stats.x_sum.shape[1], stats.z_sum.shape[1], log_weights, missing)


def profile_submodel(md, column, value):
    """The model of lme4's profile of fixed effect `column` at `value`, from the
    statistics alone: the column moves into the offset (y - value x_c), its
    products into the response's; a model that loses its intercept is
    uncentred (exactly, by `GroupedStatistics.recentred`)."""
    import dataclasses

    st, v, c = md.statistics, float(value), int(column)
    keep = [k for k in range(st.xtx.shape[0]) if k != c]
    moved = dataclasses.replace(
        st,
        x_shift=st.x_shift[keep], y_shift=st.y_shift - v * st.x_shift[c],
        x_sum=st.x_sum[:, keep], y_sum=st.y_sum - v * st.x_sum[:, c],
        ztx=st.ztx[:, :, keep], zty=st.zty - v * st.ztx[:, :, c],
        xtx=st.xtx[np.ix_(keep, keep)], xty=st.xty[keep] - v * st.xtx[keep, c],
        yty=float(st.yty - 2.0 * v * st.xty[c] + v * v * st.xtx[c, c]))
    sub = object.__new__(type(md))
    sub.__dict__.update(md.__dict__)
    sub.exog_names = [md.exog_names[k] for k in keep]
    sub.design_info = None
    _adopt(sub, moved, md._x_ones[keep], md.re_ones, md._log_weights_total)
    return sub


# -- what needs the rows: lazily, partition by partition, or refused ---------------

def requires_rows(model, what):
    """NotImplementedError for `what` on a model fitted from a Dask frame (which
    holds statistics, not rows); nothing for an in-memory model."""
    if getattr(model, "dask_source", None) is not None:
        raise NotImplementedError(
            f"{what} needs the model's rows, which a fit from a Dask DataFrame does not "
            "hold (fitted values and residuals come back as Dask series); fit the rows "
            "in memory for it")


def _partition_fitted(part, source, fe_params, modes, with_resid):
    """One partition's fitted values (or residuals), indexed by its complete rows."""
    eta, y = source.fitted_and_response(part, fe_params, modes)
    index = _complete_rows(part, source.used, source.missing).index
    return pd.Series(y - eta if with_resid else eta, index=index)


def lazy_fitted(results, resid=False):
    """Fitted values (or residuals) of a model fitted from a Dask frame, one or several
    grouping factors: a Dask Series, computed partition by partition."""
    source = results.model.dask_source
    fe = np.asarray(results.solution["fe_params"], dtype=float)
    modes = [np.asarray(b, dtype=float) for b in results.solution["modes"]] \
        if hasattr(results.model, "terms") else np.asarray(results.random_effects_array,
                                                              dtype=float)
    return source.dask_df.map_partitions(_partition_fitted, source, fe, modes, resid,
                                         meta=pd.Series(dtype=float))


# -- several grouping factors ------------------------------------------------------

def _group_values(part, groups, missing):
    """Per partition: for each grouping factor its distinct values (one column) or
    labels (an interaction, lmm's "a:b" strings), as a set."""
    from .formula.design import factor_codes

    out = []
    for g in groups:
        cols = g.split(":")
        rows = part[cols].dropna() if missing == "drop" else part[cols]
        if len(cols) == 1:
            out.append(set(pd.unique(rows[cols[0]].to_numpy())))
        else:
            out.append(set(factor_codes(rows.reset_index(drop=True), g)[1]))
    return out


def _union(a, b):
    return [x | y for x, y in zip(a, b)]


def _sorted_labels(values, single):
    """lmm's level order: a column's values sorted (as pandas' factorize sorts), then
    as strings; an interaction's labels sorted as strings."""
    values = list(values)
    if single:
        try:
            values = sorted(values)
        except TypeError:
            values = sorted(values, key=str)
        return [str(v) for v in values]
    return sorted(values)


class MultiDaskSource:
    """A partition's rows as a several-term model's arrays (the template's designs,
    each term's labels) and their conditioned products."""

    def __init__(self, dask_df, template, terms, response, weights, offset, missing, used):
        self.dask_df = dask_df
        self.template = template        # a _Template
        self.terms = terms              # (their designs are the template's)
        self.response, self.weights, self.offset = response, weights, offset
        self.missing, self.used = missing, used

    def rows(self, part):
        from .formula.design import factor_codes, transform_exog

        part = _complete_rows(part, self.used, self.missing)
        part = part.reset_index(drop=True)
        y = part[self.response].to_numpy(dtype=float)
        template = self.template.model
        x = np.asarray(transform_exog(template.design_info, part), dtype=float)
        designs = {t.group: t.designs for t in template.terms}
        zs, codes = [], []
        for term in self.terms:
            zs.append(np.ascontiguousarray(np.column_stack(
                [transform_exog(d, part) for d in designs[term.group]]), dtype=float))
            part_codes, part_labels = factor_codes(part, term.group)
            position = pd.Index(term.labels).get_indexer(part_labels)
            codes.append(np.ascontiguousarray(position[part_codes], dtype=np.intp))
            _unseen(codes[-1], term.group)
        w, o = _weights_and_offset(part, self.weights, self.offset, y)
        return y if o is None else y - o, x, zs, codes, w, o

    def fitted_and_response(self, part, fe_params, modes):
        """(fitted values with every term's effects and the offset, response)."""
        y_fit, x, zs, codes, _, o = self.rows(part)
        eta = x @ fe_params
        for z, c, b in zip(zs, codes, modes):
            eta = eta + np.einsum("ij,ij->i", z, b[c])
        return (eta, y_fit) if o is None else (eta + o, y_fit + o)

    # pass 1: what the conditioning needs (means, spreads, columns of ones)
    def moments(self, part):
        y, x, zs, _, w, _ = self.rows(part)
        n = len(y)
        wt = np.ones(n) if w is None else w
        mass = float(wt.sum())
        x_mean = wt @ x / mass if n else np.zeros(x.shape[1])
        out = {"n": n, "mass": mass, "x_mean": x_mean,
               "x_m2": wt @ (x - x_mean) ** 2 if n else np.zeros(x.shape[1]),
               "x_ones": np.all(x == 1.0, axis=0), "y_sum": float(wt @ y),
               "log_weights": 0.0 if w is None else float(np.log(w).sum()), "z": []}
        for z in zs:
            z_mean = z.mean(axis=0) if n else np.zeros(z.shape[1])
            out["z"].append({"mean": z_mean, "m2": ((z - z_mean) ** 2).sum(axis=0),
                             "sq": (z * z).sum(axis=0), "ones": np.all(z == 1.0, axis=0)})
        return out

    # pass 2: the Gram matrix of the conditioned design, and its products with y
    def gram(self, part, x_mean, x_scale, y_shift):
        y, x, _, _, w, _ = self.rows(part)
        xs, yc = _conditioned(x, y, w, x_mean, x_scale, y_shift)
        return {"gram": xs.T @ xs, "xty": xs.T @ yc, "yy": float(yc @ yc)}

    # pass 3: the products of the criterion
    def products(self, part, x_mean, x_scale, y_shift, beta_ols, t_maps, z_intercepts):
        import dataclasses

        from .multi_products import row_products

        y, x, zs, codes, w, _ = self.rows(part)
        if len(y) == 0:
            return None
        xs, yc = _conditioned(x, y, w, x_mean, x_scale, y_shift)
        yr = yc - xs @ beta_ols
        root = None if w is None else np.sqrt(w)
        zc, grouped, terms = [], [], []
        for term, z, c, t in zip(self.terms, zs, codes, t_maps):
            zt = z if t is None else z @ t
            if root is not None:
                zt = zt * root[:, None]
            zc.append(np.ascontiguousarray(zt))
            _, offsets, order = _core_group_blocks(c, term.n_levels)
            grouped.append((order, offsets))
            terms.append(dataclasses.replace(term, codes=c, z=z))
        intercepts = [t.q == 1 and bool(i[0]) for t, i in zip(self.terms, z_intercepts)]
        return row_products(terms, grouped, np.ascontiguousarray(xs), zc, yr, intercepts,
                            w is not None)


def _core_group_blocks(codes, n_levels):
    from . import _core

    return _core.group_blocks(codes, n_levels)


def _conditioned(x, y, w, x_mean, x_scale, y_shift):
    xs = (x - x_mean) * x_scale
    yc = y - y_shift
    if w is not None:
        root = np.sqrt(w)
        xs = xs * root[:, None]
        yc = yc * root
    return xs, yc


def _merge_moments(a, b):
    """Pass 1's statistics of two chunks (Chan et al.'s update for the spreads)."""
    def spread(ma, mb, mean_a, mean_b, na, nb):
        if na == 0 or nb == 0:
            return ma + mb
        d = mean_b - mean_a
        return ma + mb + d * d * na * nb / (na + nb)

    def mean(mean_a, mean_b, na, nb):
        return (na * mean_a + nb * mean_b) / (na + nb) if na + nb else mean_a

    out = {"n": a["n"] + b["n"], "mass": a["mass"] + b["mass"],
           "x_mean": mean(a["x_mean"], b["x_mean"], a["mass"], b["mass"]),
           "x_m2": spread(a["x_m2"], b["x_m2"], a["x_mean"], b["x_mean"], a["mass"],
                          b["mass"]),
           "x_ones": a["x_ones"] & b["x_ones"], "y_sum": a["y_sum"] + b["y_sum"],
           "log_weights": a["log_weights"] + b["log_weights"], "z": []}
    for za, zb in zip(a["z"], b["z"]):
        out["z"].append({"mean": mean(za["mean"], zb["mean"], a["n"], b["n"]),
                         "m2": spread(za["m2"], zb["m2"], za["mean"], zb["mean"], a["n"],
                                      b["n"]),
                         "sq": za["sq"] + zb["sq"], "ones": za["ones"] & zb["ones"]})
    return out


def _merge_sums(a, b):
    return {k: a[k] + b[k] for k in a}


def _merge_products(a, b):
    from .multi_products import merge_products

    if a is None or b is None:
        return b if a is None else a
    return merge_products(a, b)


def _reduce(dask_df, function, merge, *args):
    """function(partition, *args) for every partition, merged in a tree; computed."""
    import dask

    level = [dask.delayed(function)(p, *args) for p in dask_df.to_delayed()]
    merge = dask.delayed(merge)
    while len(level) > 1:
        level = [merge(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    (out,) = _compute(level[0])
    return out


def multi_model_from_dask(cls, dask_df, parsed, formula, missing="none", weights=None,
                          offset=None):
    """A several-term model (`lmm.several_factors.MultiTermModel`) whose products are
    reduced from a Dask DataFrame in three passes: the conditioning's moments (and
    every term's levels), the conditioned design's Gram matrix (the least-squares
    start of the response), then the per-level and level-pair products, each merged
    in a tree on the cluster (chunks conditioned alike add).  `cls`: the MixedLM
    class, whose ``from_lmer`` builds the template (a MultiTermModel)."""
    import dataclasses

    from ._threads import blas_threads
    from .covariance import Reparametrization
    from .multi_products import check_fixed_rank

    groups = list(parsed.groups)
    group_cols = sorted({c for g in groups for c in g.split(":")})
    for c in group_cols:
        if c not in dask_df.columns:
            raise ValueError(f"grouping factor column {c!r} is not in the data")
    response = parsed.response
    if response not in dask_df.columns:
        raise ValueError(f"the response {response!r} is not a column of the data (a Dask "
                         "frame's response must be a column)")
    used = _used_columns(dask_df, [formula] + group_cols)
    used += [c for c in (weights, offset) if c is not None and c not in used]
    # pass 0: the levels of the categorical columns and of every grouping factor
    levels = _discover(dask_df, [c for c in used if c not in group_cols], None)
    found = _reduce(dask_df, _group_values, _union, groups, missing)
    labels = {g: _sorted_labels(v, ":" not in g) for g, v in zip(groups, found)}
    # the template: the formula's designs, names and covariance structures, on a
    # skeleton with every categorical level and three placeholder values of each
    # grouping column (the terms' levels are the data's, set below)
    import functools

    meta = dask_df._meta[used]
    n_rows = max(8 * max([len(v) for v in levels.values()], default=1), 400)
    moments = _skeleton_moments(dask_df, [formula], True, used, missing)
    skeleton = _group_placeholders(meta, group_cols, _skeleton(
        meta.drop(columns=group_cols), levels, None, n_rows, moments=moments))
    holder = _Template(functools.partial(_build_template, cls, skeleton, formula))
    template = holder.model
    if not hasattr(template, "terms") or template.design_info is None:
        raise NotImplementedError("this formula's design cannot be rebuilt partition by "
                                  "partition")
    by_group = {t.group: t for t in template.terms}
    # (the terms travel to the workers without the designs, which the template holds)
    terms = [dataclasses.replace(by_group[g], codes=np.zeros(0, dtype=np.intp),
                                 labels=labels[g], z=np.zeros((0, by_group[g].q)),
                                 designs=None)
             for g in groups]
    terms = sorted(terms, key=lambda t: -t.n_levels)        # (lme4's order, stable)
    source = MultiDaskSource(dask_df, holder, terms, response, weights, offset,
                             "drop" if missing == "drop" else "none", used)
    # pass 1: the conditioning (as MultiTermModel's _condition_* do from rows)
    mom = _reduce(dask_df, source.moments, _merge_moments)
    n, p = mom["n"], len(template.exog_names)
    if n == 0:
        raise ValueError("the data have no rows")
    for t in terms:
        if t.n_levels < 2:
            raise ValueError(f"the grouping factor {t.group!r} has only one level")
        if t.n_levels * t.q >= n:
            raise ValueError(f"the term for {t.group!r} has {t.n_levels * t.q} random effects "
                             f"for {n} observations: unidentifiable with the residual")
    ones = np.flatnonzero(mom["x_ones"])
    x_intercept = int(ones[0]) if ones.size else None
    x_mean = np.zeros(p)
    y_shift = 0.0
    if x_intercept is not None:
        x_mean = mom["x_mean"].copy()
        x_mean[x_intercept] = 0.0
        y_shift = mom["y_sum"] / mom["mass"]
    # the weighted sum of squares of x - x_mean, from the spread about the mean
    x_ss = mom["x_m2"] + mom["mass"] * (mom["x_mean"] - x_mean) ** 2
    x_scale = 1.0 / np.sqrt(np.where(x_ss > 0, x_ss / mom["mass"], 1.0))
    reparams, t_maps, z_intercepts = [], [], []
    for t, zm in zip(terms, mom["z"]):
        col_sd = np.sqrt(zm["m2"] / n)
        col_rms = np.sqrt(zm["sq"] / n)
        reparam = Reparametrization(t.structure, zm["mean"], col_sd, col_rms, zm["ones"])
        reparams.append(reparam)
        z_intercepts.append(zm["ones"])
        t_maps.append(None if np.array_equal(reparam.t, np.eye(t.q)) else reparam.t)
    # pass 2: the Gram matrix and the least-squares start
    g = _reduce(dask_df, source.gram, _merge_sums, x_mean, x_scale, y_shift)
    check_fixed_rank(g["gram"], template.exog_names)
    beta_ols = np.linalg.solve(g["gram"], g["xty"]) if p else np.zeros(0)
    # pass 3: the criterion's products
    products = _reduce(dask_df, source.products, _merge_products, x_mean, x_scale, y_shift,
                       beta_ols, t_maps, z_intercepts)
    md = object.__new__(type(template))
    md.__dict__.update(
        weights=None, offset=None, sum_log_weights=mom["log_weights"],
        offset_terms=(offset,) if offset is not None else None, endog=None, exog=None,
        exog_names=list(template.exog_names), endog_names=template.endog_names,
        formula=template.formula, lmer_formula=template.lmer_formula,
        design_info=template.design_info, vc_names=[], nobs=n, k_fe=p, row_labels=None,
        terms=[dataclasses.replace(t, designs=by_group[t.group].designs) for t in terms],
        _x_intercept=x_intercept, _x_mean=x_mean, _y_shift=y_shift,
        x_scale=x_scale, _xs=None, _gram=g["gram"], beta_ols=beta_ols, _yr=None,
        _y_sum_of_squares=g["yy"], _reparams=reparams, _z_conditioned=None,
        _z_intercepts=z_intercepts, _grouped=None, dask_source=source)
    with blas_threads():
        md.assemble(products)
    return md
