# pbkrtest / lmerTest Kenward-Roger references for tests/test_kenward_roger.py:
# summary(m, ddf = "Kenward-Roger") (lmerTest: the SE from pbkrtest::vcovAdj, the df
# from pbkrtest::Lb_ddf), the adjusted and unadjusted covariances of the fixed effects,
# and KRmodcomp's F test of a contrast matrix. REML fits, lme4's bobyqa optimizer.
# Run from the repository root:
#   Rscript tests/data/pbkrtest_ref.R
# Writes tests/data/pbkrtest.json. Data: tests/data/sleepstudy.csv (lme4),
# lmm/datasets/dietox.csv (geepack), tests/data/penicillin.csv.
suppressPackageStartupMessages({
  library(lme4); library(lmerTest); library(pbkrtest); library(jsonlite)})
sleepstudy <- read.csv("tests/data/sleepstudy.csv")
dietox <- read.csv("lmm/datasets/dietox.csv")
dietox$Evit <- factor(dietox$Evit)
penicillin <- read.csv("tests/data/penicillin.csv")
# an unbalanced sleepstudy (the balanced fits' adjustment is zero or tiny): drop every
# fourth row (rows 1, 5, 9, ...) and days 7-9 of five subjects
unbalanced <- sleepstudy[(seq_len(nrow(sleepstudy)) %% 4 != 1) &
                         !(sleepstudy$Subject %in% c(308, 309, 310, 330, 331) &
                           sleepstudy$Days >= 7), ]
# a crossed fit on the boundary (the slope variance by sample estimated at zero): every
# second row of penicillin, the first 67 of them, with x = 0, 1, 2, 3, 4, 0, 1, ...
boundary <- penicillin[seq(1, nrow(penicillin), by = 2), ][1:67, ]
boundary$x <- (seq_len(nrow(boundary)) - 1) %% 5
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))

fit_case <- function(formula, data, L = NULL) {
  m <- lmerTest::lmer(formula, data = data, REML = TRUE, control = ctrl)
  co <- summary(m, ddf = "Kenward-Roger")$coefficients
  out <- list(
    formula = deparse(formula), reml = TRUE, loglik = as.numeric(logLik(m)),
    names = rownames(co),
    estimate = unname(co[, "Estimate"]), std_error = unname(co[, "Std. Error"]),
    df = unname(co[, "df"]), t = unname(co[, "t value"]), p_value = unname(co[, "Pr(>|t|)"]),
    vcov = unname(as.matrix(vcov(m))),
    vcov_adj = unname(as.matrix(vcovAdj(m))))
  if (!is.null(L)) {
    kr <- KRmodcomp(m, L)
    ft <- kr$test
    ct <- contest(m, L, ddf = "Kenward-Roger")
    out$contrast <- list(L = L, num_df = ft["Ftest", "ndf"], den_df = ft["Ftest", "ddf"],
                         F = ft["Ftest", "stat"], p_value = ft["Ftest", "p.value"],
                         F_scaling = ft["Ftest", "F.scaling"],
                         F_unscaled = ft["FtestU", "stat"],
                         contest_F = ct[["F value"]], contest_den_df = ct[["DenDF"]])
  }
  out
}

cases <- list(
  sleepstudy_slope = fit_case(Reaction ~ Days + (Days | Subject), sleepstudy,
                              L = rbind(c(1, 0), c(0, 1))),
  unbalanced_slope = fit_case(Reaction ~ Days + (Days | Subject), unbalanced,
                              L = rbind(c(1, 0), c(0, 1))),
  sleepstudy_ri = fit_case(Reaction ~ Days + (1 | Subject), sleepstudy),
  sleepstudy_diag = fit_case(Reaction ~ Days + (Days || Subject), sleepstudy),
  dietox_evit = fit_case(Weight ~ Time + Evit + (1 | Pig), dietox,
                         L = rbind(c(0, 0, 1, 0), c(0, 0, 0, 1))),
  dietox_slope = fit_case(Weight ~ Time + (1 + Time | Pig), dietox),
  penicillin_crossed = fit_case(diameter ~ 1 + (1 | plate) + (1 | sample), penicillin),
  boundary_crossed = fit_case(diameter ~ x + (1 | plate) + (1 + x || sample), boundary)
)
cases$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                       lmerTest = as.character(packageVersion("lmerTest")),
                       pbkrtest = as.character(packageVersion("pbkrtest")))
write_json(cases, "tests/data/pbkrtest.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
