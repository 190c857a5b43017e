"""Many responses on one design: one mixed model per column of a response matrix.

`fit_many` fits the same model (fixed effects, random effects, groups) to each
column of `responses`, e.g. one model per gene over the samples of an
expression matrix.  Everything that depends only on the design is computed
once: the formula, the group order, Z_g'Z_g, Z_g'X_g, X'X and their
conditioned forms (DESIGN.md, "How the same numbers serve the later issues").
Each response adds only its own Z_g'y_g, X'y and y'y, computed for a block of
responses in one compiled pass over the rows, and its optimization, which runs
in C without the GIL (`_many_responses.ManyFitter`): the steps of
`optimize.minimize_deviance` and `optimize.check_optimum` on the same
`Criterion` and with the same tolerances, so each response gets the optimum
`MixedLM.fit` finds for it.  Two steps differ: with one variance parameter the
Newton search starts from a moment estimate of it (then takes 2-3 iterations)
rather than from lme4's start, and the re-search that `minimize_deviance` runs
with scipy's L-BFGS-B when a search ends on the boundary is a compiled Newton
search from lme4's start with short first steps.  The few responses the
compiled path does not settle (a re-search that finds a better point, a failed
optimum check, a degenerate design after dropping missing values) are fitted
through `MixedLM.fit` itself.

Blocks of responses run one after the other, on threads (``n_jobs``), on any
`concurrent.futures.Executor` (a process pool, a Dask client's
``get_executor()``), or on a Dask cluster (``client=``, the design scattered
once to every worker).
"""

import math
import os
import sys
import uuid
import warnings
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import as_completed as _as_completed
from dataclasses import replace as _dc_replace

import numpy as np
import pandas as pd
from scipy.special import ndtr

from . import _many_responses
from ._threads import quiet_warnings
from .exceptions import ConvergenceWarning
from .optimize import (
    FLAT_TOLERANCE,
    GRADIENT_TOLERANCE,
    NEWTON_DECREMENT_TOLERANCE,
    SINGULAR_TOLERANCE,
)

# First steps of the compiled boundary re-search from lme4's start (trust
# radius in the conditioned theta space, where the first search starts with
# radius 1): short with several parameters, where rank-deficient local optima
# lie on the boundary; longer with one, where the boundary is one point.
RESEARCH_RADIUS = 0.1
RESEARCH_RADIUS_ONE = 0.5

# status codes of _many_responses.ManyFitter.fit
_STATUS_REASONS = {
    1: "the boundary re-search found a better point",
    2: "the optimum check failed",
    3: "the response's design is degenerate after dropping its missing values",
    4: "X'V^-1X is not positive definite at the end point",
}


# ---------------------------------------------------------------------------
# The design
# ---------------------------------------------------------------------------

