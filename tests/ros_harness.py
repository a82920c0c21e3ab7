"""The fake robot of `pg_robotics_ros.fake_robot` on a ROS domain of each test process's own, so that tests running
in parallel do not hear each other; and the fixtures the ROS test modules share."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pg_robotics_ros.fake_robot import FakeRobot, Sway  # noqa: F401 - re-exported for the tests
from policies import train_and_export


class Harness(FakeRobot):
    def __init__(self, log_dir: Path, **kwargs):
        # xdist workers (gw0, gw1, ...) and processes get different domains
        worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
        super().__init__(log_dir, 150 + 20 * (worker % 4) + os.getpid() % 20, **kwargs)


@pytest.fixture(scope="module")
def policy(tmp_path_factory) -> Path:
    """A briefly trained, exported policy (one per test module)."""
    run = tmp_path_factory.mktemp("ros") / "run"
    train_and_export(run)
    return run / "policy.onnx"


@pytest.fixture
def ros(tmp_path):
    """The fake robot, closed (its nodes stopped) after the test."""
    harness = Harness(tmp_path)
    yield harness
    harness.close()
