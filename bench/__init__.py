"""Benchmarks of lmm against statsmodels' MixedLM and R's lme4.

Run ``python -m bench --help``.  One run times every tool on the same data,
alternating tools between repetitions, and checks that the answers agree
(log-likelihood differences), so a fast wrong answer cannot pass a target.

Modules
-------
cases        the models and data sets (seed models, scale generator, profile)
run_python   in-process timing of lmm and statsmodels (same formula API)
run_r        a persistent ``Rscript`` session running lme4 (lme4_bench.R)
memory       peak extra memory of one lmm fit, in a fresh subprocess
measurement  what one timed run records; median, growth exponent
report       agreement, targets, the printed table and the chart
cli          command line and the run loop
many         ``python -m bench.many``: many responses on one design (fit_many vs a
             statsmodels loop and lme4's refit())
crossed      ``python -m bench.crossed``: several grouping factors (nested, crossed),
             lmm.lmer vs lme4::lmer
"""
