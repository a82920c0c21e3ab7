"""sim2sim with a full ROS 2 install: `ros2 launch pg_robotics_ros sim2sim.launch.py policy:=/path/policy.onnx`.
The policy node autostarts (configure + activate); `ros2 topic pub /cmd_vel geometry_msgs/Twist ...` drives it.
Without ros2 launch: `pgr sim2sim --policy policy.onnx` (or `pgr ros sim` / `pgr ros policy`)."""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node


def generate_launch_description():
    policy = LaunchConfiguration("policy")
    rate = LaunchConfiguration("rate_hz")
    return LaunchDescription([
        DeclareLaunchArgument("policy", description="exported policy.onnx"),
        DeclareLaunchArgument("rate_hz", default_value="0.0", description="control rate (0: the policy's)"),
        Node(package="pg_robotics_ros", executable="mujoco_sim_node", name="mujoco_sim_node", output="screen",
             parameters=[{"policy": policy}]),
        LifecycleNode(package="pg_robotics_ros", executable="policy_node", name="policy_node", namespace="",
                      output="screen", parameters=[{"policy": policy, "rate_hz": rate, "autostart": True}]),
    ])
