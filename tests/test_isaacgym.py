"""The Isaac Gym adapter: type-checked against isaacgym-stubs (mypy), exercised against a stand-in Gym with no physics,
and refused with install advice where isaacgym is missing (it is not on PyPI, so it is missing in CI)."""

import ast
import importlib
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import mujoco
import numpy as np
import pytest
import torch

from pgr_cli import pgr

ROOT = Path(__file__).resolve().parents[1]
ORIGINS = torch.tensor([[0.0, -1.0, 0.0], [3.0, -1.0, 0.0], [6.0, -1.0, 0.0]])  # FakeGym.get_env_origin
GYMTORCH_PYI = """import torch
from .gymapi import Tensor
def wrap_tensor(gym_tensor: Tensor, offsets: tuple[int, ...] | None = ..., counts: tuple[int, ...] | None = ...
                ) -> torch.Tensor: ...
def unwrap_tensor(torch_tensor: torch.Tensor) -> Tensor: ...
"""


# ---- type checking --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mypy_env(tmp_path_factory):
    """isaacgym-stubs 1.1rc4 as published stops mypy: gymapi.pyi declares a property named `lambda` (a syntax
    error), and the package has no isaacgym/__init__.pyi and no gymtorch. A copy with those repaired goes in
    MYPYPATH; the signatures are the published ones."""
    try:
        dist = importlib.metadata.distribution("isaacgym-stubs")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("isaacgym-stubs is missing: pip install -e '.[dev]'")
    text = Path(dist.locate_file("isaacgym-stubs/gymapi.pyi")).read_text().replace("def lambda(", "def lambda_(")
    ast.parse(text)  # any other defect fails here, by name
    stubs = tmp_path_factory.mktemp("stubs") / "isaacgym"
    stubs.mkdir()
    (stubs / "gymapi.pyi").write_text(text)
    (stubs / "__init__.pyi").write_text("")
    (stubs / "gymtorch.pyi").write_text(GYMTORCH_PYI)
    return {**os.environ, "MYPYPATH": str(stubs.parent)}


def mypy(env, *files):
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), *map(str, files)]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return out.returncode, out.stdout + out.stderr


def test_adapter_type_checks_against_the_stubs_and_the_protocol(mypy_env):
    out = subprocess.run([sys.executable, "-m", "mypy", "envs/backends/isaacgym.py", "envs/backends/base.py"],
                         cwd=ROOT, env=mypy_env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Success" in out.stdout


def test_mypy_reads_the_stubs(mypy_env, tmp_path):
    """Not a vacuous pass: a made-up call and a wrong argument type on Isaac Gym are both errors."""
    bad = tmp_path / "misuse.py"
    bad.write_text("from isaacgym import gymapi, gymtorch\n"
                   "gym = gymapi.acquire_gym()\n"
                   "gym.no_such_call()\n"
                   "gym.simulate('not a sim')\n"
                   "gymtorch.wrap_tensor(gym)\n")
    rc, out = mypy(mypy_env, bad)
    assert rc == 1, out
    assert '"Gym" has no attribute "no_such_call"' in out
    assert 'Argument 1 to "simulate" of "Gym" has incompatible type "str"; expected "Sim"' in out
    assert 'Argument 1 to "wrap_tensor" has incompatible type "Gym"; expected "Tensor"' in out


@pytest.mark.parametrize("drift, member", [
    (("def step(self, ctrl", "def step_all(self, ctrl"), "step"),
    (("def reset(self, env_ids: torch.Tensor,", "def reset(self, env_ids: list[int],"), "reset"),
])
def test_protocol_drift_fails_the_check(mypy_env, tmp_path, drift, member):
    """The module's own `_conforms` assignment catches an adapter that loses or changes a Backend member."""
    pkg = tmp_path / "drifted"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "base.py").write_text((ROOT / "envs/backends/base.py").read_text())
    source = (ROOT / "envs/backends/isaacgym.py").read_text()
    assert source.count(drift[0]) == 1
    (pkg / "isaacgym.py").write_text(source.replace(*drift))
    rc, out = mypy(mypy_env, pkg / "isaacgym.py")
    assert rc == 1, out
    assert 'Incompatible return value type (got "IsaacGymBackend", expected "Backend")' in out, out
    assert re.search(rf"note: .*\b{member}\b", out), out  # mypy's note names the member


