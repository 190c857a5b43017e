# pbkrtest's PBmodcomp references for tests/test_pb_test.py: parametric-bootstrap
# likelihood-ratio tests with 2,000 samples (both models refitted by ML, responses
# simulated from the small model), a fixed-effects term (dietox's Evit) and a variance
# component (Penicillin's sample). Run from the repository root:
#   Rscript tests/data/pbkrtest_pbmodcomp_ref.R
# Writes tests/data/pbkrtest_pbmodcomp.json (a few minutes).
suppressPackageStartupMessages({library(lme4); library(pbkrtest); library(jsonlite)})
dietox <- read.csv("lmm/datasets/dietox.csv"); dietox$Evit <- factor(dietox$Evit)
pen <- read.csv("tests/data/penicillin.csv"); pen$plate <- factor(pen$plate)
pen$sample <- factor(pen$sample)
run <- function(large, small, nsim) {
  seconds <- system.time(pb <- PBmodcomp(large, small, nsim = nsim, seed = 20261202))[["elapsed"]]
  t <- pb$test
  list(large = deparse(formula(large)), small = deparse(formula(small)), nsim = nsim,
       stat = t["LRT", "stat"], df = t["LRT", "df"], p_chisq = t["LRT", "p.value"],
       p_pb = t["PBtest", "p.value"], npos = unname(pb$samples["npos"]),
       n_extreme = pb$n.extreme, seconds = seconds)
}
out <- list(
  dietox_evit = run(lmer(Weight ~ Time + Evit + (1 | Pig), dietox),
                    lmer(Weight ~ Time + (1 | Pig), dietox), 2000),
  penicillin_sample = run(lmer(diameter ~ 1 + (1 | plate) + (1 | sample), pen),
                          lmer(diameter ~ 1 + (1 | plate), pen), 2000),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  pbkrtest = as.character(packageVersion("pbkrtest"))))
write_json(out, "tests/data/pbkrtest_pbmodcomp.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
