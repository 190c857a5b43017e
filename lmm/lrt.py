"""Likelihood-ratio tests between nested mixed models (lme4's anova, statsmodels' style).

Under REML the likelihoods of models with different fixed effects are not
comparable (the REML criterion depends on the fixed-effects design), so such
fits are refit by ML, as lme4's anova() refits every REML fit.  When the
fixed effects are the same, the REML statistic is the better test of the
random effects and is the default.

When the restricted model sets a variance to zero the null value is on the
boundary of the parameter space and the chi-square reference is conservative;
for one added random effect the correct reference is the 50:50 mixture of
chi-square distributions with df - 1 and df degrees of freedom (Self and
Liang 1987; Stram and Lee 1994), reported as `pvalue_mixture`.
"""

import html
from dataclasses import dataclass, field

import numpy as np
from scipy import special


@dataclass
class LRTestResult:
    """Result of `lrtest`."""

    statistic: float
    df: int
    pvalue: float
    criterion: str                      # 'REML' or 'ML'
    llf_restricted: float
    llf_full: float
    refitted: bool
    pvalue_mixture: float = np.nan      # 50:50 chi-square mixture, boundary tests
    notes: list = field(default_factory=list)

    def __str__(self):
        lines = [
            f"Likelihood-ratio test ({self.criterion})",
            f"  log-likelihood restricted: {self.llf_restricted:.4f}",
            f"  log-likelihood full:       {self.llf_full:.4f}",
            f"  statistic: {self.statistic:.4f} on {self.df} df, p-value {self.pvalue:.4g}",
        ]
        if np.isfinite(self.pvalue_mixture):
            lines.append(f"  p-value, 50:50 mixture of chi2({self.df - 1}) and "
                         f"chi2({self.df}): {self.pvalue_mixture:.4g}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def _repr_html_(self):
        """The test as a small HTML table, for notebooks."""
        rows = [("criterion", self.criterion),
                ("log-likelihood, restricted", f"{self.llf_restricted:.4f}"),
                ("log-likelihood, full", f"{self.llf_full:.4f}"),
                ("statistic", f"{self.statistic:.4f}"), ("df", str(self.df)),
                ("p-value", f"{self.pvalue:.4g}")]
        if np.isfinite(self.pvalue_mixture):
            rows.append(("p-value, 50:50 chi-square mixture", f"{self.pvalue_mixture:.4g}"))
        rows.extend(("note", n) for n in self.notes)
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td>{html.escape(v)}</td></tr>" for k, v in rows)
        return f"<table><caption>Likelihood-ratio test</caption>{body}</table>"


def _same_fixed_effects(a, b):
    xa, xb = a.model.exog, b.model.exog
    return xa.shape == xb.shape and np.array_equal(xa, xb)


def refit_ml(res):
    """The fit of the same model by maximum likelihood (the same free= structure)."""
    if hasattr(res, "_free"):
        return res.model.fit(reml=False, free=res.free)
    return res.model.fit(reml=False)


def _random_effects(res):
    """(grouping factor, effect) pairs of a fit, for one factor or several."""
    if isinstance(res.cov_re, dict):
        return {(g, str(n)) for g, cov in res.cov_re.items() for n in cov.index}
    return {(res.model.group_name, str(n)) for n in res.cov_re.index}


def lrtest(restricted, full, refit=None):
    """Likelihood-ratio test of a restricted model against a fuller one.

    Parameters
    ----------
    restricted, full : MixedLMResults
        Fits of nested models to the same data; `full` has more parameters.
    refit : bool, optional
        True refits both models by ML (as lme4's anova()).  None (default)
        uses the fits' own criterion when both are REML fits with the same
        fixed effects (or both ML), and refits by ML otherwise, saying so.

    Returns
    -------
    LRTestResult with statistic, df, pvalue (chi-square), pvalue_mixture
    (when the restricted model puts a random-effect variance at zero) and
    notes.

    Examples
    --------
    >>> import numpy as np, lmm
    >>> d = lmm.datasets.get_rdataset("dietox", "geepack").data
    >>> full = lmm.lmer("Weight ~ Time + (1 + Time | Pig)", d)
    >>> restricted = lmm.lmer("Weight ~ Time + (Time || Pig)", d)
    >>> round(lmm.lrtest(restricted, full).statistic, 2)
    0.6
    """
    notes = []
    a, b = restricted, full
    if a.nobs != b.nobs or not np.array_equal(a.model.endog, b.model.endog):
        raise ValueError("the two fits must be of the same response on the same rows")
    df = b.n_params - a.n_params
    if df <= 0:
        raise ValueError(
            f"the full model must have more parameters than the restricted one "
            f"({b.n_params} vs {a.n_params}); are the arguments in the right order?"
        )
    if refit is None:
        refit = False
        if a.reml != b.reml:
            refit = True
            notes.append("one fit is REML and one ML: both refit by ML")
        elif a.reml and not _same_fixed_effects(a, b):
            refit = True
            notes.append("REML fits with different fixed effects are not comparable: "
                         "both refit by ML")
    if refit:
        a = a if not a.reml else refit_ml(a)
        b = b if not b.reml else refit_ml(b)
    criterion = "REML" if a.reml else "ML"
    stat = 2.0 * (b.llf - a.llf)
    if stat < 0:
        if stat < -1e-6 * max(1.0, abs(b.llf)):
            notes.append(f"the full model fits worse than the restricted one ({stat:.3g}): "
                         "the models may not be nested")
        stat = max(stat, 0.0)
    pvalue = float(special.chdtrc(df, stat))
    mixture = np.nan
    added = _random_effects(b) - _random_effects(a)
    if added:
        notes.append("the restricted model sets a random-effect variance to zero, on the "
                     "boundary: the chi-square p-value is conservative")
        if len(added) == 1:
            low = special.chdtrc(df - 1, stat) if df > 1 else float(stat <= 0)
            mixture = 0.5 * low + 0.5 * pvalue
    return LRTestResult(stat, int(df), pvalue, criterion, a.llf, b.llf, bool(refit),
                        mixture, notes)
