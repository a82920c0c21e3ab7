"""Run `pgr` as a user would: a real subprocess, real exit code and output."""

import subprocess
import sys
import time


def pgr(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "pg_robotics.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def signal_training(args, run_dir, signum, after_s, timeout=120):
    """`pgr train ARGS` in a subprocess; `after_s` seconds after its first TensorBoard file appears in `run_dir`,
    send `signum`. Returns (exit code, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "pg_robotics.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not list(run_dir.glob("events.out.tfevents.*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(after_s)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err
