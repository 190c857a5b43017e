# lme4 profile confidence intervals of the fixed effects for models with several
# grouping factors: confint(m, parm = "beta_", method = "profile") at the 95 % and 90 %
# levels (lme4 refits a REML fit by ML and profiles the ML deviance).
# usage, from the repository root:
#   Rscript tests/data/lme4_multi_fixef_confint.R tests/data tests/data/lme4_multi_fixef_confint.json
# Reads the CSVs beside it (grouping columns as character, made factors).
suppressMessages({library(lme4); library(jsonlite)})
args <- commandArgs(TRUE)
datadir <- args[1]; out <- args[2]
cases <- list(
  list(id = "penicillin_crossed", data = "penicillin", factors = c("plate", "sample"),
       formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"),
  list(id = "pastes_nested", data = "pastes", factors = c("batch", "cask", "sample"),
       formula = "strength ~ 1 + (1 | batch/cask)"),
  list(id = "sim_crossed_corr", data = "multi_crossed_sim", factors = c("g1", "g2"),
       formula = "y ~ x + (1 + x | g1) + (1 | g2)"),
  list(id = "sim_nested", data = "multi_nested_sim", factors = c("school", "class"),
       formula = "y ~ x + (1 | school/class)")
)
res <- list()
for (cs in cases) {
  d <- read.csv(file.path(datadir, paste0(cs$data, ".csv")),
                colClasses = setNames(rep("character", length(cs$factors)), cs$factors))
  for (f in cs$factors) d[[f]] <- factor(d[[f]])
  m <- lmer(as.formula(cs$formula), d, REML = TRUE, control = lmerControl(optimizer = "bobyqa"))
  ml <- refitML(m)
  entry <- list(id = cs$id, data = cs$data, formula = cs$formula, factors = cs$factors,
                ml_loglik = as.numeric(logLik(ml)))
  for (level in c(0.95, 0.90)) {
    ci <- confint(m, parm = "beta_", method = "profile", level = level)
    entry[[sprintf("confint_%d", round(100 * level))]] <-
      list(names = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))
  }
  res[[cs$id]] <- entry
}
res$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE), out)
