# lme4 reference fits with prior weights and offsets for models with several grouping
# factors (crossed and nested); writes JSON.
# usage, from the repository root:
#   Rscript tests/data/lme4_multi_weights.R tests/data tests/data/lme4_multi_weights.json
# Weights and offsets are made from the row number i = 0, 1, ... (tests/test_weights.py
# makes the same ones); each case is fitted with several optimizers and the best
# log-likelihood kept.
suppressMessages({library(lme4); library(jsonlite)})
args <- commandArgs(TRUE)
read <- function(name, factors) {
  d <- read.csv(file.path(args[1], paste0(name, ".csv")),
                colClasses = setNames(rep("character", length(factors)), factors))
  for (f in factors) d[[f]] <- factor(d[[f]])
  i <- seq_len(nrow(d)) - 1
  d$w <- 1 + (i %% 3)
  d$w2 <- 0.5 + (i %% 4) / 2
  d$o <- 0.1 * (i %% 5)
  d
}
best_fit <- function(formula, data, REML, weights, offset) {
  data$.w <- weights
  data$.o <- offset
  fits <- lapply(c("nloptwrap", "bobyqa", "Nelder_Mead", "nlminbwrap"), function(opt)
    tryCatch(suppressMessages(suppressWarnings(
      lmer(formula, data = data, REML = REML, control = lmerControl(optimizer = opt),
           weights = .w, offset = .o))),
      error = function(e) {message(conditionMessage(e)); NULL}))
  fits <- Filter(Negate(is.null), fits)
  fits[[which.max(sapply(fits, function(m) as.numeric(logLik(m))))]]
}
summarise <- function(m, data, formula, weights, offset) {
  list(data = data, formula = formula, weights = weights, offset = offset, reml = isREML(m),
       loglik = as.numeric(logLik(m)), theta = unname(getME(m, "theta")),
       theta_names = names(getME(m, "theta")),
       fixef = unname(fixef(m)), fixef_names = names(fixef(m)),
       se = unname(sqrt(diag(as.matrix(vcov(m))))), sigma2 = sigma(m)^2,
       fitted_head = unname(head(fitted(m), 5)),
       resid_pearson_head = unname(head(residuals(m, type = "pearson"), 5)))
}
cases <- list(
  list(id = "penicillin", data = "penicillin", factors = c("plate", "sample"),
       formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", w = "w", o = "o"),
  list(id = "pastes", data = "pastes", factors = c("batch", "cask", "sample"),
       formula = "strength ~ 1 + (1 | batch/cask)", w = "w2", o = NULL),
  list(id = "crossed_slope", data = "multi_crossed_sim", factors = c("g1", "g2"),
       formula = "y ~ x + (1 + x | g1) + (1 | g2)", w = "w2", o = "o")
)
out <- list()
for (cs in cases) {
  d <- read(cs$data, cs$factors)
  for (reml in c(TRUE, FALSE)) {
    tag <- paste0(cs$id, if (reml) "_reml" else "_ml")
    off <- if (is.null(cs$o)) rep(0, nrow(d)) else d[[cs$o]]
    m <- best_fit(as.formula(cs$formula), d, reml, d[[cs$w]], off)
    out[[tag]] <- summarise(m, cs$data, cs$formula, cs$w, cs$o)
  }
}
out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
write(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), args[2])
