# lme4 profile confidence intervals for models with several grouping factors
# (issue 11: profile intervals for each variance component).
# usage: Rscript tests/data/lme4_multi_confint.R tests/data tests/data/lme4_multi_confint.json
#
# Reads the CSVs written by lme4_multi_ref.R (grouping columns as character,
# made factors) and, per case, fits by REML with bobyqa and records
# confint(m, parm = "theta_", method = "profile", oldNames = FALSE) at the
# 95 % level: one row per standard deviation / correlation and sigma, named as
# lme4 names them (sd_(Intercept)|plate, cor_x.(Intercept)|g1, sigma).  lme4
# profiles the ML deviance of a REML fit's model (it refits by ML first).
suppressMessages({library(lme4); library(jsonlite)})
args <- commandArgs(TRUE)
datadir <- args[1]; out <- args[2]
cases <- list(
  list(id = "penicillin_crossed", data = "penicillin", factors = c("plate", "sample"),
       formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"),
  list(id = "pastes_nested", data = "pastes", factors = c("batch", "cask", "sample"),
       formula = "strength ~ 1 + (1 | batch/cask)"),
  list(id = "sim_crossed_corr", data = "multi_crossed_sim", factors = c("g1", "g2"),
       formula = "y ~ x + (1 + x | g1) + (1 | g2)")
)
res <- list()
for (cs in cases) {
  d <- read.csv(file.path(datadir, paste0(cs$data, ".csv")), colClasses = setNames(rep("character", length(cs$factors)), cs$factors))
  for (f in cs$factors) d[[f]] <- factor(d[[f]])
  m <- lmer(as.formula(cs$formula), d, REML = TRUE, control = lmerControl(optimizer = "bobyqa"))
  ci <- confint(m, parm = "theta_", method = "profile", oldNames = FALSE, level = 0.95)
  res[[cs$id]] <- list(id = cs$id, data = cs$data, formula = cs$formula, factors = cs$factors,
                       names = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]),
                       lme4_version = as.character(packageVersion("lme4")))
}
writeLines(toJSON(res, auto_unbox = TRUE, digits = 15, pretty = TRUE), out)