# ---- without isaacgym -----------------------------------------------------------------------------------------
def test_missing_isaacgym_is_a_config_error_with_install_advice():
    if importlib.util.find_spec("isaacgym") is not None:
        pytest.skip("isaacgym is installed here")
    from pg_robotics.envs.backends import make_backend
    from pg_robotics.envs.config import ConfigError
    from pg_robotics.envs.robots import load
    from pg_robotics.envs.scene import legged_scene

    with pytest.raises(ConfigError) as err:
        make_backend("isaacgym", legged_scene(load("go1")).spec, 2, 4)
    assert "isaacgym" in str(err.value) and "Isaac Gym Preview 4" in str(err.value)

    out = pgr("bench", "sim", "--backend", "isaacgym", "--num-envs", "2", "--seconds", "1")
    assert out.returncode == 2, out.stderr
    assert "Isaac Gym Preview 4" in out.stderr and "isaacgym" in out.stderr


# ---- against a stand-in Gym -----------------------------------------------------------------------------------
class FakeGym:
    """Enough of gymapi.Gym for the adapter to run, with no physics: simulate and refresh change nothing, so what
    reset writes must read back. DOFs and bodies come in reverse MuJoCo order, to exercise the name maps."""

    def __init__(self):
        self.calls, self.dof_props, self.opts, self.num_envs = [], {}, None, 0
        self.shape_props, self.body_props = [], []

    def __getattr__(self, name):  # create_sim, add_ground, simulate, refresh_*, enable_actor_dof_force_sensors, ...
        return lambda *args, **kwargs: None

    def load_asset(self, sim, root, file, opts):
        self.opts, m = opts, mujoco.MjModel.from_xml_path(os.path.join(root, file))
        joints = [m.joint(j).name for j in range(m.njnt) if m.jnt_type[j] != mujoco.mjtJoint.mjJNT_FREE]
        self.dofs = {n: i for i, n in enumerate(reversed(joints))}
        self.bodies = {m.body(b).name: i for i, b in enumerate(reversed(range(1, m.nbody)))}
        self.shapes = [sum(m.geom_bodyid == b) for b in reversed(range(1, m.nbody))]
        self.masses = [float(m.body_mass[b]) for b in reversed(range(1, m.nbody))]
        return "asset"

    def get_asset_dof_dict(self, asset):
        return self.dofs

    def get_asset_rigid_body_dict(self, asset):
        return self.bodies

    def get_asset_dof_properties(self, asset):
        fields = ["hasLimits", "lower", "upper", "driveMode", "velocity", "effort", "stiffness", "damping",
                  "friction", "armature"]
        return np.zeros(len(self.dofs), dtype=[(f, bool if f == "hasLimits" else int if f == "driveMode" else "f4")
                                               for f in fields])

    def create_env(self, sim, lower, upper, per_row):
        self.num_envs += 1
        self.shape_props.append([SimpleNamespace(friction=1.0) for _ in range(sum(self.shapes))])
        self.body_props.append(
            [SimpleNamespace(mass=mass, inertia=SimpleNamespace(x=SimpleNamespace(x=mass, y=0.0, z=0.0),
                                                                y=SimpleNamespace(x=0.0, y=mass, z=0.0),
                                                                z=SimpleNamespace(x=0.0, y=0.0, z=mass)))
             for mass in self.masses])
        return self.num_envs - 1

    def create_actor(self, env, asset, pose, name, group, filter, segmentation):
        self.pose, self.filter = pose, filter
        return 0

    def get_actor_index(self, env, actor, domain):
        return env

    def get_env_origin(self, env):
        return SimpleNamespace(x=3.0 * env, y=-1.0, z=0.0)

    def set_actor_dof_properties(self, env, actor, props):
        self.dof_props[env] = props

    def get_actor_rigid_shape_properties(self, env, actor):
        return self.shape_props[env]

    def get_actor_rigid_body_shape_indices(self, env, actor):
        starts = np.cumsum([0] + self.shapes[:-1])
        return [SimpleNamespace(start=int(s), count=int(c)) for s, c in zip(starts, self.shapes)]

    def get_actor_rigid_body_properties(self, env, actor):
        return self.body_props[env]

    def prepare_sim(self, sim):
        n, d, b = self.num_envs, len(self.dofs), len(self.bodies)
        self.root, self.dof, self.rb = torch.zeros(n, 13), torch.zeros(n * d, 2), torch.zeros(n * b, 13)
        self.contact, self.dof_force = torch.zeros(n * b, 3), torch.zeros(n * d)
        self.rb[:, 6] = 1.0  # identity quaternions

    def acquire_actor_root_state_tensor(self, sim):
        return self.root

    def acquire_dof_state_tensor(self, sim):
        return self.dof

    def acquire_rigid_body_state_tensor(self, sim):
        return self.rb

    def acquire_net_contact_force_tensor(self, sim):
        return self.contact

    def acquire_dof_force_tensor(self, sim):
        return self.dof_force

    def set_actor_root_state_tensor_indexed(self, sim, tensor, ids, count):
        self.calls.append(("root", ids.tolist(), count))

    def set_dof_state_tensor_indexed(self, sim, tensor, ids, count):
        self.calls.append(("dof", ids.tolist(), count))

    def set_dof_position_target_tensor(self, sim, tensor):
        self.targets = tensor.clone()