class _Design:
    """What every block of responses needs: the rows and the design's cross-products.

    Picklable (the compiled fitter is rebuilt where it is used), small: the
    fixed- and random-effects designs, the group codes and order, and
    cross-products of the size of the groups.
    """

    def __init__(self, model, reml, warm_start=True):
        # The fitter works on the model's centred design (its products keep their
        # digits): X - 1 x_shift' (with an intercept), Z's columns centred where the
        # covariance structure allows it (Z B, B = I - e_0 m'), each response centred
        # at its mean (_fit_block).  The intercept is reported at the user's origin
        # (the fitter's set_intercept_contrast), cov_re mapped back by B (_to_user).
        dev = model.profiled_deviance(reml)
        structure = dev.structure
        self.token = uuid.uuid4().hex
        # prior weights (of the model's rows): the fitter reads the rows and each
        # response times sqrt(w), an unweighted model with the weighted products
        # (dev.shift holds lme4's -sum(log w)); responses with missing values are
        # fitted through MixedLM (its row-dropping path is unweighted in the fitter)
        self.weights = model.weights
        self.model_class = type(model)
        self.re_term_columns = model.re_term_columns
        self.reml = bool(reml)
        self.warm_start = bool(warm_start)
        self.X_user = np.ascontiguousarray(model.exog, dtype=float)
        self.Z_user = np.ascontiguousarray(model.exog_re, dtype=float)
        X, Z = self.X_user, self.Z_user
        centring = model.fe_centring
        self.fe_contrast = None
        if centring is not None and np.any(centring.x_shift):
            X = X - centring.x_shift
            self.fe_contrast = (centring.intercept, -centring.x_shift)
            self.fe_contrast[1][centring.intercept] = 1.0
        self.z_centring = dev.reparam.z_centring
        if self.z_centring is not None:
            kept = -self.z_centring[model.z_intercept].copy()
            kept[model.z_intercept] = 0.0
            Z = Z - kept
        self.X = np.ascontiguousarray(X)
        self.Z = np.ascontiguousarray(Z)
        self.groups = model.groups
        self.order = np.ascontiguousarray(model.row_order, dtype=np.intp)
        self.offsets = np.ascontiguousarray(model.group_offsets, dtype=np.intp)
        st = dev.user_stats
        self.ztz, self.ztx, self.xtx = st.ztz, st.ztx, st.xtx
        cs = dev.stats
        self.ztz_s, self.ztx_s, self.xtx_s = cs.ztz, cs.ztx, cs.xtx
        self.t = np.ascontiguousarray(dev.reparam.t_products)
        self.x_scale = np.ascontiguousarray(dev.x_scale)
        self.shift = float(dev.shift)
        self.blocks = model.re_blocks
        self.theta_rows = structure.theta_rows
        self.theta_cols = structure.theta_cols
        self.lower = structure.lower_bounds
        self.cov_rows = structure.cov_rows
        self.cov_cols = structure.cov_cols
        # how Reparametrization conditions each column of Z (for responses
        # with missing values, whose own T the kernel computes)
        mode = np.zeros(model.k_re, dtype=np.intp)
        icpt_of = np.zeros(model.k_re, dtype=np.intp)
        intercept = model.re_ones
        for members in structure.blocks:
            icpt = [k for k in members if intercept[k]]
            for j in members:
                if intercept[j]:
                    mode[j] = 0
                elif icpt and len(members) > 1:
                    mode[j], icpt_of[j] = 1, icpt[0]
                else:
                    mode[j] = 2
        self.t_mode, self.t_icpt = mode, icpt_of
        # with an intercept in X, each response is centred at its mean before
        # its products are made (its offset would cancel digits in y'y - ...),
        # and the intercept's estimate shifted back
        centring = model.fe_centring
        self.y_centring_column = -1 if centring is None else centring.intercept
        self.exog_names = list(model.exog_names)
        self.exog_re_names = list(model.exog_re_names)
        self.group_name = model.group_name
        self.p, self.q = self.X.shape[1], self.Z.shape[1]
        re = self.exog_re_names
        self.cov_names = [f"{re[j]} Var" if j == k else f"{re[k]} x {re[j]} Cov"
                          for j, k in zip(self.cov_rows, self.cov_cols)]
        self._fitter = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_fitter"] = None
        # (workers fit on the centred rows; only `model_for(user=True)` reads these)
        state["X_user"] = state["Z_user"] = None
        return state

    @property
    def nobs(self):
        return self.X.shape[0]

    def fitter(self):
        """The compiled `_many_responses.ManyFitter` of this design (built on first use)."""
        if self._fitter is None:
            X, Z = self.X, self.Z
            if self.weights is not None:
                root = np.sqrt(self.weights)[:, None]
                X, Z = np.ascontiguousarray(X * root), np.ascontiguousarray(Z * root)
            self._fitter = _many_responses.ManyFitter(
                X, Z, self.order, self.offsets, self.ztz, self.ztx, self.xtx,
                self.ztz_s, self.ztx_s, self.xtx_s, self.t, self.x_scale, self.shift,
                self.reml, self.theta_rows, self.theta_cols, self.lower, self.cov_rows,
                self.cov_cols, self.t_mode, self.t_icpt, GRADIENT_TOLERANCE,
                NEWTON_DECREMENT_TOLERANCE, SINGULAR_TOLERANCE, RESEARCH_RADIUS,
                RESEARCH_RADIUS_ONE, self.warm_start, FLAT_TOLERANCE,
            )
            if self.fe_contrast is not None:
                self._fitter.set_intercept_contrast(*self.fe_contrast)
        return self._fitter

    def to_user(self, out):
        """Map the cov_re entries of table rows (in place) from the centred Z B to the
        user's Z: cov = B cov_B B'."""
        if self.z_centring is None or not len(out):
            return out
        p, q, ncov = self.p, self.q, len(self.cov_rows)
        vals = out[:, 2 * p:2 * p + ncov]
        cov = np.zeros((len(out), q, q))
        cov[:, self.cov_rows, self.cov_cols] = vals
        cov[:, self.cov_cols, self.cov_rows] = vals
        b = self.z_centring
        user = b @ cov @ b.T
        out[:, 2 * p:2 * p + ncov] = user[:, self.cov_rows, self.cov_cols]
        return out

    def model_for(self, y, user=False, lmer_formula=None, **kwargs):
        """A model of this design (the class of the design's model) with response y
        (its NaN rows dropped): on the centred rows the fitter uses, or with
        `user` on the user's rows; with `lmer_formula` (and the formula in
        kwargs) it records its lme4 terms as the design's model did."""
        X, Z = self.X, self.Z
        if user:
            X, Z = self.X_user, self.Z_user
            if X is None:          # (an unpickled design: the shifts added back)
                X, Z = self.X.copy(), self.Z.copy()
                if self.fe_contrast is not None:
                    X -= self.fe_contrast[1] - np.eye(self.p)[self.fe_contrast[0]]
                if self.z_centring is not None:
                    Z = Z @ np.linalg.inv(self.z_centring)
        kwargs.setdefault("weights", self.weights)
        md = self.model_class(y, X, self.groups, exog_re=Z, missing="drop",
                              exog_names=self.exog_names, exog_re_names=self.exog_re_names,
                              group_name=self.group_name, **kwargs)
        if lmer_formula is not None:
            md.set_lmer_terms(kwargs.get("formula"), lmer_formula, self.re_term_columns,
                              self.blocks)
        elif self.blocks is not None:
            md.set_re_blocks(self.blocks)
        return md


