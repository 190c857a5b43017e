# Benchmark data with two large crossed grouping factors, and lme4's fits of it.
# usage: Rscript bench/data/crossed_large.R bench/data [--no-insteval] [--no-write] [--reps=3]
#
# crossed_large (set.seed(3)): 60,000 rows, ratings-like and unbalanced.
#   s: 3,000 levels "s0001".."s3000"; d: 1,200 levels "d0001".."d1200".
#   Every level occurs at least once; the remaining rows draw s and d
#   independently with skewed (log-normal, sdlog 0.7) level probabilities, and
#   the two columns are shuffled independently, so (s, d) pairs are random
#   (a pair may repeat).  x ~ N(0, 1);
#   y = 3 + 0.3 x + b_s + b_d + e, b_s ~ N(0, 0.6^2), b_d ~ N(0, 0.4^2), e ~ N(0, 1);
#   x and y rounded to 4 decimals.  Columns y, x, s, d -> crossed_large.csv.gz.
# insteval: lme4's InstEval, columns s, d, y only (s, d as their labels, which
#   are numbers: read them as strings) -> insteval.csv.gz.
#
# Each CSV is read back and the model is fitted by REML exactly on what was
# written:  crossed_large: y ~ x + (1 | s) + (1 | d);  insteval: y ~ 1 + (1 | s) + (1 | d).
# One untimed warm-up fit with the default optimizer (nloptwrap), then `reps`
# timed default fits (system.time around lmer; time_elapsed_s is their median,
# all are in times_elapsed_s) and one timed bobyqa fit; "best" is the higher
# log-likelihood.  The machine's load average before the timed fits is
# recorded: on a shared 2-core machine elapsed > user means contention.  Written to <name>_lme4.json: the summary
# fields of tests/data/lme4_multi.json, except that random effects are given
# only as summary statistics per factor and term (ranef_summary) and there are
# no conditional variances.  --no-write fits the existing .csv.gz files.
suppressMessages({library(lme4); library(jsonlite)})
args <- commandArgs(TRUE)
outdir <- if (length(args) >= 1 && !startsWith(args[1], "--")) args[1] else "bench/data"
do_insteval <- !("--no-insteval" %in% args)
do_write <- !("--no-write" %in% args)
reps <- if (any(startsWith(args, "--reps="))) as.integer(sub("--reps=", "", grep("^--reps=", args, value = TRUE)[1])) else 3
dir.create(outdir, showWarnings = FALSE, recursive = TRUE)

write_gz <- function(d, path) {
  con <- gzfile(path, "w", compression = 9)
  write.csv(d, con, row.names = FALSE, quote = FALSE)
  close(con)
}
read_gz <- function(path, factors) {
  d <- read.csv(gzfile(path), colClasses = setNames(rep("character", length(factors)), factors))
  for (f in factors) d[[f]] <- factor(d[[f]])
  d
}

## ---- data ------------------------------------------------------------------
if (do_write) {
  set.seed(3)
  n <- 60000; ns <- 3000; nd <- 1200
  ws <- exp(rnorm(ns, sd = 0.7)); wd <- exp(rnorm(nd, sd = 0.7))
  s <- sample(c(seq_len(ns), sample.int(ns, n - ns, replace = TRUE, prob = ws)))
  d <- sample(c(seq_len(nd), sample.int(nd, n - nd, replace = TRUE, prob = wd)))
  x <- rnorm(n)
  bs <- rnorm(ns, sd = 0.6); bd <- rnorm(nd, sd = 0.4)
  y <- 3 + 0.3 * x + bs[s] + bd[d] + rnorm(n)
  write_gz(data.frame(y = round(y, 4), x = round(x, 4), s = sprintf("s%04d", s), d = sprintf("d%04d", d)),
           file.path(outdir, "crossed_large.csv.gz"))
  if (do_insteval)
    write_gz(data.frame(s = as.character(InstEval$s), d = as.character(InstEval$d), y = InstEval$y),
             file.path(outdir, "insteval.csv.gz"))
}

## ---- fits ------------------------------------------------------------------
qs <- function(v) { q <- quantile(v, c(0, 0.25, 0.5, 0.75, 1), names = FALSE)
  list(n = length(v), mean = mean(v), sd = sd(v), sumsq = sum(v^2), min = q[1], q25 = q[2],
       median = q[3], q75 = q[4], max = q[5]) }
