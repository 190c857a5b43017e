# Reference profile-likelihood results from lme4; writes one JSON file.
# For each case it fits with the default optimizer (nloptwrap) and with three
# others, keeps the highest logLik (as lme4_ref.R does), then records
#   - the fit (theta, sigma, fixef, logLik, REML flag, sd/cor parameters),
#   - confint(m, method = "profile", oldNames = FALSE) at levels 0.95 and 0.90,
#   - the profile itself, as.data.frame(profile(m, signames = FALSE)):
#     one row per profile point; .par names the profiled parameter, .zeta is
#     the signed square root of the deviance increase, sign(value - centre) *
#     sqrt(dev(value) - dev(centre)), and the other columns hold all the
#     parameters (sd/cor scale, sigma, fixed effects) at that point
#     (.focal repeats the value of the profiled parameter); the row with
#     .zeta == 0 of each parameter is the centre,
#   - the centre of the profile and its deviance (lme4:::devfun2).
# NOTE: lme4 profiles the *ML* deviance, also for REML fits: devfun2() starts
# with fm <- refitML(fm), so the centre is the ML estimate; see "notes".
# Non-finite numbers (Inf upper bounds, NA profile points) are written as null.
# usage: Rscript tests/data/lme4_profile_ref.R lmm/datasets tests/data/lme4_profile.json
suppressMessages({library(lme4); library(jsonlite)})
args <- commandArgs(TRUE)
datadir <- args[1]; out <- args[2]

cases <- list(
  list(id = "dietox_ri_reml", data = "dietox", factors = "Pig", reml = TRUE,
       formula = "Weight ~ Time + (1 | Pig)"),
  list(id = "dietox_ri_ml", data = "dietox", factors = "Pig", reml = FALSE,
       formula = "Weight ~ Time + (1 | Pig)"),
  list(id = "dietox_rs_reml", data = "dietox", factors = "Pig", reml = TRUE,
       formula = "Weight ~ Time + (1 + Time | Pig)"),
  list(id = "dietox_rs_ml", data = "dietox", factors = "Pig", reml = FALSE,
       formula = "Weight ~ Time + (1 + Time | Pig)"),
  list(id = "dietox_uncorr_reml", data = "dietox", factors = "Pig", reml = TRUE,
       formula = "Weight ~ Time + (1 | Pig) + (0 + Time | Pig)"),
  list(id = "sitka_ri_reml", data = "Sitka", factors = "tree", reml = TRUE,
       formula = "size ~ Time + (1 | tree)"),
  # Time is 152..258 days: badly scaled random slope; the profile of the
  # variance parameters breaks down (see confint_warnings). The best optimizer
  # here is bobyqa, so fitting it with lmerControl(optimizer = "bobyqa") alone
  # gives the same fit and the same profile (checked; not stored twice).
  list(id = "sitka_rs_reml", data = "Sitka", factors = "tree", reml = TRUE,
       formula = "size ~ Time + (1 + Time | tree)")
)

# Evaluate expr, collecting warnings and messages; errors become a string.
capture <- function(expr) {
  w <- character(0)
  val <- withCallingHandlers(
    tryCatch(expr, error = function(e) structure(conditionMessage(e), class = "captured_error")),
    warning = function(c) { w <<- c(w, conditionMessage(c)); invokeRestart("muffleWarning") },
    message = function(c) invokeRestart("muffleMessage"))
  list(value = val, warnings = unique(w),
       error = if (inherits(val, "captured_error")) unclass(val) else NA_character_)
}

# Confidence-interval matrix as a list of rows, keeping row order. A
# non-finite endpoint is written as null, and lower_nonfinite/upper_nonfinite
# say which: "NA" (lme4 gave up: bad or non-monotonic profile) or "Inf".
nonfinite <- function(x) if (is.finite(x)) NA_character_ else if (is.na(x)) "NA" else as.character(x)
ci_rows <- function(ci) lapply(seq_len(nrow(ci)), function(i)
  list(name = rownames(ci)[i], lower = unname(ci[i, 1]), upper = unname(ci[i, 2]),
       lower_nonfinite = nonfinite(ci[i, 1]), upper_nonfinite = nonfinite(ci[i, 2])))

