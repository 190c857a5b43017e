# lme4 references for tests/test_predict_lme4.py: predict() on new data with every
# random-effect term (re.form = NULL), none (re.form = NA), some terms, and new levels
# (allow.new.levels = TRUE); one grouping factor with a random slope (sleepstudy) and a
# crossed model (Penicillin). Run from the repository root:
#   Rscript tests/data/lme4_predict_ref.R
# Writes tests/data/lme4_predict.json (the new data's rows are written into it).
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))
sleep <- read.csv("tests/data/sleepstudy.csv")
sleep$Subject <- factor(sleep$Subject)
pen <- read.csv("tests/data/penicillin.csv", colClasses = c("numeric", "character", "character"))
pen$plate <- factor(pen$plate); pen$sample <- factor(pen$sample)

m1 <- lmer(Reaction ~ Days + (Days | Subject), sleep, control = ctrl)
new1 <- data.frame(Subject = c("308", "308", "335", "372", "999", "999"),
                   Days = c(0, 4.5, 9, 2, 0, 7))
m2 <- lmer(diameter ~ 1 + (1 | plate) + (1 | sample), pen, control = ctrl)
new2 <- data.frame(plate = c("a", "k", "x", "zz", "b", "zz"),
                   sample = c("A", "F", "C", "B", "Z", "Z"))
known1 <- new1$Subject != "999"
known2 <- new2$plate != "zz" & new2$sample != "Z"
out <- list(
  sleepstudy = list(
    formula = "Reaction ~ Days + (Days | Subject)", loglik = as.numeric(logLik(m1)),
    newdata = new1,
    all = unname(predict(m1, newdata = new1, allow.new.levels = TRUE)),
    none = unname(predict(m1, newdata = new1, re.form = NA)),
    known_rows = which(known1) - 1,
    all_known = unname(predict(m1, newdata = new1[known1, ])),
    fitted_head = unname(head(fitted(m1), 5))),
  penicillin = list(
    formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", loglik = as.numeric(logLik(m2)),
    newdata = new2,
    all = unname(predict(m2, newdata = new2, allow.new.levels = TRUE)),
    none = unname(predict(m2, newdata = new2, re.form = NA)),
    plate_only = unname(predict(m2, newdata = new2, re.form = ~(1 | plate),
                                allow.new.levels = TRUE)),
    sample_only = unname(predict(m2, newdata = new2, re.form = ~(1 | sample),
                                 allow.new.levels = TRUE)),
    known_rows = which(known2) - 1,
    all_known = unname(predict(m2, newdata = new2[known2, ])),
    fitted_head = unname(head(fitted(m2), 5))),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
)
write_json(out, "tests/data/lme4_predict.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE, dataframe = "columns")
