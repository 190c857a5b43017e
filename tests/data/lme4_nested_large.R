# lme4 reference fits of y ~ x + (1 | school/class) at 2,000 and 20,000 schools
# (10^5 and 10^6 rows; issue 21); writes JSON.
# usage, from the repository root:
#   python -c "from bench.large_factors import nested_schools as f; \
#     [f(s).to_csv(f'/tmp/nested_{s}.csv', index=False) for s in (2000, 20000)]"
#   Rscript tests/data/lme4_nested_large.R /tmp tests/data/lme4_nested_large.json
# The data come from bench/large_factors.py's generator (numpy's default_rng, seed 2026);
# sum_y lets the test see that it regenerates the same rows.  Each size is fitted
# with lme4's default optimizer and with bobyqa; the best log-likelihood is kept.
suppressMessages({library(lme4); library(jsonlite)})
args <- commandArgs(TRUE)
out <- list()
for (size in c(2000, 20000)) {
  d <- read.csv(file.path(args[1], sprintf("nested_%d.csv", size)))
  d$school <- factor(d$school)
  d$class <- factor(d$class)
  fits <- list()
  seconds <- list()
  for (opt in c("nloptwrap", "bobyqa")) {
    seconds[[opt]] <- system.time(
      fits[[opt]] <- lmer(y ~ x + (1 | school/class), data = d,
                          control = lmerControl(optimizer = opt)))[["elapsed"]]
  }
  ll <- sapply(fits, function(m) as.numeric(logLik(m)))
  m <- fits[[which.max(ll)]]
  out[[sprintf("schools_%d", size)]] <- list(
    nobs = nrow(d), sum_y = sum(d$y), loglik = max(ll), loglik_by_optimizer = as.list(ll),
    seconds_by_optimizer = seconds, theta = unname(getME(m, "theta")),
    theta_names = names(getME(m, "theta")), fixef = unname(fixef(m)),
    fixef_names = names(fixef(m)), se = unname(sqrt(diag(as.matrix(vcov(m))))),
    sigma = sigma(m),
    versions = list(r = paste(R.version$major, R.version$minor, sep = "."),
                    lme4 = as.character(packageVersion("lme4"))))
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), args[2])
