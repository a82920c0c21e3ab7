import pytest
import torch

# Two cores: keep torch from spinning threads against MuJoCo's pool.
torch.set_num_threads(1)

from pg_robotics.envs import make

# tests/compat runs in an environment of its own (`make test-compat`: the oldest supported MuJoCo, gymnasium-robotics)
collect_ignore = ["compat"]

STILL = {"randomization": {"enabled": False}, "commands": {"standing_fraction": 1.0},
         "observations": {"add_noise": False}}


@pytest.fixture
def still_env():
    """Four worlds, no randomization, no noise, zero commands."""
    env = make("quadruped-flat", 4, seed=0, overrides=STILL)
    yield env
    env.close()
