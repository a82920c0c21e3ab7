"""Node parameters: defaults and the checks every value passes at configure and on every change.

Parameters are declared with dynamic typing, so that a value of the wrong type (`-p rate_hz:=50`, an int, or a
string) reaches these checks and is refused with a reason naming the parameter, instead of rclpy raising in the
constructor. An integer is accepted for a float parameter; every number must be finite and inside its range.
"""

from __future__ import annotations

import array

from pg_robotics.deploy.contract import is_number
from pg_robotics.deploy.safety import SafetyCfg, check_number
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult

# name: default (None: optional and unset); ranges below
POLICY_NODE = {
    "policy": "",  # path to policy.onnx
    "joint_names": None,  # string array: order of the published command; default: the policy's
    "rate_hz": 0.0,  # 0: 1 / the policy's control_dt
    "soft_start_s": 2.0,
    "max_target_rate": 60.0,  # rad/s
    "stale_periods": 2,  # each input: hold on the 2nd control period without a new sample
    "stale_mode": "hold",  # or "damp"; also what a deactivated node sends, and its last command on shutdown
    "limit_margin": 0.0,
    "escalate_after": 50,  # intervened periods in a row that latch the e-stop; 0: never
    "cmd_vel_timeout_s": 0.5,
    "robot_description": "",  # URDF or MJCF file whose joint limits bound the policy's
    "joint_pos_lower": None,  # double arrays in `joint_names` order: the robot's position limits
    "joint_pos_upper": None,
    "autostart": False,  # configure and activate at start-up
    "diagnostics_period_s": 1.0,
}

WATCHDOG = {
    "input_topic": "/policy/commands",  # the policy node's commands (remapped there)
    "output_topic": "/joint_position_controller/commands",  # what the robot's controller takes
    "timeout_s": 0.05,  # no command for this long: safe commands (2.5 periods of a 50 Hz policy)
    "mode": "damp",  # damp: follow the measured joint positions within the rate limit; hold: the last command
    "command_rate_hz": 50.0,  # the policy's command rate: safe commands are sent at it, and every command sent
    # on (relayed or safe) moves at most max_target_rate / command_rate_hz from the one before
    "max_target_rate": 60.0,  # rad/s
    "joint_names": None,  # order of the commands; default: the policy's
    "policy": "",  # policy.onnx: its joint names (when joint_names is not set) and joint limits
    "robot_description": "",  # URDF or MJCF: the robot's joint limits; every command sent on is clipped into
    "joint_pos_lower": None,  # ... the intersection of these, the policy's and these lists (joint_names order)
    "joint_pos_upper": None,
    "diagnostics_period_s": 1.0,
}

# (low, high, integer, low excluded)
RANGES = {**SafetyCfg.RANGES, "rate_hz": (0.0, 1000.0, False, False), "cmd_vel_timeout_s": (0.0, 60.0, False, True),
          "diagnostics_period_s": (0.01, 60.0, False, False), "timeout_s": (0.0, 10.0, False, True),
          "command_rate_hz": (0.0, 1000.0, False, True)}
CHOICES = {"stale_mode": ("hold", "damp"), "mode": ("damp", "hold")}
STRING_ARRAYS, DOUBLE_ARRAYS = ("joint_names",), ("joint_pos_lower", "joint_pos_upper")
DYNAMIC = ParameterDescriptor(dynamic_typing=True)


def check(name: str, value, defaults: dict):
    """The value parameter `name` may take (an int made a float for a float parameter), or a ValueError that
    names it and says why."""
    if name in RANGES:
        low, high, integer, low_open = RANGES[name]
        value = check_number(name, value, low, high, integer, low_open)
        return value if integer else float(value)
    default = defaults[name]
    if name in STRING_ARRAYS or name in DOUBLE_ARRAYS:
        if value is None:
            return None
        if not isinstance(value, (list, tuple, array.array)):
            raise ValueError(f"{name}: expected a list, got {value!r}")
        if name in STRING_ARRAYS and not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"{name}: expected a list of names, got {list(value)!r}")
        bad = [v for v in value if not is_number(v)] if name in DOUBLE_ARRAYS else []
        if bad:
            raise ValueError(f"{name}: expected finite numbers, got {bad[0]!r}")
        return list(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name}: expected true or false, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected a string, got {value!r}")
    if name in CHOICES and value not in CHOICES[name]:
        raise ValueError(f"{name}: expected one of {', '.join(CHOICES[name])}, got {value!r}")
    return value


def declare(node, defaults: dict) -> None:
    """Declare every parameter with dynamic typing, then check every later change (rejected with the reason)."""
    for name, default in defaults.items():
        node.declare_parameter(name, default, DYNAMIC)

    def on_set(parameters) -> SetParametersResult:
        for p in parameters:
            if p.name in defaults:
                try:
                    check(p.name, p.value, defaults)
                except ValueError as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)


def read(node, defaults: dict) -> dict:
    """Every parameter's checked value; raises ValueError naming the first bad one."""
    return {name: check(name, node.get_parameter(name).value, defaults) for name in defaults}
