"""Inference on the fixed effects: t and F tests with Satterthwaite's degrees of freedom.

lmerTest's method (Kuznetsova, Brockhoff and Christensen, 2017, J. Stat. Softw. 82(13)),
with its definitions:

- the variance parameters are lme4's theta and the residual standard deviation sigma,
  varpar = (theta, sigma); their asymptotic covariance is A = 2 H^-1, H the Hessian of
  the deviance in varpar (-2 log-likelihood, REML or ML as fitted, sigma not profiled);
- for a contrast l (one row), with C(varpar) the covariance of the fixed effects,
  df = 2 (l'C l)^2 / (g'A g),  g_i = l' (dC/dvarpar_i) l;
- for a contrast matrix L of rank q, the F statistic (L beta)'(L C L')^-1 (L beta) / q;
  its denominator degrees of freedom come from the eigen-decomposition
  L C L' = P D P': each row of P'L is a one-row contrast with its own df nu_m, and with
  E = sum nu_m / (nu_m - 2) (when every nu_m > 2) the df is 2E / (E - q) (2 otherwise).

lmerTest differentiates by Richardson-extrapolated central differences (numDeriv);
so does this module, of the criterion alone (`deviance_and_vcov_fe` of the fitted
model's deviance: O(groups) per evaluation, never a refit).

``ddf="residual"`` uses n - p, ``ddf=None`` normal (z) tests, statsmodels' behaviour.
"""

import math

import numpy as np
import pandas as pd
from scipy import special

from . import anova_contrasts

DDF_METHODS = ("satterthwaite", "kenward-roger", "residual", None)



def _design_gram(model):
    """X'X of the user's fixed-effects design (unweighted, as lmerTest's contrasts
    take it): from the rows, or from the statistics of a fit from a Dask frame."""
    if model.exog is not None:
        x = np.asarray(model.exog, dtype=float)
        return x.T @ x
    if model.dask_source.weights is not None:
        raise NotImplementedError("type I and II tests of a weighted fit from a Dask "
                                  "DataFrame are not supported yet")
    return np.asarray(model.cross_products.xtx, dtype=float)


def _richardson(f, x, i, h, r=4):
    """Central-difference derivative of f along coordinate i, Richardson-extrapolated
    over r halvings of h (numDeriv's scheme); f returns an ndarray."""
    table = []
    for _ in range(r):
        e = np.zeros_like(x)
        e[i] = h
        table.append((f(x + e) - f(x - e)) / (2.0 * h))
        h /= 2.0
    for m in range(1, r):
        four = 4.0 ** m
        table = [(four * table[k + 1] - table[k]) / (four - 1.0) for k in range(len(table) - 1)]
    return table[0]


def _richardson_hessian(f, x, h, r=4):
    """Hessian of the scalar f by second central differences, Richardson-extrapolated
    over r halvings of the steps h (numDeriv's hessian: first steps 0.1 |x_i|)."""
    k = len(x)
    f0 = f(x)
    levels = []
    h = np.array(h, dtype=float)
    for _ in range(r):
        d = np.empty((k, k))
        for i in range(k):
            e_i = np.zeros(k)
            e_i[i] = h[i]
            d[i, i] = (f(x + e_i) - 2.0 * f0 + f(x - e_i)) / (h[i] * h[i])
            for j in range(i):
                e_j = np.zeros(k)
                e_j[j] = h[j]
                d[i, j] = d[j, i] = (f(x + e_i + e_j) - f(x + e_i - e_j) - f(x - e_i + e_j)
                                     + f(x - e_i - e_j)) / (4.0 * h[i] * h[j])
        levels.append(d)
        h = h / 2.0
    for m in range(1, r):
        four = 4.0 ** m
        levels = [(four * levels[k + 1] - levels[k]) / (four - 1.0)
                  for k in range(len(levels) - 1)]
    return levels[0]


def _steps(x, d=1e-4, zero_step=1e-4):
    """numDeriv's step sizes: d |x_i|, or zero_step where x_i is 0."""
    return np.where(np.abs(x) > 1e-12, d * np.abs(x), zero_step)


