# lmerTest references for tests/test_inference.py: Satterthwaite t tests (summary) and
# F tests of contrast matrices (contest), REML and ML, on lme4's sleepstudy and the seed
# data (dietox, Sitka: the CSVs lmm ships). Run from the repository root:
#   Rscript tests/data/lmertest_ref.R
# Writes tests/data/lmertest.json and tests/data/sleepstudy.csv (lme4's data set:
# Belenky et al. 2003, as shipped in lme4, GPL >= 2).
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(jsonlite)})
data("sleepstudy", package = "lme4")
write.csv(sleepstudy, "tests/data/sleepstudy.csv", row.names = FALSE)
dietox <- read.csv("lmm/datasets/dietox.csv")
sitka <- read.csv("lmm/datasets/Sitka.csv")
dietox$Evit <- factor(dietox$Evit)
penicillin <- read.csv("tests/data/penicillin.csv")
pastes <- read.csv("tests/data/pastes.csv")
crossed <- read.csv("tests/data/multi_crossed_sim.csv")
nested <- read.csv("tests/data/multi_nested_sim.csv")
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))

fit_case <- function(formula, data, reml, L = NULL) {
  m <- lmerTest::lmer(formula, data = data, REML = reml, control = ctrl)
  co <- summary(m, ddf = "Satterthwaite")$coefficients
  out <- list(
    formula = deparse(formula), reml = reml, loglik = as.numeric(logLik(m)),
    names = rownames(co),
    estimate = unname(co[, "Estimate"]), std_error = unname(co[, "Std. Error"]),
    df = unname(co[, "df"]), t = unname(co[, "t value"]), p_value = unname(co[, "Pr(>|t|)"]))
  if (!is.null(L)) {
    ct <- contest(m, L, ddf = "Satterthwaite", joint = TRUE)
    out$contrast <- list(L = L, num_df = ct[["NumDF"]], den_df = ct[["DenDF"]],
                         F = ct[["F value"]], p_value = ct[["Pr(>F)"]])
  }
  out
}

cases <- list(
  sleepstudy_slope_reml = fit_case(Reaction ~ Days + (Days | Subject), sleepstudy, TRUE,
                                   L = rbind(c(1, 0), c(0, 1))),
  sleepstudy_slope_ml = fit_case(Reaction ~ Days + (Days | Subject), sleepstudy, FALSE,
                                 L = rbind(c(1, 0), c(0, 1))),
  sleepstudy_diag_reml = fit_case(Reaction ~ Days + (Days || Subject), sleepstudy, TRUE),
  sleepstudy_ri_reml = fit_case(Reaction ~ Days + (1 | Subject), sleepstudy, TRUE),
  dietox_slope_reml = fit_case(Weight ~ Time + (1 + Time | Pig), dietox, TRUE),
  dietox_evit_reml = fit_case(Weight ~ Time + Evit + (1 | Pig), dietox, TRUE,
                              L = rbind(c(0, 0, 1, 0), c(0, 0, 0, 1))),
  dietox_evit_ml = fit_case(Weight ~ Time + Evit + (1 | Pig), dietox, FALSE,
                            L = rbind(c(0, 0, 1, 0), c(0, 0, 0, 1))),
  sitka_slope_reml = fit_case(size ~ Time + (1 + Time | tree), sitka, TRUE),
  # several grouping factors (tests/data's CSVs)
  penicillin_crossed_reml = fit_case(diameter ~ 1 + (1 | plate) + (1 | sample), penicillin,
                                     TRUE),
  pastes_nested_reml = fit_case(strength ~ 1 + (1 | batch/cask), pastes, TRUE),
  crossedsim_slope_reml = fit_case(y ~ x + (1 + x | g1) + (1 | g2), crossed, TRUE,
                                   L = rbind(c(1, 0), c(0, 1))),
  crossedsim_slope_ml = fit_case(y ~ x + (1 + x | g1) + (1 | g2), crossed, FALSE),
  nestedsim_reml = fit_case(y ~ x + (1 | school/class), nested, TRUE)
)
# lmerTest's anova tables (type III and II, Satterthwaite): main-effects models
anova_case <- function(formula, data, reml, type) {
  m <- lmerTest::lmer(formula, data = data, REML = reml, control = ctrl)
  a <- anova(m, type = type, ddf = "Satterthwaite")
  list(formula = deparse(formula), reml = reml, type = type, loglik = as.numeric(logLik(m)),
       terms = rownames(a), num_df = unname(a[["NumDF"]]), den_df = unname(a[["DenDF"]]),
       F = unname(a[["F value"]]), p_value = unname(a[["Pr(>F)"]]))
}
dietox$Cu <- factor(dietox$Cu)
cases$anova <- list(
  dietox_main_reml_3 = anova_case(Weight ~ Time + Evit + Cu + (1 | Pig), dietox, TRUE, 3),
  dietox_main_reml_2 = anova_case(Weight ~ Time + Evit + Cu + (1 | Pig), dietox, TRUE, 2),
  dietox_main_ml_3 = anova_case(Weight ~ Time + Evit + Cu + (1 | Pig), dietox, FALSE, 3),
  dietox_crossed_reml_3 = anova_case(Weight ~ Time + Evit + Cu + (1 | Pig) + (1 | Litter),
                                     dietox, TRUE, 3),
  dietox_main_reml_1 = anova_case(Weight ~ Time + Evit + Cu + (1 | Pig), dietox, TRUE, 1),
  dietox_interaction_reml_1 = anova_case(Weight ~ Time * Evit + (1 | Pig), dietox, TRUE, 1),
  dietox_interaction_ml_1 = anova_case(Weight ~ Time * Evit + (1 | Pig), dietox, FALSE, 1)
)
cases$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                       lmerTest = as.character(packageVersion("lmerTest")))
write_json(cases, "tests/data/lmertest.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
