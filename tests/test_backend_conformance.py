"""Conformance suite: every backend must reproduce plain C MuJoCo (mj_step, one world at a time, float64).

Same model, same initial state, same actions -> the same trajectory within stated tolerances over a short horizon;
resets of a subset of worlds; contact forces on the feet; per-world randomization. It runs for `mujoco` (C MuJoCo on
a thread pool) and `warp` (MuJoCo Warp, here on the CPU with a handful of worlds; its kernels compile once, ~30 s).

The solver runs to convergence here (100 iterations): with go1.xml's own 8, C MuJoCo and MuJoCo Warp stop at
different unconverged points when several feet land at once, and the trajectories part within 0.1 s (measured: a
15.8 rad/s joint kick in C at the 13th substep that Warp does not have). Converged, they agree to ~1e-5 over 0.8 s of
large random-ish joint motion. Warp computes in float32: tolerances are set for that.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from pg_robotics.envs.backends import make_backend
from pg_robotics.envs.manipulation.scene import arm_scene
from pg_robotics.envs.robots import load
from pg_robotics.envs.scene import legged_scene

BACKENDS = ["mujoco", "warp"]
CONVERGED = {"iterations": 100, "ls_iterations": 50}
N, DECIMATION = 3, 4
GO1_STAND = [0.1, 0.8, -1.5] * 4
FEET = ["FR", "FL", "RR", "RL"]
QPOS_TOL, QVEL_TOL = 2e-4, 2e-2  # rad or m; rad/s or m/s, over STEPS policy steps
STEPS = 25  # 0.5 s of go1 at 50 Hz


def scene(robot: str) -> mujoco.MjSpec:
    """The scene a task composes for a shipped robot: go1 on the floor, panda with its table and box."""
    return (arm_scene if robot == "panda" else legged_scene)(load(robot)).spec


def backend(name: str, robot: str = "go1", num_envs: int = N):
    return make_backend(name, scene(robot), num_envs, DECIMATION, device="cpu", opt=CONVERGED)


def reference_model(robot: str = "go1") -> mujoco.MjModel:
    model = scene(robot).compile()
    for key, value in CONVERGED.items():
        setattr(model.opt, key, value)
    return model


def go1_start(model: mujoco.MjModel, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Standing pose with the feet on the floor, a different small base velocity per world."""
    qpos = torch.tensor(model.qpos0, dtype=torch.float64).repeat(n, 1)
    qpos[:, 2] = 0.3377
    qpos[:, 7:] = torch.tensor(GO1_STAND, dtype=torch.float64)
    qvel = torch.zeros(n, model.nv, dtype=torch.float64)
    qvel[:, 0] = torch.linspace(-0.2, 0.2, n, dtype=torch.float64)
    return qpos, qvel


def go1_ctrl(k: int, n: int) -> torch.Tensor:
    """Joint targets swinging +-0.3 rad about the stand, a different phase per world and joint."""
    phase = 0.2 * k + np.arange(n)[:, None] + np.arange(12)[None]
    return torch.tensor(GO1_STAND) + 0.3 * torch.sin(torch.tensor(phase))


class Reference:
    """One MjData per world, stepped with mj_step."""

    def __init__(self, models: list[mujoco.MjModel], qpos: torch.Tensor, qvel: torch.Tensor):
        self.models, self.datas = models, [mujoco.MjData(m) for m in models]
        for i in range(len(models)):
            self.reset(i, qpos[i], qvel[i])

    def reset(self, i: int, qpos: torch.Tensor, qvel: torch.Tensor) -> None:
        mujoco.mj_resetData(self.models[i], self.datas[i])
        self.datas[i].qpos[:], self.datas[i].qvel[:] = qpos.numpy(), qvel.numpy()

    def step(self, ctrl: torch.Tensor) -> None:
        for m, d, c in zip(self.models, self.datas, ctrl.numpy()):
            d.ctrl[:] = c
            for _ in range(DECIMATION):
                mujoco.mj_step(m, d)

    def get(self, field: str) -> torch.Tensor:
        return torch.tensor(np.stack([getattr(d, field) for d in self.datas]))

    def sensor(self, name: str) -> torch.Tensor:
        m = self.models[0]
        s = m.sensor(name)
        return self.get("sensordata")[:, int(s.adr[0]):int(s.adr[0] + s.dim[0])]


def errors(sim, ref: Reference) -> tuple[float, float]:
    qpos, qvel = sim.qpos.double().cpu(), sim.qvel.double().cpu()
    return (qpos - ref.get("qpos")).abs().max().item(), (qvel - ref.get("qvel")).abs().max().item()


