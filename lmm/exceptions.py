"""Warning classes of lmm.

`ConvergenceWarning` is raised only when the optimizer's end point fails the
optimum check (`lmm.optimize.judge_optimum`: projected gradient, curvature,
and flat directions, which mean the model is not identified), after one
restart; `SingularFitWarning`, its
subclass, when the optimum sits on the boundary of the parameter space (a
variance at zero or a correlation at +-1), naming the parameter.  Both can be
filtered as statsmodels' ConvergenceWarning is.
"""


class ConvergenceWarning(UserWarning):
    """The fit did not reach a verified optimum."""


class SingularFitWarning(ConvergenceWarning):
    """The optimum lies on the boundary: a random-effect covariance is singular."""


class IllConditionedWarning(UserWarning):
    """The model, as parametrized, is ill-conditioned in the user's units: digits of
    the answer are lost however it is computed (the message says how many, and what
    reparametrization avoids it)."""
