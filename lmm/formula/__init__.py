"""Formulas: patsy formulas and lme4's bars to design matrices.

Formula strings are parsed, never run as arbitrary Python: see
`lmm.formula.safe` for what a formula may contain and ``eval_env=``.
"""
