# lme4's printed random-effects tables of several-factor fits (summary(lmer(...))),
# for tests/test_several_factors_summary.py; writes JSON.
# usage, from the repository root:
#   Rscript tests/data/lme4_summary_ranef_ref.R tests/data tests/data/lme4_summary_ranef.json
suppressMessages({library(lme4); library(jsonlite)})
args <- commandArgs(TRUE)
read <- function(name, factors) {
  d <- read.csv(file.path(args[1], paste0(name, ".csv")),
                colClasses = setNames(rep("character", length(factors)), factors))
  for (f in factors) d[[f]] <- factor(d[[f]])
  d
}
cases <- list(
  pastes = list(data = "pastes", factors = c("batch", "cask"),
                formula = "strength ~ 1 + (1 | batch/cask)"),
  multi_nested_sim = list(data = "multi_nested_sim", factors = c("school", "class"),
                          formula = "y ~ x + (1 + x | school) + (1 | school:class)"),
  penicillin = list(data = "penicillin", factors = c("plate", "sample"),
                    formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"))
out <- list()
for (name in names(cases)) {
  cs <- cases[[name]]
  m <- lmer(as.formula(cs$formula), data = read(cs$data, cs$factors),
            control = lmerControl(optimizer = "bobyqa"))
  text <- capture.output(print(summary(m)))
  start <- grep("^Random effects:", text) + 1
  stop <- grep("^Number of obs:", text)
  out[[name]] <- list(formula = cs$formula, table = text[start:(stop - 1)],
                      groups_line = text[stop])
}
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE), args[2])
