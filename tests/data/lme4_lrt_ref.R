# Reference likelihood-ratio tests from lme4; writes one JSON file.
# For each pair of nested models (m0 inside m1, same fixed effects) both models
# are fitted with REML, each with the default optimizer (nloptwrap) and three
# others, keeping the highest logLik (as lme4_ref.R does). Then
#   - anova(m0, m1): refit = TRUE (the default) refits REML fits with ML via
#     refitML() (bobyqa started at the REML theta) and compares ML logLiks,
#   - anova(m0, m1, refit = FALSE): compares the REML logLiks as they are,
# and records for each model npar, logLik, AIC, BIC, deviance, and the test's
# Chisq, Df and Pr(>Chisq). lme4 computes Chisq = 2 * max(0, diff(logLik)) and
# a plain chi-square p-value on Df = diff(npar) (no boundary correction).
# For comparison it also fits both models directly with ML (best optimizer)
# and records their logLiks and the resulting statistic ("ml_direct").
# usage: Rscript tests/data/lme4_lrt_ref.R lmm/datasets tests/data/lme4_lrt.json
suppressMessages({library(lme4); library(jsonlite)})
args <- commandArgs(TRUE)
datadir <- args[1]; out <- args[2]

cases <- list(
  list(id = "dietox_uncorr_vs_corr", data = "dietox", factors = "Pig",
       m0 = "Weight ~ Time + (1 | Pig) + (0 + Time | Pig)",
       m1 = "Weight ~ Time + (1 + Time | Pig)"),
  list(id = "dietox_ri_vs_rs", data = "dietox", factors = "Pig",
       m0 = "Weight ~ Time + (1 | Pig)",
       m1 = "Weight ~ Time + (1 + Time | Pig)"),
  list(id = "sitka_ri_vs_rs", data = "Sitka", factors = "tree",
       m0 = "size ~ Time + (1 | tree)",
       m1 = "size ~ Time + (1 + Time | tree)")
)

# Fit with each optimizer and keep the highest logLik.
fit_best <- function(formula, d, reml) {
  best <- NULL; best_opt <- NA
  for (opt in c("nloptwrap", "bobyqa", "Nelder_Mead", "nlminbwrap")) {
    m <- tryCatch(suppressMessages(suppressWarnings(
      lmer(as.formula(formula), data = d, REML = reml, control = lmerControl(optimizer = opt)))),
      error = function(e) NULL)
    if (!is.null(m) && (is.null(best) || as.numeric(logLik(m)) > as.numeric(logLik(best)) + 1e-9)) {
      best <- m; best_opt <- opt
    }
  }
  list(model = best, optimizer = best_opt)
}

# anova table as a list: one entry per model (in lme4's order, by npar) and the test.
anova_list <- function(a) {
  models <- lapply(seq_len(nrow(a)), function(i) list(
    model = rownames(a)[i], npar = a$npar[i], aic = a$AIC[i], bic = a$BIC[i],
    loglik = a$logLik[i], deviance = a$deviance[i]))
  list(models = models, chisq = a$Chisq[2], df = a$Df[2], p_value = a[["Pr(>Chisq)"]][2])
}

model_info <- function(f) list(optimizer = f$optimizer, loglik = as.numeric(logLik(f$model)),
                               npar = attr(logLik(f$model), "df"), singular = isSingular(f$model),
                               messages = I(as.character(unlist(f$model@optinfo$conv$lme4$messages))))

res <- list()
for (cs in cases) {
  d <- read.csv(file.path(datadir, paste0(cs$data, ".csv")))
  for (f in cs$factors) d[[f]] <- factor(d[[f]])
  f0 <- fit_best(cs$m0, d, TRUE); f1 <- fit_best(cs$m1, d, TRUE)
  m0 <- f0$model; m1 <- f1$model
  a_refit <- suppressMessages(anova(m0, m1, model.names = c("m0", "m1")))
  a_reml <- anova(m0, m1, refit = FALSE, model.names = c("m0", "m1"))
  # Direct ML fits, for comparison with anova's refitML.
  g0 <- fit_best(cs$m0, d, FALSE); g1 <- fit_best(cs$m1, d, FALSE)
  ll0 <- as.numeric(logLik(g0$model)); ll1 <- as.numeric(logLik(g1$model))
  df <- attr(logLik(g1$model), "df") - attr(logLik(g0$model), "df")
  chisq <- 2 * max(0, ll1 - ll0)
  res[[cs$id]] <- list(
    id = cs$id, data = cs$data, m0 = cs$m0, m1 = cs$m1, nobs = nobs(m0),
    reml_fits = list(m0 = model_info(f0), m1 = model_info(f1)),
    refit_true = anova_list(a_refit),
    refit_false = anova_list(a_reml),
    ml_direct = list(m0 = model_info(g0), m1 = model_info(g1),
                     chisq = chisq, df = df, p_value = pchisq(chisq, df, lower.tail = FALSE)),
    lme4_version = as.character(packageVersion("lme4")))
}
res$notes <- paste(
  "refit_true is lme4's default anova(m0, m1): REML fits are refitted with ML",
  "by refitML() (bobyqa from the REML theta). refit_false compares REML",
  "logLiks, valid here because m0 and m1 have the same fixed effects.",
  "ml_direct refits from scratch with ML (best of four optimizers); its",
  "logLiks should agree with refit_true up to optimizer tolerance.",
  "p-values are naive chi-square(Df) (no correction for parameters on the boundary).")
write(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"), out)
