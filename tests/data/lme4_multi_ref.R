# lme4 reference fits for models with SEVERAL grouping factors (nested,
# crossed, interaction groupings, vector terms mixed with scalar ones); issue 11.
# usage: Rscript tests/data/lme4_multi_ref.R tests/data tests/data/lme4_multi.json [reps]
#
# 1. Writes the data sets to <datadir>/<name>.csv (factors as strings, no row
#    names): lme4's Penicillin, Pastes and cake, and two simulations
#    (multi_crossed_sim: set.seed(1); multi_nested_sim: set.seed(2)).  The
#    simulated numbers are rounded to 4 decimals before writing.
# 2. Reads every CSV back (the fits use exactly what is on disk).  The columns
#    listed in a case's "factors" are read as character and made unordered
#    factors with the default (alphabetical) level order and treatment
#    contrasts, as pandas/patsy do.  NB: in lme4's own `cake` the column
#    `temperature` is an ORDERED factor (polynomial contrasts); here it is an
#    unordered factor, so the fixed effects are treatment contrasts against
#    "175" and the REML criterion is that of the treatment parameterisation.
#    Numeric-looking factor columns (cake: replicate, temperature) must be read
#    as strings on the Python side too.
# 3. Fits every case by REML and by ML with the default optimizer (nloptwrap)
#    and with bobyqa, Nelder_Mead and nlminbwrap, and keeps the highest
#    log-likelihood as "best" (lme4's default can stop short).
#
# Per case (keyed "<case>_reml" / "<case>_ml"): id, data (CSV name without
# .csv), formula, reml, factors, nobs, ngrps, default, best, best_optimizer,
# loglik_by_optimizer, time_median_s / time_min_s (default fit, `reps` runs),
# lme4_version, note.  "default" and "best" hold: fixef, se, vcov, sigma2,
# loglik, criterion (REMLcrit for REML, deviance for ML), aic, bic, theta,
# singular, varcorr (as.data.frame(VarCorr(m)) by columns: grp, var1, var2
# (null for a variance), vcov, sdcor; residual row last), varcorr_cov (per
# grouping-factor name: names and covariance matrix, as in lme4_seed.json),
# ranef (per factor: group, levels, names, values[level][term]), ranef_df
# (as.data.frame(ranef(m, condVar = TRUE)) by columns: grpvar, term, grp,
# condval, condsd), messages (m@optinfo$conv$lme4$messages) and emitted (the
# warnings/messages lmer signalled while fitting, e.g. the singular-fit note).
#
# lme4 names: (1 | batch/cask) gives the factors "cask:batch" and "batch";
# (1 | batch:cask) gives "batch:cask"; (x || g1) gives the varcorr groups "g1"
# and "g1.1" but one ranef factor "g1" with both columns.  Interaction levels
# are "<level of first>:<level of second>" in the order of the factor name.
#
# None of the other models is singular; sim_nested_slope_singular (a random
# slope also at the class level, which the simulation does not have) is added
# as the singular case.  pastes_wrong_crossed (cask labels a/b/c treated as a
# factor crossed with batch, the classic mistake: the casks are nested in
# batches) is included on purpose as a different, wrong model; see its "note".
suppressMessages({library(lme4); library(jsonlite)})
args <- commandArgs(TRUE)
if (length(args) < 2) stop("usage: Rscript tests/data/lme4_multi_ref.R tests/data tests/data/lme4_multi.json [reps]")
datadir <- args[1]; out <- args[2]
reps <- if (length(args) >= 3) as.integer(args[3]) else 5

## ---- data --------------------------------------------------------------
chr <- function(d) { for (j in names(d)) if (is.factor(d[[j]])) d[[j]] <- as.character(d[[j]]); d }
write_data <- function(d, name) write.csv(chr(d), file.path(datadir, paste0(name, ".csv")), row.names = FALSE, quote = FALSE)

write_data(Penicillin[c("diameter", "plate", "sample")], "penicillin")
write_data(Pastes[c("strength", "batch", "cask", "sample")], "pastes")
write_data(cake[c("angle", "recipe", "temperature", "replicate", "temp")], "cake")