# Designs received by this process (workers of a process pool or a Dask
# cluster), by token: each is unpickled and its fitter built once per process.
_DESIGNS = {}


def _install_design(design):
    """ProcessPoolExecutor initializer: keep the design in the worker."""
    _DESIGNS.clear()
    _DESIGNS[design.token] = design


def _local_design(design):
    if isinstance(design, str):
        return _DESIGNS[design]
    known = _DESIGNS.get(design.token)
    if known is None:
        if len(_DESIGNS) >= 4:
            _DESIGNS.clear()
        _DESIGNS[design.token] = known = design
    return known


# ---------------------------------------------------------------------------
# One block of responses (runs wherever the executor puts it)
# ---------------------------------------------------------------------------

def _python_row(design, y, weights=None):
    """Fit one response through MixedLM.fit (with its own prior weights, if
    given); its row, flags and messages."""
    ncov = len(design.cov_rows)
    row = np.full(2 * design.p + ncov + 3, np.nan)
    flags = np.zeros(4, dtype=np.intp)
    try:
        with quiet_warnings():     # (thread-safe: blocks may run on threads)
            extra = {} if weights is None else {"weights": weights}
            res = design.model_for(y, **extra).fit(reml=design.reml)
    except (ValueError, np.linalg.LinAlgError) as exc:
        row[-1] = np.isfinite(y).sum()
        flags[0] = -1
        return row, flags, [f"not fitted: {exc}"]
    sol = res.solution
    p = design.p
    row[:p] = sol["fe_params"]
    row[p:2 * p] = np.sqrt(np.diag(sol["vcov_fe"]))
    if design.fe_contrast is not None:      # (the intercept at the user's origin)
        i, c = design.fe_contrast
        row[i] = c @ sol["fe_params"]
        row[p + i] = math.sqrt(max(float(c @ sol["vcov_fe"] @ c), 0.0))
    row[2 * p:2 * p + ncov] = sol["cov_re"][design.cov_rows, design.cov_cols]
    row[2 * p + ncov:] = res.scale, res.llf, res.nobs
    flags[1:] = res.converged, res.is_singular, res.optimizer["iterations"]
    return row, flags, list(res.optimizer["messages"])


