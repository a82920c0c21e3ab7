"""Robot-side runtime for exported policies (numpy + onnxruntime + yaml only; never torch or mujoco).

    from pg_robotics.deploy import Controller, RobotState
    ctl = Controller.load("policy.onnx")
    ctl.start(robot_joint_names)                        # a joint the policy drives but the robot lacks: error
    targets = ctl.step(RobotState(...), (0.5, 0.0, 0.0))  # joint position targets, policy joint order (None
                                                          # until a joint pose has been measured)

    arm = VectorController.load("arm_policy.onnx")     # a policy of named input vectors (e.g. goal-conditioned)
    action = arm.step({"observation": obs, "desired_goal": goal})
"""

from .contract import SCHEMA_VERSION, ContractError, PolicySpec
from .controller import Controller
from .limits import JointLimit, LimitsError, read_description
from .observation import ObservationBuilder, RobotState, StateError
from .policy import Policy
from .safety import SafetyCfg, SafetyFilter
from .vector import VectorController, VectorSpec

__all__ = ["SCHEMA_VERSION", "ContractError", "Controller", "JointLimit", "LimitsError", "ObservationBuilder", "Policy",
           "PolicySpec", "RobotState", "SafetyCfg", "SafetyFilter", "StateError", "VectorController", "VectorSpec",
           "read_description"]
