"""``python -m lmm``: print the version and environment; ``--example`` runs the seed fit."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lmm", description=__doc__)
    parser.add_argument("--version", action="store_true", help="print versions and exit")
    parser.add_argument("--example", action="store_true",
                        help="fit the dietox random-slope model and print its summary")
    args = parser.parse_args(argv)
    import numpy
    import scipy

    import lmm

    if args.example:
        data = lmm.datasets.get_rdataset("dietox", "geepack").data
        md = lmm.mixedlm("Weight ~ Time", data, groups=data["Pig"], re_formula="~Time")
        print(md.fit().summary())
        return 0
    core = "loaded" if getattr(lmm, "_core", None) is not None else "missing"
    print(f"lmm {lmm.__version__} (compiled core {core}); numpy {numpy.__version__}, "
          f"scipy {scipy.__version__}, python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
