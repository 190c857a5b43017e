"""The formula entry points that build a model and fit it: `lmer` (lme4's syntax,
one grouping factor or several) and `fit_many` (one design, many responses).

They sit above the engines (lmm.model, lmm.several_factors, lmm.many_responses):
the statsmodels-style entry points are the models' own ``from_formula``.
"""

import warnings

import numpy as np
import pandas as pd

from ._arguments import NOT_YET, check_keywords
from .dataframes import to_pandas
from .formula import safe
from .formula.design import row_values
from .formula.fast import split_top
from .formula.lme4 import is_bar_term
from .formula.lme4 import parse as parse_lmer
from .many_responses import fit_responses, response_matrix, weight_matrix
from .model import MixedLM

# The name the design's placeholder response takes in the data.
_PLACEHOLDER = safe.PLACEHOLDER_RESPONSE


def lmer(formula, data, REML=True, missing="none", subset=None, eval_env=None,
         weights=None, offset=None, **fit_kwargs):
    """Fit a linear mixed model written in lme4's syntax.

    Parameters
    ----------
    formula : str
        e.g. ``"Weight ~ Time + (1 + Time | Pig)"``, ``"(1 | Pig) + (0 + Time | Pig)"``
        or ``"(Time || Pig)"`` for uncorrelated effects.
    data : DataFrame
    REML : bool
        REML (default, as lme4) or maximum likelihood.
    missing : {'none', 'drop'}
    subset : array_like, optional
        The rows of `data` to use (a boolean mask or index labels, as
        ``data.loc[subset]`` reads them), lme4's ``subset=``.
    eval_env : int, dict or patsy.EvalEnvironment, optional
        Where formula names that are not columns are looked up; without it,
        formulas see only the data's columns and lmm's formula functions.
    weights : str or array_like, optional
        Prior weights (lme4's ``weights=``): a column name of `data` or an
        array of its length; row i has residual variance sigma^2 / w_i (one or
        several grouping factors).
    offset : str or array_like, optional
        lme4's ``offset=``: a known term added to the linear predictor.  Given by
        column name (or as ``offset(x)`` terms), predictions on new data read it
        from the new data; given as values, ``predict`` needs ``offset=``.
    **fit_kwargs : passed to `MixedLM.fit` (one grouping factor) or
        `MultiTermModel.fit` (several); unknown keywords raise TypeError, and
        lme4's ``control`` and ``na_action``, not supported yet,
        NotImplementedError.

    Returns
    -------
    MixedLMResults for one grouping factor (its ``model`` is the MixedLM built
    from the formula); MultiTermResults for several (crossed, nested).

    Examples
    --------
    >>> import lmm
    >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
    >>> res = lmm.lmer("Weight ~ Time + (1 + Time | Pig)", d)
    >>> round(res.llf, 4)
    -2217.0475
    """
    if not isinstance(data, pd.DataFrame):           # (no call for pandas data)
        from .dask_frames import is_dask_frame

        if is_dask_frame(data):
            if subset is not None:
                raise NotImplementedError("subset= with a Dask DataFrame: filter the frame "
                                          "first (dask_df[mask])")
            model = MixedLM.from_lmer(formula, data, missing=missing, weights=weights,
                                      offset=offset, **({} if eval_env is None else
                                                        {"eval_env": eval_env}))
            return model.fit(reml=bool(REML), **fit_kwargs)
        data = to_pandas(data)
    if fit_kwargs:
        for name in list(fit_kwargs):
            if name in NOT_YET:
                check_keywords("lmer", {name: fit_kwargs[name]})
    if not isinstance(REML, bool | np.bool_):
        raise TypeError(f"REML must be True or False, got {REML!r}")
    extra = {} if eval_env is None else {"eval_env": eval_env}
    for name, values in (("weights", weights), ("offset", offset)):
        if name == "offset" and isinstance(values, str):
            # (by name, so that predictions on new data read it from their column)
            extra[name] = values
            continue
        if values is not None:
            # (resolved on all the rows: `subset` applies to them as to the data)
            extra[name] = row_values(values, data, name)
            if subset is not None:
                extra[name] = extra[name].loc[subset]
            extra[name] = extra[name].to_numpy()
    if subset is not None:
        data = data.loc[subset]
    model = MixedLM.from_lmer(formula, data, missing=missing, **extra)
    return model.fit(reml=bool(REML), **fit_kwargs)


