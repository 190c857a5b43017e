"""Simulation from a fitted model and the parametric bootstrap.

`simulate` draws responses from the fitted model (lme4's ``simulate`` with
``use.u = FALSE``: new random effects and new residuals); `parametric_bootstrap`
refits the model to each simulated response (lme4's ``bootMer``, MixedModels.jl's
``parametricbootstrap``). The design does not change between replicates, so the
refits go through the many-responses fitter (`lmm.fit_many`): the design's
cross-products are computed once, each replicate adds only its own response's sums
and a compiled optimization, on threads that release the GIL.

Replicate r is drawn from its own stream of the seeded generator (random effects,
then residuals), before any fitting: the replicates do not depend on `n_jobs`, and
the first k of nboot replicates are those of a run with nboot = k.
"""

import math

import numpy as np
import pandas as pd

from ._threads import quiet_warnings
from .confint import MultiSdCorParametrization, SdCorParametrization
from .many_responses import progress_bar


def _effects_factor(cov_re):
    """F with F F' = cov_re, for a positive semi-definite cov_re (a singular fit
    has zero variances)."""
    w, v = np.linalg.eigh(np.asarray(cov_re, dtype=float))
    return v * np.sqrt(np.clip(w, 0.0, None))


def simulate(results, nsim=1, seed=None, conditioned=None):
    """Responses drawn from a fitted model, (nobs, nsim), rows in the model's order.

    y = X beta + offset + Z b + e with b ~ N(0, cov_re) per group and
    e ~ N(0, scale / w), at the fitted beta, cov_re and scale (lme4's ``simulate``).
    `conditioned` (from the results' ``simulate(re_form=)``): the random effects held
    at their conditional modes instead of drawn; one factor: (columns of Z, the modes
    (groups, q)); several: {term position: modes (levels, q)}.  Effects not held are
    drawn from their marginal distribution (lme4's bar terms are independent blocks).

    Examples
    --------
    >>> import lmm
    >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
    >>> res = lmm.lmer("Weight ~ Time + (1 + Time | Pig)", d)
    >>> res.simulate(3, seed=1).shape
    (861, 3)
    """
    nsim = positive_count(nsim, "nsim")
    m = results.model
    if hasattr(m, "terms"):
        return _simulate_terms(results, nsim, seed, conditioned or {})
    from .dask_frames import requires_rows

    requires_rows(m, "simulating responses (and the bootstrap)")
    x, z, codes = m.exog, m.exog_re, m.group_codes
    mean = x @ np.asarray(results.fe_params, dtype=float)
    offset = getattr(m, "offset", None)
    if offset is not None:
        mean = mean + offset
    q = z.shape[1]
    held, modes = conditioned if conditioned is not None else ([], None)
    drawn = [j for j in range(q) if j not in set(held)]
    if held:
        mean = mean + np.einsum("ij,ij->i", z[:, held], np.asarray(modes)[codes][:, held])
    cov = np.asarray(results.cov_re, dtype=float)
    factor = _effects_factor(cov[np.ix_(drawn, drawn)])
    sigma = math.sqrt(results.scale)
    weights = getattr(m, "weights", None)
    if weights is not None:            # (residual variance scale / w_i)
        sigma = sigma / np.sqrt(np.asarray(weights, dtype=float))
    n, n_groups = len(mean), m.n_groups
    z_drawn = z[:, drawn]
    streams = np.random.SeedSequence(seed).spawn(nsim)
    out = np.empty((n, nsim))
    for r, stream in enumerate(streams):
        rng = np.random.default_rng(stream)
        b = rng.standard_normal((n_groups, len(drawn))) @ factor.T
        e = rng.standard_normal(n)
        out[:, r] = mean + np.einsum("ij,ij->i", z_drawn, b[codes]) + sigma * e
    return out


