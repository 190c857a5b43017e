"""What one timed run records, and the statistics over runs."""

import math
import statistics
from dataclasses import dataclass, field


@dataclass
class Measurement:
    """One timed run of one tool on one case.

    `status` is "ok", "not implemented" or "error: ...".  For a profile, `llf`
    is the highest log-likelihood along it.
    """

    seconds: float | None
    llf: float | None
    converged: bool | None = None
    status: str = "ok"
    messages: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)


class Unavailable:
    """A tool that cannot run (not installed, or switched off), with the reason."""

    available = False
    version = None

    def __init__(self, name, reason):
        self.name, self.reason = name, reason

    def close(self):
        """Nothing to release."""


def median(values):
    """Median of the non-missing values, or None."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def growth_exponent(n1, t1, n2, t2):
    """k in time ~ n^k between two sizes (1 = linear), or None."""
    if not (t1 and t2) or n1 == n2:
        return None
    return math.log(t2 / t1) / math.log(n2 / n1)
