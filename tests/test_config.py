"""Config validation: every error names its field."""

import pytest

from pg_robotics.envs import ConfigError, make, task_config
from pg_robotics.envs.config import load_yaml, parse_overrides


def test_defaults_and_overrides_apply():
    cfg = task_config("quadruped-flat", {"sim": {"decimation": 2}, "commands": {"lin_vel_x": [0, 1]}})
    assert cfg.sim.decimation == 2 and cfg.sim.dt == 0.005
    assert cfg.commands.lin_vel_x == (0.0, 1.0)
    assert task_config("quadruped-flat").sim.decimation == 4  # defaults untouched


@pytest.mark.parametrize("overrides, message", [
    ({"rewards": {"trackin_lin_vel": 1.0}}, "task.rewards.trackin_lin_vel: unknown key"),
    ({"simulation": {}}, "task.simulation: unknown key"),
    ({"sim": {"decimation": "four"}}, "task.sim.decimation: expected an integer"),
    ({"sim": {"decimation": True}}, "task.sim.decimation: expected an integer"),
    ({"sim": {"dt": "fast"}}, "task.sim.dt: expected a number"),
    ({"commands": {"lin_vel_x": [1.0]}}, "task.commands.lin_vel_x: expected a list of 2"),
    ({"commands": {"lin_vel_x": [1.0, -1.0]}}, "task.commands: lin_vel_x: lower bound"),
    ({"constraints": {"torque": {"p_max": 2.0}}}, "task.constraints.torque: p_max: must be in [0, 1]"),
    ({"observations": {"joint_vel": {"scale": "big"}}}, "task.observations.joint_vel.scale"),
    ({"robot": {"kp": {".*": "stiff"}}}, "task.robot.kp..*: expected a number"),
    ({"sim": 4}, "task.sim: expected a mapping"),
    ({"sim": {"solver_iterations": -1}}, "task.sim: solver_iterations: must be >= 0"),
])
def test_bad_values_name_the_field(overrides, message):
    with pytest.raises(ConfigError) as err:
        task_config("quadruped-flat", overrides)
    assert message in str(err.value)


@pytest.mark.parametrize("overrides, message", [
    ({"robot": {"default_joint_pos": {"XX_hip_joint": 0.1}}}, "robot.default_joint_pos: 'XX_hip_joint' matches no"),
    ({"robot": {"kp": {"FR_.*": 20.0}}}, "robot.kp: no value for joint(s) FL_hip_joint"),
    ({"robot": {"kd": {".*": 0.5, "FR_hip_joint": 1.0}}}, "robot.kd: joint FR_hip_joint is matched by more than one"),
    ({"robot": {"feet": ["FR_paw"]}}, "robot.feet: 'FR_paw' is no geom or body of go1.xml (geoms: trunk, FR_thigh, FR_calf, FR_foot"),
    ({"robot": {"mjcf": "spot.xml"}}, "robot.mjcf: no model 'spot.xml'"),
    ({"observations": {"policy": ["base_height_map"]}}, "observations.policy: unknown term 'base_height_map'"),
    ({"observations": {"command": {"scale": [1.0, 2.0]}}}, "observations.command.scale: expected 1 or 3 values"),
])
def test_model_dependent_errors_name_the_field(overrides, message):
    with pytest.raises(ConfigError) as err:
        make("quadruped-flat", 2, overrides=overrides)
    assert message in str(err.value)


def test_unknown_task_and_backend():
    with pytest.raises(ConfigError, match="unknown task 'biped-flat'"):
        make("biped-flat", 2)
    with pytest.raises(ConfigError, match="backend: unknown backend 'physx'"):
        make("quadruped-flat", 2, backend="physx")
    with pytest.raises(ConfigError, match="num_envs: must be >= 1"):
        make("quadruped-flat", 0)


def test_yaml_loading_and_overrides(tmp_path):
    path = tmp_path / "task.yaml"
    path.write_text("sim:\n  decimation: 2\nrewards:\n  torques: -0.001\n")
    assert task_config("quadruped-flat", load_yaml(path)).rewards.torques.weight == -0.001
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level"):
        load_yaml(path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_yaml(tmp_path / "missing.yaml")
    assert parse_overrides(["sim.dt=0.002", "commands.lin_vel_x=[0, 1]"]) == {
        "sim": {"dt": 0.002}, "commands": {"lin_vel_x": [0, 1]}}
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["sim.dt"])
    # YAML 1.1 reads 1e-4 (no dot) as a string: overrides and float fields take it as the number it means
    assert parse_overrides(["rewards.torques=-1e-4"]) == {"rewards": {"torques": -1e-4}}
    assert task_config("quadruped-flat", {"sim": {"dt": "5e-3"}}).sim.dt == 0.005


def test_shipped_recipes_validate():
    from pathlib import Path

    from pg_robotics import algorithms
    from pg_robotics.recipe import CONFIGS, make_recipe

    recipes = sorted(CONFIGS.glob("*.yaml"))
    assert CONFIGS == (Path(__file__).parent.parent / "configs").resolve() and len(recipes) >= 4
    for path in recipes:  # configs/<task>_<algo>.yaml, validated against its own task and algorithm
        algo = next(a for a in algorithms.names() if path.stem.endswith("_" + a))
        task = path.stem[:-len(algo) - 1].replace("_", "-")
        assert load_yaml(path).get("algo", algo) == algo
        recipe = make_recipe(task, algo, file=path)
        assert recipe.algo == algo and recipe.task_cfg.sim.decimation >= 1 and recipe.runner.num_envs >= 1


def test_set_overrides_merge_into_a_recipe_at_every_depth(tmp_path):
    from pg_robotics.cli import task_overrides

    recipe = tmp_path / "r.yaml"
    recipe.write_text("task:\n  constraints:\n    torque: {limit: 0.8, p_max: 0.3}\n  sim: {decimation: 2}\n")
    merged = task_overrides(str(recipe), ["task.constraints.torque.p_max=0.5", "task.sim.dt=0.002"])
    cfg = task_config("quadruped-flat", merged)
    assert (cfg.constraints.torque.limit, cfg.constraints.torque.p_max) == (0.8, 0.5)
    assert (cfg.sim.decimation, cfg.sim.dt) == (2, 0.002)
    recipe.write_text("tsak: {}\n")
    with pytest.raises(ConfigError, match="tsak: unknown key"):
        task_overrides(str(recipe), [])
