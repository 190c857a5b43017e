"""Models with several random-effect terms: nested and crossed grouping factors.

lme4's ``(1 | a) + (1 | b)``, ``(1 | a/b)``, ``(1 + x | a) + (1 | b)``: each term
has its own grouping factor (or the same factor with uncorrelated blocks),
its own relative covariance factor Lambda_k, and its own levels.

The engine keeps the one-factor core's idea: cross-products are computed
once from the integer codes, and no evaluation touches the rows.  The terms
are ordered by number of levels, largest first; the first term's part of
A = Lambda'Z'Z Lambda + I is block-diagonal and is eliminated level by level
in compiled code (lmm/_several_factors.pyx); the other terms, the fixed effects and the
response form a dense matrix whose Cholesky factor gives the rest of the
criterion (log|S|, log|X'V^-1 X|, rss), the fixed effects and the modes.
The optimizer takes trust-region Newton steps over the theta of all terms with
finite-difference derivatives and bounds, in compiled code
(`_several_factors.MultiCriterion.minimize`), checked by a derivative-free search
(COBYQA) when it ends on the boundary.

The optimizer works on conditioned data: fixed-effects columns centred (with an
intercept) and scaled, the response centred, random-slope columns centred and
scaled within terms that have an intercept (only scaled in ``||`` terms), an
exact reparametrization mapped back for every result; shifts and units of the
data change nothing but what the likelihood says they change.  Its end point
must pass the optimum check every engine shares (`lmm.optimize.judge_optimum`:
gradient, curvature, boundary, flat directions), else COBYQA restarts from it
once, and a point that still fails is reported (converged=False and a
ConvergenceWarning).
"""

import dataclasses
import math
import warnings
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import linalg, special

from . import _core, _several_factors, inference, influence
from ._threads import blas_threads
from .covariance import Reparametrization
from .exceptions import ConvergenceWarning, SingularFitWarning
from .fitted import MixedModelResults
from .formula.lme4 import parse_re_form, term_key
from .multi_products import check_fixed_rank, row_products
from .optimize import (
    SINGULAR_TOLERANCE,
    OptimumCheck,
    derivative_free,
    derivative_free_options,
    judge_optimum,
    theta_labels,
)
from .prior_weights import row_vector, rows_to_drop

# M (the other terms' Schur complement bordered by the fixed effects and the
# response) is stored packed, row by row within its structural envelope, when that
# holds at most this fraction of a dense lower triangle (nested terms: linear in
# the levels), else as a dense square factored by LAPACK
PACKED_MAX_FRACTION = 0.25
# a dense M above this order, or a packed one above its square in entries, would
# need a sparse Cholesky with a fill-reducing order (crossed terms with many levels)
MAX_DENSE_ORDER = 6000
# Finite-difference Newton steps only with few theta entries: one step's
# derivatives take 1 + 2n + n(n - 1)/2 evaluations.  (The compiled criterion's
# rounding noise leaves them accurate at any size seen so far: on InstEval,
# 73,421 rows, second differences with steps 1e-3 to 1e-5 agree to 1e-4.)
FD_NEWTON_MAX_THETA = 6
# Newton steps that have not converged by then hand over to COBYQA
FD_NEWTON_MAX_ITER = 40
# relative step of the optimum check's second look at a Hessian that seems flat
# or indefinite: ten times the optimizer's, so that the criterion's rounding (up
# to 1e-7 on a crossed model with a variance ratio of 1e6) is a hundredth of the
# Hessian's entries; the truncation error, O(step^2), stays near 1e-6 relative.
# (The gradient keeps the optimizer's steps: on InstEval's 73,421 rows the third
# derivatives make 1e-3 steps' central differences wrong by 0.08.)
CHECK_STEP = 1e-3