def fit_many(formula_or_model, data=None, responses=None, groups=None, re_formula=None,
             reml=True, n_jobs=1, executor=None, client=None, chunk_size=None, progress=None,
             missing="none", eval_env=None, weights=None):
    """Fit one linear mixed model per response, all on the same design.

    Parameters
    ----------
    formula_or_model : str or MixedLM
        The fixed effects, one-sided (``"~ cond + c1"``) or two-sided (the
        left-hand side is ignored, with a warning), in patsy syntax or with
        lme4 random-effect terms (``"~ cond + c1 + (1 | donor)"``).  Or a
        MixedLM whose design (exog, exog_re, groups, covariance blocks) is
        used; its own response is ignored.
    data : DataFrame
        The covariates and groups (with a formula).
    responses : 2-D array, DataFrame or Series
        One row per row of `data` (of the model's rows for a MixedLM), one
        column per response.  Names: the DataFrame's columns, else "y0",
        "y1", ...  A missing value (NaN) drops that row for that response only.
    groups : str or array_like
        The groups (with a patsy formula; lme4 formulas name them).
    re_formula : str, optional
        Random effects (patsy formula), a random intercept if omitted.
    reml : bool
        REML (default) or maximum likelihood.
    n_jobs : int
        Threads in this process (the compiled fits release the GIL); -1 for
        one per core.  Ignored when `executor` or `client` is given.
    executor : concurrent.futures.Executor or "processes", optional
        Runs blocks of responses: a ProcessPoolExecutor, a Dask client's
        ``get_executor()``, ...; the design travels with each block.
        "processes" starts a process pool of `n_jobs` workers (all cores for
        n_jobs=1 or -1) that receive the design once each.
    client : distributed.Client, optional
        A Dask client: the design is scattered once to every worker, the
        blocks of responses are scattered and fitted there.
    chunk_size : int, optional
        Responses per block (default: 1024 in one thread, smaller blocks for
        threads, blocks large enough that the design travels cheaply for
        executors and Dask).
    progress : bool, optional
        A tqdm progress bar; by default on in interactive sessions (when tqdm
        is installed), off with False.
    missing : {'none', 'drop'}
        Rows with missing covariates or groups in `data`: an error, or dropped
        for all responses.
    eval_env : int, dict or patsy.EvalEnvironment, optional
        Where formula names that are not columns are looked up (see `lmm.lmer`);
        without it, formulas see only the data's columns and lmm's functions.
    weights : str, array_like (n,) or (n, m), optional
        Prior weights shared by all responses (with a formula: a column name
        of `data` or an array of its length; a MixedLM carries its own), or a
        matrix with one column per response (limma's voom weights; the data's
        rows, or the model's).  Shared weights: responses with missing values
        are fitted through `MixedLM.fit` (slower); per-response weights: every
        response is (each has its own products), listed in ``python_path``.
        A MixedLM with an offset raises NotImplementedError.

    Returns
    -------
    ManyResults
        ``.table``: one row per response with the fixed effects, their
        standard errors and p-values, the variance components, the residual
        variance, llf, nobs, converged and singular flags; ``.results(name)``
        fits one response through `MixedLM.fit` and returns its
        MixedLMResults.

    Examples
    --------
    >>> import numpy as np, pandas as pd, lmm
    >>> rng = np.random.default_rng(0)
    >>> data = pd.DataFrame({"g": np.repeat(np.arange(10), 4), "x": rng.normal(size=40)})
    >>> Y = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    >>> res = lmm.fit_many("~ x + (1 | g)", data, Y, progress=False)
    >>> list(res.table.index)
    ['a', 'b', 'c']
    """
    if responses is None:
        raise TypeError("fit_many needs `responses` (one column per response)")
    data, responses = to_pandas(data), to_pandas(responses)
    if isinstance(formula_or_model, MixedLM):
        return formula_or_model.fit_many(
            responses, reml=reml, weights=weights, n_jobs=n_jobs, executor=executor,
            client=client, chunk_size=chunk_size, progress=progress)
    if not isinstance(formula_or_model, str):
        raise TypeError("formula_or_model must be a formula string or a MixedLM (one "
                        f"grouping factor), got {type(formula_or_model).__name__}")
    per_response = None
    if weights is not None and np.ndim(weights) == 2:
        per_response, weights = weight_matrix(weights), None
    model, rhs, positions = _build_model(formula_or_model, data, groups, re_formula,
                                         missing, eval_env, weights)
    data_index = data.index if isinstance(data, pd.DataFrame) else None
    Y, names = response_matrix(responses, len(data), "data", data_index)
    if per_response is not None and per_response.shape != Y.shape:
        raise ValueError(f"weights has shape {per_response.shape}; per-response weights "
                         f"need one column per response and one row per data row, "
                         f"{Y.shape}")
    if len(positions) != Y.shape[0] or np.any(positions != np.arange(len(positions))):
        Y = Y[positions]
        per_response = None if per_response is None else per_response[positions]
    row_labels = data.index[positions] if data_index is not None else None
    return fit_responses(model, Y, names, reml=reml, weights=per_response, n_jobs=n_jobs,
                         executor=executor, client=client, chunk_size=chunk_size,
                         progress=progress, rhs=rhs, row_labels=row_labels)


