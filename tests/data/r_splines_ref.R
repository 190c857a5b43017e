# R's natural and B-spline bases (splines::ns, splines::bs) and an lme4 fit with one,
# for tests/test_splines.py; writes JSON.
# usage, from the repository root:
#   Rscript tests/data/r_splines_ref.R lmm/datasets/sleepstudy.csv tests/data/r_splines.json
suppressMessages({library(splines); library(lme4); library(jsonlite)})
args <- commandArgs(TRUE)
d <- read.csv(args[1])
d$Subject <- factor(d$Subject)
new_x <- c(-1, 0, 2.5, 9, 10.5)
basis <- function(b) list(values = unname(unclass(b)[, , drop = FALSE]),
                          new = unname(predict(b, new_x)),
                          knots = unname(attr(b, "knots")),
                          boundary = unname(attr(b, "Boundary.knots")))
out <- list(
  x = d$Days, new_x = new_x,
  ns_df3 = basis(ns(d$Days, df = 3)),
  ns_knots = basis(ns(d$Days, knots = c(3, 6))),
  ns_df4_intercept = basis(ns(d$Days, df = 4, intercept = TRUE)),
  bs_df4 = basis(bs(d$Days, df = 4)),
  bs_df5_degree2 = basis(bs(d$Days, df = 5, degree = 2)))
m <- lmer(Reaction ~ ns(Days, df = 3) + (1 | Subject), data = d)
out$lmer_ns <- list(formula = "Reaction ~ ns(Days, df = 3) + (1 | Subject)",
                    loglik = as.numeric(logLik(m)), fixef = unname(fixef(m)),
                    fixef_names = names(fixef(m)))
writeLines(toJSON(out, digits = NA, pretty = FALSE, matrix = "rowmajor"), args[2])