fit_info <- function(m) {
  sdcor <- lme4:::Cv_to_Sv(getME(m, "theta"), n = lengths(m@cnms), s = sigma(m))
  names(sdcor) <- lme4:::profnames(m, signames = FALSE)
  list(reml = isREML(m), theta = I(unname(getME(m, "theta"))), sigma = sigma(m),
       fixef = as.list(fixef(m)), loglik = as.numeric(logLik(m)),
       npar = attr(logLik(m), "df"), sdcor = as.list(sdcor),
       singular = isSingular(m), messages = I(as.character(unlist(m@optinfo$conv$lme4$messages))))
}

res <- list()
for (cs in cases) {
  cat(cs$id, "\n")
  d <- read.csv(file.path(datadir, paste0(cs$data, ".csv")))
  for (f in cs$factors) d[[f]] <- factor(d[[f]])
  fit <- function(opt) lmer(as.formula(cs$formula), data = d, REML = cs$reml,
                            control = lmerControl(optimizer = opt))
  opts <- if (is.null(cs$optimizers)) c("nloptwrap", "bobyqa", "Nelder_Mead", "nlminbwrap") else cs$optimizers
  best <- NULL; best_opt <- NA; fits <- list()
  for (opt in opts) {
    m <- tryCatch(suppressMessages(suppressWarnings(fit(opt))), error = function(e) NULL)
    fits[[opt]] <- if (is.null(m)) NA else as.numeric(logLik(m))
    if (!is.null(m) && (is.null(best) || as.numeric(logLik(m)) > as.numeric(logLik(best)) + 1e-9)) {
      best <- m; best_opt <- opt
    }
  }
  r <- list(id = cs$id, data = cs$data, formula = cs$formula, reml = cs$reml,
            nobs = nobs(best), best_optimizer = best_opt, loglik_by_optimizer = fits,
            fit = fit_info(best))

  # Centre of the profile: devfun2() refits REML fits with ML first.
  dd <- lme4:::devfun2(best, useSc = TRUE, signames = FALSE)
  r$profile_centre <- as.list(attr(dd, "optimum"))
  r$profile_base_deviance <- attr(dd, "basedev")
  if (cs$reml) r$ml_refit <- fit_info(refitML(best))

  # confint as the user calls it (it profiles internally).
  t0 <- proc.time()[["elapsed"]]
  ci95 <- capture(confint(best, method = "profile", level = 0.95, oldNames = FALSE))
  r$confint_time_s <- proc.time()[["elapsed"]] - t0
  ci90 <- capture(confint(best, method = "profile", level = 0.90, oldNames = FALSE))
  r$confint_95 <- if (is.na(ci95$error)) ci_rows(ci95$value)
  r$confint_90 <- if (is.na(ci90$error)) ci_rows(ci90$value)
  r$confint_warnings <- unique(c(ci95$warnings, ci90$warnings))
  r$confint_error <- ci95$error

  # The profile itself, column-wise (.par as character).
  pr <- capture(profile(best, signames = FALSE))
  if (is.na(pr$error)) {
    pdf <- as.data.frame(pr$value)
    pdf$.par <- as.character(pdf$.par)
    r$profile_columns <- names(pdf)
    r$profile <- as.list(pdf)
    # Lower bounds of the profiled variance parameters (0 for sd, -1 for cor).
    lw <- attr(pr$value, "lower")
    r$profile_lower_bounds <- as.list(setNames(lw, names(attr(pr$value, "backward"))[seq_along(lw)]))
    # Same intervals from the stored profile object (consistency check).
    chk <- confint(pr$value, level = 0.95)
    r$confint_from_profile_maxdiff <- if (is.na(ci95$error))
      suppressWarnings(max(abs(chk - ci95$value), na.rm = TRUE))
  }
  r$profile_warnings <- pr$warnings
  r$profile_error <- pr$error

  # If some profile points are NA, profile each variance parameter in its own
  # call too: in one call all parameters share one deviance function, and
  # once it has returned NaN its internal state makes every later evaluation
  # NaN as well, so the parameters profiled after the failure are lost.
  if (is.na(pr$error) && any(is.na(pdf$.zeta))) {
    nvp <- length(lme4:::profnames(best, signames = FALSE))
    sep <- lapply(seq_len(nvp), function(i) capture(profile(best, which = i, signames = FALSE)))
    ci_sep <- function(level) {
      cc <- lapply(sep, function(s) capture(confint(s$value, level = level)))
      list(ci = do.call(rbind, lapply(cc, `[[`, "value")), warnings = unlist(lapply(cc, `[[`, "warnings")))
    }
    c95 <- ci_sep(0.95); c90 <- ci_sep(0.90)
    r$confint_95_separate <- ci_rows(c95$ci)
    r$confint_90_separate <- ci_rows(c90$ci)
    r$confint_separate_warnings <- unique(c(c95$warnings, c90$warnings))
    psep <- do.call(rbind, lapply(sep, function(s) {
      x <- as.data.frame(s$value); x$.par <- as.character(x$.par); x }))
    r$profile_separate <- as.list(psep)
    r$profile_separate_warnings <- unique(unlist(lapply(sep, `[[`, "warnings")))
  }
  r$lme4_version <- as.character(packageVersion("lme4"))
  res[[cs$id]] <- r
}