def assert_close(sim, ref: Reference, where: str) -> None:
    err_q, err_v = errors(sim, ref)
    assert err_q < QPOS_TOL and err_v < QVEL_TOL, f"{sim.name} {where}: qpos err {err_q:.2e}, qvel err {err_v:.2e}"
    assert torch.allclose(sim.time.double().cpu(), ref.get("time"), atol=1e-5), where


@pytest.fixture(scope="module", params=BACKENDS)
def go1(request):
    sim = backend(request.param)
    yield sim
    sim.close()


def test_trajectory_matches_c_mujoco(go1):
    model = reference_model()
    qpos, qvel = go1_start(model, N)
    go1.reset(torch.arange(N), qpos, qvel)
    ref = Reference([model] * N, qpos, qvel)
    landed = torch.zeros(N, 4, dtype=torch.bool)
    for k in range(STEPS):
        ctrl = go1_ctrl(k, N)
        go1.step(ctrl)
        ref.step(ctrl)
        assert_close(go1, ref, f"step {k}")
        for j, foot in enumerate(FEET):  # contact forces on the feet agree too (to 0.5 N of ~40 N)
            ours, theirs = go1.sensor(f"{foot}_foot_force").double().cpu(), ref.sensor(f"{foot}_foot_force")
            assert (ours - theirs).abs().max() < 0.5, (go1.name, k, foot, ours, theirs)
            landed[:, j] |= theirs.norm(dim=1) > 1.0
    assert landed.all(), "every foot of every world touched the floor in the horizon"
    assert not go1.diverged.any() and go1.num_diverged == 0


def test_reset_of_a_subset(go1):
    model = reference_model()
    qpos, qvel = go1_start(model, N)
    go1.reset(torch.arange(N), qpos, qvel)
    ref = Reference([model] * N, qpos, qvel)
    for k in range(8):
        go1.step(go1_ctrl(k, N))
        ref.step(go1_ctrl(k, N))
    ids = torch.tensor([0, 2])
    new_qpos, new_qvel = go1_start(model, 2)
    new_qpos[:, 2] += 0.05  # dropped from 5 cm above the floor
    go1.reset(ids, new_qpos, new_qvel)
    for j, i in enumerate(ids.tolist()):
        ref.reset(i, new_qpos[j], new_qvel[j])
    assert go1.time.cpu()[ids].eq(0).all() and go1.time.cpu()[1] > 0.1
    assert go1.sensor("FR_foot_force").cpu()[ids].eq(0).all(), "a reset world shows no stale contact force"
    for k in range(8, 8 + STEPS):
        go1.step(go1_ctrl(k, N))
        ref.step(go1_ctrl(k, N))
        assert_close(go1, ref, f"step {k} after resetting worlds 0 and 2")


def test_contact_forces_carry_the_weight(go1):
    """Standing still, the floor carries the robot's weight: the net contact forces of the feet (and of any thigh or
    calf that sags onto it at kp = 20) add up to m g, and the feet carry most of it."""
    model = reference_model()
    qpos, qvel = go1_start(model, N)
    go1.reset(torch.arange(N), qpos, torch.zeros_like(qvel))
    stand = torch.tensor(GO1_STAND).repeat(N, 1)
    for _ in range(100):  # 2 s to settle
        go1.step(stand)
    weight = float(model.body_subtreemass[1]) * 9.81

    def normal(names: list[str]) -> torch.Tensor:  # world-frame net force: z is the normal on the flat floor
        return torch.stack([go1.sensor(n).double().cpu()[:, 2].abs() for n in names], dim=1)

    feet = normal([f"{f}_foot_force" for f in FEET])
    legs = normal([f"{f}_{part}_force" for f in FEET for part in ("thigh", "calf")] + ["trunk_force"])
    total = feet.sum(dim=1) + legs.sum(dim=1)
    assert torch.allclose(total, torch.full((N,), weight, dtype=torch.float64), rtol=0.02), (total, weight)
    assert (feet.sum(dim=1) > 0.75 * weight).all() and (feet > 0.05 * weight).all(), feet
    assert go1.sensor_history("FR_foot_force").shape == (N, DECIMATION, 3)
    assert torch.equal(go1.sensor_history("FR_foot_force")[:, -1], go1.sensor("FR_foot_force"))


