"""Run `pgr` as a user would: a real subprocess, real exit code and output."""

import subprocess
import sys


def pgr(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "pg_robotics.cli", *args], capture_output=True, text=True,
                          timeout=timeout)