cols <- function(df) { df <- as.data.frame(df); for (j in names(df)) if (is.factor(df[[j]])) df[[j]] <- as.character(df[[j]]); as.list(df) }
summ <- function(m, reml = TRUE) {
  vc <- VarCorr(m); re <- ranef(m); fe <- fixef(m)
  list(fixef = as.list(fe),
       se = as.list(setNames(sqrt(diag(as.matrix(vcov(m)))), names(fe))),
       vcov = unname(as.matrix(vcov(m))),
       sigma2 = sigma(m)^2, loglik = as.numeric(logLik(m)),
       criterion = if (reml) as.numeric(REMLcrit(m)) else as.numeric(deviance(m)),
       aic = AIC(m), bic = BIC(m), theta = I(unname(getME(m, "theta"))),
       theta_names = I(names(getME(m, "theta"))), singular = isSingular(m),
       varcorr = cols(as.data.frame(vc)),
       ranef_summary = lapply(names(re), function(g) list(group = g, nlevels = nrow(re[[g]]),
         first_levels = I(head(rownames(re[[g]]), 3)),
         terms = lapply(setNames(names(re[[g]]), names(re[[g]])), function(t) c(qs(re[[g]][[t]]),
           list(first_values = I(head(re[[g]][[t]], 3))))))),
       optimizer = m@optinfo$optimizer, feval = m@optinfo$feval,
       messages = I(as.character(unlist(m@optinfo$conv$lme4$messages))))
}
fit_case <- function(name, formula, factors) {
  path <- file.path(outdir, paste0(name, ".csv.gz"))
  dat <- read_gz(path, factors)
  f <- as.formula(formula)
  fit <- function(opt) {
    msgs <- character()
    tm <- system.time(m <- withCallingHandlers(
      lmer(f, data = dat, REML = TRUE, control = lmerControl(optimizer = opt)),
      warning = function(w) { msgs <<- c(msgs, trimws(conditionMessage(w))); invokeRestart("muffleWarning") },
      message = function(w) { msgs <<- c(msgs, trimws(conditionMessage(w))); invokeRestart("muffleMessage") }))
    list(m = m, time = tm, emitted = unique(msgs))
  }
  invisible(fit("nloptwrap"))                       # warm-up, untimed
  gc()
  la <- tryCatch(readLines("/proc/loadavg"), error = function(e) NA_character_)
  fits <- lapply(seq_len(reps), function(i) { r <- fit("nloptwrap"); gc(); r })
  fd <- fits[[1]]
  el <- sapply(fits, function(r) r$time[["elapsed"]]); us <- sapply(fits, function(r) r$time[["user.self"]])
  fb <- fit("bobyqa")
  best <- if (as.numeric(logLik(fb$m)) > as.numeric(logLik(fd$m)) + 1e-9) fb else fd
  res <- list(id = name, data = basename(path), formula = formula, reml = TRUE, factors = I(factors),
    nobs = nobs(fd$m), ngrps = as.list(ngrps(fd$m)),
    default = c(summ(fd$m), list(emitted = I(fd$emitted))),
    best = c(summ(best$m), list(emitted = I(best$emitted))),
    best_optimizer = best$m@optinfo$optimizer,
    loglik_by_optimizer = list(nloptwrap = as.numeric(logLik(fd$m)), bobyqa = as.numeric(logLik(fb$m))),
    time_elapsed_s = median(el), time_min_elapsed_s = min(el), time_user_s = median(us),
    times_elapsed_s = I(el), times_user_s = I(us),
    time_bobyqa_elapsed_s = fb$time[["elapsed"]],
    timing_note = "median elapsed seconds of one lmer() call over the timed repetitions (REML, default control) after one warm-up fit, R process already running and data loaded",
    r_version = paste(R.version$major, R.version$minor, sep = "."),
    lme4_version = as.character(packageVersion("lme4")),
    matrix_version = as.character(packageVersion("Matrix")),
    blas = sessionInfo()$BLAS, ncores = parallel::detectCores(),
    loadavg_before_timed_fit = la)
  write(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"),
        file.path(outdir, paste0(name, "_lme4.json")))
  cat(sprintf("%s: n = %d, logLik %.6f (best %s), default %.2f s (median of %d), bobyqa %.2f s\n", name, nobs(fd$m),
              as.numeric(logLik(best$m)), res$best_optimizer, res$time_elapsed_s, reps, res$time_bobyqa_elapsed_s))
}
fit_case("crossed_large", "y ~ x + (1 | s) + (1 | d)", c("s", "d"))
if (do_insteval) fit_case("insteval", "y ~ 1 + (1 | s) + (1 | d)", c("s", "d"))
