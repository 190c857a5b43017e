"""The seed walkthrough (statsmodels' MixedLM vs lme4 on dietox and Sitka), with lmm.

Every step of the original notebook, with lmm in statsmodels' place and lme4's
syntax beside it; the fits reach lme4's best optima.  Writes the two profile
plots as PNG files into the current directory (or the directory given as the
first argument).

    python examples/walkthrough.py [output-directory]
"""

import sys
from pathlib import Path

import numpy as np

import lmm
import lmm.api as sm
import lmm.formula.api as smf

out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")
out_dir.mkdir(parents=True, exist_ok=True)

# -- dietox: pig weights over time, random intercept -------------------------------
data = sm.datasets.get_rdataset("dietox", "geepack").data
md = smf.mixedlm("Weight ~ Time", data, groups=data["Pig"])
mdf = md.fit()
print(mdf.summary())
print(lmm.lmer("Weight ~ Time + (1 | Pig)", data).summary())

# -- random intercept and random slope on Time -------------------------------------
md = smf.mixedlm("Weight ~ Time", data, groups=data["Pig"], re_formula="~Time")
mdf = md.fit()
print(mdf.summary())
full = lmm.lmer("Weight ~ Time + (1 + Time | Pig)", data)
print(full.summary())
cov = mdf.cov_re.to_numpy()
print(f"correlation of intercept and slope: {cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]):.3f}")

# -- uncorrelated random effects: statsmodels' free= and lme4's || ----------------
free = sm.regression.mixed_linear_model.MixedLMParams.from_components(np.ones(2), np.eye(2))
mdf = md.fit(free=free)
print(mdf.summary())
restricted = lmm.lmer("Weight ~ Time + (Time || Pig)", data)
print(restricted.summary())

# the likelihood drops by about 0.3 when the correlation is fixed at zero
print(lmm.lrtest(restricted, full))                 # REML statistic, about 0.60
print(lmm.lrtest(restricted, full, refit=True))     # refit by ML as lme4's anova(), 0.63

# -- Sitka: tree growth, through the array interface -------------------------------
data = sm.datasets.get_rdataset("Sitka", "MASS").data
endog = data["size"]
data["Intercept"] = 1
exog = data[["Intercept", "Time"]]

md = sm.MixedLM(endog, exog, groups=data["tree"], exog_re=exog["Intercept"])
mdf = md.fit()
print(mdf.summary())

exog_re = exog.copy()
md = sm.MixedLM(endog, exog, data["tree"], exog_re)
mdf = md.fit()          # the optimum lme4's default misses (-62.48, not -76.68)
print(mdf.summary())
print(lmm.lmer("size ~ Time + (1 + Time | tree)", data).summary())

# -- profile likelihoods of the two variances ----------------------------------------
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

likev = mdf.profile_re(0, "re", dist_low=0.1, dist_high=0.1)
plt.figure(figsize=(10, 8))
plt.plot(likev[:, 0], 2 * likev[:, 1])
plt.xlabel("Variance of random intercept", size=17)
plt.ylabel("2 x profile log-likelihood", size=17)
plt.savefig(out_dir / "profile_intercept.png")
plt.close()

re = mdf.cov_re.iloc[1, 1]
likev = mdf.profile_re(1, "re", dist_low=0.5 * re, dist_high=0.8 * re)
plt.figure(figsize=(10, 8))
plt.plot(likev[:, 0], 2 * likev[:, 1])
plt.xlabel("Variance of random slope", size=17)
plt.ylabel("2 x profile log-likelihood", size=17)
plt.savefig(out_dir / "profile_slope.png")
plt.close()
print(f"profile plots written to {out_dir.resolve()}")