# ---------------------------------------------------------------------------
# fit_many's design from a formula
# ---------------------------------------------------------------------------

def _has_bars(rhs):
    return any(is_bar_term(tok) for tok in split_top(rhs, "+-") if tok not in "+-")


def _build_model(formula, data, groups, re_formula, missing, eval_env=None, weights=None):
    """The design's MixedLM from a one- or two-sided formula; (model, rhs, positions).

    positions: the data rows the model kept (all of them unless missing='drop'
    dropped rows with missing covariates); the model's row labels are those
    positions (it is built on the data with a fresh index).
    """
    if data is None:
        raise TypeError("fit_many needs `data` (a DataFrame) with a formula")
    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(data)
    if "~" in formula:
        lhs, rhs = formula.split("~", 1)
    else:
        lhs, rhs = "", formula
    if lhs.strip():
        warnings.warn(
            f"the left-hand side {lhs.strip()!r} of the formula is ignored: fit_many takes "
            "the responses from `responses`", UserWarning, stacklevel=3,
        )
    name = _PLACEHOLDER
    while name in data.columns:
        name += "_"
    frame = data.reset_index(drop=True)
    frame[name] = 0.0
    if _has_bars(rhs):
        if re_formula is not None:
            raise ValueError("give the random effects either as (... | group) terms in the "
                             "formula or as re_formula, not both")
        parsed = parse_lmer(f"{name} ~{rhs}")
        factors = sorted({t.group for t in parsed.terms})
        if len(factors) > 1:
            raise NotImplementedError(
                f"fit_many fits one grouping factor so far; the formula has {len(factors)} "
                f"({', '.join(factors)})")
        group = factors[0]
        if groups is not None and not (isinstance(groups, str) and groups == group):
            raise ValueError(f"the formula groups by {group!r}: leave out groups= or pass "
                             f"groups={group!r}")
        extra = {} if eval_env is None else {"eval_env": eval_env}
        if weights is not None:
            extra["weights"] = weights
        model = MixedLM.from_lmer(f"{name} ~{rhs}", frame, missing=missing, **extra)
        if not isinstance(model, MixedLM):
            raise NotImplementedError("fit_many fits one grouping factor so far")
    else:
        if groups is None:
            raise TypeError("fit_many needs groups= (a column name or the labels), or an "
                            "lme4 formula with a (1 | group) term")
        extra = {} if eval_env is None else {"eval_env": eval_env}
        if weights is not None:
            extra["weights"] = weights
        model = MixedLM.from_formula(f"{name} ~{rhs}", frame, groups=groups,
                                     re_formula=re_formula, missing=missing, **extra)
    positions = np.asarray(model.row_labels, dtype=np.intp)
    return model, rhs.strip(), positions
