"""`pgr bench ...`: throughput measurements. Speed goals are checked here, never by timed assertions in tests."""

from __future__ import annotations

import os
import platform
import resource
import time


def peak_rss_mb() -> float:
    """Peak resident memory of this process (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "python": platform.python_version()}


def bench_sim(task: str, backend: str, num_envs: int, seconds: float, seed: int = 0, device: str = "cpu",
              overrides: dict | None = None, progress: bool = False) -> dict:
    """Random actions through the full task (observations, rewards, constraints, resets) for `seconds` of task
    time. Every other step, the ceiling is measured on the spot: that step's exact input replayed through the bare
    backend (`mujoco.rollout`, or MuJoCo Warp's substeps as a captured graph), same models, worlds and substeps, so
    both figures see the same physics and machine."""
    import torch

    from pg_robotics.envs import make

    torch.set_num_threads(1)  # tensor ops at this size gain nothing from threads; spinning OpenMP workers
    # would take the cores from MuJoCo's thread pool
    env = make(task, num_envs, device=device, seed=seed, backend=backend, overrides=overrides)
    gen = torch.Generator().manual_seed(seed)
    env.reset()

    def random_actions():
        return (torch.rand(num_envs, env.num_actions, generator=gen) * 2 - 1).to(env.device)

    for _ in range(5):  # warm-up
        env.step(random_actions())
    env.sim.keep_inputs()
    cuda = env.device.type == "cuda"
    steps, resets, task_time, bare_time, bare_calls = 0, torch.zeros((), device=env.device), 0.0, 0.0, 0
    bar = _bar(seconds, progress, "task")
    while task_time < seconds:
        actions = random_actions()
        start = time.perf_counter()
        _, _, done, info = env.step(actions)
        if cuda:
            torch.cuda.synchronize(env.device)
        task_time += time.perf_counter() - start
        resets += done.sum()
        steps += 1
        if steps % 2:
            bare_time += env.sim.replay_last_step()
            bare_calls += 1
        bar.update(task_time)
    bar.close()
    decimation = env.sim.decimation
    env_rate = steps * num_envs / task_time
    ceiling = bare_calls * num_envs * decimation / bare_time
    result = {
        "task": task, "backend": backend, "device": str(env.device), "num_envs": num_envs,
        "decimation": decimation, "threads": getattr(env.sim, "nthread", None), "model_path": str(env.sim.model_path),
        "seconds": round(task_time, 3), "steps": steps, "env_steps_per_s": round(env_rate, 1),
        "physics_steps_per_s": round(env_rate * decimation, 1),
        "ceiling_physics_steps_per_s": round(ceiling, 1),
        "fraction_of_ceiling": round(env_rate * decimation / ceiling, 4),
        "resets": int(resets), "diverged": env.sim.num_diverged,  # warm-up included
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "randomization": env.cfg.randomization.enabled, **machine(),
    }
    if cuda:  # the whole device's memory in use (Warp allocates outside torch's allocator)
        free, total = torch.cuda.mem_get_info(env.device)
        result["gpu_memory_used_mb"] = round((total - free) / 2**20, 1)
        result["gpu"] = torch.cuda.get_device_name(env.device)
    env.close()
    return result


def bench_gym(env_id: str, num_envs: int, seconds: float, seed: int = 0) -> dict:
    """A reference point: a gymnasium env in a SyncVectorEnv, random actions, stepped for `seconds`."""
    import gymnasium as gym

    envs = gym.vector.SyncVectorEnv([lambda: gym.make(env_id) for _ in range(num_envs)])
    envs.reset(seed=seed)
    envs.action_space.seed(seed)
    frame_skip = getattr(envs.envs[0].unwrapped, "frame_skip", 1)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        envs.step(envs.action_space.sample())
        steps += 1
    elapsed = time.perf_counter() - start
    envs.close()
    rate = steps * num_envs / elapsed
    return {"env": env_id, "vector": "SyncVectorEnv", "num_envs": num_envs, "frame_skip": frame_skip,
            "seconds": round(elapsed, 3), "env_steps_per_s": round(rate, 1),
            "physics_steps_per_s": round(rate * frame_skip, 1), "peak_rss_mb": round(peak_rss_mb(), 1), **machine()}


class _bar:
    """A tqdm bar over wall-clock seconds (silent when not wanted)."""

    def __init__(self, seconds: float, enabled: bool, desc: str):
        self.tq = None
        if enabled:
            from tqdm import tqdm

            self.tq = tqdm(total=round(seconds, 1), desc=desc, unit="s", bar_format="{l_bar}{bar}| {n:.1f}/{total}s")

    def update(self, elapsed: float) -> None:
        if self.tq is not None:
            self.tq.n = round(min(elapsed, self.tq.total), 1)
            self.tq.refresh()

    def close(self) -> None:
        if self.tq is not None:
            self.tq.close()


def bench_deploy(policy_path: str, steps: int = 20000, threads: int = 1, seed: int = 0) -> dict:
    """Full `Controller.step` (observation from a joint-name-mapped state, policy, safety filter) against a bare
    onnxruntime `session.run` on the same input, interleaved in one run. Needs only the base install."""
    import gc

    import numpy as np

    from pg_robotics.deploy import Controller, RobotState

    ctl = Controller.load(policy_path, threads=threads)
    spec = ctl.spec
    rng = np.random.default_rng(seed)
    names = list(spec.joint_names)
    ctl.start(names)
    default = np.asarray(spec.default_joint_pos)
    session, feed_name = ctl.policy.session, ctl.policy.input_name
    obs = np.zeros((1, spec.num_obs), dtype=np.float32)
    step_ns, ort_ns = np.zeros(steps, dtype=np.int64), np.zeros(steps, dtype=np.int64)
    warmup = max(200, int(ctl.safety.soft_start_steps) + 50)
    gc.collect()
    gc.freeze()
    clock = time.perf_counter_ns
    for i in range(-warmup, steps):
        state = RobotState(names, (default + rng.normal(0, 0.05, len(names))).tolist(),
                           rng.normal(0, 1.0, len(names)).tolist(), (0.0, 0.0, 0.0, 1.0),
                           rng.normal(0, 0.2, 3).tolist(), stamp=float(i + warmup + 1))
        t0 = clock()
        ctl.step(state, (0.5, 0.0, 0.0))
        t1 = clock()
        session.run(None, {feed_name: obs})
        t2 = clock()
        if i >= 0:
            step_ns[i], ort_ns[i] = t1 - t0, t2 - t1
    gc.unfreeze()
    us = lambda a, p: round(float(np.percentile(a, p)) / 1000, 2)  # noqa: E731
    stats = ctl.stats()
    return {"policy": str(policy_path), "steps": steps, "threads": threads, "num_obs": spec.num_obs,
            "num_actions": spec.num_actions, "step_p50_us": us(step_ns, 50), "step_p99_us": us(step_ns, 99),
            "step_max_us": us(step_ns, 100), "ort_p50_us": us(ort_ns, 50), "ort_p99_us": us(ort_ns, 99),
            "step_over_ort_p50": round(float(np.percentile(step_ns, 50) / np.percentile(ort_ns, 50)), 3),
            "safety_interventions": stats["interventions"], **machine()}
