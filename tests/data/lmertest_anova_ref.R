# lmerTest references for tests/test_anova.py: type III and type II analysis-of-variance
# tables of models with interactions (Satterthwaite; Kenward-Roger through pbkrtest), one
# and two grouping factors, on the dietox data lmm ships. Run from the repository root:
#   Rscript tests/data/lmertest_anova_ref.R
# Writes tests/data/lmertest_anova.json.
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(jsonlite)})
dietox <- read.csv("lmm/datasets/dietox.csv")
dietox$Evit <- factor(dietox$Evit)
dietox$Cu <- factor(dietox$Cu)
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))

anova_case <- function(formula, reml, type, ddf = "Satterthwaite") {
  m <- lmerTest::lmer(formula, data = dietox, REML = reml, control = ctrl)
  a <- anova(m, type = type, ddf = ddf)
  list(formula = deparse(formula), reml = reml, type = type, ddf = ddf,
       loglik = as.numeric(logLik(m)),
       terms = rownames(a), num_df = unname(a[["NumDF"]]), den_df = unname(a[["DenDF"]]),
       F = unname(a[["F value"]]), p_value = unname(a[["Pr(>F)"]]))
}
f_int <- Weight ~ Time * Evit + (1 | Pig)
f_three <- Weight ~ Time * Evit * Cu + (1 | Pig)
f_factors <- Weight ~ Time + Evit * Cu + (1 | Pig)
f_crossed <- Weight ~ Time * Evit + (1 | Pig) + (1 | Litter)
cases <- list(
  interaction_reml_3 = anova_case(f_int, TRUE, 3),
  interaction_reml_2 = anova_case(f_int, TRUE, 2),
  interaction_ml_3 = anova_case(f_int, FALSE, 3),
  interaction_ml_2 = anova_case(f_int, FALSE, 2),
  three_way_reml_3 = anova_case(f_three, TRUE, 3),
  three_way_reml_2 = anova_case(f_three, TRUE, 2),
  factors_reml_3 = anova_case(f_factors, TRUE, 3),
  factors_reml_2 = anova_case(f_factors, TRUE, 2),
  crossed_reml_3 = anova_case(f_crossed, TRUE, 3),
  crossed_reml_2 = anova_case(f_crossed, TRUE, 2),
  interaction_reml_3_kr = anova_case(f_int, TRUE, 3, "Kenward-Roger"),
  three_way_reml_2_kr = anova_case(f_three, TRUE, 2, "Kenward-Roger"),
  # formulas that are not hierarchical: R codes some variables by indicators, and
  # lmerTest's containment ignores those
  slope_only_reml_3 = anova_case(Weight ~ Time + Time:Evit + (1 | Pig), TRUE, 3),
  slope_only_reml_2 = anova_case(Weight ~ Time + Time:Evit + (1 | Pig), TRUE, 2),
  nested_factor_reml_3 = anova_case(Weight ~ Evit + Evit:Cu + (1 | Pig), TRUE, 3),
  nested_factor_reml_2 = anova_case(Weight ~ Evit + Evit:Cu + (1 | Pig), TRUE, 2),
  no_intercept_reml_3 = anova_case(Weight ~ 0 + Evit * Cu + (1 | Pig), TRUE, 3),
  no_intercept_reml_2 = anova_case(Weight ~ 0 + Evit * Cu + (1 | Pig), TRUE, 2)
)
# the same type III table with sum-to-zero coding (lmerTest maps its treatment-coded
# contrasts to the design's coding): R's own check that the table does not depend on it
options(contrasts = c("contr.sum", "contr.poly"))
cases$interaction_reml_3_sum <- anova_case(f_int, TRUE, 3)
cases$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                       lmerTest = as.character(packageVersion("lmerTest")),
                       pbkrtest = as.character(packageVersion("pbkrtest")))
write_json(cases, "tests/data/lmertest_anova.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
