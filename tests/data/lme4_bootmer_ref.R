# lme4's bootMer references for tests/test_bootstrap_lme4.py: 2,000 parametric
# bootstrap replicates (lme4's defaults: use.u = FALSE, type = "parametric") of
# sleepstudy's random slope and Penicillin's crossed model, REML; each replicate's
# fixed effects and sigma; their standard deviations and 95 % percentile intervals
# (R's quantile type 7, numpy's default). Run from the repository root:
#   Rscript tests/data/lme4_bootmer_ref.R
# Writes tests/data/lme4_bootmer.json (about a minute).
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
sleep <- read.csv("tests/data/sleepstudy.csv"); sleep$Subject <- factor(sleep$Subject)
pen <- read.csv("tests/data/penicillin.csv"); pen$plate <- factor(pen$plate)
pen$sample <- factor(pen$sample)
stat <- function(m) c(fixef(m), sigma = sigma(m))
run <- function(formula, data, nsim) {
  m <- lmer(formula, data)
  seconds <- system.time(b <- bootMer(m, stat, nsim = nsim, seed = 20261202))[["elapsed"]]
  t <- b$t
  list(formula = deparse(formula), nsim = nsim, names = colnames(t),
       estimate = unname(stat(m)), sd = unname(apply(t, 2, sd)),
       lower = unname(apply(t, 2, quantile, 0.025)),
       upper = unname(apply(t, 2, quantile, 0.975)), seconds = seconds)
}
out <- list(
  sleepstudy = run(Reaction ~ Days + (Days | Subject), sleep, 2000),
  penicillin = run(diameter ~ 1 + (1 | plate) + (1 | sample), pen, 2000),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))))
write_json(out, "tests/data/lme4_bootmer.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
