"""MixedLM: the model's data and design.

Validates the inputs, codes the groups, sorts the rows into contiguous group
blocks (through an index, without copying the data) and computes the
cross-products once; `fit` hands them to the optimizer (optimize.py) and wraps
the optimum in a results object (results.py).
"""

import math
import warnings
from functools import cached_property

import numpy as np
import pandas as pd

from . import _core, many_responses
from ._arguments import IGNORED, NOT_YET, check_keywords, warn_ignored
from .covariance import CovarianceStructure, Reparametrization, default_structure
from .dataframes import to_pandas
from .deviance import CrossProducts, FixedEffectsCentring, ProfiledDeviance
from .exceptions import ConvergenceWarning, IllConditionedWarning, SingularFitWarning
from .formula import design as formula_design
from .formula import safe as formula_safe
from .formula.lme4 import parse as parse_lmer
from .optimize import minimize_deviance
from .params import MixedLMParams
from .prior_weights import row_vector, rows_to_drop
from .results import MixedLMResults
from .several_factors import MultiTermModel
from .statistics import GroupedStatistics


def _names_of(obj, default_prefix, k):
    if isinstance(obj, pd.DataFrame):
        return [str(c) for c in obj.columns]
    if isinstance(obj, pd.Series):
        return [str(obj.name) if obj.name is not None else f"{default_prefix}1"]
    return [f"{default_prefix}{i + 1}" for i in range(k)]


def _as_float_matrix(obj, what, names):
    """A 2-D float64 array of `obj`, with a clear error for non-numeric columns."""
    if isinstance(obj, pd.Series):
        obj = obj.to_frame()
    if isinstance(obj, pd.DataFrame):
        bad = [str(c) for c in obj.columns if not pd.api.types.is_numeric_dtype(obj[c])]
        if bad:
            raise TypeError(f"{what} has non-numeric columns: {bad}")
        arr = obj.to_numpy(dtype=float, na_value=np.nan)
    else:
        arr = np.asarray(obj)
        if arr.dtype.kind not in "biuf":
            # (numbers written as strings are refused, not read: "1e3" and
            # "1,000" would silently differ)
            if arr.dtype.kind in "SU" or (arr.dtype.kind == "O" and any(
                    isinstance(v, str | bytes) for v in arr.ravel().tolist())):
                raise TypeError(f"{what} holds strings (dtype {arr.dtype}); convert the "
                                "columns to numbers (or code factors as indicator columns)")
            try:
                arr = arr.astype(float)
            except (TypeError, ValueError):
                raise TypeError(f"{what} must be numeric, got dtype {arr.dtype}") from None
        arr = arr.astype(float, copy=False)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 1- or 2-dimensional, got {arr.ndim} dimensions")
    # The model keeps its own copy: the caller editing its arrays in place
    # afterwards must change neither later fits nor earlier results.
    if arr is obj or not arr.flags.owndata or not arr.flags.c_contiguous:
        arr = np.array(arr, dtype=float, order="C")
    return arr


def _array_exog_names(arr):
    """statsmodels' names for array columns: 'const' for a column of ones, x1, x2, ..."""
    k = 1 if arr.ndim < 2 else arr.shape[1]
    const = None
    if arr.ndim == 2 and arr.dtype.kind in "biuf":
        ones = [j for j in range(k) if np.all(arr[:, j] == 1)]
        const = ones[0] if ones else None
    names, i = [], 1
    for j in range(k):
        if j == const:
            names.append("const")
        else:
            names.append(f"x{i}")
            i += 1
    return names


def _dependent_columns(gram, names, clear=None):
    """Names of columns involved in a linear dependence, or [] if full rank.

    `clear`: the Gershgorin test below, already made by `_core.model_products`
    (its x_clear / z_clear)."""
    k = gram.shape[0]
    if clear is not None:
        if clear and k <= 8:
            return []
    elif k <= 8:
        # Gershgorin: every eigenvalue of the correlation matrix is at least
        # min_i (c_ii - sum_j!=i |c_ij|); far above the threshold below (at most
        # 1e-10 k), the eigenvalues need not be computed.  (Plain floats: numpy's
        # per-call overhead dominates at this size.)
        # (one loop, no generators: this runs twice per model)
        g = gram.tolist()
        d = []
        for i in range(k):
            d.append(math.sqrt(g[i][i]) if g[i][i] > 0 else 0.0)
        if all(d):
            bound = math.inf
            for i in range(k):
                row, di = g[i], d[i]
                off = 0
                for j in range(k):
                    off += abs(row[j] / (di * d[j]))
                bound = min(bound, 2.0 * abs(row[i] / (di * di)) - off)
            if bound > 1e-6:
                return []
    d = np.sqrt(np.diag(gram))
    if np.any(d == 0):
        return [names[i] for i in np.flatnonzero(d == 0)]
    corr = gram / np.outer(d, d)
    w, v = np.linalg.eigh(corr)
    if w[0] > 1e-10 * max(1.0, w[-1]):
        return []
    vec = v[:, 0]
    return [names[i] for i in np.flatnonzero(np.abs(vec) > 1e-6)]


_INT64_MAX = int(np.iinfo(np.int64).max)