def _simulate_terms(results, nsim, seed, conditioned):
    from .dask_frames import requires_rows

    requires_rows(results.model, "simulating responses (and the bootstrap)")
    """`simulate` for several grouping factors (lmm.several_factors.MultiTermResults): each
    term's effects drawn per level (or held at `conditioned[k]`, its modes), in the
    terms' order, then the residuals."""
    m = results.model
    mean = m.exog @ np.asarray(results.fe_params, dtype=float)
    if m.offset is not None:
        mean = mean + m.offset
    for k, modes in conditioned.items():
        term = m.terms[k]
        mean = mean + np.einsum("ij,ij->i", term.z, np.asarray(modes)[term.codes])
    factors = [_effects_factor(cov) for cov in results.solution["cov_re"]]
    sigma = math.sqrt(results.scale)
    if m.weights is not None:          # (residual variance scale / w_i)
        sigma = sigma / np.sqrt(m.weights)
    out = np.empty((len(mean), nsim))
    for r, stream in enumerate(np.random.SeedSequence(seed).spawn(nsim)):
        rng = np.random.default_rng(stream)
        y = mean.copy()
        for k, (term, factor) in enumerate(zip(m.terms, factors)):
            if k in conditioned:
                continue
            b = rng.standard_normal((term.n_levels, term.q)) @ factor.T
            y += np.einsum("ij,ij->i", term.z, b[term.codes])
        out[:, r] = y + sigma * rng.standard_normal(len(mean))
    return out


