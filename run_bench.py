#!/usr/bin/env python3
"""semseg-bench entry point: `python run_bench.py --help`. All logic lives in bench/."""

import sys

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
