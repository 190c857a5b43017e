"""MixedLMResults: estimates, inference and random effects of a fitted model.

Names and meanings follow statsmodels' MixedLMResults, except `bse_re`,
which here is the standard error of each variance/covariance parameter on the
scale of `cov_re`, from the observed information of the (unprofiled in the
variance parameters) likelihood; statsmodels multiplies the standard error of
cov_re/scale by sqrt(scale), which is not a standard error of cov_re.
"""

import math
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import special

from . import inference, influence
from .fitted import MixedModelResults, RandomEffects
from .formula.lme4 import parse_re_form, term_key
from .optimize import SINGULAR_TOLERANCE
from .params import MixedLMParams

_DEFAULT = object()     # (predict's re_form: the default depends on the model's style)


class MixedLMResults(MixedModelResults):
    """Results of `MixedLM.fit`.

    Attributes
    ----------
    fe_params : Series, fixed effects
    cov_re : DataFrame, random-effects covariance (labelled by the random effects)
    scale : float, residual variance
    params : Series, fixed effects then cov_re/scale (statsmodels' parameters)
    llf : float, log-likelihood (REML log-likelihood for a REML fit)
    converged : bool, whether the optimum check passed
    singular_messages : list of str, why the fit is singular (empty when it is not)
    theta : ndarray, lme4's relative covariance factor entries, column by column
    """

    def __init__(self, model, deviance, check, free=None):
        self.model = model
        self.free = free
        self.criterion = deviance
        self.optimum_check = check
        self.reml = deviance.reml
        self.method = "REML" if self.reml else "ML"
        self.structure = deviance.structure
        sol = deviance.solution(check.theta)
        self.solution = sol
        self.scale = float(sol["scale"])
        self.theta = sol["theta_user"]
        self.llf = -0.5 * float(sol["deviance"])
        self.converged = bool(check.converged)
        self.k_fe = model.k_fe
        self.k_re = model.k_re
        self.k_re2 = model.k_re2
        self.k_vc = 0
        self.vcomp = np.zeros(0)
        self.use_sqrt = model.use_sqrt
        self.nobs = model.nobs
        self.n_groups = model.n_groups
        self.optimizer = dict(
            iterations=check.n_iterations,
            evaluations=check.n_evaluations,
            projected_gradient=check.projected_gradient,
            messages=list(check.messages),
        )
        self._re_free = self.structure.cov_free.copy()
        self.df_modelwc = self.k_fe + len(self.structure.cov_rows)   # the free entries
        # lme4 counts the scale as a parameter too
        self.n_params = self.df_modelwc + 1
        # (made here: fit() asks for it at once, and it loops over q entries only)
        self.singular_messages = self._singular_messages()

    # Estimates as pandas objects, made on first use: a pipeline that reads
    # only llf or the arrays pays nothing for them.
    @cached_property
    def fe_params(self):
        """Fixed effects (Series)."""
        return pd.Series(self.solution["fe_params"], index=self.model.exog_names)

    @cached_property
    def cov_re(self):
        """Random-effects covariance (DataFrame labelled by the random effects)."""
        names = self.model.exog_re_names
        return pd.DataFrame(self.solution["cov_re"], index=names, columns=names)

    @cached_property
    def cov_re_unscaled(self):
        """cov_re / scale."""
        return self.cov_re / self.scale

    @cached_property
    def _re_param_names(self):
        re_names = self.model.exog_re_names
        names = []
        for j, k in zip(*np.tril_indices(self.k_re)):
            if j == k:
                names.append(f"{re_names[j]} Var")
            else:
                names.append(f"{re_names[k]} x {re_names[j]} Cov")
        return names

    @cached_property
    def params(self):
        """Fixed effects then the lower triangle of cov_re / scale (statsmodels' params)."""
        tril = np.tril_indices(self.k_re)
        return pd.Series(
            np.concatenate([self.solution["fe_params"],
                            self.solution["cov_re"][tril] / self.scale]),
            index=list(self.model.exog_names) + self._re_param_names,
        )

    @cached_property
    def params_object(self):
        """The estimates as a MixedLMParams (cov_re relative to the scale)."""
        return MixedLMParams.from_components(self.solution["fe_params"],
                                             self.solution["cov_re"] / self.scale)

    @cached_property
    def _modes(self):
        return self.criterion.conditional_modes(self.optimum_check.theta,
                                                self.solution["beta_conditioned"], self.scale)

    # -- the boundary ---------------------------------------------------------
    def _singular_messages(self):
        """Why the fit is singular (empty when it is not): `singular_messages`."""
        s = self.structure
        theta_s = self.optimum_check.theta
        lam_s = s.lam(theta_s).tolist()
        msgs = []
        names = self.model.exog_re_names
        for j in range(s.q):
            if lam_s[j][j] < SINGULAR_TOLERANCE:
                if all(abs(v) < SINGULAR_TOLERANCE for v in lam_s[j][:j]):
                    msgs.append(f"the variance of random effect '{names[j]}' is estimated at "
                                f"zero ({self.cov_re.iloc[j, j]:.3g})")
                else:
                    msgs.append(f"random effect '{names[j]}' is perfectly correlated with "
                                "the others (the covariance matrix is singular)")
        return msgs

    @property
    def is_singular(self):
        """True when a variance is at zero or a correlation at +-1 (as lme4's isSingular)."""
        return bool(self.singular_messages)

    # -- inference -------------------------------------------------------------
    @cached_property
    def _variance_cov(self):
        """Covariance of the estimates of (free cov_re entries, scale)."""
        info = self.criterion.variance_information(self.optimum_check.theta)
        try:
            return np.linalg.inv(info)
        except np.linalg.LinAlgError:
            return np.full_like(info, np.nan)

    @cached_property
    def _re_params_cov(self):
        """Covariance of statsmodels' re parameters (cov_re/scale), delta method."""
        c = self._variance_cov
        k = c.shape[0] - 1
        psi = self.structure.cov_vector(self.cov_re.to_numpy())
        s = self.scale
        jac = np.zeros((k, k + 1))
        jac[:, :k] = np.eye(k) / s
        jac[:, k] = -psi / s**2
        return jac @ c @ jac.T

    @cached_property
    def bse_fe(self):
        """Standard errors of the fixed effects (as lme4's and statsmodels')."""
        return pd.Series(np.sqrt(np.diag(self.solution["vcov_fe"])), index=self.model.exog_names)

    @cached_property
    def bse_re(self):
        """Standard errors of the cov_re entries, on the scale of cov_re.

        From the inverse observed information of the likelihood in
        (cov_re, scale) (REML likelihood for a REML fit).  statsmodels' bse_re
        differs: it is sqrt(scale) times the standard error of cov_re/scale.
        Fixed (non-free) entries get NaN.
        """
        out = np.full(self.k_re2, np.nan)
        k = int(self._re_free.sum())
        out[self._re_free] = np.sqrt(np.clip(np.diag(self._variance_cov)[:k], 0, None))
        return pd.Series(out, index=self._re_param_names)

    @cached_property
    def bse_scale(self):
        """Standard error of the scale (residual variance)."""
        return float(np.sqrt(max(self._variance_cov[-1, -1], 0.0)))

    def cov_params(self):
        """Covariance matrix of `params` (fixed effects and cov_re/scale).

        The fixed-effects and covariance blocks are returned as independent
        (they are asymptotically); entries for fixed covariances are NaN.
        """
        k = len(self.params)
        out = np.zeros((k, k))
        out[:self.k_fe, :self.k_fe] = self.solution["vcov_fe"]
        re = np.full((self.k_re2, self.k_re2), np.nan)
        fr = np.flatnonzero(self._re_free)
        re[np.ix_(fr, fr)] = self._re_params_cov
        out[self.k_fe:, self.k_fe:] = re
        out[:self.k_fe, self.k_fe:][:, ~self._re_free] = np.nan
        out[self.k_fe:, :self.k_fe][~self._re_free, :] = np.nan
        return pd.DataFrame(out, index=self.params.index, columns=self.params.index)

    @cached_property
    def bse(self):
        """Standard errors of `params` (statsmodels' parametrization)."""
        return pd.Series(np.sqrt(np.diag(self.cov_params().to_numpy())), index=self.params.index)

    @cached_property
    def tvalues(self):
        return self.params / self.bse

    @cached_property
    def pvalues(self):
        """Two-sided normal p-values of `tvalues` (statsmodels' z tests)."""
        return pd.Series(2 * special.ndtr(-np.abs(self.tvalues.to_numpy())),
                         index=self.params.index)

    # -- inference with degrees of freedom (lmerTest's) ------------------------------
    @cached_property
    def _varpar_functions(self):
        dev, s = self.criterion, self.structure
        if not self.is_singular and np.all(np.isfinite(self._variance_cov)):
            # (cov_re's free entries, scale): A is the inverse observed information
            psi = np.append(s.cov_vector(self.cov_re.to_numpy()), self.scale)

            def evaluate(v):
                cov = np.zeros((s.q, s.q))
                cov[s.cov_rows, s.cov_cols] = v[:-1]
                cov[s.cov_cols, s.cov_rows] = v[:-1]
                return dev.deviance_and_vcov_fe(s.theta_from_cov(cov / v[-1]),
                                                math.sqrt(v[-1]))

            return inference.VarianceParameterFunctions(evaluate, psi, self._variance_cov)
        varpar = np.append(self.theta, math.sqrt(self.scale))

        def evaluate(v):
            return dev.deviance_and_vcov_fe(v[:-1], v[-1])

        return inference.VarianceParameterFunctions(evaluate, varpar)

    def _hat_values(self):
        return influence.hat_values_one_factor(self)


    def conf_int(self, alpha=0.05, cols=None, method="wald"):
        """Confidence intervals for `params` at level 1 - alpha.

        Parameters
        ----------
        alpha : float
        cols : list of int, optional
            The rows of `params` to return.
        method : {'wald', 'profile'}
            Wald intervals (statsmodels'), or lme4's profile intervals
            (``confint(method = "profile")``) for the fixed effects: the ML
            deviance profiled over every other parameter (a REML fit is refitted
            by ML first, as lme4 does; the intervals are centred on the ML
            estimates).  With 'profile' the covariance rows are NaN: statsmodels'
            covariance parameters are relative to the residual variance, which
            lme4 does not profile; `conf_int_re()` gives their profile intervals
            on lme4's sd/correlation scale.

        Returns
        -------
        DataFrame with columns 0 (lower) and 1 (upper).

        Examples
        --------
        >>> import lmm
        >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
        >>> res = lmm.mixedlm("Weight ~ Time", d, groups="Pig").fit()
        >>> ci = res.conf_int(method="profile")
        >>> bool(ci.loc["Time", 0] < res.fe_params["Time"] < ci.loc["Time", 1])
        True
        """
        if method == "wald":
            q = special.ndtri(1 - alpha / 2)
            out = pd.DataFrame({0: self.params - q * self.bse, 1: self.params + q * self.bse})
        elif method == "profile":
            from functools import partial

            from .confint import fixed_effect_intervals

            ml = self.model.fit(reml=False, free=self.free) if self.reml else self
            fe = fixed_effect_intervals(
                ml, partial(self.model.fixed_effect_profile_deviance, free=self.free),
                level=1 - alpha)
            out = pd.DataFrame(np.nan, index=self.params.index, columns=[0, 1])
            out.loc[fe.index, 0] = fe["lower"].to_numpy()
            out.loc[fe.index, 1] = fe["upper"].to_numpy()
        else:
            raise ValueError(f"method must be 'wald' or 'profile', got {method!r}")
        if cols is not None:
            out = out.iloc[list(cols)]
        return out

    # -- random effects ---------------------------------------------------------
    def _ranef_parts(self):
        return [(self.model.group_name, self.model.group_labels, self.varcorr_names(),
                 self._modes[0], lambda: self._modes[1])]

    @cached_property
    def random_effects(self):
        """Conditional modes (BLUPs) of the random effects: {group: Series}."""
        # (one Index shared by every group's Series: a list index would be converted
        # once per group, several times the time at 2e5 groups)
        names = pd.Index(self.model.exog_re_names)
        modes = self._modes[0]
        return RandomEffects((lab, pd.Series(modes[g], index=names))
                             for g, lab in enumerate(self.model.group_labels))

    @cached_property
    def random_effects_cov(self):
        """Conditional covariance of each group's random effects given the data."""
        names = pd.Index(self.model.exog_re_names)
        cov = self._modes[1]
        return {lab: pd.DataFrame(cov[g], index=names, columns=names)
                for g, lab in enumerate(self.model.group_labels)}

    @property
    def random_effects_array(self):
        """The conditional modes as an (n_groups, q) array, rows in `group_labels` order."""
        return self._modes[0]

    # -- fitted values ------------------------------------------------------------
    @cached_property
    def _fitted(self):
        m = self.model
        b = self._modes[0][m.group_codes]
        fitted = m.exog @ self.solution["fe_params"] + np.einsum("ij,ij->i", m.exog_re, b)
        offset = getattr(m, "offset", None)
        return fitted if offset is None else fitted + offset

    @property
    def fittedvalues(self):
        """Fitted values including the random effects (as statsmodels); a Dask Series
        for a model fitted from a Dask DataFrame (computed when asked)."""
        if getattr(self.model, "dask_source", None) is not None:
            from .dask_frames import lazy_fitted

            return lazy_fitted(self)
        return pd.Series(self._fitted, index=self.model.row_labels)

    @property
    def resid(self):
        """Residuals: endog minus `fittedvalues` (a Dask Series from a Dask frame)."""
        if getattr(self.model, "dask_source", None) is not None:
            from .dask_frames import lazy_fitted

            return lazy_fitted(self, resid=True)
        return pd.Series(self.model.endog - self._fitted, index=self.model.row_labels)

    def predict(self, exog=None, re_form=_DEFAULT, allow_new_levels=False, se_fit=False,
                newdata=None, offset=None):
        """Predictions, with or without the random effects.

        Parameters
        ----------
        exog, newdata : DataFrame or array_like, optional
            New data (one of the two; `newdata` is lme4's name): for a formula
            model a DataFrame of the formula's variables (and the grouping column
            when random effects are included), or the fixed-effects design as an
            array.  The model's own data if omitted.
        re_form : None, False or str, optional
            lme4's meaning: None includes every random-effect term, ``"~0"`` (or
            False) none, ``"~(1 | Pig)"`` only the terms it names.  Default: None for
            models built by `lmm.lmer` (lme4's default), none for statsmodels-style
            models (statsmodels' predict is the fixed part).
        allow_new_levels : bool
            A group not seen in the fit (or a missing group label) gets zero random
            effects; otherwise it is an error naming the level.
        se_fit : bool
            Also return the standard errors of the population-level (fixed-effects)
            prediction, sqrt(x' vcov(beta) x).
        offset : array_like, optional
            The new rows' offset, for a model fitted with one (required then with new
            data; the model's own offset is used for its own rows).

        Returns
        -------
        Series indexed like the data (ndarray for an array `exog` of a
        statsmodels-style model, as statsmodels); with `se_fit`, a DataFrame with
        columns fit and se_fit.

        Examples
        --------
        >>> import lmm
        >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
        >>> res = lmm.lmer("Weight ~ Time + (1 + Time | Pig)", d)
        >>> new = d.iloc[:2].copy()
        >>> bool((res.predict(new) - res.fittedvalues.iloc[:2]).abs().max() < 1e-9)
        True
        """
        if newdata is not None:
            if exog is not None:
                raise TypeError("give the new data as exog or as newdata, not both")
            exog = newdata
        m = self.model
        lme4_style = m.lmer_formula is not None
        if re_form is _DEFAULT:
            re_form = None if lme4_style else False
        columns = self._re_form_columns(re_form)
        fe = self.solution["fe_params"]
        frame = isinstance(exog, pd.DataFrame)
        if exog is None:
            from .dask_frames import requires_rows

            requires_rows(m, "predict() on the model's own rows (use fittedvalues, a Dask "
                             "series, or pass newdata)")
            x, index = m.exog, m.row_labels
            out = x @ fe
            if columns:
                b = self._modes[0][m.group_codes][:, columns]
                out = out + np.einsum("ij,ij->i", m.exog_re[:, columns], b)
        else:
            if frame and m.design_info is not None:
                from .formula.design import transform_exog

                x = transform_exog(m.design_info, exog)
                index = exog.index
            else:
                x = np.asarray(exog, dtype=float)
                if x.ndim == 1:
                    x = x[None, :] if len(x) == self.k_fe else x[:, None]
                if x.shape[1] != self.k_fe:
                    raise ValueError(f"exog must have {self.k_fe} columns, got {x.shape[1]}")
                index = exog.index if frame else None
            out = x @ fe
            if columns:
                out = out + self._new_data_effects(exog, columns, allow_new_levels)
        if offset is not None or getattr(m, "offset", None) is not None:
            from .formula.design import prediction_offset

            out = out + prediction_offset(m, exog, offset, len(out))
        if se_fit:
            se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", x, self.solution["vcov_fe"], x), 0, None))
            return pd.DataFrame({"fit": out, "se_fit": se}, index=index)
        # (statsmodels' types for statsmodels-style models: an ndarray unless the
        # new data are a DataFrame; lme4-style models: a Series like R's named vector)
        if frame or lme4_style:
            return pd.Series(out, index=index)
        return out

    def _re_form_columns(self, re_form):
        """The columns of Z that re_form includes (lme4's re.form)."""
        m = self.model
        terms = parse_re_form(re_form)
        if terms is None:
            return list(range(m.k_re))
        known = m.re_term_columns
        if known is None:
            known = [(f"1 | {m.group_name}", list(range(m.k_re)))]
        wanted = []
        for term in terms:
            if term.group != m.group_name:
                raise ValueError(f"re_form names the grouping factor {term.group!r}; the "
                                 f"model's is {m.group_name!r}")
            key = term_key(term.expr)
            matches = [cols for expr, cols in known if term_key(expr.split("|")[0]) == key]
            if not matches:
                raise ValueError(f"re_form's term ({term.expr} | {term.group}) is not a term of "
                                 "the model")
            wanted.extend(matches[0])
        return sorted(set(wanted))

    def _new_data_effects(self, data, columns, allow_new_levels):
        """Z_new b for the rows of new data (zero where the level is new)."""
        m = self.model
        if not isinstance(data, pd.DataFrame):
            raise ValueError("random effects need a DataFrame with the grouping column "
                             f"{m.group_name!r} (or re_form='~0')")
        if m.group_name not in data.columns:
            raise ValueError(f"the new data have no grouping column {m.group_name!r}")
        if m.design_info_re is not None:
            from .formula.design import transform_exog

            z = transform_exog(m.design_info_re, data)
        elif m.k_re == 1:
            z = np.ones((len(data), 1))
        else:
            raise ValueError("this model's random-effects design was not built from a "
                             "formula: predict with re_form='~0'")
        labels = data[m.group_name]
        position = {lab: g for g, lab in enumerate(m.group_labels)}
        codes = np.array([position.get(lab, -1) for lab in labels.tolist()], dtype=np.intp)
        new = codes < 0
        if new.any() and not allow_new_levels:
            first = labels[new].tolist()[0]
            raise ValueError(f"the level {first!r} of {m.group_name!r} was not in the fit "
                             "(pass allow_new_levels=True to give it zero random effects)")
        b = self._modes[0][np.where(new, 0, codes)][:, columns]
        effects = np.einsum("ij,ij->i", z[:, columns], b)
        effects[new] = 0.0
        return effects

    # -- simulation and the parametric bootstrap (lmm.bootstrap) --------------------
    def simulate(self, nsim=1, seed=None, re_form="~0"):
        """Responses drawn from the fitted model, (nobs, nsim) (lme4's ``simulate``):
        new random effects and residuals at the fitted parameters.  See
        `lmm.bootstrap.simulate`.

        re_form : "~0" (default, lme4's ``re.form = NA``: every random effect drawn
            anew), None (lme4's ``re.form = NULL``: the random effects held at their
            conditional modes, only the residuals drawn), or a formula of the model's
            terms to hold (the others drawn)."""
        from . import bootstrap

        columns = self._re_form_columns(re_form)
        conditioned = (columns, self._modes[0]) if columns else None
        return bootstrap.simulate(self, nsim, seed, conditioned)

    def bootstrap(self, nboot, seed=None, n_jobs=1, executor=None, client=None,
                  chunk_size=None, progress=None):
        """Parametric bootstrap (lme4's ``bootMer``, MixedModels.jl's
        ``parametricbootstrap``): the model refitted to `nboot` simulated responses
        by the many-responses fitter.  Returns `lmm.bootstrap.BootstrapResults`
        (``replicates``, ``sd()``, ``conf_int(level, method)``); reproducible for a
        seed whatever n_jobs is.  `progress`: a tqdm.auto bar (a widget in notebooks),
        by default on in interactive sessions when tqdm is installed.

        Examples
        --------
        >>> import lmm
        >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
        >>> res = lmm.lmer("Weight ~ Time + (1 + Time | Pig)", d)
        >>> res.bootstrap(50, seed=2).conf_int().shape
        (6, 2)
        """
        from . import bootstrap

        return bootstrap.parametric_bootstrap(self, nboot, seed, n_jobs, progress, executor,
                                              client, chunk_size)

    # -- profiles -------------------------------------------------------------------
    def profile_re(self, re_ix, vtype="re", num_low=5, dist_low=1.0, num_high=5,
                   dist_high=1.0, **fit_kwargs):
        """Profile log-likelihood of a random-effect variance (statsmodels' signature).

        Parameters
        ----------
        re_ix : int
            Which random effect (row of `cov_re`).
        vtype : {'re'}
            Only random-effect variances ('vc' components do not exist here).
        num_low, dist_low, num_high, dist_high :
            The grid, on the scale of `cov_re`: num_low + 1 evenly spaced
            points from v - dist_low to the estimate v, then num_high more up
            to v + dist_high.  Points at or below zero are dropped.

        Returns
        -------
        ndarray (k, 2): the variance, and its profile log-likelihood (REML
        for a REML fit), i.e. the highest log-likelihood with that variance
        held fixed on the scale of cov_re and every other parameter free.
        Each point's maximum is verified (gradient and curvature, see
        `lmm.profile`); one that cannot be is NaN, with a ConvergenceWarning
        naming its variance.

        Notes
        -----
        statsmodels holds cov_re/scale fixed instead and reports it multiplied
        by the re-estimated scale, so its second column is not the profile of
        its first; the two differ (by up to 0.04 on the Sitka grids).

        Examples
        --------
        >>> import lmm
        >>> d = lmm.datasets.get_rdataset("Sitka", "MASS").data
        >>> res = lmm.mixedlm("size ~ Time", d, groups="tree", re_formula="~Time").fit()
        >>> v = res.cov_re.iloc[1, 1]
        >>> prof = res.profile_re(1, "re", dist_low=0.5 * v, dist_high=0.8 * v)
        >>> prof.shape
        (11, 2)
        """
        from .profile import profile_grid, profile_variance

        if vtype != "re":
            raise NotImplementedError("only vtype='re' (random-effect variances) is supported")
        if not 0 <= int(re_ix) < self.k_re:
            raise ValueError(f"re_ix must be in 0..{self.k_re - 1}, got {re_ix}")
        v = float(self.cov_re.iloc[re_ix, re_ix])
        grid = profile_grid(v, int(num_low), float(dist_low), int(num_high), float(dist_high))
        return profile_variance(self, int(re_ix), grid)

    # -- lme4's views ------------------------------------------------------------
    def varcorr_names(self):
        """Random-effect names as lme4 prints them ("(Intercept)" for intercepts)."""
        return ["(Intercept)" if icpt else str(n)
                for n, icpt in zip(self.cov_re.index, self.model.re_ones)]

    def conf_int_re(self, level=0.95, method="profile", criterion="ML"):
        """Profile confidence intervals of the variance-covariance parameters and sigma.

        Parameters
        ----------
        level : float
        method : {'profile'}
        criterion : {'ML', 'REML'}
            The deviance profiled.  'ML' (default) is what lme4's
            ``confint(m, method = "profile")`` does, for REML fits too (it refits
            by ML); 'REML' profiles the REML criterion of a REML fit.

        Returns
        -------
        DataFrame indexed like lme4's confint rows (``sd_(Intercept)|Pig``,
        ``cor_Time.(Intercept)|Pig``, ``sd_Time|Pig``, ``sigma``) with columns
        estimate, lower, upper on the standard-deviation / correlation scale
        and var_estimate, var_lower, var_upper on the variance scale (squares
        of the sd rows; NaN for correlations).

        Examples
        --------
        >>> import lmm
        >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
        >>> ci = lmm.lmer("Weight ~ Time + (1 | Pig)", d).conf_int_re()
        >>> list(ci.index)
        ['sd_(Intercept)|Pig', 'sigma']
        """
        from .confint import conf_int_re, profile_intervals

        return conf_int_re(self, profile_intervals, level=level, method=method,
                           criterion=criterion)

    def varcorr(self):
        """Variance components as R's ``as.data.frame(VarCorr(m))``.

        Returns
        -------
        DataFrame with columns grp, var1, var2, vcov, sdcor: one row per
        variance (var2 missing; sdcor the standard deviation) and per
        covariance within a block (sdcor the correlation), the residual last.
        Blocks of uncorrelated effects are separate groups named as lme4
        names repeated terms ("Pig", "Pig.1", ...).
        """
        cov = self.cov_re.to_numpy()
        names = self.varcorr_names()
        rows = []
        for b, members in enumerate(self.structure.blocks):
            grp = self.model.group_name + (f".{b}" if b else "")
            for j in members:
                rows.append((grp, names[j], None, cov[j, j], np.sqrt(cov[j, j])))
            for ai, j in enumerate(members):
                for k in members[ai + 1:]:
                    sd = np.sqrt(cov[j, j] * cov[k, k])
                    rows.append((grp, names[j], names[k], cov[j, k],
                                 cov[j, k] / sd if sd > 0 else np.nan))
        rows.append(("Residual", None, None, self.scale, np.sqrt(self.scale)))
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    # -- summaries ----------------------------------------------------------------
    def summary(self, yname=None, xname_fe=None, xname_re=None, title=None, alpha=0.05,
                style=None, ddf=_DEFAULT):
        """A summary table: statsmodels' layout, or lme4's.

        Parameters
        ----------
        style : {None, 'statsmodels', 'lme4'}
            None gives lme4's layout for models written in lme4's syntax
            (`lmm.lmer`) and statsmodels' otherwise.
        ddf : {'satterthwaite', 'kenward-roger', 'residual', None}, optional
            lme4's layout only: the fixed-effects table with lmerTest's df and
            p-values (default 'satterthwaite', the method named in the title), or
            lme4's plain table with None.
        yname, xname_fe, xname_re, title, alpha :
            statsmodels' options (statsmodels layout only).

        Notes
        -----
        In statsmodels' layout the random-effect rows show cov_re with
        `bse_re` (see its docstring for how it differs from statsmodels').
        """
        from .summary import lme4_summary, statsmodels_summary

        if style is None:
            lme4_style = self.model.lmer_formula is not None or \
                (ddf is not _DEFAULT and ddf is not None)
            style = "lme4" if lme4_style else "statsmodels"
        if style == "lme4":
            ddf = "satterthwaite" if ddf is _DEFAULT else inference.check_ddf(ddf)
            if ddf == "kenward-roger" and not self.reml:
                ddf = inference.check_ddf(None)
            return lme4_summary(self, ddf)
        if style != "statsmodels":
            raise ValueError(f"style must be 'statsmodels' or 'lme4', got {style!r}")
        return statsmodels_summary(self, yname=yname, xname_fe=xname_fe, xname_re=xname_re,
                                   title=title, alpha=alpha)

    def __repr__(self):
        return (f"<MixedLMResults: {self.method}, llf={self.llf:.4f}, "
                f"{self.nobs} observations in {self.n_groups} groups>")