def _factorize_groups(groups):
    """Integer codes (intp) and sorted distinct labels of the groups (pd.factorize's).

    Integer labels spanning a range not much wider than the number of rows
    (or 65,536) are coded through a table of that range (no hashing);
    anything else goes through pandas.
    """
    n = len(groups)
    dt = groups.dtype
    # (uint64 labels above int64's range go through pandas; the dtype is read
    # through kind and itemsize: comparing it with np.uint64 costs more)
    if dt.kind in "iu" and n and (dt.kind == "i" or dt.itemsize < 8 or
                                  groups.max() <= _INT64_MAX):
        coded = _core.code_integer_groups(
            groups if dt.kind == "i" and dt.itemsize == 8 else groups.astype(np.int64),
            n + 65536)
        if coded is not None:
            codes, labels = coded
            return codes, labels.astype(dt, copy=False)
    try:
        codes, labels = pd.factorize(groups, sort=True)
    except TypeError:
        codes, labels = pd.factorize(groups.astype(str), sort=True)
    return codes.astype(np.intp, copy=False), labels


def _coded_products(y, x, z, groups, weights=None):
    """Group codes and labels (`_factorize_groups`), and `_core.model_products`
    of the rows (weighted by `weights`, if given); int64 labels of a narrow
    range are coded in the same compiled call."""
    dt = groups.dtype
    if dt.kind == "i" and dt.itemsize == 8 and len(groups):
        pr = _core.integer_model_products(x, z, y, groups, len(groups) + 65536, weights)
        if pr is not None:
            return pr["codes"], pr["labels"].astype(dt, copy=False), pr
    codes, labels = _factorize_groups(groups)
    return codes, labels, _core.model_products(x, z, y, codes, len(labels), weights)


def _identity(k):
    """np.eye(k), without its Python-level wrapper."""
    out = np.zeros((k, k))
    for j in range(k):
        out[j, j] = 1.0
    return out


# MixedLM.fit's keywords (for the suggestion when one is misspelt)
_FIT_KEYWORDS = ("start_params", "reml", "niter_sa", "do_cg", "fe_pen", "cov_pen", "free",
                 "full_output", "method", "maxiter")