def _fit_block(design, Y):
    """Fit the responses in the columns of Y (rows in the design's order).

    Returns (out, flags, python, messages): the table rows, the flags
    (status, converged, singular, iterations), the positions fitted through
    the Python path and {position: messages} for the responses with a problem.
    """
    design = _local_design(design)
    W = None
    if Y.ndim == 3:                    # (responses and their own weights, stacked)
        Y, W = Y[:, :, 0], Y[:, :, 1]
    Y = np.array(Y, dtype=float, order="C", copy=True)
    m = Y.shape[1]
    mask = np.isnan(Y)
    y_shift = None
    w = design.weights
    if design.y_centring_column >= 0 and Y.shape[0]:
        with quiet_warnings():     # (all-missing responses' RuntimeWarning; thread-safe)
            if w is None:
                y_shift = np.nanmean(Y, axis=0)
            else:                                           # (weighted means)
                y_shift = (w @ np.where(mask, 0.0, Y)) / (w @ ~mask)
        y_shift[~np.isfinite(y_shift)] = 0.0
        Y -= y_shift
    if w is not None:
        return _fit_weighted_block(design, Y, mask, y_shift)
    if W is not None:
        return _fit_each_weighted(design, Y, W, y_shift)
    if mask.any():
        cols, rows = np.nonzero(mask.T)
        miss_ptr = np.zeros(m + 1, dtype=np.intp)
        np.cumsum(np.bincount(cols, minlength=m), out=miss_ptr[1:])
        miss_rows = np.ascontiguousarray(rows, dtype=np.intp)
        Y[mask] = 0.0
    else:
        miss_ptr = np.zeros(m + 1, dtype=np.intp)
        miss_rows = np.zeros(0, dtype=np.intp)
    fitter = design.fitter()
    out = np.empty((m, fitter.n_columns))
    flags = np.empty((m, 4), dtype=np.intp)
    fitter.fit(Y, miss_ptr, miss_rows, out, flags)
    python = np.flatnonzero(flags[:, 0] != 0)
    messages = {}
    for c in python:
        y = Y[:, c].copy()
        y[mask[:, c]] = np.nan
        out[c], flags[c], msgs = _python_row(design, y)
        if msgs or not flags[c, 1]:
            messages[int(c)] = msgs
    if y_shift is not None:
        out[:, design.y_centring_column] += y_shift
    design.to_user(out)
    return out, flags, python, messages


def _fit_each_weighted(design, Y, W, y_shift):
    """`_fit_block` with per-response weights (the columns of W): each response
    through MixedLM.fit with its own weights (its products are its own).  Y is
    centred (y_shift, or None) and holds NaN."""
    m = Y.shape[1]
    out = np.empty((m, 2 * design.p + len(design.cov_rows) + 3))
    flags = np.empty((m, 4), dtype=np.intp)
    messages = {}
    for c in range(m):
        out[c], flags[c], msgs = _python_row(design, Y[:, c].copy(), W[:, c].copy())
        if msgs or not flags[c, 1]:
            messages[int(c)] = msgs
    if y_shift is not None:
        out[:, design.y_centring_column] += y_shift
    design.to_user(out)
    return out, flags, np.arange(m, dtype=np.intp), messages


