"""The benchmark cases: which model, on which data, fitted how.

Three kinds of case:

* ``seed``: the models of lmm's reference tests (dietox, Sitka), REML;
* ``scale``: ``y ~ x1 + x2 + x3 + x4`` with a correlated random intercept and
  slope on x1, 10 rows per group, rows in random order (`make_scale_data`);
* ``profile``: a 21-point profile likelihood of the Sitka random-slope variance.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

SEED = 20240611
SCALE_SIZES = (10_000, 100_000, 1_000_000)
ROWS_PER_GROUP = 10
# Cases at or above this many rows are "large": each slow tool runs once there,
# without a per-case warm-up (the same formula was warmed up on smaller data).
LARGE_N = 100_000
PROFILE_POINTS = 21


@dataclass(frozen=True)
class Case:
    """One model on one data set.

    `formula`, `groups`, `re_formula` are the statsmodels/lmm arguments;
    `lme4_formula` is the same model for ``lme4::lmer``.  `uncorrelated`
    fits a diagonal random-effects covariance (``free=`` in Python).
    """

    id: str
    kind: str
    data_name: str
    formula: str
    groups: str
    re_formula: str | None
    lme4_formula: str
    uncorrelated: bool = False
    n: int | None = None
    description: str = ""
    columns: tuple = field(default=())

    @property
    def large(self):
        return self.n is not None and self.n >= LARGE_N


def make_scale_data(n, seed=SEED, rows_per_group=ROWS_PER_GROUP):
    """Simulated data for the scale cases, reproducible from `seed`.

    ``y = 1 + 0.5 x1 - 0.3 x2 + 0.2 x3 + 0.1 x4 + b0_g + b1_g x1 + e`` with
    ``(b0, b1) ~ N(0, [[1, 0.3], [0.3, 0.5]])`` per group, ``e ~ N(0, 1)``,
    ``n // rows_per_group`` groups of `rows_per_group` rows, and the rows
    shuffled so that groups are not contiguous.

    Returns a DataFrame with columns y, x1..x4 (float64) and g (int64).
    """
    rng = np.random.default_rng(seed)
    n_groups = n // rows_per_group
    n = n_groups * rows_per_group
    g = np.repeat(np.arange(n_groups, dtype=np.int64), rows_per_group)
    x = rng.standard_normal((n, 4))
    b = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.3], [0.3, 0.5]], size=n_groups)
    y = (1.0 + x @ np.array([0.5, -0.3, 0.2, 0.1]) + b[g, 0] + b[g, 1] * x[:, 0]
         + rng.standard_normal(n))
    perm = rng.permutation(n)
    frame = {"y": y[perm]}
    frame.update({f"x{j + 1}": x[perm, j] for j in range(4)})
    frame["g"] = g[perm]
    return pd.DataFrame(frame)


def load_data(case):
    """The DataFrame of `case` (shipped data sets or the scale generator)."""
    if case.kind == "scale":
        return make_scale_data(case.n)
    import lmm.datasets

    package = {"dietox": "geepack", "Sitka": "MASS"}[case.data_name]
    return lmm.datasets.get_rdataset(case.data_name, package).data


def input_bytes(case, data):
    """Bytes of the model's input columns (response, covariates, groups)."""
    return int(data[list(case.columns)].memory_usage(index=False, deep=True).sum())


def _seed(id_, data_name, formula, groups, re_formula, lme4_re, uncorrelated=False,
          description=""):
    cols = [groups] + [c.strip() for c in formula.replace("~", "+").split("+")]
    return Case(id_, "seed", data_name, formula, groups, re_formula,
                f"{formula} + {lme4_re}", uncorrelated, description=description,
                columns=tuple(dict.fromkeys(cols)))


SEED_CASES = (
    _seed("dietox_ri", "dietox", "Weight ~ Time", "Pig", None, "(1 | Pig)",
          description="dietox, random intercept"),
    _seed("dietox_slope", "dietox", "Weight ~ Time", "Pig", "~Time", "(1 + Time | Pig)",
          description="dietox, correlated random intercept and slope"),
    _seed("dietox_slope_uncorr", "dietox", "Weight ~ Time", "Pig", "~Time",
          "(1 | Pig) + (0 + Time | Pig)", uncorrelated=True,
          description="dietox, uncorrelated random intercept and slope"),
    _seed("sitka_ri", "Sitka", "size ~ Time", "tree", None, "(1 | tree)",
          description="Sitka, random intercept"),
    _seed("sitka_slope", "Sitka", "size ~ Time", "tree", "~Time", "(1 + Time | tree)",
          description="Sitka, correlated random intercept and slope"),
)


def scale_case(n):
    """The scale case with `n` rows."""
    return Case(
        f"scale_{n:.0e}".replace("+0", ""), "scale", "simulated",
        "y ~ x1 + x2 + x3 + x4", "g", "~x1", "y ~ x1 + x2 + x3 + x4 + (1 + x1 | g)",
        n=n, description=f"simulated, {n // ROWS_PER_GROUP} groups x {ROWS_PER_GROUP} rows",
        columns=("y", "x1", "x2", "x3", "x4", "g"),
    )


PROFILE_CASE = Case(
    "sitka_slope_profile", "profile", "Sitka", "size ~ Time", "tree", "~Time",
    "size ~ Time + (1 + Time | tree)",
    description=f"Sitka, {PROFILE_POINTS}-point profile of the random-slope variance",
    columns=("size", "Time", "tree"),
)


def select_cases(quick=False):
    """The cases of a run: everything, or with `quick` the smallest ones."""
    sizes = SCALE_SIZES[:1] if quick else SCALE_SIZES
    return list(SEED_CASES) + [scale_case(n) for n in sizes] + [PROFILE_CASE]