class VarianceParameterFunctions:
    """The deviance and the fixed effects' covariance in the variance parameters, with
    their derivatives at the fitted values (computed once, on first use).

    Satterthwaite's df are invariant to how the variance parameters are written at an
    interior optimum: lmerTest's (theta, sigma) and (cov_re entries, scale) give the
    same numbers.  One grouping factor uses the latter, whose covariance A the engine
    has in closed form (the observed information, `bse_re`'s); several factors and
    singular fits (where cov_re cannot be perturbed) use lmerTest's, with A from
    differences of the deviance.

    Parameters
    ----------
    evaluate : callable
        varpar -> (deviance, vcov_fe) (e.g. `ProfiledDeviance.deviance_and_vcov_fe`
        wrapped to take one vector).
    varpar : (k,) array
        The fitted (theta, sigma).
    """

    def __init__(self, evaluate, varpar, covariance=None, levels=3):
        # Richardson's halvings of the steps (3: the df of the lmerTest references to
        # 7.4e-6, as with 4, in 2/3 of the evaluations; 2 loses a digit)
        self.levels = int(levels)
        self.evaluate = evaluate
        self.varpar = np.asarray(varpar, dtype=float)
        # the asymptotic covariance A of varpar, when the engine has it analytically
        # (then only vcov_fe is differenced, by plain central differences)
        self.covariance = covariance
        self._derivatives = None

    def derivatives(self):
        """(vcov_fe, [dvcov_fe / dvarpar_i], A = 2 H^-1)."""
        if self._derivatives is None:
            x = self.varpar
            k = len(x)
            h = _steps(x)
            vcov = self.evaluate(x)[1]

            def vc(v):
                return self.evaluate(v)[1]

            if self.covariance is not None:
                jac = [_richardson(vc, x, i, h[i], r=1) for i in range(k)]
                self._derivatives = (vcov, jac, np.asarray(self.covariance, dtype=float))
                return self._derivatives
            r = self.levels
            jac = [_richardson(vc, x, i, h[i], r=r) for i in range(k)]
            hess = _richardson_hessian(lambda v: self.evaluate(v)[0], x, _steps(x, d=0.1), r=r)
            try:
                a = 2.0 * np.linalg.inv(hess)
            except np.linalg.LinAlgError:
                a = np.full((k, k), np.nan)
            self._derivatives = (vcov, jac, a)
        return self._derivatives


def satterthwaite_t(functions, contrast):
    """(variance of l'beta, Satterthwaite df) of one contrast vector l."""
    vcov, jac, a = functions.derivatives()
    lv = np.asarray(contrast, dtype=float)
    var = float(lv @ vcov @ lv)
    g = np.array([lv @ j @ lv for j in jac])
    denom = float(g @ a @ g)
    df = 2.0 * var * var / denom if denom > 0 else np.inf
    return var, df


def _f_ddf(nu, tol=1e-8):
    """lmerTest's denominator df of an F test from its one-row dfs nu_m."""
    nu = np.asarray(nu, dtype=float)
    if len(nu) == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    e = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * e / (e - len(nu))


def contrast_test(beta, functions, L, ddf, nobs, alpha=0.05):
    """The t test (one row) or F test (several) of L beta = 0.

    Returns a dict: estimate, std_error, df, t, p_value, ci_lower, ci_upper for one
    row; num_df, den_df, F, p_value for several.
    """
    L = np.atleast_2d(np.asarray(L, dtype=float))
    p = len(beta)
    if L.shape[1] != p:
        raise ValueError(f"the contrast has {L.shape[1]} columns; the model has {p} fixed "
                         "effects")
    if not np.all(np.isfinite(L)):
        raise ValueError("the contrast holds NaN or infinite values")
    vcov = functions.derivatives()[0] if ddf == "satterthwaite" else functions.evaluate(
        functions.varpar)[1]
    est = L @ beta
    if L.shape[0] == 1:
        lv = L[0]
        var = float(lv @ vcov @ lv)
        if ddf == "satterthwaite":
            var, df = satterthwaite_t(functions, lv)
        elif ddf == "residual":
            df = float(nobs - p)
        else:
            df = np.inf
        se = math.sqrt(var)
        t = float(est[0]) / se if se > 0 else np.nan
        # (scipy.special's ufuncs: scipy.stats' methods cost ~100 us a call)
        if df == np.inf:
            q, p_value = special.ndtri(1 - alpha / 2), 2 * special.ndtr(-abs(t))
        else:
            q, p_value = special.stdtrit(df, 1 - alpha / 2), 2 * special.stdtr(df, -abs(t))
        return dict(estimate=float(est[0]), std_error=se, df=df, t=t,
                    p_value=float(p_value),
                    ci_lower=float(est[0]) - q * se, ci_upper=float(est[0]) + q * se)
    vl = L @ vcov @ L.T
    w, v = np.linalg.eigh(vl)
    keep = w > 1e-10 * max(w.max(), 0.0)
    if not keep.any():
        raise ValueError("the contrast matrix has rank 0 (it tests nothing)")
    w, v = w[keep], v[:, keep]
    ptl = v.T @ L
    q = len(w)
    f_value = float(np.sum((ptl @ beta) ** 2 / w)) / q
    if ddf == "satterthwaite":
        den_df = _f_ddf([satterthwaite_t(functions, row)[1] for row in ptl])
    elif ddf == "residual":
        den_df = float(nobs - p)
    else:
        den_df = np.inf
    if den_df == np.inf:
        p_value = float(special.chdtrc(q, f_value * q))
    else:
        p_value = float(special.fdtrc(q, den_df, f_value))
    return dict(num_df=q, den_df=den_df, F=f_value, p_value=p_value)