class MixedLM:
    """Linear mixed model with one grouping factor (statsmodels' MixedLM API).

    y = X beta + Z b + e, with b_g ~ N(0, cov_re) independently per group and
    e ~ N(0, scale I).

    Parameters
    ----------
    endog : array_like, (n,)
        The response.
    exog : array_like, (n, p)
        Fixed-effects design (include an intercept column yourself, as in
        statsmodels).
    groups : array_like, (n,)
        Group labels (any hashable values).
    exog_re : array_like, (n, q), optional
        Random-effects design; a random intercept if omitted.
    exog_vc : not supported yet (variance components)
    use_sqrt : bool
        Packed `start_params` hold the Cholesky factor of cov_re/scale
        (statsmodels' default).
    missing : {'none', 'drop', 'raise'}
        'drop' removes rows with NaN in any used variable; otherwise NaN is an
        error.
    weights : array_like, (n,), optional
        Prior weights (lme4's and MixedModels.jl's meaning): row i has
        residual variance scale / weights[i].  Zero drops the row; negative
        or infinite weights are errors.  The log-likelihood is lme4's (it
        includes sum(log(weights)) / 2).
    offset : array_like, (n,), optional
        A known term added to the linear predictor (the model is fitted to
        endog - offset; fitted values include it).

    Examples
    --------
    >>> import lmm
    >>> data = lmm.datasets.get_rdataset("Sitka", "MASS").data
    >>> data["Intercept"] = 1
    >>> exog = data[["Intercept", "Time"]]
    >>> md = lmm.MixedLM(data["size"], exog, groups=data["tree"], exog_re=exog["Intercept"])
    >>> round(md.fit().llf, 4)
    -82.3884
    """

    def __init__(self, endog, exog, groups, exog_re=None, exog_vc=None, use_sqrt=True,
                 missing="none", weights=None, offset=None, **kwargs):
        if exog_vc is not None:
            raise NotImplementedError(
                "variance components (exog_vc / vc_formula) are not supported yet"
            )
        if missing not in ("none", "drop", "raise"):
            raise ValueError(f"missing must be 'none', 'drop' or 'raise', got {missing!r}")
        self.use_sqrt = bool(use_sqrt)
        self.formula = kwargs.pop("formula", None)
        self.design_info = kwargs.pop("design_info", None)
        # (the offset's columns or expressions, when it was given by name: predictions
        # on new data read it from them)
        self.offset_terms = kwargs.pop("offset_terms", None)
        self.design_info_re = kwargs.pop("design_info_re", None)
        group_name = kwargs.pop("group_name", None)
        if group_name is None:
            group_name = str(groups.name) if isinstance(groups, pd.Series) and \
                groups.name is not None else "Group"
            re_default_name = "Group"
        else:
            re_default_name = group_name
        self.group_name = group_name
        exog_re_names = kwargs.pop("exog_re_names", None)
        exog_names = kwargs.pop("exog_names", None)
        endog_names = kwargs.pop("endog_names", None)
        row_labels = kwargs.pop("row_labels", None)
        # (formula fast path: endog, exog and exog_re are float64 arrays made by
        # the formula code, 1-D and C-ordered 2-D with the same number of rows
        # as the 1-D ndarray groups, and every name is given: nothing to convert)
        checked = kwargs.pop("_checked", False)
        if kwargs:
            raise TypeError(f"unexpected keyword arguments: {sorted(kwargs)}")
        if checked:
            y, x, groups_arr = endog, exog, groups
            n = len(y)
            self.endog_names = endog_names
            self.exog_names = list(exog_names)
        else:
            y, x, groups_arr, row_labels = self._convert(endog, exog, groups, endog_names,
                                                         exog_names, row_labels)
            n = len(y)
        if exog_re is None:
            z = np.empty((n, 1))
            z[...] = 1.0            # (np.ones, without its Python-level wrapper)
            re_names = [re_default_name]
        elif checked:
            z = exog_re
            re_names = None
        else:
            k_re = 1 if np.ndim(exog_re) == 1 else np.shape(exog_re)[1]
            re_names = _names_of(exog_re, "Z", k_re)
            z = _as_float_matrix(exog_re, "exog_re", re_names)
        if exog_re_names is not None:
            re_names = list(exog_re_names)
        if not checked:
            for what, arr in (("exog", x), ("exog_re", z), ("groups", groups_arr)):
                if len(arr) != n:
                    raise ValueError(
                        f"{what} has {len(arr)} rows but endog has {n}: they must have the "
                        "same length"
                    )
        if weights is not None:
            weights = row_vector(weights, "weights", n)
        if offset is not None:
            offset = row_vector(offset, "offset", n)
        self._setup(y, x, z, groups_arr, re_names, row_labels, missing,
                    weights, offset)

    def _convert(self, endog, exog, groups, endog_names, exog_names, row_labels):
        """endog, exog and groups as arrays (y 1-D, X 2-D float64), their names set,
        and the row labels (the response's index if not given)."""
        if endog is None or exog is None or groups is None:
            raise ValueError("endog, exog and groups are required")
        if isinstance(endog, pd.DataFrame):
            if endog.shape[1] != 1:
                raise ValueError("endog must be a single column")
            endog = endog.iloc[:, 0]
        self.endog_names = str(endog.name) if isinstance(endog, pd.Series) and \
            endog.name is not None else "y"
        if endog_names is not None:
            self.endog_names = endog_names
        if row_labels is None:
            row_labels = endog.index if isinstance(endog, pd.Series) else None
        # pandas inputs are rows with labels: taken by position only when their
        # labels agree (statsmodels' rule), never silently misaligned
        if isinstance(endog, pd.Series):
            for what, other in (("exog", exog), ("groups", groups)):
                if isinstance(other, pd.Series | pd.DataFrame) and \
                        len(other) == len(endog) and not other.index.equals(endog.index):
                    raise ValueError(f"the indices for endog and {what} are not aligned: "
                                     "pass arrays, or objects with the same index")
        if isinstance(endog, pd.Series) and not pd.api.types.is_numeric_dtype(endog):
            raise TypeError(f"endog ({self.endog_names}) must be numeric, got {endog.dtype}")
        y = _as_float_matrix(endog, f"endog ({self.endog_names})", None)
        if y.shape[1] != 1:
            raise ValueError(f"endog must be one-dimensional, got shape {np.shape(endog)}")
        y = y[:, 0]

        if exog_names is not None:
            self.exog_names = list(exog_names)
        elif isinstance(exog, pd.DataFrame | pd.Series):
            self.exog_names = _names_of(exog, "x", 1)
        else:
            self.exog_names = _array_exog_names(np.asarray(exog))
        x = _as_float_matrix(exog, "exog", self.exog_names)
        # (a copy: see _as_float_matrix)
        groups_arr = groups.to_numpy(copy=True) if isinstance(groups, pd.Series | pd.Index) \
            else np.array(groups)
        if groups_arr.ndim != 1:
            raise ValueError(f"groups must be one-dimensional, got shape {groups_arr.shape}")
        return y, x, groups_arr, row_labels

    def _setup(self, y, x, z, groups_arr, re_names, row_labels, missing,
               weights=None, offset=None):
        """Missing values, group blocks, cross-products and the rank checks.

        With `weights` the products are weighted; with `offset` they are those
        of endog - offset (the response the model is fitted to)."""
        n = len(y)
        y_fit = y
        if weights is not None or offset is not None:
            drop = rows_to_drop(weights, offset, missing)
            if drop is not None:
                keep = ~drop
                y, x, z, groups_arr = y[keep], x[keep], z[keep], groups_arr[keep]
                weights = None if weights is None else weights[keep]
                offset = None if offset is None else offset[keep]
                if row_labels is not None:
                    row_labels = row_labels[keep]
                n = len(y)
            y_fit = y if offset is None else y - offset
        # -- missing values ---------------------------------------------------
        # Optimistically, the groups are coded and the cross-products made
        # first: y'y + tr X'X + tr Z'Z is finite only if every value is (the
        # per-row masks below are made only when it is not).
        # (`_core.model_products` returns the blocks, the cross-products, whether
        # the data are all finite (a sum of squares that overflows counts as
        # not finite, and the rows are then checked) and which columns of Z
        # are ones)
        group_missing = None if groups_arr.dtype.kind in "biu" else pd.isna(groups_arr)
        if group_missing is not None and not group_missing.any():
            group_missing = None
        blocks = None
        if group_missing is None:
            blocks = _coded_products(y_fit, x, z, groups_arr, weights)
            if not blocks[-1]["finite"]:
                blocks = None
        if blocks is not None:
            bad_rows = None
        else:
            bad_rows = ~np.isfinite(y) | ~np.isfinite(x).all(1) | ~np.isfinite(z).all(1)
            inf_rows = np.isinf(y) | np.isinf(x).any(1) | np.isinf(z).any(1)
            if inf_rows.any():
                raise ValueError(
                    f"{self._where_bad(np.isinf, y, x, z, re_names)} contain infinite values"
                )
            if not bad_rows.any():
                bad_rows = None
        if bad_rows is not None or group_missing is not None:
            if bad_rows is None:
                bad_rows = np.zeros(n, dtype=bool)
            if group_missing is None:
                group_missing = np.zeros(n, dtype=bool)
            if missing == "drop":
                keep = ~(bad_rows | group_missing)
                y, x, z, groups_arr = y[keep], x[keep], z[keep], groups_arr[keep]
                y_fit = y_fit[keep] if y_fit is not y else y
                weights = None if weights is None else weights[keep]
                offset = None if offset is None else offset[keep]
                if row_labels is not None:
                    row_labels = row_labels[keep]
                n = len(y)
            else:
                where = self._where_bad(np.isnan, y, x, z, re_names)
                if group_missing.any():
                    where = (where + ", " if where else "") + "groups"
                raise ValueError(
                    f"missing values (NaN) in {where}; pass missing='drop' to drop those rows"
                )
        if row_labels is None:
            row_labels = pd.RangeIndex(n)

        self.endog, self.exog, self.exog_re = y, x, z
        self.weights, self.offset = weights, offset
        self.row_labels = row_labels

        # -- groups: code, sort into contiguous blocks ---------------------------
        if blocks is None:
            blocks = _coded_products(y_fit, x, z, groups_arr, weights)
        codes, labels, pr = blocks
        self.group_codes = codes
        self.groups = groups_arr
        self.group_offsets, self.row_order = pr["offsets"], pr["order"]
        log_weights = 0.0 if weights is None else float(np.log(weights).sum())
        self.re_blocks = None
        self.lmer_formula = None
        self.re_term_columns = None
        self.set_statistics(pr, labels, re_names, n, x.shape[1], z.shape[1], log_weights,
                           missing)

    def set_statistics(self, pr, labels, re_names, n, k_fe, k_re, log_weights, missing):
        """Set the model's statistics, shapes and checks (for advanced use).

        Parameters
        ----------
        pr : dict
            As `_core.model_products` returns it (the centred products by group, the
            column sums, the centre, which columns are ones), or the same made by
            merging chunks' statistics (`lmm.dask_frames`).
        labels : the sorted group labels
        re_names : the random effects' names
        n, k_fe, k_re : rows, fixed effects, random effects per group
        log_weights : float
            The sum of the logs of the prior weights (0 without).
        missing : str
            Only for the wording of the errors.

        Examples
        --------
        >>> import lmm
        >>> d = lmm.datasets.get_rdataset("sleepstudy", "lme4").data
        >>> md = lmm.MixedLM.from_lmer("Reaction ~ Days + (Days | Subject)", d)
        >>> md.n_groups, md.nobs
        (18, 180)
        """
        self.exog_re_names = re_names
        self.nobs = self.n_totobs = n
        self.k_fe = k_fe
        self.k_re = k_re
        self.k_re2 = self.k_re * (self.k_re + 1) // 2
        self.k_vc = 0
        self.reml = True
        self._group_label_values = labels
        self.n_groups = len(labels)
        if n == 0:
            raise ValueError("the data have no rows" + (
                " left after dropping those with missing values" if missing == "drop" else ""))
        if self.n_groups < 2:
            raise ValueError(
                f"a mixed model needs at least two groups; groups has {self.n_groups} "
                "distinct value(s)"
            )
        if n <= self.n_groups * self.k_re:
            raise ValueError(
                f"the number of observations ({n}) must exceed the number of random "
                f"effects ({self.n_groups} groups x {self.k_re}); the random effects would "
                "be unidentifiable with the residual"
            )
        self.group_sizes = pr["sizes"]
        # The products are those of the centred design (`_core.model_products`):
        # X and y centred when X has an intercept, Z's columns when Z has one.
        ztz, xtx, ztz_all = pr["ztz"], pr["xtx"], pr["ztz_all"]
        self._centred_products = CrossProducts(ztz, pr["ztx"], pr["zty"], xtx, pr["xty"],
                                               float(pr["yty"]), n)
        self._column_sums = (pr["x_sum"], pr["z_sum"], pr["y_sum"], pr["y_shift"])
        x_icpt = pr["x_intercept"]
        self.fe_centring = None if x_icpt < 0 else \
            FixedEffectsCentring(x_icpt, pr["x_shift"], pr["y_shift"])
        self.z_intercept, self._z_shift = pr["z_intercept"], pr["z_shift"]
        # (weighted: each group's sum of weights, their total, and the
        # likelihood's sum(log(weights)) term; unweighted, the row counts)
        self._weight_sums = pr["weight_sums"]
        self._weight_total = n if pr["weight_sums"] is None else \
            float(pr["weight_sums"].sum())
        self._log_weights = log_weights

        dep = _dependent_columns(xtx, self.exog_names, pr["x_clear"])
        if dep:
            raise ValueError(
                "the fixed-effects design (exog) is rank deficient: columns "
                f"{dep} are linearly dependent (or zero)"
            )
        self._ztz_all = ztz_all
        dep = _dependent_columns(ztz_all, re_names, pr["z_clear"])
        if dep:
            raise ValueError(
                "the random-effects design (exog_re) is rank deficient: columns "
                f"{dep} are linearly dependent (or zero)"
            )
        self.re_ones = pr["ones"]
        self._deviances = {}

    @cached_property
    def statistics(self):
        """The model's statistics as `lmm.statistics.GroupedStatistics` (the centred
        products with the per-group column sums; mergeable with other chunks')."""
        st = self._centred_products
        x_sum, z_sum, y_sum, y_shift = self._column_sums
        x_shift = np.zeros(self.k_fe) if self.fe_centring is None else \
            self.fe_centring.x_shift
        return GroupedStatistics(self.group_sizes, x_shift, self._z_shift, y_shift, x_sum,
                                 z_sum, y_sum, st.ztz, st.ztx, st.zty, st.xtx, st.xty, st.yty,
                                 self._weight_sums)

    @cached_property
    def cross_products(self):
        """Cross-products of the user's design (`CrossProducts`), made from the
        centred ones the model keeps (an offset in the data makes these lose
        digits; the fit does not use them).  With prior weights w they are
        weighted (Z'WZ, Z'WX, ...), and with an offset o they are those of
        endog - o."""
        st = self._centred_products
        z_map = x_map = y_from_x = None
        if self.z_intercept >= 0:
            z_map = np.eye(self.k_re)
            z_map[self.z_intercept] += self._z_shift
        c = self.fe_centring
        if c is not None:
            x_map = np.eye(self.k_fe)
            x_map[c.intercept] += c.x_shift
            y_from_x = np.zeros(self.k_fe)
            y_from_x[c.intercept] = c.y_shift
        return st.mapped(z_map, x_map, y_from_x)

    @cached_property
    def group_labels(self):
        """The distinct group labels, sorted (list; the random effects' order)."""
        return list(self._group_label_values)

    @staticmethod
    def _where_bad(test, y, x, z, re_names):
        parts = []
        if test(y).any():
            parts.append("endog")
        if test(x).any():
            parts.append("exog")
        if test(z).any():
            parts.append("exog_re")
        return ", ".join(parts)

    # -- formula constructor --------------------------------------------------
    @classmethod
    def from_formula(cls, formula, data, re_formula=None, vc_formula=None, subset=None,
                     use_sparse=False, missing="none", *args, **kwargs):
        """Create a model from a formula and a DataFrame (statsmodels' signature).

        Parameters
        ----------
        formula : str
            Fixed effects, e.g. ``"Weight ~ Time"`` (patsy syntax).
        data : pandas.DataFrame
        re_formula : str, optional
            Random effects, e.g. ``"~Time"``; a random intercept if omitted
            (and none when `vc_formula` is given, as in statsmodels).
        vc_formula : dict, optional
            Variance components within groups, statsmodels' way:
            ``{"cask": "0 + C(cask)"}`` gives each level of cask within each
            group an effect with a common variance, lme4's ``(1 | group:cask)``.
            With every row in one group (statsmodels' idiom for crossed
            effects) the components are crossed factors, lme4's
            ``(1 | a) + (1 | b)``.  Such models are fitted by the
            several-factor engine (lmm.several_factors).
        groups : str or array_like (keyword, required)
            A column name of `data` or the group labels.
        missing : {'none', 'drop'}
        weights, offset : str or array_like (keywords), optional
            Prior weights and an offset (see `MixedLM`): a column name of
            `data` or an array of its length; ``offset(x)`` terms in the
            formula add to the offset.  Not with `vc_formula`.

        Examples
        --------
        >>> import lmm
        >>> data = lmm.datasets.get_rdataset("dietox", "geepack").data
        >>> md = lmm.MixedLM.from_formula("Weight ~ Time", data, groups=data["Pig"],
        ...                               re_formula="~Time")
        """
        if not isinstance(data, pd.DataFrame):       # (no call for pandas data)
            from .dask_frames import is_dask_frame, model_from_dask

            if is_dask_frame(data):
                if args:
                    raise TypeError("unexpected positional arguments after missing")
                return model_from_dask(cls, data, formula=formula, re_formula=re_formula,
                                       vc_formula=vc_formula, subset=subset,
                                       missing=missing, **kwargs)
            data = to_pandas(data)
        groups = kwargs.get("groups")
        if groups is not None and type(groups).__module__.startswith("polars"):
            kwargs["groups"] = to_pandas(groups)
        if "groups" not in kwargs:
            raise TypeError("'groups' is a required keyword argument of mixedlm / from_formula")
        groups = kwargs.pop("groups")
        for name in kwargs:
            if name in NOT_YET:
                check_keywords("mixedlm", {name: kwargs[name]})
        if vc_formula:
            for name in ("weights", "offset"):
                values = kwargs.pop(name, None)
                if values is not None:
                    # (resolved on all the rows: `subset` applies to them as to the data)
                    values = formula_design.row_values(values, data, name)
                    if subset is not None:
                        values = values.loc[subset]
                    kwargs.setdefault("prior", {})[name] = values.to_numpy()
            prior = kwargs.pop("prior", {})
            if subset is not None:
                data = data.loc[subset]
            extra = {"eval_env": kwargs.pop("eval_env")} if "eval_env" in kwargs else {}
            if kwargs:
                check_keywords("mixedlm", kwargs)
            return formula_design.multi_from_vc_formula(
                MultiTermModel, formula, data, groups, re_formula, vc_formula, missing=missing,
                **extra, **prior)
        if use_sparse:
            warn_ignored("use_sparse", "from_formula")
        if args:
            raise TypeError(f"from_formula() takes formula, data, re_formula, vc_formula, "
                            f"subset, use_sparse and missing by position; got {len(args)} "
                            "more positional arguments")
        return formula_design.model_from_formula(cls, formula, data, groups,
                                                 re_formula=re_formula, subset=subset,
                                                 missing=missing, **kwargs)

    # -- fitting ------------------------------------------------------------
    def set_lmer_terms(self, formula, parsed, term_columns, blocks):
        """Record the lme4 formula the model was built from (`lmm.formula.design`):
        its text, the parsed formula, each bar term's columns of exog_re (for
        predict's re_form) and its blocks of cov_re."""
        self.formula = formula
        self.lmer_formula = parsed
        self.re_term_columns = term_columns
        self.set_re_blocks(blocks)

    def set_re_blocks(self, blocks):
        """Make cov_re block-diagonal by default: effects in different blocks uncorrelated.

        Used by lme4-syntax models, where each bar term is a block.
        """
        self.re_blocks = CovarianceStructure(self.k_re, blocks).blocks

    def covariance_structure(self, free=None):
        """The CovarianceStructure of cov_re: the model's blocks (lme4's bar terms),
        or those `free` (statsmodels' argument of `fit`) leaves free."""
        if free is None:
            return default_structure(self.k_re, self.re_blocks)
        if isinstance(free, MixedLMParams):
            if np.any(np.asarray(free.fe_params) == 0):
                raise NotImplementedError("fixing fixed effects through `free` is not supported")
            cov = free.cov_re
        else:
            free_p = MixedLMParams.from_packed(free, self.k_fe, self.k_re, use_sqrt=False,
                                               has_fe=len(free) > self.k_re2)
            cov = free_p.cov_re
        if np.shape(cov) != (self.k_re, self.k_re):
            raise ValueError(
                f"free.cov_re must be {self.k_re} x {self.k_re}, got shape {np.shape(cov)}"
            )
        return CovarianceStructure.from_free(cov)

    def _deviance(self, reml, structure):
        """The ProfiledDeviance of `structure` (cached per reml and structure).

        From the centred products: Z's columns stay centred where the
        structure allows it (in an unstructured block with the intercept,
        whose covariance absorbs the shift exactly); others are shifted back
        (a diagonal model is not invariant to centring: its conditioning in
        the user's units is the model's own).
        """
        key = (bool(reml), structure.blocks)
        if key not in self._deviances:
            ztz_all = self._ztz_all
            z_centring = None
            st = self._centred_products
            j0 = self.z_intercept
            # (plain floats and loops: numpy's calls on q-vectors cost more)
            z_shift = self._z_shift.tolist() if j0 >= 0 else []
            if any(z_shift):
                keep = [j0]
                for members in structure.blocks:
                    if j0 in members and len(members) > 1:
                        keep = members
                shift_back = z_shift[:]
                kept = False
                for j in keep:
                    kept = kept or shift_back[j] != 0.0
                    shift_back[j] = 0.0
                if any(shift_back):
                    self._warn_uncentred(shift_back)
                    u = _identity(self.k_re)
                    u[j0] += shift_back
                    st = st.mapped(z_map=u)
                    ztz_all = u.T @ ztz_all @ u
                if kept:
                    z_centring = _identity(self.k_re)
                    for j in keep:
                        z_centring[j0, j] -= z_shift[j]
            # (the sum of weights: the scales and means below are weighted ones)
            n = self._weight_total
            # (plain floats: p and q are small, and a numpy call costs more here)
            # (loops rather than comprehensions: each is one more function to run)
            scales = []
            for v in st.xtx.diagonal().tolist():
                scales.append(1.0 / math.sqrt(v / n) if v > 0 else 1.0)
            x_scale = np.array(scales)
            ztz_all = ztz_all.tolist()
            q = self.k_re
            ones = self.re_ones.tolist()
            icpt = ones.index(True) if True in ones else None
            col_mean = [0.0] * q if icpt is None else ztz_all[icpt][:]
            col_rms, col_sd = [], []
            for j in range(q):
                if icpt is not None:
                    col_mean[j] /= n
                col_rms.append(math.sqrt(ztz_all[j][j] / n))
                col_sd.append(math.sqrt(max(col_rms[j] ** 2 - col_mean[j] ** 2, 0.0)))
            reparam = Reparametrization(structure, col_mean, col_sd, col_rms,
                                        self.re_ones, z_centring)
            self._deviances[key] = ProfiledDeviance(
                st, structure, reml, reparam, x_scale, self.fe_centring,
                self._log_weights)
        return self._deviances[key]

    def _warn_uncentred(self, shifts):
        """Warn when a random-effect covariate that the covariance structure keeps
        uncentred (it is not in an unstructured block with the intercept) has an
        offset so large against its spread that its products lose most digits."""
        ztz_all = self._ztz_all          # (of the centred columns)
        n = self.nobs
        for j, shift in enumerate(shifts):
            if shift == 0.0:
                continue
            sd = math.sqrt(max(ztz_all[j, j], 0.0) / n)
            ratio = abs(shift) / sd if sd > 0 else math.inf
            if ratio > 1e4:
                lost = min(16, int(2 * math.log10(ratio)))
                warnings.warn(
                    f"random effect {self.exog_re_names[j]!r} has mean {shift:.4g} and "
                    f"standard deviation {sd:.3g}: in a covariance structure where it is "
                    "uncorrelated with the intercept its offset is part of the model, and "
                    f"about {lost} of 16 digits of its within-group variation are lost; "
                    "centre the covariate, or let it correlate with the random intercept",
                    IllConditionedWarning, stacklevel=4)

    def _start_theta(self, start_params, dev):
        s = dev.structure
        if start_params is None:
            return s.start_theta()
        if isinstance(start_params, MixedLMParams):
            cov = start_params.cov_re
        else:
            start_params = np.asarray(start_params, dtype=float)
            if len(start_params) == self.k_fe + self.k_re2:
                has_fe = True
            elif len(start_params) == self.k_re2:
                has_fe = False
            else:
                raise ValueError(
                    f"start_params has length {len(start_params)}; expected {self.k_re2} "
                    f"(covariance only) or {self.k_fe + self.k_re2} (with fixed effects)"
                )
            cov = MixedLMParams.from_packed(start_params, self.k_fe, self.k_re,
                                            self.use_sqrt, has_fe).cov_re
        cov = np.asarray(cov, dtype=float)
        if cov.shape != (self.k_re, self.k_re) or not np.all(np.isfinite(cov)):
            raise ValueError(f"start cov_re must be a finite {self.k_re} x {self.k_re} matrix")
        lam_user = s.lam(s.theta_from_cov(cov))
        return s.theta(dev.reparam.lam_to_scaled(lam_user))

    def fit(self, start_params=None, reml=True, niter_sa=0, do_cg=True, fe_pen=None,
            cov_pen=None, free=None, full_output=False, method=None, **fit_kwargs):
        """Fit the model by REML (default) or ML.

        Parameters
        ----------
        start_params : MixedLMParams or array_like, optional
            Start for the covariance parameters (cov_re relative to the scale;
            packed arrays follow `use_sqrt`).  Fixed effects in it are ignored:
            they are profiled out.
        reml : bool
            Restricted maximum likelihood (default) or maximum likelihood.
        free : MixedLMParams, optional
            Entries 1 (free) or 0 (fixed at zero) of cov_re: a block pattern,
            e.g. ``MixedLMParams.from_components(np.ones(2), np.eye(2))`` for
            uncorrelated random effects.
        method : str or list of str, optional
            None (default) runs L-BFGS-B with the analytic gradient then
            projected Newton steps with the analytic Hessian.  A scipy.optimize
            method name (or statsmodels' 'lbfgs', 'bfgs', 'nm', 'powell', 'cg')
            replaces the first stage; the Newton polish and the optimum check
            always run.  With a list, the first entry is used.
        niter_sa, do_cg, full_output :
            Accepted for compatibility with statsmodels; they have no effect.
        maxiter : int, optional (keyword)
            Iteration limit of the first stage.

        Returns
        -------
        MixedLMResults

        Examples
        --------
        >>> import lmm
        >>> data = lmm.datasets.get_rdataset("dietox", "geepack").data
        >>> md = lmm.mixedlm("Weight ~ Time", data, groups=data["Pig"], re_formula="~Time")
        >>> mdf = md.fit()
        >>> round(mdf.llf, 4)
        -2217.0475
        """
        if fe_pen is not None or cov_pen is not None:
            raise NotImplementedError("penalized fits (fe_pen, cov_pen) are not supported")
        maxiter = None
        if fit_kwargs:
            maxiter = fit_kwargs.pop("maxiter", None)
            for name in [k for k in fit_kwargs if k in IGNORED]:
                fit_kwargs.pop(name)
                warn_ignored(name, "fit")
            check_keywords("fit", fit_kwargs, _FIT_KEYWORDS)
        if niter_sa != 0 or do_cg is not True or full_output is not False:
            for name, value, default in (("niter_sa", niter_sa, 0), ("do_cg", do_cg, True),
                                         ("full_output", full_output, False)):
                if value != default:
                    warn_ignored(name, "fit")
        if not isinstance(reml, bool | np.bool_):
            raise TypeError(f"reml must be True or False, got {reml!r}")
        if isinstance(method, list | tuple):
            method = method[0] if method else None
        self.reml = bool(reml)
        structure = default_structure(self.k_re, self.re_blocks) if free is None else \
            self.covariance_structure(free)
        dev = self._deviance(reml, structure)
        # y'y of the least-squares residual (the centred y'y when X is an
        # intercept alone): zero, to rounding, when the fixed effects fit the
        # response exactly (a constant response), and no variance is left (the
        # residual is made from the products: its rounding is ~1e-16 of y'y)
        if not dev.stats.yty > 1e-13 * dev.user_stats.yty:
            raise ValueError(
                f"the response ({self.endog_names}) is fitted exactly by the fixed effects "
                "(for example, it is constant): the residual variance is zero and no mixed "
                "model can be fitted")
        theta0 = structure.start_theta() if start_params is None else \
            self._start_theta(start_params, dev)
        check = minimize_deviance(dev, theta0, method=method, maxiter=maxiter,
                                  names=self.exog_re_names)
        results = MixedLMResults(self, dev, check, free=free)
        if results.singular_messages:
            warnings.warn(
                "The fit is singular (on the boundary of the parameter space): "
                + "; ".join(results.singular_messages),
                SingularFitWarning,
                stacklevel=2,
            )
        elif not check.converged:
            warnings.warn(
                "The fit did not converge: " + "; ".join(check.messages),
                ConvergenceWarning,
                stacklevel=2,
            )
        return results

    @classmethod
    def from_lmer(cls, formula, data, missing="none", **kwargs):
        """A model from an lme4 formula, e.g. ``"Weight ~ Time + (1 + Time | Pig)"``.

        Each bar term ``(expr | g)`` is a block of cov_re (unstructured);
        ``(expr || g)`` makes every column its own block (uncorrelated), as
        ``(1 | g) + (0 + x | g)`` does.  With several grouping factors
        (crossed, nested ``(1 | a/b)``, interactions ``(1 | a:b)``) the model
        returned is a `lmm.several_factors.MultiTermModel`.

        Examples
        --------
        >>> import lmm
        >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
        >>> md = lmm.MixedLM.from_lmer("Weight ~ Time + (Time || Pig)", d)
        >>> md.exog_re_names
        ['(Intercept)', 'Time']
        """
        if not isinstance(data, pd.DataFrame):       # (no call for pandas data)
            from .dask_frames import is_dask_frame, model_from_dask

            if is_dask_frame(data):
                return model_from_dask(cls, data, lmer_formula=formula, missing=missing,
                                       **kwargs)
            data = to_pandas(data)
        if formula_safe.uses_r_semantics(formula):
            # (R's meaning of the functions where it differs from patsy's, and R's
            # TRUE/FALSE: lme4-style formulas only; statsmodels-style ones keep patsy's)
            kwargs["eval_env"] = formula_safe.lme4_environment(kwargs.get("eval_env"))
        parsed = parse_lmer(formula)
        if not parsed.single_factor:
            return formula_design.multi_from_lmer(MultiTermModel, parsed, formula, data,
                                                  missing=missing, **kwargs)
        return formula_design.model_from_lmer(cls, parsed, formula, data, missing=missing,
                                              **kwargs)

    def fixed_effect_profile_deviance(self, column, value, free=None, start=None):
        """The ML deviance (-2 log-likelihood) minimized over every other parameter
        with fixed effect `column` held at `value`: lme4's profile of a fixed
        effect (the column moved into the offset, the model refitted by ML).

        Returns (deviance, start): `start` (MixedLMParams) warm-starts the next
        call at a nearby value.

        Examples
        --------
        >>> import lmm
        >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
        >>> md = lmm.mixedlm("Weight ~ Time", d, groups="Pig")
        >>> ml = md.fit(reml=False)
        >>> dev, _ = md.fixed_effect_profile_deviance(1, ml.fe_params["Time"])
        >>> bool(abs(dev + 2 * ml.llf) < 1e-6)
        True
        """
        column = int(column)
        if not 0 <= column < self.k_fe:
            raise IndexError(f"column {column} out of range for {self.k_fe} fixed effects")
        if getattr(self, "dask_source", None) is not None:
            # (a fit from a Dask frame has statistics, not rows: moved there)
            from .dask_frames import profile_submodel

            sub = profile_submodel(self, column, value)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = sub.fit(reml=False, free=free, start_params=start)
            return -2.0 * res.llf, res.params_object
        keep = [k for k in range(self.k_fe) if k != column]
        held = float(value) * self.exog[:, column]
        offset = held if self.offset is None else self.offset + held
        sub = MixedLM(self.endog, self.exog[:, keep], self.groups, exog_re=self.exog_re,
                      weights=self.weights, offset=offset,
                      exog_names=[self.exog_names[k] for k in keep],
                      exog_re_names=self.exog_re_names, group_name=self.group_name)
        if self.re_blocks is not None:
            sub.set_re_blocks(self.re_blocks)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sub.fit(reml=False, free=free, start_params=start)
        return -2.0 * res.llf, res.params_object

    def profiled_deviance(self, reml=True, free=None):
        """The profiled criterion as a function of theta (for advanced use).

        Returns a `ProfiledDeviance` whose ``value``, ``value_and_grad`` and
        ``hessian`` take theta of the conditioned design.
        """
        return self._deviance(reml, self.covariance_structure(free))

    def deviance_function(self, reml=True, free=None):
        """The profiled criterion as a function of lme4's theta (lme4's ``devfun``).

        Returns a `lmm.devfun.DevianceFunction`: called with theta (the entries
        of the relative covariance factor Lambda, cov_re / scale = Lambda
        Lambda', column by column of its lower triangle, in the user's units) it
        gives -2 log-likelihood (ML) or the REML criterion with the fixed
        effects and the scale profiled out; ``gradient`` is exact, ``hessian``
        central differences of it.

        Examples
        --------
        >>> import lmm
        >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
        >>> md = lmm.mixedlm("Weight ~ Time", d, groups="Pig", re_formula="~Time")
        >>> res = md.fit()
        >>> f = md.deviance_function(reml=True)
        >>> bool(abs(f(res.theta) + 2 * res.llf) < 1e-8)
        True
        """
        from .devfun import one_factor_function

        return one_factor_function(self._deviance(reml, self.covariance_structure(free)))

    def fit_many(self, responses, reml=True, weights=None, n_jobs=1, executor=None,
                 client=None, chunk_size=None, progress=None):
        """Fit this design to each column of `responses` (see `lmm.fit_many`).

        The model's own response is ignored; `responses` has one row per model
        row.  Prior weights belong to the model (``MixedLM(..., weights=)``);
        `weights` here are per-response weights of the responses' shape.

        Examples
        --------
        >>> import numpy as np, lmm
        >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
        >>> md = lmm.mixedlm("Weight ~ Time", d, groups="Pig")
        >>> res = md.fit_many(np.log(d[["Weight"]]), progress=False)
        >>> list(res.table.index)
        ['Weight']
        """
        if responses is None:
            raise TypeError("fit_many needs `responses` (one column per response)")
        if self.offset is not None:
            raise NotImplementedError(
                "fit_many on a model with an offset is not supported yet: subtract the "
                "offset from the responses")
        per_response = None
        if weights is not None and np.ndim(weights) == 2 and self.weights is None:
            per_response = many_responses.weight_matrix(weights)
        elif weights is not None:
            raise ValueError("fit_many(model, weights=...): give the weights to the MixedLM "
                             "(MixedLM(..., weights=...)), whose rows they weight")
        Y, names = many_responses.response_matrix(responses, self.nobs, "the model")
        return many_responses.fit_responses(
            self, Y, names, reml=reml, weights=per_response, n_jobs=n_jobs,
            executor=executor, client=client, chunk_size=chunk_size, progress=progress)