@pytest.fixture
def adapter(monkeypatch):
    """envs/backends/isaacgym.py imported against stand-in isaacgym modules (removed again afterwards)."""
    ns = SimpleNamespace
    gymapi = types.ModuleType("isaacgym.gymapi")
    gymapi.__dict__.update(
        acquire_gym=FakeGym, SimParams=lambda: ns(physx=ns()), PlaneParams=ns, AssetOptions=ns, Mat33=ns,
        Vec3=lambda x=0.0, y=0.0, z=0.0: ns(x=x, y=y, z=z),
        Quat=lambda x=0.0, y=0.0, z=0.0, w=1.0: ns(x=x, y=y, z=z, w=w),
        Transform=lambda p=None, r=None: ns(p=p, r=r), Env=object, UP_AXIS_Z=2, SIM_PHYSX=0, DOF_MODE_NONE=0,
        DOF_MODE_POS=1, DOMAIN_SIM=2)
    gymtorch = types.ModuleType("isaacgym.gymtorch")
    gymtorch.wrap_tensor = gymtorch.unwrap_tensor = lambda t: t
    isaacgym = types.ModuleType("isaacgym")
    isaacgym.gymapi, isaacgym.gymtorch = gymapi, gymtorch
    for name, module in (("isaacgym", isaacgym), ("isaacgym.gymapi", gymapi), ("isaacgym.gymtorch", gymtorch)):
        monkeypatch.setitem(sys.modules, name, module)
    name = "pg_robotics.envs.backends.isaacgym"
    sys.modules.pop(name, None)
    try:
        yield importlib.import_module(name)
    finally:
        sys.modules.pop(name, None)
        vars(sys.modules["pg_robotics.envs.backends"]).pop("isaacgym", None)


def go1(adapter, n=3, decimation=2):
    """The Go1 scene as quadruped-flat composes it, handed to the adapter as a spec (written to a file for Isaac)."""
    from pg_robotics.envs.robots import load
    from pg_robotics.envs.scene import legged_scene

    scene = legged_scene(load("go1"))
    with pytest.warns(UserWarning, match="FR_foot_force/FR_calf_force"):
        return adapter.IsaacGymBackend(scene.spec, n, decimation, device="cpu", model_path=scene.path)


