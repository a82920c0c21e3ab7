"""ROS 2 nodes of pg_robotics: `policy_node` (the exported policy, lifecycle) and `mujoco_sim_node` (the simulated
robot for sim2sim), and the `pgr sim2sim` driver. Thin: the control decisions are `pg_robotics.deploy`'s."""
