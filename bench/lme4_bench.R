# lme4 side of `python -m bench` (driven by bench/run_r.py).
#
# A session that reads one JSON command per line on stdin and answers one JSON
# line on stdout, so that Python can alternate tools between repetitions while
# R start-up, package loading, reading the data and the warm-up fit stay
# outside the clock:
#   {"cmd": "load", "id", "csv", "factor", "formula", "warmup"}  -> {"ok": true}
#   {"cmd": "fit"}    one lmer() inside system.time()  -> {"seconds", "llf", "converged", "messages"}
#   {"cmd": "check"}  untimed refit with bobyqa (agreement check only) -> {"llf", "converged"}
#   {"cmd": "quit"}
# All fits are REML with lme4's default control unless stated.

if (!suppressMessages(requireNamespace("jsonlite", quietly = TRUE) &&
                      requireNamespace("lme4", quietly = TRUE))) {
  cat('{"error": "the R packages lme4 and jsonlite are required (bench/install_r.sh)"}\n')
  quit(status = 0)
}
suppressMessages(library(lme4))

reply <- function(x) {
  cat(jsonlite::toJSON(x, auto_unbox = TRUE, digits = NA, null = "null"), "\n", sep = "")
  flush(stdout())
}

read_data <- function(csv, factor_col) {
  d <- if (requireNamespace("data.table", quietly = TRUE)) {
    as.data.frame(data.table::fread(csv))
  } else {
    read.csv(csv)
  }
  d[[factor_col]] <- factor(d[[factor_col]])
  d
}

# One fit; warnings and messages are recorded, not printed.
fit_once <- function(st, control = lmerControl()) {
  msgs <- character()
  record <- function(cond) msgs <<- c(msgs, conditionMessage(cond))
  m <- NULL
  secs <- system.time(
    m <- withCallingHandlers(
      lmer(st$formula, data = st$data, REML = TRUE, control = control),
      warning = function(w) { record(w); invokeRestart("muffleWarning") },
      message = function(w) { record(w); invokeRestart("muffleMessage") }
    )
  )[["elapsed"]]
  msgs <- unique(trimws(c(msgs, m@optinfo$conv$lme4$messages)))
  # a singular (boundary) fit is an answer, not a convergence failure
  failures <- msgs[!grepl("singular", msgs)]
  list(seconds = secs, llf = as.numeric(logLik(m)), converged = length(failures) == 0,
       messages = as.list(msgs))
}

con <- file("stdin")
open(con)
state <- NULL
reply(list(ready = TRUE, r_version = paste(R.version$major, R.version$minor, sep = "."),
           lme4_version = as.character(packageVersion("lme4"))))
repeat {
  line <- readLines(con, n = 1)
  if (length(line) == 0) break
  cmd <- jsonlite::fromJSON(line)
  if (cmd$cmd == "quit") break
  res <- tryCatch(switch(cmd$cmd,
    load = {
      state <- NULL
      gc()
      state <- list(id = cmd$id, data = read_data(cmd$csv, cmd$factor),
                    formula = as.formula(cmd$formula))
      if (isTRUE(cmd$warmup)) fit_once(state)
      list(ok = TRUE, nobs = nrow(state$data))
    },
    fit = fit_once(state),
    check = fit_once(state, lmerControl(optimizer = "bobyqa"))[c("llf", "converged")],
    list(error = paste("unknown command", cmd$cmd))
  ), error = function(e) list(error = conditionMessage(e)))
  reply(res)
}