def _fit_weighted_block(design, Y, mask, y_shift):
    """`_fit_block` of a weighted design: the complete responses by the fitter
    (on the rows and responses times sqrt(w)), those with missing values
    through MixedLM.  Y is centred (y_shift, or None) and holds NaN."""
    m = Y.shape[1]
    fitter = design.fitter()
    out = np.empty((m, fitter.n_columns))
    flags = np.empty((m, 4), dtype=np.intp)
    complete = np.flatnonzero(~mask.any(0))
    if len(complete):
        Yw = np.ascontiguousarray(Y[:, complete] * np.sqrt(design.weights)[:, None])
        o = np.empty((len(complete), fitter.n_columns))
        f = np.empty((len(complete), 4), dtype=np.intp)
        fitter.fit(Yw, np.zeros(len(complete) + 1, dtype=np.intp), np.zeros(0, dtype=np.intp),
                   o, f)
        out[complete], flags[complete] = o, f
    python = np.flatnonzero(mask.any(0))
    python = np.union1d(python, complete[flags[complete, 0] != 0]).astype(np.intp)
    messages = {}
    for c in python:
        out[c], flags[c], msgs = _python_row(design, Y[:, c].copy())
        if msgs or not flags[c, 1]:
            messages[int(c)] = msgs
    if y_shift is not None:
        out[:, design.y_centring_column] += y_shift
    design.to_user(out)
    return out, flags, python, messages


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

def response_matrix(responses, n_rows, what, data_index=None):
    """(Y (n_rows, m) float64, names) from a 2-D array, a DataFrame or a Series."""
    if isinstance(responses, pd.Series):
        responses = responses.to_frame()
    if isinstance(responses, pd.DataFrame):
        names = [str(c) for c in responses.columns]
        dtypes = responses.dtypes

        def numeric(dt):
            return pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_bool_dtype(dt)

        if not all(numeric(dt) for dt in set(dtypes)):   # (few distinct dtypes to test)
            bad = [str(c) for c, dt in dtypes.items() if not numeric(dt)]
            raise TypeError(f"responses has non-numeric columns: {bad[:5]}")
        if data_index is not None and len(responses) == len(data_index) and \
                not responses.index.equals(data_index) and responses.index.is_unique and \
                data_index.is_unique and set(responses.index) == set(data_index):
            responses = responses.loc[data_index]     # same samples in another order
        Y = responses.to_numpy(dtype=float, na_value=np.nan)
    else:
        Y = np.asarray(responses)
        if Y.dtype.kind not in "biuf":
            raise TypeError(f"responses must be numeric, got dtype {Y.dtype}")
        if Y.ndim == 1:
            Y = Y[:, None]
        if Y.ndim != 2:
            raise ValueError(f"responses must be 2-dimensional (rows x responses), got "
                             f"{Y.ndim} dimensions")
        Y = Y.astype(float, copy=False)
        names = [f"y{i}" for i in range(Y.shape[1])]
    if Y.shape[0] != n_rows:
        hint = ""
        if Y.ndim == 2 and Y.shape[1] == n_rows:
            hint = (f"; it has {n_rows} columns: pass its transpose (one row per "
                    "observation, one column per response)")
        raise ValueError(f"responses has {Y.shape[0]} rows but {what} has {n_rows}: "
                         f"responses needs one row per observation{hint}")
    if len(set(names)) != len(names):
        dup = pd.Index(names)[pd.Index(names).duplicated()].unique().tolist()
        raise ValueError(f"response names must be unique; repeated: {dup[:5]}")
    if np.isinf(Y).any():
        bad = [names[j] for j in np.flatnonzero(np.isinf(Y).any(0))]
        raise ValueError(f"responses {bad[:5]} contain infinite values")
    return Y, names


def _interactive():
    if hasattr(sys, "ps1") or sys.flags.interactive:
        return True
    ipython = sys.modules.get("IPython")
    try:
        return ipython is not None and ipython.get_ipython() is not None
    except Exception:  # noqa: BLE001 - any failure means: not interactive
        return False


def progress_bar(progress, total, unit="responses", desc="fit_many"):
    """A tqdm.auto bar (a notebook widget in Jupyter) of `total` steps, or None: off
    with progress=False, and by default (None) outside interactive sessions."""
    if progress is False or (progress is None and not _interactive()):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress:
            raise ImportError("progress=True needs tqdm (pip install tqdm, or "
                              "lmm[progress])") from None
        return None
    return tqdm(total=total, unit=unit, desc=desc, leave=False)


