# R's fixed-effects design (model.matrix) and lme4's fit of lme4-style formulas with R's
# functions and operators as R users write them, for tests/test_r_names.py: stateful
# transforms (poly, scale) memorized on every row before na.omit drops the rows with a
# missing Feed, ^ as R's power with R's precedence, R's deparsed names of the fixed and
# random effects; writes JSON.
# usage, from the repository root:
#   Rscript tests/data/r_formula_forms_ref.R lmm/datasets/dietox.csv tests/data/r_formula_forms.json
suppressMessages({library(lme4); library(jsonlite); library(splines)})
args <- commandArgs(TRUE)
d <- read.csv(args[1])
d$Evit <- factor(d$Evit)
d$Pig <- factor(d$Pig)
formulas <- c("Weight ~ poly(Time, 2) + scale(Feed) + (1 | Pig)",
              "Weight ~ poly(Time, 2) + scale(Feed) + (1 | Pig) + (1 | Evit)",
              "Weight ~ I(Time^2) + exp(Time/10) + (1 | Pig)",
              "Weight ~ exp(Time^-1) + I((Time + 1)^2) + (1 | Pig)",
              "Weight ~ I(Time + Time^2) + (1 | Pig)",
              "Weight ~ I(-Time^2) + Time + (1 | Pig)",
              "Weight ~ 0 + ns(Time, df = 3, intercept = TRUE) + (1 | Pig)",
              "Weight ~ log(Feed) + poly(Time, 2, raw = TRUE) + (1 | Pig)",
              "Weight ~ Time + (1 + I(Time^2) | Pig)",
              "Weight ~ Time + (1 | Pig) + (0 + I(Time^2) | Evit)")
out <- lapply(formulas, function(f) {
  m <- lmer(as.formula(f), data = d, control = lmerControl(optimizer = "bobyqa"))
  x <- getME(m, "X")
  list(formula = f, columns = colnames(x), first_rows = unname(x[1:30, , drop = FALSE]),
       nobs = nobs(m), fixef = unname(fixef(m)), fixef_names = names(fixef(m)),
       loglik = as.numeric(logLik(m)), re_names = lapply(ranef(m), colnames))
})
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, matrix = "rowmajor"), args[2])
