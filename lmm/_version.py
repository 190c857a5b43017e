#!/usr/bin/env python3
"""lmm's version: the one place it is written.

``lmm.__version__`` imports it, and meson.build runs this file (``project(version: ...)``)
so the built distribution carries the same string. Bump it here and nowhere else.
"""

__version__ = "0.1.0"

if __name__ == "__main__":
    print(__version__)