# ---------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------

def _workers(n_jobs, executor, client):
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # noqa: BLE001 - a client without nthreads(): guess
            return os.cpu_count() or 1
    if executor is not None:
        n = getattr(executor, "_max_workers", None)
        if n is None and hasattr(executor, "_client"):
            try:
                n = sum(executor._client.nthreads().values())
            except Exception:  # noqa: BLE001
                n = None
        return n or os.cpu_count() or 1
    return n_jobs


def _chunks(m, chunk_size, workers, remote, design):
    if chunk_size is None:
        if remote:
            # large enough that the design sent along costs little (its rows
            # hold p + q + 1 values, a response's one)
            floor = 20 * (design.p + design.q + 1)
            chunk_size = max(floor, math.ceil(m / (4 * workers)))
        elif workers > 1:
            chunk_size = min(1024, max(32, math.ceil(m / (8 * workers))))
        else:
            chunk_size = 1024
    chunk_size = max(1, int(chunk_size))
    return [(a, min(a + chunk_size, m)) for a in range(0, m, chunk_size)]


def fit_responses(model, Y, names, reml=True, weights=None, n_jobs=1, executor=None,
                  client=None, chunk_size=None, progress=None, rhs=None, row_labels=None):
    """Fit `model`'s design to each column of Y (n, m), the engine of `lmm.fit_many`.

    `model` is a one-grouping-factor MixedLM (its own response ignored), Y a
    float array with one row per model row, `names` the responses' names,
    `weights` None or per-response prior weights of Y's shape, `rhs` the
    formula's right-hand side and `row_labels` the data's labels of the model's
    rows (for the per-response results; default the model's).  The other
    arguments are `lmm.fit_many`'s.

    Examples
    --------
    >>> import numpy as np, lmm
    >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
    >>> md = lmm.mixedlm("Weight ~ Time", d, groups="Pig")
    >>> Y = np.column_stack([d["Weight"], d["Weight"] * 2])
    >>> fit_responses(md, Y, ["w", "w2"], progress=False).table.shape[0]
    2
    """
    per_response = weights
    if Y.shape[1] == 0:
        raise ValueError("responses has no columns: nothing to fit")
    if per_response is not None and per_response.shape != Y.shape:
        raise ValueError(f"weights has shape {per_response.shape}; per-response weights need "
                         f"the responses' shape {Y.shape}")
    Y_fit = Y if per_response is None else np.stack([Y, per_response], axis=2)
    if n_jobs is None or n_jobs == 0:
        n_jobs = 1
    if n_jobs < 0:
        n_jobs = os.cpu_count() or 1
    design = _Design(model, reml)
    m = Y.shape[1]
    out = np.empty((m, 2 * design.p + len(design.cov_rows) + 3))
    flags = np.zeros((m, 4), dtype=np.intp)
    python, messages = [], {}

    def collect(a, result):
        o, f, py, msgs = result
        out[a:a + len(o)] = o
        flags[a:a + len(o)] = f
        python.extend(int(a + c) for c in py)
        messages.update({int(a + c): v for c, v in msgs.items()})
        if bar is not None:
            bar.update(len(o))

    remote = executor is not None or client is not None
    own_pool = None
    if isinstance(executor, str):
        if executor != "processes":
            raise ValueError(f"executor={executor!r}: pass an Executor or 'processes'")
        own_pool = executor = ProcessPoolExecutor(
            max_workers=n_jobs if n_jobs > 1 else None, initializer=_install_design,
            initargs=(design,))
    elif executor is not None and not isinstance(executor, Executor):
        raise TypeError("executor must be a concurrent.futures.Executor or 'processes'")
    spans = _chunks(m, chunk_size, _workers(n_jobs, executor, client), remote, design)
    bar = progress_bar(progress, m)
    try:
        if client is not None:
            d_future = client.scatter(design, broadcast=True, hash=False)
            blocks = client.scatter([Y_fit[:, a:b] for a, b in spans], hash=False)
            futures = {client.submit(_fit_block, d_future, blk, pure=False): a
                       for (a, _), blk in zip(spans, blocks)}
            from distributed import as_completed

            for fut in as_completed(futures):
                collect(futures[fut], fut.result())
        elif executor is not None:
            payload = design.token if own_pool is not None else design
            futures = {executor.submit(_fit_block, payload, Y_fit[:, a:b]): a for a, b in spans}
            for fut in _as_completed(futures):
                collect(futures[fut], fut.result())
        elif n_jobs > 1 and len(spans) > 1:
            _local_design(design).fitter()         # built once, shared by the threads
            with ThreadPoolExecutor(max_workers=n_jobs) as pool:
                futures = {pool.submit(_fit_block, design, Y_fit[:, a:b]): a for a, b in spans}
                for fut in _as_completed(futures):
                    collect(futures[fut], fut.result())
        else:
            for a, b in spans:
                collect(a, _fit_block(design, Y_fit[:, a:b]))
    finally:
        if bar is not None:
            bar.close()
        if own_pool is not None:
            own_pool.shutdown()
        _DESIGNS.pop(design.token, None)
    return ManyResults(model, design, names, out, flags, sorted(python), messages, rhs, Y,
                       per_response, row_labels)




