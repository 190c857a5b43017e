"""Write tests/data/guard_baselines.json: the call counts and criterion evaluation
counts that tests/test_guards.py holds the code to (see tests/guard_cases.py).

Run it only on purpose, when a change is meant to alter them, and commit the
file in the same commit as the change, saying why in the message:

    python tools/update_guard_baselines.py
"""

import json
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from guard_cases import call_counts, evaluation_counts  # noqa: E402

import lmm  # noqa: E402


def main():
    dietox = lmm.datasets.get_rdataset("dietox", "geepack").data
    baselines = {"calls": call_counts(dietox), "evaluations": evaluation_counts()}
    path = TESTS / "data" / "guard_baselines.json"
    path.write_text(json.dumps(baselines, indent=1, sort_keys=True) + "\n")
    print(json.dumps(baselines["calls"]), f"{len(baselines['evaluations'])} evaluation counts")


if __name__ == "__main__":
    main()
