#!/usr/bin/env bash
# Install R with lme4 and jsonlite (and data.table, optional: faster CSV reads)
# for the lme4 column of `python -m bench`.
#
# Debian/Ubuntu: the distribution's packages (no compilation, a few minutes).
# Elsewhere: install R yourself (https://cloud.r-project.org); this script then
# installs the R packages from CRAN.  Without R the benchmark skips lme4.
set -euo pipefail

have_packages() {
  Rscript -e 'ok <- sapply(c("lme4", "jsonlite"), requireNamespace, quietly = TRUE); quit(status = as.integer(!all(ok)))' \
    >/dev/null 2>&1
}

if command -v Rscript >/dev/null 2>&1 && have_packages; then
  echo "R with lme4 and jsonlite is already installed"
  exit 0
fi

if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends \
    r-base-core r-cran-lme4 r-cran-jsonlite r-cran-data.table
fi

if ! command -v Rscript >/dev/null 2>&1; then
  echo "Rscript not found: install R (https://cloud.r-project.org), then re-run this script" >&2
  exit 1
fi
if ! have_packages; then
  Rscript -e 'install.packages(c("lme4", "jsonlite"), repos = "https://cloud.r-project.org")'
fi
Rscript -e 'cat("R", R.version$major, R.version$minor, "lme4", as.character(packageVersion("lme4")), "\n")'
