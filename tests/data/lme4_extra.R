# Extra lme4 reference fits for single cases used by the tests; writes JSON.
# usage: Rscript tests/data/lme4_extra.R lmm/datasets tests/data/lme4_extra.json
suppressMessages({library(lme4); library(jsonlite)})
args <- commandArgs(TRUE)
d <- read.csv(file.path(args[1], "dietox.csv")); d$Pig <- factor(d$Pig)
best_fit <- function(formula, data, REML = TRUE) {
  fits <- lapply(c("nloptwrap", "bobyqa", "Nelder_Mead", "nlminbwrap"), function(opt)
    tryCatch(suppressMessages(suppressWarnings(
      lmer(formula, data = data, REML = REML, control = lmerControl(optimizer = opt)))),
      error = function(e) NULL))
  fits <- Filter(Negate(is.null), fits)
  fits[[which.max(sapply(fits, function(m) as.numeric(logLik(m))))]]
}
m <- best_fit(Weight ~ 1 + (1 | Pig), d)
out <- list(dietox_intercept_only_ri_reml = list(
  formula = "Weight ~ 1 + (1 | Pig)", reml = TRUE, loglik = as.numeric(logLik(m)),
  theta = unname(getME(m, "theta")), singular = isSingular(m),
  fixef = as.list(fixef(m)), sigma2 = sigma(m)^2,
  lme4_version = as.character(packageVersion("lme4"))))
write(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), args[2])
