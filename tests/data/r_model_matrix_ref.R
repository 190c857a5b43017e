# R's fixed-effects design (model.matrix) and lme4's fixef of lme4-style formulas with
# factors, for tests/test_r_names.py: R's treatment contrasts and column names; writes JSON.
# usage, from the repository root:
#   Rscript tests/data/r_model_matrix_ref.R lmm/datasets/dietox.csv tests/data/r_model_matrix.json
suppressMessages({library(lme4); library(jsonlite)})
args <- commandArgs(TRUE)
d <- read.csv(args[1])
d$Evit <- factor(d$Evit)
d$Cu <- factor(d$Cu)
d$Pig <- factor(d$Pig)
formulas <- c("Weight ~ Time + Evit + (1 | Pig)", "Weight ~ Time * Evit + (1 | Pig)",
              "Weight ~ 0 + Evit + Time + (1 | Pig)", "Weight ~ Evit * Cu + Time + (1 | Pig)")
out <- lapply(formulas, function(f) {
  m <- lmer(as.formula(f), data = d, control = lmerControl(optimizer = "bobyqa"))
  x <- getME(m, "X")
  list(formula = f, columns = colnames(x), first_rows = unname(x[1:30, , drop = FALSE]),
       fixef = unname(fixef(m)), fixef_names = names(fixef(m)),
       loglik = as.numeric(logLik(m)))
})
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, matrix = "rowmajor"), args[2])
