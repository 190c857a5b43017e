# lme4 reference fits with prior weights and offsets; writes JSON.
# usage: Rscript tests/data/lme4_weights.R tests/data lmm/datasets tests/data/lme4_weights.json
# Each case is fitted with several optimizers and the best log-likelihood kept.
suppressMessages({library(lme4); library(jsonlite)})
args <- commandArgs(TRUE)
sleep <- read.csv(file.path(args[1], "sleepstudy.csv")); sleep$Subject <- factor(sleep$Subject)
sleep$w <- 1 + (sleep$Days %% 3)
sleep$o <- 0.5 * sleep$Days
diet <- read.csv(file.path(args[2], "dietox.csv")); diet$Pig <- factor(diet$Pig)
diet$w <- 1 + (diet$Time %% 4) / 2
diet$o <- 2 * diet$Feed
diet$o[is.na(diet$o)] <- 0
# MixedModels.jl's weights test (test/pls.jl, from its issue 194)
mmjl <- data.frame(
  a = c(1.55945122, 0.004391538, 0.005554163, -0.173029772, 4.586284429, 0.259493671,
        -0.091735715, 5.546487603, 0.457734831, -0.030169602),
  b = c(0.24520519, 0.080624178, 0.228083467, 0.2471453, 0.398994279, 0.037213859,
        0.102144973, 0.241380251, 0.206570975, 0.15980803),
  c = factor(c("H", "F", "K", "P", "P", "P", "D", "M", "I", "D")),
  w1 = c(20, 40, 35, 12, 29, 25, 65, 105, 30, 75))
best_fit <- function(formula, data, REML, weights = NULL, offset = NULL) {
  # (weights and offsets as columns of `data`: lmer evaluates them there)
  data$.w <- if (is.null(weights)) 1 else weights
  data$.o <- if (is.null(offset)) 0 else offset
  fits <- lapply(c("nloptwrap", "bobyqa", "Nelder_Mead", "nlminbwrap"), function(opt)
    tryCatch(suppressMessages(suppressWarnings(
      lmer(formula, data = data, REML = REML, control = lmerControl(optimizer = opt),
           weights = .w, offset = .o))),
      error = function(e) {message(conditionMessage(e)); NULL}))
  fits <- Filter(Negate(is.null), fits)
  fits[[which.max(sapply(fits, function(m) as.numeric(logLik(m))))]]
}
summarise <- function(m, formula, weights, offset) {
  vc <- as.data.frame(VarCorr(m))
  list(formula = formula, weights = weights, offset = offset, reml = isREML(m),
       loglik = as.numeric(logLik(m)), theta = unname(getME(m, "theta")),
       fixef = unname(fixef(m)), fixef_names = names(fixef(m)),
       se = unname(sqrt(diag(as.matrix(vcov(m))))),
       vcov = unname(as.matrix(vcov(m))), sigma2 = sigma(m)^2,
       varcorr = vc$vcov, varcorr_names = paste(vc$var1, vc$var2),
       fitted_head = unname(head(fitted(m), 5)),
       resid_response_head = unname(head(residuals(m, type = "response"), 5)),
       resid_pearson_head = unname(head(residuals(m, type = "pearson"), 5)),
       weighted_resid_head = unname(head(weighted.residuals(m), 5)),
       lme4_version = as.character(packageVersion("lme4")))
}
out <- list()
for (reml in c(TRUE, FALSE)) {
  tag <- if (reml) "reml" else "ml"
  f <- Reaction ~ Days + (Days | Subject)
  out[[paste0("sleep_w_", tag)]] <- summarise(
    best_fit(f, sleep, reml, weights = sleep$w), "Reaction ~ Days + (Days | Subject)", "w", NULL)
  out[[paste0("sleep_o_", tag)]] <- summarise(
    best_fit(f, sleep, reml, offset = sleep$o), "Reaction ~ Days + (Days | Subject)", NULL, "o")
  out[[paste0("sleep_wo_", tag)]] <- summarise(
    best_fit(f, sleep, reml, weights = sleep$w, offset = sleep$o), "Reaction ~ Days + (Days | Subject)",
    "w", "o")
  g <- Weight ~ Time + (Time | Pig)
  out[[paste0("dietox_w_", tag)]] <- summarise(
    best_fit(g, diet, reml, weights = diet$w), "Weight ~ Time + (Time | Pig)", "w", NULL)
  out[[paste0("dietox_wo_", tag)]] <- summarise(
    best_fit(g, diet, reml, weights = diet$w, offset = diet$o), "Weight ~ Time + (Time | Pig)", "w", "o")
  out[[paste0("mmjl_w1_", tag)]] <- summarise(
    best_fit(a ~ 1 + b + (1 | c), mmjl, reml, weights = mmjl$w1), "a ~ 1 + b + (1 | c)", "w1", NULL)
}
# weights all equal to 3: the unweighted estimates; logLik shifted by n log(3) / 2
sleep$w3 <- 3
out[["sleep_w3_ml"]] <- summarise(
  best_fit(Reaction ~ Days + (Days | Subject), sleep, FALSE, weights = sleep$w3),
  "Reaction ~ Days + (Days | Subject)", "w3", NULL)
out[["sleep_unweighted_ml"]] <- summarise(
  best_fit(Reaction ~ Days + (Days | Subject), sleep, FALSE),
  "Reaction ~ Days + (Days | Subject)", NULL, NULL)
out[["sleep_w3_reml"]] <- summarise(
  best_fit(Reaction ~ Days + (Days | Subject), sleep, TRUE, weights = sleep$w3),
  "Reaction ~ Days + (Days | Subject)", "w3", NULL)
out[["sleep_unweighted_reml"]] <- summarise(
  best_fit(Reaction ~ Days + (Days | Subject), sleep, TRUE),
  "Reaction ~ Days + (Days | Subject)", NULL, NULL)
# features on top of a weighted fit: lmerTest's Satterthwaite table, lme4's
# profile intervals (ML profile of the REML fit, lme4's default), an LRT
suppressMessages(library(lmerTest))
mt <- lmerTest::lmer(Reaction ~ Days + (Days | Subject), sleep, weights = w, offset = o)
ct <- coef(summary(mt))
ci <- suppressWarnings(suppressMessages(confint(mt, method = "profile", oldNames = FALSE)))
m0 <- lme4::lmer(Reaction ~ 1 + (Days | Subject), sleep, weights = w, REML = FALSE)
m1 <- lme4::lmer(Reaction ~ Days + (Days | Subject), sleep, weights = w, REML = FALSE)
a <- anova(m0, m1)
out[["sleep_wo_features"]] <- list(
  satterthwaite_df = unname(ct[, "df"]), t = unname(ct[, "t value"]),
  p = unname(ct[, "Pr(>|t|)"]), confint_names = rownames(ci),
  confint_lower = unname(ci[, 1]), confint_upper = unname(ci[, 2]),
  lrt_chisq = a$Chisq[2], lrt_p = a[["Pr(>Chisq)"]][2], lrt_loglik = a$logLik,
  lmerTest_version = as.character(packageVersion("lmerTest")))
write(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), args[3])