def test_randomization_is_per_world(go1):
    """Friction, base mass and motor strength set per world give each world the trajectory of C MuJoCo run with
    that world's parameters (mj_setConst after the mass change), and not that of another world's. The horizon is
    0.2 s: sliding on 0.3 friction, stick-slip events later part float32 from float64 (7e-4 at 0.25 s, measured)."""
    base = reference_model()
    friction, added_mass, strength = np.array([0.3, 0.7, 1.2]), np.array([0.0, 1.5, 3.0]), np.array([0.8, 1.0, 1.2])
    kp, kd, limit = np.full(12, 20.0), np.full(12, 0.5), np.array([23.7, 23.7, 35.55] * 4)
    mass = float(base.body("trunk").mass[0]) + added_mass
    go1.set_geom_friction("floor", friction)
    go1.set_body_mass("trunk", mass)
    go1.set_pd_gains(kp, kd, limit, strength=strength)
    models = []
    for i in range(N):
        m = reference_model()
        bid = m.body("trunk").id
        m.geom("floor").friction[0] = friction[i]
        m.body_inertia[bid] *= mass[i] / m.body_mass[bid]
        m.body_mass[bid] = mass[i]
        mujoco.mj_setConst(m, mujoco.MjData(m))
        m.actuator_gainprm[:, 0] = strength[i] * kp
        m.actuator_biasprm[:, 1], m.actuator_biasprm[:, 2] = -strength[i] * kp, -strength[i] * kd
        m.actuator_forcerange[:, 0], m.actuator_forcerange[:, 1] = -limit, limit
        models.append(m)
    qpos, qvel = go1_start(base, N)
    qvel[:] = 0.0
    qvel[:, 0] = 0.5  # sliding forward: friction matters from the first contact
    go1.reset(torch.arange(N), qpos, qvel)
    ref = Reference(models, qpos, qvel)
    swapped = Reference(models[::-1], qpos, qvel)  # worlds 0 and 2 with each other's parameters
    for k in range(10):
        go1.step(go1_ctrl(k, N))
        ref.step(go1_ctrl(k, N))
        swapped.step(go1_ctrl(k, N))
        assert_close(go1, ref, f"step {k} with per-world parameters")
    assert errors(go1, swapped)[0] > 20 * QPOS_TOL, "the check tells the worlds' parameters apart"
    world0 = go1.world_model(2)
    assert world0.geom("floor").friction[0] == pytest.approx(1.2) and world0.body("trunk").mass[0] == \
        pytest.approx(mass[2], rel=1e-6)
    x = go1.qpos.double().cpu()[:, 0]
    assert (x[1:] - x[:-1]).abs().min() > 1e-3, f"the worlds moved alike: {x}"


@pytest.mark.parametrize("name", BACKENDS)
def test_arm_trajectory_matches_c_mujoco(name):
    """The Panda-class arm (position servos with gravity compensation, a box on the table) under joint targets."""
    sim = backend(name, "panda", 2)
    model = reference_model("panda")
    qpos = torch.tensor(model.qpos0, dtype=torch.float64).repeat(2, 1)
    arm = sim.joint_qpos_index(sim.actuated_joint_names[:7])
    qpos[:, arm] = torch.tensor([0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.8], dtype=torch.float64)
    qvel = torch.zeros(2, model.nv, dtype=torch.float64)
    sim.reset(torch.arange(2), qpos, qvel)
    ref = Reference([model] * 2, qpos, qvel)
    start = qpos[:, arm].clone()
    for k in range(STEPS):
        target = torch.cat([start + 0.2 * torch.sin(torch.tensor(0.3 * k + np.arange(7.0))), torch.full((2, 2), 0.02)],
                           dim=1)
        target[1, :7] = start[1]  # world 1 holds still
        sim.step(target)
        ref.step(target)
        assert_close(sim, ref, f"arm step {k}")
    moved = (sim.qpos.double().cpu()[:, arm] - start).abs().max(dim=1).values
    assert moved[0] > 0.05 and moved[1] < 0.01, moved
    sim.close()


@pytest.mark.parametrize("name", BACKENDS)
def test_divergence_is_flagged_per_world(name):
    sim = backend(name, num_envs=2)
    model = reference_model()
    qpos, qvel = go1_start(model, 2)
    qvel[1, 6] = float("nan")
    sim.reset(torch.arange(2), qpos, qvel)
    sim.step(torch.tensor(GO1_STAND).repeat(2, 1))
    assert sim.diverged.cpu().tolist() == [False, True] and sim.num_diverged == 1
    assert torch.isfinite(sim.qpos).all() and torch.isfinite(sim.qvel).all(), "the diverged world is zeroed"
    state = sim.state_dict()
    sim.step(torch.tensor(GO1_STAND).repeat(2, 1))
    after = sim.qpos.clone()
    sim.load_state_dict(state)
    assert sim.num_diverged == 1
    sim.step(torch.tensor(GO1_STAND).repeat(2, 1))
    assert torch.equal(sim.qpos, after), "state_dict / load_state_dict resume the same trajectory"
    with pytest.raises(ValueError, match="backend state"):
        backend(name, num_envs=3).load_state_dict(state)
    sim.close()
