"""Goal-task (DDPG+HER) runs after training: `pgr eval` (success rate of the deterministic policy), `pgr export`
(the actor with its normalizers as ONNX) and `pgr play` (a video with the goal drawn in)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pg_robotics.envs import ConfigError, make, task_spec


def load_agent(run_dir: Path, checkpoint: Path | None = None, num_envs: int = 1, seed: int = 1):
    """(env with `num_envs` worlds, trained DDPG agent, checkpoint state, checkpoint path) of a goal run."""
    from pg_robotics.ddpg import DDPG
    from pg_robotics.evaluate import load_policy

    task, task_cfg, algo_cfg, _, state, ckpt = load_policy(run_dir, checkpoint)
    torch.set_num_threads(1)
    env = make(task, num_envs, seed=seed, cfg=task_cfg)
    dims = env.observation_dims
    agent = DDPG(algo_cfg, dims["observation"], dims["desired_goal"], env.num_actions, env.device)
    agent.load_state_dict(state["algorithm"])
    return env, agent, state, ckpt


def evaluate_goal(run_dir: Path, episodes: int = 100, checkpoint: Path | None = None, seed: int = 1) -> dict:
    """One deterministic episode in each of `episodes` worlds (seeded, so runs compare on the same goals)."""
    from pg_robotics.offpolicy_runner import run_episode

    env, agent, state, ckpt = load_agent(run_dir, checkpoint, episodes, seed)
    try:
        ep, _ = run_episode(env, agent.act_inference, env.reset())
    finally:
        env.close()
    return {"run_dir": str(run_dir), "task": env.task, "checkpoint": str(ckpt), "iteration": int(state["iteration"]),
            "train_seconds": round(float(state["elapsed"]), 3), "episodes": episodes,
            "success_rate": float(ep["success"].mean()), "final_distance": float(ep["final_distance"].mean())}


class GoalPolicy(nn.Module):
    """[observation | desired_goal] -> action in [-1, 1]: clipping, both normalizers and the actor."""

    def __init__(self, agent):
        super().__init__()
        self.obs_dim = agent.obs_normalizer.mean.shape[0]
        self.obs_normalizer, self.goal_normalizer, self.actor = agent.obs_normalizer, agent.goal_normalizer, agent.actor
        self.clip = float(agent.cfg.obs_clip)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = obs.clamp(-self.clip, self.clip)
        return self.actor(self.obs_normalizer(obs[:, :self.obs_dim]), self.goal_normalizer(obs[:, self.obs_dim:]))


def export_goal(run_dir: Path, out: Path | None = None, checkpoint: Path | None = None) -> dict:
    """policy.onnx (input `obs` = [observation | desired_goal], output `actions` (dx, dy, dz, gripper) in [-1, 1])
    with its metadata, checked against torch on random and recorded inputs before it is written."""
    import onnxruntime as ort

    from pg_robotics.export import check_against_torch, publish, run_commit, write_onnx
    from pg_robotics.offpolicy_runner import run_episode

    run_dir = Path(run_dir)
    env, agent, _, ckpt = load_agent(run_dir, checkpoint, num_envs=20)
    model = GoalPolicy(agent).eval()
    dims = env.observation_dims
    num_obs = dims["observation"] + dims["desired_goal"]
    with torch.no_grad():
        ep, _ = run_episode(env, agent.act_inference, env.reset())
    env.close()
    recorded = torch.cat([ep["obs"][:, :-1], ep["goal"]], dim=-1).reshape(-1, num_obs)[:1000]
    git_commit = run_commit(run_dir)
    cfg = env.cfg
    meta = {"schema_version": 1, "kind": "goal", "task": env.task, "robot": task_spec(env.task).robot,
            "observation_terms": [{"name": "observation", "dim": dims["observation"]},
                                  {"name": "desired_goal", "dim": dims["desired_goal"]}],
            "action_names": ["dx", "dy", "dz", "gripper"][:env.num_actions] if hasattr(cfg, "robot") else [],
            "action_range": [-1.0, 1.0], "control_dt": float(env.dt), "git_commit": git_commit}
    if hasattr(cfg, "robot"):
        meta.update(max_displacement=float(cfg.robot.max_displacement), finger_open=float(cfg.robot.finger_open),
                    distance_threshold=float(cfg.goal.distance_threshold))
    out = Path(out) if out else run_dir / "policy.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"onnx": str(out), "checkpoint": str(ckpt), "num_obs": num_obs, "num_actions": env.num_actions}
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        tmp_onnx = Path(tmp) / out.name
        write_onnx(model, num_obs, meta, tmp_onnx, f"pg_robotics goal policy for {env.task} from {ckpt}")
        session = ort.InferenceSession(str(tmp_onnx), providers=["CPUExecutionProvider"])
        random = torch.randn(1000, num_obs, generator=torch.Generator().manual_seed(0)) * 0.3
        report.update(check_against_torch(model, lambda obs: session.run(None, {"obs": obs})[0],
                                          {"random": random, "recorded": recorded}, out))
        sidecar = publish(tmp_onnx, out, meta)
    report["sidecar"] = str(sidecar)
    return report


def play_goal(run_dir: Path, video: Path, episodes: int = 4, width: int = 640, height: int = 480, seed: int = 3,
              checkpoint: Path | None = None, progress: bool = True) -> dict:
    """Episodes of one world rendered headless, the goal drawn as a green sphere (red while not reached)."""
    from pg_robotics.play import _choose_gl

    _choose_gl()
    import imageio.v2 as imageio
    import mujoco
    from PIL import Image, ImageDraw
    from tqdm import tqdm

    env, agent, _, ckpt = load_agent(run_dir, checkpoint, 1, seed)
    if not hasattr(env, "sim"):
        raise ConfigError(f"pgr play: {env.task} is not one of our MuJoCo tasks; nothing to render")
    model = env.sim.world_model(0)
    data = mujoco.MjData(model)
    renderer = mujoco.Renderer(model, height, width)
    cam = mujoco.MjvCamera()
    cam.lookat[:] = (0.5, 0.0, 0.1)
    cam.distance, cam.elevation, cam.azimuth = 1.3, -25.0, 150.0
    fps = int(round(1 / env.dt))
    video = Path(video)
    video.parent.mkdir(parents=True, exist_ok=True)
    successes = []
    obs = env.reset()
    with imageio.get_writer(video, fps=fps, codec="libx264", quality=7, macro_block_size=8) as writer:
        for t in tqdm(range(episodes * env.episode_steps), disable=not progress, unit="frame", desc="render"):
            goal = obs["desired_goal"][0].numpy().copy()
            obs, _, done, info = env.step(agent.act_inference(obs))
            reached = bool(info["is_success"][0])
            if bool(done[0]):
                successes.append(reached)
            data.qpos[:], data.qvel[:] = env.sim.qpos[0].numpy(), env.sim.qvel[0].numpy()
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, camera=cam)
            scene = renderer.scene
            if scene.ngeom < scene.maxgeom:
                mujoco.mjv_initGeom(scene.geoms[scene.ngeom], mujoco.mjtGeom.mjGEOM_SPHERE, np.array([0.02, 0, 0]),
                                    goal, np.eye(3).flatten(),
                                    np.array([0.1, 0.9, 0.1, 0.6] if reached else [0.9, 0.2, 0.1, 0.6], np.float32))
                scene.ngeom += 1
            frame = Image.fromarray(renderer.render())
            ImageDraw.Draw(frame).text((8, 8), f"{env.task}  episode {t // env.episode_steps + 1}  step "
                                               f"{t % env.episode_steps + 1:2d}  distance {float(info['distance'][0]):.3f} m"
                                               f"  {'reached' if reached else ''}", fill=(255, 255, 255))
            writer.append_data(np.asarray(frame))
    renderer.close()
    env.close()
    return {"video": str(video), "checkpoint": str(ckpt), "frames": episodes * env.episode_steps, "fps": fps,
            "width": width, "height": height, "episodes": episodes, "successes": int(sum(successes))}
