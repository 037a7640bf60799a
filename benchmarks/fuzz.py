"""Run the fuzz targets of tests/test_fuzz.py long: `python benchmarks/fuzz.py [--examples 2000]`.

Prints how many cases each target ran; any crash other than the documented errors fails with its example.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=2000, help="examples per target")
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, HYPOTHESIS_PROFILE="fuzz", FUZZ_EXAMPLES=str(args.examples))
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(root / "tests" / "test_fuzz.py"),
        "-q",
        "--hypothesis-show-statistics",
        "-p",
        "no:randomly",
    ]
    sys.exit(subprocess.call(command, env=env, cwd=root))