def weight_matrix(weights):
    """Per-response prior weights (n, m) as floats, checked: negative or infinite
    values are errors naming `weights` (zero drops a row, NaN is missing)."""
    if isinstance(weights, pd.DataFrame):
        weights = weights.to_numpy(dtype=float, na_value=np.nan)
    W = np.array(weights, dtype=float)
    if np.isinf(W).any():
        raise ValueError("weights has infinite values")
    if (W < 0).any():
        raise ValueError("weights must be positive (or zero, which drops the row); the "
                         "matrix has negative entries")
    return W


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------

class ManyResults:
    """The fits of `fit_many`: one row per response.

    Attributes
    ----------
    table : DataFrame
        Index: the response names.  Columns: each fixed effect's estimate
        (its name), standard error (``"<name>_se"``) and two-sided normal
        p-value (``"<name>_pvalue"``, statsmodels' z test); the free entries of
        cov_re (``"<effect> Var"``, ``"<a> x <b> Cov"``, statsmodels' names);
        ``scale`` (residual variance), ``llf`` (REML log-likelihood for a REML
        fit), ``nobs`` (rows used), ``converged``, ``singular`` (a variance at
        zero or a correlation at +-1, as lme4's isSingular) and ``iterations``.
    messages : dict
        Response name -> the optimizer's messages, for the responses that did
        not converge or could not be fitted.
    python_path : list
        Names of the responses fitted through `MixedLM.fit` rather than the
        compiled path (see lmm/many_responses.py).
    model : MixedLM
        The design's model (its own response is a placeholder).
    """

    def __init__(self, model, design, names, out, flags, python, messages, rhs, Y,
                 weights=None, row_labels=None):
        self.model = model
        self._row_labels = model.row_labels if row_labels is None else row_labels
        self._weights = weights       # (per-response prior weights, or None)
        self.reml = design.reml
        self.method = "REML" if self.reml else "ML"
        self._design = design
        self._rhs = rhs
        self.names = list(names)
        p, ncov = design.p, len(design.cov_rows)
        fe, se = out[:, :p], out[:, p:2 * p]
        with np.errstate(invalid="ignore", divide="ignore"):
            pv = 2.0 * ndtr(-np.abs(fe / se))
        cols = {}
        for j, nm in enumerate(design.exog_names):
            cols[nm] = fe[:, j]
            cols[f"{nm}_se"] = se[:, j]
            cols[f"{nm}_pvalue"] = pv[:, j]
        for j, nm in enumerate(design.cov_names):
            cols[nm] = out[:, 2 * p + j]
        cols["scale"] = out[:, 2 * p + ncov]
        cols["llf"] = out[:, 2 * p + ncov + 1]
        nobs = out[:, 2 * p + ncov + 2]
        cols["nobs"] = np.where(np.isfinite(nobs), nobs, 0).astype(np.int64)
        cols["converged"] = flags[:, 1].astype(bool)
        cols["singular"] = flags[:, 2].astype(bool)
        cols["iterations"] = flags[:, 3].astype(np.int64)
        self.table = pd.DataFrame(cols, index=pd.Index(self.names, name="response"))
        self.python_path = [self.names[i] for i in python]
        self.messages = {self.names[i]: msgs for i, msgs in sorted(messages.items())}
        self._fe_names = list(design.exog_names)
        self._Y = Y            # the responses, rows in the model's order (for results())
        bad = [nm for nm, ok in zip(self.names, cols["converged"]) if not ok]
        if bad:
            warnings.warn(
                f"{len(bad)} of {len(self.names)} responses did not converge or could not be "
                f"fitted ({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''}); see "
                "`.messages` and the `converged` column",
                ConvergenceWarning, stacklevel=3,
            )

    def __len__(self):
        return len(self.names)

    def __getitem__(self, key):
        return self.table[key]

    def __repr__(self):
        return (f"<ManyResults: {len(self)} responses, {self.method}, "
                f"{int(self.table['converged'].sum())} converged, "
                f"{int(self.table['singular'].sum())} singular>\n{self.table!r}")

    def _repr_html_(self):
        return self.table._repr_html_()

    @property
    def fe_params(self):
        """Fixed effects: responses x effects (DataFrame)."""
        return self.table[self._fe_names]

    @property
    def bse_fe(self):
        """Standard errors of the fixed effects (DataFrame)."""
        t = self.table[[f"{nm}_se" for nm in self._fe_names]]
        return t.set_axis(self._fe_names, axis=1)

    @property
    def pvalues(self):
        """Two-sided normal p-values of the fixed effects (DataFrame)."""
        t = self.table[[f"{nm}_pvalue" for nm in self._fe_names]]
        return t.set_axis(self._fe_names, axis=1)

    @property
    def cov_re(self):
        """The free entries of each response's cov_re (DataFrame)."""
        return self.table[self._design.cov_names]

    @property
    def llf(self):
        return self.table["llf"]

    @property
    def scale(self):
        return self.table["scale"]

    def _position(self, name):
        if isinstance(name, int | np.integer) and name not in self.names:
            if not -len(self) <= name < len(self):
                raise IndexError(f"response index {name} out of range ({len(self)} responses)")
            return int(name) % len(self)
        try:
            return self.names.index(str(name))
        except ValueError:
            raise KeyError(f"no response named {name!r}") from None

    def results(self, name, **fit_kwargs):
        """The full MixedLMResults of one response, fitted through `MixedLM.fit`.

        Parameters
        ----------
        name : str or int
            The response's name (or position).
        **fit_kwargs : passed to `MixedLM.fit` (reml defaults to fit_many's).

        Examples
        --------
        >>> res.results("gene17").summary()  # doctest: +SKIP
        """
        from .formula.lme4 import LmerFormula

        j = self._position(name)
        label = self.names[j]
        y = self._Y[:, j]
        m = self.model
        kwargs = dict(design_info=m.design_info, design_info_re=m.design_info_re,
                      endog_names=label, row_labels=self._row_labels)
        if self._rhs is not None:
            kwargs["formula"] = f"{label} ~ {self._rhs}"
        elif m.formula is not None:
            kwargs["formula"] = m.formula
        weights = self._weights
        if weights is not None:
            kwargs["weights"] = weights[:, j]
        parsed = None
        if isinstance(m.lmer_formula, LmerFormula):
            parsed = _dc_replace(m.lmer_formula, response=label)
        md = self._design.model_for(y, user=True, lmer_formula=parsed, **kwargs)
        fit_kwargs.setdefault("reml", self.reml)
        return md.fit(**fit_kwargs)
