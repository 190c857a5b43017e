"""Strict keyword arguments: unknown ones are errors, never silently dropped.

statsmodels' and lme4's users pass keywords that lmm does not have (yet): a
misspelt keyword, or one swallowed by ``**kwargs``, would otherwise return a
fit of another model than the one asked for.  Three kinds, each handled here
once:

- unknown keywords raise TypeError, naming the keyword and the closest
  accepted one;
- statsmodels keywords that lmm accepts and ignores on purpose (its optimizer
  does not need them) warn once per process, listed in `IGNORED`;
- lme4 keywords of features lmm does not have yet raise NotImplementedError
  naming the feature, listed in `NOT_YET`.
"""

import difflib
import warnings

# statsmodels keywords with no effect in lmm (its fit always ends with Newton
# steps on the analytic Hessian and an optimum check), and why
IGNORED = {
    "niter_sa": "statsmodels' simulated-annealing-like start iterations",
    "do_cg": "statsmodels' conjugate-gradient stage",
    "full_output": "statsmodels' optimizer record (lmm always keeps one: results.optimizer)",
    "use_sparse": "sparse matrices (lmm's core works on group blocks)",
    "disp": "scipy's optimizer printout",
}

# lme4 / statsmodels keywords of features that are planned, not built
NOT_YET = {
    "control": "lme4's control= (optimizer settings; use method= and maxiter=)",
    "na_action": "lme4's na.action (use missing='drop')",
    "na.action": "lme4's na.action (use missing='drop')",
}

_WARNED = set()


def check_keywords(where, kwargs, accepted=()):
    """Raise for keywords in `kwargs` that `where` does not take.

    NotImplementedError for planned features (`NOT_YET`), TypeError for any
    other keyword, with the closest of `accepted` as a suggestion.

    Examples
    --------
    >>> check_keywords("fit", {"REMl": False}, ["reml", "method"])
    Traceback (most recent call last):
    TypeError: fit() got an unexpected keyword argument 'REMl' (did you mean 'reml'?)
    """
    for name in kwargs:
        if name in NOT_YET:
            raise NotImplementedError(f"{where}({name}=...): {NOT_YET[name]} is not supported yet")
        close = difflib.get_close_matches(name, list(accepted), n=1, cutoff=0.6)
        if not close:
            lowered = {a.lower(): a for a in accepted}
            close = [lowered[name.lower()]] if name.lower() in lowered else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise TypeError(f"{where}() got an unexpected keyword argument {name!r}{hint}")


def warn_ignored(name, where):
    """Warn (once per process and keyword) that statsmodels' `name` has no effect."""
    if name in _WARNED:
        return
    _WARNED.add(name)
    warnings.warn(f"{where}({name}=...) is accepted for compatibility with statsmodels and "
                  f"has no effect in lmm ({IGNORED[name]})", UserWarning, stacklevel=3)
