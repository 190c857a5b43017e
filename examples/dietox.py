"""The seed example: dietox weights, random intercept and slope on Time by pig.

Run with ``python examples/dietox.py`` after ``pip install .``.
"""

import lmm.formula.api as smf
from lmm import datasets

data = datasets.get_rdataset("dietox", "geepack").data
md = smf.mixedlm("Weight ~ Time", data, groups=data["Pig"], re_formula="~Time")
mdf = md.fit()
print(mdf.summary())
