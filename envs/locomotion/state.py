"""The batched robot state that observation, reward, constraint and termination terms read.

Robot parts come as the preset's groups, never by name: feet (F of them) and the bodies whose ground contact the task
watches, in the three roles a preset gives them (undesired, constrained, terminating). Any count works, zero included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class LocoState:
    dt: float  # policy period (s)
    action_scale: float  # joint target = default + action * action_scale (rad)
    base_pos: torch.Tensor  # (N, 3) world
    base_quat: torch.Tensor  # (N, 4) w, x, y, z
    base_lin_vel: torch.Tensor  # (N, 3) base frame
    base_ang_vel: torch.Tensor  # (N, 3) base frame
    projected_gravity: torch.Tensor  # (N, 3) unit gravity in the base frame
    joint_pos: torch.Tensor  # (N, J)
    joint_vel: torch.Tensor  # (N, J)
    joint_acc: torch.Tensor  # (N, J) finite difference over one policy period
    torques: torch.Tensor  # (N, J) applied, after clipping
    actions: torch.Tensor  # (N, J)
    last_actions: torch.Tensor  # (N, J)
    command: torch.Tensor  # (N, 3) v_x, v_y (base frame, m/s), yaw rate (rad/s)
    foot_forces: torch.Tensor  # (N, F, 3) world: net contact force with the ground
    foot_pos: torch.Tensor  # (N, F, 3) world
    foot_vel: torch.Tensor  # (N, F, 3) world
    undesired_contact_forces: torch.Tensor  # (N, U, 3) the preset's undesired_contacts bodies (feet excluded)
    constrained_contact_forces: torch.Tensor  # (N, C, 3) constrained_contacts
    termination_contact_forces: torch.Tensor  # (N, T, 3) termination_contacts
    feet_air_time: torch.Tensor  # (N, F) air time of the swing that just ended at touchdown (s), else 0
    first_contact: torch.Tensor  # (N, F) bool: touchdown this step
    default_joint_pos: torch.Tensor  # (J,)
    joint_pos_limits: torch.Tensor  # (J, 2)
    torque_limits: torch.Tensor  # (J,)
    velocity_limits: torch.Tensor  # (J,)
    # the ground's height (m) at world points (..., 2) -> (...): the terrain's height map, or 0 for a plane
    ground_height: Callable[[torch.Tensor], torch.Tensor] | None = None
    # what the robot's sensors add (sim-to-real randomization; zeros unless an event sets them): encoder offsets
    # (N, J), gyro bias (N, 3), a bias on the projected gravity (N, 3). Observations read them; physics does not.
    joint_pos_bias: torch.Tensor | None = None
    gyro_bias: torch.Tensor | None = None
    gravity_bias: torch.Tensor | None = None

    def height_of(self, xy: torch.Tensor) -> torch.Tensor:
        return torch.zeros(xy.shape[:-1], device=xy.device) if self.ground_height is None else self.ground_height(xy)

    @property
    def foot_contact(self) -> torch.Tensor:
        return self.foot_forces.norm(dim=-1) > 1.0