# Evidence for how REML fits are profiled: the REML and ML fits of the same
# model give the same profile intervals.
same_ci <- function(a, b) {
  x <- sapply(res[[a]]$confint_95, function(z) c(z$lower, z$upper))
  y <- sapply(res[[b]]$confint_95, function(z) c(z$lower, z$upper))
  max(abs(x - y), na.rm = TRUE)
}
res$notes <- list(
  profile_reml = paste(
    "lme4 1.1-31 profiles the ML deviance for every lmer fit, REML or not.",
    "profile.merMod calls devfun2(fitted, ...), whose first line is",
    "'fm <- refitML(fm)'; basedev is -2*logLik of that ML refit and the",
    "profile centre (zeta = 0) is the ML estimate (profile_centre, ml_refit).",
    "Variance parameters (sd_/cor_/sigma) are profiled with the ML deviance",
    "function of devfun2, minimising over the other variance parameters with",
    "beta profiled out; fixed effects are profiled with mkdevfun(rho, 0L)",
    "(0L = ML) after moving the column into the offset, and sigma set to its",
    "ML value sqrt(pwrss/n). So confint(method = 'profile') on a REML fit",
    "returns the same intervals as on the ML fit, and they are centred on the",
    "ML estimates, not on the REML estimates. refitML uses bobyqa started at",
    "the REML theta."),
  confint_interpolation = paste(
    "confint.thpr interpolates: backSpline(interpSpline(.zeta ~ par)) evaluated",
    "at qnorm(c(a, 1 - a)), a = (1 - level)/2; an endpoint the profile does",
    "not reach is set to the parameter bound (0 for sd, -1/1 for cor,",
    "Inf for an upper sd bound -> null in this JSON)."),
  zeta = "zeta = sign(par - centre) * sqrt(deviance(par) - base deviance); deviance increase = zeta^2.",
  max_abs_diff_confint95_reml_vs_ml_ri = same_ci("dietox_ri_reml", "dietox_ri_ml"),
  max_abs_diff_confint95_reml_vs_ml_rs = same_ci("dietox_rs_reml", "dietox_rs_ml"),
  sitka_rs = paste(
    "sitka_rs_reml: the default optimizer (nloptwrap) stops far short",
    "(see loglik_by_optimizer); the best fit (bobyqa) carries the lme4 message",
    "'Model is nearly unidentifiable: very large eigenvalue - Rescale variables?'.",
    "profile() does not error, but it breaks down: going down in",
    "sd_(Intercept) (to about 0.643, zeta about -1.6) the inner bobyqa moves to",
    "sd_Time about 0.02, sigma about 0.10 where the ML deviance is NaN; from",
    "then on every evaluation of the shared deviance function is NaN ('NAs",
    "detected in profiling'), so the rest of that profile and the whole",
    "profiles of the correlation, sd_Time and sigma (done after it in the same",
    "call) are NA. confint then gives NA for both ends of those three rows, and",
    "the sd_(Intercept) lower end, not reached, is set to its bound 0 (an",
    "artefact). Profiling each of those parameters in its own call",
    "(profile(m, which = i)) works: see confint_95_separate,",
    "confint_90_separate and profile_separate (the sd_(Intercept) lower end",
    "still fails there). The fixed-effect intervals are fine (they use a",
    "fresh deviance function). Fitting with lmerControl(optimizer = 'bobyqa')",
    "gives the identical fit and profile.")
)
write(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"), out)