def check_ddf(ddf):
    if ddf is not None and not isinstance(ddf, str):
        raise TypeError(f"ddf must be a string or None, got {ddf!r}")
    name = ddf.lower().replace("_", "-") if isinstance(ddf, str) else None
    if name == "kr":
        name = "kenward-roger"
    if name not in DDF_METHODS:
        raise ValueError("ddf must be one of 'satterthwaite', 'kenward-roger', 'residual' or "
                         f"None, got {ddf!r}")
    return name


TABLE_COLUMNS = ["estimate", "std_error", "df", "t", "p_value", "ci_lower", "ci_upper"]


def coef_table(beta, names, functions, ddf, nobs, alpha=0.05):
    """One row per fixed effect: estimate, std_error, df, t, p_value, ci_lower, ci_upper."""
    columns = {name: [] for name in TABLE_COLUMNS}
    for i in range(len(beta)):
        e = np.zeros(len(beta))
        e[i] = 1.0
        for name, value in contrast_test(beta, functions, e, ddf, nobs, alpha).items():
            columns[name].append(value)
    # (built from columns: a DataFrame of a list of dicts costs a millisecond more)
    return pd.DataFrame(columns, index=list(names))


def _check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")


class FixedEffectTests:
    """`coef_table`, `contrast` and `anova` for a results class that provides
    `_varpar_functions` (a `VarianceParameterFunctions`), `_sol["fe_params"]`,
    `model` (its exog_names, design_info and exog) and `nobs`: one implementation
    for every engine."""

    def _fe_estimates(self):
        return self.solution["fe_params"]

    def _fe_names(self):
        return self.model.exog_names

    def _fe_term_slices(self):
        design = getattr(self.model, "design_info", None)
        if design is None or not hasattr(design, "term_name_slices"):
            raise ValueError("anova needs a model built from a formula (its terms name "
                             "the columns); use contrast() with the columns' contrasts")
        return dict(design.term_name_slices)

    def coef_table(self, ddf="satterthwaite", alpha=0.05):
        """The fixed effects' t tests, lmerTest's ``summary()`` table.

        Parameters
        ----------
        ddf : {'satterthwaite', 'kenward-roger', 'residual', None}
            Satterthwaite's degrees of freedom (lmerTest's definitions; the default),
            Kenward-Roger's (pbkrtest's adjusted covariance: `std_error` is the adjusted
            one; REML fits only), n - p, or None for normal (z) tests (statsmodels').
        alpha : float
            For the confidence intervals (1 - alpha).

        Returns
        -------
        DataFrame indexed by the fixed effects' names, with columns estimate,
        std_error, df, t, p_value, ci_lower, ci_upper.

        Examples
        --------
        >>> import lmm
        >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
        >>> res = lmm.lmer("Weight ~ Time + (1 + Time | Pig)", d)
        >>> round(res.coef_table().loc["Time", "df"], 1)
        71.0
        """
        ddf = check_ddf(ddf)
        _check_alpha(alpha)
        if ddf == "kenward-roger":
            kr, p = self._kenward_roger(), len(self._fe_estimates())
            rows = [kr.test(np.eye(p)[i], alpha=alpha) for i in range(p)]
            return pd.DataFrame(rows, index=list(self._fe_names()), columns=TABLE_COLUMNS)
        return coef_table(self._fe_estimates(), self._fe_names(),
                          self._varpar_functions, ddf, self.nobs, alpha)

    def contrast(self, L, ddf="satterthwaite"):
        """The test of L beta = 0 (lmerTest's ``contest``): a t test for one row, an F
        test for several.

        Parameters
        ----------
        L : array_like, (p,) or (m, p)
            Contrast vector or matrix over the fixed effects (in `fe_params`' order).
        ddf : {'satterthwaite', 'kenward-roger', 'residual', None}
            (Kenward-Roger: for several rows, F is pbkrtest's scaled statistic.)

        Returns
        -------
        One-row DataFrame: estimate, std_error, df, t, p_value, ci_lower, ci_upper
        (one row of L) or num_df, den_df, F, p_value (several).
        """
        ddf = check_ddf(ddf)
        if ddf == "kenward-roger":
            return pd.DataFrame([self._kenward_roger().test(L)])
        out = contrast_test(self._fe_estimates(), self._varpar_functions, L, ddf,
                                      self.nobs)
        return pd.DataFrame([out])


    def _kenward_roger(self):
        """The fit's `lmm.kenward_roger.KenwardRoger` (made once; REML fits only)."""
        kr = self.__dict__.get("_kenward_roger_cache")
        if kr is None:
            from .kenward_roger import KenwardRoger

            kr = self.__dict__["_kenward_roger_cache"] = KenwardRoger(self)
        return kr

    def anova(self, ddf="satterthwaite", type=3):
        """lmerTest's analysis-of-variance table of the fixed-effects terms: for each
        term (the formula's terms, the intercept left out) the F test that all its
        coefficients are zero.

        Parameters
        ----------
        ddf : {'satterthwaite', 'kenward-roger', 'residual', None}
        type : {3, 2, 1}
            lmerTest's type III (the default: SAS's type III hypotheses, the same
            whatever the coding of the factors), type II (each term adjusted for every
            term that does not contain it) or type I (sequential, the terms in the
            formula's order by degree, as R orders them); see
            `lmm.anova_contrasts`.  Without interactions types II and III are the
            joint test of each term's coefficients.  Type III needs a hierarchical
            formula once terms contain others (NotImplementedError otherwise).

        Returns
        -------
        DataFrame indexed by the term names, with columns num_df, den_df, F, p_value.

        Examples
        --------
        >>> import lmm
        >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
        >>> res = lmm.lmer("Weight ~ Time + Evit + (1 | Pig)", d)
        >>> list(res.anova().index)
        ['Evit', 'Time']
        """
        ddf = check_ddf(ddf)
        if type not in (1, 2, 3, "I", "II", "III"):
            raise ValueError(f"type must be 1, 2 or 3, got {type!r}")
        slices = self._fe_term_slices()
        beta = self._fe_estimates()
        p = len(beta)
        if type in (1, "I"):
            contrasts = self._type1_contrasts(slices)
        else:
            terms = anova_contrasts.model_terms(self.model.design_info)
            if type in (2, "II"):
                contrasts = anova_contrasts.type2_contrasts(_design_gram(self.model), terms,
                                                            p)
            else:
                contrasts = anova_contrasts.type3_contrasts(self.model.design_info,
                                                            terms, p)
        rows = []
        for _name, L in contrasts:
            if ddf == "kenward-roger":
                out = self._kenward_roger().test(L)
            else:
                out = contrast_test(beta, self._varpar_functions, L, ddf, self.nobs)
            if L.shape[0] == 1:
                out = dict(num_df=1, den_df=out["df"], F=out["t"] ** 2, p_value=out["p_value"])
            rows.append(out)
        return pd.DataFrame(rows, index=[name for name, _ in contrasts],
                            columns=["num_df", "den_df", "F", "p_value"])

    def _type1_contrasts(self, slices):
        """lmerTest's type I (sequential) contrasts: the rows of L' for each term's
        columns, X'X = L U the Doolittle factorization of the design in R's column
        order (the formula's terms as written, by degree), entries below 1e-6 set to
        zero as lmerTest does; mapped to lmm's column order."""
        import patsy

        m = self.model
        lmer = getattr(m, "lmer_formula", None)
        formula = lmer.fixed_formula if lmer is not None else m.formula
        if not isinstance(formula, str):
            raise ValueError("type I tests need a model built from a formula")
        desc = patsy.ModelDesc.from_formula(formula.replace("offset(", "I(0*"))
        written = [(len(t.factors), t.name()) for t in desc.rhs_termlist]
        order = [name for _, name in sorted(written, key=lambda w: w[0])
                 if name in slices]
        if sorted(order) != sorted(slices):
            raise NotImplementedError("type I tests: the design's terms could not be "
                                      "matched with the formula's")
        gram = _design_gram(m)
        return anova_contrasts.type1_contrasts(
            gram, [(name, slices[name]) for name in order], gram.shape[1])
