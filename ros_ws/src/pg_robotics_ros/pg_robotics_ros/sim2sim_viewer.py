"""`pgr sim2sim --viewer`: sim2sim to watch and drive. The two nodes of `pgr sim2sim` on a ROS domain of their own,
the MuJoCo sim node showing its world in MuJoCo's viewer (`sim_viewer`: P pushes, R resets, ctrl + drag perturbs),
the policy node started by itself (autostart), and the keyboard teleop node (`teleop`) reading this terminal's keys
and publishing `/cmd_vel`: the keys of `pgr play --viewer`, so the ROS 2 path is driven the same way. It runs until
the viewer window is closed, Ctrl-C, or `duration` seconds; a node that fails meanwhile is a Sim2SimError quoting its
log."""

from __future__ import annotations

import time
from pathlib import Path

from .sim2sim import SOFT_START_S, Sim2SimError, choose_domain, start_node, stop_node


def watch(policy: Path, rate_hz: float = 50.0, command=(0.0, 0.0, 0.0), duration: float | None = None,
          log_dir: Path | None = None, domain_id: int | None = None, startup_timeout: float = 60.0,
          ground: dict | None = None) -> dict:
    policy = Path(policy).resolve()
    if not policy.is_file():
        raise Sim2SimError(f"--policy: no file {policy}")
    domain_id, _ = choose_domain(domain_id)
    log_dir = Path(log_dir or policy.parent / "sim2sim_logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    nodes = (("sim_node", "mujoco_sim_node", {"policy": policy, "physics_dt": min(0.005, 1.0 / rate_hz),
                                              "viewer": True, **(ground or {})}),
             ("policy_node", "policy_node", {"policy": policy, "rate_hz": float(rate_hz),
                                             "soft_start_s": SOFT_START_S, "autostart": True}),
             ("teleop", "keyboard_teleop", dict(zip(("vx", "vy", "wz"), (float(v) for v in command)))))
    procs: list = []
    start, ended = time.monotonic(), "duration"
    try:
        for module, name, params in nodes:  # the teleop node inherits this process's stdin: the terminal's keys
            log = log_dir / f"{name}.log"
            procs.append((start_node(module, params, domain_id, log), log))
        while duration is None or time.monotonic() - start < duration:
            for k, (proc, log) in enumerate(procs):
                if proc.poll() is None:
                    continue
                if k == 0 and proc.returncode == 0:  # the sim node stops itself when its window is closed
                    ended = "window closed"
                    break
                raise Sim2SimError(f"{log.stem} exited with code {proc.returncode}:\n{log.read_text()[-2000:]}")
            else:
                time.sleep(0.1)
                continue
            break
    except KeyboardInterrupt:  # Ctrl-C reached the nodes too (one process group); they stop on their own
        ended = "interrupted"
    finally:
        for proc, _ in reversed(procs):
            stop_node(proc)
    return {"policy": str(policy), "ros_domain_id": domain_id, "seconds": round(time.monotonic() - start, 3),
            "ended": ended, "logs": str(log_dir)}