# Partially crossed: g1 (100 levels, 20 rows each), g2 (30 levels, drawn at
# random per row); y = 1 + 0.5 x + b1[g1] + c1[g1] x + b2[g2] + e with
# sd(b1) = 1, sd(c1) = 0.5, cor(b1, c1) = 0.3, sd(b2) = 0.7, sd(e) = 1.
set.seed(1)
n1 <- 100; n2 <- 30; n <- 2000
g1 <- rep(seq_len(n1), each = n / n1)
g2 <- sample.int(n2, n, replace = TRUE)
x <- rnorm(n)
S1 <- matrix(c(1, 0.3 * 0.5, 0.3 * 0.5, 0.25), 2)
B1 <- matrix(rnorm(2 * n1), n1) %*% chol(S1)
b2 <- rnorm(n2, sd = 0.7)
y <- 1 + 0.5 * x + B1[g1, 1] + B1[g1, 2] * x + b2[g2] + rnorm(n)
write_data(data.frame(y = round(y, 4), x = round(x, 4), g1 = sprintf("A%03d", g1),
                      g2 = sprintf("B%02d", g2)), "multi_crossed_sim")

# Nested: 40 schools, 5 classes per school labelled C1..C5 within each school
# (so the class grouping is school:class), 6 pupils per class;
# y = 2 + 0.8 x + u0[school] + u1[school] x + v[school:class] + e with
# sd(u0) = 1, sd(u1) = 0.4, cor(u0, u1) = -0.3, sd(v) = 0.6, sd(e) = 1.
set.seed(2)
ns <- 40; nc <- 5; np <- 6; n <- ns * nc * np
school <- rep(seq_len(ns), each = nc * np)
class <- rep(rep(seq_len(nc), each = np), ns)
x <- rnorm(n)
S <- matrix(c(1, -0.3 * 0.4, -0.3 * 0.4, 0.16), 2)
U <- matrix(rnorm(2 * ns), ns) %*% chol(S)
v <- rnorm(ns * nc, sd = 0.6)
y <- 2 + 0.8 * x + U[school, 1] + U[school, 2] * x + v[(school - 1) * nc + class] + rnorm(n)
write_data(data.frame(y = round(y, 4), x = round(x, 4), school = sprintf("S%02d", school),
                      class = sprintf("C%d", class)), "multi_nested_sim")

## ---- cases -------------------------------------------------------------
cases <- list(
  list(id = "penicillin_crossed", data = "penicillin", factors = c("plate", "sample"),
       formula = "diameter ~ 1 + (1 | plate) + (1 | sample)",
       note = "fully crossed: 24 plates x 6 samples, one observation per cell"),
  list(id = "pastes_nested", data = "pastes", factors = c("batch", "cask", "sample"),
       formula = "strength ~ 1 + (1 | batch/cask)",
       note = "nested shorthand: lme4 expands it to (1 | cask:batch) + (1 | batch)"),
  list(id = "pastes_nested_explicit", data = "pastes", factors = c("batch", "cask", "sample"),
       formula = "strength ~ 1 + (1 | batch) + (1 | batch:cask)",
       note = "the same model as pastes_nested written out; same fit"),
  list(id = "pastes_nested_sample", data = "pastes", factors = c("batch", "cask", "sample"),
       formula = "strength ~ 1 + (1 | batch) + (1 | sample)",
       note = "the same model again, through the column sample (unique labels batch:cask)"),
  list(id = "pastes_wrong_crossed", data = "pastes", factors = c("batch", "cask", "sample"),
       formula = "strength ~ 1 + (1 | batch) + (1 | cask)",
       note = "a DIFFERENT model: cask (3 levels a/b/c) crossed with batch, the classic mistake for nested data; not singular (small cask variance), much lower logLik than the nested model"),
  list(id = "cake_interaction", data = "cake", factors = c("recipe", "temperature", "replicate"),
       formula = "angle ~ recipe * temperature + (1 | recipe:replicate)",
       note = "interaction grouping (45 levels); temperature is an UNORDERED factor here (treatment contrasts), unlike lme4's cake"),
  list(id = "sim_crossed_corr", data = "multi_crossed_sim", factors = c("g1", "g2"),
       formula = "y ~ x + (1 + x | g1) + (1 | g2)",
       note = "vector term (correlated intercept and slope) with a crossed scalar term"),
  list(id = "sim_crossed_diag", data = "multi_crossed_sim", factors = c("g1", "g2"),
       formula = "y ~ x + (x || g1) + (1 | g2)",
       note = "|| : (1 | g1) + (0 + x | g1) + (1 | g2)"),
  list(id = "sim_nested_slope", data = "multi_nested_sim", factors = c("school", "class"),
       formula = "y ~ x + (1 + x | school) + (1 | school:class)",
       note = "nested with a random slope at the outer level; class labels repeat across schools"),
  list(id = "sim_nested_slope_singular", data = "multi_nested_sim", factors = c("school", "class"),
       formula = "y ~ x + (1 + x | school) + (1 + x | school:class)",
       note = "SINGULAR on purpose: the simulation has no class-level slope; lme4 ends on the boundary (class-level correlation -1, tiny slope sd)")
)