def test_state_round_trips_through_isaac_layout(adapter):
    sim = go1(adapter)
    gym, m, n = sim._gym, sim.model, 3
    assert gym.opts.fix_base_link is False and gym.filter == 1  # Go1's geoms never collide with each other
    calf = gym.dofs["FR_calf_joint"]
    props = gym.dof_props[0]
    assert props["driveMode"][calf] == 1 and props["stiffness"][calf] == pytest.approx(20.0)
    assert props["damping"][calf] == pytest.approx(0.5 + 0.05) and props["effort"][calf] == pytest.approx(35.55)
    assert (props["lower"][calf], props["upper"][calf]) == pytest.approx((-2.818, -0.888))

    gen = torch.Generator().manual_seed(0)
    qpos, qvel = torch.rand(n, m.nq, generator=gen), torch.rand(n, m.nv, generator=gen) * 2 - 1
    qpos[:, 3:7] /= qpos[:, 3:7].norm(dim=1, keepdim=True)
    sim.reset(torch.arange(n), qpos, qvel)
    ctrl = torch.rand(n, m.nu, generator=gen)
    sim.step(ctrl)
    assert gym.calls == [("root", [0, 1, 2], 3), ("dof", [0, 1, 2], 3)]  # one indexed write per tensor
    assert torch.allclose(sim.qpos, qpos, atol=1e-6) and torch.allclose(sim.qvel, qvel, atol=1e-6)
    assert torch.allclose(sim.time, torch.full((n,), 2 * 0.005))
    assert torch.equal(gym.targets[:, gym.dofs["FR_hip_joint"]], ctrl[:, 0])

    # Isaac's side, checked against MuJoCo's own quaternion code: x y z w, world-frame angular velocity, env origin
    dof = gym.dof.view(n, -1, 2)
    assert torch.equal(dof[:, calf, 0], qpos[:, m.joint("FR_calf_joint").qposadr[0]])
    assert torch.allclose(gym.root[:, 3:7], qpos[:, [4, 5, 6, 3]])
    assert torch.allclose(gym.root[:, :3], qpos[:, :3] + ORIGINS)
    ang = np.zeros(3)
    mujoco.mju_rotVecQuat(ang, qvel[1, 3:6].double().numpy(), qpos[1, 3:7].double().numpy())
    assert torch.allclose(gym.root[1, 10:13], torch.from_numpy(ang).float(), atol=1e-6)


def test_sensors_from_isaac_tensors(adapter):
    sim = go1(adapter)
    gym, n = sim._gym, 3
    sim.reset(torch.arange(n), sim.qpos.clone(), sim.qvel.clone())
    nb = len(gym.bodies)
    rb, contact = gym.rb.view(n, nb, 13), gym.contact.view(n, nb, 3)
    calf = gym.bodies["FR_calf"]
    rb[:, calf, :3] = torch.tensor([1.0, 2.0, 3.0]) + ORIGINS
    rb[:, calf, 10:13] = torch.tensor([0.0, 1.0, 0.0])  # spinning about y, centre of mass at rest
    contact[:, calf] = torch.tensor([0.0, 0.0, 10.0])  # the floor pushes the calf body up
    gym.dof_force.view(n, -1)[:, gym.dofs["FR_hip_joint"]] = 5.0
    sim.step(torch.zeros(n, 12))

    assert torch.allclose(sim.sensor("FR_foot_pos"), torch.tensor([1.0, 2.0, 3.0 - 0.213]).expand(n, 3))
    # Isaac's velocity is the centre of mass's; the foot is 0.213 below the body origin: v = w x (0, 0, dz)
    dz = -0.213 - sim.model.body("FR_calf").ipos[2]
    assert dz == pytest.approx(-0.0865, abs=1e-4)
    assert torch.allclose(sim.sensor("FR_foot_vel"), torch.tensor([dz, 0.0, 0.0]).float().expand(n, 3), atol=1e-6)
    assert torch.equal(sim.sensor("FR_foot_force"), torch.tensor([0.0, 0.0, -10.0]).expand(n, 3))  # MuJoCo's sign
    assert torch.equal(sim.sensor("FR_calf_force"), sim.sensor("FR_foot_force"))  # one body, one force
    assert torch.equal(sim.sensor("trunk_force"), torch.zeros(n, 3))
    assert torch.equal(sim.sensor("FR_hip_joint_torque"), torch.full((n, 1), 5.0))
    assert sim.sensor_history("FR_foot_pos").shape == (n, 2, 3)
    assert sim.sensor_names() == [sim.model.sensor(i).name for i in range(sim.model.nsensor)]

    gym.dof.view(n, -1, 2)[1, 0, 1] = 1e4  # world 1 blows up
    sim.step(torch.zeros(n, 12))
    assert sim.diverged.tolist() == [False, True, False] and sim.num_diverged == 1
    state = sim.state_dict()
    assert state["num_diverged"] == 1 and state["qpos"].shape == (n, 19)
    with pytest.raises(ValueError, match="different"):
        sim.load_state_dict({"state": torch.zeros(n, 40)})
    with pytest.raises(RuntimeError, match="before the first step"):
        sim.set_body_mass("trunk", np.ones(n))
    with pytest.raises(NotImplementedError, match="mujoco backend only"):
        sim.keep_inputs()


