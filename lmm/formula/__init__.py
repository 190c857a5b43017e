"""Formulas: patsy formulas to design matrices (and, later, lme4's bars)."""
