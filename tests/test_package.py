"""Layout contract and the `pgr` command line (real subprocesses, real exit codes)."""

import functools
import json
import subprocess
import sys

import pytest

from pgr_cli import pgr

pgr = functools.partial(pgr, timeout=120)


@pytest.mark.parametrize("module", ["pg_robotics", "pg_robotics.deploy", "pg_robotics.envs", "pg_robotics.envs.config"])
def test_light_imports_do_not_import_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules, 'mujoco' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_envs_and_deploy_map_to_their_folders():
    import pg_robotics.deploy
    import pg_robotics.envs

    assert pg_robotics.envs.__file__.replace("\\", "/").endswith("envs/__init__.py")
    assert pg_robotics.deploy.__file__.replace("\\", "/").endswith("deploy/__init__.py")


def test_list_table_and_json():
    table = pgr("list")
    assert table.returncode == 0
    assert "quadruped-flat" in table.stdout
    assert "ppo" in table.stdout and "ddpg_her" in table.stdout  # the algorithm registry's names
    listing = json.loads(pgr("list", "--json").stdout)
    assert {"name": "quadruped-flat", "robot": "go1", "kind": "locomotion"}.items() <= listing["tasks"][0].items()
    names = [a["name"] for a in listing["algorithms"]]
    assert names == ["ppo", "ppo_kl", "a2c", "reinforce", "npg", "trpo", "sac", "svg0", "td3", "dqn", "cem", "es",
                     "ddpg_her", "sac_her", "td3_her"]
    runners = {a["name"]: (a["runner"], a["needs"]) for a in listing["algorithms"]}
    assert runners["ddpg_her"] == ("off_policy", "goal") and runners["trpo"] == ("on_policy", "vector")
    assert runners["sac"] == ("replay", "vector") and runners["es"] == ("population", "vector")
    assert all(name in table.stdout for name in names)


@pytest.mark.parametrize("args, message", [
    (["bench", "sim", "--task", "quadruped-hills"], "unknown task 'quadruped-hills'"),
    (["bench", "sim", "--num-envs", "-4"], "--num-envs"),
    (["bench", "sim", "--seconds", "0"], "--seconds"),
    (["bench", "sim", "--num-envs", "2", "--seconds", "0.1", "--set", "task.rewards.trackin_lin_vel=1"],
     "task.rewards.trackin_lin_vel: unknown key"),
    (["bench", "sim", "--num-envs", "2", "--seconds", "0.1", "--set", "task.sim.decimation=2.5"],
     "task.sim.decimation: expected an integer"),
    (["bench", "sim", "--num-envs", "2", "--seconds", "0.1", "--set", "task.robot.kp={XX_hip_joint: 20}"],
     "'XX_hip_joint' matches no joint"),
    (["bench", "sim", "--set", "runner.num_envs=4"], "--set runner: the simulation bench takes task.* keys only"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_cli_input_exits_2_with_a_clear_message(args, message):
    result = pgr(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_sim_json_reports_every_figure():
    result = pgr("bench", "sim", "--task", "quadruped-flat", "--backend", "mujoco", "--num-envs", "8",
                 "--seconds", "0.5", "--json")
    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout)
    for key in ("env_steps_per_s", "physics_steps_per_s", "num_envs", "decimation", "threads", "model_path",
                "peak_rss_mb", "ceiling_physics_steps_per_s"):
        assert key in r
    assert r["num_envs"] == 8 and r["decimation"] == 4 and r["threads"] >= 1
    assert r["model_path"].endswith("go1.xml") and r["model_path"].startswith("/")
    assert r["env_steps_per_s"] > 0 and r["ceiling_physics_steps_per_s"] > 0
    assert r["physics_steps_per_s"] == pytest.approx(r["env_steps_per_s"] * 4, rel=1e-3)
    assert r["peak_rss_mb"] > 10


def test_bench_sim_several_counts_prints_one_object_each():
    result = pgr("bench", "sim", "--num-envs", "2,3", "--seconds", "0.2", "--json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["num_envs"] for line in result.stdout.splitlines()] == [2, 3]


def test_bench_gym_reference_point():
    result = pgr("bench", "gym", "--env", "Ant-v5", "--num-envs", "2", "--seconds", "0.3", "--json")
    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout)
    assert r["env"] == "Ant-v5" and r["num_envs"] == 2 and r["frame_skip"] == 5 and r["env_steps_per_s"] > 0