def positive_count(value, what):
    """`value` as an int, or a ValueError naming `what` if it is not a positive integer
    (a bool or a float such as 100.0 is refused: they are usually mistakes)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


class BootstrapResults:
    """Replicates of a parametric bootstrap.

    Attributes
    ----------
    replicates : DataFrame
        One row per replicate: the fixed effects (by name), ``sigma``, lme4's theta
        (``theta_1``, ...) and the random-effect standard deviations and
        correlations, named as lme4's ``confint`` names them (``sd_(Intercept)|Pig``,
        ``cor_Time.(Intercept)|Pig``).
    n_singular : int
        Replicates whose fit is singular (a variance at zero, a correlation at +-1).
    n_not_converged : int
        Replicates whose fit failed lmm's optimum check (kept in `replicates`).
    estimates : Series
        The same quantities at the original fit.
    """

    def __init__(self, replicates, estimates, n_singular, n_not_converged):
        self.replicates = replicates
        self.estimates = estimates
        self.n_singular = int(n_singular)
        self.n_not_converged = int(n_not_converged)

    def __len__(self):
        return len(self.replicates)

    def sd(self):
        """Bootstrap standard deviation of each quantity (ddof = 1)."""
        return self.replicates.std(ddof=1)

    def conf_int(self, level=0.95, method="percentile"):
        """Bootstrap confidence intervals.

        Parameters
        ----------
        level : float in (0, 1)
        method : {'percentile', 'shortest'}
            Quantiles of the replicates (numpy's default interpolation), or the
            shortest interval holding ceil(level x n) of the n replicates
            (MixedModels.jl's shortestcovint).

        Returns
        -------
        DataFrame indexed like `replicates`' columns, with columns lower, upper.
        """
        if isinstance(level, bool) or not isinstance(level, int | float) or \
                not 0 < level < 1:
            raise ValueError(f"level must be a number in (0, 1), got {level!r}")
        rows = {}
        for name in self.replicates.columns:
            v = self.replicates[name].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            if not len(v):
                rows[name] = (np.nan, np.nan)
            elif method == "percentile":
                a = (1.0 - level) / 2.0
                rows[name] = tuple(np.quantile(v, [a, 1.0 - a]))
            elif method == "shortest":
                rows[name] = shortest_interval(v, level)
            else:
                raise ValueError(f"method must be 'percentile' or 'shortest', got {method!r}")
        return pd.DataFrame.from_dict(rows, orient="index", columns=["lower", "upper"])

    def __repr__(self):
        return (f"<BootstrapResults: {len(self)} replicates, {self.n_singular} singular, "
                f"{self.n_not_converged} not converged>")

    def summary_frame(self, level=0.95):
        """Estimate, bootstrap sd and percentile interval of each quantity."""
        ci = self.conf_int(level)
        return pd.DataFrame({"estimate": self.estimates, "bootstrap_sd": self.sd(),
                             "lower": ci["lower"], "upper": ci["upper"]})

    def _repr_html_(self):
        caption = (f"Parametric bootstrap: {len(self)} replicates, {self.n_singular} "
                   f"singular, {self.n_not_converged} not converged; 95% percentile "
                   "intervals")
        table = self.summary_frame().to_html(float_format=lambda v: f"{v:.4g}")
        return f"<p>{caption}</p>{table}"


def shortest_interval(values, level=0.95):
    """The shortest interval [v_i, v_{i+k-1}] of the sorted values holding
    k = ceil(level n) of them (the first, where several are shortest)."""
    v = np.sort(np.asarray(values, dtype=float))
    n = len(v)
    k = min(n, max(1, math.ceil(level * n)))
    widths = v[k - 1:] - v[:n - k + 1]
    i = int(np.argmin(widths))
    return float(v[i]), float(v[i + k - 1])


def parametric_bootstrap(results, nboot, seed=None, n_jobs=1, progress=None, executor=None,
                         client=None, chunk_size=None):
    """Refit the model to `nboot` responses simulated from it (see the module
    docstring); returns `BootstrapResults`.  `n_jobs`, `executor`, `client` and
    `chunk_size` are `fit_many`'s (threads, any concurrent.futures executor, a Dask
    client; replicates per task); the replicates do not depend on them.

    Examples
    --------
    >>> import lmm
    >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
    >>> res = lmm.lmer("Weight ~ Time + (1 + Time | Pig)", d)
    >>> boot = res.bootstrap(20, seed=1)
    >>> list(boot.replicates.columns)[:3]
    ['Intercept', 'Time', 'sigma']
    """
    nboot = positive_count(nboot, "nboot")
    m = results.model
    if hasattr(m, "terms"):
        return _bootstrap_terms(results, nboot, seed, n_jobs, progress, executor, client,
                                chunk_size)
    if getattr(m, "offset", None) is not None:
        raise NotImplementedError("the bootstrap of a one-factor fit with an offset is not "
                                  "supported yet (simulate() is; several factors have it)")
    if results.structure.blocks != results.model.covariance_structure().blocks:
        raise NotImplementedError(
            "the bootstrap of a fit with free= is not supported yet; write the "
            "uncorrelated effects in lme4's syntax, lmm.lmer('y ~ x + (x || g)', data)")
    y = simulate(results, nboot, seed)
    table = m.fit_many(y, reml=results.reml, n_jobs=n_jobs, executor=executor, client=client,
                       chunk_size=chunk_size, progress=progress).table
    sdcor = SdCorParametrization(results)
    fe_names = list(m.exog_names)
    q = m.k_re
    s = results.structure
    cov_names = [f"{m.exog_re_names[j]} Var" if j == k else
                 f"{m.exog_re_names[k]} x {m.exog_re_names[j]} Cov"
                 for j, k in zip(s.cov_rows, s.cov_cols)]
    cov = np.zeros((len(table), q, q))
    cov[:, s.cov_rows, s.cov_cols] = table[cov_names].to_numpy()
    cov[:, s.cov_cols, s.cov_rows] = table[cov_names].to_numpy()
    sd = np.sqrt(np.clip(np.einsum("rjj->rj", cov), 0.0, None))
    columns = {name: table[name].to_numpy() for name in fe_names}
    scale = table["scale"].to_numpy()
    columns["sigma"] = np.sqrt(scale)
    # lme4's theta of each replicate (the relative covariance's factor, block by block)
    with np.errstate(invalid="ignore", divide="ignore"):
        thetas = s.thetas_from_covs(cov / scale[:, None, None])
    thetas[~(scale > 0)] = np.nan
    for i in range(thetas.shape[1]):
        columns[f"theta_{i + 1}"] = thetas[:, i]
    labels = sdcor.labels()
    for j in range(q):
        columns[labels[j]] = sd[:, j]
    for a, (j, k) in enumerate(sdcor.cor_pairs):
        with np.errstate(invalid="ignore", divide="ignore"):
            columns[labels[q + a]] = np.where(sd[:, j] * sd[:, k] > 0,
                                              cov[:, j, k] / (sd[:, j] * sd[:, k]), 0.0)
    replicates = pd.DataFrame(columns)
    phi = sdcor.from_results(results)
    est = {name: float(v) for name, v in zip(fe_names, np.asarray(results.fe_params))}
    est["sigma"] = float(phi[-1])
    for i, v in enumerate(np.asarray(results.theta, dtype=float)):
        est[f"theta_{i + 1}"] = float(v)
    for name, v in zip(labels[:-1], phi[:-1]):
        est[name] = float(v)
    converged = table["converged"].to_numpy(dtype=bool)
    singular = table["singular"].to_numpy(dtype=bool)
    return BootstrapResults(replicates, pd.Series(est)[replicates.columns],
                            singular.sum(), (~converged).sum())


def _refit_chunk(model, y, reml):
    """Refits of a several-factor `model` to the columns of `y` (each from the model's
    own start: the same fit as a fresh one of that response): for each, (its fixed
    effects, sd/cor entries and sigma; singular?; converged?).  A module-level
    function of picklable arguments, so that process pools and Dask can run it."""
    sdcor = MultiSdCorParametrization(model)
    out = []
    for r in range(y.shape[1]):
        refit = model.with_response(y[:, r])       # (the design's products shared)
        with quiet_warnings():            # (thread-safe; the refits' warnings are counted)
            res = refit.fit(reml=reml)
        out.append((np.concatenate([np.asarray(res.solution["fe_params"], dtype=float),
                                    sdcor.from_results(res)]),
                    bool(res.is_singular), bool(res.converged),
                    np.asarray(res.theta, dtype=float)))
    return out


def _bootstrap_terms(results, nboot, seed, n_jobs, progress, executor=None, client=None,
                     chunk_size=None):
    """The bootstrap of a several-factor fit: each simulated response refitted by a
    MultiTermModel of the same design (`with_response`: only the response's products
    are computed per replicate), in chunks of
    replicates on threads (`n_jobs`), an `executor` (any concurrent.futures one,
    processes too) or a Dask `client`."""
    from concurrent.futures import ThreadPoolExecutor

    m = results.model
    y = simulate(results, nboot, seed)
    sdcor = MultiSdCorParametrization(m)
    fe_names = list(m.exog_names)
    parallel = n_jobs != 1 or executor is not None or client is not None
    if chunk_size is None:
        chunk_size = max(1, -(-nboot // (8 * max(int(n_jobs), 1)))) if parallel else nboot
    bar = progress_bar(progress, nboot, unit="replicates", desc="bootstrap")
    if bar is not None and not parallel and chunk_size >= nboot:
        chunk_size = max(1, -(-nboot // 50))     # (a bar that moves: 50 steps)
    chunk_size = positive_count(chunk_size, "chunk_size")
    chunks = [y[:, i:i + chunk_size] for i in range(0, nboot, chunk_size)]
    n_chunks = len(chunks)
    args = ([m] * n_chunks, chunks, [results.reml] * n_chunks)
    try:
        if client is not None:
            from distributed import as_completed

            futures = client.map(_refit_chunk, *args)
            index = {f.key: i for i, f in enumerate(futures)}
            parts = [None] * n_chunks
            for future in as_completed(futures):
                parts[index[future.key]] = future.result()
                if bar is not None:
                    bar.update(chunks[index[future.key]].shape[1])
        else:
            if executor is not None:
                done = executor.map(_refit_chunk, *args)
            elif n_jobs != 1:
                pool = ThreadPoolExecutor(max_workers=int(n_jobs))
                done = pool.map(_refit_chunk, *args)
            else:
                done = map(_refit_chunk, *args)
            parts = []
            for part in done:           # (in order: the bar moves as chunks finish)
                parts.append(part)
                if bar is not None:
                    bar.update(len(part))
            if executor is None and n_jobs != 1:
                pool.shutdown()
    finally:
        if bar is not None:
            bar.close()
    out = [o for part in parts for o in part]
    values = np.array([o[0] for o in out])
    labels = sdcor.labels                      # (sd/cor entries, then sigma)
    columns = {name: values[:, i] for i, name in enumerate(fe_names)}
    columns["sigma"] = values[:, len(fe_names) + len(labels) - 1]
    thetas = np.array([o[3] for o in out])
    for i in range(thetas.shape[1]):
        columns[f"theta_{i + 1}"] = thetas[:, i]
    for i, name in enumerate(labels[:-1]):
        columns[name] = values[:, len(fe_names) + i]
    replicates = pd.DataFrame(columns)
    phi = sdcor.from_results(results)
    est = dict(zip(fe_names, np.asarray(results.fe_params, dtype=float).tolist()))
    est["sigma"] = float(phi[-1])
    est.update((f"theta_{i + 1}", float(v))
               for i, v in enumerate(np.asarray(results.theta, dtype=float)))
    est.update(zip(labels[:-1], phi[:-1].tolist()))
    n_singular = sum(o[1] for o in out)
    n_not_converged = sum(not o[2] for o in out)
    return BootstrapResults(replicates, pd.Series(est)[replicates.columns], n_singular,
                            n_not_converged)
