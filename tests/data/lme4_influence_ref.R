# lme4 references for tests/test_influence.py: hat values, Cook's distances,
# studentized residuals and Pearson residuals (lme4's hatvalues, cooks.distance,
# rstudent, residuals(type = "pearson")), REML fits. Run from the repository root:
#   Rscript tests/data/lme4_influence_ref.R
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
sleepstudy <- read.csv("tests/data/sleepstudy.csv")
dietox <- read.csv("lmm/datasets/dietox.csv")
penicillin <- read.csv("tests/data/penicillin.csv")
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))
one <- function(formula, data, weights = NULL) {
  data$w <- if (is.null(weights)) 1 else weights
  m <- if (is.null(weights)) lmer(formula, data = data, control = ctrl) else
    lmer(formula, data = data, weights = w, control = ctrl)
  list(formula = deparse(formula), loglik = as.numeric(logLik(m)),
       hat = unname(hatvalues(m)), cooks = unname(cooks.distance(m)),
       rstudent = unname(rstudent(m)), pearson = unname(residuals(m, type = "pearson")),
       scaled = unname(residuals(m, scaled = TRUE)))
}
out <- list(
  sleepstudy_slope = one(Reaction ~ Days + (Days | Subject), sleepstudy),
  sleepstudy_diag = one(Reaction ~ Days + (Days || Subject), sleepstudy),
  dietox_slope = one(Weight ~ Time + (1 + Time | Pig), dietox),
  penicillin_crossed = one(diameter ~ 1 + (1 | plate) + (1 | sample), penicillin),
  sleepstudy_weighted = one(Reaction ~ Days + (Days | Subject), sleepstudy,
                            weights = 1 + sleepstudy$Days %% 3),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))))
write_json(out, "tests/data/lme4_influence.json", digits = NA, auto_unbox = TRUE)
