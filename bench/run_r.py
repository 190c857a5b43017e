"""lme4 through a persistent ``Rscript`` session (bench/lme4_bench.R).

The session starts once per benchmark run and keeps one case's data in memory,
so Python can alternate between tools on every repetition while R's start-up,
the CSV read and the warm-up fit are never timed: R itself times only
``lmer(...)`` with ``system.time``.  Data go to R as a CSV in a temporary
directory (full float precision: pandas writes the shortest repr that
round-trips).
"""

import json
import shutil
import subprocess
from pathlib import Path

from .measurement import Measurement

SCRIPT = Path(__file__).with_name("lme4_bench.R")


class Lme4Runner:
    """Times ``lme4::lmer`` on the cases, or reports why it cannot.

    Parameters
    ----------
    workdir : path
        A temporary directory for the CSV files and R's stderr log.
    """

    name = "lme4"

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.available, self.reason, self.version, self.r_version = False, "", None, None
        self._proc = None
        rscript = shutil.which("Rscript")
        if rscript is None:
            self.reason = "Rscript not found on PATH (bench/install_r.sh installs R and lme4)"
            return
        self._log = open(self.workdir / "lme4_stderr.log", "w+")  # noqa: SIM115
        self._proc = subprocess.Popen(
            [rscript, "--vanilla", str(SCRIPT)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1,
        )
        hello = self._read()
        if "error" in hello:
            self.reason = hello["error"]
            self.close()
            return
        self.available = True
        self.version, self.r_version = hello["lme4_version"], hello["r_version"]

    def _read(self):
        line = self._proc.stdout.readline()
        if not line:
            self._log.seek(0)
            tail = self._log.read()[-2000:]
            raise RuntimeError(f"the R session ended unexpectedly; its stderr:\n{tail}")
        return json.loads(line)

    def _call(self, **cmd):
        self._proc.stdin.write(json.dumps(cmd) + "\n")
        self._proc.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(f"lme4 {cmd['cmd']} failed: {answer['error']}")
        return answer

    def prepare(self, case, data, warmup):
        """Write the case's columns to CSV, load them in R, fit once untimed if `warmup`."""
        csv = self.workdir / f"{case.id}.csv"
        data[list(case.columns)].to_csv(csv, index=False)
        self._call(cmd="load", id=case.id, csv=str(csv), factor=case.groups,
                   formula=case.lme4_formula, warmup=bool(warmup))
        csv.unlink()

    def fit(self, case, data):
        """One timed ``lmer`` fit (lme4's default optimizer), timed inside R."""
        r = self._call(cmd="fit")
        return Measurement(float(r["seconds"]), float(r["llf"]), bool(r["converged"]),
                           messages=list(r["messages"]))

    def check_llf(self):
        """The llf of an untimed refit with bobyqa (for the agreement check only)."""
        r = self._call(cmd="check")
        return float(r["llf"]), bool(r["converged"])

    def profile(self, case, data):
        """lme4's profile() is a different computation (all parameters): not run."""
        return Measurement(None, None, status="not run")

    def close(self):
        """End the R session (it was started by this runner)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            try:
                self._proc.stdin.write('{"cmd": "quit"}\n')
                self._proc.stdin.close()
                self._proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        self._log.close()
        self._proc = None