def test_per_world_friction_and_mass(adapter):
    sim = go1(adapter, n=2)
    gym = sim._gym
    sim.set_geom_friction("floor", np.array([0.4, 0.9]))  # the floor is the ground plane: the robot's shapes take it
    robot = sim.model.ngeom - 1  # every geom but the floor
    assert [[p.friction for p in props] for props in gym.shape_props] == [[0.4] * robot, [0.9] * robot]
    sim.set_body_mass("trunk", np.array([6.0, 7.0]))
    trunk = gym.bodies["trunk"]
    for env, mass in enumerate((6.0, 7.0)):
        body = gym.body_props[env][trunk]
        assert body.mass == mass and body.inertia.y.y == pytest.approx(mass)  # inertia scaled with the mass


def test_unsupported_models_and_sensors(adapter, tmp_path):
    from pg_robotics.envs.manipulation.scene import arm_scene
    from pg_robotics.envs.robots import load

    with pytest.raises(NotImplementedError, match=r"one body tree per world.*\(link0, object\)"):
        adapter.IsaacGymBackend(arm_scene(load("panda")).spec, 2, 4, device="cpu")
    model = tmp_path / "ball.xml"
    model.write_text('<mujoco><worldbody><geom name="floor" type="plane" size="1 1 .1"/><body name="ball" pos="0 0 1">'
                     '<freejoint/><geom size=".1"/><site name="imu"/><body name="flap"><joint name="hinge" '
                     'range="-1 1"/><geom size=".05"/></body></body></worldbody><actuator><position joint="hinge" '
                     'kp="10" ctrlrange="-0.5 0.5"/></actuator><sensor><accelerometer name="acc" site="imu"/>'
                     '<framepos name="pos" objtype="site" objname="imu"/><jointpos name="q" joint="hinge"/></sensor>'
                     '</mujoco>')
    sim = adapter.IsaacGymBackend(model, 2, 1, device="cpu")
    qpos = sim.qpos.clone()
    qpos[:, :3], qpos[:, 7] = torch.tensor([[0.0, 0.0, 1.0], [0.5, 0.0, 2.0]]), torch.tensor([0.25, -0.75])
    sim.reset(torch.arange(2), qpos, torch.zeros(2, 7))
    sim.step(torch.tensor([[2.0], [0.1]]))
    assert torch.equal(sim.qpos, qpos) and torch.equal(sim.sensor("q"), qpos[:, 7:])
    assert torch.equal(sim._gym.targets, torch.tensor([[0.5], [0.1]]))  # clamped to ctrlrange, as MuJoCo does
    assert sim.sensor("pos").shape == (2, 3)
    with pytest.raises(ValueError, match="'acc'.*mjSENS_ACCELEROMETER"):
        sim.sensor("acc")