## ---- fitting -----------------------------------------------------------
cols <- function(df) { df <- as.data.frame(df); for (j in names(df)) if (is.factor(df[[j]])) df[[j]] <- as.character(df[[j]]); as.list(df) }
summ <- function(m, reml, emitted) {
  vc <- VarCorr(m)
  vcc <- lapply(names(vc), function(g) { x <- vc[[g]]; list(group = g, names = I(colnames(x)), cov = unname(as.matrix(x))) })
  re <- ranef(m, condVar = TRUE)
  rel <- lapply(names(re), function(g) list(group = g, levels = I(rownames(re[[g]])), names = I(colnames(re[[g]])),
                                          values = unname(as.matrix(re[[g]]))))
  fe <- fixef(m)
  list(fixef = as.list(fe),
       se = as.list(setNames(sqrt(diag(as.matrix(vcov(m)))), names(fe))),
       vcov = unname(as.matrix(vcov(m))),
       sigma2 = sigma(m)^2, loglik = as.numeric(logLik(m)),
       criterion = if (reml) as.numeric(REMLcrit(m)) else as.numeric(deviance(m)),
       aic = AIC(m), bic = BIC(m), theta = I(unname(getME(m, "theta"))),
       theta_names = I(names(getME(m, "theta"))),
       singular = isSingular(m),
       varcorr = cols(as.data.frame(vc)), varcorr_cov = vcc,
       ranef = rel, ranef_df = cols(as.data.frame(re)),
       messages = I(as.character(unlist(m@optinfo$conv$lme4$messages))),
       emitted = I(unique(as.character(emitted))))
}
res <- list()
for (cs in cases) {
  cc <- setNames(rep("character", length(cs$factors)), cs$factors)
  d <- read.csv(file.path(datadir, paste0(cs$data, ".csv")), colClasses = cc)
  for (f in cs$factors) d[[f]] <- factor(d[[f]])
  for (reml in c(TRUE, FALSE)) {
    fit <- function(opt = "nloptwrap") {
      msgs <- character()
      m <- withCallingHandlers(
        lmer(as.formula(cs$formula), data = d, REML = reml, control = lmerControl(optimizer = opt)),
        warning = function(w) { msgs <<- c(msgs, trimws(conditionMessage(w))); invokeRestart("muffleWarning") },
        message = function(w) { msgs <<- c(msgs, trimws(conditionMessage(w))); invokeRestart("muffleMessage") })
      attr(m, "emitted") <- msgs
      m
    }
    default <- fit()
    times <- sapply(seq_len(reps), function(i) system.time(suppressMessages(suppressWarnings(fit())))[["elapsed"]])
    best <- default; best_opt <- "nloptwrap"
    ll <- list(nloptwrap = as.numeric(logLik(default)))
    for (opt in c("bobyqa", "Nelder_Mead", "nlminbwrap")) {
      m <- tryCatch(fit(opt), error = function(e) NULL)
      ll[[opt]] <- if (is.null(m)) NA else as.numeric(logLik(m))
      if (!is.null(m) && as.numeric(logLik(m)) > as.numeric(logLik(best)) + 1e-9) { best <- m; best_opt <- opt }
    }
    id <- paste0(cs$id, if (reml) "_reml" else "_ml")
    res[[id]] <- list(id = id, data = cs$data, formula = cs$formula, reml = reml, factors = I(cs$factors),
      nobs = nobs(default), ngrps = as.list(ngrps(default)),
      default = summ(default, reml, attr(default, "emitted")),
      best = summ(best, reml, attr(best, "emitted")), best_optimizer = best_opt,
      loglik_by_optimizer = ll,
      time_median_s = median(times), time_min_s = min(times),
      lme4_version = as.character(packageVersion("lme4")), note = cs$note)
    cat(sprintf("%-32s best %-11s logLik %.8f  default %.8f  singular %s\n", id, best_opt,
                as.numeric(logLik(best)), as.numeric(logLik(default)), isSingular(best)))
  }
}
write(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"), out)