class MultiTermModel:
    """A linear mixed model with several random-effect terms.

    Built by `lmm.lmer` from lme4 formulas with more than one grouping
    factor; rarely constructed directly.

    Parameters
    ----------
    endog : (n,) response
    exog : (n, p) fixed-effects design
    terms : list of Term
    exog_names : names of the fixed effects
    endog_name, formula : for summaries
    row_labels : the data's index of the rows (default 0..n-1)
    lmer_formula : lmm.formula.lme4.LmerFormula, optional
        The parsed lme4 formula (lme4-style results and predictions use it).
    design_info : the fixed effects' formula design (to predict on new data)
    vc_names : names of statsmodels' variance components, when built from them
    weights : (n,) array_like, optional
        Prior weights: row i has residual variance scale / weights[i] (lme4's
        meaning; the log-likelihood includes sum(log(weights)) / 2).  Zero drops
        the row; negative, NaN or infinite weights are errors.
    offset : (n,) array_like, optional
        A known term of the linear predictor (the model is fitted to
        endog - offset; fitted values include it).
    offset_terms : tuple of str, optional
        The columns or expressions the offset is the sum of, when it was given by
        name (predictions on new data read the offset from them).
    """

    def __init__(self, endog, exog, terms, exog_names, endog_name="y", formula=None,
                 row_labels=None, lmer_formula=None, design_info=None, vc_names=None,
                 weights=None, offset=None, offset_terms=None):
        endog = np.ascontiguousarray(endog, dtype=float)
        exog = np.ascontiguousarray(exog, dtype=float)
        n = len(endog)
        weights = None if weights is None else row_vector(weights, "weights", n)
        offset = None if offset is None else row_vector(offset, "offset", n)
        drop = rows_to_drop(weights, offset, "none")
        if drop is not None:        # zero weights: rows with no part in the likelihood
            keep = ~drop
            endog, exog = endog[keep], np.ascontiguousarray(exog[keep])
            weights = weights[keep]
            offset = None if offset is None else offset[keep]
            row_labels = (pd.RangeIndex(n) if row_labels is None else row_labels)[keep]
            terms = [dataclasses.replace(t, codes=np.asarray(t.codes)[keep],
                                         z=np.asarray(t.z)[keep]) for t in terms]
        self.weights, self.offset = weights, offset
        self.sum_log_weights = 0.0 if weights is None else float(np.sum(np.log(weights)))
        self.offset_terms = offset_terms
        self.endog = endog
        self.exog = exog
        self.exog_names = list(exog_names)
        self.endog_names = endog_name
        self.formula = formula
        self.lmer_formula = lmer_formula
        self.design_info = design_info
        self.vc_names = list(vc_names) if vc_names is not None else []
        self.nobs = len(self.endog)
        if self.endog.ndim != 1 or self.exog.ndim != 2 or len(self.exog) != self.nobs:
            raise ValueError(f"endog must be a vector and exog a matrix with one row per "
                             f"observation; got shapes {self.endog.shape}, {self.exog.shape}")
        if not (np.all(np.isfinite(self.endog)) and np.all(np.isfinite(self.exog))):
            raise ValueError("endog and exog must be finite (no NaN or inf)")
        for t in terms:
            t.codes = np.ascontiguousarray(t.codes, dtype=np.intp)
            t.z = np.ascontiguousarray(t.z, dtype=float)
            if t.codes.shape != (self.nobs,) or t.z.ndim != 2 or len(t.z) != self.nobs:
                raise ValueError(f"the term for {t.group!r} needs one code and one row of its "
                                 f"design per observation; got shapes {t.codes.shape}, "
                                 f"{t.z.shape} for {self.nobs} observations")
            if t.z.shape[1] != t.structure.q or len(t.names) != t.structure.q:
                raise ValueError(f"the term for {t.group!r} has {t.z.shape[1]} design columns, "
                                 f"{len(t.names)} names and a covariance of order "
                                 f"{t.structure.q}")
            if t.codes.size and (t.codes.min() < 0 or t.codes.max() >= t.n_levels):
                raise ValueError(f"the codes of {t.group!r} must lie in [0, {t.n_levels})")
            if not np.all(np.isfinite(t.z)):
                raise ValueError(f"the design of the term for {t.group!r} must be finite")
        # random intercepts share one column of ones (each is a row's worth of memory)
        ones = None
        for t in terms:
            if t.z.shape[1] == 1 and np.all(t.z == 1.0):
                if ones is None:
                    ones = t.z
                t.z = ones
        self.k_fe = self.exog.shape[1]
        self.row_labels = row_labels if row_labels is not None else pd.RangeIndex(self.nobs)
        # lme4's order: terms by number of levels, largest first (stable)
        self.terms = sorted(terms, key=lambda t: -t.n_levels)
        for t in self.terms:
            if t.n_levels < 2:
                raise ValueError(f"the grouping factor {t.group!r} has only one level")
            if t.n_levels * t.q >= self.nobs:
                raise ValueError(
                    f"the term for {t.group!r} has {t.n_levels * t.q} random effects for "
                    f"{self.nobs} observations: unidentifiable with the residual"
                )
        with blas_threads():
            self._setup()

    # -- cross-products, once --------------------------------------------------
    def _setup(self):
        self._condition_fixed_effects()
        self._condition_random_effects()
        self._products()
        # (the conditioned design and response are rebuilt when needed, by
        # `with_response`: not kept, they would be a third of a large model's memory)
        self._xs = self._yr = None

    def _conditioned_design(self, scaled=True):
        """The conditioned fixed-effects design: centred, rows times sqrt(w), columns
        times x_scale (`scaled`); what `_condition_fixed_effects` makes and
        `with_response` rebuilds, by the same operations."""
        xs = self.exog - self._x_mean
        if self.weights is not None:
            xs *= np.sqrt(self.weights)[:, None]
        if scaled:
            xs *= self.x_scale
        return xs

    def _condition_fixed_effects(self):
        """The optimizer's fixed-effects design and response, an exact
        reparametrization of the user's.

        With an intercept column the other columns are centred (their means
        move into the intercept: X_c = X C, C unit triangular, so the REML
        criterion is unchanged) and the response too; every column is then
        scaled to unit root mean square (x_scale: the REML criterion moves by
        -2 log|S|, which the criterion adds back).  The response enters as its
        residual from ordinary least squares on these columns (the criterion
        depends on y only through y - X beta).  Cross-products of centred data
        do not cancel: a covariate given as a Unix timestamp, or a response
        shifted by 1e9, loses no digits.
        """
        x = self.exog
        n, p = x.shape
        # prior weights enter as rows scaled by sqrt(w) (V = Z G Z' + scale W^-1 becomes
        # Z* G Z*' + scale I); the means, the scales and the least squares are weighted
        w = self.weights
        w_total = float(n) if w is None else float(w.sum())
        ones = np.flatnonzero(np.all(x == 1.0, axis=0)) if n else np.zeros(0, dtype=int)
        self._x_intercept = int(ones[0]) if ones.size else None
        self._x_mean = np.zeros(p)
        self._y_shift = 0.0
        if self._x_intercept is not None:
            self._x_mean = x.mean(axis=0) if w is None else w @ x / w_total
            self._x_mean[self._x_intercept] = 0.0
        # one new n x p array, centred, weighted and scaled in place (peak memory of
        # large models: each copy of the design is a sixth of the input or more)
        xs = self._conditioned_design(scaled=False)
        xtx_diag = np.einsum("ij,ij->j", xs, xs)
        self.x_scale = 1.0 / np.sqrt(np.where(xtx_diag > 0, xtx_diag / w_total, 1.0))
        xs *= self.x_scale
        gram = xs.T @ xs
        check_fixed_rank(gram, self.exog_names, lambda zero: np.all(x[:, zero] == 0.0, axis=0))
        self._xs, self._gram = xs, gram
        self._condition_response()

    def _condition_response(self):
        """The response as the optimizer sees it: centred by its (weighted) mean when
        there is an intercept, rows scaled by sqrt(w), and its residual from least
        squares on the conditioned columns (beta_ols)."""
        y = self.endog if self.offset is None else self.endog - self.offset
        w = self.weights
        if self._x_intercept is not None:
            self._y_shift = float(y.mean() if w is None else w @ y / float(w.sum()))
        yc = y - self._y_shift
        if w is not None:
            yc = yc * np.sqrt(w)
        xs = self._xs if self._xs is not None else self._conditioned_design()
        # (no fixed effects, as in y ~ 0 + (1 | a) + (1 | b): y itself)
        self.beta_ols = np.linalg.solve(self._gram, xs.T @ yc) if xs.shape[1] else \
            np.zeros(0)
        self._yr = yc - xs @ self.beta_ols
        self._y_sum_of_squares = float(yc @ yc)

    def _condition_random_effects(self):
        """Each term's design as the optimizer sees it, Z_k T_k: within a block
        holding an intercept (unstructured, so its model is unchanged) the other
        columns centred and scaled to unit sd, elsewhere (``||``, diagonal
        blocks, where centring would change the model) only scaled to unit root
        mean square.  theta in these coordinates is what the optimizer and the
        optimum check see; `_to_user` / `_to_conditioned` map it."""
        self._reparams, self._z_conditioned, self._z_intercepts = [], [], []
        for t in self.terms:
            z = t.z
            n = len(z)
            col_mean = z.mean(axis=0) if n else np.zeros(t.q)
            col_sd = np.sqrt(np.mean((z - col_mean) ** 2, axis=0)) if n else np.ones(t.q)
            col_rms = np.sqrt(np.mean(z * z, axis=0)) if n else np.ones(t.q)
            intercept = np.all(z == 1.0, axis=0)
            reparam = Reparametrization(t.structure, col_mean, col_sd, col_rms, intercept)
            self._reparams.append(reparam)
            self._z_intercepts.append(intercept)
            zt = z if np.array_equal(reparam.t, np.eye(t.q)) else z @ reparam.t
            if self.weights is not None:
                zt = zt * np.sqrt(self.weights)[:, None]
            self._z_conditioned.append(np.ascontiguousarray(zt))

    def _to_conditioned(self, theta):
        """The optimizer's theta for the user's (lme4's) theta."""
        theta = np.asarray(theta, dtype=float)
        out = []
        for t, r, sl in zip(self.terms, self._reparams, self.theta_slices):
            out.append(t.structure.theta(r.lam_to_scaled(t.structure.lam(theta[sl]))))
        return np.concatenate(out) if out else theta

    def _to_user(self, theta):
        """The user's (lme4's) theta for the optimizer's."""
        theta = np.asarray(theta, dtype=float)
        out = []
        for t, r, sl in zip(self.terms, self._reparams, self.theta_slices):
            out.append(t.structure.theta(r.lam_to_user(t.structure.lam(theta[sl]))))
        return np.concatenate(out) if out else theta

    def _products(self):
        """Every cross-product the compiled criterion needs, of the conditioned
        designs, once."""
        # each term's rows level by level (a counting sort), once
        self._grouped = []
        for t in self.terms:
            _, offsets, order = _core.group_blocks(t.codes, t.n_levels)
            self._grouped.append((order, offsets))
        intercepts = [t.q == 1 and bool(i[0]) for t, i in zip(self.terms, self._z_intercepts)]
        self.assemble(row_products(self.terms, self._grouped, self._xs,
                                    self._z_conditioned, self._yr, intercepts,
                                    self.weights is not None))

    def assemble(self, products):
        """The compiled criterion's arrays from the products of the conditioned rows
        (`row_products`, or the sum of several chunks' products)."""
        p = self.k_fe
        t1, rest = self.terms[0], self.terms[1:]

        def per_level(k):
            return products["per_level"][k]

        def pairs(k_a, k_b):
            return products["pairs"][k_a, k_b]

        self._level_counts = products["counts"]
        self._level_sums = products["level_sums"]
        self._pair_counts = products["pair_counts"]
        self._pair_levels = products["pairs"]
        self.ztz1, self.ztx1, self.zty1 = per_level(0)
        self.xtx, self.xty, self.yty = products["xtx"], products["xty"], float(products["yty"])
        # the other terms: the blocks of Z_R'Z_R in M's lower triangle (each level's
        # own block, and the levels of two terms that share rows), Z_R'X, Z_R'y
        sizes = [t.n_levels * t.q for t in rest]
        self.rest_offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
        m = int(self.rest_offsets[-1])
        self.m = m
        zrx = np.zeros((m, p))
        zry = np.zeros(m)
        rr_row, rr_col, rr_tr, rr_tc, rr_values = [], [], [], [], []
        for k, term in enumerate(rest):
            ztz, ztx, zty = per_level(k + 1)
            o, q = self.rest_offsets[k], term.q
            starts = o + np.arange(term.n_levels) * q
            rr_row.append(starts)
            rr_col.append(starts)
            rr_tr.append(np.full(term.n_levels, k))
            rr_tc.append(np.full(term.n_levels, k))
            rr_values.append(ztz.reshape(term.n_levels, -1))
            zrx[o:o + term.n_levels * q] = ztx.reshape(term.n_levels * q, p)
            zry[o:o + term.n_levels * q] = zty.reshape(-1)
            for k2 in range(k):
                other = rest[k2]
                la, lb, vals = pairs(k2 + 1, k + 1)
                rr_row.append(o + lb * q)
                rr_col.append(self.rest_offsets[k2] + la * other.q)
                rr_tr.append(np.full(len(la), k))
                rr_tc.append(np.full(len(la), k2))
                rr_values.append(vals.reshape(len(la), -1))
        self.zrx, self.zry = zrx, zry
        if rest:
            block_sizes = np.concatenate([np.full(len(v), v.shape[1]) for v in rr_values])
            rr_valoff = np.concatenate([[0], np.cumsum(block_sizes)[:-1]])
            rr = dict(
                rr_row=np.concatenate(rr_row), rr_col=np.concatenate(rr_col),
                rr_tr=np.concatenate(rr_tr), rr_tc=np.concatenate(rr_tc),
                rr_valoff=rr_valoff,
                rr_values=np.ascontiguousarray(np.concatenate([v.reshape(-1)
                                                               for v in rr_values])),
            )
        else:
            rr = dict(rr_row=[], rr_col=[], rr_tr=[], rr_tc=[], rr_valoff=[], rr_values=[])
        rr = {k: np.ascontiguousarray(v, dtype=np.float64 if k == "rr_values" else np.intp)
              for k, v in rr.items()}
        # coupling of the first term with the others: CSR over the first term's levels
        cols, terms_ix, valoffs, levels, values = [], [], [], [], []
        offset = 0
        for k, term in enumerate(rest):
            l1, lk, vals = pairs(0, k + 1)
            levels.append(l1)
            cols.append(self.rest_offsets[k] + lk * term.q)
            terms_ix.append(np.full(len(l1), k))
            size = term.q * t1.q
            valoffs.append(offset + np.arange(len(l1)) * size)
            values.append(vals.reshape(-1))
            offset += len(l1) * size
        if rest:
            levels = np.concatenate(levels)
            cols = np.concatenate(cols)
            # each term's pairs come sorted by level, then column; the terms' columns
            # increase with the term: a stable sort by level orders them all
            order = np.argsort(levels, kind="stable") if len(rest) > 1 \
                else np.arange(len(levels))
            self.pair_col = np.ascontiguousarray(cols[order], dtype=np.intp)
            self.pair_term = np.ascontiguousarray(np.concatenate(terms_ix)[order], dtype=np.intp)
            self.pair_valoff = np.ascontiguousarray(np.concatenate(valoffs)[order],
                                                    dtype=np.intp)
            self.pair_values = np.ascontiguousarray(np.concatenate(values))
            counts = np.bincount(levels, minlength=t1.n_levels)
        else:
            self.pair_col = self.pair_term = self.pair_valoff = np.zeros(0, dtype=np.intp)
            self.pair_values = np.zeros(0)
            counts = np.zeros(t1.n_levels, dtype=np.intp)
        self.pair_offsets = np.zeros(t1.n_levels + 1, dtype=np.intp)
        np.cumsum(counts, out=self.pair_offsets[1:])
        per_level_width = np.zeros(t1.n_levels, dtype=np.intp)
        self.q_rest = np.array([t.q for t in rest], dtype=np.intp)
        if rest:
            per_level_width = np.bincount(
                np.repeat(np.arange(t1.n_levels), counts), weights=self.q_rest[self.pair_term],
                minlength=t1.n_levels).astype(np.intp)
        self.max_width = int(per_level_width.max(initial=0)) + p + 1
        self.qmax = int(max([t.q for t in rest], default=1))
        # theta: the terms' entries, in term order
        self.theta_slices = []
        start = 0
        for t in self.terms:
            self.theta_slices.append(slice(start, start + t.structure.n_theta))
            start += t.structure.n_theta
        self.n_theta = start
        self.lower_bounds = np.concatenate([t.structure.lower_bounds for t in self.terms])
        theta_term = np.concatenate([np.full(t.structure.n_theta, k)
                                     for k, t in enumerate(self.terms)])
        self._rr = rr
        self._theta_term = theta_term.astype(np.intp)
        self._envelope = self._packed_envelope()
        self._make_criterion()

    def _packed_envelope(self):
        """M's structural envelope (row i's first column any evaluation can fill: its
        own level's block, the blocks of Z_R'Z_R, the pairs of columns a first-term
        level meets, the fixed-effects rows in full) when it is narrow enough to
        store packed (`PACKED_MAX_FRACTION`), else None (a dense M)."""
        m, p = self.m, self.k_fe
        dim = m + p + 1
        first = np.arange(dim, dtype=np.intp)
        first[m:] = 0

        def lower(rows_start, widths, cols):
            """first[rows_start[b] + 0..widths[b]-1] = min(first, cols[b])"""
            if len(rows_start) == 0:
                return
            total = int(widths.sum())
            within = np.arange(total) - np.repeat(np.cumsum(widths) - widths, widths)
            np.minimum.at(first, np.repeat(rows_start, widths) + within,
                          np.repeat(cols, widths))

        for k, term in enumerate(self.terms[1:]):
            o, q = int(self.rest_offsets[k]), term.q
            starts = o + np.arange(term.n_levels, dtype=np.intp) * q
            lower(starts, np.full(term.n_levels, q), starts)
        rr = self._rr
        between = rr["rr_row"] != rr["rr_col"]
        lower(rr["rr_row"][between], self.q_rest[rr["rr_tr"][between]], rr["rr_col"][between])
        counts = np.diff(self.pair_offsets)
        if len(self.pair_col):
            nonempty = np.flatnonzero(counts)
            level_min = np.minimum.reduceat(self.pair_col, self.pair_offsets[nonempty])
            lower(self.pair_col, self.q_rest[self.pair_term],
                  np.repeat(level_min, counts[nonempty]))
        entries = int(np.sum(np.arange(dim) - first + 1))
        if entries > PACKED_MAX_FRACTION * dim * (dim + 1) / 2:
            if dim > MAX_DENSE_ORDER:
                raise NotImplementedError(
                    f"the random-effect terms other than the largest have {m} effects that "
                    f"cross: their dense Schur complement is limited to order "
                    f"{MAX_DENSE_ORDER} so far (nested terms have no such limit)")
            return None
        if entries > MAX_DENSE_ORDER ** 2:
            raise NotImplementedError(
                f"the Schur complement of the random-effect terms other than the largest "
                f"needs {entries} entries even packed; the limit is {MAX_DENSE_ORDER ** 2} "
                f"so far")
        return first

    def _make_criterion(self):
        """The compiled criterion, in the conditioned coordinates, from the products."""
        rr, rest = self._rr, self.terms[1:]
        self._criterion = _several_factors.MultiCriterion(
            self.ztz1, self.ztx1, self.zty1, self.pair_offsets, self.pair_col, self.pair_term,
            self.pair_valoff, self.pair_values, self.q_rest, self.max_width,
            np.array([t.n_levels for t in rest], dtype=np.intp), rr["rr_row"], rr["rr_col"],
            rr["rr_tr"], rr["rr_tc"], rr["rr_valoff"], rr["rr_values"], self.zrx, self.zry,
            np.ascontiguousarray(self.xtx), np.ascontiguousarray(self.xty), self.yty,
            self._theta_term,
            np.concatenate([t.structure.theta_rows for t in self.terms]).astype(np.intp),
            np.concatenate([t.structure.theta_cols for t in self.terms]).astype(np.intp),
            np.array([t.q for t in self.terms], dtype=np.intp), self.nobs,
            float(np.sum(np.log(self.x_scale))),
            self.sum_log_weights, self._envelope,
        )
        self.criterion = UserCriterion(self)

    def with_response(self, endog):
        """The same model of another response (same rows, design, weights and offset):
        only the response's products are computed (Z'y, X'y, y'y), the design's are
        shared; what the bootstrap and pb_test refit.

        Examples
        --------
        >>> import lmm, pandas as pd
        >>> d = pd.read_csv("tests/data/penicillin.csv")  # doctest: +SKIP
        >>> res = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", d)  # doctest: +SKIP
        >>> res.model.with_response(d["diameter"] * 2).fit().fe_params  # doctest: +SKIP
        """
        from .dask_frames import requires_rows

        requires_rows(self, "with_response (and the bootstrap)")
        endog = np.ascontiguousarray(endog, dtype=float)
        if endog.shape != (self.nobs,):
            raise ValueError(f"endog must have shape ({self.nobs},), got {endog.shape}")
        if not np.all(np.isfinite(endog)):
            raise ValueError("endog must be finite (no NaN or inf)")
        # (not copy.copy: unpickling's __setstate__ would rebuild the products)
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.endog = endog
        new._condition_response()
        xs, yr, zc = new._conditioned_design(), new._yr, new._z_conditioned
        new._yr = None
        zry = np.zeros(new.m)
        for k, (order, offsets) in enumerate(new._grouped):
            _, _, zty, _, xty, yty = _core.cross_products(xs, zc[k], yr, order, offsets)
            if k == 0:
                new.zty1, new.xty, new.yty = zty, xty, float(yty)
            else:
                term = new.terms[k]
                o = new.rest_offsets[k - 1]
                zry[o:o + term.n_levels * term.q] = zty.reshape(-1)
        new.zry = zry
        new._level_sums = [np.bincount(t.codes, weights=yr, minlength=t.n_levels)
                           for t in new.terms]
        with blas_threads():
            new._make_criterion()
        return new

    def __getstate__(self):
        # the compiled criterion is rebuilt from the products on unpickling
        state = self.__dict__.copy()
        state.pop("_criterion", None)
        state.pop("criterion", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        with blas_threads():
            if self.exog is None:       # (a model of products alone: from a Dask frame)
                self._make_criterion()
            else:
                self._setup()

    # -- one evaluation ----------------------------------------------------------
    def _lams(self, theta):
        """The terms' factors Lambda_k at theta (conditioned coordinates)."""
        return [t.structure.lam(theta[sl]) for t, sl in zip(self.terms, self.theta_slices)]

    def _user_factors(self, lams):
        """T_k Lambda_k: factors (not triangular) of the user's relative
        covariances, for the estimates."""
        return [lam if r.t.shape == (1, 1) and r.t[0, 0] == 1.0 else r.t @ lam
                for lam, r in zip(lams, self._reparams)]

    def _lam_rest(self, lams):
        """The other terms' factors stacked as (K - 1, qmax, qmax), for the kernels."""
        lam_rest = np.zeros((max(len(lams) - 1, 1), self.qmax, self.qmax))
        for k, lam in enumerate(lams[1:]):
            lam_rest[k, :lam.shape[0], :lam.shape[0]] = lam
        return lam_rest

    def _factor(self, theta, reml=True):
        """The criterion at theta, its factor of M left in the compiled criterion
        (what `estimates` and `rest_inverse` read until the next evaluation), or None
        where M is not positive definite."""
        dev = self._criterion.deviance(np.asarray(theta, dtype=float), reml)
        return dev if np.isfinite(dev) else None

    def fixed_effect_profile_deviance(self, column, value, free=None, start=None):
        """The ML deviance (-2 log-likelihood) minimized over every other parameter
        with fixed effect `column` held at `value` (lme4's profile of a fixed
        effect: the column moved into the response, the model refitted by ML).

        Returns (deviance, start): `start` (lme4's theta) warm-starts the next
        call at a nearby value.  `free` is not used (a several-factor model's
        structure is its terms').

        Examples
        --------
        >>> import lmm, pandas as pd
        >>> d = pd.read_csv("tests/data/penicillin.csv")  # doctest: +SKIP
        >>> md = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", d).model  # doctest: +SKIP
        >>> md.fixed_effect_profile_deviance(0, 22.97)[0]  # doctest: +SKIP
        """
        column = int(column)
        if not 0 <= column < self.k_fe:
            raise IndexError(f"column {column} out of range for {self.k_fe} fixed effects")
        if self.exog is None:       # (a fit from a Dask frame: from its products)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = self.profile_submodel(column, value).fit(reml=False, start=start)
            return -2.0 * res.llf, res.theta
        keep = [k for k in range(self.k_fe) if k != column]
        held = float(value) * self.exog[:, column]
        sub = MultiTermModel(self.endog, self.exog[:, keep], list(self.terms),
                             [self.exog_names[k] for k in keep], endog_name=self.endog_names,
                             weights=self.weights,
                             offset=held if self.offset is None else self.offset + held)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sub.fit(reml=False, start=start)
        return -2.0 * res.llf, res.theta

    def profile_submodel(self, column, value):
        """The model of lme4's profile of fixed effect `column` at `value` (the column
        moved into the offset), from this model's products, without the rows.

        The submodel's conditioned design is this one's times a matrix M (its columns
        but `column`, uncentred when `column` is the intercept) and its response this
        one's plus X_s a; so its least-squares residual is y_r + X_s delta, and every
        product follows from the stored ones: Z'y_r' = Z'y_r + Z'X_s delta, y_r'y_r' =
        y_r'y_r + 2 delta'X_s'y_r + delta'G delta (no cancellation: y_r is orthogonal
        to X_s).  The same model as the one `fixed_effect_profile_deviance` builds from
        the rows (tests/test_dask_frames.py compares them).
        """
        c, v = int(column), float(value)
        p = self.k_fe
        keep = [k for k in range(p) if k != c]
        s, gram, beta = self.x_scale, self._gram, self.beta_ols
        icpt = self._x_intercept
        a = np.zeros(p)
        if c == icpt:
            # the columns uncentred: x_j sqrt(w) = X_s[:, j] / s_j + m_j X_s[:, 0] / s_0
            mass = float(self.nobs) if self.weights is None else float(self.weights.sum())
            m = self._x_mean
            new_scale = np.array([1.0 / np.sqrt(gram[j, j] / (s[j] ** 2 * mass) + m[j] ** 2)
                                  if gram[j, j] / s[j] ** 2 + mass * m[j] ** 2 > 0 else 1.0
                                  for j in keep])
            M = np.zeros((p, len(keep)))
            for col, j in enumerate(keep):
                M[j, col] = new_scale[col] / s[j]
                M[c, col] = new_scale[col] * m[j] / s[c]
            a[c] = (self._y_shift - v) / s[c]
            sub_icpt, sub_mean, sub_shift = None, np.zeros(len(keep)), 0.0
        else:
            M = np.eye(p)[:, keep]
            new_scale = s[keep]
            a[c] = -v / s[c]
            sub_icpt = None if icpt is None else keep.index(icpt)
            sub_mean = self._x_mean[keep]
            sub_shift = self._y_shift - v * self._x_mean[c] if icpt is not None else 0.0
        gram_sub = M.T @ gram @ M
        xty_c = gram @ (beta + a)                      # X_s' y_c' in this model's columns
        beta_sub = np.linalg.solve(gram_sub, M.T @ xty_c) if keep else np.zeros(0)
        delta = beta + a - M @ beta_sub                # y_r' = y_r + X_s delta
        sub = object.__new__(type(self))
        sub.__dict__.update(self.__dict__)
        sub.__dict__.pop("_criterion", None)
        sub.exog_names = [self.exog_names[k] for k in keep]
        sub.k_fe = len(keep)
        sub.design_info = None
        sub.x_scale, sub._x_intercept, sub._x_mean, sub._y_shift = \
            new_scale, sub_icpt, sub_mean, sub_shift
        sub._gram, sub.beta_ols = gram_sub, beta_sub
        sub._y_sum_of_squares = float(self._y_sum_of_squares + 2.0 * a @ (gram @ beta)
                                      + a @ gram @ a)
        sub.ztx1 = np.ascontiguousarray(self.ztx1 @ M)
        sub.zty1 = np.ascontiguousarray(self.zty1 + self.ztx1 @ delta)
        sub.zrx = np.ascontiguousarray(self.zrx @ M)
        sub.zry = np.ascontiguousarray(self.zry + self.zrx @ delta)
        sub.xtx = np.ascontiguousarray(gram_sub)
        sub.xty = np.ascontiguousarray(M.T @ (self.xty + gram @ delta))
        sub.yty = float(self.yty + 2.0 * delta @ self.xty + delta @ gram @ delta)
        # the ANOVA start's per-level sums of the residual (exact for unweighted random
        # intercepts, whose Z'X_s are the levels' sums of X_s; a start otherwise)
        sums = []
        for k, t in enumerate(self.terms):
            if k == 0:
                level_x = self.ztx1[:, 0, :]
            else:
                o = self.rest_offsets[k - 1]
                level_x = self.zrx[o:o + t.n_levels * t.q].reshape(t.n_levels, t.q, p)[:, 0]
            sums.append(self._level_sums[k] + level_x @ delta)
        sub._level_sums = sums
        sub.max_width = self.max_width - 1
        sub._envelope = sub._packed_envelope()          # (M has one row fewer)
        with blas_threads():
            sub._make_criterion()
        return sub

    def deviance_function(self, reml=True):
        """The profiled criterion as a function of lme4's theta (lme4's ``devfun``):
        a `lmm.devfun.DevianceFunction` (derivatives by central differences:
        this kernel has no analytic ones)."""
        from .devfun import several_factor_function

        return several_factor_function(self, reml)

    def deviance(self, theta, reml=True):
        """The profiled criterion (-2 log-likelihood or REML criterion) at the
        user's (lme4's) theta."""
        return self._criterion.deviance(self._to_conditioned(theta), reml)

    def _deviance_conditioned(self, theta, reml=True):
        return self._criterion.deviance(np.asarray(theta, dtype=float), reml)

    def solution(self, theta, reml=True, conditioned=False):
        """Estimates at theta (the user's, or with conditioned=True the
        optimizer's): beta, its covariance, the scale, the modes, all for the
        user's data."""
        theta = np.asarray(theta, dtype=float) if conditioned else self._to_conditioned(theta)
        lams = self._lams(theta)
        lam_rest = self._lam_rest(lams)
        dev = self._factor(theta, reml)
        p, n = self.k_fe, self.nobs
        beta_s, xvx_inv, u_rest, rss = self._criterion.estimates()
        scale = rss / (n - p if reml else n)
        u1 = _several_factors.first_term_modes(
            lams[0], self.ztz1, self.ztx1, self.zty1, self.pair_offsets, self.pair_col,
            self.pair_term, self.pair_valoff, self.pair_values, lam_rest, self.q_rest,
            self.max_width, np.ascontiguousarray(beta_s), np.ascontiguousarray(u_rest),
        )
        factors = self._user_factors(lams)
        modes = [u1 @ factors[0].T]
        for k, (term, lam) in enumerate(zip(self.terms[1:], factors[1:])):
            o = self.rest_offsets[k]
            u = u_rest[o:o + term.n_levels * term.q].reshape(term.n_levels, term.q)
            modes.append(u @ lam.T)
        fe_params, vcov_fe = self._fixed_to_user(
            (beta_s + self.beta_ols) * self.x_scale,
            scale * xvx_inv * np.outer(self.x_scale, self.x_scale))
        return dict(
            fe_params=fe_params,
            vcov_fe=vcov_fe,
            scale=scale,
            cov_re=[scale * lam @ lam.T for lam in factors],
            modes=modes,
            deviance=dev,
        )

    def deviance_and_vcov_fe(self, theta_user, sigma, reml=True):
        """lmerTest's deviance in (theta, sigma), sigma not profiled, and the fixed
        effects' covariance there (see `ProfiledDeviance.deviance_and_vcov_fe`).

        From the profiled criterion's pieces at theta: its value gives log|V| once
        rss and log|X'V^-1X| are known.
        """
        theta = self._to_conditioned(np.asarray(theta_user, dtype=float))
        dev_profiled = self._factor(theta, reml)
        if dev_profiled is None:
            raise np.linalg.LinAlgError("the criterion is not finite at theta")
        _, xvx_inv, _, rss = self._criterion.estimates()
        n, p = self.nobs, self.k_fe
        nu = n - p if reml else n
        sign, logdet_inv = np.linalg.slogdet(xvx_inv) if p else (1.0, 0.0)
        logdet_xvx = -logdet_inv if reml else 0.0
        logdet_v = dev_profiled - nu * (1.0 + math.log(2.0 * math.pi * rss / nu)) - logdet_xvx
        sigma2 = float(sigma) ** 2
        log_2pi_s2 = math.log(2.0 * math.pi * sigma2)
        dev = logdet_v + rss / sigma2 + n * log_2pi_s2
        if reml:
            dev += logdet_xvx - p * log_2pi_s2
        vcov = sigma2 * xvx_inv * np.outer(self.x_scale, self.x_scale)
        return float(dev), self._fixed_to_user(np.zeros(p), vcov)[1]

    def _fixed_to_user(self, beta, vcov):
        """Fixed effects of the centred columns -> the user's: X_c = X C with
        C = I - e m' (e the intercept, m the column means), so beta = C beta_c,
        vcov = C vcov_c C'; the response's mean returns to the intercept."""
        i = self._x_intercept
        if i is None:
            return beta, vcov
        c = np.eye(len(beta))
        c[i] -= self._x_mean
        beta = c @ beta
        beta[i] += self._y_shift
        return beta, c @ vcov @ c.T

    def conditional_covariances(self, theta, reml=True, conditioned=False):
        """Conditional covariances of each term's modes given the data, per level
        (lme4's condVar: scale Lambda (A^-1)_ll Lambda', beta held fixed), at the
        user's theta (or the optimizer's, conditioned=True)."""
        theta = np.asarray(theta, dtype=float) if conditioned else self._to_conditioned(theta)
        with blas_threads():
            return self._conditional_covariances(theta, reml)

    def _conditional_covariances(self, theta, reml):
        lams = self._lams(theta)
        lam_rest = self._lam_rest(lams)
        self._factor(theta, reml)
        p, n = self.k_fe, self.nobs
        scale = self._criterion.rss / (n - p if reml else n)
        # the entries of S^-1 the variances need (all of them when M is dense)
        s_inv, s_inv_base = self._criterion.rest_inverse()
        a_inv1 = _several_factors.first_term_condvar(
            lams[0], self.ztz1, self.pair_offsets, self.pair_col, self.pair_term,
            self.pair_valoff, self.pair_values, lam_rest, self.q_rest, self.max_width,
            s_inv, s_inv_base,
        )
        factors = self._user_factors(lams)
        condvar = [scale * factors[0] @ a_inv1 @ factors[0].T]
        for k, (term, lam) in enumerate(zip(self.terms[1:], factors[1:])):
            o, q = int(self.rest_offsets[k]), term.q
            nl = term.n_levels
            # each level's own block: rows and columns o + l q + (0..q-1)
            start = o + np.arange(nl) * q
            r = start[:, None, None] + np.arange(q)[None, :, None]
            c = start[:, None, None] + np.arange(q)[None, None, :]
            row, col = np.maximum(r, c), np.minimum(r, c)
            blocks = s_inv[s_inv_base[row] + col]                   # (nl, q, q)
            condvar.append(scale * lam @ blocks @ lam.T)
        return condvar

    # -- fitting --------------------------------------------------------------
    def start_theta(self, reml=True):
        """Starting theta (the user's, lme4's coordinates) of the default fit:
        see `_start_conditioned`."""
        return self._to_user(self._start_conditioned(reml))

    def _start_conditioned(self, reml=True):
        """Starting theta: for each random intercept term (a scalar term whose
        design is all ones) a one-way analysis-of-variance estimate of its
        relative standard deviation (clipped to [0.05, 1000]); lme4's start
        (Lambda = I) for the other terms.

        Two sets of estimates, and the one with the lower criterion is kept:
        each term alone, from the residuals of ordinary least squares (right
        for nested factors, whose finer levels' means contain the coarser
        ones'), and by backfitting, each term from those residuals less the
        other terms' shrunken level means, two sweeps (right for crossed
        factors: alone, a factor whose variance is 1e6 times another's hides
        it, and the other's start falls to the clip, where the criterion is
        concave).  Without an intercept only the first: the residuals keep the
        response's mean, which backfitting gives to the first term (Penicillin's
        y ~ 0 + (1 | plate) + (1 | sample) then starts near a local optimum).

        The optimum usually lies within a factor of two of it, which saves the
        optimizer a third to a half of its evaluations on large crossed models
        and keeps Newton steps away from the region of negative curvature that
        lme4's start can lead them into (InstEval).
        """
        scalar = [k for k, t in enumerate(self.terms) if t.q == 1 and self._z_intercepts[k][0]]
        alone = self._anova_start(scalar, backfit=False)
        if len(scalar) < 2 or self._x_intercept is None:
            return alone
        backfitted = self._anova_start(scalar, backfit=True)
        if self._deviance_conditioned(backfitted, reml) < \
                self._deviance_conditioned(alone, reml):
            return backfitted
        return alone

    def _anova_start(self, scalar, backfit):
        """The one-way ANOVA estimates of `_start_conditioned`, from the products: each
        term's rows per level, the response's per-level sums and sum of squares, and
        for backfitting the rows each two terms' levels share (the other terms'
        shrunken level means are subtracted through them)."""
        out = [t.structure.start_theta() for t in self.terms]
        means = {k: np.zeros(self.terms[k].n_levels) for k in scalar}
        sums, counts = self._level_sums, self._level_counts

        def shared(k, j, values_j):
            """per level of k, the sum over its rows of values_j[level of j]"""
            a, b = min(k, j), max(k, j)
            level_a, level_b, _ = self._pair_levels[a, b]
            count = self._pair_counts[a, b]
            mine, other = (level_a, level_b) if k == a else (level_b, level_a)
            return np.bincount(mine, count * values_j[other], minlength=len(counts[k]))

        for _sweep in range(2 if backfit else 1):
            for k in scalar:
                total, rr = sums[k], self.yty
                if backfit:
                    # r = y_r - sum_j f_j, f_j the other terms' shrunken means by row
                    others = [j for j in scalar if j != k]
                    total = total - sum(shared(k, j, means[j]) for j in others)
                    rr = rr - 2.0 * sum(float(sums[j] @ means[j]) for j in others)
                    for j in others:
                        for i in others:
                            rr += float(counts[j] @ means[j] ** 2) if i == j else \
                                float(means[i] @ shared(i, j, means[j]))
                rel, means[k] = _one_way_anova(total, float(rr), counts[k])
                if rel is not None:
                    out[k] = np.array([rel])
        return np.concatenate(out)

    def fit(self, reml=True, start=None, method=None):
        """Fit by REML (default) or ML; returns MultiTermResults (see `_fit`).

        The dense factorizations run with `lmm._threads.default_threads` BLAS
        threads (1 unless LMM_BLAS_THREADS says otherwise): OpenBLAS's threads
        slow a fit several times when other processes hold the cores, and on
        these matrices (order up to a few thousand, factored again at each
        evaluation) more threads gain little on an idle machine.
        """
        with blas_threads():
            return self._fit(reml, start, method)

    def _fit(self, reml, start, method):
        """Fit by REML (default) or ML; returns MultiTermResults.

        method None (default): from `start_theta`, trust-region Newton steps with
        finite-difference derivatives of the compiled criterion (with at most
        FD_NEWTON_MAX_THETA theta entries; scipy's COBYQA above that); when
        they end on the boundary, or fail, COBYQA (derivative-free, bounded)
        searches from lme4's start too and the better end point is kept.  Any
        scipy.optimize.minimize method name runs that method instead, from
        lme4's start.

        The end point is then checked (`lmm.optimize.judge_optimum` on
        finite-difference derivatives).  If it fails, COBYQA restarts once from
        it (Newton steps finishing); if the best point still fails, the results
        say converged=False and a ConvergenceWarning gives the reasons.  Every
        search is listed in ``results.optimum_check.attempts``.
        """
        # the least-squares residual's sum of squares: zero, to rounding, when the fixed
        # effects fit the response exactly (a constant response): no variance is left
        if not self.yty > 1e-13 * self._y_sum_of_squares:
            raise ValueError(
                f"the response ({self.endog_names}) is fitted exactly by the fixed effects "
                "(for example, it is constant): the residual variance is zero and no mixed "
                "model can be fitted")
        lme4_start = np.concatenate([t.structure.start_theta() for t in self.terms])
        lower = self.lower_bounds
        evaluations_before = self._criterion.n_evaluations
        fun = lambda th: self._deviance_conditioned(np.maximum(th, lower), reml)  # noqa: E731
        attempts = []
        if start is not None:
            start = self._to_conditioned(start)
        if method is not None:
            theta0 = lme4_start if start is None else start
            res = self._scipy_search(fun, theta0, lower, method)
            attempts.append(_attempt(str(method), res))
        else:
            theta0 = self._start_conditioned(reml) if start is None else start
            if self.n_theta > FD_NEWTON_MAX_THETA:
                res = self._scipy_search(fun, theta0, lower, derivative_free())
                attempts.append(_attempt(derivative_free(), res))
            else:
                res = self._newton(theta0, reml)
                attempts.append(_attempt("newton", res))
                if not res.success or self._on_boundary(res.x):
                    # a second search from lme4's start: compiled Newton steps first
                    # (COBYQA's own work is about a millisecond an iteration, 60x a
                    # Penicillin evaluation), COBYQA where they fail
                    other = self._newton(lme4_start, reml)
                    attempts.append(_attempt("newton (from lme4's start)", other))
                    if not other.success:
                        other = self._scipy_search(fun, lme4_start, lower, derivative_free())
                        attempts.append(_attempt(derivative_free() + " (from lme4's start)",
                                                 other))
                    if other.fun < res.fun - 1e-10 * (1 + abs(res.fun)) or not res.success:
                        res = other
        theta = np.maximum(res.x, lower)
        check = self.check_optimum(theta, reml, conditioned=True)
        if not check.converged:
            theta, check = self._restart(theta, check, reml, attempts)
        check.attempts = attempts
        # (the record counts every evaluation of the fit, start values included)
        check.n_evaluations = self._criterion.n_evaluations - evaluations_before
        check.n_iterations = sum(a["iterations"] for a in attempts)
        results = MultiTermResults(self, self._to_user(theta), reml, check)
        _warn_unless_verified(results, check)
        return results

    def _newton(self, theta0, reml):
        from scipy import optimize  # (0.15 s at import: when needed)
        theta, value, ok, iterations = self._criterion.minimize(
            theta0, self.lower_bounds, reml, max_iter=FD_NEWTON_MAX_ITER)
        return optimize.OptimizeResult(x=theta, fun=value, success=ok, nit=iterations,
                                       nfev=None)

    def _on_boundary(self, theta):
        return any(np.any(t.structure.lam(theta[sl]).diagonal() < SINGULAR_TOLERANCE)
                   for t, sl in zip(self.terms, self.theta_slices))

    def _restart(self, theta, check, reml, attempts):
        """What a careful user does when the optimizer stops short: first one Newton
        step on the check's own derivatives (the loop's stopping rule, on its own
        differences, can end a step short of the check's: Penicillin's sample
        variance with 40 times the plates), kept if the check then passes; else one
        more search from the best point, derivative-free (COBYQA), then Newton
        steps; returns the better point and its check."""
        lower = self.lower_bounds
        polished = self._check_newton_step(theta, check, reml)
        if polished is not None:
            attempts.append(dict(method="newton step (on the check's derivatives)",
                                 deviance=polished[1].deviance, success=True, message="",
                                 iterations=1))
            return polished
        fun = lambda th: self._deviance_conditioned(np.maximum(th, lower), reml)  # noqa: E731
        other = self._scipy_search(fun, theta, lower, derivative_free())
        attempts.append(_attempt(derivative_free() + " (restart from the best point)",
                                 other))
        candidate = np.maximum(other.x, lower)
        if self.n_theta <= FD_NEWTON_MAX_THETA:
            polished = self._newton(candidate, reml)
            attempts.append(_attempt("newton (after the restart)", polished))
            if polished.fun <= fun(candidate):
                candidate = np.maximum(polished.x, lower)
        new_check = self.check_optimum(candidate, reml, conditioned=True)
        if new_check.converged or new_check.deviance < check.deviance:
            return candidate, new_check
        return theta, check

    def _check_newton_step(self, theta, check, reml):
        """(theta, check) after one Newton step on `check`'s gradient and Hessian over
        the entries off the bounds, if the Hessian there is positive definite, the
        deviance does not rise and the new point passes the check; else None."""
        free = ~np.asarray(check.at_bound, dtype=bool)
        if not free.any() or not np.all(np.isfinite(check.hessian)):
            return None
        try:
            factor = linalg.cho_factor(check.hessian[np.ix_(free, free)])
        except linalg.LinAlgError:
            return None
        step = np.zeros_like(theta)
        step[free] = -linalg.cho_solve(factor, check.gradient[free])
        candidate = np.maximum(theta + step, self.lower_bounds)
        new_check = self.check_optimum(candidate, reml, conditioned=True)
        if new_check.converged and \
                new_check.deviance <= check.deviance + 1e-12 * (1 + abs(check.deviance)):
            return candidate, new_check
        return None

    def theta_labels(self):
        """Labels of theta's entries (term by term): ``Lambda['x', '(Intercept)']
        for 'a'``."""
        labels = []
        for t in self.terms:
            labels.extend(theta_labels(t.structure, t.names, t.group))
        return labels

    def _hessian_noise(self, theta, f, reml):
        """Rounding error of the finite-difference Hessian's entries: the
        criterion's own rounding (the spread of its values at theta moved by a
        few ulps, never below 2 ulps of f) times 4 over the steps' product."""
        values = [f]
        for k in (1, 2, 3, 4):
            values.append(self._deviance_conditioned(theta * (1.0 + k * 4e-16), reml))
        rounding = max(float(np.ptp(values)), 4.4e-16 * abs(f))
        steps = CHECK_STEP * np.maximum(1.0, np.abs(theta))   # those of `derivatives`
        return 4.0 * rounding / np.outer(steps, steps)

    def check_optimum(self, theta, reml=True, conditioned=False):
        """The optimum check at theta (the user's, or with conditioned=True the
        optimizer's) by `lmm.optimize.judge_optimum` on the compiled criterion's
        finite-difference gradient and Hessian in the conditioned coordinates.

        Returns
        -------
        lmm.optimize.OptimumCheck (its theta in the conditioned coordinates)
        """
        theta = np.asarray(theta, dtype=float) if conditioned else self._to_conditioned(theta)
        before = self._criterion.n_evaluations
        f, g, h = self._criterion.derivatives(theta, reml)
        labels = self.theta_labels()
        verdict = judge_optimum(theta, f, g, h, self.lower_bounds, names=labels)
        if verdict.flat or any("saddle" in m for m in verdict.messages):
            # the curvature found may be the differences' error: rounding (1e-7 in
            # the criterion of a crossed model with a variance ratio of 1e6) over
            # the steps' product, and the forward differences' O(step) error off
            # the diagonal.  Look again with longer steps, extrapolated (the
            # Hessians at steps h and 2h: 2 H_h - H_2h cancels the O(h) term),
            # and judge against both errors
            _, _, h1 = self._criterion.derivatives(theta, reml, CHECK_STEP)
            _, _, h2 = self._criterion.derivatives(theta, reml, 2 * CHECK_STEP)
            noise = np.abs(h1 - h2) + self._hessian_noise(theta, f, reml)
            h = 2 * h1 - h2
            verdict = judge_optimum(theta, f, g, h, self.lower_bounds, names=labels,
                                    hessian_noise=noise)
        return OptimumCheck(
            theta=theta, deviance=f, gradient=g, projected_gradient=verdict.projected_gradient,
            hessian=h, at_bound=verdict.at_bound, converged=verdict.converged,
            messages=verdict.messages, n_evaluations=self._criterion.n_evaluations - before,
        )

    @staticmethod
    def _scipy_search(fun, theta0, lower, method):
        from scipy import optimize  # (0.15 s at import: when needed)
        bounds = optimize.Bounds(lower, np.full_like(lower, np.inf))
        options = derivative_free_options(method) if method in ("COBYQA", "Powell") else {}
        return optimize.minimize(fun, theta0, method=method, bounds=bounds, options=options)


def _one_way_anova(total, rr, count):
    """One-way analysis of variance of a vector r by levels, from its sums per level
    (`total`), its sum of squares `rr` and the rows per level (`count`): the
    relative standard deviation of the level effects (clipped to [0.05, 1000],
    None if the within-level mean square vanishes) and the shrunken level means."""
    n_levels = len(count)
    n = float(count.sum())
    ssb = float(np.sum(total ** 2 / np.maximum(count, 1.0)))
    msw = (rr - ssb) / max(n - n_levels, 1)
    msb = ssb / (n_levels - 1)
    n0 = (n - float(count @ count) / n) / (n_levels - 1)
    if not (msw > 0 and n0 > 0):
        return None, np.zeros(n_levels)
    rel = float(np.clip(np.sqrt(max(msb - msw, 0.0) / n0 / msw), 0.05, 1000.0))
    shrink = count * rel ** 2 / (1.0 + count * rel ** 2)
    return rel, shrink * total / np.maximum(count, 1.0)


class UserCriterion:
    """The model's criterion in the user's (lme4's) theta: what
    ``MultiTermModel.criterion`` offers callers outside the optimizer (profile
    intervals, tests); the compiled criterion works in the conditioned
    coordinates."""

    def __init__(self, model):
        self._model = model

    def deviance(self, theta, reml=True):
        """The profiled criterion at the user's theta."""
        return self._model.deviance(theta, reml)

    @property
    def rss(self):
        """The penalized residual sum of squares at the last evaluation."""
        return self._model._criterion.rss

    @property
    def n_evaluations(self):
        return self._model._criterion.n_evaluations


def _attempt(method, res):
    """One search of the optimization record."""
    return dict(method=method, deviance=float(res.fun), success=bool(res.success),
                message=str(getattr(res, "message", "")),
                iterations=int(getattr(res, "nit", 0) or 0))


def _warn_unless_verified(results, check):
    """SingularFitWarning on the boundary, else ConvergenceWarning if the check
    failed (as the one-factor MixedLM.fit does)."""
    if results.singular_messages:
        extra = "" if check.converged else \
            "; and the optimum check failed: " + "; ".join(check.messages)
        warnings.warn("The fit is singular (on the boundary of the parameter space): "
                      + "; ".join(results.singular_messages) + extra, SingularFitWarning,
                      stacklevel=4)
    elif not check.converged:
        warnings.warn("The fit did not converge: " + "; ".join(check.messages),
                      ConvergenceWarning, stacklevel=4)


_DEFAULT = object()     # (predict's re_form: the default depends on the model's style)


class MultiTermResults(MixedModelResults):
    """Results of a model with several random-effect terms (lme4-style).

    ``theta`` is lme4's (the terms' relative covariance factors for the user's
    data); ``converged`` is the optimum check's verdict; ``optimization`` the
    check (`lmm.optimize.OptimumCheck`, in the optimizer's conditioned
    coordinates: its theta, gradient, Hessian and messages) with every search
    run in ``optimization.attempts``.
    """

    def __init__(self, model, theta, reml, check):
        self.model = model
        self.theta = theta
        self.reml = reml
        self.method = "REML" if reml else "ML"
        self.optimum_check = check
        sol = model.solution(check.theta, reml, conditioned=True)
        self.solution = sol
        self.llf = -0.5 * sol["deviance"]
        self.scale = float(sol["scale"])
        self.nobs = model.nobs
        # the optimum check's verdict, not the optimizer's own flag
        self.converged = bool(check.converged)
        self.k_fe = model.k_fe
        n_cov = sum(int(t.structure.cov_rows.size) for t in model.terms)
        self.n_params = self.k_fe + n_cov + 1

    # -- inference with degrees of freedom (lmm.inference, lmerTest's) -------------
    @cached_property
    def _varpar_functions(self):
        model, reml = self.model, self.reml
        varpar = np.append(np.asarray(self.theta, dtype=float), math.sqrt(self.scale))

        def evaluate(v):
            return model.deviance_and_vcov_fe(v[:-1], v[-1], reml)

        return inference.VarianceParameterFunctions(evaluate, varpar)

    def simulate(self, nsim=1, seed=None, re_form="~0"):
        """Responses drawn from the fitted model, (nobs, nsim) (lme4's ``simulate``):
        new random effects of every term and new residuals at the fitted parameters
        (`lmm.bootstrap.simulate`).

        re_form : "~0" (default, lme4's ``re.form = NA``: every term's effects drawn
            anew), None (lme4's ``re.form = NULL``: every term held at its conditional
            modes), or a formula naming the terms to hold, e.g. ``"~(1 | plate)"``."""
        from . import bootstrap

        held = self._re_form_terms(re_form)
        conditioned = {k: self.solution["modes"][k] for k in held}
        return bootstrap.simulate(self, nsim, seed, conditioned)

    def bootstrap(self, nboot, seed=None, n_jobs=1, executor=None, client=None,
                  chunk_size=None, progress=None):
        """Parametric bootstrap (lme4's ``bootMer``): the model refitted to `nboot`
        simulated responses (`lmm.bootstrap.parametric_bootstrap`); reproducible for a
        seed whatever n_jobs is.  `progress`: a tqdm.auto bar (a widget in notebooks),
        by default on in interactive sessions when tqdm is installed."""
        from . import bootstrap

        return bootstrap.parametric_bootstrap(self, nboot, seed, n_jobs, progress, executor,
                                              client, chunk_size)

    def _hat_values(self):
        from .dask_frames import requires_rows

        m = self.model
        requires_rows(m, "hat values (and Cook's distances)")
        blocks = [(t.z, t.codes, t.n_levels) for t in m.terms]
        return influence.hat_values_dense(m.exog, blocks, self.solution["cov_re"], self.scale,
                                          m.weights)


    @cached_property
    def singular_messages(self):
        """Terms whose covariance is singular (lme4's isSingular, per term)."""
        msgs = []
        # in the conditioned coordinates (unit-scale covariates), where theta is
        # a standard deviation relative to the residual's, as lme4's tolerance
        # assumes: a slope's variance is not zero because x is in microseconds
        theta = self.optimum_check.theta
        for term, sl in zip(self.model.terms, self.model.theta_slices):
            lam = term.structure.lam(theta[sl])
            for j in range(term.q):
                if lam[j, j] < SINGULAR_TOLERANCE:
                    if np.all(np.abs(lam[j, :j]) < SINGULAR_TOLERANCE):
                        msgs.append(f"the variance of {term.names[j]!r} for {term.group!r} is "
                                    "estimated at zero")
                    else:
                        msgs.append(f"{term.names[j]!r} for {term.group!r} is perfectly "
                                    "correlated with the term's other effects")
        return msgs

    @property
    def is_singular(self):
        return bool(self.singular_messages)

    def _ranef_parts(self):
        modes = self.solution["modes"]
        parts = []
        for k, term in enumerate(self.model.terms):
            parts.append((term.group, term.labels, term.names, modes[k],
                          lambda term=term: self.random_effects_cov[term.group]))
        return parts

    @cached_property
    def fe_params(self):
        return pd.Series(self.solution["fe_params"], index=self.model.exog_names)

    @cached_property
    def bse_fe(self):
        return pd.Series(np.sqrt(np.diag(self.solution["vcov_fe"])), index=self.model.exog_names)

    @cached_property
    def params(self):
        """The fixed effects (``fe_params``).  Unlike statsmodels' one-group
        results, the covariance parameters are not appended: they are per term
        (``cov_re``, ``varcorr()``), with profile intervals from ``conf_int_re``."""
        return self.fe_params

    def cov_params(self):
        """Covariance matrix of the fixed-effects estimates (lme4's ``vcov``):
        scale (X'V^-1 X)^-1 at the estimated covariance."""
        return pd.DataFrame(self.solution["vcov_fe"], index=self.model.exog_names,
                            columns=self.model.exog_names)

    @property
    def bse(self):
        """Standard errors of `params` (the fixed effects)."""
        return self.bse_fe

    @cached_property
    def tvalues(self):
        """Wald statistics of the fixed effects (lme4's "t value")."""
        return self.fe_params / self.bse_fe

    @cached_property
    def pvalues(self):
        """Two-sided normal p-values of `tvalues` (statsmodels' z tests)."""
        return pd.Series(2 * special.ndtr(-np.abs(self.tvalues.to_numpy())),
                         index=self.fe_params.index)

    def conf_int(self, alpha=0.05, method="wald"):
        """Confidence intervals of the fixed effects at level 1 - alpha.

        method 'wald' (default, normal quantiles) or 'profile': lme4's profile
        intervals (``confint(method = "profile")``'s fixed-effect rows), the ML
        deviance profiled over every other parameter (a REML fit is refitted by
        ML first, as lme4 does).  The variance parameters' intervals are
        `conf_int_re`'s.

        Returns
        -------
        DataFrame with columns 0 (lower) and 1 (upper), as statsmodels.

        Examples
        --------
        >>> import lmm, pandas as pd
        >>> d = pd.read_csv("tests/data/penicillin.csv")  # doctest: +SKIP
        >>> res = lmm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", d)  # doctest: +SKIP
        >>> res.conf_int(method="profile")  # doctest: +SKIP
        """
        if method == "wald":
            q = special.ndtri(1 - alpha / 2)
            return pd.DataFrame({0: self.fe_params - q * self.bse_fe,
                                 1: self.fe_params + q * self.bse_fe})
        if method != "profile":
            raise ValueError(f"method must be 'wald' or 'profile', got {method!r}")
        from .confint import fixed_effect_intervals

        ml = self.model.fit(reml=False) if self.reml else self
        fe = fixed_effect_intervals(ml, self.model.fixed_effect_profile_deviance,
                                    level=1 - alpha)
        return pd.DataFrame({0: fe["lower"], 1: fe["upper"]})

    @cached_property
    def cov_re(self):
        """{factor: DataFrame} random-effect covariance of each term."""
        out = {}
        for term, cov in zip(self.model.terms, self.solution["cov_re"]):
            out[term.group] = pd.DataFrame(cov, index=term.names, columns=term.names)
        return out

    @cached_property
    def random_effects(self):
        """{factor: DataFrame} conditional modes, one row per level."""
        return {term.group: pd.DataFrame(modes, index=term.labels, columns=term.names)
                for term, modes in zip(self.model.terms, self.solution["modes"])}

    @cached_property
    def random_effects_cov(self):
        """{factor: (levels, q, q) array} conditional covariances of the modes
        given the data (lme4's condVar, fixed effects held at their estimates)."""
        condvar = self.model.conditional_covariances(self.optimum_check.theta, self.reml,
                                                     conditioned=True)
        return {term.group: cv for term, cv in zip(self.model.terms, condvar)}

    def conf_int_re(self, level=0.95, method="profile", criterion="ML"):
        """Profile confidence intervals of every term's standard deviations and
        correlations, and of sigma (lme4's ``confint(m, method = "profile")``).

        Parameters
        ----------
        level : float
        method : {'profile'}
        criterion : {'ML', 'REML'}
            The deviance profiled: 'ML' (default, as lme4, which refits a REML
            model by ML), or the REML criterion.

        Returns
        -------
        DataFrame indexed like lme4's rows (``sd_(Intercept)|plate``,
        ``cor_x.(Intercept)|g1``, ``sigma``) with columns estimate, lower, upper
        (standard deviation / correlation scale) and var_estimate, var_lower,
        var_upper (squares of the sd rows; NaN for correlations).

        Examples
        --------
        >>> import lmm, pandas as pd
        >>> d = pd.DataFrame({"y": [1.0, 2.1, 2.9, 4.2, 5.1, 5.8, 7.2, 8.1, 8.8],
        ...                   "a": list("xxxyyyzzz"), "b": list("pqrpqrpqr")})
        >>> ci = lmm.lmer("y ~ 1 + (1 | a) + (1 | b)", d).conf_int_re()  # doctest: +SKIP
        """
        from .confint import conf_int_re, multi_profile_intervals

        return conf_int_re(self, multi_profile_intervals, level=level, method=method,
                           criterion=criterion)

    def profile_re(self, re_ix, vtype="re", num_low=5, dist_low=1.0, num_high=5,
                   dist_high=1.0):
        """Profile log-likelihood of a random-effect variance (statsmodels' signature).

        Parameters
        ----------
        re_ix : int
            A row of `varcorr()` that holds a variance (not a covariance, not the
            residual).
        vtype : {'re'}
        num_low, dist_low, num_high, dist_high :
            The grid on the variance scale, as the one-factor ``profile_re``:
            num_low + 1 points from v - dist_low up to the estimate v, then
            num_high more up to v + dist_high; points at or below zero dropped.

        Returns
        -------
        ndarray (k, 2): the variance and its profile log-likelihood (REML for a
        REML fit), every other parameter free (`lmm.confint.multi_profile_variance`).

        Examples
        --------
        >>> import lmm, pandas as pd
        >>> d = pd.DataFrame({"y": [1.0, 2.1, 2.9, 4.2, 5.1, 5.8, 7.2, 8.1, 8.8, 9.9],
        ...                   "a": list("vvwwxxyyzz"), "b": list("pqpqpqpqpq")})
        >>> prof = lmm.lmer("y ~ 1 + (1 | a) + (1 | b)", d).profile_re(0)  # doctest: +SKIP
        """
        from .confint import multi_profile_variance
        from .profile import profile_grid

        if vtype != "re":
            raise NotImplementedError("only vtype='re' (random-effect variances) is supported")
        variances = []          # varcorr()'s rows: (term, column) of each variance row
        for ti, term in enumerate(self.model.terms):
            for members in term.structure.blocks:
                variances.extend((ti, j) for j in members)
                variances.extend(None for a in range(len(members))
                                 for _ in members[a + 1:])
        if isinstance(re_ix, bool) or not 0 <= int(re_ix) < len(variances) \
                or variances[int(re_ix)] is None:
            rows = [r for r, v in enumerate(variances) if v is not None]
            raise ValueError(f"re_ix must be a row of varcorr() holding a variance ({rows}), "
                             f"got {re_ix!r}")
        ti, j = variances[int(re_ix)]
        v = float(self.cov_re[self.model.terms[ti].group].iloc[j, j])
        grid = profile_grid(v, int(num_low), float(dist_low), int(num_high), float(dist_high))
        return multi_profile_variance(self, ti, j, grid)

    def varcorr(self):
        """R's as.data.frame(VarCorr(m)): grp, var1, var2, vcov, sdcor."""
        rows = []
        for term in self.model.terms:
            cov = self.cov_re[term.group].to_numpy()
            for b, members in enumerate(term.structure.blocks):
                grp = term.group + (f".{b}" if b else "")
                for j in members:
                    rows.append((grp, term.names[j], None, cov[j, j], np.sqrt(cov[j, j])))
                for a, j in enumerate(members):
                    for k in members[a + 1:]:
                        sd = np.sqrt(cov[j, j] * cov[k, k])
                        rows.append((grp, term.names[j], term.names[k], cov[j, k],
                                     cov[j, k] / sd if sd > 0 else np.nan))
        rows.append(("Residual", None, None, self.scale, np.sqrt(self.scale)))
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    @property
    def vcomp(self):
        """Variance components of a model given by statsmodels' vc_formula, in
        the order of its sorted names (statsmodels' vcomp, on the cov_re scale)."""
        names = self.model.vc_names
        return np.array([self.cov_re[name].iloc[0, 0] for name in names])

    def predict(self, exog=None, re_form=_DEFAULT, allow_new_levels=False, se_fit=False,
                newdata=None, include_re=None, offset=None):
        """Predictions, with or without the random effects (lme4's ``predict``).

        Parameters
        ----------
        exog, newdata : DataFrame, optional
            New data with the formula's variables (and the grouping columns when
            random effects are included); the model's own data if omitted.  An
            array is taken as the fixed-effects design (fixed part only).
        re_form : None, False or str, optional
            None: every term's random effects; ``"~0"`` or False: none;
            ``"~(1 | plate)"``: only the grouping factors it names (each with all of
            its effects).  Default: None for models built by `lmm.lmer`, none for
            statsmodels-style models (`mixedlm` with `vc_formula`).
        allow_new_levels : bool
            A level not seen in the fit, or a missing one, gets zero random effects;
            otherwise it is an error naming the level.
        se_fit : bool
            Also the standard errors of the population-level prediction.
        include_re : bool, optional
            The earlier spelling: True is ``re_form=None`` with new levels allowed,
            False ``re_form="~0"``.
        offset : array_like, optional
            The new rows' offset, for a model fitted with one (required then with new
            data; the model's own offset is used for its own rows).

        Returns
        -------
        Series indexed like the data (ndarray for an array `exog` or, for a
        statsmodels-style model, for the model's own data); with `se_fit`, a
        DataFrame with columns fit and se_fit.
        """
        from .formula.design import factor_codes, prediction_offset, transform_exog

        m = self.model
        lme4_style = m.lmer_formula is not None
        if include_re is not None:
            if not isinstance(include_re, bool | np.bool_):
                raise TypeError(
                    f"include_re must be True or False, got {include_re!r}; to include "
                    "only some random-effect terms use re_form (lme4's argument)")
            if re_form is not _DEFAULT:
                raise TypeError("give re_form or include_re, not both")
            re_form = None if include_re else False
            allow_new_levels = allow_new_levels or bool(include_re)
        if newdata is not None:
            if exog is not None:
                raise TypeError("give the new data as exog or as newdata, not both")
            exog = newdata
        if re_form is _DEFAULT:
            re_form = None if lme4_style else False
        chosen = self._re_form_terms(re_form)
        fe = self.solution["fe_params"]
        frame = isinstance(exog, pd.DataFrame)
        if exog is None:
            from .dask_frames import requires_rows

            requires_rows(m, "predict() on the model's own rows (use fittedvalues, a Dask "
                             "series, or pass newdata)")
            x, index = m.exog, m.row_labels
            out = x @ fe
            for k in chosen:
                term, modes = m.terms[k], self.solution["modes"][k]
                out = out + np.einsum("ij,ij->i", term.z, modes[term.codes])
        elif not frame:
            x = np.asarray(exog, dtype=float)
            if chosen:
                raise ValueError("random effects need a DataFrame with the grouping columns "
                                 "(or re_form='~0')")
            out, index = x @ fe, None
        else:
            design = m.design_info
            if design is None:
                raise ValueError("this model was not built from a formula; pass an array")
            x, index = transform_exog(design, exog), exog.index
            out = x @ fe
            for k in chosen:
                term, modes = m.terms[k], self.solution["modes"][k]
                z = np.column_stack([transform_exog(d, exog) for d in term.designs])
                new_codes, new_labels = factor_codes(exog, term.group)
                position = {lab: i for i, lab in enumerate(term.labels)}
                # (a missing value's code is -1: it must not index the last label)
                level_rows = np.array([position.get(lab, -1) for lab in new_labels] + [-1],
                                      dtype=np.intp)
                rows = level_rows[np.where(new_codes >= 0, new_codes, len(new_labels))]
                known = rows >= 0
                if not known.all() and not allow_new_levels:
                    bad = [lab for lab, r in zip(new_labels, level_rows[:-1]) if r < 0]
                    what = repr(bad[0]) if bad else "a missing value"
                    raise ValueError(f"the level {what} of {term.group!r} was not in the fit "
                                     "(pass allow_new_levels=True to give it zero random "
                                     "effects)")
                out[known] += np.einsum("ij,ij->i", z[known], modes[rows[known]])
        if offset is not None or m.offset is not None:
            out = out + prediction_offset(m, exog, offset, len(out))
        if se_fit:
            se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", x, self.solution["vcov_fe"], x), 0, None))
            return pd.DataFrame({"fit": out, "se_fit": se}, index=index)
        if frame or (lme4_style and index is not None):
            return pd.Series(out, index=index)
        return out

    def _re_form_terms(self, re_form):
        """Positions in model.terms of the terms re_form includes."""
        m = self.model
        named = parse_re_form(re_form)
        if named is None:
            return list(range(len(m.terms)))
        groups = [t.group for t in m.terms]
        parsed = m.lmer_formula
        out = []
        for term in named:
            if term.group not in groups:
                raise ValueError(f"re_form names the grouping factor {term.group!r}, which is "
                                 f"not one of the model's ({', '.join(groups)})")
            if parsed is not None:
                model_exprs = sorted(term_key(t.expr) for t in parsed.terms
                                     if t.group == term.group)
                asked = sorted(term_key(t.expr) for t in named if t.group == term.group)
                if asked != model_exprs:
                    raise NotImplementedError(
                        f"re_form must name every effect of {term.group!r} as the model "
                        "writes them (some of a factor's effects cannot be chosen yet)")
            out.append(groups.index(term.group))
        return sorted(set(out))

    @property
    def fittedvalues(self):
        if getattr(self.model, "dask_source", None) is not None:
            from .dask_frames import lazy_fitted

            return lazy_fitted(self)
        return pd.Series(self.predict(re_form=None, newdata=None), index=self.model.row_labels)

    @property
    def resid(self):
        if getattr(self.model, "dask_source", None) is not None:
            from .dask_frames import lazy_fitted

            return lazy_fitted(self, resid=True)
        return pd.Series(self.model.endog - np.asarray(self.predict(re_form=None)),
                         index=self.model.row_labels)

    def summary(self, style="lme4", alpha=0.05, ddf="satterthwaite"):
        """The fit's summary: lme4's layout (default; the fixed effects with lmerTest's
        df and p-values by `ddf`, None for lme4's plain table) or statsmodels'
        (``style="statsmodels"``: fixed effects with Wald z tests and intervals at
        level 1 - alpha, then every term's variances and covariances).

        Examples
        --------
        >>> import lmm, pandas as pd
        >>> d = pd.DataFrame({"y": [1.0, 2.1, 2.9, 4.2, 5.1, 5.8, 7.2, 8.1, 8.8, 9.9],
        ...                   "a": list("vvwwxxyyzz"), "b": list("pqpqpqpqpq")})
        >>> print(lmm.lmer("y ~ 1 + (1 | a) + (1 | b)", d).summary())  # doctest: +SKIP
        """
        from .summary import (
            Summary,
            fit_title,
            fixed_effect_correlation_lines,
            fixed_effects_lines,
            lme4_html,
            lme4_name,
            multi_statsmodels_summary,
            random_effects_lines,
            scaled_residual_lines,
        )

        if style == "statsmodels":
            return multi_statsmodels_summary(self, alpha=alpha)
        if style != "lme4":
            raise ValueError(f"style must be 'lme4' or 'statsmodels', got {style!r}")
        ddf = inference.check_ddf(ddf)
        if ddf == "kenward-roger" and not self.reml:
            ddf = None
        lines = [fit_title(self, ddf)]
        if self.model.formula:
            lines.append(f"Formula: {self.model.formula}")
        lines.append("")
        if self.reml:
            lines.append(f"REML criterion at convergence: {self.REMLcrit:.1f}")
        else:
            lines.append(f"AIC {self.aic:.1f}  BIC {self.bic:.1f}  logLik {self.llf:.1f}")
        lines.append("")
        if self.model.endog is not None:     # (a fit from a Dask frame has no rows here)
            lines.extend(scaled_residual_lines(self.resid.to_numpy(), self.scale))
            lines.append("")
        lines.append("Random effects:")
        lines.extend(random_effects_lines(self.varcorr()))
        # (lme4: "groups:  school:class, 200; school, 40")
        groups = "; ".join(f"{t.group}, {t.n_levels}" for t in self.model.terms)
        lines.append(f"Number of obs: {self.nobs}, groups:  {groups}")
        lines.append("")
        if self.k_fe:
            lines.extend(fixed_effects_lines(self, ddf))
            if self.k_fe > 1:
                lines.append("")
                lines.extend(fixed_effect_correlation_lines(
                    self.solution["vcov_fe"], [lme4_name(n) for n in self.fe_params.index]))
        else:
            lines.append("No fixed effect coefficients")
        if self.singular_messages:
            lines.append("boundary (singular) fit: " + "; ".join(self.singular_messages))
        if not self.converged:
            lines.append("Convergence warning: " + "; ".join(self.optimizer["messages"]))
        text = "\n".join(lines) + "\n"
        return Summary(text, html=lme4_html(self, lines, groups))

    def __repr__(self):
        return f"<MultiTermResults: {self.method}, llf={self.llf:.4f}>"
